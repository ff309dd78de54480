"""The window's actions and menus as tables, and its everyday extras: recent runs (File menu), the
keyboard-shortcuts list (Help menu), the question before a preset replaces edits, and the overlay that
says what the window waits for.

Each is built from what the window already has (its QSettings, its actions, its form), so nothing here
is a second copy of a table kept by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QHeaderView, QLabel, QMenu, QMessageBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ganstudio.config import ConfigError, load_preset, preset_names

# (name, text, shortcut, status tip) — every action is created from this table in one place
ACTIONS = [
    ("new_run", "&New run", "Ctrl+N", "Clear the window for a new run with the current settings"),
    ("open_run", "&Open run…", "Ctrl+O", "Open a run folder: its history, and Start continues it"),
    ("open_config", "Open &config…", "", "Load settings from a TOML file"),
    ("save_config", "&Save config as…", "Ctrl+Shift+S", "Save the current settings as a TOML file"),
    ("export", "&Export…", "Ctrl+E", "Write images, a progress GIF or an interpolation from the run"),
    ("compare", "&Compare runs…", "", "Compare 2–6 runs side by side: select them in the Runs dock first"),
    ("quit", "&Quit", "Ctrl+Q", "Close the studio (a running training saves a checkpoint first)"),
    ("start", "&Start", "F5", "Start training (or continue the opened run)"),
    ("pause", "&Pause", "Space", "Pause or resume training"),
    ("step", "S&tep", "F10", "Run exactly one D+G step, then stay paused"),
    ("step_d", "Step &D", "Alt+F10", "Run one discriminator step only"),
    ("step_g", "Step &G", "Shift+F10", "Run one generator step only"),
    ("stop", "St&op", "Shift+F5", "Stop training and save a checkpoint"),
    ("save_checkpoint", "Save c&heckpoint now", "Ctrl+S", "Write checkpoints/last.pt now; training goes on"),
    ("sample_now", "Sample &now", "F6", "Write a sample grid from the fixed noise now"),
    ("evaluate", "&Evaluate now", "F7", "Measure FID, KID, IS, precision/recall now (in the training thread)"),
    ("neighbours", "Nearest &neighbours…", "", "Generated images beside their nearest training images"),
    ("dark", "&Dark theme", "", "Switch between the light and the dark theme"),
    ("reset_layout", "&Reset layout", "", "Put the docks and the toolbar back where they were at first"),
    ("shortcuts", "&Keyboard shortcuts", "F1", "List every action that has a shortcut"),
    ("about", "&About", "", "Versions and device"),
]
MENUS = {
    "&File": ["new_run", "open_run", "open_config", "save_config", None, "export", "compare", None, "quit"],
    "&Run": ["start", "pause", "step", "step_d", "step_g", "stop", None, "save_checkpoint", "sample_now", "evaluate",
             "neighbours"],
    "&View": ["dark", "reset_layout"],
    "&Help": ["shortcuts", "about"],
}
TOOLBAR = ["start", "pause", "step", "step_d", "step_g", "stop", None, "sample_now", "evaluate", "save_checkpoint",
           "export"]


def first_launch_hint(config) -> str:
    """The empty gallery's words until the first run starts: what F5 trains, as the form now stands."""
    from ganstudio.families import family_of

    if config is None:  # the form holds an error: it says which
        return "Press F5 or Start to train, once the configuration's errors are fixed."
    data = config.data
    if data.source == "bundled":
        where = "the bundled Fashion-MNIST"
    elif data.source == "folder":
        where = f"your images in {data.path}" if data.path else "a folder of images (choose it under Data)"
    else:
        where = data.source.removeprefix("torchvision:") + (" (downloaded on first use)" if data.download else "")
    title = family_of(config).title  # "GAN", "Conditional GAN", "Autoencoder", "VAE"
    what = title if title.isupper() else title[0].lower() + title[1:]
    article = "an" if what[0] in "aeiou" else "a"
    return (f"Press F5 or Start to train {article} {what} on {where}.\n\n"
            "Samples appear here as it learns; the plots show its losses.")


def about_text(device: str | None) -> str:
    """The About box: versions of what the studio runs on (torch only once loaded: asking would import it)."""
    import platform
    import sys

    import pyqtgraph
    import PySide6

    from ganstudio import __version__

    from ganstudio.gui.threads import torch_pending

    torch_line = "torch: not loaded yet"
    if not torch_pending() and "torch" in sys.modules:  # not mid-import: then it is in sys.modules half-made
        torch = sys.modules["torch"]
        cuda = "available" if torch.cuda.is_available() else "not available"
        torch_line = f"torch {torch.__version__} (CUDA {cuda})"
    return (f"<b>ganstudio {__version__}</b><br>A training studio for GANs.<br><br>"
            f"Python {platform.python_version()}<br>{torch_line}<br>PySide6 {PySide6.__version__}<br>"
            f"pyqtgraph {pyqtgraph.__version__}<br>device: {device or 'chosen when training starts'}")


def runs_exist(runs_root: Path) -> bool:
    try:
        return any(p.is_dir() for p in Path(runs_root).iterdir())
    except OSError:  # no runs folder yet
        return False


def reset_ranges(root: QWidget) -> None:
    """Every plot under ``root`` back to following its data (a zoom or pan turns that off)."""
    import pyqtgraph as pg

    for view in root.findChildren(pg.GraphicsView):
        boxes = [item for item in view.items() if isinstance(item, pg.ViewBox)]
        for box in boxes:  # the curves empty now, not at the plots' next redraw, or auto-range refits old data
            for item in box.addedItems:
                if isinstance(item, pg.PlotDataItem):
                    item.setData([], [])
        for box in boxes:
            box.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            box.enableAutoRange()


