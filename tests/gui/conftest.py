"""GUI test fixtures: offscreen Qt, and no test may leave a QThread running."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _no_dangling_threads(qapp):
    """Fail a test that leaves a QThread running (it would abort the process at exit)."""
    from PySide6.QtCore import QThread

    yield
    qapp.processEvents()
    running = [t for t in qapp.findChildren(QThread) if t.isRunning()]
    # threads without a parent are not found above; the worker module keeps a registry for them
    from ganstudio.gui import threads

    running += [t for t in threads.live_threads() if t.isRunning()]
    assert not running, f"test left {len(running)} QThread(s) running"
    # Collect this test's cyclic garbage here, on the GUI thread. Left for later, a window's QObjects
    # can be collected by the cyclic GC inside the next test's training thread, and PySide then deletes
    # them across threads: the worker waits for the GIL inside ~QObject while the GUI thread waits for
    # that QObject's mutex (a deadlock seen in the full suite).
    import gc

    gc.collect()
    qapp.processEvents()


@pytest.fixture
def artifacts_dir():
    """Where tests save screenshots for people to look at (tests/artifacts, git-ignored)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder
