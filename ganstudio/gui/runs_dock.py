"""The runs dock: every run under the runs folder and the folders the person adds, one row each (name,
model, dataset, status, step, training time, best primary metric, a thumbnail of the last grid), sorted,
filtered and rescanned once a second while the dock is shown.

The rows come from ``engine/runs.py`` (a torch-free index that caches by file sizes and mtimes, so a
rescan of 500 runs is a few stat calls each); the table model is ``runs_model.py``. The dock only reads
run folders, except for what its actions do on the person's request: rename a folder, move one to the
trash. Both are refused while a process writes the run (its lock, ``engine/lock.py``). Opening and
duplicating are signals the window connects (``install_runs_dock``).
"""

from __future__ import annotations

import os
import threading
import weakref
from functools import partial
from pathlib import Path

from PySide6.QtCore import QFile, QItemSelectionModel, QSettings, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView, QDockWidget, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit, QMenu,
    QMessageBox, QPushButton, QTableView, QToolButton, QVBoxLayout, QWidget,
)

from ganstudio.engine.lock import writer_alive
from ganstudio.engine.runs import RunIndex, RunSummary
from ganstudio.gui.runs_model import (
    NAME_COL, NUMBERS, STATUS_COL, THUMB, THUMB_COL, Background, RunsFilter, RunsModel,
)

REFRESH_MS = 1000
FOLDERS_KEY = "runs_dock/folders"  # QSettings: the folders added besides the runs folder
ACTIONS = (  # name, text, tip; the buttons and the context menu both come from here
    ("open", "Open", "Open the run: follow it live while it is written, else show it and continue it with Start"),
    ("duplicate", "Duplicate", "Load the run's config into the form as a new run"),
    ("rename", "Rename…", "Rename the run's folder (not while it is being written)"),
    ("delete", "Delete…", "Move the run's folder to the trash (not while it is being written)"),
    ("show", "Show in folder", "Open the run's folder in the file manager"),
    ("compare", "Compare", "Compare the selected runs side by side (select 2–6 with Ctrl+click or Shift+click)"),
)
SINGLE = ("open", "duplicate", "rename", "delete", "show")  # act on one run: enabled with exactly one selected


