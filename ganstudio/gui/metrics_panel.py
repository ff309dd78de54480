"""Quality metrics against the step: FID, KID, IS, precision/recall, density/coverage for generators;
held-out reconstruction error and ELBO parts for autoencoders and VAEs (a VAE has both).

Evaluations are few (one per ``train.eval_every`` steps), so each series is a short list redrawn whole
with ``setData``. Rows come from the worker's evaluation results and from a run folder's metrics.jsonl
(the rows that carry ``eval_samples``). The panels shown are those with data; before the first
evaluation, those the model family (``set_family``) reports.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ganstudio.gui.plots import D_COLOUR, ELBO_COLOUR, FAKE_COLOUR, G_COLOUR, REAL_COLOUR

PANELS = {  # name: (title, [(key, legend, colour)])
    "recon_mse": ("reconstruction MSE", [("recon_mse", "MSE", D_COLOUR)]),  # held-out, per pixel
    "elbo": ("loss per image", [("recon", "reconstruction", D_COLOUR), ("kl", "KL", G_COLOUR),
                                         ("elbo", "−ELBO", ELBO_COLOUR)]),
    "fid": ("FID (lower is better)", [("fid", "FID", D_COLOUR)]),
    "kid": ("KID ×1000", [("kid", "KID", G_COLOUR)]),
    "is": ("IS", [("is", "IS", REAL_COLOUR)]),
    "pr": ("precision / recall", [("precision", "precision", D_COLOUR), ("recall", "recall", G_COLOUR),
                                  ("density", "density", REAL_COLOUR), ("coverage", "coverage", FAKE_COLOUR)]),
}
TIPS = {
    "recon_mse": "Mean squared error per pixel ([0, 1] scale) between the held-out images and their "
                 "reconstructions (data.holdout); lower is better",
    "elbo": "Held-out reconstruction loss and KL per image, and their sum −ELBO (β = 1); lower is better",
}
SAMPLE_QUALITY = ("fid", "kid", "is", "pr")
FAMILY_PANELS = {  # shown before the first evaluation
    "gan": SAMPLE_QUALITY, "cgan": SAMPLE_QUALITY, "autoencoder": ("recon_mse", "elbo"),
    "vae": ("recon_mse", "elbo", *SAMPLE_QUALITY),
}
# KID is ~1e-3: shown ×1000 so its axis reads like the others; the ELBO (a log-likelihood bound, below
# zero) is shown negated, so it sits with the reconstruction and KL terms it is the sum of
SCALE = {"kid": 1000.0, "elbo": -1.0}
SUMMARY = (  # (key, label, measured on generated samples: "@n" applies)
    ("recon_mse", "reconstruction MSE", False), ("recon", "reconstruction", False), ("kl", "KL", False),
    ("elbo", "ELBO", False), ("fid", "FID", True), ("kid", "KID", True), ("is", "IS", True),
    ("precision", "precision", True), ("recall", "recall", True), ("density", "density", True),
    ("coverage", "coverage", True),
)


class MetricsPanel(QWidget):
    def __init__(self, parent=None, family: str = "gan") -> None:
        super().__init__(parent)
        self.setObjectName("metrics_panel")
        self.setAccessibleName("Quality metrics")
        self.rows: list[dict] = []
        self._family = family
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("No evaluation yet: set train.eval_every, or Run → Evaluate now.")
        self.summary.setObjectName("metrics_summary")
        self.summary.setAccessibleName("Latest evaluation")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("metrics_plots")
        layout.addWidget(self.view, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.names: dict[str, str] = {}  # legend text per key; the legend lists only measured ones
        for name, (title, series) in PANELS.items():
            plot = pg.PlotItem(title=title)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setToolTip(TIPS.get(name, ""))
            if len(series) > 1:
                # top left: evaluations arrive at the right, and the legend must not cover the newest
                plot.addLegend(offset=(5, 5), labelTextSize="8pt")
            for key, legend, colour in series:
                self.curves[key] = plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                             symbolBrush=colour)
                self.names[key] = legend
            self.plots[name] = plot
        self._shown: tuple[str, ...] = ()
        self._arrange()

    # --- public API -------------------------------------------------------------------------------
    def append(self, rows: list[dict]) -> None:
        self.rows.extend(r for r in rows if "eval_samples" in r)
        self._redraw()

    def load_rows(self, rows: list[dict]) -> None:
        self.rows = []
        self.append(rows)

    def clear(self) -> None:
        self.load_rows([])

    def point_count(self) -> int:
        return len(self.rows)

    def set_family(self, name: str) -> None:
        """The model family whose panels show until the first evaluation ("gan", "autoencoder", …)."""
        self._family = name
        self._arrange()

    @Slot(object)
    def set_config(self, config) -> None:
        """Follow a RunConfig's model family (connect the form's ``config_changed`` here); None is ignored."""
        if config is not None:
            self.set_family(config.model.family)

    def shown_panels(self) -> tuple[str, ...]:
        """The names of the panels shown, top to bottom (keys of ``PANELS``)."""
        return self._shown

    # --- internals --------------------------------------------------------------------------------
    def _points(self, key: str) -> tuple[list, list]:
        scale = SCALE.get(key, 1.0)
        points = [(r["step"], r[key] * scale) for r in self.rows
                  if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        return [p[0] for p in points], [p[1] for p in points]

    def legend_names(self, panel: str) -> list[str]:
        """What the legend of ``panel`` lists (only the metrics that were measured)."""
        legend = self.plots[panel].legend
        return [label.text for _sample, label in legend.items] if legend is not None else []

    def _redraw(self) -> None:
        for key, curve in self.curves.items():
            curve.setData(*self._points(key))
        self._arrange()
        for name, (_title, series) in PANELS.items():
            self._fit(name, series)
        if self.rows:
            self.summary.setText(_summary(self.rows[-1]))
        else:
            self.summary.setText("No evaluation yet: set train.eval_every, or Run → Evaluate now.")

    def _arrange(self) -> None:
        """Lay out the panels with data (else the family's), linked on the step axis; only on a change."""
        with_data = tuple(name for name, (_t, series) in PANELS.items()
                          if any(self._points(key)[0] for key, _l, _c in series))
        shown = with_data or FAMILY_PANELS.get(self._family, SAMPLE_QUALITY)
        if shown == self._shown:
            return
        layout = self.view.ci
        for name in self._shown:
            layout.removeItem(self.plots[name])
        first = self.plots[shown[0]]
        columns = 2 if len(shown) > 4 else 1  # a VAE's six panels: two columns, each tall enough to read
        for i, name in enumerate(shown):
            plot = self.plots[name]
            layout.addItem(plot, row=i // columns, col=i % columns)
            layout.layout.setColumnStretchFactor(i % columns, 1)
            plot.setXLink(None if plot is first else first)
        self._shown = shown


    def _fit(self, name: str, series) -> None:
        """The legend lists the measured series only; a lone evaluation gets axes around it (pyqtgraph's
        auto range would zoom to ±0.4 of one point, e.g. steps 508.6 to 509.4)."""
        plot = self.plots[name]
        measured = [(key, legend) for key, legend, _c in series if self._points(key)[0]]
        if plot.legend is not None and [text for _k, text in measured] != self.legend_names(name):
            plot.legend.clear()
            for key, legend in measured:
                plot.legend.addItem(self.curves[key], legend)
        xs = [x for key, _l in measured for x in self._points(key)[0]]
        ys = [y for key, _l in measured for y in self._points(key)[1]]
        if not xs:
            return
        if len(set(xs)) == 1:  # from step 0 to a little past the one evaluation
            plot.setXRange(0, xs[0] * 1.1 or 1, padding=0)
        else:
            plot.enableAutoRange(axis="x")
        if len(set(ys)) == 1:
            pad = abs(ys[0]) * 0.1 or 1.0
            plot.setYRange(ys[0] - pad, ys[0] + pad, padding=0)
        else:
            plot.enableAutoRange(axis="y")


def _summary(row: dict) -> str:
    n = row["eval_samples"]
    parts = []
    for key, label, sampled in SUMMARY:
        if isinstance(row.get(key), (int, float)):
            std = row.get(f"{key}_std")
            spread = f" ± {std:.2g}" if std is not None else ""
            parts.append(f"{label}{f'@{n}' if sampled else ''} {row[key]:.4g}{spread}")
    return f"step {row['step']:,}: " + ", ".join(parts)
