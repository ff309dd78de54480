"""The studio window end to end: configure, train in the worker thread, watch, pause, step, stop, reopen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QCheckBox, QComboBox, QLineEdit, QMessageBox,
                               QSlider, QToolBar)

from ganstudio.engine import RunDir, checkpoint
from ganstudio.gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path, tiny_config):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.form.set_config(tiny_config.with_overrides(["train.sample_every=3", "train.log_every=1"]))
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.run.shutdown()


def _step(win):
    return win.run.last_row["step"] if win.run.last_row else 0


def _trigger(win, name):
    action = win.actions[name]
    assert action.isEnabled(), f"{name} is disabled"
    action.trigger()


def _pause(qtbot, win):
    _trigger(win, "pause")
    assert win.run.control.wait_idle(30)
    QCoreApplication.processEvents()  # deliver the signals the worker emitted before it went idle
    return _step(win)


def test_actions_and_inputs_are_named_for_automation_and_screen_readers(window):
    for name, action in window.actions.items():
        assert action.objectName() == name and action.text()
    toolbar = window.findChild(QToolBar, "toolbar")
    for action in toolbar.actions():
        if not action.isSeparator():
            assert toolbar.widgetForAction(action).accessibleName()
    assert window.actions["start"].shortcut().toString() == "F5"
    assert window.actions["pause"].shortcut().toString() == "Space"
    assert window.actions["step"].shortcut().toString() == "F10"
    assert window.actions["stop"].shortcut().toString() == "Shift+F5"
    assert window.actions["export"].shortcut().toString() == "Ctrl+E"
    assert window.actions["open_run"].shortcut().toString() == "Ctrl+O"
    inputs = (QLineEdit, QAbstractSpinBox, QComboBox, QCheckBox, QSlider, QAbstractButton)
    unnamed = [f"{type(w).__name__} {w.objectName()!r}" for kind in inputs for w in window.findChildren(kind)
               if w.objectName() != "qt_spinbox_lineedit" and not w.objectName().startswith("qt_")
               and w.parent() is not None and type(w.parent()).__name__ != "QAbstractSpinBox"
               and not (w.objectName() and w.accessibleName())]
    assert not unnamed, unnamed


def test_start_pause_step_resume_stop(qtbot, window, artifacts_dir):
    qtbot.waitUntil(lambda: window.preview.totals().get("generator", 0) > 0, timeout=30_000)
    window.grab().save(str(artifacts_dir / "main_window_idle.png"))
    assert window.status.state == "idle"
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 4 and window.gallery.snapshot_count() >= 2, timeout=60_000)
    assert window.status.state == "running"
    assert window.plots.point_count() >= 4
    assert not window.form.widget_for("model.arch").isEnabled()  # locked while training
    assert window.form.widget_for("optim.lr_g").isEnabled()  # live
    window.grab().save(str(artifacts_dir / "main_window_training.png"))

    paused_at = _pause(qtbot, window)
    assert window.status.state == "paused" and window.actions["pause"].text() == "&Resume"
    qtbot.wait(300)
    assert _step(window) == paused_at
    window.grab().save(str(artifacts_dir / "main_window_paused.png"))

    _trigger(window, "step")
    qtbot.waitUntil(lambda: _step(window) == paused_at + 1, timeout=30_000)
    assert window.run.control.wait_idle(30)
    QCoreApplication.processEvents()
    assert _step(window) == paused_at + 1

    _trigger(window, "pause")  # resume
    qtbot.waitUntil(lambda: _step(window) >= paused_at + 3, timeout=30_000)
    assert window.plots.marker_count() >= 2  # paused, resumed

    _trigger(window, "stop")
    assert "stopping: finishing the step and saving a checkpoint" in window.log.toPlainText()
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)
    assert not window.run.busy and not window.run.session.thread.isRunning()
    last = RunDir(window.run.run_dir).last_checkpoint
    assert checkpoint.load(last)["step"] == _step(window)


def test_live_lr_change_from_the_form_reaches_metrics(qtbot, window):
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 2, timeout=60_000)
    edit = window.form.widget_for("optim.lr_g")
    edit.setText("0.001")
    edit.editingFinished.emit()
    qtbot.waitUntil(lambda: window.run.last_row["lr_g"] == 0.001, timeout=30_000)
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)
    rows = RunDir(window.run.run_dir).read_metrics()
    assert rows[0]["lr_g"] == 2e-4 and rows[-1]["lr_g"] == 0.001


def test_invalid_value_disables_start_and_shows_message(qtbot, window):
    assert window.actions["start"].isEnabled()
    edit = window.form.widget_for("optim.lr_d")
    edit.setText("-1")
    edit.editingFinished.emit()
    qtbot.waitUntil(lambda: not window.actions["start"].isEnabled())
    assert "optim.lr_d" in window.form.error_text()
    edit.setText("2e-4")
    edit.editingFinished.emit()
    qtbot.waitUntil(lambda: window.actions["start"].isEnabled())


def test_open_run_restores_history_and_continues(qtbot, window, tmp_path):
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 7, timeout=60_000)
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)
    run = RunDir(window.run.run_dir)
    rows, grids = run.read_metrics(), sorted(run.samples_dir.glob("step_*.png"))

    _trigger(window, "new_run")
    assert window.plots.point_count() == 0 and window.gallery.snapshot_count() == 0
    window.run.open_run(run.path)
    assert window.plots.point_count() == len(rows)
    assert window.gallery.snapshot_count() == len(grids)

    _trigger(window, "start")  # continues the opened run from its checkpoint
    qtbot.waitUntil(lambda: _step(window) >= rows[-1]["step"] + 2, timeout=60_000)
    assert window.run.run_dir == run.path
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)


def test_dropping_a_run_folder_opens_it(qtbot, window, tiny_config, tmp_path):
    from ganstudio.engine import Trainer

    Trainer(tiny_config.updated("train.steps", 3), tmp_path / "dropped").run()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped"))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    assert window.run.run_dir == tmp_path / "dropped"
    assert window.plots.point_count() == 3


def test_error_in_worker_shows_dialog_and_window_stays_usable(qtbot, window, tmp_path):
    config = window.form.config().with_overrides(["data.source='folder'", f"data.path='{tmp_path / 'nope'}'"])
    window.form.set_config(config)
    _trigger(window, "start")
    qtbot.waitUntil(lambda: window.status.state == "error" and not window.run.busy, timeout=60_000)
    box = window.findChild(QMessageBox, "error_box")
    assert box is not None and "nope" in box.text()
    assert "nope" in window.log.toPlainText()
    box.close()
    assert window.actions["start"].isEnabled()


def test_a_download_at_the_start_is_said_and_stop_answers_at_once(qtbot, window, monkeypatch):
    """torchvision's download cannot be interrupted; the studio says it is fetching and Stop does not wait."""
    import threading
    import time

    import torchvision.datasets as tvd

    release = threading.Event()

    class NeverArrives:  # a download from a network that has stopped answering
        def __init__(self, root, download, **kwargs):
            release.wait(60)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: timed out")

    monkeypatch.setattr(tvd, "KMNIST", NeverArrives)
    window.form.set_config(window.form.config().with_overrides(["data.source=torchvision:KMNIST",
                                                                "data.download=true"]))
    try:
        _trigger(window, "start")
        qtbot.waitUntil(lambda: "downloading torchvision:KMNIST into" in window.log.toPlainText(), timeout=30_000)
        assert window.status.currentMessage() == "downloading torchvision:KMNIST…"
        stopped = time.monotonic()
        _trigger(window, "stop")
        said = window.log.toPlainText()  # nothing was trained: no promise of a checkpoint
        assert "stopping the start-up: nothing has been trained, so nothing is saved" in said
        assert "saving a checkpoint" not in said
        qtbot.waitUntil(lambda: window.status.state == "stopped" and not window.run.busy, timeout=10_000)
        assert time.monotonic() - stopped < 5 and not release.is_set()  # the download is still under way
        assert window.findChild(QMessageBox, "error_box") is None  # a stop, not a failure
        assert window.status.currentMessage() == ""
    finally:
        release.set()


