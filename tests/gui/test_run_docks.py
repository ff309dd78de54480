"""The window's runs side wired together: Compare from the Runs dock's selection, following the job a queue
runs once its process has taken the folder, and closing with a running queue (asked, or not on a signal)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QSettings

from ganstudio.gui import follow
from ganstudio.gui.main_window import MainWindow

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from runs_list import make_run  # noqa: E402  (benchmarks/ is not a package)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                     runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.run.shutdown()


def test_compare_opens_the_runs_selected_in_the_runs_dock(qtbot, window, tmp_path, monkeypatch):
    runs = [make_run(tmp_path / "runs" / f"run{i}", i) for i in range(3)]
    window.runs.refresh()
    opened = []
    monkeypatch.setattr("ganstudio.gui.compare.open_compare", lambda w, folders: opened.append(folders))
    window.actions["compare"].trigger()  # nothing selected: it says how, and opens nothing
    assert opened == [] and "Select 2–6 runs" in window.statusBar().currentMessage()
    view = window.runs.view
    for path in runs[:2]:
        row = window.runs.proxy.mapFromSource(window.runs.model.index(window.runs.model.row_of(path), 0))
        view.selectionModel().select(row, QItemSelectionModel.Select | QItemSelectionModel.Rows)
    assert window.runs.buttons["compare"].isEnabled() and not window.runs.buttons["rename"].isEnabled()
    window.actions["compare"].trigger()
    assert [sorted(map(str, f)) for f in opened] == [sorted(map(str, runs[:2]))]
    window.runs.buttons["compare"].click()  # the dock's own button does the same
    assert len(opened) == 2


def test_the_window_follows_a_queued_job_once_its_writer_holds_the_folder(qtbot, window, tmp_path, monkeypatch):
    job = tmp_path / "runs" / "job-1"
    written, opened = {"now": False}, []
    monkeypatch.setattr(follow, "writer_elsewhere", lambda folder: written["now"] and Path(folder) == job)
    monkeypatch.setattr(window.run, "open_run", opened.append)
    window.queue.running_job_changed.emit(job)  # the job's process is still starting: nothing to open yet
    assert opened == [] and window.run_docks.job == job
    written["now"] = True
    qtbot.waitUntil(lambda: opened == [job], timeout=5_000)  # the once-a-second check found its writer
    window.queue.running_job_changed.emit(None)
    assert window.run_docks.job is None and not window.run_docks._timer.isActive()


def test_a_queue_is_asked_about_on_close_but_not_on_a_signal(qtbot, window, monkeypatch):
    asked = []
    monkeypatch.setattr(window.queue, "confirm_close", lambda: asked.append(1) or False)  # "Cancel"
    window.close()
    assert asked == [1] and window.isVisible()
    window.closing_by_signal = True  # SIGTERM: the queue goes on without the window, nobody is asked
    window.close()
    assert asked == [1] and not window.isVisible()

