"""The sample gallery: the grid of images from fixed noise, growing with the run, and its history.

History lives on disk (the run folder's sample grids, and for autoencoders and VAEs held-out images
beside their reconstructions, each laid out as its row of samples/index.jsonl says); only the last few
snapshots' decoded grids are kept in memory (an LRU) and older ones are read back from their files when
shown. A click on an image opens it large. A snapshot's ``columns`` sets the images per row (a cgan: one
row per class, its name left of the row and in the enlarged image's caption, from ``set_class_names``);
reconstructions, when a run has them, show under the samples for the same step.

The grid and enlarged-image widgets are in ``grid_view.py``; the layout itself is ``ganstudio.grids``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from ganstudio.grids import GridGeometry, pair_columns, read_grid, tile
from ganstudio.gui.grid_view import EnlargedImage, GridView, named, to_qimage

__all__ = ["RECON_TITLE", "EnlargedImage", "GridView", "SampleGallery", "Snapshot", "to_qimage"]

SAMPLES, RECON = "samples", "recon"  # the two grids a snapshot may have
RECON_TITLE = "held-out images | reconstructions"


@dataclass(eq=False)  # compared by identity: the LRU is keyed by the snapshot itself
class Snapshot:
    step: int
    path: Path | None
    geometry: GridGeometry | None = None  # known once the images or the decoded PNG were seen
    has_recon: bool = False               # held-out images and their reconstructions at this step
    recon_path: Path | None = None        # their PNG, as the run folder names it
    recon_geometry: GridGeometry | None = None
    row_classes: tuple[int, ...] | None = None  # a cgan grid's class per row

    def file(self, kind: str) -> Path | None:
        return self.path if kind == SAMPLES else self.recon_path

    def rereadable(self) -> bool:
        """Whether every grid it has can be read back from a file, so its decoded grids may be dropped."""
        return self.path is not None and (not self.has_recon or self.recon_path is not None)


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
        # (kind, width, height) -> the layout of the last live grid of that pixel size: a grid given only
        # as a file (no images, no index row) is laid out like it
        self._layouts: dict[tuple[str, int, int], GridGeometry] = {}
        self._dialog: EnlargedImage | None = None
        self.class_names: list[str] = []  # a cgan run's, by class number; numbers stand in for missing ones
        self.view = GridView()
        self.view.cell_clicked.connect(lambda i: self._on_cell_clicked(SAMPLES, i))
        self.recon_view = GridView(name="reconstruction_grid", accessible="Reconstruction grid")
        self.recon_view.pairs = True
        self.recon_view.setToolTip("Held-out images (left of each pair) and the model's reconstructions "
                                   "(right), at the step shown")
        self.recon_view.cell_clicked.connect(lambda i: self._on_cell_clicked(RECON, i))
        self.recon_title = named(QLabel(RECON_TITLE), "reconstruction_title", "Reconstructions title")
        self.samples_title = named(QLabel("samples"), "samples_title", "Samples title")
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
        self.timeline = named(QSlider(Qt.Orientation.Horizontal), "timeline", "Sample timeline")
        self.timeline.setToolTip("Scroll back through the samples; at the right end it follows the newest")
        self.timeline.setRange(0, 0)
        self.timeline.setEnabled(False)
        self.timeline.valueChanged.connect(self._on_timeline)
        self.label = named(QLabel("no samples yet"), "timeline_label", "Shown snapshot")
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
                     recon_path: Path | None = None, row_classes: Iterable[int] | None = None) -> None:
        """A new grid: uint8 (N, H, W, C) images, and/or the PNG it was saved to (read when shown).

        ``columns``: images per row (None = a square grid); ``row_classes``: a cgan grid's class per row.
        ``reconstructions``: uint8 (2n, H, W, C), held-out images and their reconstructions interleaved
        (real, recon, real, …), shown as pairs; ``recon_path`` their PNG. Without it they stay in memory,
        so the snapshot counts as one without files.
        It is shown if the timeline was at the newest; otherwise the shown one stays put.
        """
        if images is None and path is None:
            raise ValueError("add_snapshot needs the images, the path of their grid PNG, or both")
        follow = self._following()
        path = Path(path) if path is not None else None
        classes = tuple(int(k) for k in row_classes) if row_classes is not None else None
        snapshot = Snapshot(int(step), path, row_classes=classes)
        grids = {}
        if images is not None:
            grids[SAMPLES], snapshot.geometry = self._laid_out(SAMPLES, _checked_images(images), columns)
        if reconstructions is not None or recon_path is not None:
            snapshot.has_recon = True
            snapshot.recon_path = Path(recon_path) if recon_path is not None else None
        if reconstructions is not None:
            pairs = _checked_images(reconstructions)
            grids[RECON], snapshot.recon_geometry = self._laid_out(RECON, pairs, pair_columns(len(pairs) // 2))
        self._insert(snapshot)
        for kind, grid in grids.items():
            self._remember(snapshot, kind, grid)
        self._refresh(follow)

    def add_samples(self, samples) -> None:
        """A ``Samples`` event from the engine (step, images, paths, columns, row classes, reconstructions)."""
        self.add_snapshot(samples.step, samples.images, samples.path, columns=samples.columns,
                          reconstructions=samples.reconstructions,
                          recon_path=getattr(samples, "reconstructions_path", None),
                          row_classes=getattr(samples, "row_classes", None))

    def load_run(self, records) -> None:
        """Rebuild the history from a run folder's sample records (``RunDir.sample_index()``: each grid's
        file, step, kind and layout), decoded lazily; reconstructions without a sample grid of their step
        are left out. A folder (the run's, or its samples/) is read through ``read_sample_index``."""
        if isinstance(records, (str, Path)):
            from ganstudio.engine.rundir import read_sample_index  # noqa: PLC0415 - only for a folder

            records = read_sample_index(records)
        self.clear()
        grids, recons = {}, {}
        for record in records:
            (grids if record.kind == "samples" else recons)[record.step] = record
        self._snapshots = []
        for step, record in sorted(grids.items()):
            recon = recons.get(step)
            self._snapshots.append(Snapshot(
                step, record.path, record.geometry(), has_recon=recon is not None,
                recon_path=recon.path if recon else None, recon_geometry=recon.geometry() if recon else None,
                row_classes=record.row_classes))
        self._refresh(follow=True)

    def clear(self) -> None:
        self._snapshots.clear()
        self._decoded.clear()
        self._layouts.clear()
        self._shown = None
        if self._dialog is not None:
            self._dialog.hide()
        self._refresh(follow=True)

    def set_class_names(self, names: Iterable[str] | None) -> None:
        """The run's class names (``export_checks.class_names``), for the rows of a conditional grid."""
        self.class_names = list(names or [])
        if self._shown is not None and self.view.image is not None:
            self.view.set_grid(self.view.image, self.view.geometry_, row_labels=self._row_labels(self._shown))

    def class_name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else f"class {k}"

    def _row_labels(self, snapshot: Snapshot) -> list[str]:
        return [self.class_name(k) for k in snapshot.row_classes or ()]

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
        self._layouts[(kind, geometry.width, geometry.height)] = geometry
        return tile(images, geometry.ncol), geometry

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
        """A file-only grid's layout: a live grid's of the same pixel size, else the whole grid as one image."""
        height, width = grid.shape[:2]
        return self._layouts.get((kind, width, height)) or GridGeometry(1, 1, 1, height, width, 0)

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
            self.view.set_grid(to_qimage(grid), snapshot.geometry, row_labels=self._row_labels(snapshot))
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
        elif snapshot.row_classes and index // geometry.ncol < len(snapshot.row_classes):
            k = snapshot.row_classes[index // geometry.ncol]
            name = self.class_name(k)
            what = f"image {index + 1} of {geometry.n}, class {k}" + (f" ({name})" if name != f"class {k}" else "")
        self._dialog.show_image(geometry.crop(grid, index), snapshot.step, index, geometry.n, what)
        self._dialog.show()
        self._dialog.raise_()
        if kind == SAMPLES:
            self.image_clicked.emit(snapshot.step, index)


def _checked_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ValueError(f"samples must be uint8 (N, H, W, C) with C 1 or 3, got {images.dtype} {images.shape}")
    return images
