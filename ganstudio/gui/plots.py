"""Live training curves against the step, in the panels the model family names (``families.py``): for a
GAN losses, D outputs and gradient norms; for an autoencoder the reconstruction loss; for a VAE its
ELBO parts; gradient norms for all.

Fed by the training worker (batches of stats rows, at most ~20 times a second) and rebuilt from a run
folder's metrics.jsonl. Costs stay flat as a run grows: every curve is created once and changed with
``setData``; the data lives in numpy columns that double when full; the smoothed curve is extended
incrementally (recomputed in full only when the slider moves); and the plots are redrawn from a timer,
once per tick at most, only when something new arrived.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ganstudio.families import FAMILIES, Family, Plot

# row-major: images are (rows, cols[, channels]) like numpy; antialias off keeps long curves cheap
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

# Mid-luminance colours (Tableau-like) that read on both a white and a black background.
D_COLOUR, G_COLOUR = "#4e9ad8", "#f28e2b"
REAL_COLOUR, FAKE_COLOUR = "#4caf50", "#e15759"
RAW_ALPHA = 70  # the unsmoothed curve, faint behind the smoothed one
MARKER_COLOUR = "#9a9a9a"
MARKER_MERGE = 0.01     # markers closer than this share of the plotted steps share one line
MARKER_MIN_SPAN = 100   # ... of at least this many steps (early on, before much is plotted)

ELBO_COLOUR = "#9c6ade"
COLOURS = {  # a key's colour in every family; other keys take the next of CYCLE in their panel
    "loss_d": D_COLOUR, "loss_g": G_COLOUR, "d_real": REAL_COLOUR, "d_fake": FAKE_COLOUR,
    "grad_norm_d": D_COLOUR, "grad_norm_g": G_COLOUR,
    "recon": D_COLOUR, "kl": G_COLOUR, "loss": ELBO_COLOUR,
}
CYCLE = (D_COLOUR, G_COLOUR, REAL_COLOUR, FAKE_COLOUR, ELBO_COLOUR)
AXIS_LABELS = {  # the panel titles of families.py, shortened for a vertical axis
    "Losses": "loss", "D(x) and D(G(z))": "D output", "Gradient norms": "grad norm",
    "Reconstruction": "reconstruction", "ELBO parts": "ELBO parts",
}
# Every key any family plots: the columns hold them all, so switching family redraws, never loses, data.
KEYS = tuple(dict.fromkeys(key for family in FAMILIES.values() for plot in family.plots for key, _ in plot.keys))
DEFAULT_FAMILY = "gan"
REDRAW_MS = 40  # 25 Hz at most, slowing to REDRAW_MAX_MS as the curves grow
REDRAW_MAX_MS = 250
DEFAULT_SMOOTHING = 0.8  # per-step GAN losses are noisier than TensorBoard's usual curves (its default: 0.6)


def ema_debiased(values: np.ndarray, weight: float, last: float = 0.0, count: int = 0):
    """TensorBoard's smoothing: an EMA over the finite values, debiased by ``1 - weight**count``.

    Non-finite values stay NaN (a gap) and do not enter the average. ``last`` and ``count`` carry the
    state from the values before these, so a long series can be extended chunk by chunk.
    Returns ``(smoothed, last, count)``.

    Vectorised as a parallel prefix scan of ``y[k] = w*y[k-1] + (1-w)*v[k]``: log2(n) passes of whole-
    array adds with coefficients w**d <= 1 (stable, unlike a cumsum scaled by w**-k, which overflows).
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    v = values[finite]
    if v.size == 0:
        return out, last, count
    w = min(max(float(weight), 0.0), 0.999999)
    y = (1.0 - w) * v
    d = 1
    while d < y.size:
        coef = w**d
        if coef == 0.0:  # older terms have underflowed: nothing left to add
            break
        y[d:] = y[d:] + coef * y[:-d]  # the right side is evaluated into a temporary first
        d *= 2
    k = np.arange(1, y.size + 1, dtype=np.float64)
    if last and w > 0.0:
        y += np.power(w, k) * last
    debias = 1.0 - np.power(w, k + count) if w > 0.0 else 1.0
    out[finite] = y / debias
    return out, float(y[-1]), count + int(v.size)


