"""The Trainer: a run's training state, its data, its run folder, and what can be done with them.

``step()`` and ``sample()`` are for interactive use and tests; ``run(control, callbacks)`` is the loop
the CLI and the studio drive (``engine/loop.py``). The state a step changes is a plain
:class:`~ganstudio.engine.state.TrainState`; the step itself is the family's strategy (``gan.py`` or
``autoencoder.py``), which sees that state and nothing else.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ganstudio.config import ConfigError, RunConfig, from_dict, is_live
from ganstudio.data import build_batches
from ganstudio.engine import autoencoder, checkpoint, distributed, gan, seeds
from ganstudio.engine.devices import resolve_device
from ganstudio.engine.errors import TrainingError
from ganstudio.engine.events import RunFinished, StepStats, TrainWarning
from ganstudio.engine.inference import to_uint8
from ganstudio.engine.loop import TrainingLoop
from ganstudio.engine.precision import compile_modules, fallback_message, mark_step, uncompile
from ganstudio.engine.rundir import RunDir
from ganstudio.engine.sampling import SamplingMixin
from ganstudio.engine.state import apply_optim_settings, build_state, set_learning_rates
from ganstudio.engine.stats import StatsAccumulator
from ganstudio.families import family_of

__all__ = ["Trainer", "TrainingError", "resolve_device", "to_uint8"]


class Trainer(SamplingMixin):
    def __init__(self, config: RunConfig, run_dir: str | Path | RunDir | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """``cancelled``: polled while the data is read (the long part of building, minutes for a big
        folder); once it returns True the build stops with ``ganstudio.data.Cancelled``. ``progress(done,
        total)`` follows the preparation of a folder's cache, when one is built."""
        self.family = family_of(config)
        train = config.train
        self.group = distributed.setup(train.device)  # None for a single process (no torchrun environment)
        distributed.check_batch(train.batch_size, self.group)
        device = self.group.device if self.group else resolve_device(train.device)
        if train.threads:
            torch.set_num_threads(train.threads)  # process-wide; part of what makes a resume bit-exact
        random.seed(train.seed)
        np.random.seed(train.seed % 2**32)
        torch.manual_seed(train.seed)

        self.batches = build_batches(config.data, batch_size=train.batch_size, device=device, seed=train.seed,
                                     cancelled=cancelled, progress=progress)
        if self.group:
            self.batches.shard(self.group.rank, self.group.world_size)
        if self.family.conditional:
            _check_labels(config, self.batches)
        self.state = build_state(config, device, self.group)
        if self.group and self.group.rank:
            _seed_rank(train.seed, self.group.rank)  # dropout and the like differ by rank from here on
        # G's weight EMA (Yazıcı et al. 2019): a smoothed copy for samples, evaluation and export
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if train.ema > 0 else None
        self.strategy = autoencoder if self.family.encoder else gan  # a module: train_step(state, ...)

        fixed = torch.Generator().manual_seed(train.seed + seeds.FIXED)
        self.fixed_noise = torch.randn(train.num_samples, config.model.z_dim, generator=fixed).to(device)
        self.fixed_labels, self.grid_columns = _grid_labels(config, device)
        self._held_out = None  # uint8 images the autoencoder families reconstruct (loaded on first use)

        self.elapsed = 0.0  # training seconds in earlier sessions of this run (kept across resumes)
        self.best_score = float("inf")  # the best primary metric so far (FID; reconstruction error for an
        self.evals_since_best = 0       # autoencoder); checkpoints/best.pt holds that state
        self._evaluator = None
        self.run_dir = run_dir if isinstance(run_dir, RunDir) or run_dir is None else RunDir(run_dir)
        # rank 0 alone writes the run folder; the others join its checkpoints (their random states go in)
        self.joins_writer = bool(self.group and not self.group.is_main and self.run_dir is not None)
        if self.joins_writer:
            self.run_dir = None
        self.checkpoint_config: RunConfig | None = None  # the config of the checkpoint this run resumed from
        self.warnings: list[str] = []  # what the Trainer had to do differently (a compile fallback)
        self.warnings += self.state.notices  # what building the networks did differently (sync_batch_norm)
        self._emit: Callable | None = None  # while run() goes: passes TrainWarnings to its callbacks
        self._compiling = train.compile  # True until the first compiled step has run (or fell back)
        self._cuda_graphs = train.compile and train.cuda_graphs and device.type == "cuda"
        if train.cuda_graphs and device.type != "cuda":
            self._warn("compile", f"train.cuda_graphs = true works on a CUDA GPU only; compiling without "
                       f"CUDA graphs on {device}")

    # --- the state, by the names callers use --------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        return self.state.config

    @config.setter
    def config(self, config: RunConfig) -> None:
        """Between runs, e.g. a larger step budget; the networks and data stay as they were built."""
        self.state.config = config

    @property
    def device(self) -> torch.device:
        return self.state.device

    @property
    def global_step(self) -> int:
        return self.state.step

    @global_step.setter
    def global_step(self, step: int) -> None:
        self.state.step = step

    @property
    def epoch(self) -> int:
        return self.batches.epoch

    @property
    def g(self) -> nn.Module:
        return distributed.unwrap(self.state.g)

    @property
    def d(self) -> nn.Module:
        return distributed.unwrap(self.state.d)

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.state.opt_g

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.state.opt_d

    @property
    def sampler(self) -> nn.Module:
        """The generator that samples, evaluation and exports use: the EMA one when it is on."""
        return self.g_ema if self.g_ema is not None else self.g

    # --- one step ---------------------------------------------------------------------------------
    def next_batch(self) -> tuple[Tensor, Tensor]:
        images, labels = self.batches.next()
        return images.contiguous(memory_format=self.state.memory_format), labels

    def train_step(self, kind: str = "both") -> dict[str, Tensor]:
        """One update; figures stay on the device. Counts as a step unless it is D only."""
        if self.config.optim.schedule != "constant":
            set_learning_rates(self.state)
        if self._cuda_graphs:
            mark_step()
        if self._compiling:
            stats = self._first_compiled_step(kind)
        else:
            stats = self.strategy.train_step(self.state, self.next_batch, kind)
        if self.strategy.counts_as_step(kind):
            self.state.step += 1
            if self.g_ema is not None:
                self._update_ema()
        return stats

    def _first_compiled_step(self, kind: str) -> dict[str, Tensor]:
        """Compile G and D, then run the first step, where the compiler actually runs (forward and
        backward). When compiling fails, at once or during that step, the state goes back to before the
        step and it runs eagerly, so the run is exactly the uncompiled one; one warning says why.
        Costs a copy of the state, once."""
        self._compiling = False
        failed = compile_modules(self.g, self.d, cuda_graphs=self._cuda_graphs)
        if failed is None:
            before = self.snapshot()
            try:
                return self.strategy.train_step(self.state, self.next_batch, kind)
            except Exception as err:  # noqa: BLE001 - retried eagerly below: a real error raises again there
                uncompile(self.g, self.d)
                self._cuda_graphs = False
                self.restore(before)
                failed = f"{type(err).__name__}: {err}"
        stats = self.strategy.train_step(self.state, self.next_batch, kind)  # a real error raises here, unwarned
        self._warn("compile", fallback_message(failed))
        return stats

    def _warn(self, kind: str, message: str) -> None:
        self.warnings.append(message)
        if self._emit is not None:
            self._emit(TrainWarning(self.global_step, kind, message))

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the decay ramps up over the first steps so the average does not start from the random init
        step = self.state.step
        decay = min(self.config.train.ema, (1 + step) / (10 + step))
        for averaged, current in zip(self.g_ema.parameters(), self.g.parameters()):
            averaged.lerp_(current, 1 - decay)
        for averaged, current in zip(self.g_ema.buffers(), self.g.buffers()):
            averaged.copy_(current)  # batch-norm statistics follow G as they are

    def step(self, kind: str = "both") -> StepStats:
        """One update, its figures read back at once (a host-device sync: the loop avoids this)."""
        acc = StatsAccumulator()
        acc.add(self.train_step(kind), self.config.train.batch_size)
        return self.make_stats(acc.means(), acc, seconds=0.0)

    def make_stats(self, means: dict[str, float], acc: StatsAccumulator, seconds: float) -> StepStats:
        nan = float("nan")
        core = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
        return StepStats(
            step=self.global_step, epoch=self.epoch,
            **{k: means.get(k, nan) for k in core},
            lr_d=self.opt_d.param_groups[0]["lr"], lr_g=self.opt_g.param_groups[0]["lr"],
            images_per_s=acc.images / seconds if seconds > 0 else 0.0,
            wall_time=self.elapsed, steps=acc.steps,
            extra={k: v for k, v in means.items() if k not in core},
        )

    # --- live changes -----------------------------------------------------------------------------
    def set_hparam(self, key: str, value: Any) -> None:
        """Change one live field (``optim.lr_g`` …); applies from the next step. ConfigError if not allowed."""
        if not is_live(key):
            raise ConfigError(f"{key} cannot change while a run is going; stop, edit the config and start again")
        self.state.config = self.config.updated(key, value, source="live change")
        apply_optim_settings(self.state)

    # --- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **self.state.state_dict(), "data": self.batches.state_dict(),
            "fixed_noise": self.fixed_noise, "elapsed": self.elapsed,
            "best_score": self.best_score, "evals_since_best": self.evals_since_best,
            "rng": checkpoint.rng_state(), **({"world_size": self.group.world_size} if self.group else {}),
            **({"g_ema": self.g_ema.state_dict()} if self.g_ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.g_ema is not None:
            self.g_ema.load_state_dict(state.get("g_ema", state["g"]))  # EMA switched on mid-run: start at G
        state, notice = distributed.own_rank(state, self.group)
        if notice and notice not in self.warnings:
            self._warn("world_size", notice)
        self.batches.load_state_dict(state["data"])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.elapsed = float(state["elapsed"])
        self.best_score = float(state.get("best_score", state.get("best_fid", float("inf"))))
        self.evals_since_best = int(state.get("evals_since_best", 0))
        checkpoint.set_rng_state(state["rng"])
        self.state.load_state_dict(state)
        if self.state.moved_from is not None:
            self._warn("device", f"the run continues on {self.device.type} from a checkpoint saved on "
                       f"{self.state.moved_from}: the noise streams start afresh from the seed and the step "
                       "(reproducible, but not the numbers the run would have drawn on its first device)")

    def snapshot(self) -> dict[str, Any]:
        """An in-memory copy of the whole state (the NaN guard's last good point)."""
        return copy.deepcopy(self.state_dict())

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Go back to a ``snapshot()``; the snapshot stays usable for another restore."""
        self.load_state_dict(copy.deepcopy(snapshot))

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Write the full state atomically (default: the run folder's checkpoints/last.pt). Under several
        processes every rank calls it: their random states go to rank 0, which alone writes (the others
        return None)."""
        state = self.state_dict()
        if self.group:
            ranks = self.group.gather({"rng": state["rng"], **self.state.rngs.state_dict()})
            if not self.group.is_main:
                return None
            state = {**state, "ranks": ranks}
        if path is None:
            if self.run_dir is None:
                raise ValueError("save_checkpoint needs a path when the Trainer has no run folder")
            path = self.run_dir.last_checkpoint
        path = Path(path)
        checkpoint.save(path, {"config": self.config.model_dump(mode="json"), "step": self.global_step,
                               "state": state})
        return path

    @classmethod
    def resume(cls, run_dir: str | Path, changes: Mapping[str, Any] | None = None,
               checkpoint_path: Path | None = None, source: str = "--set",
               cancelled: Callable[[], bool] | None = None,
               progress: Callable[[int, int], None] | None = None) -> Trainer:
        """Continue a run folder from its last checkpoint, with ``changes`` to its config (dotted keys, e.g.
        ``{"train.steps": 20000}``; ``source`` names where they came from in error messages). ``cancelled``
        interrupts the data loading and ``progress`` follows it, as for a new Trainer."""
        run = RunDir(run_dir)
        path = Path(checkpoint_path or run.last_checkpoint)
        payload = checkpoint.load(path)  # refuses a damaged file, or one from another run's config
        try:
            config = from_dict(payload["config"], source=f"checkpoint {path}")
        except ConfigError as err:
            raise checkpoint.CheckpointError(f"the checkpoint's config is not valid for this ganstudio: {err}")
        trainer = cls(config.with_changes(changes or {}, source), run, cancelled=cancelled, progress=progress)
        trainer.checkpoint_config = config  # what last.pt holds; the loop keeps config.toml in step with it
        try:
            trainer.load_state_dict(payload["state"])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as err:
            trainer.close()
            what = f"missing entry {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise checkpoint.CheckpointError(
                f"checkpoint {path} does not match its config (wrong shapes, keys or types: {what}); "
                "use another checkpoint or start a new run") from err
        return trainer

    def close(self) -> None:
        """Release what outlives a run: a streaming dataset's loader workers."""
        self.batches.close()

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, control=None, callbacks: list[Callable] = ()) -> RunFinished:
        """Train until the step or time budget, or ``control.stop()``; see engine/loop.py."""
        callbacks = list(callbacks)
        self._emit = lambda event: [callback(event) for callback in callbacks]
        try:
            return TrainingLoop(self, control, callbacks).run()
        finally:
            self._emit = None


def _seed_rank(seed: int, rank: int) -> None:
    seed = (seed + rank * 1_000_003) % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _grid_labels(config: RunConfig, device: torch.device) -> tuple[Tensor | None, int | None]:
    """A cgan's fixed labels, one grid row per class: (labels, images per row); (None, None) otherwise."""
    if not family_of(config).conditional:
        return None, None
    k, n = config.model.num_classes, config.train.num_samples
    if n < k:
        return torch.arange(n, device=device), None
    return torch.arange(k, device=device).repeat_interleave(n // k), n // k


def _check_labels(config: RunConfig, batches) -> None:
    k = config.model.num_classes
    if batches.num_classes is None:
        raise ConfigError(
            f"model.family = 'cgan' needs class labels, and {config.data.source!r} data has none; use a "
            "labelled dataset (the bundled one, a torchvision one, or a folder with one subfolder per class)")
    if batches.num_classes > k:
        raise ConfigError(f"the dataset has {batches.num_classes} classes but model.num_classes = {k}; "
                          f"set model.num_classes = {batches.num_classes}")
