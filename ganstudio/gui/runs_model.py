"""The runs dock's table: one row per ``RunSummary`` (engine/runs.py), kept by path so a rescan updates,
inserts and removes rows in place (the view keeps its selection and scroll position), and thumbnails of
each run's last grid, loaded only when the view asks for them (visible rows) and off the GUI thread.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QSize, QSortFilterProxyModel, Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

from ganstudio.engine.runs import RunSummary
from ganstudio.families import FAMILIES

THUMB = 48        # thumbnail height in pixels; rows are a little taller
TOOLTIP_SIDE = 256
SORT_ROLE = Qt.UserRole
# what a person compares first comes first: the dock shares the window's narrow left column
COLUMNS = ("", "Name", "Status", "Step", "Time", "Best", "Model", "Dataset")
THUMB_COL, NAME_COL, STATUS_COL, STEP_COL, TIME_COL, BEST_COL, MODEL_COL, DATA_COL = range(len(COLUMNS))
NUMBERS = (STEP_COL, TIME_COL, BEST_COL)
METRIC_TITLES = {"fid": "FID", "recon_mse": "MSE", "kid": "KID"}
STATE_ORDER = {s: k for k, s in enumerate(("running", "starting", "paused", "crashed", "failed", "stopped",
                                           "finished", "unknown"))}
STATE_COLOURS = {"running": "#2e9d4f", "starting": "#2e9d4f", "paused": "#c08a1c", "crashed": "#d03c3c",
                 "failed": "#d03c3c"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def best_text(run: RunSummary) -> str:
    if run.best is None or run.metric is None:
        return "—"
    return f"{METRIC_TITLES.get(run.metric, run.metric)} {run.best:.4g}"


def model_text(run: RunSummary) -> str:
    family = FAMILIES[run.family].title if run.family in FAMILIES else (run.family or "?")
    return f"{family} · {run.arch}" if run.arch else family


def dataset_text(run: RunSummary) -> str:
    return f"{run.dataset} · {run.image_size} px" if run.image_size else run.dataset


class Background(QObject):
    """Runs plain functions in one Python thread and calls their ``done`` callbacks on the GUI thread.

    The thread never touches a QObject: results come back through a queue that a GUI timer drains while
    work is out. (A signal emitted from a Python thread works, but one emitted while the interpreter shuts
    down, after Qt's objects are gone, crashes the process.)
    """

    POLL_MS = 20

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._out = 0
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self.drain)
        pool = self._pool  # not self: the connection would keep this object's wrapper alive
        self.destroyed.connect(lambda: pool.shutdown(wait=False, cancel_futures=True))

    @property
    def busy(self) -> bool:
        return self._out > 0

    def submit(self, fn: Callable, done: Callable, *args) -> None:
        self._out += 1
        self._pool.submit(self._run, fn, done, args)
        self._timer.start()

    def _run(self, fn: Callable, done: Callable, args: tuple) -> None:
        try:
            result = fn(*args)
        except Exception as err:  # noqa: BLE001 (handed to ``done``, which shows it)
            result = err
        self._results.put((done, result))

    @Slot()
    def drain(self) -> None:
        while True:
            try:
                done, result = self._results.get_nowait()
            except queue.Empty:
                break
            self._out -= 1
            done(result)
        if not self._out:
            self._timer.stop()


def read_thumbnail(path: str) -> QImage:
    """A grid PNG scaled to the thumbnail height (a null image when unreadable). QImage, not QPixmap: only
    QImages may be made outside the GUI thread."""
    reader = QImageReader(path)
    size = reader.size()
    if size.isValid() and size.height() > THUMB:
        reader.setScaledSize(size.scaled(QSize(4 * THUMB, THUMB), Qt.KeepAspectRatio))
    return reader.read()


class RunsModel(QAbstractTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunSummary] = []
        self._rows: dict[Path, int] = {}
        self._thumbs: dict[str, QPixmap | None] = {}  # grid path -> its thumbnail (None: unreadable)
        self._loading: set[str] = set()
        self.loader = Background("thumbnails", self)  # a 4k-pixel grid takes tens of ms to decode
        # a pixmap, not the icon: the view's icon size is the thumbnails', far too big for a warning sign
        self._warning = QApplication.style().standardIcon(QStyle.SP_MessageBoxWarning).pixmap(16, 16)

    # --- updating -------------------------------------------------------------------------------------
    def update(self, runs: list[RunSummary]) -> None:
        """Make the rows ``runs``: changed rows are updated, gone ones removed, new ones appended."""
        wanted = {run.path: run for run in runs}
        for row in sorted((r for p, r in self._rows.items() if p not in wanted), reverse=True):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.runs[row]
            self.endRemoveRows()
        self._rows = {run.path: k for k, run in enumerate(self.runs)}
        for k, old in enumerate(self.runs):
            new = wanted[old.path]
            if new != old:
                self.runs[k] = new
                self.dataChanged.emit(self.index(k, 0), self.index(k, len(COLUMNS) - 1))
        fresh = [run for run in runs if run.path not in self._rows]
        if fresh:
            self.beginInsertRows(QModelIndex(), len(self.runs), len(self.runs) + len(fresh) - 1)
            self.runs.extend(fresh)
            self.endInsertRows()
        self._rows = {run.path: k for k, run in enumerate(self.runs)}

    def run_at(self, row: int) -> RunSummary:
        return self.runs[row]

    def row_of(self, path: Path) -> int | None:
        return self._rows.get(path)

    def request_thumbnail(self, path: str) -> None:
        if path not in self._loading:
            self._loading.add(path)
            self.loader.submit(read_thumbnail, partial(self._on_loaded, path), path)

    def _on_loaded(self, path: str, image) -> None:
        self._loading.discard(path)
        ok = isinstance(image, QImage) and not image.isNull()
        self._thumbs[path] = QPixmap.fromImage(image) if ok else None
        for k, run in enumerate(self.runs):
            if run.last_grid is not None and str(run.last_grid) == path:
                self.dataChanged.emit(self.index(k, THUMB_COL), self.index(k, THUMB_COL), [Qt.DecorationRole])

    # --- Qt's model interface -------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        run, col = self.runs[index.row()], index.column()
        if role == Qt.DisplayRole:
            return self._text(run, col)
        if role == SORT_ROLE:
            return self._sort_key(run, col)
        if role == Qt.DecorationRole:
            if col == THUMB_COL:
                return self._thumbnail(run)
            if col == NAME_COL and run.notes:
                return self._warning
        if role == Qt.ToolTipRole:
            return self._tooltip(run, col)
        if role == Qt.ForegroundRole and col == STATUS_COL and run.state in STATE_COLOURS:
            return QBrush(QColor(STATE_COLOURS[run.state]))
        if role == Qt.TextAlignmentRole and col in NUMBERS:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def _text(self, run: RunSummary, col: int) -> str | None:
        texts = (None, run.name, run.state, f"{run.step:,}", duration(run.elapsed), best_text(run), model_text(run),
                 dataset_text(run))
        return texts[col]

    def _sort_key(self, run: RunSummary, col: int):
        keys = (run.modified, run.name.lower(), STATE_ORDER.get(run.state, len(STATE_ORDER)), run.step,
                -1.0 if run.elapsed is None else run.elapsed, math.inf if run.best is None else run.best,
                model_text(run).lower(), dataset_text(run).lower())
        return keys[col]

    def _thumbnail(self, run: RunSummary) -> QPixmap | None:
        """Called by the view for the rows it paints: only those are ever loaded."""
        if run.last_grid is None:
            return None
        key = str(run.last_grid)
        if key not in self._thumbs:
            self.request_thumbnail(key)
            return None
        return self._thumbs[key]

    def search_text(self, row: int) -> str:
        run = self.runs[row]
        return " ".join(t for t in (self._text(run, c) for c in range(1, len(COLUMNS))) if t).lower()

    def _tooltip(self, run: RunSummary, col: int) -> str:
        if col == THUMB_COL and run.last_grid is not None:
            return f'<img src="{run.last_grid}" width="{TOOLTIP_SIDE}"><br>{run.last_grid.name}'
        lines = [str(run.path)] + ([f"{run.state}: {run.message}"] if run.message else [])
        lines += [f"⚠ {note}" for note in run.notes]
        return "\n".join(lines)


class RunsFilter(QSortFilterProxyModel):
    """Sorts by each column's sort key and keeps the rows whose text holds every word of the filter."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_filter(self, text: str) -> None:
        self.beginFilterChange()  # Qt 6.10's replacement for invalidateFilter
        self._words = text.lower().split()
        self.endFilterChange()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        if not self._words:
            return True
        text = self.sourceModel().search_text(row)
        return all(word in text for word in self._words)
