"""The writer's side of ``status.json`` (engine/status.py) and ``log.jsonl``: an event callback the training
loop adds for a run with a folder, like the TensorBoard writer.

It turns the loop's events into the run's state on disk: running or paused (at the step the pause took
effect), the step (at most once a second: each write is an fsync'd rename), the best primary metric, and
how the run ended. Warnings go to ``log.jsonl``, so a window following a headless run shows them too.
Writes go through the loop's ``_write``: a full disk is one warning and training goes on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from ganstudio.engine.events import EvalResult, Event, Progress, RunEvent, RunFinished, StepStats, TrainWarning
from ganstudio.engine.status import LOG_FILE, RunStatus, write_status
from ganstudio.fileio import append_line

WRITE_INTERVAL = 1.0  # seconds between step-only updates; state changes are written at once

_ENDS = {  # RunFinished.reason -> (state, message)
    "steps": ("finished", "reached train.steps"),
    "time": ("finished", "reached train.max_time"),
    "early-stop": ("finished", "stopped early: the primary metric stopped improving (eval.early_stop)"),
    "stopped": ("stopped", "stopped; checkpoint saved"),
    "interrupted": ("stopped", "interrupted by a signal; checkpoint saved"),
    "aborted": ("stopped", "aborted without saving; the last checkpoint is intact"),
    "error": ("failed", "training failed"),
}


class StatusWriter:
    """``StatusWriter(trainer, control, write)``: ``write(kind, fn)`` is the loop's ``_write`` (a failed
    write becomes one warning per kind of file). Call ``begin()`` once the lock is held."""

    def __init__(self, trainer: Any, control: Any, write: Callable[[str, Callable[[], Any]], Any]) -> None:
        self.t, self.control, self._write = trainer, control, write
        self.folder = trainer.run_dir.path
        self.status: RunStatus | None = None
        self.last_write = 0.0

    @property
    def started(self) -> float:
        return self.status.started if self.status else time.time()

    def begin(self) -> None:
        best = {}
        score, metric = getattr(self.t, "best_score", math.inf), self.t.family.primary_metric
        if math.isfinite(score):
            best = {metric: score}  # a resumed run keeps its best so far
        self.status = RunStatus.now("paused" if self.control.paused else "running", step=self.t.global_step,
                                    elapsed=self.t.elapsed, best=best, device=str(self.t.device))
        self._save()

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainWarning):
            self._log({"step": event.step, "kind": event.kind, "message": event.message})
        if self.status is None:
            return  # before begin(): the lock's and the folder's notes, logged above
        if isinstance(event, Progress | StepStats):
            self._update(event.step, at_once=False)
        elif isinstance(event, RunEvent):
            state = {"paused": "paused", "resumed": "running"}.get(event.kind, self.status.state)
            self._update(event.step, at_once=True, state=state)
        elif isinstance(event, EvalResult) and event.best:
            value = event.metrics.get(self.t.family.primary_metric)
            best = {self.t.family.primary_metric: value} if value is not None else self.status.best
            self._update(event.step, at_once=True, best=best)
        elif isinstance(event, RunFinished):
            state, message = _ENDS.get(event.reason, ("stopped", event.reason))
            message = event.error or message
            if event.error:
                self._log({"step": event.step, "kind": "error", "message": event.error})
            self._update(event.step, at_once=True, state=state, message=message)

    def _update(self, step: int, at_once: bool, **values) -> None:
        self.status = self.status.updated_to(step=step, elapsed=self.t.elapsed, **values)
        if at_once or time.monotonic() - self.last_write >= WRITE_INTERVAL:
            self._save()

    def _save(self) -> None:
        self.last_write = time.monotonic()
        self._write("status", lambda: write_status(self.folder, self.status))

    def _log(self, row: dict) -> None:
        line = json.dumps({**row, "time": time.time()})
        self._write("log", lambda: append_line(self.folder / LOG_FILE, line))
