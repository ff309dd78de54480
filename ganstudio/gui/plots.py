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

import warnings

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ganstudio.families import FAMILIES, Family, Plot
from ganstudio.gui.plot_data import KEYS, Columns, ema_debiased, rows_to_block  # noqa: F401 - re-exported
from ganstudio.gui.plot_marks import MARKER_MERGE, MARKER_MIN_SPAN, LogAxis, Marker, SingleSteps, marker_line

# row-major: images are (rows, cols[, channels]) like numpy; antialias off keeps long curves cheap
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

# Mid-luminance colours (Tableau-like) that read on both a white and a black background.
D_COLOUR, G_COLOUR = "#4e9ad8", "#f28e2b"
REAL_COLOUR, FAKE_COLOUR = "#4caf50", "#e15759"
RAW_ALPHA = 70  # the unsmoothed curve, faint behind the smoothed one
FEW_POINTS = 30  # up to this many logged rows, the curves show a symbol at each (a lone first row is a dot)

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
DEFAULT_FAMILY = "gan"
REDRAW_MS = 40  # 25 Hz at most, slowing to REDRAW_MAX_MS as the curves grow
REDRAW_MAX_MS = 250
DEFAULT_SMOOTHING = 0.8  # per-step GAN losses are noisier than TensorBoard's usual curves (its default: 0.6)


class TrainingPlots(QWidget):
    """Stacked panels (the family's) with a shared step axis, a smoothing slider and event markers."""

    def __init__(self, parent=None, family: str = DEFAULT_FAMILY):
        super().__init__(parent)
        self.setObjectName("training_plots")
        self.setAccessibleName("Training curves")
        self._data = Columns(("step", *KEYS, *(f"smooth:{k}" for k in KEYS)))
        self._ema_state = {key: (0.0, 0) for key in KEYS}
        self._markers: list[Marker] = []
        self._single_steps: list[tuple[str, int, dict[str, float]]] = []  # (kind, step, figures)
        self._symbols = False  # whether the curves show a symbol at each point (few points)
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
        self.single_steps: list[SingleSteps] = []
        for row, spec in enumerate(plots):
            plot = self.canvas.addPlot(row=row, col=0, axisItems={"left": LogAxis("left")} if spec.log_y else None)
            plot.setLabel("left", AXIS_LABELS.get(spec.title, spec.title))
            # no grid: its translucent lines are redrawn whenever the range moves (~20 ms a redraw here)
            # The legend sits in a strip above the data (the title row), in one line, so it never covers
            # the newest points or the markers' labels.
            plot.setTitle(" ", size="9pt")
            legend = pg.LegendItem(colCount=len(spec.keys) + 3, labelTextSize="8pt", pen=None,
                                   horSpacing=12, verSpacing=-6)
            legend.layout.setContentsMargins(0, 0, 0, 0)
            legend.setParentItem(plot)
            legend.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(52, -4))
            plot.legend = legend  # PlotItem.addItem lists each named item here
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
            self.single_steps.append(SingleSteps(plot, list(spec.keys), {k: COLOURS.get(k, CYCLE[i % len(CYCLE)])
                                                                        for i, (k, _) in enumerate(spec.keys)}))
        for plot in self.panels[:-1]:
            # the panels share the last one's step axis: an axis above it would repaint on every new row
            # for nothing but its tick marks (~1 ms a redraw, a third of the paint)
            plot.hideAxis("bottom")
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
        box.setAlpha(0)  # the legend sits outside the data: no box to hide anything behind
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
        self._symbols = False
        self._build_plots()
        for marker in self._markers:
            self._add_marker_lines(marker)
        for points in self.single_steps:
            points.set_points(self._single_steps)
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
        self._single_steps.clear()
        for points in self.single_steps:
            points.clear()
        self._schedule_redraw()

    def add_event(self, event) -> None:
        """An engine ``RunEvent`` (live, or read back from events.jsonl): a single step is a point with its
        kind on the curves, anything else a marker at its step."""
        if event.kind in ("step", "step_d", "step_g"):
            self._single_steps.append((event.kind, int(event.step), dict(event.figures)))
            for points in self.single_steps:
                points.set_points(self._single_steps)
        else:
            self.add_marker(event.step, event.text)

    def load_events(self, events) -> None:
        """Draw a reopened run's events (after ``load_rows``, which clears them)."""
        for event in events:
            self.add_event(event)

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
        marker = Marker(step, level=last.level + 1 if last is not None else 0)
        marker.add(text)
        self._markers.append(marker)
        self._add_marker_lines(marker)

    def _merge_distance(self) -> float:
        steps = self._data.view("step")  # logged steps only grow
        span = float(steps[-1] - steps[0]) if len(steps) else 0.0
        return MARKER_MERGE * max(span, MARKER_MIN_SPAN)

    def _add_marker_lines(self, marker: Marker) -> None:
        for plot in self.panels:
            line = marker_line(marker)
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

    def marker_steps(self) -> list[int]:
        return [marker.step for marker in self._markers]

    def single_step_points(self) -> list[tuple[str, int]]:
        """(kind, step) of each single step drawn."""
        return [(kind, step) for kind, step, _ in self._single_steps]

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
        few = 0 < self._data.size <= FEW_POINTS
        if few != self._symbols:  # a line needs two points: a lone first row would be invisible
            self._symbols = few
            for key, curve in self.curves.items():
                curve.setSymbol("o" if few else None)
                curve.setSymbolSize(5)
                curve.setSymbolPen(None)
                curve.setSymbolBrush(curve.opts["pen"].color())
        for key in self.curves:
            # views into the columns, no copies; pyqtgraph copies what it maps or downsamples
            self.raw_curves[key].setData(x, self._data.view(key))
            self.curves[key].setData(x, self._data.view(f"smooth:{key}"))
        for plot in self.panels:
            # Fit the ranges to the new data now (what ViewBox does, if still auto-ranging, when it
            # paints). Left to the paint, the new range invalidates what was just painted and every new
            # row costs two paints of all panels. A series without data yet (another family's, a first
            # row's NaN) makes numpy warn "All-NaN slice" while bounding its symbols: nothing to report.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                plot.vb.prepareForPaint()

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
