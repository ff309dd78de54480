"""The runs dock: rows sort, filter and follow the folder; rename and delete are refused while a run is written."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QFile, QSettings, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QInputDialog, QMessageBox

from ganstudio.config import RunConfig
from ganstudio.engine.lock import RunLock
from ganstudio.gui import runs_dock
from ganstudio.gui.runs_dock import RunsDock
from ganstudio.gui.runs_model import BEST_COL, NAME_COL, STATUS_COL, STEP_COL, THUMB_COL


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "runs_list.py"
    spec = importlib.util.spec_from_file_location("bench_runs_list", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    bench.make_run(root / "alpha", 0, state="finished", rows=300)   # gan, best FID 200/7
    bench.make_run(root / "beta", 2, state="stopped", rows=40)      # autoencoder, no eval yet
    bench.make_run(root / "gamma", 1, state="failed", rows=120)     # cgan
    return root


@pytest.fixture
def dock(qtbot, tmp_path, runs):
    widget = RunsDock(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat), runs)
    qtbot.addWidget(widget)
    widget.resize(1100, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _column(dock, col, role=Qt.DisplayRole):
    return [dock.proxy.index(r, col).data(role) for r in range(dock.proxy.rowCount())]


def _select(dock, name):
    assert dock.select(dock.runs_root / name)
    assert dock.selected().name == name


def test_rows_show_each_run_and_sort_by_any_column(dock):
    assert sorted(_column(dock, NAME_COL)) == ["alpha", "beta", "gamma"]
    dock.view.sortByColumn(STEP_COL, Qt.AscendingOrder)
    assert _column(dock, NAME_COL) == ["beta", "gamma", "alpha"]  # 400, 1200, 3000 steps: numbers, not text
    dock.view.sortByColumn(BEST_COL, Qt.AscendingOrder)
    assert _column(dock, NAME_COL)[-1] == "beta"  # no score yet sorts last
    assert _column(dock, BEST_COL)[0].startswith("FID ")
    dock.view.sortByColumn(STATUS_COL, Qt.AscendingOrder)
    assert _column(dock, STATUS_COL) == ["failed", "stopped", "finished"]


def test_the_filter_keeps_rows_holding_every_word(dock, qtbot):
    qtbot.keyClicks(dock.filter, "autoencoder")
    assert _column(dock, NAME_COL) == ["beta"]
    dock.filter.setText("gan FAILED")
    assert _column(dock, NAME_COL) == ["gamma"]
    dock.filter.clear()
    assert dock.proxy.rowCount() == 3


def test_a_new_run_appears_live_and_the_selection_stays(dock, runs, qtbot):
    dock.view.sortByColumn(NAME_COL, Qt.AscendingOrder)
    _select(dock, "gamma")
    bench.make_run(runs / "aardvark", 3, state="running")  # sorts first: gamma's row moves down
    with RunLock(runs / "aardvark"):
        qtbot.waitUntil(lambda: dock.model.rowCount() == 4, timeout=5000)  # the dock's own timer found it
        assert _column(dock, NAME_COL)[0] == "aardvark"
        assert _column(dock, STATUS_COL)[0] == "running"
        assert dock.selected().name == "gamma"
    qtbot.waitUntil(lambda: _column(dock, STATUS_COL)[0] == "crashed", timeout=5000)  # its writer went away


def test_rename_is_refused_while_the_run_is_written(dock, runs, monkeypatch):
    live = bench.make_run(runs / "live", state="running")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: pytest.fail("asked for a name"))
    with RunLock(live):
        dock.refresh()
        _select(dock, "live")
        assert not dock.buttons["rename"].isEnabled() and not dock.buttons["delete"].isEnabled()
        dock.rename_selected()
        dock.delete_selected()
    assert live.is_dir() and len(warnings) == 2 and "being written" in warnings[0]


def test_rename_moves_the_folder_and_keeps_it_selected(dock, runs, monkeypatch, qtbot):
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("alpha-best", True))
    _select(dock, "alpha")
    with qtbot.waitSignal(dock.renamed) as renamed:
        dock.rename_selected()
    assert renamed.args == [runs / "alpha", runs / "alpha-best"]
    assert (runs / "alpha-best" / "config.toml").is_file() and not (runs / "alpha").exists()
    assert dock.selected().name == "alpha-best"


def test_delete_asks_then_moves_the_run_to_the_trash(dock, runs, tmp_path, monkeypatch, qtbot):
    trash = tmp_path / "trash"
    trash.mkdir()

    def move_to_trash(path):
        shutil.move(path, trash / Path(path).name)
        return True, str(trash / Path(path).name)

    monkeypatch.setattr(QFile, "moveToTrash", staticmethod(move_to_trash))
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    _select(dock, "beta")
    dock.delete_selected()
    assert asked and "beta" in asked[0] and (runs / "beta").is_dir()  # declined: nothing moved
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    with qtbot.waitSignal(dock.deleted):
        dock.delete_selected()
    assert not (runs / "beta").exists() and (trash / "beta" / "config.toml").is_file()
    assert sorted(_column(dock, NAME_COL)) == ["alpha", "gamma"]


def test_open_and_duplicate_emit_the_folder_and_its_config(dock, runs, qtbot):
    _select(dock, "gamma")
    with qtbot.waitSignal(dock.open_requested) as opened:
        dock.buttons["open"].click()
    assert opened.args == [runs / "gamma"]
    with qtbot.waitSignal(dock.duplicate_requested) as duplicated:
        dock.duplicate_selected()
    assert isinstance(duplicated.args[0], RunConfig) and duplicated.args[0].model.family == "cgan"


def test_show_in_folder_opens_the_file_manager_and_the_status_tip_says_why_it_failed(dock, runs, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile())))
    _select(dock, "gamma")
    dock.buttons["show"].click()
    assert opened == [str(runs / "gamma")]
    row = _column(dock, NAME_COL).index("gamma")
    assert "failed: out of memory" in dock.proxy.index(row, STATUS_COL).data(Qt.ToolTipRole)


def test_added_folders_are_listed_and_remembered(dock, tmp_path):
    other = tmp_path / "elsewhere"
    bench.make_run(other / "remote", state="finished")
    dock.add_folder(other)
    assert "remote" in _column(dock, NAME_COL)
    again = RunsDock(dock.settings, dock.runs_root)  # a new window reads the same settings
    assert "remote" in [r.name for r in again.model.runs]
    again.remove_folder(other)
    assert "remote" not in [r.name for r in again.model.runs]
    again.deleteLater()


def test_thumbnails_load_only_for_the_rows_on_screen(qtbot, tmp_path):
    root = tmp_path / "many"
    png = bench._grid_png()
    for i in range(60):
        bench.make_run(root / f"run{i:02d}", state="finished", rows=5, png=png, config=bench._config_toml(0))
    dock = RunsDock(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), root)
    qtbot.addWidget(dock)
    requested = []
    request = dock.model.request_thumbnail
    dock.model.request_thumbnail = lambda path: (requested.append(path), request(path))
    dock.resize(900, 300)  # room for a few rows of 60
    dock.show()
    qtbot.waitExposed(dock)
    first = dock.proxy.index(0, THUMB_COL)
    qtbot.waitUntil(lambda: first.data(Qt.DecorationRole) is not None, timeout=5000)
    assert first.data(Qt.DecorationRole).height() <= runs_dock.THUMB
    assert 0 < len(set(requested)) < 20, f"{len(set(requested))} of 60 thumbnails requested"


def test_a_damaged_run_lists_with_a_warning(dock, runs):
    (runs / "alpha" / "status.json").write_text("garbage")
    dock.refresh()
    row = _column(dock, NAME_COL).index("alpha")
    assert dock.proxy.index(row, NAME_COL).data(Qt.DecorationRole) is not None  # the warning icon
    assert "status.json" in dock.proxy.index(row, NAME_COL).data(Qt.ToolTipRole)
    assert os.path.isdir(runs / "alpha")


def test_installed_in_the_window_open_shows_the_run_and_duplicate_fills_the_form(qtbot, tmp_path, runs):
    from ganstudio.gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "w.ini"), QSettings.IniFormat), runs_root=runs)
    qtbot.addWidget(window)
    dock = runs_dock.install_runs_dock(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.docks["runs"] is dock and dock.toggleViewAction() in window.view_menu.actions()
    _select(window.runs, "gamma")
    window.runs.open_selected()
    assert window.run.run_dir == runs / "gamma" and window.form.config().model.family == "cgan"
    _select(window.runs, "beta")
    window.runs.duplicate_selected()
    assert window.run.run_dir is None and window.form.config().model.family == "autoencoder"
    window.run.shutdown()
