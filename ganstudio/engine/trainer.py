"""The Trainer: builds data, models and optimizers from a RunConfig and trains them.

``step()`` and ``sample()`` are for interactive use and tests; ``run(control, callbacks)`` is the loop
the CLI and the studio drive. The loop is in ``engine/loop.py``; this file holds the state.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganstudio.config import ConfigError, RunConfig, from_dict, is_live
from ganstudio.data import build_batches
from ganstudio.engine import checkpoint
from ganstudio.engine.autoencoder import AutoencoderStrategy, eval_mode
from ganstudio.engine.events import StepStats
from ganstudio.engine.gan import GanStrategy
from ganstudio.engine.rundir import RunDir
from ganstudio.engine.schedules import lr_factor, schedule_horizon
from ganstudio.engine.stats import StatsAccumulator
from ganstudio.families import family_of
from ganstudio.models import build_models


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, out of memory, ...); the message says what to try."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


class Trainer:
    def __init__(self, config: RunConfig, run_dir: str | Path | RunDir | None = None) -> None:
        self.config = config
        self.family = family_of(config)
        train = config.train
        self.device = resolve_device(train.device)
        if train.threads:
            torch.set_num_threads(train.threads)  # process-wide; part of what makes a resume bit-exact
        random.seed(train.seed)
        np.random.seed(train.seed % 2**32)
        torch.manual_seed(train.seed)

        self.batches = build_batches(config.data, batch_size=train.batch_size, device=self.device, seed=train.seed)
        if self.family.conditional:
            _check_labels(config, self.batches)
        self.g, self.d = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
        # channels-last pays off for convolutions only; an MLP flattens its input either way
        convs = {config.model.arch, config.model.d_arch} - {"same"}
        self.memory_format = torch.channels_last if train.channels_last and "dcgan" in convs \
            else torch.contiguous_format
        self.g.to(self.device, memory_format=self.memory_format)
        self.d.to(self.device, memory_format=self.memory_format)
        # G's weight EMA (Yazıcı et al. 2019): a smoothed copy for samples, evaluation and export
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if train.ema > 0 else None
        self.opt_g = _optimizer(config, self.g.parameters(), config.optim.lr_g, config.optim.weight_decay_g)
        self.opt_d = _optimizer(config, self.d.parameters(), config.optim.lr_d, config.optim.weight_decay_d)

        # The Trainer's own generators: noise and penalties never draw from (or shift) the global RNG.
        self.noise_rng = torch.Generator(self.device).manual_seed(train.seed + 1)
        self.penalty_rng = torch.Generator(self.device).manual_seed(train.seed + 2)
        self.augment_rng = torch.Generator(self.device).manual_seed(train.seed + 5)  # DiffAugment, instance noise
        fixed = torch.Generator().manual_seed(train.seed + 3)
        self.fixed_noise = torch.randn(train.num_samples, config.model.z_dim, generator=fixed).to(self.device)
        self.fixed_labels, self.grid_columns = _grid_labels(config, self.device)
        self._held_out = None  # uint8 images the autoencoder families reconstruct (loaded on first use)

        self.global_step = 0
        self.elapsed = 0.0  # training seconds in earlier sessions of this run (kept across resumes)
        self.best_score = float("inf")  # the best primary metric so far (FID; reconstruction error for an
        self.evals_since_best = 0       # autoencoder); checkpoints/best.pt holds that state
        self._evaluator = None
        self.strategy = AutoencoderStrategy(self) if self.family.encoder else GanStrategy(self)
        self.run_dir = run_dir if isinstance(run_dir, RunDir) or run_dir is None else RunDir(run_dir)

    # --- one step ---------------------------------------------------------------------------------
    def noise(self, n: int) -> Tensor:
        return torch.randn(n, self.config.model.z_dim, device=self.device, generator=self.noise_rng)

    def next_batch(self) -> tuple[Tensor, Tensor]:
        images, labels = self.batches.next()
        return images.contiguous(memory_format=self.memory_format), labels

    def train_step(self, kind: str = "both") -> dict[str, Tensor]:
        """One update; figures stay on the device. Counts as a step unless it is D only."""
        if self.config.optim.schedule != "constant":
            self._set_learning_rates()
        stats = self.strategy.train_step(self.next_batch, kind)
        if self.strategy.counts_as_step(kind):
            self.global_step += 1
            if self.g_ema is not None:
                self._update_ema()
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the decay ramps up over the first steps so the average does not start from the random init
        decay = min(self.config.train.ema, (1 + self.global_step) / (10 + self.global_step))
        for averaged, current in zip(self.g_ema.parameters(), self.g.parameters()):
            averaged.lerp_(current, 1 - decay)
        for averaged, current in zip(self.g_ema.buffers(), self.g.buffers()):
            averaged.copy_(current)  # batch-norm statistics follow G as they are

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples, evaluation and exports use: the EMA one when it is on."""
        return self.g_ema if self.g_ema is not None else self.g

    def step(self, kind: str = "both") -> StepStats:
        """One update, its figures read back at once (a host-device sync: the loop avoids this)."""
        acc = StatsAccumulator()
        acc.add(self.train_step(kind), self.config.train.batch_size)
        return self.make_stats(acc.means(), acc, seconds=0.0)

    def make_stats(self, means: dict[str, float], acc: StatsAccumulator, seconds: float) -> StepStats:
        nan = float("nan")
        core = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
        return StepStats(
            step=self.global_step, epoch=self.batches.epoch,
            **{k: means.get(k, nan) for k in core},
            lr_d=self.opt_d.param_groups[0]["lr"], lr_g=self.opt_g.param_groups[0]["lr"],
            images_per_s=acc.images / seconds if seconds > 0 else 0.0,
            wall_time=self.elapsed, steps=acc.steps,
            extra={k: v for k, v in means.items() if k not in core},
        )

    # --- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: Tensor | None = None, labels: Tensor | None = None, *, n: int | None = None,
               seed: int | None = None) -> np.ndarray:
        """uint8 (N, H, W, C) images from ``z``, from noise of ``seed`` (n images), or the fixed noise.

        Runs G in eval mode and touches no RNG or training state, so sampling never changes a run.
        """
        if z is None:
            if seed is None:
                z = self.fixed_noise if n is None else self.fixed_noise[:n]
                labels = labels if labels is not None or self.fixed_labels is None else self.fixed_labels[:len(z)]
            else:
                gen = torch.Generator().manual_seed(seed)
                z = torch.randn(n or self.config.train.num_samples, self.config.model.z_dim, generator=gen)
        if self.family.conditional:
            if labels is None:
                labels = torch.arange(len(z)) % self.config.model.num_classes
            z = z[:len(labels)]
        with eval_mode(self.sampler):
            g, z = self.sampler, z.to(self.device)
            images = g(z, labels.to(self.device)) if self.family.conditional else g(z)
        return to_uint8(images)

    def held_out_images(self) -> Tensor:
        """uint8 (N, C, H, W): up to eval.num_samples held-out images (training images if none are held out)."""
        if self._held_out is None:
            from ganstudio.data import held_out, load_images

            n = self.config.eval.num_samples
            source = held_out(self.config.data, limit=n)
            self._held_out = source.decode_all().images if source is not None \
                else load_images(self.config.data, limit=n).images
        return self._held_out

    def reconstructions(self, pairs: int | None = None) -> np.ndarray:
        """uint8 (2·pairs, H, W, C): held-out images and their reconstructions, interleaved; by default as
        many pairs as fill the sample grid's cells (train.num_samples), at most 32."""
        if pairs is None:
            pairs = min(32, max(1, self.config.train.num_samples // 2))
        real = self.held_out_images()[:pairs]
        recon = self.strategy.reconstruct(real)
        real = real.permute(0, 2, 3, 1).numpy()
        return np.stack([real, to_uint8(recon)], axis=1).reshape(-1, *real.shape[1:])

    # --- evaluation -------------------------------------------------------------------------------
    def evaluator(self):
        """The Evaluator for this run's data and eval settings (built on first use: it loads features)."""
        from ganstudio.metrics.evaluate import Evaluator

        if self._evaluator is None or self._evaluator.config != self.config.eval:
            self._evaluator = Evaluator(self.config.data, self.config.eval, self.device)
        return self._evaluator

    def eval_images(self, n: int) -> Tensor:
        """n generated uint8 images (N, C, H, W) on the CPU, from the fixed evaluation noise."""
        from ganstudio.engine.inference import eval_images

        return eval_images(self.sampler, self.config, n)

    def evaluate(self, n: int | None = None):
        """An EvalReport: FID, KID, … (``eval.metrics``) of n generated images (default ``eval.num_samples``);
        for autoencoders the reconstruction error of held-out images instead, and both for a VAE."""
        from ganstudio.metrics.evaluate import EvalReport

        n = n or self.config.eval.num_samples
        if not self.family.encoder:
            return self.evaluator().evaluate(self.eval_images(n))
        start = time.perf_counter()
        real = self.held_out_images()[:n]
        recon = self.strategy.held_out_metrics(real)
        warnings = [] if self.config.data.holdout else [
            "no held-out images (data.holdout = 0): reconstruction error is measured on training images"]
        if not self.family.variational:  # an autoencoder's decoded noise is not meant to look like data
            return EvalReport(recon, len(real), "no", time.perf_counter() - start, float("nan"), None, warnings)
        report = self.evaluator().evaluate(self.eval_images(n))
        return EvalReport({**report.metrics, **recon}, report.num_samples, report.extractor,
                          time.perf_counter() - start, report.diversity_ratio, report.class_share,
                          [*report.warnings, *warnings])

    # --- live changes -----------------------------------------------------------------------------
    def set_hparam(self, key: str, value: Any) -> None:
        """Change one live field (``optim.lr_g`` …); applies from the next step. ConfigError if not allowed."""
        if not is_live(key):
            raise ConfigError(f"{key} cannot change while a run is going; stop, edit the config and start again")
        self.config = self.config.updated(key, value, source="live change")
        self.apply_hparams()

    def apply_hparams(self) -> None:
        """Push the config's optimizer settings into the optimizers (the config is the truth)."""
        o = self.config.optim
        for opt, decay in ((self.opt_g, o.weight_decay_g), (self.opt_d, o.weight_decay_d)):
            for group in opt.param_groups:
                group["weight_decay"] = decay
                if "betas" in group:
                    group["betas"] = (o.beta1, o.beta2)
                if "momentum" in group:
                    group["momentum"] = o.momentum
        self._set_learning_rates()

    def _set_learning_rates(self) -> None:
        """The configured rates times the schedule's factor at this step (a function of the step alone,
        so a resumed run gets exactly the same rates)."""
        o = self.config.optim
        factor = lr_factor(o.schedule, self.global_step, schedule_horizon(o, self.config.train))
        for opt, lr in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    # --- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "data": self.batches.state_dict(),
            "noise_rng": self.noise_rng.get_state(), "penalty_rng": self.penalty_rng.get_state(),
            "augment_rng": self.augment_rng.get_state(),
            "fixed_noise": self.fixed_noise, "step": self.global_step, "elapsed": self.elapsed,
            "best_score": self.best_score, "evals_since_best": self.evals_since_best,
            "rng": checkpoint.rng_state(),
            **({"g_ema": self.g_ema.state_dict()} if self.g_ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(state.get("g_ema", state["g"]))  # EMA switched on mid-run: start at G
        self.d.load_state_dict(state["d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.batches.load_state_dict(state["data"])
        self.noise_rng.set_state(state["noise_rng"].cpu())
        self.penalty_rng.set_state(state["penalty_rng"].cpu())
        if "augment_rng" in state:  # absent from checkpoints written before DiffAugment existed
            self.augment_rng.set_state(state["augment_rng"].cpu())
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.global_step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.best_score = float(state.get("best_score", state.get("best_fid", float("inf"))))
        self.evals_since_best = int(state.get("evals_since_best", 0))
        checkpoint.set_rng_state(state["rng"])
        self.apply_hparams()

    def snapshot(self) -> dict[str, Any]:
        """An in-memory copy of the whole state (the NaN guard's last good point)."""
        return copy.deepcopy(self.state_dict())

    def save_checkpoint(self, path: Path | None = None) -> Path:
        """Write the full state atomically (default: the run folder's checkpoints/last.pt)."""
        if path is None:
            if self.run_dir is None:
                raise ValueError("save_checkpoint needs a path when the Trainer has no run folder")
            path = self.run_dir.last_checkpoint
        path = Path(path)
        checkpoint.save(path, {"config": self.config.model_dump(mode="json"), "step": self.global_step,
                               "state": self.state_dict()})
        return path

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: list[str] = (), checkpoint_path: Path | None = None) -> Trainer:
        """Continue a run folder from its last checkpoint (config overrides, e.g. ``train.steps=N``)."""
        run = RunDir(run_dir)
        payload = checkpoint.load(checkpoint_path or run.last_checkpoint)
        try:
            config = from_dict(payload["config"], source=f"checkpoint {run.last_checkpoint}")
        except ConfigError as err:
            raise checkpoint.CheckpointError(f"the checkpoint's config is not valid for this ganstudio: {err}")
        trainer = cls(config.with_overrides(list(overrides)), run)
        try:
            trainer.load_state_dict(payload["state"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise checkpoint.CheckpointError(
                f"checkpoint {run.last_checkpoint} does not match its config (wrong shapes or keys): {err}"
            ) from err
        return trainer

    def close(self) -> None:
        """Release what outlives a run: a streaming dataset's loader workers."""
        self.batches.close()

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, control=None, callbacks: list[Callable] = ()):
        """Train until the step or time budget, or ``control.stop()``; see engine/loop.py."""
        from ganstudio.engine.loop import TrainingLoop

        return TrainingLoop(self, control, list(callbacks)).run()


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, H, W, C) numpy."""
    images = images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).contiguous().cpu().numpy()


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


def _optimizer(config: RunConfig, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    o = config.optim
    if o.name == "adam":
        # fused: one kernel for all parameters (CPU and CUDA), cheaper than the per-tensor loop
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), weight_decay=weight_decay, fused=True)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=o.momentum, weight_decay=weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=o.momentum, weight_decay=weight_decay, foreach=True)
