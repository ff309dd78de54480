"""The window's everyday actions: save a checkpoint now, recent runs, reset layout, the shortcuts list, the
first-launch hint, the warnings badge, live intervals, a clean New run, the preset question, drawn icons
and closing while training."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QSettings, Qt
from PySide6.QtGui import QImage, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMessageBox

from ganstudio.engine import RunDir, checkpoint
from ganstudio.gui import icons
from ganstudio.gui.main_window import MainWindow


def _window(qtbot, tmp_path, config=None, runs_root=None):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings=settings, runs_root=runs_root or tmp_path / "runs")
    qtbot.addWidget(win)
    if config is not None:
        win.form.set_config(config)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(qtbot, tmp_path, tiny_config):
    win = _window(qtbot, tmp_path, tiny_config.with_overrides(["train.sample_every=3", "train.log_every=1"]))
    yield win
    win.run.shutdown()


@pytest.fixture
def finished_run(tmp_path, tiny_config):
    from ganstudio.engine import Trainer

    Trainer(tiny_config.updated("train.steps", 3), tmp_path / "finished").run()
    return tmp_path / "finished"


def _step(win):
    return win.run.last_row["step"] if win.run.last_row else 0


def _stop(qtbot, win):
    win.actions["stop"].trigger()
    qtbot.waitUntil(lambda: win.status.state == "stopped" and not win.run.busy, timeout=60_000)


def test_save_checkpoint_now_writes_one_while_training_goes_on(qtbot, window, tiny_config):
    window.form.set_config(tiny_config.with_overrides(["train.checkpoint_every=100000", "train.steps=100000"]))
    assert not window.actions["save_checkpoint"].isEnabled()  # nothing to save before a run
    assert window.actions["save_checkpoint"].shortcut().toString() == "Ctrl+S"
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: _step(window) >= 2, timeout=60_000)
    last = RunDir(window.run.run_dir).last_checkpoint
    assert not last.exists()
    window.actions["save_checkpoint"].trigger()
    qtbot.waitUntil(last.exists, timeout=30_000)
    assert window.status.state == "running"
    assert checkpoint.load(last)["step"] >= 2
    _stop(qtbot, window)


def test_recent_runs_most_recent_first_capped_and_missing_ones_disabled(qtbot, window, finished_run, tmp_path):
    for i in range(10):
        window.recent.add(tmp_path / f"gone{i}")
    window.run.open_run(finished_run)  # opening one puts it first
    paths = window.recent.paths()
    assert paths[0] == finished_run.resolve() and len(paths) == 8
    assert paths[1] == (tmp_path / "gone9").resolve()

    window.recent_menu.aboutToShow.emit()
    entries = {a.objectName(): a for a in window.recent_menu.actions() if a.objectName().startswith("recent_run_")}
    assert len(entries) == 8
    assert entries["recent_run_0"].isEnabled() and "finished" in entries["recent_run_0"].text()
    assert not entries["recent_run_1"].isEnabled() and "(missing)" in entries["recent_run_1"].text()

    window.new_run()
    assert window.run.run_dir is None
    entries["recent_run_0"].trigger()  # opening from the menu = RunController.open_run
    assert window.run.run_dir == finished_run and window.plots.point_count() == 3

    again = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                       runs_root=tmp_path / "runs")  # the list lives in QSettings
    qtbot.addWidget(again)
    assert again.recent.paths() == window.recent.paths()


def test_reset_layout_brings_docks_and_toolbar_back(qtbot, window):
    default_areas = {name: window.dockWidgetArea(dock) for name, dock in window.docks.items()}
    window.docks["config"].hide()
    window.docks["samples"].setFloating(True)
    window.removeDockWidget(window.docks["log"])
    window.addDockWidget(Qt.LeftDockWidgetArea, window.docks["log"])
    window.docks["log"].show()
    window.docks["latent"].show()
    window.toolbar.hide()
    assert window.dockWidgetArea(window.docks["log"]) == Qt.LeftDockWidgetArea

    window.actions["reset_layout"].trigger()
    assert window.toolbar.isVisible()
    assert window.docks["config"].isVisible() and not window.docks["samples"].isFloating()
    assert not window.docks["latent"].isVisible()  # hidden at first, as on a first start
    assert {name: window.dockWidgetArea(dock) for name, dock in window.docks.items()} == default_areas
    assert "reset_layout" in [a.objectName() for a in window.view_menu.actions()]


def test_shortcuts_list_is_built_from_the_actions(qtbot, window):
    assert window.actions["shortcuts"] in window.menuBar().findChild(type(window.view_menu), "menu_help").actions()
    window.actions["shortcuts"].trigger()
    dialog = window.shortcuts_dialog
    qtbot.waitExposed(dialog)
    shown = dialog.shortcuts()
    expected = {a.text().replace("&", ""): a.shortcut().toString(QKeySequence.NativeText)
                for a in window.actions.values() if not a.shortcut().isEmpty()}
    assert shown == expected and shown["Start"] == "F5" and shown["Save checkpoint now"] == "Ctrl+S"
    assert "Dark theme" not in shown  # no shortcut, not listed
    dialog.close()

    window.actions["dark"].setShortcut(QKeySequence("Ctrl+D"))  # a new shortcut shows without another table
    window.actions["shortcuts"].trigger()
    assert window.shortcuts_dialog.shortcuts()["Dark theme"] == QKeySequence("Ctrl+D").toString(
        QKeySequence.NativeText)
    window.shortcuts_dialog.close()


def test_first_launch_hint_until_the_first_run(qtbot, window, tmp_path, artifacts_dir):
    hint = window.hint
    assert hint.isVisible() and "F5" in hint.text() and "GAN on the bundled Fashion-MNIST" in hint.text()
    window.grab().save(str(artifacts_dir / "main_window_first_launch.png"))
    config = window.form.config()
    window.form.set_config(config.with_overrides(["model.family=vae", "loss.name=mse", "data.channels=3",
                                                  "data.source=torchvision:CIFAR10", "data.image_size=32"]))
    assert "train a VAE on CIFAR10 (downloaded on first use)" in hint.text()  # what F5 trains now
    window.form.set_config(config.with_overrides(["model.family=autoencoder", "loss.name=mse"]))
    assert "train an autoencoder on the bundled Fashion-MNIST" in hint.text()
    # back, and Start at once: the replaced plot panels are cyclic garbage, which the worker's collector
    # used to finalise on its thread, crashing the process (gui/threads.py, collect_on_gui_thread)
    window.form.set_config(config)
    assert "train a GAN on the bundled Fashion-MNIST" in hint.text()
    window.actions["start"].trigger()
    assert not hint.isVisible()
    qtbot.waitUntil(lambda: _step(window) >= 1, timeout=60_000)
    _stop(qtbot, window)

    second = _window(qtbot, tmp_path / "second", runs_root=tmp_path / "runs")  # a run exists now
    assert not second.hint.isVisible()
    second.close()


def test_warnings_badge_lists_warnings_with_their_hints(qtbot, window, artifacts_dir):
    from ganstudio.engine.events import TrainWarning

    badge = window.warnings
    assert not badge.isVisible()
    window.run._on_warning(TrainWarning(7, "collapse", "mode collapse: diversity 0.01. Try: lower lr_g"))
    window.run._on_warning(TrainWarning(9, "disk", "disk full; training goes on"))
    assert badge.isVisible() and badge.text() == "⚠ 2"
    qtbot.mouseClick(badge, Qt.LeftButton)
    table = badge.dialog.table
    assert badge.dialog.isVisible() and table.rowCount() == 2
    assert [table.item(0, c).text() for c in range(4)] == ["7", "collapse", "mode collapse: diversity 0.01.",
                                                         "lower lr_g"]
    assert table.item(1, 3).text() == "—"
    window.status.grab().save(str(artifacts_dir / "status_warnings_badge.png"))
    badge.dialog.grab().save(str(artifacts_dir / "warnings_dialog.png"))
    badge.dialog.close()
    window.actions["new_run"].trigger()
    assert not badge.isVisible() and not badge.rows


def test_changing_sample_every_mid_run_changes_when_grids_arrive(qtbot, window, tiny_config):
    window.form.set_config(tiny_config.with_overrides(["train.sample_every=3", "train.steps=100000",
                                                       "train.checkpoint_every=100000"]))
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: window.gallery.snapshot_count() >= 1, timeout=60_000)
    window.actions["pause"].trigger()
    assert window.run.control.wait_idle(30)
    QCoreApplication.processEvents()
    edit = window.form.widget_for("train.sample_every")
    assert edit.isEnabled()  # a live field: editable while training
    edit.setValue(4)
    changed_at = _step(window)
    window.actions["pause"].trigger()  # resume
    qtbot.waitUntil(lambda: len([s for s in window.gallery.steps() if s > changed_at]) >= 3, timeout=60_000)
    _stop(qtbot, window)
    later = [s for s in window.gallery.steps() if s > changed_at][:-1]  # the last is the stop's own grid
    assert later and all(s % 4 == 0 for s in later), later
    assert any(s % 3 == 0 for s in window.gallery.steps() if s <= changed_at)


def test_new_run_leaves_nothing_stale(qtbot, window, finished_run):
    from ganstudio.engine.events import TrainWarning

    window.run.open_run(finished_run)
    window.docks["latent"].show()
    qtbot.waitUntil(lambda: window.latent.info is not None, timeout=30_000)
    window.run._on_warning(TrainWarning(2, "disk", "disk full"))
    estimate = window.preview.findChild(QLabel, "estimate_result")
    estimate.setText("about 900 images/s; 0:42 to the budget")
    box = window.plots.canvas.getItem(0, 0).getViewBox()
    box.setRange(xRange=(1000, 2000), padding=0)  # a zoom: auto-range is off now
    assert box.viewRange()[0] == [1000, 2000]

    window.actions["new_run"].trigger()
    assert window.status.warning_count == 0 and not window.warnings.isVisible()
    assert estimate.text() == ""
    qtbot.wait(300)  # the plots' redraw timer has run: nothing brings the old range back
    assert box.viewRange() == [[0, 1], [0, 1]] and all(box.autoRangeEnabled())
    assert window.latent.info is None and window.latent.header.text() == "No run"
    assert window.plots.point_count() == 0 and window.gallery.snapshot_count() == 0


def test_choosing_a_preset_asks_before_it_discards_edits(qtbot, window, monkeypatch):
    from ganstudio.config import load_preset, preset_names

    presets = preset_names()
    other = next(name for name in presets if name != "dcgan-fashion")
    box = window.form.findChild(QComboBox, "preset")
    asked = []

    def answer(reply):
        monkeypatch.setattr(QMessageBox, "question", lambda *args, **kw: (asked.append(args[2]), reply)[1])

    edited = window.form.config()  # tiny_config: not a bundled preset, so it counts as edits
    answer(QMessageBox.Cancel)
    box.setCurrentIndex(box.findText(other))
    box.activated.emit(box.findText(other))
    assert asked and window.form.config() == edited

    answer(QMessageBox.Discard)
    box.activated.emit(box.findText(other))
    assert len(asked) == 2 and window.form.config() == load_preset(other)

    asked.clear()  # an unedited preset: replaced without a question
    box.activated.emit(box.findText("dcgan-fashion"))
    assert not asked and window.form.config() == load_preset("dcgan-fashion")


def _ink(qicon, size=32) -> np.ndarray:
    """The icon's opaque pixels as (n, 3) RGB."""
    image = qicon.pixmap(size, size).toImage().convertToFormat(QImage.Format_RGBA8888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(size, image.bytesPerLine() // 4, 4)[:, :size]
    return pixels[pixels[..., 3] > 200][:, :3]


def test_icons_tell_the_actions_apart_and_follow_the_theme(qtbot, window, artifacts_dir):
    names = ["start", "pause", "step", "step_d", "step_g", "stop", "sample_now", "evaluate", "export",
             "save_checkpoint"]
    shapes = {name: (_ink(window.actions[name].icon()).shape[0], window.actions[name].icon().pixmap(32, 32)
                     .toImage().bits().tobytes()) for name in names}
    assert len({shape[1] for shape in shapes.values()}) == len(names)  # no two share a picture
    assert all(count > 20 for count, _ in shapes.values())

    light = _ink(window.actions["step_d"].icon()).mean()
    window.actions["dark"].setChecked(True)
    dark = _ink(window.actions["step_d"].icon()).mean()
    assert light < 100 and dark > 160  # dark ink on the light theme, light ink on the dark one
    assert _ink(window.actions["pause"].icon()).mean() > 160
    window.grab().save(str(artifacts_dir / "main_window_dark_icons.png"))
    window.actions["dark"].setChecked(False)
    assert _ink(icons.icon("step_g")).mean() < 100  # drawn again in the light theme's colour


def test_closing_while_training_answers_at_once_then_closes_once_saved(qtbot, window):
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: _step(window) >= 2, timeout=60_000)
    run_dir = window.run.run_dir
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 0.5  # no join on the GUI thread
    assert window.isVisible() and "saving" in window.status.currentMessage()
    assert window.saving.isVisible()
    window.close()  # a second Quit while saving changes nothing
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not window.run.busy
    assert checkpoint.load(RunDir(run_dir).last_checkpoint)["step"] >= 2
