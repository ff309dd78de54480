"""The window follows a run that a headless `ganstudio train` writes: rows and grids arrive live, the
toolbar steers it through its command file, and a writer that dies shows as crashed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PySide6.QtCore import QSettings

from ganstudio.engine.status import read_status
from ganstudio.gui.main_window import MainWindow

TINY = ["--set", "data.max_images=256", "--set", "model.z_dim=8", "--set", "model.g_width=8",
        "--set", "model.d_width=8", "--set", "train.batch_size=16", "--set", "train.device='cpu'",
        "--set", "train.log_every=1", "--set", "train.threads=1", "--set", "train.sample_every=5", "--quiet"]


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                     runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.run.shutdown()


@pytest.fixture
def headless(tmp_path):
    """A `ganstudio train` subprocess writing tmp_path/run; killed at the end if still running."""
    run = tmp_path / "run"
    with (tmp_path / "err.txt").open("w") as err:
        child = subprocess.Popen([sys.executable, "-m", "ganstudio", "train", "--run-dir", str(run),
                                  "--steps", "100000", *TINY], stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    try:
        yield child, run
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)


def _state(run):
    status, _ = read_status(run)
    return status.state if status else None


@pytest.mark.slow
def test_the_window_follows_a_headless_run_and_steers_it(qtbot, window, headless):
    child, run = headless
    qtbot.waitUntil(lambda: _state(run) == "running", timeout=60_000)
    window.run.open_run(run)
    assert window.run.following is not None and window.status.state == "running"
    assert window.status.labels["device"].text() == "device: cpu"  # from the writer's status.json
    assert not (run / "run.lock").read_text() or str(child.pid) in (run / "run.lock").read_text()  # not taken
    rows, grids = window.plots.point_count(), window.gallery.snapshot_count()
    qtbot.waitUntil(lambda: window.plots.point_count() >= rows + 10, timeout=60_000)  # rows arrive
    qtbot.waitUntil(lambda: window.gallery.snapshot_count() >= grids + 2, timeout=60_000)  # and grids
    assert window.gallery.current_step() == max(window.gallery.steps())  # the newest is shown

    window.actions["pause"].trigger()
    qtbot.waitUntil(lambda: _state(run) == "paused", timeout=30_000)
    qtbot.waitUntil(lambda: window.plots.marker_count() >= 1, timeout=30_000)  # the pause, at its step
    assert window.status.state == "paused" and window.actions["step"].isEnabled()
    window.actions["step_d"].trigger()
    qtbot.waitUntil(lambda: ("step_d", ) in {(k,) for k, _ in window.plots.single_step_points()}, timeout=30_000)

    window.actions["stop"].trigger()
    qtbot.waitUntil(lambda: window.run.following is None and window.status.state == "stopped", timeout=60_000)
    assert child.wait(30) == 0
    assert "followed run ended (stopped" in window.log.toPlainText()
    assert window.actions["start"].isEnabled()  # the run is open: Start continues it here


def test_a_followed_run_that_is_killed_shows_as_crashed(qtbot, window, headless):
    child, run = headless
    qtbot.waitUntil(lambda: _state(run) == "running", timeout=60_000)
    window.run.open_run(run)
    qtbot.waitUntil(lambda: window.plots.point_count() >= 3, timeout=60_000)
    child.kill()  # kill -9: status.json still says running, the lock is gone
    qtbot.waitUntil(lambda: window.status.state == "error", timeout=30_000)
    assert window.run.following is None and "crashed" in window.log.toPlainText()
    assert window.isVisible()


def test_closing_while_following_leaves_the_run_running_and_closes_at_once(qtbot, window, headless):
    child, run = headless
    qtbot.waitUntil(lambda: _state(run) == "running", timeout=60_000)
    window.run.open_run(run)
    assert window.run.following is not None and window.run.busy
    window.close()  # nothing to save here: the run is another process's
    assert not window.isVisible() and window.run.following is None
    assert child.poll() is None and _state(run) == "running"  # it trains on; Open follows it again later
