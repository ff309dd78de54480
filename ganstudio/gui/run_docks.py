"""The window's runs side: the Runs dock (every run folder), the Queue dock, Compare, and following the job a
queue runs. Kept out of main_window.py, which only composes the parts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from ganstudio.gui.queue_dock import install_queue_dock
from ganstudio.gui.runs_dock import install_runs_dock


class RunDocks(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        install_runs_dock(window)  # sets window.runs
        window.queue = install_queue_dock(window)
        window.queue.message.connect(window.log.add)
        window.queue.running_job_changed.connect(self.follow_job)
        window.docks["log"].raise_()
        self.job: Path | None = None  # a queued job being followed, or waited for
        self._timer = QTimer(self, interval=1000)
        self._timer.timeout.connect(self._follow_when_written)

    @Slot()
    def compare_selected(self) -> None:
        """Compare the runs selected in the Runs dock (2–6), or say how to select them."""
        from ganstudio.gui.compare import open_compare

        folders = [run.path for run in self.w.runs.selected_runs()]
        if len(folders) < 2:
            self.w.docks["runs"].show()
            self.w.docks["runs"].raise_()
            self.w.status.showMessage("Select 2–6 runs in the Runs dock (Ctrl+click or Shift+click), then Compare",
                                      8000)
            return
        self.w.compare_view = open_compare(self.w, folders)

    @Slot(object)
    def follow_job(self, folder: Path | None) -> None:
        """The queue started a job (or was found running at start-up): follow it, unless the window trains a
        run of its own. A job's folder is taken only once its process is up (seconds: torch loads first), so
        this waits for its writer instead of opening a folder that is not there yet."""
        self.job = Path(folder) if folder is not None else None
        if self.job is None:
            self._timer.stop()
            return
        self._timer.start()
        self._follow_when_written()

    @Slot()
    def _follow_when_written(self) -> None:
        from ganstudio.gui.follow import writer_elsewhere

        run = self.w.run
        if self.job is None or (run.busy and run.following is None):  # training in the window: leave it be
            return
        if run.following is not None and run.following.folder == self.job:
            self._timer.stop()
        elif writer_elsewhere(self.job):
            self._timer.stop()
            run.open_run(self.job)