class Marker:
    """One dashed line on the plots and the events it stands for, counted in the order they came."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.events: dict[str, int] = {}

    def add(self, text: str) -> None:
        self.events[text] = self.events.get(text, 0) + 1

    def label(self) -> str:
        return ", ".join(text if n == 1 else f"{text} ×{n}" for text, n in self.events.items())


class Columns:
    """Float64 columns of one shared length that double their capacity when full."""

    def __init__(self, names, capacity: int = 1024):
        self.names = tuple(names)
        self.size = 0
        self._data = {name: np.full(capacity, np.nan) for name in self.names}

    @property
    def capacity(self) -> int:
        return len(next(iter(self._data.values())))

    def extend(self, block: dict[str, np.ndarray]) -> None:
        n = len(next(iter(block.values())))
        need = self.size + n
        if need > self.capacity:
            grown = max(need, 2 * self.capacity)
            for name, old in self._data.items():
                new = np.full(grown, np.nan)
                new[: self.size] = old[: self.size]
                self._data[name] = new
        for name in self.names:
            self._data[name][self.size : need] = block.get(name, np.nan)
        self.size = need

    def view(self, name: str) -> np.ndarray:
        return self._data[name][: self.size]

    def clear(self) -> None:
        self.size = 0


def rows_to_block(rows: list[dict]) -> dict[str, np.ndarray]:
    """Training rows with a step and at least one plotted key -> columns; None, absent or non-finite -> NaN.

    Evaluation rows (they carry ``eval_samples``) are left out: a VAE's held-out "recon" and "kl" are
    not training points, and the metrics panel plots them.
    """
    rows = [r for r in rows if r.get("step") is not None and "eval_samples" not in r and any(k in r for k in KEYS)]
    block = {"step": np.array([float(r["step"]) for r in rows], dtype=np.float64)}
    for key in KEYS:
        col = np.array([_number(r.get(key)) for r in rows], dtype=np.float64)
        col[~np.isfinite(col)] = np.nan
        block[key] = col
    return block


def _number(value) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


class TrainingPlots(QWidget):
    """Stacked panels (the family's) with a shared step axis, a smoothing slider and event markers."""

    def __init__(self, parent=None, family: str = DEFAULT_FAMILY):
        super().__init__(parent)
        self.setObjectName("training_plots")
        self.setAccessibleName("Training curves")
        self._data = Columns(("step", *KEYS, *(f"smooth:{k}" for k in KEYS)))
        self._ema_state = {key: (0.0, 0) for key in KEYS}
        self._markers: list[Marker] = []
        self._marker_items: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []  # one per marker per panel
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setObjectName("plots_redraw_timer")
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._redraw)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setObjectName("plots_canvas")
        self.family: Family = FAMILIES[family]
        self._build_plots()
        self._build_controls()

    # --- layout -----------------------------------------------------------------------------------
    def _build_plots(self) -> None:
        """One PlotItem per panel of the family, its curves created once (changed later with setData)."""
        plots: tuple[Plot, ...] = self.family.plots
        self.canvas.setAccessibleName(", ".join(p.title for p in plots) + " plots")
        self.panel_titles = [p.title for p in plots]
        self.panels: list[pg.PlotItem] = []
        self.raw_curves: dict[str, pg.PlotDataItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for row, spec in enumerate(plots):
            plot = self.canvas.addPlot(row=row, col=0)
            plot.setLabel("left", AXIS_LABELS.get(spec.title, spec.title))
            # no grid: its translucent lines are redrawn whenever the range moves (~20 ms a redraw here)
            legend = plot.addLegend(offset=(-10, 5), labelTextSize="8pt", pen=(128, 128, 128, 150))
            legend.setZValue(1e6)  # above the curves (they share the ViewBox as parent)
            plot.getAxis("left").enableAutoSIPrefix(False)  # else 0.2..0.8 reads "200..800 (x0.001)"
            plot.getAxis("left").setWidth(48)  # the same for every panel, so the x axes line up
            # on the PlotItem, not the curve: PlotItem.addItem overwrites a curve's own downsampling
            # and clip-to-view with the plot's (off by default), and then 100k points cost ~60 ms each
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            if self.panels:
                plot.setXLink(self.panels[0])
            self.panels.append(plot)
            if spec.log_y:
                plot.setLogMode(y=True)  # norms span decades; a zero becomes a gap, not an error
            for i, (key, name) in enumerate(spec.keys):
                colour = COLOURS.get(key, CYCLE[i % len(CYCLE)])
                faint = pg.mkColor(colour)
                faint.setAlpha(RAW_ALPHA)
                # raw first so it sits behind; unnamed so the legend lists each series once
                self.raw_curves[key] = plot.plot(pen=pg.mkPen(faint, width=1))
                self.curves[key] = plot.plot(pen=pg.mkPen(colour, width=2), name=name)
        for plot in self.panels[:-1]:
            plot.getAxis("bottom").setStyle(showValues=False)
        self.panels[-1].setLabel("bottom", "step")
        for curve in (*self.raw_curves.values(), *self.curves.values()):
            # 'peak' keeps each block's min and max, so 2 blocks a pixel (4 vertices) lose nothing
            # visible; pyqtgraph's default of 5 doubles the drawing cost (no setter, hence opts)
            curve.opts["autoDownsampleFactor"] = 2.0
        self._apply_palette()

    def _apply_palette(self) -> None:
        """Background, axes, legend box and legend text from the palette, so a light/dark switch reads well
        (and panels rebuilt for another family look like the ones they replace)."""
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.canvas.setBackground(base)
        box = QColor(base)
        box.setAlpha(210)
        for plot in self.panels:
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen(text)
                plot.getAxis(side).setTextPen(text)
            plot.legend.setBrush(box)
            plot.legend.setLabelTextColor(text)
            for _sample, label in plot.legend.items:  # setLabelTextColor stores but does not re-render
                label.setText(label.text)

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _build_controls(self) -> None:
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("smoothing")
        self.smoothing.setAccessibleName("Smoothing")
        self.smoothing.setToolTip("Exponential moving average of every curve, debiased like TensorBoard's")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(round(DEFAULT_SMOOTHING * 100))
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.smoothing_label = QLabel()
        self.smoothing_label.setObjectName("smoothing_label")
        self.smoothing_label.setAccessibleName("Smoothing value")
        self._update_smoothing_label()
        title = QLabel("Smoothing")
        title.setObjectName("smoothing_title")
        title.setAccessibleName("Smoothing title")
        title.setBuddy(self.smoothing)
        controls = QHBoxLayout()
        controls.addWidget(title)
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.smoothing_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)

    # --- public API -------------------------------------------------------------------------------
    def set_family(self, name: str) -> None:
        """Show the panels of model family ``name`` ("gan", "cgan", "autoencoder", "vae").

        The data is kept (every family's keys are stored), so switching back and forth loses nothing;
        the panels are rebuilt only when the new family plots something else.
        """
        family = FAMILIES[name]
        if family.plots == self.family.plots:
            self.family = family
            return
        self.family = family
        self.canvas.clear()  # removes the PlotItems with their curves, legends and marker lines
        self._marker_items.clear()
        self._build_plots()
        for marker in self._markers:
            self._add_marker_lines(marker)
        self._dirty = True
        self._redraw()

    @Slot(object)
    def set_config(self, config) -> None:
        """Follow a RunConfig's model family (connect the form's ``config_changed`` here); None is ignored."""
        if config is not None:
            self.set_family(config.model.family)

    def append(self, rows: list[dict]) -> None:
        """Add stats rows (``step`` plus any of the plotted keys); redrawn at the next timer tick."""
        block = rows_to_block(rows)
        if block["step"].size == 0:
            return
        w = self.smoothing_weight()
        for key in KEYS:
            last, count = self._ema_state[key]
            block[f"smooth:{key}"], *state = ema_debiased(block[key], w, last, count)
            self._ema_state[key] = tuple(state)
        self._data.extend(block)
        self._schedule_redraw()

    def load_rows(self, rows: list[dict]) -> None:
        """Replace everything with these rows (opening a run folder)."""
        self.clear()
        self.append(rows)

    def clear(self) -> None:
        self._data.clear()
        self._ema_state = {key: (0.0, 0) for key in KEYS}
        for plot, line in self._marker_items:
            plot.removeItem(line)
        self._marker_items.clear()
        self._markers.clear()
        self._schedule_redraw()

    def add_marker(self, step: int, text: str) -> None:
        """A dashed vertical line with a short label on every panel ("paused", "lr_g → 1e-3").

        A marker close to the last one (within MARKER_MERGE of the steps shown so far) joins it and its
        label counts the events ("paused ×3, resumed ×3"): every line costs an item per panel, and a
        person tapping Space 200 times would otherwise leave 1,200 of them (a 347 ms stall).
        """
        step = int(step)
        last = self._markers[-1] if self._markers else None
        if last is not None and abs(step - last.step) <= self._merge_distance():
            last.add(text)
            for plot, line in self._marker_items[-len(self.panels):]:
                line.label.setFormat(last.label())
            return
        marker = Marker(step)
        marker.add(text)
        self._markers.append(marker)
        self._add_marker_lines(marker)

    def _merge_distance(self) -> float:
        steps = self._data.view("step")  # logged steps only grow
        span = float(steps[-1] - steps[0]) if len(steps) else 0.0
        return MARKER_MERGE * max(span, MARKER_MIN_SPAN)

    def _add_marker_lines(self, marker: Marker) -> None:
        pen = pg.mkPen(MARKER_COLOUR, width=1, style=Qt.PenStyle.DashLine)
        for plot in self.panels:
            line = pg.InfiniteLine(
                pos=marker.step, angle=90, movable=False, pen=pen, label=marker.label(),
                labelOpts={"position": 0.92, "color": MARKER_COLOUR, "anchors": [(0, 0.5), (0, 0.5)]},
            )
            plot.addItem(line, ignoreBounds=True)
            self._marker_items.append((plot, line))

    def point_count(self) -> int:
        return self._data.size

    def marker_count(self) -> int:
        """Events marked (paused, resumed, a live change …), however many share a line."""
        return sum(sum(marker.events.values()) for marker in self._markers)

    def marker_line_count(self) -> int:
        """Marker lines on each panel: events close together share one."""
        return len(self._markers)

    def marker_labels(self) -> list[str]:
        return [marker.label() for marker in self._markers]

    def smoothing_weight(self) -> float:
        return self.smoothing.value() / 100.0

    def smoothed(self, key: str) -> np.ndarray:
        """The smoothed values of one series (a copy), as plotted."""
        return self._data.view(f"smooth:{key}").copy()

    # --- internals --------------------------------------------------------------------------------
    def _schedule_redraw(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            # a redraw of 100k points costs ~30 ms on two cores: long runs refresh less often
            self._timer.start(min(REDRAW_MAX_MS, REDRAW_MS + self._data.size // 1000))

    @Slot()
    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        x = self._data.view("step")
        for key in self.curves:
            # views into the columns, no copies; pyqtgraph copies what it maps or downsamples
            self.raw_curves[key].setData(x, self._data.view(key))
            self.curves[key].setData(x, self._data.view(f"smooth:{key}"))

    @Slot(int)
    def _on_smoothing(self, _value: int) -> None:
        """Recompute every smoothed curve in full for the new weight (vectorised: ms for 100k points)."""
        self._update_smoothing_label()
        w = self.smoothing_weight()
        for key in KEYS:
            smoothed, last, count = ema_debiased(self._data.view(key), w)
            self._data.view(f"smooth:{key}")[:] = smoothed
            self._ema_state[key] = (last, count)
        self._schedule_redraw()

    def _update_smoothing_label(self) -> None:
        self.smoothing_label.setText(f"{self.smoothing_weight():.2f}")