def test_closing_mid_training_leaves_loadable_checkpoint(qtbot, window):
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 2, timeout=60_000)
    run_dir = window.run.run_dir
    window.close()  # refused until the worker has saved; then the window closes by itself
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not window.run.busy
    payload = checkpoint.load(RunDir(run_dir).last_checkpoint)
    assert payload["step"] >= 2


def test_settings_restore_last_config_and_theme(qtbot, tmp_path, tiny_config):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    first = MainWindow(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(first)
    first.form.set_config(tiny_config.updated("optim.lr_g", 3e-4))
    first.actions["dark"].setChecked(True)
    first.close()
    second = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        runs_root=tmp_path / "runs")
    qtbot.addWidget(second)
    assert second.form.config().optim.lr_g == 3e-4
    assert second.actions["dark"].isChecked()
    second.set_dark(False)


def test_export_dialog_from_the_window(qtbot, window, artifacts_dir):
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 3, timeout=60_000)
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)
    _trigger(window, "export")
    dialog = window.export_dialog
    qtbot.waitExposed(dialog)
    dialog.grab().save(str(artifacts_dir / "export_dialog_from_window.png"))
    window.grab().save(str(artifacts_dir / "main_window_export.png"))
    dialog.close()


def test_evaluate_now_fills_the_metrics_dock_and_neighbours_view(qtbot, window, artifacts_dir):
    from ganstudio.gui.neighbours_dialog import NeighboursDialog

    config = window.form.config().with_overrides(["eval.num_samples=100", "eval.metrics=['fid', 'kid']"])
    window.form.set_config(config)
    _trigger(window, "start")
    qtbot.waitUntil(lambda: _step(window) >= 5, timeout=60_000)
    _pause(qtbot, window)
    _trigger(window, "evaluate")
    qtbot.waitUntil(lambda: window.metrics.point_count() == 1, timeout=60_000)
    assert "FID@100" in window.metrics.summary.text()
    # 100 samples are too few: a warning, shown on the badge (emitted just after the result: wait for it)
    qtbot.waitUntil(lambda: window.status.warning_count >= 1, timeout=10_000)
    window.docks["metrics"].raise_()
    window.grab().save(str(artifacts_dir / "main_window_metrics.png"))
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)

    window.actions["neighbours"].trigger()
    dialog = window.findChild(NeighboursDialog)
    qtbot.waitUntil(lambda: hasattr(dialog, "sheet"), timeout=60_000)
    assert dialog.sheet.shape == (8 * 30, 4 * 28 + 6, 1)
    dialog.grab().save(str(artifacts_dir / "neighbours.png"))
    dialog.done(0)