class RunsDock(QWidget):
    open_requested = Signal(object)       # Path of the run folder
    duplicate_requested = Signal(object)  # the run's RunConfig, to edit as a new run
    renamed = Signal(object, object)      # old Path, new Path
    deleted = Signal(object)              # Path moved to the trash
    compare_requested = Signal(object)    # list[Path]: 2–6 selected runs

    def __init__(self, settings: QSettings, runs_root: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runs_dock")
        self.settings = settings
        self.runs_root = Path(runs_root)
        self.index = RunIndex()
        self.model = RunsModel(self)
        self.proxy = RunsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._create_widgets()
        self.timer = QTimer(self)
        self.timer.setObjectName("runs_refresh")
        self.timer.timeout.connect(self._scan_in_background)
        # The timer's rescans run in a background thread: 500 runs cost ~10-20 ms of stat calls, a stall
        # the GUI would feel every second. ``refresh`` (first fill, after an action) scans right here.
        self._scanner = Background("runs-scan", self)
        self._index_lock = threading.Lock()  # the index is used by one thread at a time
        self._generation = 0  # a background scan older than the last refresh() is dropped
        self.refresh()
        self.view.sortByColumn(THUMB_COL, Qt.DescendingOrder)  # the newest first

    # --- construction ---------------------------------------------------------------------------------
    def _create_widgets(self) -> None:
        self.filter = QLineEdit(placeholderText="Filter: words in any column (gan cifar running)")
        self.filter.setObjectName("runs_filter")
        self.filter.setAccessibleName("Filter runs")
        self.filter.setClearButtonEnabled(True)
        for clear in self.filter.findChildren(QToolButton):
            clear.setObjectName("runs_filter_clear")
            clear.setAccessibleName("Clear the filter")
        self.filter.textChanged.connect(self.proxy.set_filter)
        self.folders = QToolButton(text="Folders", popupMode=QToolButton.InstantPopup)
        self.folders.setObjectName("runs_folders")
        self.folders.setAccessibleName("Folders of runs")
        self.folders.setToolTip("Add a folder of runs to the list, or remove one")
        self.folders.setMenu(QMenu(self.folders, aboutToShow=self._fill_folders_menu))
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for name, text, tip in ACTIONS:
            button = QPushButton(text)
            button.setObjectName(f"runs_{name}")
            button.setAccessibleName(text.rstrip("…"))
            button.setToolTip(tip)
            button.clicked.connect(getattr(self, f"{name}_selected"))
            self.buttons[name] = button
            row.addWidget(button)
        row.addStretch(1)
        self.count = QLabel()
        row.addWidget(self.count)
        self.view = QTableView()
        self.view.setObjectName("runs_table")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.ExtendedSelection)  # several: for Compare
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setIconSize(QSize(4 * THUMB, THUMB))
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(THUMB + 6)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        # all but Model and Dataset fit the default left column (~430 px); those two are a scroll away
        for col, width in ((THUMB_COL, THUMB + 6), (NAME_COL, 110), (STATUS_COL, 62), *zip(NUMBERS, (56, 58, 80))):
            self.view.setColumnWidth(col, width)
        self.view.setWordWrap(False)  # one line a cell: a long name elides rather than breaking in two
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        # bound methods, never lambdas holding self: PySide keeps a lambda alive in the connection, and a
        # window kept alive that way is destroyed at interpreter exit, mid-teardown (a segfault)
        self.view.doubleClicked.connect(self.open_selected)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.folders)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        self._update_buttons()

    # --- listing --------------------------------------------------------------------------------------
    def roots(self) -> list[Path]:
        return [self.runs_root] + self.extra_folders()

    def extra_folders(self) -> list[Path]:
        value = self.settings.value(FOLDERS_KEY, [])
        values = [value] if isinstance(value, str) else list(value or [])  # QSettings gives one item as a str
        return [Path(v) for v in values if v]

    @Slot()
    def refresh(self) -> None:
        """Rescan the roots now; the rows change in place, so the selection and scroll position stay."""
        self._generation += 1
        with self._index_lock:
            runs = self.index.list(self.roots())
        self._show(runs)

    def _scan_in_background(self) -> None:
        if self._scanner.busy:  # a slow share: never pile up scans
            return
        self._scanner.submit(_list, partial(self._on_scanned, self._generation), self.index, self._index_lock,
                             self.roots())

    def _on_scanned(self, generation: int, runs) -> None:
        if isinstance(runs, Exception):  # a bug: said in the dock, and the next tick tries again
            self.count.setText(f"listing failed: {runs}")
        elif generation == self._generation:
            self._show(runs)

    def _show(self, runs: list[RunSummary]) -> None:
        self.model.update(runs)
        shown = self.proxy.rowCount()
        self.count.setText(f"{len(runs)} runs" if shown == len(runs) else f"{shown} of {len(runs)} runs")
        self._update_buttons()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
        self.timer.start(REFRESH_MS)

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.timer.stop()  # a hidden dock reads nothing

    def add_folder(self, folder: Path) -> None:
        folders = self.extra_folders()
        if Path(folder) not in folders and Path(folder) != self.runs_root:
            self.settings.setValue(FOLDERS_KEY, [str(f) for f in folders + [Path(folder)]])
        self.refresh()

    def remove_folder(self, folder: Path) -> None:
        self.settings.setValue(FOLDERS_KEY, [str(f) for f in self.extra_folders() if f != Path(folder)])
        self.refresh()

    def _fill_folders_menu(self) -> None:
        menu = self.folders.menu()
        menu.clear()
        menu.addAction("Add folder…", self._choose_folder)
        extra = self.extra_folders()
        if extra:
            menu.addSeparator()
        for folder in extra:
            menu.addAction(f"Remove {folder}", partial(self.remove_folder, folder))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of runs", str(self.runs_root))
        if folder:
            self.add_folder(Path(folder))

    # --- selection ------------------------------------------------------------------------------------
    def selected(self) -> RunSummary | None:
        """The one selected run; None when none or several are selected."""
        runs = self.selected_runs()
        return runs[0] if len(runs) == 1 else None

    def selected_runs(self) -> list[RunSummary]:
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda index: index.row())
        return [self.model.run_at(self.proxy.mapToSource(index).row()) for index in rows]

    def select(self, path: Path) -> bool:
        row = self.model.row_of(Path(path))
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.view.selectionModel().select(index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.view.scrollTo(index)
        return True

    def _update_buttons(self, *_) -> None:
        run, chosen = self.selected(), len(self.selected_runs())
        for name, button in self.buttons.items():
            if name in SINGLE:
                button.setEnabled(run is not None and not (run.live and name in ("rename", "delete")))
            else:
                button.setEnabled(2 <= chosen <= 6)

    def _context_menu(self, pos) -> None:
        if not self.view.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        for name, text, tip in ACTIONS:
            action = menu.addAction(text, getattr(self, f"{name}_selected"))
            action.setToolTip(tip)
            action.setEnabled(self.buttons[name].isEnabled())
        menu.exec(self.view.viewport().mapToGlobal(pos))

    # --- actions --------------------------------------------------------------------------------------
    @Slot()
    def compare_selected(self) -> None:
        runs = self.selected_runs()
        if 2 <= len(runs) <= 6:
            self.compare_requested.emit([run.path for run in runs])

    def open_selected(self, *_) -> None:
        if (run := self.selected()) is not None:
            self.open_requested.emit(run.path)

    @Slot()
    def duplicate_selected(self) -> None:
        from ganstudio.config import ConfigError, RunConfig

        if (run := self.selected()) is None:
            return
        try:
            config = RunConfig.load(run.path / "config.toml")
        except (ConfigError, OSError) as err:
            QMessageBox.warning(self, "Cannot duplicate the run", f"{run.path} has no usable config.toml:\n{err}")
            return
        self.duplicate_requested.emit(config)

    @Slot()
    def rename_selected(self) -> None:
        if (run := self.selected()) is None or self._refuse_if_written(run, "rename"):
            return
        name, ok = QInputDialog.getText(self, "Rename run", "New folder name:", QLineEdit.Normal, run.name)
        name = name.strip() if ok else ""
        if not name or name == run.name:
            return
        problem = _bad_name(name) or (f"{run.path.parent / name} already exists"
                                      if (run.path.parent / name).exists() else None)
        if problem is None and not self._refuse_if_written(run, "rename"):  # it may have started meanwhile
            try:
                os.rename(run.path, run.path.parent / name)
            except OSError as err:
                problem = f"could not rename {run.path}: {err.strerror or err}"
            else:
                self.refresh()
                self.select(run.path.parent / name)
                self.renamed.emit(run.path, run.path.parent / name)
                return
        if problem:
            QMessageBox.warning(self, "Cannot rename the run", problem)

    @Slot()
    def delete_selected(self) -> None:
        if (run := self.selected()) is None or self._refuse_if_written(run, "delete"):
            return
        answer = QMessageBox.question(
            self, "Delete run", f"Move the run {run.name} to the trash?\n\n{run.path}",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer != QMessageBox.Yes or self._refuse_if_written(run, "delete"):
            return
        moved, _ = QFile.moveToTrash(str(run.path))
        if not moved:
            QMessageBox.warning(self, "Cannot delete the run", f"{run.path} could not be moved to the trash (is "
                                "there a trash on this system?); nothing was deleted.")
            return
        self.refresh()
        self.deleted.emit(run.path)

    @Slot()
    def show_selected(self) -> None:
        if (run := self.selected()) is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(run.path)))

    def _refuse_if_written(self, run: RunSummary, verb: str) -> bool:
        """True (with a message) while a process writes the run: its lock, or a live status from another
        host, whose lock cannot be seen from here."""
        with self._index_lock:
            fresh = self.index.summary(run.path)
        if not (writer_alive(run.path) or fresh.live):
            return False
        QMessageBox.warning(self, f"Cannot {verb} the run", f"{run.path} is being written ({fresh.state}); stop "
                            f"its training first, then {verb} it.")
        return True


