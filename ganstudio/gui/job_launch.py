"""Start with Processes > 1: the studio trains the run as a child ``ganstudio train --nproc N`` (DDP through
torch's launcher) and follows it like any run another process writes (gui/follow.py).

The child runs in its own session, so it goes on when the window closes or crashes; closing asks whether to
stop it or leave it running (the Runs dock shows it, and opening it follows it again). Its config file and
log live in ``<runs root>/.jobs/<run name>/``: a new run's folder must be empty when rank 0 takes it (the
engine refuses a used folder), and the Runs dock skips hidden folders. The engine writes the run's own
``config.toml`` into the run folder, as for every run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from ganstudio.config import RunConfig

JOBS = ".jobs"  # hidden: the Runs dock lists no folder whose name starts with a dot
POLL_MS = 250
TAIL_LINES = 12  # lines of job.log shown when the job ends before it trains
_children: list[subprocess.Popen] = []  # jobs started here, kept (and reaped) after their launch is gone


def job_files(runs_root: Path, run_dir: Path) -> tuple[Path, Path]:
    """Where a job's config file and log go: ``<runs root>/.jobs/<run name>/config.toml`` and ``job.log``."""
    folder = Path(runs_root) / JOBS / Path(run_dir).name
    return folder / "config.toml", folder / "job.log"


def job_command(run_dir: Path, nproc: int, config_file: Path | None = None,
                changes: dict[str, object] | None = None) -> list[str]:
    """The child's command line: a new run from ``config_file``, else a resumed one with ``changes``."""
    command = [sys.executable, "-m", "ganstudio", "train"]
    if config_file is not None:
        command += ["--config", str(config_file), "--run-dir", str(run_dir)]
    else:
        command += ["--resume", str(run_dir)]
    for key, value in (changes or {}).items():
        command += ["--set", f"{key}={_toml_value(value)}"]
    return command + ["--nproc", str(nproc), "--quiet"]


def _toml_value(value: object) -> str:
    if value is None:
        return "none"  # parse_override: the field's default
    return json.dumps(value)  # numbers, true/false and quoted strings read the same as TOML


def alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


class PendingControl:
    """The controller's ``Control`` while the job starts (torch loads, the data decodes): commands wait and
    reach the job once it holds its folder (a command sent earlier would be history to it); Stop ends the
    launch at once, as a signal does in start-up: nothing trained, nothing saved."""

    def __init__(self, launch: JobLaunch) -> None:
        self.launch, self.calls = launch, []
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return False

    def pause(self) -> None:
        self._paused = True
        self.calls.append(("pause", ()))

    def resume(self) -> None:
        self._paused = False
        self.calls.append(("resume", ()))

    def step_once(self, kind: str = "both") -> None:
        self.calls.append(("step_once", (kind,)))

    def request(self, name: str) -> None:
        self.calls.append(("request", (name,)))

    def set_hparam(self, key: str, value) -> None:
        self.calls.append(("set_hparam", (key, value)))

    def stop(self) -> None:
        self.launch.terminate()


class JobLaunch(QObject):
    """One job the studio started. It stands in for the controller's ``following`` until the job's writer
    holds the run folder, then hands over to ``follow_run``; it stays as ``controller.job`` for the close."""

    def __init__(self, controller, run_dir: Path, command: list[str], log_file: Path, nproc: int) -> None:
        super().__init__(controller)
        self.c, self.w = controller, controller.w
        self.folder, self.command, self.log_file, self.nproc = Path(run_dir), command, Path(log_file), nproc
        self.proc: subprocess.Popen | None = None
        self.control = PendingControl(self)
        self.timer = QTimer(self, interval=POLL_MS)
        self.timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self.proc is not None and alive(self.proc)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        _children.append(self.proc)
        self.c.job, self.c.following, self.c.control = self, self, self.control
        self.w.log.add(f"starting {self.nproc} processes (pid {self.proc.pid}) for {self.folder}; "
                       f"log: {self.log_file}")
        self.w.status.showMessage(f"starting {self.nproc} processes…")
        self.c._set_state("paused" if self.control.paused else "running")
        self.timer.start()

    def leave(self) -> None:
        """Stop waiting for the job (another run opened, the window closes): the job goes on."""
        self.timer.stop()
        if self.c.following is self:
            self.c.following = self.c.control = None

    def terminate(self) -> None:
        """End the job's whole session (launcher and ranks) before it trains."""
        if self.running:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.w.log.add("stopping the job before it started training")

    @Slot()
    def _poll(self) -> None:
        from ganstudio.gui.follow import follow_run, writer_elsewhere

        if self.c.following is not self:
            self.timer.stop()  # left, or already following
        elif writer_elsewhere(self.folder) and (self.folder / "config.toml").is_file():
            self.timer.stop()
            self.w.status.clearMessage()
            pending = self.control
            if follow_run(self.c, self.folder):
                for name, args in pending.calls:
                    getattr(self.c.control, name)(*args)
                if pending.paused:
                    self.c._set_state("paused")
        elif not self.running:
            self.timer.stop()
            self.leave()
            self._failed()

    def _failed(self) -> None:
        code = self.proc.returncode
        tail = _tail(self.log_file)
        self.w.status.showMessage(f"the job ended before training (exit {code})")
        self.w.log.add(f"the {self.nproc}-process job ended before training (exit {code}); log: {self.log_file}",
                       "error")
        self.c._set_state("error")
        self.c.update_actions()
        self.w.show_error("The job did not start", f"ganstudio train --nproc {self.nproc} ended with exit {code} "
                          f"before training.\n\nThe last lines of {self.log_file}:\n{tail}")


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(could not read it: {err})"
    return "\n".join(text.splitlines()[-lines:])


