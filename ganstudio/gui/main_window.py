"""The studio's main window: docks for the config, plots, samples and log; menus, toolbar, status bar.

The window composes widgets and forwards commands to the training session (``run_control.py``); it holds
no training logic. Window geometry, dock layout and the last config persist in QSettings.

Nothing here imports torch: the window paints first, then (``_after_first_paint``) torch loads on a
background thread and the architecture preview builds its tables on another.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QToolBar,
                               QWidget)

from ganstudio.config import ConfigError, RunConfig, load_preset
from ganstudio.gui.arch_preview import ArchitecturePreview
from ganstudio.gui.config_form import ConfigForm
from ganstudio.gui.gallery import SampleGallery
from ganstudio.gui.icons import apply_icons
from ganstudio.gui.latent_dock import LatentDock
from ganstudio.gui.log_view import LogView
from ganstudio.gui.menus import (ACTIONS, MENUS, TOOLBAR, Overlay, PresetGuard, RecentRuns,
                                 ShortcutsDialog, about_text, first_launch_hint, reset_ranges, runs_exist)
from ganstudio.gui.metrics_panel import MetricsPanel
from ganstudio.gui.plots import TrainingPlots
from ganstudio.gui.run_control import RunController
from ganstudio.gui.run_docks import RunDocks
from ganstudio.gui.status import StatusBar
from ganstudio.gui.theme import apply_theme
from ganstudio.gui.threads import collect_on_gui_thread, preload_torch
from ganstudio.gui.warnings_view import WarningsBadge


class MainWindow(QMainWindow):
    first_painted = Signal()  # emitted from the window's first paintEvent (benchmarks/startup.py times it)

    def __init__(self, settings: QSettings | None = None, runs_root: Path | None = None) -> None:
        super().__init__()
        collect_on_gui_thread(self)  # a worker thread must never finalise Qt objects (threads.py says why)
        self._painted = False
        self.setObjectName("main_window")
        self.setWindowTitle("ganstudio")
        self.setAcceptDrops(True)  # drop a run folder to open it
        self.closing_by_signal = False  # SIGTERM/SIGHUP (gui/app.py): close without asking anything
        self.setDockNestingEnabled(True)
        self.settings = settings or default_settings()
        self._create_widgets()
        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self._create_docks()
        self.run = RunController(self, runs_root)
        self.run.run_changed.connect(self._on_run_changed)
        self._install_run_docks()
        self.preset_guard = PresetGuard(self.form, self)  # asks before a preset replaces edits
        self._restore_settings()
        self.run.update_actions()
        self.hint = Overlay(self.gallery, "first_launch_hint")
        if not runs_exist(self.run.runs_root):  # until the first run starts, and never once runs exist
            self.hint.show_text(first_launch_hint(self.form.config()))
            self.form.config_changed.connect(self._on_hinted_config)

    # --- construction ---------------------------------------------------------------------------------
    def _create_widgets(self) -> None:
        self.form = ConfigForm(_last_config(self.settings))
        self.preview = ArchitecturePreview()
        self.plots = TrainingPlots()
        self.metrics = MetricsPanel()
        self.gallery = SampleGallery()
        self.log = LogView()
        self.latent = LatentDock(current_run=lambda: self.run.run_dir)  # loads only while shown
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.warnings = WarningsBadge()  # replaces the status bar's plain count: it opens the list
        self.status.labels["warnings"].hide()
        self.status.addPermanentWidget(self.warnings)
        for follower in (self.preview, self.plots, self.metrics):  # each follows the model family
            self.form.config_changed.connect(follower.set_config)
        for follower in (self.plots, self.metrics):  # the preview's first build waits for the first paint
            if self.form.config() is not None:
                follower.set_config(self.form.config())

    def _create_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        for name, text, shortcut, tip in ACTIONS:
            action = QAction(text, self)
            action.setObjectName(name)
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            self.actions[name] = action
        self.actions["dark"].setCheckable(True)
        slots = {"new_run": self.new_run, "open_run": self.choose_run, "open_config": self.open_config,
                 "save_config": self.save_config, "export": self.export, "quit": self.close,
                 "save_checkpoint": self.save_checkpoint, "neighbours": self.show_neighbours,
                 "compare": self._compare_runs,
                 "reset_layout": self.reset_layout, "shortcuts": self.show_shortcuts, "about": self.about}
        for name, slot in slots.items():
            self.actions[name].triggered.connect(slot)
        self.actions["dark"].toggled.connect(self.set_dark)

    def _create_menus(self) -> None:
        for title, names in MENUS.items():
            menu = self.menuBar().addMenu(title)
            menu.setObjectName(f"menu_{title.strip('&').lower()}")
            for name in names:
                menu.addSeparator() if name is None else menu.addAction(self.actions[name])
        self.view_menu = self.menuBar().findChild(type(menu), "menu_view")
        self.recent = RecentRuns(self.settings)
        self.recent_menu = QMenu("&Recent runs", self)
        self.recent_menu.setObjectName("menu_recent")
        self.recent_menu.aboutToShow.connect(lambda: self.recent.fill(self.recent_menu, self.run.open_run))
        file_menu = self.menuBar().findChild(QMenu, "menu_file")
        file_menu.insertMenu(self.actions["open_config"], self.recent_menu)

    def _create_toolbar(self) -> None:
        toolbar = QToolBar("Training", self)
        toolbar.setObjectName("toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for name in TOOLBAR:
            if name is None:
                toolbar.addSeparator()
                continue
            toolbar.addAction(self.actions[name])
            button = toolbar.widgetForAction(self.actions[name])
            button.setObjectName(f"toolbar_{name}")
            button.setAccessibleName(self.actions[name].text().replace("&", ""))
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _create_docks(self) -> None:
        self.docks: dict[str, QDockWidget] = {}
        layout = [("config", "Configuration", self.form, Qt.LeftDockWidgetArea),
                  ("architecture", "Architecture", self.preview, Qt.LeftDockWidgetArea),
                  ("samples", "Samples", self.gallery, Qt.RightDockWidgetArea),
                  ("plots", "Plots", self.plots, Qt.RightDockWidgetArea),
                  ("metrics", "Metrics", self.metrics, Qt.RightDockWidgetArea),
                  ("log", "Log", self.log, Qt.RightDockWidgetArea),
                  ("latent", "Latent explorer", self.latent, Qt.RightDockWidgetArea)]
        for name, title, widget, area in layout:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            dock.setAccessibleName(title)
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
            self.view_menu.insertAction(self.actions["dark"], dock.toggleViewAction())
        self.view_menu.insertSeparator(self.actions["dark"])
        # left column: configuration over architecture; right: samples beside plots, the log under both
        self.splitDockWidget(self.docks["config"], self.docks["architecture"], Qt.Vertical)
        self.splitDockWidget(self.docks["samples"], self.docks["log"], Qt.Vertical)
        self.splitDockWidget(self.docks["samples"], self.docks["plots"], Qt.Horizontal)
        self.tabifyDockWidget(self.docks["plots"], self.docks["metrics"])
        self.tabifyDockWidget(self.docks["metrics"], self.docks["latent"])
        self.docks["latent"].hide()  # View ▸ Latent explorer shows it, as a tab beside the plots, in front
        self.docks["latent"].toggleViewAction().triggered.connect(lambda on: on and self.docks["latent"].raise_())
        self.docks["plots"].raise_()
        self.setCentralWidget(QWidget())  # docks fill the window; the empty centre takes no space
        self.centralWidget().setMaximumSize(0, 0)
        self._initial_state = self.saveState()  # what View ▸ Reset layout goes back to

    def _install_run_docks(self) -> None:
        """The Runs and Queue docks (they need the run controller's runs folder, so come after the others)."""
        self.run_docks = RunDocks(self)
        self._initial_state = self.saveState()  # View ▸ Reset layout includes them

    @Slot()
    def _compare_runs(self) -> None:
        self.run_docks.compare_selected()

    def _default_layout(self) -> None:
        self.resize(1400, 860)
        self._needs_layout = True  # dock sizes apply once the window is shown (showEvent)

    @Slot()
    def reset_layout(self) -> None:
        """Docks and the toolbar back where a first start puts them (hidden, floating or moved ones too)."""
        self.restoreState(self._initial_state)
        for dock in self.docks.values():
            dock.setFloating(False)
        self.toolbar.show()
        if self.isVisible():
            self._size_docks()
        else:
            self._needs_layout = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_needs_layout", False):
            self._needs_layout = False
            self._size_docks()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self._after_first_paint)  # after this paint pass (the docks) has finished

    @Slot()
    def _after_first_paint(self) -> None:
        """torch and the preview's tables load now, off the GUI thread: the window is up and answers."""
        preload_torch()
        self.run.update_actions()  # "Loading PyTorch…" until it is in; Export waits for it (gui/readiness.py)
        self.preview.set_config(self.form.config())  # None (an invalid form) is ignored

    def _size_docks(self) -> None:
        docks = self.docks
        self.resizeDocks([docks["config"], docks["samples"], docks["plots"]], [400, 440, 560], Qt.Horizontal)
        self.resizeDocks([docks["config"], docks["architecture"]], [520, 300], Qt.Vertical)  # tables: ~8 rows
        self.resizeDocks([docks["samples"], docks["log"]], [640, 140], Qt.Vertical)

    # --- settings -------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry, state = self.settings.value("geometry"), self.settings.value("window_state")
        if geometry is None or not self.restoreGeometry(geometry) or state is None or not self.restoreState(state):
            self._default_layout()
        dark = self.settings.value("dark", False, type=bool)
        self.actions["dark"].setChecked(dark)  # toggled -> set_dark
        self.set_dark(dark)

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("dark", self.actions["dark"].isChecked())
        config = self.form.config()
        if config is not None:
            self.settings.setValue("last_config", config.to_toml())
        self.settings.sync()

    # --- File menu ------------------------------------------------------------------------------------
    @Slot()
    def new_run(self) -> None:
        """A clean slate: nothing of the last run stays (plots and their ranges, warnings, the estimate,
        the latent explorer's run)."""
        if self.run.busy:
            self.log.add("stop training before starting a new run", "warning")
            return
        self.run.forget_run()
        self.status.clear_warnings()
        self.warnings.clear()
        reset_ranges(self.plots)
        reset_ranges(self.metrics)
        estimate = self.preview.findChild(QLabel, "estimate_result")
        if estimate is not None:
            estimate.clear()
        self.latent.reload()  # its run is now None: it says so instead of showing the old one

    @Slot(object)
    def _on_run_changed(self, run_dir: Path | None) -> None:
        if run_dir is not None:
            self.recent.add(run_dir)
            self.hint.hide()

    @Slot(object)
    def _on_hinted_config(self, config) -> None:
        if not self.hint.isHidden():  # until the first run starts
            self.hint.show_text(first_launch_hint(config))

    @Slot()
    def save_checkpoint(self) -> None:
        if self.run.busy:
            self.run.request_checkpoint()
            self.log.add("saving a checkpoint at the next step")

    @Slot()
    def choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run folder", str(self.run.runs_root))
        if folder:
            self.run.open_run(Path(folder))

    @Slot()
    def open_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open config", "", "TOML files (*.toml)")
        if path:
            self.load_config_file(Path(path))

    def load_config_file(self, path: Path) -> None:
        try:
            self.form.set_config(RunConfig.load(path))
        except ConfigError as err:
            self.show_error(f"Cannot open {path.name}", str(err))
            return
        self.log.add(f"loaded settings from {path}")

    @Slot()
    def save_config(self) -> None:
        config = self.form.config()
        if config is None:
            self.show_error("Cannot save", "The settings are not valid:\n" + self.form.error_text())
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save config as", f"{config.name}.toml", "TOML files (*.toml)")
        if path:
            try:
                config.save(Path(path))
            except OSError as err:
                self.show_error("Cannot save", f"{path}: {err.strerror or err}")
                return
            self.log.add(f"saved settings to {path}")

    @Slot()
    def export(self) -> None:
        from ganstudio.gui.export_dialog import ExportDialog

        if self.run.run_dir is None:
            self.show_error("Nothing to export", "Start or open a run first: exports come from its checkpoint.")
            return
        self.run.request_checkpoint()
        self.export_dialog = ExportDialog(self.run.run_dir, self)
        self.export_dialog.open()

    @Slot()
    def show_neighbours(self) -> None:
        from ganstudio.engine.rundir import RunDir
        from ganstudio.gui.neighbours_dialog import NeighboursDialog

        if self.run.run_dir is None or not RunDir(self.run.run_dir).last_checkpoint.is_file():
            self.show_error("No checkpoint yet", "The memorisation check uses the run's last checkpoint.")
            return
        self.run.request_checkpoint()
        self.neighbours_dialog = NeighboursDialog(self.run.run_dir, self)
        self.neighbours_dialog.open()

    # --- View and Help --------------------------------------------------------------------------------
    @Slot(bool)
    def set_dark(self, dark: bool) -> None:
        apply_theme(dark, self)
        apply_icons(self.actions, paused=self.status.state == "paused")  # drawn in the new text colour

    @Slot()
    def show_shortcuts(self) -> None:
        self.shortcuts_dialog = ShortcutsDialog(self.actions.values(), self)
        self.shortcuts_dialog.open()

    @Slot()
    def about(self) -> None:
        box = QMessageBox(QMessageBox.Information, "About ganstudio", about_text(self.run.device), QMessageBox.Ok, self)
        box.setObjectName("about_box")
        box.open()

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking error dialog; the message also goes to the log."""
        self.log.add(message, "error")
        box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
        box.setObjectName("error_box")
        box.open()

    # --- window events --------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if Path(url.toLocalFile()).is_dir():
                self.run.open_run(Path(url.toLocalFile()))
                return

    def closeEvent(self, event) -> None:
        """Closing while training: stop, and close once the worker has saved its checkpoint and ended. The
        event is refused meanwhile, so the window keeps painting and says that it is saving; the process
        exits as soon as the checkpoint is safe, not after a fixed wait."""
        from ganstudio.gui.job_launch import confirm_close

        if not confirm_close(self):  # a job started here (Processes > 1): stop it, or leave it running
            event.ignore()
            return
        if not (self.closing_by_signal or getattr(self, "_queue_asked", False)):
            if not self.queue.confirm_close():  # a running queue: stop its job, or let it go on
                event.ignore()
                return
            self._queue_asked = True  # asked once: _close_when_stopped closes again
        if self.run.busy:
            event.ignore()
            if not getattr(self, "_closing", False):  # a second close (Ctrl+Q, a signal) just waits too
                self._closing = True
                # the thread's end, not the worker's finished: that one may already be queued, unseen by a new slot
                self.run.session.thread.finished.connect(self._close_when_stopped)
                doing = "stopping the start-up" if self.run.starting else "saving a checkpoint"
                self.run.stop()
                self.status.showMessage(f"{doing} before closing…")
                self.saving = Overlay(self, "saving_overlay")
                self.saving.show_text(f"{doing.capitalize()} before closing…")
            return
        self.run.shutdown()  # joins a thread that has already ended (or never started)
        self.latent.shutdown()
        for dialog in (getattr(self, "neighbours_dialog", None), getattr(self, "export_dialog", None)):
            if dialog is not None:
                dialog.done(0)  # each waits for its own background job
        self.preview.close()
        self.save_settings()
        super().closeEvent(event)

    @Slot()
    def _close_when_stopped(self) -> None:
        self._closing = False
        QTimer.singleShot(0, self.close)  # from the event loop, after the controller's own finished slot


def default_settings() -> QSettings:
    """The user's settings; GANSTUDIO_SETTINGS=FILE.ini keeps them elsewhere (tests, portable installs)."""
    import os

    path = os.environ.get("GANSTUDIO_SETTINGS")
    return QSettings(path, QSettings.IniFormat) if path else QSettings("ganstudio", "ganstudio")


def _last_config(settings: QSettings) -> RunConfig:
    """The config of the last session, else the default preset."""
    text = settings.value("last_config")
    if text:
        import tomllib

        from ganstudio.config import from_dict

        try:
            return from_dict(tomllib.loads(text), source="saved settings")
        except (ConfigError, tomllib.TOMLDecodeError):
            pass  # settings from another version: fall back to the default
    return load_preset("dcgan-fashion")
