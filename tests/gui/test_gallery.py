"""SampleGallery: history and timeline, run folders, the in-memory bound, click to enlarge; grid layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from ganstudio.engine.sample_index import infer_geometry
from ganstudio.grids import GridGeometry, pair_columns
from ganstudio.grids import tile as make_grid
from ganstudio.gui.gallery import RECON_TITLE, SampleGallery


def images_for(step: int, n: int = 16, size: int = 28, channels: int = 1) -> np.ndarray:
    """Never-black images whose pixels say which step and image they are: value 40 + step + index."""
    values = (40 + step + np.arange(n)) % 256
    return np.broadcast_to(values[:, None, None, None], (n, size, size, channels)).astype(np.uint8)


def shapes(n: int, size: int, seed: int) -> np.ndarray:
    """Coloured discs on dark backgrounds, to look at in the screenshot."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(size * 0.3, size * 0.7, 2).tolist() + [rng.uniform(size * 0.15, size * 0.4)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        out[i] = rng.integers(10, 50, 3)
        out[i][disc] = rng.integers(90, 256, 3)
    return out


def write_grid(folder, step: int, images: np.ndarray, ncol: int | None = None, prefix: str = "step"):
    """A grid PNG as the run folder holds it: RGB, make_grid layout, step_NNNNNN.png (or recon_…)."""
    grid = make_grid(images, ncol)
    if grid.shape[2] == 1:
        grid = np.repeat(grid, 3, axis=2)  # torchvision's make_grid turns greyscale into RGB
    path = folder / f"{prefix}_{step:06d}.png"
    Image.fromarray(grid).save(path)
    return path


def make_gallery(qtbot, **kwargs) -> SampleGallery:
    widget = SampleGallery(**kwargs)
    qtbot.addWidget(widget)
    widget.resize(420, 480)
    return widget


@pytest.fixture
def gallery(qtbot):
    return make_gallery(qtbot)


@pytest.fixture
def small(qtbot):
    """A gallery that keeps only 4 decoded grids in memory."""
    return make_gallery(qtbot, max_in_memory=4)


