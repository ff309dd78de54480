"""Quality metrics against the step: FID, KID, IS, precision/recall, density/coverage.

Evaluations are few (one per ``train.eval_every`` steps), so each series is a short list redrawn whole
with ``setData``. Rows come from the worker's evaluation results and from a run folder's metrics.jsonl
(the rows that carry ``eval_samples``).
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ganstudio.gui.plots import D_COLOUR, FAKE_COLOUR, G_COLOUR, REAL_COLOUR

PANELS = (  # (title, [(key, legend, colour)])
    ("FID (lower is better)", [("fid", "FID", D_COLOUR)]),
    ("KID ×1000", [("kid", "KID", G_COLOUR)]),
    ("IS", [("is", "IS", REAL_COLOUR)]),
    ("precision / recall", [("precision", "precision", D_COLOUR), ("recall", "recall", G_COLOUR),
                            ("density", "density", REAL_COLOUR), ("coverage", "coverage", FAKE_COLOUR)]),
)
SCALE = {"kid": 1000.0}  # KID is ~1e-3; shown ×1000 so its axis reads like the others


class MetricsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("metrics_panel")
        self.setAccessibleName("Quality metrics")
        self.rows: list[dict] = []
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
        self.curves: dict[str, pg.PlotDataItem] = {}
        first = None
        for i, (title, series) in enumerate(PANELS):
            plot = self.view.addPlot(row=i, col=0, title=title)
            plot.showGrid(x=True, y=True, alpha=0.2)
            if len(series) > 1:
                plot.addLegend(offset=(-5, 5))
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            for key, name, colour in series:
                self.curves[key] = plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                             symbolBrush=colour, name=name)
        first.getAxis("bottom")  # all panels share the step axis

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

    def _redraw(self) -> None:
        for key, curve in self.curves.items():
            points = [(r["step"], r[key] * SCALE.get(key, 1.0)) for r in self.rows
                      if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            curve.setData([p[0] for p in points], [p[1] for p in points])
        if self.rows:
            self.summary.setText(_summary(self.rows[-1]))


def _summary(row: dict) -> str:
    n = row["eval_samples"]
    parts = []
    for key, label in (("fid", "FID"), ("kid", "KID"), ("is", "IS"), ("precision", "precision"),
                       ("recall", "recall"), ("density", "density"), ("coverage", "coverage")):
        if key in row and row[key] is not None:
            std = row.get(f"{key}_std")
            parts.append(f"{label}@{n} {row[key]:.4g}" + (f" ± {std:.2g}" if std is not None else ""))
    return f"step {row['step']:,}: " + ", ".join(parts)
