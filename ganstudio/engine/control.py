"""The thread-safe remote control a running Trainer reads once per step.

The studio's worker thread is busy inside ``Trainer.run`` and never runs queued Qt slots, so commands
travel through this object instead (a lock, a condition and a queue), which also keeps the engine free
of Qt. Every method may be called from any thread.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

StepKind = Literal["both", "d", "g"]
Request = Literal["sample", "checkpoint", "evaluate", "snapshot"]
Action = Literal["both", "d", "g", "wait"]  # "wait": nothing to run yet, ask again


class Abort(KeyboardInterrupt):
    """Leave training at once and write nothing: what a second Ctrl-C or SIGTERM raises (``cli.py``).

    The loop saves after a plain KeyboardInterrupt only when the state is whole (between steps); after an
    Abort it never saves, so the last good checkpoint stays. A KeyboardInterrupt, so every library's
    ``except KeyboardInterrupt: clean up; raise`` treats it as one. ``exit_code``: 128 + the signal.
    """

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Control:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._single_steps: list[StepKind] = []
        self._changes: list[tuple[str, Any]] = []
        self._requests: list[Request] = []
        self._idle = False  # the loop is blocked in next_step() because it is paused

    # --- commands -----------------------------------------------------------------------------------
    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step_once(self, kind: StepKind = "both") -> None:
        """While paused: run exactly one step (a full D+G step, D only or G only), then stay paused."""
        with self._cond:
            self._single_steps.append(kind)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def request(self, name: Request) -> None:
        """Ask for a one-off action before the next step, paused or not: "sample", "checkpoint", "evaluate",
        or "snapshot" (the generator's current weights as an event, for the latent explorer)."""
        with self._cond:
            self._requests.append(name)
            self._cond.notify_all()

    def set_hparam(self, key: str, value: Any) -> None:
        """Change a live config field (e.g. ``optim.lr_g``); it takes effect before the next step."""
        with self._cond:
            self._changes.append((key, value))
            self._cond.notify_all()

    # --- state --------------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    # --- read by the training loop --------------------------------------------------------------------
    def take_requests(self) -> list[Request]:
        with self._cond:
            requests, self._requests = self._requests, []
            return requests

    def take_changes(self) -> list[tuple[str, Any]]:
        with self._cond:
            changes, self._changes = self._changes, []
            return changes

    def next_step(self, timeout: float | None = None) -> Action | None:
        """Block while paused; return the kind of step to run next, or None once stopped.

        A paused loop returns "wait" when a hyperparameter change or a request arrives (so it is handled
        at once) or after ``timeout`` seconds (so the caller can do housekeeping).
        """
        with self._cond:
            try:
                while not self._stopped:
                    if self._single_steps:
                        return self._single_steps.pop(0)
                    if not self._paused:
                        return "both"
                    self._idle = True
                    self._cond.notify_all()
                    if self._changes or self._requests or not self._cond.wait(timeout):
                        return "wait"
                return None
            finally:
                self._idle = False

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the loop sits paused with every requested single step done; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._idle and not (self._single_steps or self._requests or self._changes), timeout)
