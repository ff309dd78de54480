"""What the training plots draw besides the curves: dashed markers where the run was paused, resumed,
changed, rolled back or stopped; the points of single steps taken while paused; and a log axis whose
labels stay readable.

Events come from the engine (``RunEvent``, live or read back from the run folder's events.jsonl), so a
marker sits at the step where the thing really happened, not at the last logged row.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

MARKER_COLOUR = "#9a9a9a"
MARKER_MERGE = 0.01     # markers closer than this share of the plotted steps share one line
MARKER_MIN_SPAN = 100   # ... of at least this many steps (early on, before much is plotted)
# Label heights (a share of the panel, from the bottom) taken in turn: neighbouring markers' labels never
# sit on one line, and they stay clear of the legend, which sits above the data.
LABEL_LEVELS = (0.88, 0.67, 0.46)
SINGLE_STEP_SYMBOLS = {"step": ("o", "step"), "step_d": ("t1", "D step"), "step_g": ("t", "G step")}


class Marker:
    """One dashed line on the plots and the events it stands for, counted in the order they came."""

    def __init__(self, step: int, level: int = 0) -> None:
        self.step = step
        self.level = level  # which of LABEL_LEVELS its label sits at
        self.events: dict[str, int] = {}

    def add(self, text: str) -> None:
        self.events[text] = self.events.get(text, 0) + 1

    def label(self) -> str:
        return ", ".join(text if n == 1 else f"{text} ×{n}" for text, n in self.events.items())


def marker_line(marker: Marker) -> pg.InfiniteLine:
    """The dashed line of ``marker`` for one panel. Its label flips to the line's left near the right edge
    (pyqtgraph's two anchors), so the newest marker's label is not cut off."""
    return pg.InfiniteLine(
        pos=marker.step, angle=90, movable=False, pen=pg.mkPen(MARKER_COLOUR, width=1, style=Qt.PenStyle.DashLine),
        label=marker.label(),
        labelOpts={"position": LABEL_LEVELS[marker.level % len(LABEL_LEVELS)], "color": MARKER_COLOUR,
                   "anchors": [(0, 0.5), (1, 0.5)]},
    )


class LogAxis(pg.AxisItem):
    """A log-scale axis that labels decades, and 2× and 5× only over a narrow range: pyqtgraph labels all
    eight minor ticks of each decade, which smear into one another on a short panel."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        if spacing is not None:  # the decades
            return [_number(10.0 ** v * scale) for v in values]
        low, high = self.range
        narrow = high - low < 2.0
        keep = (2, 5) if narrow else ()
        return [_number(10.0 ** v * scale) if round(10.0 ** (v - math.floor(v + 1e-9))) in keep else ""
                for v in values]


def _number(x: float) -> str:
    return f"{x:.3g}"


class SingleSteps:
    """The points of single steps (D+G, D only, G only) on one panel: one symbol per kind, in each
    curve's colour, at the step's own figures."""

    def __init__(self, plot: pg.PlotItem, keys: list[tuple[str, str]], colours: dict[str, str]) -> None:
        self.plot, self.keys, self.colours = plot, keys, colours
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}  # (kind, key)
        self.samples: list[pg.ScatterPlotItem] = []  # the legend's entries, one per kind taken

    def clear(self) -> None:
        for item in self.items.values():
            self.plot.removeItem(item)
        for sample in self.samples:
            self.plot.legend.removeItem(sample)
        self.items.clear()
        self.samples.clear()

    def set_points(self, points: list[tuple[str, int, dict[str, float]]]) -> None:
        """``points``: (kind, step, figures) of every single step so far."""
        for kind, (symbol, name) in SINGLE_STEP_SYMBOLS.items():
            for key, _ in self.keys:
                xs, ys = [], []
                for point_kind, step, figures in points:
                    value = figures.get(key)
                    if point_kind == kind and value is not None and math.isfinite(value):
                        xs.append(float(step))
                        ys.append(value)
                if not xs:
                    continue
                item = self.items.get((kind, key))
                if item is None:  # created at the first point: the legend lists only the kinds taken
                    if not any(k == kind for k, _ in self.items):  # its legend entry: the symbol, in grey
                        sample = pg.ScatterPlotItem(symbol=symbol, size=9, pen=pg.mkPen(MARKER_COLOUR),
                                                    brush=pg.mkBrush(MARKER_COLOUR))
                        self.plot.legend.addItem(sample, name)
                        self.samples.append(sample)
                    item = pg.PlotDataItem(pen=None, symbol=symbol, symbolSize=9, symbolPen=pg.mkPen(MARKER_COLOUR),
                                           symbolBrush=pg.mkBrush(self.colours[key]))
                    self.plot.addItem(item)
                    self.items[(kind, key)] = item
                item.setData(np.array(xs), np.array(ys))
