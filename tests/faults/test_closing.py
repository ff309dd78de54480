"""Closing the studio never aborts: during a slow start the window closes within moments (the data's
decoding polls the worker's stop flag), a job that ignores its stop is kept rather than destroyed while
running, and SIGTERM closes the window as Quit does, saving a checkpoint."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from PySide6.QtCore import QObject, QSettings, Signal

from ganstudio.engine import RunDir, checkpoint
from ganstudio.gui import threads
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


@pytest.fixture
def slow_folder(tmp_path, monkeypatch):
    """A folder of 400 images whose decoding takes 50 ms each (10 s on two cores unless stopped); the list
    counts the decodes begun."""
    from PIL import Image

    import ganstudio.data.decode as decode

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(400):
        Image.new("L", (8, 8), i % 256).save(folder / f"{i:04d}.png")
    begun, original = [], decode.decode_file

    def slow(*args, **kwargs):
        begun.append(1)
        time.sleep(0.05)
        return original(*args, **kwargs)

    monkeypatch.setattr(decode, "decode_file", slow)
    return folder, begun


def test_closing_during_a_slow_start_returns_at_once_and_leaves_no_thread(qtbot, window, slow_folder):
    """No hang, no abort: closing the window while the worker is still decoding a big folder returns within
    a few seconds (not after the whole folder), with the training thread joined and no error shown."""
    folder, begun = slow_folder
    window.form.set_config(window.form.config().with_overrides(["data.source='folder'", f"data.path='{folder}'"]))
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: len(begun) >= 4, timeout=60_000)
    started = time.monotonic()
    window.close()  # refused until the worker has stopped (the GUI thread never waits); then it closes itself
    assert window.status.currentMessage() == "stopping the start-up before closing…"  # nothing is saved
    assert "stopping the start-up: nothing has been trained" in window.log.toPlainText()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    assert time.monotonic() - started < 5, "closing waited for the decoding"
    assert not window.run.busy and not [t for t in threads.live_threads() if t.isRunning()]
    assert "Training stopped with an error" not in window.log.toPlainText()
    assert len(begun) < 400


class _Stubborn(QObject):
    """A job that ignores stop requests until told to end."""

    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(60)
        self.finished.emit()


def test_a_job_that_ignores_its_stop_is_kept_not_destroyed(qtbot):
    """No abort: join_thread gives up after its bound, and keeps the still-running QThread (listed by
    abandoned()) so nothing destroys it while it runs; it is joined once it ends."""
    job = _Stubborn()
    thread = threads.start_in_thread(job, job.run, "stubborn")
    started = time.monotonic()
    assert not threads.join_thread(thread, 300)
    assert 0.25 < time.monotonic() - started < 5
    assert thread in threads.abandoned()
    job.release.set()
    assert threads.join_thread(thread, 30_000)
    assert thread not in threads.abandoned()


def test_sigterm_closes_the_studio_and_saves_a_checkpoint(qtbot, window):
    """Nothing lost: SIGTERM while the studio trains (its GUI thread inside Qt's event loop, where Python
    would not notice a signal by itself) stops training, saves a checkpoint and closes the window."""
    from ganstudio.gui.app import SignalStop

    stopper = SignalStop(window)
    try:
        window.actions["start"].trigger()
        qtbot.waitUntil(lambda: window.run.last_row is not None and window.run.last_row["step"] >= 2,
                        timeout=60_000)
        run_dir = window.run.run_dir
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
        with qtbot.waitSignal(window.run.session.worker.finished, timeout=30_000):
            timer.start()  # it fires while this thread waits in Qt's event loop (C++), not in Python
        timer.join()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    finally:
        stopper.uninstall()
    assert stopper.signal_name == "SIGTERM" and not window.isVisible() and not window.run.busy
    assert checkpoint.load(RunDir(run_dir).last_checkpoint)["step"] >= 2


def test_sigterm_during_a_slow_start_says_nothing_is_saved_and_closes(qtbot, window, slow_folder, capfd):
    """A signal while the data is still read closes the studio without promising a checkpoint."""
    from ganstudio.gui.app import SignalStop

    folder, begun = slow_folder
    window.form.set_config(window.form.config().with_overrides(["data.source='folder'", f"data.path='{folder}'"]))
    stopper = SignalStop(window)
    try:
        window.actions["start"].trigger()
        qtbot.waitUntil(lambda: len(begun) >= 4, timeout=60_000)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()  # it fires while this thread waits in Qt's event loop
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
        timer.join()
    finally:
        stopper.uninstall()
    said = capfd.readouterr().err
    assert "SIGTERM: stopping the start-up (nothing has been trained) and closing" in said
    assert "saving a checkpoint" not in said and not window.run.busy and len(begun) < 400