class RecentRuns:
    """Run folders opened or started, most recent first, kept in QSettings (one path a line)."""

    KEY = "recent_runs"
    LIMIT = 8

    def __init__(self, settings) -> None:
        self.settings = settings

    def paths(self) -> list[Path]:
        text = self.settings.value(self.KEY, "")
        return [Path(line) for line in str(text or "").splitlines() if line.strip()][: self.LIMIT]

    def add(self, folder: Path) -> None:
        folder = Path(folder).resolve()
        paths = [folder] + [p for p in self.paths() if p != folder]
        self._store(paths[: self.LIMIT])

    def clear(self) -> None:
        self._store([])

    def _store(self, paths: list[Path]) -> None:
        self.settings.setValue(self.KEY, "\n".join(str(p) for p in paths))

    def fill(self, menu: QMenu, open_run: Callable[[Path], None]) -> None:
        """Rebuild ``menu``: one entry per run; a folder that no longer exists is listed, disabled."""
        menu.clear()
        paths = self.paths()
        for i, path in enumerate(paths):
            exists = (path / "config.toml").is_file()
            label = f"&{i + 1} {path.name}" if i < 9 else path.name
            action = menu.addAction(label if exists else f"{label} (missing)")
            action.setObjectName(f"recent_run_{i}")
            action.setToolTip(str(path))
            action.setStatusTip(str(path) if exists else f"{path} no longer exists")
            action.setEnabled(exists)
            action.triggered.connect(lambda _=False, p=path: open_run(p))
        if not paths:
            menu.addAction("No recent runs").setEnabled(False)
            return
        menu.addSeparator()
        menu.addAction("Clear list", self.clear).setObjectName("recent_runs_clear")


class ShortcutsDialog(QDialog):
    """Every action that has a shortcut, read from the actions themselves, in the order given."""

    def __init__(self, actions: Iterable[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(a.text().replace("&", ""), a.shortcut().toString(QKeySequence.NativeText), a.statusTip())
                for a in actions if not a.shortcut().isEmpty()]
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setObjectName("shortcuts_table")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Action", "Keys", "What it does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(720, 120 + 30 * len(rows))

    def shortcuts(self) -> dict[str, str]:
        """{action text: keys}, as shown."""
        return {self.table.item(r, 0).text(): self.table.item(r, 1).text() for r in range(self.table.rowCount())}


class PresetGuard(QObject):
    """Asks before a preset replaces edits made in the form (Discard / Cancel).

    The form's preset box loads a preset on ``activated``; this takes that signal over, so the question
    comes before anything is replaced. A form that holds a preset as bundled, unedited, is replaced
    without a question: nothing would be lost.
    """

    def __init__(self, form, parent: QWidget) -> None:
        super().__init__(parent)
        self.form, self.parent_widget = form, parent
        self.box: QComboBox = form.findChild(QComboBox, "preset")
        self.box.activated.disconnect()  # the form's own slot loads at once; ours asks first
        self.box.activated.connect(self._chosen)

    def _chosen(self, index: int) -> None:
        name = self.box.itemText(index)
        current = self.form.config()
        if current is not None and current.name == name and _is_bundled(current):
            return  # the same preset again, unedited: nothing to do
        if self.has_edits() and not self.ask(name):
            if current is not None:
                self.form.set_config(current)  # puts the box back on the config's own name
            return
        self.form.choose_preset(name)

    def has_edits(self) -> bool:
        """True when the form holds something other than a bundled preset as it ships (or is invalid)."""
        current = self.form.config()
        return current is None or not _is_bundled(current)

    def ask(self, name: str) -> bool:
        answer = QMessageBox.question(
            self.parent_widget, "Replace your settings?",
            f"Loading the preset “{name}” replaces the settings in the form, including your edits.",
            QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Discard


def _is_bundled(config) -> bool:
    if config.name not in preset_names():
        return False
    try:
        return load_preset(config.name) == config
    except ConfigError:
        return False


class Overlay(QLabel):
    """A centred message over a widget (the first-launch hint, "saving a checkpoint…"); clicks pass through."""

    _repolishing = False

    def __init__(self, target: QWidget, object_name: str) -> None:
        super().__init__(target)
        self.setObjectName(object_name)
        self.setAccessibleName(object_name.replace("_", " ").capitalize())
        self.setAlignment(Qt.AlignCenter)
        self.setWordWrap(True)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setStyleSheet("QLabel { background: palette(window); border: 1px solid palette(mid); "
                           "border-radius: 8px; padding: 18px; font-size: 15px; }")
        self.hide()
        target.installEventFilter(self)

    def show_text(self, text: str) -> None:
        self.setText(text)
        self._place()
        self.show()
        self.raise_()

    def eventFilter(self, watched, event) -> bool:
        if event.type() in (QEvent.Resize, QEvent.Show) and not self.isHidden():  # hidden: not asked to show
            self._place()
        return False

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange and not self._repolishing:  # palette() in the sheet: re-read
            self._repolishing = True
            self.setStyleSheet(self.styleSheet())
            self._repolishing = False

    def _place(self) -> None:
        area = self.parentWidget().rect()
        width = min(460, max(160, area.width() - 40))
        self.setFixedSize(width, max(40, self.heightForWidth(width)))
        self.move(area.center().x() - width // 2, area.center().y() - self.height() // 2)