def test_status_bar_counts_steps_between_logged_rows(qtbot, window, tiny_config):
    window.form.set_config(tiny_config.with_overrides(["train.log_every=100000", "train.sample_every=100000",
                                                       "train.checkpoint_every=100000", "train.steps=100000"]))
    _trigger(window, "start")

    def live_step():
        text = window.status.labels["step"].text()
        return int(text.split()[1].replace(",", "")) if text else 0

    qtbot.waitUntil(lambda: live_step() > 0 and window.status.labels["eta"].text().startswith("ETA"),
                    timeout=60_000)
    assert window.run.last_row is None  # no logged row yet: the count came from Progress events
    assert window.status.labels["speed"].text().endswith("img/s")
    _trigger(window, "stop")
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)


def test_window_paints_before_the_preview_loads(qtbot, tmp_path, monkeypatch):
    from ganstudio.gui import main_window

    started = []
    monkeypatch.setattr(main_window, "preload_torch", lambda: started.append("preload"))
    set_config = main_window.ArchitecturePreview.set_config
    monkeypatch.setattr(main_window.ArchitecturePreview, "set_config",
                        lambda self, config: (started.append("preview"), set_config(self, config)))
    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.first_painted, timeout=10_000):
        win.show()
        assert not started
    assert not started  # torch and the tables come after the first paint (pass) has finished
    qtbot.waitUntil(lambda: started == ["preload", "preview"] and win.preview.totals().get("generator", 0) > 0,
                    timeout=30_000)
    win.preview.shutdown()
