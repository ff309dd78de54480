"""The sample gallery: the grid of images from fixed noise, growing with the run, and its history.

History lives on disk (the run folder's samples/step_NNNNNN.png grids); only the last few decoded grids
are kept in memory (an LRU) and older ones are read back from their file when shown. A click on an image
in the grid opens it large.

The grid layout and reading it back from a PNG are in ``grid_layout.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSlider, QVBoxLayout, QWidget

from ganstudio.gui.grid_layout import STEP_FILE, GridGeometry, infer_geometry, make_grid, read_grid

def to_qimage(array: np.ndarray) -> QImage:
    """uint8 (H, W, C) -> a QImage that owns its pixels (the array may go away)."""
    if array.shape[2] == 1:
        data = np.ascontiguousarray(array[..., 0])
        fmt = QImage.Format.Format_Grayscale8
    else:
        data = np.ascontiguousarray(array[..., :3])
        fmt = QImage.Format.Format_RGB888
    h, w = data.shape[:2]
    return QImage(data.data, w, h, data.strides[0], fmt).copy()


@dataclass(eq=False)  # compared by identity: the LRU is keyed by the snapshot itself
class Snapshot:
    step: int
    path: Path | None
    geometry: GridGeometry | None = None  # known once the images or the decoded PNG were seen


class GridView(QWidget):
    """Paints one grid scaled to fit, aspect kept, nearest neighbour; reports the image clicked."""

    cell_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sample_grid")
        self.setAccessibleName("Sample grid")
        self.setMinimumSize(120, 120)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image: QImage | None = None
        self.geometry_: GridGeometry | None = None
        self.message = "no samples yet"

    def set_grid(self, image: QImage | None, geometry: GridGeometry | None, message: str = "") -> None:
        self.image, self.geometry_, self.message = image, geometry, message
        self.update()

    def target_rect(self) -> QRectF:
        """Where the grid is drawn: as large as fits, centred."""
        if self.image is None:
            return QRectF()
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def widget_pos(self, grid_x: float, grid_y: float) -> QPoint:
        """The widget position of grid pixel (x, y) (for tests and tooltips)."""
        rect = self.target_rect()
        scale = rect.width() / self.image.width()
        return QPoint(round(rect.x() + (grid_x + 0.5) * scale), round(rect.y() + (grid_y + 0.5) * scale))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        if self.image is None:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
            painter.drawImage(self.target_rect(), self.image)
        painter.end()

    def mouseReleaseEvent(self, event) -> None:
        rect = self.target_rect()
        if event.button() != Qt.MouseButton.LeftButton or self.geometry_ is None or rect.isEmpty():
            return
        scale = rect.width() / self.image.width()
        pos = event.position()
        index = self.geometry_.cell_at((pos.x() - rect.x()) / scale, (pos.y() - rect.y()) / scale)
        if index is not None:
            self.cell_clicked.emit(index)


class EnlargedImage(QDialog):
    """One image of the grid, large and pixel-exact, with its step and index."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("enlarged")
        self.setAccessibleName("Enlarged sample")
        self.picture = _named(QLabel(), "enlarged_picture", "Enlarged sample image")
        self.caption = _named(QLabel(), "enlarged_caption", "Enlarged sample step and index")
        for label in (self.picture, self.caption):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)
        self.step: int | None = None
        self.index: int | None = None

    def show_image(self, image: np.ndarray, step: int, index: int, n: int) -> None:
        self.step, self.index = step, index
        h, w = image.shape[:2]
        zoom = max(1, 384 // max(h, w))  # an integer factor keeps every pixel the same size
        pixmap = QPixmap.fromImage(to_qimage(image))
        self.picture.setPixmap(pixmap.scaled(w * zoom, h * zoom, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation))
        self.caption.setText(f"step {step:,} · image {index + 1} of {n}")
        self.setWindowTitle(f"Sample {index + 1} at step {step:,}")


class SampleGallery(QWidget):
    """The current sample grid, a timeline slider over every snapshot, and an enlarge-on-click dialog."""

    image_clicked = Signal(int, int)  # (snapshot step, image index)

    def __init__(self, parent=None, max_in_memory: int = 32):
        super().__init__(parent)
        self.setObjectName("sample_gallery")
        self.setAccessibleName("Sample gallery")
        self.max_in_memory = max(1, max_in_memory)
        self._snapshots: list[Snapshot] = []  # sorted by step
        self._decoded: OrderedDict[Snapshot, np.ndarray] = OrderedDict()  # LRU of grids, newest last
        self._shown: Snapshot | None = None
        self._hint: tuple[int | None, int | None] = (None, None)  # (image size, n) from live snapshots
        self._layouts: dict[tuple[int, int], GridGeometry] = {}  # (width, height) -> layout
        self._dialog: EnlargedImage | None = None
        self.view = GridView()
        self.view.cell_clicked.connect(self._on_cell_clicked)
        self.timeline = _named(QSlider(Qt.Orientation.Horizontal), "timeline", "Sample timeline")
        self.timeline.setToolTip("Scroll back through the samples; at the right end it follows the newest")
        self.timeline.setRange(0, 0)
        self.timeline.setEnabled(False)
        self.timeline.valueChanged.connect(self._on_timeline)
        self.label = _named(QLabel("no samples yet"), "timeline_label", "Shown snapshot")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.label)

    # --- public API -------------------------------------------------------------------------------
    def add_snapshot(self, step: int, images: np.ndarray | None, path: Path | None = None) -> None:
        """A new grid: uint8 (N, H, W, C) images, and/or the PNG it was saved to (read when shown).

        It is shown if the timeline was at the newest; otherwise the shown one stays put.
        """
        if images is None and path is None:
            raise ValueError("add_snapshot needs the images, the path of their grid PNG, or both")
        follow = self._following()
        grid = geometry = None
        if images is not None:
            images = _checked_images(images)
            grid = make_grid(images)
            n, h, w, _ = images.shape
            geometry = GridGeometry.of(n, h, w)
            self._hint = (h if h == w else None, n)
            self._layouts[(geometry.width, geometry.height)] = geometry
        snapshot = Snapshot(int(step), Path(path) if path is not None else None, geometry)
        self._insert(snapshot)
        if grid is not None:
            self._remember(snapshot, grid)
        self._refresh(follow)

    def load_run(self, samples_dir: Path) -> None:
        """Rebuild the history from a run folder's samples/step_NNNNNN.png (decoded lazily)."""
        self.clear()
        found = []
        for path in Path(samples_dir).glob("step_*.png"):
            match = STEP_FILE.search(path.name)
            if match:
                found.append((int(match.group(1)), path))
        self._snapshots = [Snapshot(step, path) for step, path in sorted(found)]
        self._refresh(follow=True)

    def clear(self) -> None:
        self._snapshots.clear()
        self._decoded.clear()
        self._layouts.clear()
        self._hint = (None, None)
        self._shown = None
        if self._dialog is not None:
            self._dialog.hide()
        self._refresh(follow=True)

    def snapshot_count(self) -> int:
        return len(self._snapshots)

    def current_step(self) -> int | None:
        return self._shown.step if self._shown is not None else None

    def show_index(self, i: int) -> None:
        """Show snapshot ``i`` (0 = oldest), exactly as moving the slider does."""
        self.timeline.setValue(i)

    def steps(self) -> list[int]:
        return [s.step for s in self._snapshots]

    def decoded_count(self) -> int:
        """How many decoded grids are held in memory (at most ``max_in_memory``)."""
        return len(self._decoded)

    # --- history and memory -----------------------------------------------------------------------
    def _following(self) -> bool:
        return not self._snapshots or self.timeline.value() == self.timeline.maximum()

    def _insert(self, snapshot: Snapshot) -> None:
        """Insert in step order; a snapshot of the same step (sample-now while paused) replaces it."""
        for i, old in enumerate(self._snapshots):
            if old.step == snapshot.step:
                self._decoded.pop(old, None)
                self._snapshots[i] = snapshot
                return
            if old.step > snapshot.step:
                self._snapshots.insert(i, snapshot)
                return
        self._snapshots.append(snapshot)

    def _remember(self, snapshot: Snapshot, grid: np.ndarray) -> None:
        self._decoded[snapshot] = grid
        self._decoded.move_to_end(snapshot)
        while len(self._decoded) > self.max_in_memory:
            pathless = [s for s in self._snapshots if s.path is None]
            if len(pathless) > self.max_in_memory:
                # No run folder to read it back from: history without one keeps only the newest
                # max_in_memory snapshots, and the oldest is forgotten.
                victim = pathless[0]
                self._snapshots.remove(victim)
            else:  # the least recently used grid that can be re-read from its file
                victim = next(s for s in self._decoded if s.path is not None)
            del self._decoded[victim]

    def _grid(self, snapshot: Snapshot) -> np.ndarray | None:
        """The decoded grid, from memory or re-read from its PNG (None if the file is gone)."""
        grid = self._decoded.get(snapshot)
        if grid is not None:
            self._decoded.move_to_end(snapshot)
            return grid
        if snapshot.path is None:
            return None
        try:
            grid = read_grid(snapshot.path)
        except (OSError, ValueError):
            return None
        if snapshot.geometry is None:
            snapshot.geometry = self._layout_of(grid)
        self._remember(snapshot, grid)
        return grid

    def _layout_of(self, grid: np.ndarray) -> GridGeometry:
        key = (grid.shape[1], grid.shape[0])
        if key not in self._layouts:
            image_size, n = self._hint
            self._layouts[key] = infer_geometry(*key, image_size=image_size, n=n, grid=grid)
        return self._layouts[key]

    # --- view -------------------------------------------------------------------------------------
    def _refresh(self, follow: bool) -> None:
        """Fit the slider to the history; show the newest when following, else keep the shown one."""
        count = len(self._snapshots)
        if follow or self._shown is None:
            index = count - 1
        else:  # by step: the shown one may have been replaced; if it was forgotten, the oldest
            index = next((i for i, s in enumerate(self._snapshots) if s.step == self._shown.step), 0)
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, max(count - 1, 0))
        self.timeline.setValue(max(index, 0))
        self.timeline.setEnabled(count > 1)
        self.timeline.blockSignals(False)
        self._show(index)

    @Slot(int)
    def _on_timeline(self, index: int) -> None:
        self._show(index)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self._snapshots):
            self._shown = None
            self.view.set_grid(None, None, "no samples yet")
            self.label.setText("no samples yet")
            return
        snapshot = self._snapshots[index]
        self.label.setText(f"step {snapshot.step:,} ({index + 1} / {len(self._snapshots)})")
        if snapshot is self._shown and self.view.image is not None:
            return
        self._shown = snapshot
        grid = self._grid(snapshot)
        if grid is None:
            self.view.set_grid(None, None, f"{snapshot.path} could not be read")
        else:
            self.view.set_grid(to_qimage(grid), snapshot.geometry)

    @Slot(int)
    def _on_cell_clicked(self, index: int) -> None:
        snapshot = self._shown
        grid = self._grid(snapshot) if snapshot is not None else None
        if grid is None or snapshot.geometry is None:
            return
        if self._dialog is None:
            self._dialog = EnlargedImage(self)
        self._dialog.show_image(snapshot.geometry.crop(grid, index), snapshot.step, index, snapshot.geometry.n)
        self._dialog.show()
        self._dialog.raise_()
        self.image_clicked.emit(snapshot.step, index)


def _named(widget, object_name: str, accessible_name: str):
    widget.setObjectName(object_name)
    widget.setAccessibleName(accessible_name)
    return widget


def _checked_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ValueError(f"samples must be uint8 (N, H, W, C) with C 1 or 3, got {images.dtype} {images.shape}")
    return images
