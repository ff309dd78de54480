"""The bridge between the studio and the engine: commands in (through a Control), plain data out.

``TrainWorker.run`` runs in its own QThread and stays inside ``Trainer.run`` until training ends, so it
never runs queued slots: every command (pause, step, stop, a new learning rate) goes through the
engine's thread-safe :class:`~ganstudio.engine.control.Control`, which the GUI thread calls directly.
Events leave as signals carrying dicts and numpy arrays, never tensors; step figures are coalesced to
at most ~20 emissions a second. The step count (``Progress``, ~10 a second, no device sync) travels
on its own signal, so the status bar moves between the figures' ``log_every`` rows.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ganstudio.config import RunConfig
from ganstudio.gui import threads

EMIT_INTERVAL = 0.05  # seconds: at most ~20 progress emissions a second


@dataclass(frozen=True)
class RunInfo:
    """Sent once the Trainer is built: what the status bar and the log show about the run."""

    run_dir: Path
    device: str
    step: int
    elapsed: float  # training seconds before this session (the run's wall_time at its start)
    config: RunConfig
    warnings: tuple[str, ...]


class TrainWorker(QObject):
    started_run = Signal(object)  # RunInfo
    progressed = Signal(object)  # list[dict]: StepStats rows (as in metrics.jsonl), oldest first
    stepped = Signal(object)  # engine Progress: step, epoch, steps/s, images/s (~10 a second)
    marked = Signal(object)  # engine RunEvent: paused, resumed, a live change, a rollback, a single step, stopped
    preparing = Signal(int, int)  # images prepared, of how many: a folder's cache being built at the start
    downloading = Signal(str, str)  # a torchvision dataset fetched at the start: its source, the cache folder
    sampled = Signal(object)  # engine Samples: step, uint8 (N, H, W, C), path
    snapshotted = Signal(object)  # engine GeneratorSnapshot: G's weights on the CPU, for the latent explorer
    warned = Signal(object)  # engine TrainWarning
    checkpointed = Signal(object)  # engine CheckpointSaved
    eval_started = Signal(object)  # engine EvalStarted
    evaluated = Signal(object)  # engine EvalResult
    failed = Signal(str)  # a message a person can act on
    finished = Signal(object)  # engine RunFinished, or None when the Trainer never started

    def __init__(self, control, run_dir: Path, config: RunConfig | None = None,
                 changes: Mapping[str, Any] | None = None) -> None:
        """``config`` starts a new run in ``run_dir``; ``config=None`` resumes the run there, with
        ``changes`` (``{dotted key: value}``, from the studio's form) applied to its config."""
        super().__init__()  # no parent: a QObject with a parent cannot move to another thread
        self.control, self.run_dir, self.config = control, Path(run_dir), config
        self.changes = dict(changes or {})
        self._pending: list[dict] = []
        self._last_emit = 0.0

    @Slot()
    def run(self) -> None:
        from ganstudio.engine.lock import RunLock  # light: no torch

        finished = None
        try:
            # the run folder's writer lock before the (slow) build: another writer is refused at once
            with RunLock(self.run_dir, "ganstudio studio") as lock:
                for note in lock.notes:
                    self._on_event(_lock_note(note))
                trainer = self._build()
                try:
                    if not self.control.stopped:  # closed or stopped while starting: nothing to train or save
                        self.started_run.emit(RunInfo(self.run_dir, str(trainer.device), trainer.global_step,
                                                      trainer.elapsed, trainer.config,
                                                      (*trainer.batches.warnings, *trainer.warnings)))
                        finished = trainer.run(self.control, [self._on_event])
                finally:
                    trainer.close()
        except Exception as err:  # noqa: BLE001 - every failure reaches the GUI as a message
            self._flush()
            if not (self.control.stopped and _cancelled(err)):  # a stop during start-up is no failure
                self.failed.emit(_message(err))
        finally:
            self._flush()
            self.finished.emit(finished)

    def _build(self):
        from ganstudio.engine import RunDir, Trainer  # torch loads here, in the worker thread

        # the data's decoding (minutes for a big folder) polls the stop flag, so closing the window
        # during start-up ends this thread within moments instead of after the whole folder
        start = {"cancelled": lambda: self.control.stopped, "progress": self.preparing.emit}
        if self.config is None:
            return Trainer.resume(self.run_dir, self.changes, source="form", **start)
        from ganstudio.data import pending_download

        folder = pending_download(self.config.data)
        if folder is not None:
            self.downloading.emit(self.config.data.source, str(folder))
        return Trainer(self.config, RunDir(self.run_dir), **start)

    # --- engine events (called in the worker thread) ---------------------------------------------------
    def _on_event(self, event) -> None:
        from ganstudio.engine.events import (CheckpointSaved, EvalResult, EvalStarted, GeneratorSnapshot, Progress,
                                             RunEvent, Samples, StepStats, TrainWarning)

        if isinstance(event, StepStats):
            self._pending.append(event.to_json())
            if self.control.paused or time.monotonic() - self._last_emit >= EMIT_INTERVAL:
                self._flush()
            return
        self._flush()  # keep the order: figures up to this point first
        if isinstance(event, Progress):
            self.stepped.emit(event)  # already rate-limited by the loop; a frozen dataclass of numbers
        elif isinstance(event, RunEvent):
            self.marked.emit(event)
        elif isinstance(event, Samples):
            self.sampled.emit(event)
        elif isinstance(event, GeneratorSnapshot):  # the loop's own CPU copy: no one else holds its tensors
            self.snapshotted.emit(event)
        elif isinstance(event, TrainWarning):
            self.warned.emit(event)
        elif isinstance(event, CheckpointSaved):
            self.checkpointed.emit(event)
        elif isinstance(event, EvalStarted):
            self.eval_started.emit(event)
        elif isinstance(event, EvalResult):
            self.evaluated.emit(event)

    def _flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []  # a fresh list each time: signals pass references
            self.progressed.emit(rows)
            self._last_emit = time.monotonic()


class TrainingSession(QObject):
    """Owns one worker and its thread for the window: start, and stop-and-join however it ends."""

    def __init__(self, worker: TrainWorker) -> None:
        super().__init__()
        self.worker = worker
        self.thread: QThread | None = None
        worker.finished.connect(self._on_finished)

    def start(self) -> None:
        self.thread = threads.start_in_thread(self.worker, self.worker.run, "ganstudio-training")

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Stop training (the engine saves a checkpoint; a start-up stops reading data) and join the thread,
        the window painting meanwhile. True once it has ended; else the thread is kept, never destroyed."""
        self.worker.control.stop()
        return threads.join_thread(self.thread, wait_ms)

    @Slot(object)
    def _on_finished(self, _finished) -> None:
        if self.thread is not None:
            self.thread.quit()  # run() has returned: let the thread's event loop end


def _lock_note(note: str):
    from ganstudio.engine import TrainWarning

    return TrainWarning(0, "lock", note)


def _cancelled(err: Exception) -> bool:
    """The data build gave up because the stop flag was set (``ganstudio.data.Cancelled``)."""
    from ganstudio.data import Cancelled

    return isinstance(err, Cancelled)


def _message(err: Exception) -> str:
    from ganstudio.config import ConfigError
    from ganstudio.data import DataError
    from ganstudio.engine import CheckpointError, TrainingError
    from ganstudio.engine.lock import RunLockedError

    if isinstance(err, ConfigError | DataError | CheckpointError | TrainingError | RunLockedError | OSError):
        return str(err)
    return f"{type(err).__name__}: {err}\n\n{traceback.format_exc(limit=6)}"
