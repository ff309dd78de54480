"""The queue dock: the runs folder's queue (ganstudio/queue) as a table that follows ``queue.json``.

The studio never runs queued jobs itself: "Run queue" starts ``ganstudio queue run`` as a detached process
(its own session), which outlives the window; the dock only reads and edits ``queue.json`` (about once a
second) and signals the running job's folder, so the studio can follow that run like any other. A queue
found running when the window opens is shown, and its job signalled, the same way.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QDockWidget, QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from ganstudio.config import RunConfig
from ganstudio.engine.status import read_status
from ganstudio.queue import Job, JobQueue, QueueError, runner_alive
from ganstudio.queue.command import check_job

POLL_MS = 1000  # queue.json is a small file; once a second is live enough for jobs that run for minutes
COLUMNS = ("#", "Name", "State", "Run folder")
STATE_COLOURS = {"running": "#2e7d32", "failed": "#c62828", "crashed": "#c62828", "stopped": "#ef6c00"}
CONFIGS = "queue-configs"  # in the runs folder: the configs "Add current config" saved, one per job
_detached: list[subprocess.Popen] = []  # runners started here, kept (and reaped) after a dock is gone


class QueueDock(QWidget):
    """Lists the queue's jobs and their states; adds, removes, starts and stops."""

    running_job_changed = Signal(object)  # the running job's run folder (Path), or None when no job runs
    refreshed = Signal()                   # the table shows queue.json as read just now; tests wait on it
    message = Signal(str)                  # something for the log: a file set aside, an error

    def __init__(self, runs_root: Path, current_config: Callable[[], RunConfig | None],
                 parent: QWidget | None = None, poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.setObjectName("queue_dock")
        self.queue = JobQueue(runs_root)
        self.current_config = current_config
        self.jobs: list[Job] = []
        self.runner_running = False
        self.running_dir: Path | None = None
        self._shown: tuple = ()
        self._steps: dict[int, str] = {}  # a finished job's last step, read once from its status.json
        self._create_widgets()
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        QTimer.singleShot(0, self.refresh)

    def _create_widgets(self) -> None:
        self.summary = QLabel()
        self.summary.setObjectName("queue_summary")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("queue_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)  # a list, not a form
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        self.buttons = {}
        rows = [[("add", "Add current config", "Queue a job training the configuration in the form", self.add_current),
                 ("sweep", "Add sweep…", "Queue one job per value of one or two fields, values listed by hand",
                  self.add_sweep),
                 ("remove", "Remove", "Take the selected jobs off the queue (not a running one)",
                  self.remove_selected)],
                [("run", "Run queue", "Start working through the queue in the background; it goes on after the "
                  "window closes", self.start_runner),
                 ("stop", "Stop queue", "Stop the running job (it saves a checkpoint); later jobs stay queued",
                  self.stop_runner)]]
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        for row in rows:
            line = QHBoxLayout()
            for name, text, tip, slot in row:
                button = QPushButton(text)
                button.setObjectName(f"queue_{name}")
                button.setAccessibleName(text.rstrip("…"))
                button.setToolTip(tip)
                button.clicked.connect(slot)
                line.addWidget(button)
                self.buttons[name] = button
            line.addStretch(1)
            layout.addLayout(line)

    # --- following queue.json -------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        _detached[:] = [runner for runner in _detached if runner.poll() is None]  # reaps the ones that ended
        try:
            jobs = self.queue.read().jobs
        except (OSError, QueueError) as err:
            self.summary.setText(f"The queue file cannot be read: {err}")
            return
        for note in self.queue.notes:
            self.message.emit(note)
        self.queue.notes.clear()
        self.jobs, self.runner_running = jobs, runner_alive(self.queue.root)
        running = next((job for job in jobs if job.state == "running" and job.run_dir), None)
        rows = [(job.id, job.name or " ".join(job.args), self._state_text(job), job.run_dir, _tip(job), job.state)
                for job in jobs]
        shown = (tuple(rows), self.runner_running)
        if shown != self._shown:
            self._shown = shown
            self._fill(rows)
        self._show_summary()
        running_dir = Path(running.run_dir) if running and self.runner_running else None
        if running_dir != self.running_dir:
            self.running_dir = running_dir
            if running is not None:  # a long queue in a short dock: bring the job that now runs into view
                self.table.scrollToItem(self.table.item(jobs.index(running), 0))
            self.running_job_changed.emit(running_dir)
        self.refreshed.emit()

    def _state_text(self, job: Job) -> str:
        if job.state == "running":
            status, _ = read_status(job.run_dir) if job.run_dir else (None, None)
            return f"running · step {status.step}" if status else "running · starting"
        if job.state in ("queued",) or not job.run_dir:
            return job.state
        if job.id not in self._steps:
            status, _ = read_status(job.run_dir)
            self._steps[job.id] = f" · step {status.step}" if status else ""
        return job.state + self._steps[job.id]

    def _fill(self, rows: list[tuple]) -> None:
        """Change the cells in place: new items would drop the person's selection and an open tooltip every
        second while a job runs."""
        self.table.setRowCount(len(rows))
        for r, (job_id, name, state, run_dir, tip, raw_state) in enumerate(rows):
            for c, text in enumerate((str(job_id), name, state, Path(run_dir).name if run_dir else "")):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                if item.text() != text:
                    item.setText(text)
                if item.toolTip() != tip:
                    item.setToolTip(tip)
                item.setData(Qt.UserRole, job_id)
                if c == 2:  # no colour: the theme's text colour, also after a switch to dark
                    item.setData(Qt.ForegroundRole, QColor(STATE_COLOURS[raw_state]) if raw_state in STATE_COLOURS
                                 else None)

    def _show_summary(self) -> None:
        counts = {state: sum(job.state == state for job in self.jobs) for state in ("queued", "running")}
        if self.runner_running:
            text = f"Running: {counts['running']} job running, {counts['queued']} queued"
        else:
            text = f"Not running: {counts['queued']} queued" + (" — press Run queue" if counts["queued"] else "")
        self.summary.setText(text)
        self.buttons["run"].setEnabled(not self.runner_running and counts["queued"] > 0)
        self.buttons["stop"].setEnabled(self.runner_running)

    # --- editing ----------------------------------------------------------------------------------------
    @Slot()
    def add_current(self) -> None:
        config = self.current_config()
        if config is None:
            self._complain("The configuration has errors; fix the fields marked in the form, then add it.")
            return
        self._add_jobs(config, [([], config.name)])

    @Slot()
    def add_sweep(self) -> None:
        from ganstudio.gui.queue_sweep import SweepDialog

        config = self.current_config()
        if config is None:
            self._complain("The configuration has errors; fix the fields marked in the form, then sweep it.")
            return
        dialog = SweepDialog(config, self)
        if dialog.exec():
            self._add_jobs(config, dialog.jobs())

    def _add_jobs(self, config: RunConfig, jobs: list[tuple[list[str], str]]) -> list[Job]:
        """Save the config once under the runs folder, check every job against it, then queue them all."""
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() // 1000 % 1000000:06d}"
        path = self.queue.root / CONFIGS / f"{config.name}-{stamp}.toml"
        config.save(path)
        argvs = [["--config", str(path), *extra] for extra, _ in jobs]
        try:
            for argv in argvs:
                check_job(argv)
        except Exception as err:  # noqa: BLE001 - a ConfigError names the field; nothing is queued
            path.unlink(missing_ok=True)
            self._complain(f"Nothing was queued: {err}")
            return []
        added = [self.queue.add(argv, name) for argv, (_, name) in zip(argvs, jobs, strict=True)]
        self.refresh()
        return added

    @Slot()
    def remove_selected(self) -> None:
        ids = sorted({item.data(Qt.UserRole) for item in self.table.selectedItems()})
        for job_id in ids:
            try:
                self.queue.remove(job_id)
            except QueueError as err:
                self._complain(str(err))
        self.refresh()

    # --- the runner -------------------------------------------------------------------------------------
    @Slot()
    def start_runner(self) -> None:
        """``ganstudio queue run`` in its own session: it goes on when the window closes (or crashes)."""
        if runner_alive(self.queue.root):
            return
        self.queue.logs.mkdir(parents=True, exist_ok=True)
        with (self.queue.logs / "runner.log").open("ab") as log:
            command = [sys.executable, "-m", "ganstudio", "queue", "run", "--runs", str(self.queue.root)]
            runner = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=self.queue.root, start_new_session=True)
        _detached.append(runner)
        self.message.emit(f"queue runner started (pid {runner.pid}); it writes to {self.queue.logs / 'runner.log'}")
        QTimer.singleShot(300, self.refresh)

    @Slot()
    def stop_runner(self) -> bool:
        stopped = self.queue.stop_runner(signal.SIGTERM)
        if stopped:
            self.message.emit("stopping the queue: the running job saves a checkpoint; later jobs stay queued")
        QTimer.singleShot(300, self.refresh)
        return stopped

    def confirm_close(self) -> bool:
        """Called by the window's closeEvent: False keeps the window open. A running queue asks whether to
        stop its job or let the queue go on without the window."""
        self.refresh()
        if not self.runner_running:
            return True
        running = next((job for job in self.jobs if job.state == "running"), None)
        choice = ask_on_close(self, running)
        if choice == "stop":
            self.stop_runner()
        if choice != "cancel":
            self._timer.stop()
        return choice != "cancel"

    def _complain(self, text: str) -> None:
        self.message.emit(text)
        QMessageBox.warning(self, "Queue", text)


def ask_on_close(parent: QWidget, running: Job | None) -> str:
    """"stop", "keep" or "cancel" (a function of its own so tests can answer it)."""
    what = f"{running.describe()} is running" if running else "The queue is running"
    box = QMessageBox(QMessageBox.Question, "The queue is running",
                      f"{what}. Stop it (it saves a checkpoint; later jobs stay queued), or let the queue go on "
                      "without the window? Reopening the studio shows it again.", parent=parent)
    stop = box.addButton("Stop the running job", QMessageBox.DestructiveRole)
    keep = box.addButton("Let the queue go on", QMessageBox.AcceptRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    return "stop" if box.clickedButton() is stop else "keep" if box.clickedButton() is keep else "cancel"


def _tip(job: Job) -> str:
    lines = [f"ganstudio train {' '.join(job.args)}"]
    if job.run_dir:
        lines.append(f"run folder: {job.run_dir}")
    if job.log:
        lines.append(f"log: {job.log}")
    if job.message:
        lines.append(job.message)
    lines += job.tail[-8:]
    return "\n".join(lines)


def install_queue_dock(window) -> QueueDock:
    """The Queue dock, tabbed with the log; its View menu entry beside the others. Returns the widget."""
    dock_widget = QueueDock(window.run.runs_root, window.form.config, window)
    dock = QDockWidget("Queue", window)
    dock.setObjectName("dock_queue")
    dock.setAccessibleName("Queue")
    dock.setWidget(dock_widget)
    window.addDockWidget(Qt.RightDockWidgetArea, dock)
    window.tabifyDockWidget(window.docks["log"], dock)
    window.docks["queue"] = dock
    window.view_menu.insertAction(window.actions["dark"], dock.toggleViewAction())
    return dock_widget
