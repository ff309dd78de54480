"""The sample gallery: the grid of images from fixed noise, growing with the run, and its history.

History lives on disk (the run folder's samples/step_NNNNNN.png grids, and for autoencoders and VAEs
samples/recon_NNNNNN.png, held-out images beside their reconstructions); only the last few snapshots'
decoded grids are kept in memory (an LRU) and older ones are read back from their files when shown. A
click on an image opens it large. A snapshot's ``columns`` sets the images per row (a cgan: one row per
class); reconstructions, when a run has them, show under the samples for the same step.

The grid layout and reading it back from a PNG are in ``grid_layout.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from ganstudio.gui.grid_layout import (
    RECON_FILE,
    STEP_FILE,
    GridGeometry,
    infer_geometry,
    make_grid,
    pair_columns,
    read_grid,
)

SAMPLES, RECON = "samples", "recon"  # the two grids a snapshot may have
RECON_TITLE = "held-out images | reconstructions"


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
    has_recon: bool = False               # held-out images and their reconstructions at this step
    recon_path: Path | None = None        # samples/recon_NNNNNN.png
    recon_geometry: GridGeometry | None = None

    def file(self, kind: str) -> Path | None:
        return self.path if kind == SAMPLES else self.recon_path

    def rereadable(self) -> bool:
        """Whether every grid it has can be read back from a file, so its decoded grids may be dropped."""
        return self.path is not None and (not self.has_recon or self.recon_path is not None)


class GridView(QWidget):
    """Paints one grid scaled to fit, aspect kept, nearest neighbour; reports the image clicked."""

    cell_clicked = Signal(int)

    def __init__(self, parent=None, name: str = "sample_grid", accessible: str = "Sample grid"):
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(accessible)
        self.setMinimumSize(120, 80)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image: QImage | None = None
        self.geometry_: GridGeometry | None = None
        self.message = "no samples yet"
        self.pairs = False  # (real, reconstruction) pairs: a gap in the window's colour between pairs

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
            rect = self.target_rect()
            painter.drawImage(rect, self.image)
            geo = self.geometry_
            if self.pairs and geo is not None and geo.pad:
                # the padding between two pairs in the window's colour, so the pairs read as pairs;
                # only padding is painted: no image pixel is covered
                scale = rect.width() / self.image.width()
                gap = self.palette().color(self.backgroundRole())
                for col in range(2, geo.ncol, 2):
                    x = rect.x() + col * (geo.cell_w + geo.pad) * scale
                    painter.fillRect(QRectF(x, rect.y(), geo.pad * scale, rect.height()), gap)
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

    def show_image(self, image: np.ndarray, step: int, index: int, n: int, what: str = "") -> None:
        """``what`` names the image in the caption; by default "image i of n" (a sample)."""
        self.step, self.index = step, index
        h, w = image.shape[:2]
        zoom = max(1, 384 // max(h, w))  # an integer factor keeps every pixel the same size
        pixmap = QPixmap.fromImage(to_qimage(image))
        self.picture.setPixmap(pixmap.scaled(w * zoom, h * zoom, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation))
        self.caption.setText(f"step {step:,} · {what or f'image {index + 1} of {n}'}")
        self.setWindowTitle(f"{(what or f'sample {index + 1}').capitalize()} at step {step:,}")


class SampleGallery(QWidget):
    """The current sample grid (and reconstructions, when the run has them), a timeline slider over every
    snapshot, and an enlarge-on-click dialog."""

    image_clicked = Signal(int, int)  # (snapshot step, image index)

    def __init__(self, parent=None, max_in_memory: int = 32):
        super().__init__(parent)
        self.setObjectName("sample_gallery")
        self.setAccessibleName("Sample gallery")
        self.max_in_memory = max(1, max_in_memory)  # snapshots whose decoded grids are kept
        self._snapshots: list[Snapshot] = []  # sorted by step
        self._decoded: OrderedDict[Snapshot, dict[str, np.ndarray]] = OrderedDict()  # LRU, newest last
        self._shown: Snapshot | None = None
        # per kind, (image size, n, ncol) from live snapshots: hints for reading PNGs back
        self._hints: dict[str, tuple[int | None, int | None, int | None]] = {}
        self._layouts: dict[tuple[str, int, int], GridGeometry] = {}  # (kind, width, height) -> layout
        self._dialog: EnlargedImage | None = None
        self.view = GridView()
        self.view.cell_clicked.connect(lambda i: self._on_cell_clicked(SAMPLES, i))
        self.recon_view = GridView(name="reconstruction_grid", accessible="Reconstruction grid")
        self.recon_view.pairs = True
        self.recon_view.setToolTip("Held-out images (left of each pair) and the model's reconstructions "
                                   "(right), at the step shown")
        self.recon_view.cell_clicked.connect(lambda i: self._on_cell_clicked(RECON, i))
        self.recon_title = _named(QLabel(RECON_TITLE), "reconstruction_title", "Reconstructions title")
        self.samples_title = _named(QLabel("samples"), "samples_title", "Samples title")
        recon_box = QWidget(objectName="reconstructions")
        box = QVBoxLayout(recon_box)
        box.setContentsMargins(0, 4, 0, 0)
        box.addWidget(self.recon_title)
        box.addWidget(self.recon_view, 1)
        samples_box = QWidget(objectName="samples")
        box = QVBoxLayout(samples_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.samples_title)
        box.addWidget(self.view, 1)
        for title in (self.samples_title, self.recon_title):
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.splitter = QSplitter(Qt.Orientation.Vertical, objectName="gallery_views", childrenCollapsible=False)
        self.splitter.addWidget(samples_box)
        self.splitter.addWidget(recon_box)
        self.splitter.setStretchFactor(0, 3)  # a pair grid is twice as wide as tall: it needs less height
        self.splitter.setStretchFactor(1, 2)
        self._recon_box = recon_box
        self.timeline = _named(QSlider(Qt.Orientation.Horizontal), "timeline", "Sample timeline")
        self.timeline.setToolTip("Scroll back through the samples; at the right end it follows the newest")
        self.timeline.setRange(0, 0)
        self.timeline.setEnabled(False)
        self.timeline.valueChanged.connect(self._on_timeline)
        self.label = _named(QLabel("no samples yet"), "timeline_label", "Shown snapshot")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.label)
        self._set_recon_visible(False)

    # --- public API -------------------------------------------------------------------------------
    def add_snapshot(self, step: int, images: np.ndarray | None, path: Path | None = None, *,
                     columns: int | None = None, reconstructions: np.ndarray | None = None,
                     recon_path: Path | None = None) -> None:
        """A new grid: uint8 (N, H, W, C) images, and/or the PNG it was saved to (read when shown).

        ``columns``: images per row (None = a square grid). ``reconstructions``: uint8 (2n, H, W, C),
        held-out images and their reconstructions interleaved (real, recon, real, …), shown as pairs;
        ``recon_path`` their PNG (default: samples/recon_NNNNNN.png beside ``path``).
        It is shown if the timeline was at the newest; otherwise the shown one stays put.
        """
        if images is None and path is None:
            raise ValueError("add_snapshot needs the images, the path of their grid PNG, or both")
        follow = self._following()
        path = Path(path) if path is not None else None
        snapshot = Snapshot(int(step), path)
        grids = {}
        if images is not None:
            grids[SAMPLES], snapshot.geometry = self._laid_out(SAMPLES, _checked_images(images), columns)
        if reconstructions is not None or recon_path is not None:
            snapshot.has_recon = True
            snapshot.recon_path = Path(recon_path) if recon_path is not None else _recon_file(path)
        if reconstructions is not None:
            pairs = _checked_images(reconstructions)
            grids[RECON], snapshot.recon_geometry = self._laid_out(RECON, pairs, pair_columns(len(pairs) // 2))
        self._insert(snapshot)
        for kind, grid in grids.items():
            self._remember(snapshot, kind, grid)
        self._refresh(follow)

    def add_samples(self, samples) -> None:
        """A ``Samples`` event from the engine (step, images, path, columns, reconstructions)."""
        self.add_snapshot(samples.step, samples.images, samples.path, columns=getattr(samples, "columns", None),
                          reconstructions=getattr(samples, "reconstructions", None))

    def load_run(self, samples_dir: Path) -> None:
        """Rebuild the history from a run folder's samples/step_NNNNNN.png and recon_NNNNNN.png (decoded
        lazily); reconstructions without a sample grid of their step are left out."""
        self.clear()
        grids, recons = {}, {}
        folder = Path(samples_dir)
        for path in folder.iterdir() if folder.is_dir() else ():
            if match := STEP_FILE.match(path.name):
                grids[int(match.group(1))] = path
            elif match := RECON_FILE.match(path.name):
                recons[int(match.group(1))] = path
        self._snapshots = [Snapshot(step, path, has_recon=step in recons, recon_path=recons.get(step))
                           for step, path in sorted(grids.items())]
        self._refresh(follow=True)

    def clear(self) -> None:
        self._snapshots.clear()
        self._decoded.clear()
        self._layouts.clear()
        self._hints.clear()
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
        """How many snapshots' decoded grids are held in memory (at most ``max_in_memory``)."""
        return len(self._decoded)

    def has_reconstructions(self) -> bool:
        """Whether the reconstruction view is shown (some snapshot of this run has reconstructions)."""
        return not self._recon_box.isHidden()

    # --- history and memory -----------------------------------------------------------------------
    def _laid_out(self, kind: str, images: np.ndarray, ncol: int | None) -> tuple[np.ndarray, GridGeometry]:
        n, h, w, _ = images.shape
        geometry = GridGeometry.of(n, h, w, ncol)
        self._hints[kind] = (h if h == w else None, n, geometry.ncol)
        self._layouts[(kind, geometry.width, geometry.height)] = geometry
        return make_grid(images, geometry.ncol), geometry

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

    def _remember(self, snapshot: Snapshot, kind: str, grid: np.ndarray) -> None:
        self._decoded.setdefault(snapshot, {})[kind] = grid
        self._decoded.move_to_end(snapshot)
        while len(self._decoded) > self.max_in_memory:
            pathless = [s for s in self._snapshots if not s.rereadable()]
            if len(pathless) > self.max_in_memory:
                # No run folder to read it back from: history without one keeps only the newest
                # max_in_memory snapshots, and the oldest is forgotten.
                victim = pathless[0]
                self._snapshots.remove(victim)
            else:  # the least recently used snapshot whose grids can be re-read from their files
                victim = next(s for s in self._decoded if s.rereadable())
            del self._decoded[victim]

    def _grid(self, snapshot: Snapshot, kind: str = SAMPLES) -> np.ndarray | None:
        """A decoded grid, from memory or re-read from its PNG (None if there is none or it is gone)."""
        grid = self._decoded.get(snapshot, {}).get(kind)
        if grid is not None:
            self._decoded.move_to_end(snapshot)
            return grid
        path = snapshot.file(kind)
        if path is None:
            return None
        try:
            grid = read_grid(path)
        except (OSError, ValueError):
            return None
        if kind == SAMPLES and snapshot.geometry is None:
            snapshot.geometry = self._layout_of(kind, grid)
        elif kind == RECON and snapshot.recon_geometry is None:
            snapshot.recon_geometry = self._layout_of(kind, grid)
        self._remember(snapshot, kind, grid)
        return grid

    def _layout_of(self, kind: str, grid: np.ndarray) -> GridGeometry:
        key = (kind, grid.shape[1], grid.shape[0])
        if key not in self._layouts:
            image_size, n, ncol = self._hints.get(kind, (None, None, None))
            self._layouts[key] = infer_geometry(*key[1:], image_size=image_size, n=n, grid=grid, ncol=ncol,
                                                pairs=kind == RECON)
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
        self._set_recon_visible(any(s.has_recon for s in self._snapshots))
        self._show(index)

    def _set_recon_visible(self, visible: bool) -> None:
        self._recon_box.setVisible(visible)
        self.samples_title.setVisible(visible)  # one grid needs no title; two do

    @Slot(int)
    def _on_timeline(self, index: int) -> None:
        self._show(index)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self._snapshots):
            self._shown = None
            self.view.set_grid(None, None, "no samples yet")
            self.recon_view.set_grid(None, None, "no reconstructions yet")
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
        recon = self._grid(snapshot, RECON) if snapshot.has_recon else None
        if recon is not None:
            self.recon_view.set_grid(to_qimage(recon), snapshot.recon_geometry)
        else:
            missing = f"{snapshot.recon_path} could not be read" if snapshot.has_recon else "no reconstructions"
            self.recon_view.set_grid(None, None, f"{missing} at step {snapshot.step:,}")

    def _on_cell_clicked(self, kind: str, index: int) -> None:
        snapshot = self._shown
        grid = self._grid(snapshot, kind) if snapshot is not None else None
        geometry = None if snapshot is None else snapshot.geometry if kind == SAMPLES else snapshot.recon_geometry
        if grid is None or geometry is None:
            return
        if self._dialog is None:
            self._dialog = EnlargedImage(self)
        what = ""
        if kind == RECON:
            pair, side = divmod(index, 2)
            what = f"{'reconstruction of held-out image' if side else 'held-out image'} {pair + 1} of {geometry.n // 2}"
        self._dialog.show_image(geometry.crop(grid, index), snapshot.step, index, geometry.n, what)
        self._dialog.show()
        self._dialog.raise_()
        if kind == SAMPLES:
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


def _recon_file(path: Path | None) -> Path | None:
    """samples/recon_NNNNNN.png beside a samples/step_NNNNNN.png (where the run folder writes it)."""
    if path is None or not (match := STEP_FILE.match(path.name)):
        return None
    return path.with_name(f"recon_{match.group(1)}.png")
