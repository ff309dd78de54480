"""The Compare view's sample grids: one per run, side by side, under one global step slider. Each run shows
its last grid at or before the slider's step, captioned with the step it really shows; grids keep their
own image sizes (a 28 px run beside a 64 px one), each scaled to fit its cell.

The slider stops at every step where any run wrote a grid, so each stop changes something. Decoded grids
are kept in a small cache: scrubbing back and forth reads each PNG once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ganstudio.engine.sample_index import RECONSTRUCTIONS, SampleRecord
from ganstudio.gui.compare_data import CompareRun, grid_steps
from ganstudio.gui.compare_plots import run_colour
from ganstudio.gui.grid_view import GridView, named

CACHE = 48  # decoded grids kept: six runs scrubbed over eight stops


class TopGridView(GridView):
    """A grid drawn at the top of its cell, right under its caption (GridView centres it)."""

    def target_rect(self) -> QRectF:
        rect = super().target_rect()
        return rect.translated(0, -rect.y()) if not rect.isEmpty() else rect


class CompareGrids(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compare_grids")
        self.setAccessibleName("Compared sample grids")
        self.runs: list[CompareRun] = []
        self.steps: list[int] = []
        self.views: list[GridView] = []
        self.captions: list[QLabel] = []
        self.shown: list[SampleRecord | None] = []
        self._cache: OrderedDict[tuple, QImage] = OrderedDict()
        self.slider = named(QSlider(Qt.Orientation.Horizontal), "compare_step", "Global step")
        self.slider.setToolTip("Every run shows its last grid at or before this step")
        self.step_label = named(QLabel(), "compare_step_label", "Global step value")
        self.cells = QGridLayout()
        controls = QHBoxLayout()
        title = QLabel("Step")
        title.setBuddy(self.slider)
        controls.addWidget(title)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.step_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.cells, 1)
        layout.addLayout(controls)
        self.slider.valueChanged.connect(self._on_slider)

    # --- public API -------------------------------------------------------------------------------
    def set_runs(self, runs: list[CompareRun]) -> None:
        self.runs = list(runs)
        while self.cells.count():
            item = self.cells.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.views, self.captions = [], []
        columns = 3 if len(runs) > 4 else max(len(runs), 1)  # five or six runs: two rows of three
        for i, run in enumerate(self.runs):
            caption = named(QLabel(), f"compare_caption_{i}", f"Grid caption of {run.name}")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setWordWrap(True)
            view = TopGridView(name=f"compare_grid_{i}", accessible=f"Sample grid of {run.name}")
            row, col = divmod(i, columns)
            self.cells.addWidget(caption, 2 * row, col)
            self.cells.addWidget(view, 2 * row + 1, col)
            self.cells.setRowStretch(2 * row + 1, 1)
            self.views.append(view)
            self.captions.append(caption)
        self.shown = [None] * len(self.runs)
        self.steps = []
        self.refresh()

    def refresh(self) -> None:
        """New grids from live runs: the slider gains stops; one at the last stop follows the newest."""
        at_end = not self.steps or self.slider.value() == len(self.steps) - 1
        current = self.current_step()
        self.steps = grid_steps(self.runs)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(self.steps) - 1, 0))
        self.slider.setEnabled(len(self.steps) > 1)
        if self.steps:
            self.slider.setValue(len(self.steps) - 1 if at_end or current is None else self._stop_of(current))
        self.slider.blockSignals(False)
        self._show()

    def current_step(self) -> int | None:
        return self.steps[self.slider.value()] if self.steps else None

    def set_step(self, step: int) -> None:
        """Move the slider to the last stop at or before ``step``."""
        if self.steps:
            self.slider.setValue(self._stop_of(step))

    def shown_steps(self) -> list[int | None]:
        """The step of the grid each run shows (None: none at or before the slider)."""
        return [record.step if record else None for record in self.shown]

    # --- internals --------------------------------------------------------------------------------
    def _stop_of(self, step: int) -> int:
        below = [i for i, s in enumerate(self.steps) if s <= step]
        return below[-1] if below else 0

    @Slot(int)
    def _on_slider(self, _value: int) -> None:
        self._show()

    def _show(self) -> None:
        step = self.current_step()
        self.step_label.setText(f"step {step:,}" if step is not None else "no grids")
        for i, run in enumerate(self.runs):
            record = run.grid_at(step) if step is not None else None
            self.shown[i] = record
            colour = run_colour(i)
            name = f"<b style='color:{colour}'>■</b> {run.name}"
            if record is None:
                first = f"its first grid is at step {run.grids[0].step:,}" if run.grids else "no sample grids"
                self.captions[i].setText(f"{name}<br>{first}")
                self.views[i].set_grid(None, None, f"no grid at or before step {step:,}"
                                       if step is not None and run.grids else "no sample grids")
                continue
            what = " · reconstructions" if record.kind == RECONSTRUCTIONS else ""
            self.captions[i].setText(f"{name}<br>step {record.step:,} · {record.height}×{record.width} px{what}")
            image = self._image(record.path)
            self.views[i].pairs = record.kind == RECONSTRUCTIONS
            self.views[i].set_grid(image, record.geometry() if image is not None else None,
                                   "" if image is not None else f"{record.path.name} could not be read")

    def _image(self, path: Path) -> QImage | None:
        try:
            key = (path, path.stat().st_mtime_ns)
        except OSError:
            return None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = QImage(str(path))
        if image.isNull():
            return None
        self._cache[key] = image
        while len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return image