def _list(index: RunIndex, lock: threading.Lock, roots: list[Path]) -> list[RunSummary]:
    with lock:
        return index.list(roots)


def _bad_name(name: str) -> str | None:
    if name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        return f"{name!r} is not a folder name"
    if name.startswith("."):
        return "a name starting with a dot would hide the run from the list"
    return None


def install_runs_dock(window) -> QDockWidget:
    """Add the runs dock to the main window (tabbed with the configuration) and connect it: Open goes to
    the window's run controller, Duplicate starts a new run with the run's config in the form."""
    widget = RunsDock(window.settings, window.run.runs_root)
    dock = QDockWidget("Runs", window)
    dock.setObjectName("dock_runs")
    dock.setAccessibleName("Runs")
    dock.setWidget(widget)
    window.addDockWidget(Qt.LeftDockWidgetArea, dock)
    window.tabifyDockWidget(window.docks["config"], dock)
    window.docks["config"].raise_()
    window.docks["runs"] = dock
    window.view_menu.insertAction(window.actions["dark"], dock.toggleViewAction())
    window.runs = widget
    widget.open_requested.connect(window.run.open_run)
    # a weak reference: a closure holding the window would keep it alive past its tests (see above)
    widget.duplicate_requested.connect(partial(_duplicate_into, weakref.ref(window)))
    widget.compare_requested.connect(partial(_compare, weakref.ref(window)))
    return dock


def _compare(window_ref, folders: list[Path]) -> None:
    from ganstudio.gui.compare import open_compare

    if (window := window_ref()) is not None:
        window.compare_view = open_compare(window, folders)


def _duplicate_into(window_ref, config) -> None:
    """A run's config into the form as a new run (Start creates its folder)."""
    window = window_ref()
    if window is None:
        return
    if window.run.busy:
        window.log.add("stop training before duplicating a run into the form", "warning")
        return
    window.new_run()
    window.form.set_config(config)
    window.log.add(f"a new run with the config of {config.name}: Start creates its folder")
