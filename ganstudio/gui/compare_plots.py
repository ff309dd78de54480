"""The Compare view's curves: one panel per figure (a training key, or an evaluation figure), each run's
curve in its colour, one smoothing slider for all, x against the step or the training time.

Panels are built once per set of runs; a refresh only calls ``setData``. Smoothing is TensorBoard's
(``plot_data.ema_debiased``), recomputed per run and key on a refresh: comparisons hold a few runs.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ganstudio.gui.compare_data import (EVAL_LABELS, TIME, CompareRun, eval_id, eval_keys, format_seconds,
                                        key_label, training_keys)
from ganstudio.gui.plot_data import ema_debiased
from ganstudio.gui.plots import DEFAULT_SMOOTHING, RAW_ALPHA

# Tableau 10's first six: mid-luminance, told apart on a light and a dark background
RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2")
X_AXES = {"step": "step", "time": "training time"}
COLUMNS = 3  # panels per row
LOG_KEYS = {"grad_norm_d", "grad_norm_g"}  # norms span decades, as in the training plots


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


class TimeAxis(pg.AxisItem):
    """Training seconds shown as m:ss or h:mm:ss."""

    def tickStrings(self, values, scale, spacing):
        return [format_seconds(v) if v >= 0 else "" for v in values]


class CompareCurves(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compare_curves")
        self.setAccessibleName("Compared curves")
        self.runs: list[CompareRun] = []
        self.panels: dict[str, pg.PlotItem] = {}   # "loss_d", "eval:fid", …
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}      # (panel, run index) -> smoothed
        self.raw_curves: dict[tuple[str, int], pg.PlotDataItem] = {}  # training panels only
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setObjectName("compare_canvas")
        self.canvas.setBackground(self.palette().color(QPalette.ColorRole.Base))
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("compare_smoothing")
        self.smoothing.setAccessibleName("Smoothing")
        self.smoothing.setToolTip("Exponential moving average of every run's curves, debiased like TensorBoard's")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(round(DEFAULT_SMOOTHING * 100))
        self.smoothing_label = QLabel()
        self.x_axis = QComboBox()
        self.x_axis.setObjectName("compare_x_axis")
        self.x_axis.setAccessibleName("Horizontal axis")
        for key, text in X_AXES.items():
            self.x_axis.addItem(f"against {text}", key)
        controls = QHBoxLayout()
        title = QLabel("Smoothing")
        title.setBuddy(self.smoothing)
        controls.addWidget(title)
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.smoothing_label)
        controls.addSpacing(16)
        controls.addWidget(self.x_axis)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)
        self.smoothing.valueChanged.connect(self._on_controls)
        self.x_axis.currentIndexChanged.connect(self._on_axis)
        self._update_label()

    # --- public API -------------------------------------------------------------------------------
    def set_runs(self, runs: list[CompareRun]) -> None:
        """Build the panels for these runs (the figures any of them has) and draw them."""
        self.runs = list(runs)
        self._build()
        self.refresh()

    def panel_ids(self) -> list[str]:
        return list(self.panels)

    def x_key(self) -> str:
        return self.x_axis.currentData()

    def curve_data(self, panel: str, run: int) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) drawn for run number ``run`` in ``panel`` (smoothed for training keys)."""
        x, y = self.curves[(panel, run)].getData()
        return (np.array([]), np.array([])) if x is None else (x, y)

    def refresh(self, only: set[int] | None = None) -> None:
        """Redraw the curves of runs number ``only`` (all: None) from their data; panels appear for
        figures measured since (then every curve is drawn anew)."""
        if list(self.panels) != self._wanted():
            self._build()
            only = None
        w = self.smoothing.value() / 100.0
        for (panel, i), curve in self.curves.items():
            if only is not None and i not in only:
                continue  # a finished run's curves stay as drawn: smoothing 100k rows costs ms a curve
            run = self.runs[i]
            if panel.startswith("eval:"):
                x, y = run.eval_series(panel.removeprefix("eval:"))
                x = self._x_of(run, x)
                curve.setData(*(_finite_x(x, y) if x is not None else ([], [])))
                continue
            y = run.train.view(panel) if run.has(panel) else np.array([])
            x = run.train.view("step") if run.has(panel) else np.array([])
            if self.x_key() == "time":
                x = run.train.view(TIME) if run.has(panel) else x
            smooth = ema_debiased(y, w)[0]
            self.raw_curves[(panel, i)].setData(*_finite_x(x, y))
            curve.setData(*_finite_x(x, smooth))

    # --- internals --------------------------------------------------------------------------------
    def _wanted(self) -> list[str]:
        return training_keys(self.runs) + [eval_id(k) for k in eval_keys(self.runs)]

    def _build(self) -> None:
        self.canvas.clear()
        self.panels.clear()
        self.curves.clear()
        self.raw_curves.clear()
        text = self.palette().color(QPalette.ColorRole.Text)
        time = self.x_key() == "time"
        for n, panel in enumerate(self._wanted()):
            is_eval = panel.startswith("eval:")
            axes = {"bottom": TimeAxis("bottom")} if time else {}
            plot = self.canvas.addPlot(row=n // COLUMNS, col=n % COLUMNS, axisItems=axes)
            title = EVAL_LABELS[panel[5:]] if is_eval else key_label(self.runs, panel)
            plot.setTitle(title, size="9pt", color=text)
            plot.setLabel("bottom", X_AXES[self.x_key()])
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen(text)
                plot.getAxis(side).setTextPen(text)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setDownsampling(auto=True, mode="peak")
            if panel in LOG_KEYS:
                plot.setLogMode(y=True)
            for i, _run in enumerate(self.runs):
                colour = run_colour(i)
                if is_eval:
                    self.curves[(panel, i)] = plot.plot(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                                        symbolBrush=colour, symbolPen=None)
                    continue
                faint = pg.mkColor(colour)
                faint.setAlpha(RAW_ALPHA)
                self.raw_curves[(panel, i)] = plot.plot(pen=pg.mkPen(faint, width=1))
                self.curves[(panel, i)] = plot.plot(pen=pg.mkPen(colour, width=2))
            self.panels[panel] = plot

    def _x_of(self, run: CompareRun, steps: np.ndarray) -> np.ndarray | None:
        if self.x_key() == "step":
            return steps
        return run.time_at(steps) if steps.size else steps

    @Slot()
    def _on_controls(self) -> None:
        self._update_label()
        self.refresh()

    @Slot()
    def _on_axis(self) -> None:
        self._build()  # the bottom axes change kind (steps, or h:mm:ss)
        self.refresh()

    def _update_label(self) -> None:
        self.smoothing_label.setText(f"{self.smoothing.value() / 100:.2f}")


def _finite_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points without an x (a row from before training time was logged) are left out; y may be NaN (a gap)."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.isfinite(x)
    return x[keep], np.asarray(y, dtype=np.float64)[keep]
