"""Events at their exact step, for the training loop: pause, resume, a live change, a NaN rollback, a stop
and single steps become ``RunEvent``s, appended to the run folder's events.jsonl and emitted, so the plots
mark them where they happened (not at the last logged row), headless runs record them too, and a
reopened run draws them again.
"""

from __future__ import annotations

import time
from typing import Any

from ganstudio.engine.events import SINGLE_STEPS, RunEvent
from ganstudio.engine.stats import all_finite


class MarksMixin:
    """Part of ``loop.TrainingLoop``: uses its trainer ``t``, ``control``, ``acc``, ``mark``, ``emit``,
    ``_write`` and ``_report``."""

    was_paused = False  # as last marked: a change is a "paused" or "resumed" event at its step

    def _mark(self, kind: str, text: str, figures: dict[str, float] | None = None) -> None:
        event = RunEvent(self.t.global_step, kind, text, dict(figures or {}))
        if self.t.run_dir:
            self._write("events", lambda: self.t.run_dir.append_event(event))
        self.emit(event)

    def _follow_pause(self) -> None:
        paused = self.control.paused
        if paused != self.was_paused:
            self.was_paused = paused
            self._mark("paused" if paused else "resumed", "paused" if paused else "resumed")

    def _single_step(self, action: str) -> bool:
        """A step taken while paused is a point of its own kind, not a logged interval: a D or G step's
        figures go to events.jsonl (a row in metrics.jsonl would repeat a step number, or leave the other
        network's curves a gap); a full step is also logged as a row. False when it was rolled back."""
        means = self.acc.means()  # a sync, but a single step is a person's click
        if getattr(self, "group", None):  # several processes: all decide alike, or one waits alone in _report
            means = self.group.average(means)
        if not all_finite(means):
            return self._report()  # the NaN guard's path: rolls back
        if action == "both":
            self._report()
        else:
            self.acc.reset()
            self.mark = time.perf_counter()
        kind, text = SINGLE_STEPS[action]
        self._mark(kind, text, means)
        return True


def _short(value: Any) -> str:
    """A changed value for a marker's label: 0.0002 not 0.00019999999999999998."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def change_label(key: str, value: Any) -> str:
    """A live change's marker label: "lr_g → 0.0002"."""
    return f"{key.split('.')[-1]} → {_short(value)}"
