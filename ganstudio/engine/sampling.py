"""What a Trainer makes besides training: sample grids from the fixed noise, reconstructions, and
evaluations (FID and the rest, or reconstruction error), with the best score so far. G runs in eval mode
and no training RNG is touched, so none of this changes a run.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from ganstudio.engine import autoencoder
from ganstudio.engine.inference import eval_images, to_uint8
from ganstudio.engine.state import eval_mode


class SamplingMixin:
    """Part of ``trainer.Trainer``: uses its ``state``, ``config``, ``family``, ``device``, ``sampler``,
    ``fixed_noise``/``fixed_labels``, ``grid_columns``, ``best_score``/``evals_since_best``, ``_held_out``
    and ``_evaluator``."""

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

    def grid_row_classes(self) -> list[int] | None:
        """The class of each row of the fixed-noise grid (a cgan with a row per class), else None."""
        if self.grid_columns is None:
            return None
        return self.fixed_labels[::self.grid_columns].tolist()

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
        recon = autoencoder.reconstruct(self.state, real, self.sampler)
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
        recon = autoencoder.held_out_metrics(self.state, real)
        warnings = [] if self.config.data.holdout else [
            "no held-out images (data.holdout = 0): reconstruction error is measured on training images"]
        if not self.family.variational:  # an autoencoder's decoded noise is not meant to look like data
            return EvalReport(recon, len(real), "no", time.perf_counter() - start, float("nan"), None, warnings)
        report = self.evaluator().evaluate(self.eval_images(n))
        return EvalReport({**report.metrics, **recon}, report.num_samples, report.extractor,
                          time.perf_counter() - start, report.diversity_ratio, report.class_share,
                          [*report.warnings, *warnings])

    def record_score(self, score: float | None) -> bool:
        """Note an evaluation's primary metric (lower is better); True when it is the best so far."""
        if score is None:
            return False
        if score < self.best_score:
            self.best_score, self.evals_since_best = score, 0
            return True
        self.evals_since_best += 1
        return False
