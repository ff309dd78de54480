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
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ganstudio.config import ConfigError, identity_differences
from ganstudio.engine.commands import CommandReader, writer_since
from ganstudio.engine.control import Abort, Control
from ganstudio.engine.distributed import SharedControl
from ganstudio.engine.diagnostics import Diagnostics
from ganstudio.engine.errors import TrainingError, explain
from ganstudio.engine.events import Event, Progress, RunFinished, TrainWarning
from ganstudio.engine.lock import RunLock
from ganstudio.engine.marks import MarksMixin, change_label
from ganstudio.engine.outputs import OutputsMixin
from ganstudio.engine.precision import all_skipped
from ganstudio.engine.stats import StatsAccumulator, all_finite
from ganstudio.engine.status_writer import StatusWriter
from ganstudio.families import images_per_step
from ganstudio.fileio import remove_stale_temps
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
    sampler: torch.nn.Module  # the generator samples come from: the EMA copy when train.ema is on

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


class TrainingLoop(MarksMixin, OutputsMixin):
    def __init__(self, trainer: Trainer, control: Control | None, callbacks: list[Callable[[Event], None]]):
        self.t, self.control = trainer, control or Control()
        self.group = getattr(trainer, "group", None)  # several processes: decisions are taken together
        if self.group:
            self.control = SharedControl(self.control, self.group, clock=self._own_training_time)
        self.joins = getattr(trainer, "joins_writer", False)  # a rank > 0 whose rank 0 writes a run folder
        self.callbacks = callbacks
        if trainer.config.train.tensorboard and trainer.run_dir:
            from ganstudio.engine.tensorboard import TensorBoardWriter

            self.callbacks = [*callbacks, TensorBoardWriter(trainer.run_dir.path / "tensorboard")]
        # status.json and log.jsonl for anyone watching the folder; commands.jsonl from them (begin: run())
        self.status = StatusWriter(trainer, self.control, self._write) if trainer.run_dir else None
        self.callbacks = [*self.callbacks, self.status] if self.status else self.callbacks
        self.commands: CommandReader | None = None
        self.acc = StatsAccumulator()
        self.good = None  # the last state known to be finite
        # False while the Trainer's state is half-changed (inside a step, a rollback, a live change): an
        # interrupt landing there must not be saved, or a checkpoint labelled step N holds part of N+1
        self.consistent = True
        self.rollbacks = 0
        self.failing: set[str] = set()  # kinds of file whose last write failed (warned once until it works)
        self.start_config = self.saved_config = None  # the run's first config; the one last.pt holds
        self.saved_step = 0
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
        t = self.t
        # one writer per run folder, from the first file written to the last; nests inside the CLI's or
        # the worker's take (made before the Trainer was built, to refuse a second writer at once)
        with RunLock(t.run_dir.path) if t.run_dir else nullcontext() as lock:
            for note in getattr(lock, "notes", ()):
                self.emit(TrainWarning(t.global_step, "lock", note))
            self._open_run_dir()
            if self.status:
                self.status.begin()
                self.commands = CommandReader(t.run_dir.path, since=writer_since(t.run_dir.path))
            self.good = t.snapshot()
            return self._run()

    def _run(self) -> RunFinished:
        t, reason, error = self.t, "stopped", None
        try:
            while True:
                self._follow_pause()  # before blocking (and before the commands it may bring): marked at its step
                self._handle_commands()
                reason = self._budget_reached()
                if reason:
                    break
                waited = time.perf_counter()
                action = self.control.next_step(timeout=0.1)
                if action is None:
                    reason = "stopped"
                    break
                self._follow_pause()  # a resume (or a pause) that came while blocked, before the next step
                if action == "wait":
                    self._paused(time.perf_counter() - waited)
                    continue
                self._handle_commands()  # an edit sent with the resume (or a single step) applies to this step
                reason = self._budget_reached()  # which that edit may have ended
                if reason:
                    break
                self._one_step(action)
        except Exception as err:  # noqa: BLE001 - reported to the caller below, then re-raised
            reason, error = "error", explain(err, t)
            raise TrainingError(error) from err
        except BaseException as err:  # KeyboardInterrupt, the CLI's Abort (a second interrupt)
            reason = "interrupted" if self.consistent and not isinstance(err, Abort) else "aborted"
            raise
        finally:
            self._finish(reason, error)
        return RunFinished(t.global_step, reason, t.run_dir.path if t.run_dir else None)

    def _one_step(self, action: str) -> None:
        t, train = self.t, self.t.config.train
        before = t.global_step
        images = images_per_step(t.config, action)
        self.consistent = False
        figures = t.train_step(action)
        self.consistent = True
        self.acc.add(figures, images)
        step = t.global_step
        self._progress(images, counted=step != before)
        if self.was_paused and not self._single_step(action):
            return  # rolled back
        if step == before:  # a D-only step: nothing else is due
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
        if self.group:  # rank 0's clock, as of the last step boundary: every rank sees the same budget
            return self.control.training_time
        return self._own_training_time()

    def _own_training_time(self) -> float:
        return time.perf_counter() - self.started - self.paused_for

    def _handle_commands(self) -> None:
        for problem in self.commands.poll(self.control) if self.commands else ():  # rate-limited: a stat
            self.emit(TrainWarning(self.t.global_step, "command", problem))
        for request in self.control.take_requests():
            if request == "sample":
                self._sample()
            elif request == "checkpoint":
                self._checkpoint(final=False)
            elif request == "evaluate":
                self._evaluate()
            elif request == "snapshot":
                self._generator_snapshot()
        for key, value in self.control.take_changes():
            self.consistent = False
            try:
                self.t.set_hparam(key, value)
            except ConfigError as err:
                self.consistent = True  # refused while validating: nothing had changed
                self.emit(TrainWarning(self.t.global_step, "config", str(err)))
                continue
            self.consistent = True
            self._mark("changed", change_label(key, value))
            if self.t.run_dir:
                self._write_config()

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
        if self.group:  # the ranks' mean: a NaN on one rank is a NaN on all, and all roll back together
            means = self.group.average(means)
        if not all_finite(means) or all_skipped(means):  # a scaler-skipped fp16 update alone is no divergence
            self.consistent = False
            self._rollback(means)  # raises when it gives up: then nothing is saved anyway
            self.consistent = True
            return False
        now = time.perf_counter()
        t.elapsed = self.elapsed0 + self._training_time()
        stats = t.make_stats(means, self.acc, seconds=now - self.mark)
        self.acc.reset()
        self.mark = now
        if t.global_step > self.good["step"]:
            self.good, self.rollbacks = t.snapshot(), 0
        if t.run_dir:
            self._append_metrics(stats.to_json())
        self.emit(stats)
        for warning in self.diagnostics.check_stats(stats) if self.diagnostics else ():
            self.emit(warning)
        return True

    def _rollback(self, means: dict[str, float]) -> None:
        t, train = self.t, self.t.config.train
        bad = ", ".join(f"{k}={v}" for k, v in means.items() if not v == v or abs(v) == float("inf")) \
            or "every fp16 update skipped by the gradient scaler"
        self.rollbacks += 1
        if self.rollbacks > train.nan_max_rollbacks:
            tried = f"lr_g={t.config.optim.lr_g:.3g}, lr_d={t.config.optim.lr_d:.3g}"
            raise TrainingError(
                f"training diverged: non-finite values ({bad}) {self.rollbacks} times in a row, even after "
                f"lowering the learning rates to {tried}; try a smaller learning rate or another loss. "
                + self._settle_config())
        bad_step = t.global_step
        t.restore(self.good)
        for name in ("lr_g", "lr_d"):
            t.set_hparam(f"optim.{name}", getattr(t.config.optim, name) * train.nan_lr_factor)
        if t.run_dir:
            self._write_config()
        self.acc.reset()
        self._mark("rollback", "NaN rollback")
        self.emit(TrainWarning(t.global_step, "nan",
                               f"non-finite values ({bad}) by step {bad_step}: rolled back to step {t.global_step} "
                               f"and lowered the learning rates to lr_g={t.config.optim.lr_g:.3g}, "
                               f"lr_d={t.config.optim.lr_d:.3g}"))

    def _settle_config(self) -> str:
        """After the NaN guard gives up: config.toml goes back to the config of the last checkpoint (or the
        one the run started with), so the folder does not pair lowered rates with the original weights.
        Says what the run folder holds now."""
        t = self.t
        if t.run_dir is None:
            return "Nothing was saved (no run folder)."
        t.config = self.saved_config or self.start_config
        self._write_config()
        lr = f"lr_g={t.config.optim.lr_g:.3g}, lr_d={t.config.optim.lr_d:.3g}"
        if self.saved_config is None:
            return (f"No checkpoint was written (the first is due at step {t.config.train.checkpoint_every}); "
                    f"config.toml holds the settings the run started with ({lr}).")
        return (f"checkpoints/last.pt (step {self.saved_step}) is intact and config.toml matches it again ({lr}); "
                "continue with --set optim.lr_g=... optim.lr_d=... or start anew")

    # --- start and end ------------------------------------------------------------------------------
    def _open_run_dir(self) -> None:
        """Create or reopen the folder: clear this run's stale temp files, note damaged metrics rows, move
        aside what was logged after the checkpoint this run continues from (never delete it), write
        config.toml and the starting grid."""
        t = self.t
        self.start_config = t.config
        if t.run_dir is None:
            if self.joins and self.group.broadcast(None):
                t.save_checkpoint()  # rank 0 saves below: this rank's random states go with it
            return
        run = t.run_dir
        run.create()
        removed = remove_stale_temps(run.temp_folders())
        if removed:
            self.emit(TrainWarning(t.global_step, "disk", f"removed {len(removed)} temp file(s) left by an "
                                   f"interrupted write: {', '.join(str(p) for p in removed)}"))
        if run.last_checkpoint.is_file():  # the config the checkpoint holds (None: a new run)
            self.saved_config = getattr(t, "checkpoint_config", None) or t.config
            self.saved_step = t.global_step
        self._write_config()  # a full disk: a warning naming it (a resumed run's config.toml is still there)
        skipped = run.read_metrics().skipped
        if skipped:
            self.emit(TrainWarning(t.global_step, "data", f"{run.metrics_path}: {skipped} damaged rows skipped "
                                   "(left in the file; plots and this run use the rest)"))
        rewound = run.rewind(t.global_step)
        if rewound is not None:
            self.emit(TrainWarning(t.global_step, "resume", str(rewound)))
        resave = self.saved_config is not None and bool(identity_differences(self.saved_config, t.config))
        if self.group:  # the other ranks join this checkpoint (they wait for the answer in _open_run_dir)
            self.group.broadcast(resave)
        if resave:
            # continued with changed fixed fields: config.toml names settings last.pt does not hold
            # until the next checkpoint, and a checkpoint that disagrees with its folder is refused
            self._save(run.last_checkpoint)
        if not run.sample_path(t.global_step).exists():
            self._sample()  # the starting point, so the progress history begins with it

    def _finish(self, reason: str, error: str | None) -> None:
        """The last figures, grid and checkpoint, unless training failed or was aborted (nothing is written
        then: the last good checkpoint stays as it was)."""
        t, saving = self.t, reason not in ("error", "aborted")
        try:
            if saving:
                self._report()
                if reason in ("stopped", "interrupted"):
                    self._mark("stopped", "stopped")
            if (t.run_dir or self.joins) and saving:
                if t.global_step % t.config.train.sample_every:
                    self._sample()
                self._checkpoint(final=True)
        finally:
            self.emit(RunFinished(t.global_step, reason, t.run_dir.path if t.run_dir else None, error))


class _Pace:
    """Steps and images since ``mark`` (perf_counter seconds, shifted past pauses): the Progress rate."""

    def __init__(self, mark: float) -> None:
        self.mark, self.steps, self.images = mark, 0, 0
