"""The training loop: control, budgets, logging, samples, checkpoints and the NaN guard.

Per step it only queues work on the device. It waits for the device at the reporting points
(every ``log_every`` steps, a sample grid, a checkpoint), which is also where the NaN guard looks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch

from ganstudio.config import ConfigError
from ganstudio.engine.checkpoint import CheckpointError
from ganstudio.engine.control import Control
from ganstudio.engine.diagnostics import Diagnostics
from ganstudio.engine.events import CheckpointSaved, EvalResult, EvalStarted, Event, RunFinished, Samples, TrainWarning
from ganstudio.engine.stats import StatsAccumulator, all_finite
from ganstudio.engine.trainer import Trainer, TrainingError
from ganstudio.losses import LOSSES


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
                    idle = time.perf_counter() - waited
                    self.paused_for += idle
                    self.mark += idle  # images/s counts training time only
                    if self.acc.steps:
                        self._report()  # show a paused run's last figures at once
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
        self.acc.add(t.train_step(action), train.batch_size * t.strategy.batches_per_step(action))
        step = t.global_step
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

    def _budget_reached(self) -> str | None:
        train = self.t.config.train
        if train.steps is not None and self.t.global_step >= train.steps:
            return "steps"
        if train.max_time is not None and self._training_time() >= train.max_time:
            return "time"
        patience = self.t.config.eval.early_stop
        if patience is not None and self.t.evals_since_best >= patience:
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
        t.load_state_dict(copy.deepcopy(self.good))  # the snapshot must survive being loaded again
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
        images = t.sample()
        path = t.run_dir.write_grid(t.global_step, images, t.grid_columns) if t.run_dir else None
        pairs = None
        if t.family.encoder:
            pairs = t.reconstructions()
            if t.run_dir:
                t.run_dir.write_reconstructions(t.global_step, pairs)
        self.emit(Samples(t.global_step, images, path, t.grid_columns, pairs))

    def _evaluate(self) -> None:
        """Score the model (eval.metrics, or reconstruction for autoencoders), keep checkpoints/best.pt by
        the family's primary metric (FID, reconstruction error), warn on mode collapse."""
        t = self.t
        if not self._report():
            return
        n = t.config.eval.num_samples
        self.emit(EvalStarted(t.global_step, n))
        report = t.evaluate(n)
        score = report.metrics.get(t.family.primary_metric)
        best = score is not None and score < t.best_score
        if best:
            t.best_score, t.evals_since_best = score, 0
            if t.run_dir:
                self._save(t.run_dir.checkpoints_dir / "best.pt")
        elif score is not None:
            t.evals_since_best += 1
        if t.run_dir:
            t.run_dir.append_metrics({"step": t.global_step, "epoch": t.batches.epoch, **report.row()})
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


def _explain(err: Exception, t: Trainer) -> str:
    if isinstance(err, torch.OutOfMemoryError):
        return (f"out of memory on {t.device} at batch size {t.config.train.batch_size}: lower train.batch_size "
                "or the model widths")
    if isinstance(err, TrainingError | CheckpointError | ConfigError):
        return str(err)
    return f"{type(err).__name__}: {err}"
