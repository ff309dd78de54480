"""The export dialog: each kind of export through its thread, errors in the dialog, no thread left over."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QToolButton

from ganstudio.gui import threads
from ganstudio.gui.export_dialog import ExportDialog

WAIT_MS = 60_000


@pytest.fixture
def run(trained_run, tmp_path):
    """A private copy, so a test may write into (or break) its run folder."""
    return shutil.copytree(trained_run, tmp_path / "tiny-run")


@pytest.fixture
def dialog(qtbot, run, tmp_path):
    dialog = ExportDialog(run)
    qtbot.addWidget(dialog)
    out = tmp_path / "out"
    out.mkdir()
    dialog.folder.setText(str(out))
    dialog.grid_box.setChecked(False)
    return dialog


def _choose(dialog, *, grid=False, singles=False, gif=False, interpolation=None):
    dialog.grid_box.setChecked(grid)
    dialog.singles_box.setChecked(singles)
    dialog.gif_box.setChecked(gif)
    dialog.interp_box.setChecked(interpolation is not None)
    if interpolation:
        dialog.interp_format.setCurrentIndex(dialog.interp_format.findData(interpolation))


def _export(qtbot, dialog) -> list[str]:
    with qtbot.waitSignal(dialog.finished_export, timeout=WAIT_MS) as finished:
        assert dialog.start_export()
    assert not dialog.running and dialog.error.isHidden()
    return finished.args[0]


def test_dialog_shows_the_checkpoint_and_the_samples(dialog):
    assert "step <b>6</b>" in dialog.source.text()
    assert dialog.gif_box.text() == "Progress GIF (4 sample grids)" and dialog.gif_box.isEnabled()
    assert dialog.windowTitle() == "Export — tiny-run"


def test_grid(qtbot, dialog, tmp_path):
    _choose(dialog, grid=True)
    dialog.count.setValue(10)
    dialog.seed.setValue(4)
    paths = _export(qtbot, dialog)
    assert paths == [str(tmp_path / "out" / "grid_n10_seed4.png")]
    with Image.open(paths[0]) as grid:
        assert grid.size == (4 * 30 + 2, 3 * 30 + 2)
    assert dialog.progress.value() == dialog.progress.maximum()
    assert "grid_n10_seed4.png" in dialog.status.text()


def test_singles(qtbot, dialog, tmp_path):
    _choose(dialog, singles=True)
    dialog.count.setValue(7)
    (folder,) = _export(qtbot, dialog)
    files = sorted((tmp_path / "out" / "singles_n7_seed0").iterdir())
    assert folder == str(tmp_path / "out" / "singles_n7_seed0") and len(files) == 7
    with Image.open(files[0]) as first:
        assert first.size == (28, 28)


def test_progress_gif(qtbot, dialog, tmp_path):
    _choose(dialog, gif=True)
    (path,) = _export(qtbot, dialog)
    with Image.open(path) as gif:
        assert gif.n_frames == 4


@pytest.mark.parametrize("kind, frames", [("png", 1), ("gif", 2 * 5 - 2)])
def test_interpolation(qtbot, dialog, kind, frames):
    _choose(dialog, interpolation=kind)
    dialog.seed_a.setValue(2)
    dialog.seed_b.setValue(40)
    dialog.steps.setValue(5)
    dialog.mode.setCurrentIndex(dialog.mode.findData("slerp"))
    (path,) = _export(qtbot, dialog)
    assert path.endswith(f"interpolation_2-40_slerp.{kind}")
    with Image.open(path) as image:
        assert getattr(image, "n_frames", 1) == frames
        if kind == "png":
            assert image.size == (5 * 30 + 2, 30 + 2)


def test_everything_at_once_into_the_default_folder(qtbot, run):
    dialog = ExportDialog(run)
    qtbot.addWidget(dialog)
    _choose(dialog, grid=True, singles=True, gif=True, interpolation="gif")
    dialog.count.setValue(4)
    assert dialog.folder.text() == str(run / "exports")  # created on export: it lies inside the run
    paths = _export(qtbot, dialog)
    assert len(paths) == 4 and all((run / "exports" / p).exists() for p in paths)


def test_a_folder_that_is_a_file_shows_an_error_and_starts_nothing(dialog, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # tests run as root: chmod would not stop the write
    _choose(dialog, grid=True)
    dialog.folder.setText(str(blocker / "exports"))
    assert dialog.start_export() is False
    assert not dialog.running and not any(t.isRunning() for t in threads.live_threads())
    assert not dialog.error.isHidden() and "is a file, not a folder" in dialog.error.text()
    assert dialog.export_button.isEnabled()  # fix the folder and try again


def test_a_missing_folder_shows_an_error(dialog, tmp_path):
    _choose(dialog, singles=True)
    dialog.folder.setText(str(tmp_path / "nowhere" / "deeper"))
    assert dialog.start_export() is False
    assert "does not exist" in dialog.error.text()
    dialog.folder.setText("  ")
    assert dialog.start_export() is False and dialog.error.text() == "Choose an output folder"


def test_a_failure_inside_the_thread_reaches_the_error_label(qtbot, dialog, run):
    (run / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")  # broken after the dialog opened
    _choose(dialog, grid=True)
    with qtbot.waitSignal(dialog.failed_export, timeout=WAIT_MS) as failed:
        assert dialog.start_export()
    assert "not a checkpoint" in failed.args[0] and "Traceback" not in failed.args[0]
    assert not dialog.error.isHidden() and dialog.error.text().lower() == failed.args[0].lower()
    assert not dialog.running and dialog.export_button.isEnabled()


def test_a_run_without_a_checkpoint_disables_export(qtbot, tmp_path):
    empty = tmp_path / "new-run"
    empty.mkdir()
    dialog = ExportDialog(empty)
    qtbot.addWidget(dialog)
    assert not dialog.export_button.isEnabled()
    assert "Nothing to export yet" in dialog.source.text() and "has no checkpoints/last.pt yet" in dialog.source.text()
    assert not dialog.gif_box.isEnabled() and dialog.gif_box.text() == "Progress GIF (0 sample grids)"
    assert dialog.start_export() is False and not dialog.running


def test_closing_mid_export_stops_the_thread(qtbot, dialog):
    _choose(dialog, singles=True)
    dialog.count.setValue(20_000)  # long enough to still be running when the dialog closes
    failed = []
    dialog.failed_export.connect(failed.append)
    dialog.show()
    assert dialog.start_export() and dialog.running
    dialog.close()
    assert not dialog.running
    assert not any(t.isRunning() for t in threads.live_threads())
    qtbot.waitUntil(lambda: failed == ["export cancelled"], timeout=WAIT_MS)


def test_export_is_enabled_only_with_something_to_write(dialog):
    _choose(dialog)
    assert not dialog.export_button.isEnabled()
    dialog.gif_box.setChecked(True)
    assert dialog.export_button.isEnabled() and dialog.fps.isEnabled() and not dialog.count.isEnabled()
    _choose(dialog, interpolation="png")
    assert dialog.interp_group.isEnabled() and not dialog.fps.isEnabled()
    dialog.interp_format.setCurrentIndex(dialog.interp_format.findData("gif"))
    assert dialog.fps.isEnabled()


def test_browse_button_fills_the_folder(qtbot, dialog, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path))
    dialog.browse.click()
    assert dialog.folder.text() == str(tmp_path)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: "")  # cancelled
    dialog.browse.click()
    assert dialog.folder.text() == str(tmp_path)


def test_every_input_is_named_for_tests_and_screen_readers(dialog):
    inputs = [w for kind in (QCheckBox, QSpinBox, QDoubleSpinBox, QComboBox, QLineEdit, QToolButton)
              for w in dialog.findChildren(kind) if w.parent() is not None and not w.objectName().startswith("qt_")]
    inputs = [w for w in inputs if not isinstance(w.parent(), (QSpinBox, QDoubleSpinBox, QComboBox))]
    assert len(inputs) >= 15
    for widget in inputs + [dialog.export_button, dialog.error, dialog.progress]:
        assert widget.objectName().startswith("export_"), widget
        assert widget.accessibleName(), widget.objectName()
    assert dialog.objectName() == "export_dialog"


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\..*` is deprecated:FutureWarning")  # loading it is the check
def test_the_generator_as_torchscript_and_onnx(qtbot, dialog, tmp_path):
    import torch

    from ganstudio.export import load_for_export
    from ganstudio.engine.inference import seeded_noise

    _choose(dialog)
    assert not dialog.export_button.isEnabled()
    dialog.torchscript_box.setChecked(True)
    assert dialog.onnx_box.isEnabled()  # the test extra installs onnx, onnxscript and onnxruntime
    dialog.onnx_box.setChecked(True)
    assert dialog.export_button.isEnabled() and not dialog.count.isEnabled() and not dialog.scale.isEnabled()
    paths = _export(qtbot, dialog)
    assert paths == [str(tmp_path / "out" / "generator_last.pt"), str(tmp_path / "out" / "generator_last.onnx")]
    assert "generator_last.pt, generator_last.onnx" in dialog.status.text()
    g = load_for_export(dialog.run_dir)[1]
    z = seeded_noise(2, 8, 1)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(paths[0])(z), g(z), atol=1e-4)


def test_without_the_onnx_packages_the_box_says_what_to_install(qtbot, run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    dialog = ExportDialog(run)
    qtbot.addWidget(dialog)
    assert not dialog.onnx_box.isEnabled() and "pip install 'ganstudio[onnx]'" in dialog.onnx_box.toolTip()
    assert dialog.torchscript_box.isEnabled()


def test_last_or_best_checkpoint(qtbot, dialog, run, tmp_path):
    best = dialog.checkpoint.model().item(1)
    assert dialog.checkpoint.currentData() == "last" and not best.isEnabled()  # no evaluation: no best.pt
    assert dialog.plan().checkpoint == "last"
    shutil.copyfile(run / "checkpoints" / "last.pt", run / "checkpoints" / "best.pt")
    dialog.refresh_checkpoint()  # the studio calls it after every checkpoint
    assert best.isEnabled()
    dialog.checkpoint.setCurrentIndex(1)
    assert "From <b>checkpoints/best.pt</b>" in dialog.source.text() and "step <b>6</b>" in dialog.source.text()
    _choose(dialog, grid=True)
    dialog.torchscript_box.setChecked(True)
    assert dialog.plan().checkpoint == "best"
    paths = _export(qtbot, dialog)
    assert paths[-1].endswith("generator_best.pt")
    (run / "checkpoints" / "best.pt").unlink()
    dialog.refresh_checkpoint()  # gone (a new run folder, a cleanup): back to last.pt
    assert dialog.checkpoint.currentData() == "last" and not best.isEnabled()
    assert "From <b>checkpoints/last.pt</b>" in dialog.source.text()


def test_open_folder_after_an_export(qtbot, dialog, tmp_path, monkeypatch):
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    dialog.show()
    assert dialog.open_button.isHidden() and dialog.open_folder() is False  # nothing written yet
    _choose(dialog, singles=True)
    dialog.count.setValue(2)
    _export(qtbot, dialog)
    assert dialog.open_button.isVisible()
    dialog.open_button.click()
    assert opened == [QUrl.fromLocalFile(str(tmp_path / "out"))]  # the folder, not the singles inside it


def test_enlarged_gifs(qtbot, dialog, run, tmp_path):
    _choose(dialog, grid=True)
    assert not dialog.scale.isEnabled()  # no GIF chosen
    _choose(dialog, gif=True)
    assert dialog.scale.isEnabled() and dialog.scale.maximum() == 16
    dialog.scale.setValue(3)
    (path,) = _export(qtbot, dialog)
    with Image.open(path) as gif, Image.open(sorted((run / "samples").glob("*.png"))[0]) as grid:
        assert gif.size == (3 * grid.width, 3 * grid.height + 14)  # the step label keeps its size


def test_screenshot(qtbot, dialog, artifacts_dir):
    _choose(dialog, grid=True, gif=True, interpolation="gif")
    dialog.show()
    qtbot.waitExposed(dialog)
    _export(qtbot, dialog)
    qtbot.wait(50)  # let the layout take the result line's height
    dialog.grab().save(str(artifacts_dir / "export_dialog.png"))


# --- a class-conditional run: the class picker ------------------------------------------------------
@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    from ganstudio.config import RunConfig
    from ganstudio.engine import Trainer

    config = RunConfig.model_validate({
        "name": "cgan", "data": {"source": "bundled", "max_images": 64, "image_size": 28},
        "model": {"family": "cgan", "arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8, "num_classes": 10},
        "train": {"batch_size": 16, "device": "cpu", "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
                  "num_samples": 10, "seed": 3, "steps": 2}})
    path = tmp_path_factory.mktemp("cgan") / "cgan-run"
    trainer = Trainer(config, path)
    trainer.run()
    trainer.close()
    return path


@pytest.fixture
def cgan_dialog(qtbot, cgan_run, tmp_path):
    dialog = ExportDialog(cgan_run)
    qtbot.addWidget(dialog)
    (tmp_path / "out").mkdir(exist_ok=True)
    dialog.folder.setText(str(tmp_path / "out"))
    return dialog


def _check_classes(dialog, classes):
    from PySide6.QtCore import Qt

    for i in range(dialog.class_list.count()):
        item = dialog.class_list.item(i)
        item.setCheckState(Qt.Checked if item.data(Qt.UserRole) in classes else Qt.Unchecked)


def test_the_class_picker_is_only_for_conditional_runs(dialog, cgan_dialog):
    assert dialog.class_group.isHidden() and dialog.chosen_classes() is None
    assert not cgan_dialog.class_group.isHidden() and cgan_dialog.class_list.count() == 10
    assert cgan_dialog.class_list.item(3).text() == "3 · Dress"  # the bundled Fashion-MNIST's names
    assert cgan_dialog.count.value() == 8 and cgan_dialog.count.accessibleName() == "Images per class"
    assert cgan_dialog.chosen_classes() is None  # every class checked: the default, every class


def test_a_grid_of_the_chosen_classes(qtbot, cgan_dialog, tmp_path):
    _choose(cgan_dialog, grid=True)
    cgan_dialog.count.setValue(5)
    _check_classes(cgan_dialog, {1, 7})
    assert cgan_dialog.chosen_classes() == (1, 7)
    cgan_dialog.row_names.setChecked(False)
    (path,) = _export(qtbot, cgan_dialog)
    assert path.endswith("grid_n5_seed0_class1_7.png")
    with Image.open(path) as grid:
        assert grid.size == (5 * 30 + 2, 2 * 30 + 2)  # one row per chosen class
        plain = np.asarray(grid)
    cgan_dialog.row_names.setChecked(True)  # the default: a column naming each row's class
    (path,) = _export(qtbot, cgan_dialog)
    with Image.open(path) as grid:
        named = np.asarray(grid)
    left = named.shape[1] - plain.shape[1]
    assert left > 20 and np.array_equal(named[:, left:], plain) and named[:, :left].max() > 0


def test_an_interpolation_per_class_and_no_class_is_an_error(qtbot, cgan_dialog):
    _choose(cgan_dialog, interpolation="png")
    cgan_dialog.steps.setValue(4)
    _check_classes(cgan_dialog, {0, 9, 4})
    (path,) = _export(qtbot, cgan_dialog)
    with Image.open(path) as strip:
        assert strip.size == (4 * 30 + 2, 3 * 30 + 2)
    _check_classes(cgan_dialog, set())
    assert cgan_dialog.start_export() is False and cgan_dialog.error.text() == "Choose at least one class"


def test_screenshot_with_classes(qtbot, cgan_dialog, artifacts_dir):
    _choose(cgan_dialog, grid=True, interpolation="png")
    _check_classes(cgan_dialog, {0, 1, 2, 5})
    cgan_dialog.show()
    qtbot.waitExposed(cgan_dialog)
    _export(qtbot, cgan_dialog)
    qtbot.wait(50)
    cgan_dialog.grab().save(str(artifacts_dir / "export_dialog_classes.png"))
