"""Markers at the step where the run was really paused, resumed, changed or stopped; single steps as points;
all of it read back from events.jsonl when the run is reopened, and pause, resume and stop in the log."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from ganstudio.engine import RunDir
from ganstudio.gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path, tiny_config):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    # no logged row is due before the pause: a marker at the last logged row would sit at step 0
    win.form.set_config(tiny_config.with_overrides(["train.log_every=100000", "train.sample_every=100000",
                                                    "train.checkpoint_every=100000", "train.steps=100000"]))
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.run.shutdown()


def _live_step(win) -> int:
    text = win.status.labels["step"].text()
    return int(text.split()[1].replace(",", "")) if text else 0


def _idle(win):
    assert win.run.control.wait_idle(30)
    QCoreApplication.processEvents()  # the signals the worker emitted before it went idle


def test_markers_sit_at_the_event_steps_live_and_after_reopening(qtbot, window):
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: _live_step(window) >= 3, timeout=60_000)
    window.actions["pause"].trigger()
    _idle(window)
    window.actions["step_d"].trigger()
    _idle(window)
    window.actions["step_g"].trigger()
    _idle(window)
    paused_after = _live_step(window)
    window.actions["pause"].trigger()  # resume
    qtbot.waitUntil(lambda: _live_step(window) >= paused_after + 3, timeout=60_000)
    window.actions["stop"].trigger()
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)

    run = RunDir(window.run.run_dir)
    events = run.read_events()
    kinds = [e.kind for e in events]
    assert kinds == ["paused", "step_d", "step_g", "resumed", "stopped"], kinds
    paused, step_d, step_g, resumed, stopped = events
    assert paused.step >= 3 and step_d.step == paused.step and step_g.step == paused.step + 1
    assert resumed.step == step_g.step == paused_after and stopped.step > resumed.step
    lines = [e.step for e in events if not e.kind.startswith("step")]
    live_markers = window.plots.marker_steps()
    assert live_markers and set(live_markers) <= set(lines) and live_markers[0] == paused.step
    assert window.plots.marker_count() == len(lines)
    assert window.plots.single_step_points() == [("step_d", paused.step), ("step_g", paused.step + 1)]
    log = window.log.toPlainText()
    assert f"step {paused.step:,}  paused" in log and f"step {resumed.step:,}  resumed" in log
    assert f"step {stopped.step:,}  stopped" in log, log
    assert "D step: D loss" in log, log

    window.actions["new_run"].trigger()
    assert window.plots.marker_count() == 0 and window.plots.single_step_points() == []
    window.run.open_run(run.path)
    assert window.plots.marker_steps() == live_markers  # the same lines at the same steps
    assert window.plots.marker_labels() == window.plots.marker_labels()
    assert window.plots.marker_count() == len(lines)
    assert window.plots.single_step_points() == [("step_d", paused.step), ("step_g", paused.step + 1)]