def start_job(controller, config: RunConfig, paused: bool, resume_changes: dict | None = None) -> JobLaunch:
    """Start ``config`` on ``config.train.processes`` processes: a new run folder, or continue the opened run
    (``resume_changes`` not None: the fields the form changed that may differ within a run)."""
    from ganstudio.engine.rundir import RunDir

    nproc = config.train.processes
    if resume_changes is None:
        run_dir = RunDir.new(controller.runs_root, config.name).path
        config_file, log_file = job_files(controller.runs_root, run_dir)
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config.save(config_file)
        command = job_command(run_dir, nproc, config_file)
        w = controller.w
        for view in (w.plots, w.metrics, w.gallery, w.warnings):
            view.clear()
        w.status.clear_warnings()
        w.log.add(f"new run in {run_dir}")
    else:
        run_dir = controller.run_dir
        _, log_file = job_files(controller.runs_root, run_dir)
        command = job_command(run_dir, nproc, changes=resume_changes)
        controller.w.log.add(f"continuing {run_dir}")
    controller.run_dir, controller.run_config = run_dir, config
    launch = JobLaunch(controller, run_dir, command, log_file, nproc)
    if paused:
        launch.control.pause()
    launch.start()
    controller.run_changed.emit(run_dir)
    return launch


# --- closing the window while a job started here runs ------------------------------------------------------
def ask_on_close(parent, folder: Path) -> str:
    """"stop", "keep" or "cancel" (a function of its own so tests can answer it)."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Question, "A training job is running",
                      f"The job training {folder} runs in its own processes. Stop it (it saves a checkpoint), or "
                      "leave it running? A job left running shows in the Runs dock; opening it follows it again.",
                      parent=parent)
    stop = box.addButton("Stop the job", QMessageBox.DestructiveRole)
    keep = box.addButton("Leave it running", QMessageBox.AcceptRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    return "stop" if box.clickedButton() is stop else "keep" if box.clickedButton() is keep else "cancel"


def confirm_close(window) -> bool:
    """The window's closeEvent asks this first: False keeps the window open for now. With a job started here
    running: "keep" lets it go on; "stop" sends it stop and closes once its processes have exited (the
    window painting meanwhile); "cancel" keeps the window."""
    run, launch = window.run, getattr(window.run, "job", None)
    if getattr(window, "_job_stopping", False) and not window.closing_by_signal:
        return False  # still waiting for it to exit
    choice = "keep"
    if launch is not None and launch.running and not window.closing_by_signal:  # a signal never asks: it leaves it
        choice = ask_on_close(window, launch.folder)
    if choice == "cancel":
        return False
    if choice == "keep":
        if launch is not None and launch.running:
            window.log.add(f"leaving the job running: {launch.folder}")
        if run.following is not None:  # a followed run goes on in its own process; the window closes at once
            run.following.leave()
        return True
    window._job_stopping = True
    run.stop()  # the command file (or ending the launch, before it trains)
    window.status.showMessage("stopping the job and saving a checkpoint…")
    from ganstudio.gui.menus import Overlay

    window.saving = Overlay(window, "saving_overlay")
    window.saving.show_text("Stopping the job and saving a checkpoint…")
    timer = QTimer(window, interval=POLL_MS)

    def closed_when_gone() -> None:
        if not launch.running:
            timer.stop()
            window._job_stopping = False
            if run.following is not None:
                run.following.leave()
            launch.c.job = None
            window.close()

    timer.timeout.connect(closed_when_gone)
    timer.start()
    return False