def shown_value(gallery, index: int) -> int:
    """The grey value painted in the middle of image ``index`` of the shown grid."""
    geo = gallery.view.geometry_
    x, y = geo.origin(index)
    return gallery.view.image.pixelColor(x + geo.cell_w // 2, y + geo.cell_h // 2).red()


# --- the widget -------------------------------------------------------------------------------------
def test_snapshots_grow_the_timeline_and_the_newest_is_shown(gallery):
    assert gallery.snapshot_count() == 0 and gallery.current_step() is None
    for k in range(5):
        gallery.add_snapshot(250 * k, images_for(k))
    assert gallery.snapshot_count() == 5
    assert (gallery.timeline.minimum(), gallery.timeline.maximum(), gallery.timeline.value()) == (0, 4, 4)
    assert gallery.current_step() == 1000
    assert gallery.label.text() == "step 1,000 (5 / 5)"
    assert shown_value(gallery, 3) == 40 + 4 + 3
    gallery.add_snapshot(1250, images_for(5))
    assert gallery.current_step() == 1250 and gallery.label.text() == "step 1,250 (6 / 6)"


def test_scrolled_back_stays_put_while_the_range_grows(gallery):
    for k in range(4):
        gallery.add_snapshot(100 * k, images_for(k))
    gallery.show_index(1)
    assert gallery.current_step() == 100 and gallery.timeline.value() == 1
    gallery.add_snapshot(400, images_for(4))
    assert gallery.current_step() == 100 and gallery.timeline.maximum() == 4
    assert gallery.label.text() == "step 100 (2 / 5)"
    assert shown_value(gallery, 0) == 40 + 1
    gallery.timeline.setValue(gallery.timeline.maximum())  # back at the end: follows again
    gallery.add_snapshot(500, images_for(5))
    assert gallery.current_step() == 500


def test_load_run_restores_history_in_step_order(gallery, tmp_path):
    for step in (1200, 0, 40, 400):  # written out of order; one unrelated file
        write_grid(tmp_path, step, images_for(step // 40, n=10))
    (tmp_path / "notes.txt").write_text("not a sample")
    gallery.load_run(tmp_path)
    assert gallery.snapshot_count() == 4 and gallery.steps() == [0, 40, 400, 1200]
    assert gallery.current_step() == 1200 and gallery.label.text() == "step 1,200 (4 / 4)"
    assert gallery.view.geometry_ == GridGeometry.of(10, 28, 28)
    gallery.show_index(1)
    assert gallery.current_step() == 40 and shown_value(gallery, 2) == 40 + 1 + 2
    gallery.clear()
    assert gallery.snapshot_count() == 0 and gallery.label.text() == "no samples yet"


def test_memory_is_bounded_and_every_snapshot_stays_viewable(small, tmp_path):
    gallery = small
    for k in range(10):  # a live run: images and the file they were saved to
        gallery.add_snapshot(k, images_for(k), write_grid(tmp_path, k, images_for(k)))
        assert gallery.decoded_count() <= gallery.max_in_memory
    for k in reversed(range(10)):
        gallery.show_index(k)
        assert gallery.decoded_count() <= gallery.max_in_memory
        assert gallery.current_step() == k and shown_value(gallery, 0) == 40 + k
    gallery.show_index(9)  # back at the newest, so the next one is shown
    gallery.add_snapshot(10, None, write_grid(tmp_path, 10, images_for(10)))  # watching a folder: file only
    assert gallery.current_step() == 10 and shown_value(gallery, 1) == 40 + 10 + 1
    gallery.load_run(tmp_path)  # reopened: nothing decoded until shown, then at most 4
    assert gallery.snapshot_count() == 11 and gallery.decoded_count() == 1
    for k in [0, 5, 1, 9, 2, 3, 4, 8, 0, 10]:
        gallery.show_index(k)
        assert gallery.decoded_count() <= gallery.max_in_memory
        assert gallery.current_step() == k and shown_value(gallery, 15) == 40 + k + 15


def test_without_files_only_the_newest_are_kept(small):
    gallery = small
    for k in range(7):
        gallery.add_snapshot(k, images_for(k))
    assert gallery.snapshot_count() == gallery.max_in_memory == gallery.decoded_count()
    assert gallery.steps() == [3, 4, 5, 6]
    assert gallery.label.text() == "step 6 (4 / 4)"


def test_clicking_an_image_enlarges_it(qtbot, gallery):
    gallery.add_snapshot(300, images_for(7, n=10))
    gallery.show()
    qtbot.waitExposed(gallery)
    geo = gallery.view.geometry_
    x, y = geo.origin(6)
    pos = gallery.view.widget_pos(x + geo.cell_w / 2, y + geo.cell_h / 2)
    with qtbot.waitSignal(gallery.image_clicked, timeout=1000) as blocker:
        qtbot.mouseClick(gallery.view, Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [300, 6]
    dialog = gallery.findChild(QDialog, "enlarged")
    assert dialog is not None and dialog.isVisible() and (dialog.step, dialog.index) == (300, 6)
    picture = dialog.picture.pixmap().toImage()
    assert picture.width() == 28 * (384 // 28) and picture.pixelColor(5, 5).red() == 40 + 7 + 6
    assert "image 7 of 10" in dialog.caption.text()
    dialog.close()
    padding = gallery.view.widget_pos(x - 1, y + 3)
    with qtbot.assertNotEmitted(gallery.image_clicked):
        qtbot.mouseClick(gallery.view, Qt.MouseButton.LeftButton, pos=padding)


def test_rejects_bad_images_and_names_widgets(gallery):
    with pytest.raises(ValueError, match="uint8"):
        gallery.add_snapshot(0, np.zeros((4, 8, 8, 3), dtype=np.float32))
    assert gallery.timeline.objectName() == "timeline" and gallery.timeline.accessibleName()
    assert gallery.view.objectName() and gallery.view.accessibleName()


def test_screenshot(qtbot, gallery, artifacts_dir):
    for k in range(12):
        gallery.add_snapshot(250 * k, shapes(16, 32, seed=k))
    gallery.show_index(9)
    gallery.show()
    qtbot.waitExposed(gallery)
    assert gallery.grab().save(str(artifacts_dir / "gallery.png"))
    geo = gallery.view.geometry_
    qtbot.mouseClick(gallery.view, Qt.MouseButton.LeftButton, pos=gallery.view.widget_pos(*geo.origin(5)))
    dialog = gallery.findChild(QDialog, "enlarged")
    assert dialog.grab().save(str(artifacts_dir / "gallery_enlarged.png"))
    dialog.close()


# --- columns and reconstructions ---------------------------------------------------------------------
def pairs_for(step: int, n: int = 8, size: int = 28) -> np.ndarray:
    """(real, reconstruction) interleaved: real i has value 100 + i, its reconstruction 200 + i."""
    values = np.stack([100 + np.arange(n), 200 + np.arange(n)], axis=1).reshape(-1) + step % 20
    return np.broadcast_to(values[:, None, None, None], (2 * n, size, size, 1)).astype(np.uint8)


def test_columns_set_the_rows(gallery):
    gallery.add_snapshot(0, images_for(0, n=100), columns=10)  # a cgan: 10 classes x 10
    geo = gallery.view.geometry_
    assert (geo.ncol, geo.nrow, geo.n) == (10, 10, 100)
    gallery.add_snapshot(1, images_for(1, n=80), columns=8)  # 10 classes x 8: not a square layout
    geo = gallery.view.geometry_
    assert (geo.ncol, geo.nrow) == (8, 10)
    assert gallery.view.image.width() == geo.width == 8 * 30 + 2 and gallery.view.image.height() == 10 * 30 + 2
    assert shown_value(gallery, 8) == 40 + 1 + 8  # the first image of the second row
    gallery.add_snapshot(2, images_for(2, n=16))  # no columns: the square grid
    assert (gallery.view.geometry_.ncol, gallery.view.geometry_.nrow) == (4, 4)


def test_reconstructions_show_only_when_given(qtbot, gallery):
    gallery.show()
    qtbot.waitExposed(gallery)
    gallery.add_snapshot(0, images_for(0))
    assert not gallery.has_reconstructions() and not gallery.recon_view.isVisible()
    gallery.add_snapshot(100, images_for(1), reconstructions=pairs_for(100))
    assert gallery.has_reconstructions() and gallery.recon_view.isVisible()
    assert gallery.recon_title.text() == RECON_TITLE == "held-out images | reconstructions"
    geo = gallery.recon_view.geometry_
    assert (geo.n, geo.ncol, geo.nrow) == (16, pair_columns(8), 3) and geo.ncol % 2 == 0
    image = gallery.recon_view.image
    for index, value in [(0, 100), (1, 200), (2, 101), (3, 201), (15, 207)]:  # pairs side by side
        x, y = geo.origin(index)
        assert image.pixelColor(x + 5, y + 5).red() == value + 100 % 20
    gallery.show_index(0)  # a step without reconstructions says so
    assert gallery.recon_view.image is None and "no reconstructions at step 0" in gallery.recon_view.message
    gallery.clear()
    assert not gallery.has_reconstructions()


def test_clicking_a_reconstruction_enlarges_it(qtbot, gallery):
    gallery.add_snapshot(50, images_for(0), reconstructions=pairs_for(0, n=4))
    gallery.show()
    qtbot.waitExposed(gallery)
    geo = gallery.recon_view.geometry_
    x, y = geo.origin(3)
    with qtbot.assertNotEmitted(gallery.image_clicked):  # that signal is about samples
        qtbot.mouseClick(gallery.recon_view, Qt.MouseButton.LeftButton,
                         pos=gallery.recon_view.widget_pos(x + geo.cell_w / 2, y + geo.cell_h / 2))
    dialog = gallery.findChild(QDialog, "enlarged")
    assert dialog.isVisible() and "reconstruction of held-out image 2 of 4" in dialog.caption.text()
    assert dialog.picture.pixmap().toImage().pixelColor(3, 3).red() == 201
    dialog.close()


def test_add_samples_takes_the_engine_event(gallery):
    pytest.importorskip("torch")
    from ganstudio.engine.events import Samples

    gallery.add_samples(Samples(step=7, images=images_for(7, n=30), columns=10, reconstructions=pairs_for(7)))
    assert gallery.current_step() == 7 and gallery.view.geometry_.nrow == 3 and gallery.has_reconstructions()


def test_load_run_pairs_recon_files_with_their_steps(small, tmp_path):
    gallery = small
    for step in (0, 100, 200):
        write_grid(tmp_path, step, images_for(step % 7, n=80), ncol=8)
    for step in (100, 200, 300):  # step 300 has no sample grid: left out
        write_grid(tmp_path, step, pairs_for(step), ncol=pair_columns(8), prefix="recon")
    (tmp_path / "recon_notes.png").write_bytes(b"")  # neither a sample grid nor reconstructions
    gallery.load_run(tmp_path)
    assert gallery.steps() == [0, 100, 200] and gallery.has_reconstructions()
    geo = gallery.view.geometry_
    assert (geo.ncol, geo.nrow, geo.cell_w) == (8, 10, 28)  # read back from the PNG alone
    rgeo = gallery.recon_view.geometry_
    assert (rgeo.ncol, rgeo.nrow, rgeo.cell_w) == (pair_columns(8), 3, 28)
    x, y = rgeo.origin(1)
    assert gallery.recon_view.image.pixelColor(x + 3, y + 3).red() == 200 + 200 % 20
    gallery.show_index(0)
    assert gallery.recon_view.image is None
    for k in [1, 0, 2, 1]:
        gallery.show_index(k)
        assert gallery.decoded_count() <= gallery.max_in_memory


def test_live_reconstructions_are_reread_from_their_file(small, tmp_path):
    gallery = small
    for k in range(8):  # a live AE run: both grids in memory and on disk
        path = write_grid(tmp_path, k, images_for(k))
        recon = write_grid(tmp_path, k, pairs_for(k), ncol=pair_columns(8), prefix="recon")
        gallery.add_snapshot(k, images_for(k), path, reconstructions=pairs_for(k), recon_path=recon)
        assert gallery.decoded_count() <= gallery.max_in_memory
    assert gallery.snapshot_count() == 8
    gallery.show_index(0)  # long dropped from memory: read back from recon_000000.png
    geo = gallery.recon_view.geometry_
    x, y = geo.origin(2)
    assert gallery.recon_view.image.pixelColor(x + 3, y + 3).red() == 101


def test_screenshot_with_reconstructions(qtbot, gallery, artifacts_dir):
    for k in range(4):
        pairs = shapes(16, 32, seed=k)
        recon = pairs.copy()
        recon[1::2] = (0.6 * pairs[0::2] + 0.4 * pairs[0::2].mean()).astype(np.uint8)  # blurry copies
        gallery.add_snapshot(500 * k, shapes(36, 32, seed=10 + k), reconstructions=recon)
    gallery.resize(440, 640)
    gallery.show()
    qtbot.waitExposed(gallery)
    assert gallery.grab().save(str(artifacts_dir / "gallery_reconstructions.png"))
    gallery.clear()
    gallery.add_snapshot(0, shapes(100, 28, seed=3), columns=10)
    qtbot.waitUntil(lambda: gallery.view.height() > 500, timeout=1000)  # the samples take the freed space
    assert gallery.grab().save(str(artifacts_dir / "gallery_cgan.png"))


# --- the run folder's sample index -------------------------------------------------------------------
def test_an_index_driven_gallery_shows_the_cells_the_pixels_would_get_wrong(qtbot, gallery, tmp_path):
    from ganstudio.engine.rundir import RunDir
    from ganstudio.grids import read_grid

    run = RunDir(tmp_path / "run")
    run.create()
    dark = np.zeros((4, 58, 58, 1), dtype=np.uint8)  # dark 58 px images: a 122 px grid, as 4 x 4 of 28 px would be
    dark[:, 5:20, 5:20] = (60 + np.arange(4))[:, None, None, None]
    run.write_grid(0, dark)
    run.write_grid(10, images_for(1, n=15), columns=5, row_classes=[4, 7, 9])  # a cgan: a row per class
    records = run.sample_index()
    assert infer_geometry(122, 122, grid=read_grid(records[0].path)).cell_w == 28  # the guess is wrong
    gallery.load_run(records)
    assert gallery.steps() == [0, 10] and gallery.view.geometry_ == GridGeometry.of(15, 28, 28, 5)
    assert shown_value(gallery, 5) == 40 + 1 + 5  # the first image of the second row
    gallery.show_index(0)
    geo = gallery.view.geometry_
    assert geo == GridGeometry.of(4, 58, 58)
    for index in range(4):
        x, y = geo.origin(index)
        assert gallery.view.image.pixelColor(x + 10, y + 10).red() == 60 + index
    gallery.show_index(1)
    gallery.show()
    qtbot.waitExposed(gallery)
    x, y = gallery.view.geometry_.origin(6)
    qtbot.mouseClick(gallery.view, Qt.MouseButton.LeftButton, pos=gallery.view.widget_pos(x + 14, y + 14))
    dialog = gallery.findChild(QDialog, "enlarged")
    assert dialog.isVisible() and "image 7 of 15, class 7" in dialog.caption.text()
    dialog.close()


def test_samples_events_bring_their_reconstructions_file_and_classes(small, tmp_path):
    pytest.importorskip("torch")
    from ganstudio.engine.events import Samples
    from ganstudio.engine.rundir import RunDir

    gallery, run = small, RunDir(tmp_path / "run")
    run.create()
    for k in range(6):  # a live AE run: both grids in memory and on disk, as the loop reports them
        path, recon = run.write_grid(k, images_for(k)), run.write_reconstructions(k, pairs_for(k))
        gallery.add_samples(Samples(k, images_for(k), path, reconstructions=pairs_for(k), reconstructions_path=recon,
                                    row_classes=None))
    assert gallery.snapshot_count() == 6 and gallery.decoded_count() <= gallery.max_in_memory
    gallery.show_index(0)  # dropped from memory: both grids read back from their files
    x, y = gallery.recon_view.geometry_.origin(2)
    assert gallery.recon_view.image.pixelColor(x + 3, y + 3).red() == 101 and shown_value(gallery, 0) == 40


def _ink_columns(view, x0: int, x1: int, y0: int, y1: int) -> bool:
    """Whether anything but the background is painted in the widget's box [x0, x1) x [y0, y1)."""
    shot = view.grab().toImage()
    background = shot.pixelColor(1, 1)
    return any(shot.pixelColor(x, y) != background for x in range(x0, x1) for y in range(y0, y1))


def test_a_conditional_grid_names_its_rows_with_the_class_names(qtbot, gallery):
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
    gallery.add_snapshot(3, images_for(3, n=8), columns=4, row_classes=[1, 3])
    gallery.show()
    qtbot.waitExposed(gallery)
    view = gallery.view
    assert view.row_labels == ["class 1", "class 3"]  # numbers until the run's names are known
    plain = view.target_rect()
    gallery.set_class_names(names)
    assert view.row_labels == ["Trouser", "Dress"]
    rect = view.target_rect()
    assert rect.x() >= view.label_width() > view.fontMetrics().horizontalAdvance("Trouser")
    assert rect.width() < plain.width()  # the grid gives up width to the names, never covered by them
    geo = view.geometry_
    scale = rect.width() / view.image.width()
    for row in range(2):  # ink left of each row, at the row's height
        top = round(rect.y() + (geo.pad + row * (geo.cell_h + geo.pad)) * scale)
        assert _ink_columns(view, 0, int(rect.x()) - 2, top, top + round(geo.cell_h * scale))
    x, y = geo.origin(5)  # a click still finds its image: the second row's second image
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.widget_pos(x + 14, y + 14))
    dialog = gallery.findChild(QDialog, "enlarged")
    assert dialog.isVisible() and "image 6 of 8, class 3 (Dress)" in dialog.caption.text()
    dialog.close()


def test_an_unconditional_grid_has_no_row_names(qtbot, gallery):
    gallery.set_class_names(["a", "b"])
    gallery.add_snapshot(0, images_for(0, n=9))
    assert gallery.view.row_labels == [] and gallery.view.label_width() == 0
