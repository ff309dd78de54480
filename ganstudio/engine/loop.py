"""The training loop: control, budgets, logging, samples, checkpoints and the NaN guard.

Per step it only queues work on the device. It waits for the device at the reporting points (every
``log_every`` steps, a sample grid, a checkpoint), which is also where the NaN guard looks. Between
them it reports the step count (a host integer) a few times a second.

The loop drives a Trainer through its public methods (``train_step``, ``snapshot``/``restore``,
``sample``, ``evaluate``, ``save_checkpoint`` …) and keeps its own bookkeeping: the clock, the pending
figures, the last good state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ganstudio.config import ConfigError
from ganstudio.engine.checkpoint import CheckpointError
from ganstudio.engine.control import Control
from ganstudio.engine.diagnostics import Diagnostics
from ganstudio.engine.errors import TrainingError
from ganstudio.engine.events import (CheckpointSaved, EvalResult, EvalStarted, Event, Progress, RunFinished, Samples,
                                     TrainWarning)
from ganstudio.engine.stats import StatsAccumulator, all_finite
from ganstudio.families import images_per_step
from ganstudio.losses import LOSSES

PROGRESS_INTERVAL = 0.1  # seconds between Progress events: a live status bar without a device sync


class Trainer(Protocol):
    """What the loop uses of ``engine.trainer.Trainer`` (which imports this module, not the reverse)."""

    config: Any          # RunConfig, replaced by live changes
    family: Any          # families.Family
    device: torch.device
    run_dir: Any         # RunDir or None
    global_step: int
    epoch: int
    elapsed: float       # training seconds of the whole run; the loop keeps it current
    evals_since_best: int
    grid_columns: int | None

    def train_step(self, kind: str) -> dict[str, torch.Tensor]: ...
    def make_stats(self, means: dict[str, float], acc: StatsAccumulator, seconds: float) -> Any: ...
    def snapshot(self) -> dict[str, Any]: ...
    def restore(self, snapshot: dict[str, Any]) -> None: ...
    def set_hparam(self, key: str, value: Any) -> None: ...
    def sample(self) -> np.ndarray: ...
    def grid_row_classes(self) -> list[int] | None: ...
    def reconstructions(self) -> np.ndarray: ...
    def evaluate(self, n: int) -> Any: ...
    def record_score(self, score: float | None) -> bool: ...
    def save_checkpoint(self, path: Path | None = None) -> Path: ...


class TrainingLoop:
    def __init__(self, trainer: Trainer, control: Control | None, callbacks: list[Callable[[Event], None]]):
        self.t, self.control = trainer, control or Control()
        self.callbacks = callbacks
        if trainer.config.train.tensorboard and trainer.run_dir:
            from ganstudio.engine.tensorboard import TensorBoardWriter

            self.callbacks = [*callbacks, TensorBoardWriter(trainer.run_dir.path / "tensorboard")]
        self.acc = StatsAccumulator()
        self.good = None  # the last state known to be finite
        self.rollbacks = 0
        self.started = self.mark = time.perf_counter()
        self.paused_for = 0.0  # seconds spent paused: not training time, for budgets and wall_time
        self.pace = _Pace(self.started)
        adversarial = trainer.family.adversarial
        self.diagnostics = Diagnostics(LOSSES[trainer.config.loss.name].probability) if adversarial else None
        self.said: set[str] = set()  # evaluation warnings already given (each once per session)
        self.elapsed0 = trainer.elapsed

    def emit(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)

    # --- the loop -----------------------------------------------------------------------------------
    def run(self) -> RunFinished:
        t, reason, error = self.t, "stopped", None
        self._open_run_dir()
        self.good = t.snapshot()
        try:
            while True:
                self._handle_commands()
                reason = self._budget_reached()
                if reason:
                    break
                waited = time.perf_counter()
                action = self.control.next_step(timeout=0.1)
                if action is None:
                    reason = "stopped"
                    break
                if action == "wait":
                    self._paused(time.perf_counter() - waited)
                    continue
                self._one_step(action)
        except Exception as err:  # noqa: BLE001 - reported to the caller below, then re-raised
            reason, error = "error", _explain(err, t)
            raise TrainingError(error) from err
        finally:
            self._finish(reason, error)
        return RunFinished(t.global_step, reason, t.run_dir.path if t.run_dir else None)

    def _one_step(self, action: str) -> None:
        t, train = self.t, self.t.config.train
        before = t.global_step
        images = images_per_step(t.config, action)
        self.acc.add(t.train_step(action), images)
        step = t.global_step
        self._progress(images, counted=step != before)
        if step == before:  # a D-only step: report it, nothing else is due
            self._report()
            return
        if step % train.log_every == 0 or self.control.paused:
            self._report()
        if step % train.sample_every == 0:
            self._sample()
        if step % train.checkpoint_every == 0:
            self._checkpoint(final=False)
        if train.eval_every and step % train.eval_every == 0:
            self._evaluate()

    def _paused(self, idle: float) -> None:
        """Time spent waiting while paused is not training time: not for budgets, images/s or ETAs."""
        self.paused_for += idle
        self.mark += idle
        self.pace.mark += idle
        if self.acc.steps:
            self._report()  # show a paused run's last figures at once

    def _budget_reached(self) -> str | None:
        t, train = self.t, self.t.config.train
        if train.steps is not None and t.global_step >= train.steps:
            return "steps"
        if train.max_time is not None and self._training_time() >= train.max_time:
            return "time"
        patience = t.config.eval.early_stop
        if patience is not None and t.evals_since_best >= patience:
            return "early-stop"
        return None

    def _training_time(self) -> float:
        return time.perf_counter() - self.started - self.paused_for

    def _handle_commands(self) -> None:
        for request in self.control.take_requests():
            if request == "sample":
                self._sample()
            elif request == "checkpoint":
                self._checkpoint(final=False)
            elif request == "evaluate":
                self._evaluate()
        for key, value in self.control.take_changes():
            try:
                self.t.set_hparam(key, value)
            except ConfigError as err:
                self.emit(TrainWarning(self.t.global_step, "config", str(err)))
                continue
            if self.t.run_dir:
                self.t.run_dir.write_config(self.t.config)

    # --- between reporting points: host figures only ---------------------------------------------------
    def _progress(self, images: int, counted: bool) -> None:
        pace = self.pace
        pace.steps += counted
        pace.images += images
        now = time.perf_counter()
        if now - pace.mark >= PROGRESS_INTERVAL or self.control.paused:
            seconds = max(now - pace.mark, 1e-9)
            self.emit(Progress(self.t.global_step, self.t.epoch, pace.steps / seconds, pace.images / seconds))
            self.pace = _Pace(now)

    # --- reporting points (host-device syncs) -----------------------------------------------------
    def _report(self) -> bool:
        """Read the figures back, check them, log them. False when they were not finite (rolled back)."""
        t = self.t
        if not self.acc.steps:
            return True
        means = self.acc.means()
        if not all_finite(means):
            self._rollback(means)
            return False
        now = time.perf_counter()
        t.elapsed = self.elapsed0 + self._training_time()
        stats = t.make_stats(means, self.acc, seconds=now - self.mark)
        self.acc.reset()
        self.mark = now
        if t.global_step > self.good["step"]:
            self.good, self.rollbacks = t.snapshot(), 0
        if t.run_dir:
            t.run_dir.append_metrics(stats.to_json())
        self.emit(stats)
        for warning in self.diagnostics.check_stats(stats) if self.diagnostics else ():
            self.emit(warning)
        return True

    def _rollback(self, means: dict[str, float]) -> None:
        t, train = self.t, self.t.config.train
        bad = ", ".join(f"{k}={v}" for k, v in means.items() if not v == v or abs(v) == float("inf"))
        self.rollbacks += 1
        if self.rollbacks > train.nan_max_rollbacks:
            raise TrainingError(
                f"training diverged: non-finite values ({bad}) {self.rollbacks} times in a row, even after "
                f"lowering the learning rates to lr_g={t.config.optim.lr_g:.3g}, lr_d={t.config.optim.lr_d:.3g}; "
                "try a smaller learning rate or another loss. The last good checkpoint is intact")
        bad_step = t.global_step
        t.restore(self.good)
        for name in ("lr_g", "lr_d"):
            t.set_hparam(f"optim.{name}", getattr(t.config.optim, name) * train.nan_lr_factor)
        if t.run_dir:
            t.run_dir.write_config(t.config)
        self.acc.reset()
        self.emit(TrainWarning(t.global_step, "nan",
                               f"non-finite values ({bad}) by step {bad_step}: rolled back to step {t.global_step} "
                               f"and lowered the learning rates to lr_g={t.config.optim.lr_g:.3g}, "
                               f"lr_d={t.config.optim.lr_d:.3g}"))

    def _sample(self) -> None:
        if not self._report():
            return
        t = self.t
        images, row_classes = t.sample(), t.grid_row_classes()
        path = t.run_dir.write_grid(t.global_step, images, t.grid_columns, row_classes) if t.run_dir else None
        pairs = pairs_path = None
        if t.family.encoder:
            pairs = t.reconstructions()
            if t.run_dir:
                pairs_path = t.run_dir.write_reconstructions(t.global_step, pairs)
        self.emit(Samples(t.global_step, images, path, t.grid_columns, pairs, pairs_path,
                          tuple(row_classes) if row_classes else None))

    def _evaluate(self) -> None:
        """Score the model (eval.metrics, or reconstruction for autoencoders), keep checkpoints/best.pt by
        the family's primary metric (FID, reconstruction error), warn on mode collapse."""
        t = self.t
        if not self._report():
            return
        n = t.config.eval.num_samples
        self.emit(EvalStarted(t.global_step, n))
        report = t.evaluate(n)
        best = t.record_score(report.metrics.get(t.family.primary_metric))
        if best and t.run_dir:
            self._save(t.run_dir.checkpoints_dir / "best.pt")
        if t.run_dir:
            t.run_dir.append_metrics({"step": t.global_step, "epoch": t.epoch, **report.row()})
        self.emit(EvalResult(t.global_step, report.metrics, n, report.extractor, report.seconds, best,
                             tuple(report.warnings)))
        for message in report.warnings:
            if message not in self.said:
                self.said.add(message)
                self.emit(TrainWarning(t.global_step, "eval", message))
        for warning in self.diagnostics.check_eval(t.global_step, report.diversity_ratio, report.class_share) \
                if self.diagnostics else ():
            self.emit(warning)

    def _save(self, path) -> None:
        """Write a checkpoint; a failure (a full disk) becomes a warning and training goes on."""
        try:
            self.emit(CheckpointSaved(self.t.global_step, self.t.save_checkpoint(path)))
        except CheckpointError as err:
            self.emit(TrainWarning(self.t.global_step, "checkpoint", str(err)))

    def _checkpoint(self, final: bool) -> None:
        """Write checkpoints/last.pt; a failure is a warning mid-run, an error at the end."""
        t = self.t
        if t.run_dir is None or not self._report():
            return
        if final:
            self.emit(CheckpointSaved(t.global_step, t.save_checkpoint()))
        else:
            self._save(t.run_dir.last_checkpoint)

    # --- start and end ------------------------------------------------------------------------------
    def _open_run_dir(self) -> None:
        t = self.t
        if t.run_dir is None:
            return
        t.run_dir.create()
        t.run_dir.write_config(t.config)
        t.run_dir.truncate_metrics(after_step=t.global_step)
        if not t.run_dir.sample_path(t.global_step).exists():
            self._sample()  # the starting point, so the progress history begins with it

    def _finish(self, reason: str, error: str | None) -> None:
        t = self.t
        try:
            if reason != "error":
                self._report()
            if t.run_dir and reason != "error":
                if t.global_step % t.config.train.sample_every:
                    self._sample()
                self._checkpoint(final=True)
        finally:
            self.emit(RunFinished(t.global_step, reason, t.run_dir.path if t.run_dir else None, error))


class _Pace:
    """Steps and images since ``mark`` (perf_counter seconds, shifted past pauses): the Progress rate."""

    def __init__(self, mark: float) -> None:
        self.mark, self.steps, self.images = mark, 0, 0


def _explain(err: Exception, t: Trainer) -> str:
    if isinstance(err, torch.OutOfMemoryError):
        return (f"out of memory on {t.device} at batch size {t.config.train.batch_size}: lower train.batch_size "
                "or the model widths")
    if isinstance(err, TrainingError | CheckpointError | ConfigError):
        return str(err)
    return f"{type(err).__name__}: {err}"
