"""`ganstudio` as a person starts it: the window paints before torch loads, then torch and the preview
load in the background; the start-up report hook (benchmarks/startup.py) says so and quits."""

import json
import subprocess
import sys

import pytest


def test_real_command_paints_first_then_loads_torch(tmp_path):
    report = tmp_path / "report.json"
    env = {"QT_QPA_PLATFORM": "offscreen", "GANSTUDIO_SETTINGS": str(tmp_path / "s.ini"), "PATH": "/usr/bin:/bin",
           "GANSTUDIO_RUNS": str(tmp_path / "runs"), "GANSTUDIO_REPORT_FIRST_PAINT": str(report)}
    for _ in range(2):  # a first start, then one with the settings it saved (the last config)
        result = subprocess.run([sys.executable, "-m", "ganstudio"], capture_output=True, text=True, timeout=180,
                                env=env)
        assert result.returncode == 0, result.stderr
        figures = json.loads(report.read_text())
        assert figures["torch_at_paint"] is False
        assert figures["first_paint"] <= figures["torch"] and figures["first_paint"] <= figures["preview"]
        assert figures["ticks"] > 0 and figures["max_stall_ms"] >= 0
    assert "last_config" in (tmp_path / "s.ini").read_text()


# The bound on the GUI thread's longest stall while torch loads: seconds-long freezes (the issue saw 6.3 s;
# before the import lock in threads._module_lock, 0.15-0.55 s under Xvfb here) fail it, while the scheduler
# noise of a shared 2-core machine running other tests (a few tens of ms measured) passes. The tighter
# target, 0.35 s, is benchmarks/startup.py's, measured on a quiet machine.
MAX_STALL_MS = 1000


def test_the_window_answers_while_torch_loads(tmp_path):
    report = tmp_path / "report.json"
    env = {"QT_QPA_PLATFORM": "offscreen", "GANSTUDIO_SETTINGS": str(tmp_path / "s.ini"), "PATH": "/usr/bin:/bin",
           "GANSTUDIO_RUNS": str(tmp_path / "runs"), "GANSTUDIO_REPORT_FIRST_PAINT": str(report)}
    result = subprocess.run([sys.executable, "-m", "ganstudio"], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(report.read_text())
    assert figures["ticks"] > 10 and figures["max_stall_ms"] < MAX_STALL_MS, figures


@pytest.fixture
def slow_torch(monkeypatch):
    """preload_torch as on a cold disk: its import finishes only when the test sets the returned Event."""
    import threading

    from ganstudio.gui import threads

    done = threading.Event()
    monkeypatch.setattr(threads, "_torch_ready", threading.Event())
    monkeypatch.setattr(threads, "_torch_loader", None)
    monkeypatch.setattr(threads, "_import_torch", lambda: (done.wait(30), threads._torch_ready.set()))
    yield done
    done.set()


def test_loading_pytorch_shows_and_export_waits_until_it_is_in(qtbot, tmp_path, slow_torch):
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QLabel

    from ganstudio.gui.main_window import MainWindow
    from ganstudio.gui.readiness import LOADING_TORCH

    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.run.run_dir = tmp_path  # as after a run: Export has something to export
    win.run.update_actions()
    assert win.actions["export"].isEnabled()  # before the preload starts nothing waits
    notice = win.findChild(QLabel, "status_notice")
    win.show()
    qtbot.waitUntil(lambda: notice.text() == LOADING_TORCH, timeout=5000)
    export = win.actions["export"]
    assert not export.isEnabled() and "PyTorch" in export.toolTip()
    ticks = []  # the GUI thread answers meanwhile: a 10 ms timer keeps firing
    timer = QTimer(win, interval=10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=2000)
    assert notice.text() == LOADING_TORCH
    slow_torch.set()
    qtbot.waitUntil(lambda: notice.text() == "", timeout=3000)
    assert export.isEnabled() and "PyTorch" not in export.toolTip()
    win.preview.shutdown()


def test_another_threads_import_waits_for_the_preload_without_the_gil(tmp_path, monkeypatch):
    """The architecture preview's thread imports torch while the preload maps its libraries: it must wait
    for the preload (holding no GIL), not run torch's own loading beside it (which froze the window)."""
    import importlib
    import threading
    import time

    from ganstudio.gui import threads

    (tmp_path / "fake_torch_h1.py").write_text("import time\nLOADED_AT = time.perf_counter()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mapping = threading.Event()
    mapped_at = []

    def slow_map():  # dlopen through ctypes: long, and the GIL is released meanwhile
        mapping.set()
        time.sleep(0.3)
        mapped_at.append(time.perf_counter())

    monkeypatch.setattr(threads, "PRELOAD", ("fake_torch_h1",))
    monkeypatch.setattr(threads, "_map_torch_libraries", slow_map)
    monkeypatch.setattr(threads, "_torch_ready", threading.Event())
    monkeypatch.setattr(threads, "_torch_loader", None)
    monkeypatch.delitem(sys.modules, "fake_torch_h1", raising=False)
    threads.preload_torch()
    assert mapping.wait(5)
    beats, other = [], threading.Thread(target=importlib.import_module, args=("fake_torch_h1",))
    other.start()
    while other.is_alive():  # this thread keeps running Python meanwhile
        beats.append(time.perf_counter())
        time.sleep(0.005)
    assert threads._torch_ready.wait(5)
    module = sys.modules["fake_torch_h1"]
    assert module.LOADED_AT >= mapped_at[0]  # imported once, after the mapping, by the preload
    assert max(b - a for a, b in zip(beats, beats[1:])) < 0.1
