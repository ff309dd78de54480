"""The export dialog's background half: ``ExportWorker`` runs one ``ExportPlan`` in its thread, and the small
plain helpers the dialog uses (a run's class names, whether ONNX export can run, message wording)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from ganstudio.export import ExportCancelled, ExportError, ExportPlan, class_names, run_plan


class ExportWorker(QObject):
    """Runs one plan in its thread: progress(done, total), then done(paths) or failed(message), then finished."""

    progress = Signal(int, int)
    done = Signal(list)      # the written files and folders, as str
    failed = Signal(str)
    finished = Signal()

    def __init__(self, plan: ExportPlan) -> None:
        super().__init__()  # no parent: moveToThread silently fails on a QObject that has one
        self.plan = plan
        self._cancel = threading.Event()
        self._last: tuple[int, int] | None = None

    def cancel(self) -> None:
        """Thread-safe: the export stops at the next image (a queued slot would wait until run() ends)."""
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        try:
            self.done.emit([str(w.path) for w in run_plan(self.plan, self._progress)])
        except ExportCancelled:
            self.failed.emit("export cancelled")
        except ExportError as err:
            self.failed.emit(str(err))
        except Exception as err:  # noqa: BLE001 - shown in the dialog, never lost with the thread
            self.failed.emit(f"export failed: {type(err).__name__}: {err}")
        finally:
            self.finished.emit()

    def _progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise ExportCancelled("export cancelled")
        if (done, total) != self._last:  # run_plan reports in 1/1000 steps: at most ~1000 signals a job
            self._last = (done, total)
            self.progress.emit(done, total)


def run_classes(run_dir: Path) -> list[str]:
    """Class names of a conditional run, from its config.toml (a small file: read in the GUI thread)."""
    from ganstudio.config import ConfigError, RunConfig
    from ganstudio.families import family_of

    try:
        config = RunConfig.load(run_dir / "config.toml")
    except ConfigError:
        return []  # no run config yet: exports say what is missing
    return class_names(config) if family_of(config).conditional else []


def onnx_missing() -> str | None:
    """Why ONNX export cannot run here (its optional packages are missing), or None."""
    from ganstudio.model_export import require_onnx  # torch has loaded: the dialog imports ganstudio.export

    try:
        require_onnx()
    except ExportError as err:
        return str(err)
    return None


def sentence(message: str) -> str:
    """Engine messages start in lower case to follow ``error:`` on a command line; here they stand alone."""
    return message[:1].upper() + message[1:]


def short_name(path: Path) -> str:
    return f"{path.name}/" if path.is_dir() else path.name
