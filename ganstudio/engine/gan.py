"""The GAN training step, written like the paper: update D (n_critic times), then update G.

One strategy serves unconditional and class-conditional GANs (G and D then also take the labels) and
every stabiliser the config switches on: label smoothing, instance noise, DiffAugment, R1 and gradient
penalties, weight clipping and gradient-norm clipping. It returns its figures as detached 0-d tensors
still on the device; the Trainer adds them up and reads them back only at logging intervals, so a step
never waits for the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ganstudio.engine.augment import diff_augment, instance_noise, instance_noise_std
from ganstudio.losses import LOSSES, clip_weights_, gradient_penalty, r1_penalty

if TYPE_CHECKING:
    from ganstudio.engine.trainer import Trainer

Stats = dict[str, Tensor]
Batch = Callable[[], tuple[Tensor, Tensor]]


def grad_norm(module: nn.Module) -> Tensor:
    """Global L2 norm of the gradients, on the device (no sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def clip_and_measure(module: nn.Module, max_norm: float, name: str, stats: Stats) -> None:
    """Log the gradient norm the optimizer will apply; with clipping on, also the norm before it.

    Clipping scales the gradients to max_norm when they are longer, so the applied norm is
    min(norm, max_norm): derived, not measured again.
    """
    if max_norm > 0:
        params = [p for p in module.parameters() if p.grad is not None]
        unclipped = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        stats[f"{name}_unclipped"], stats[name] = unclipped, unclipped.clamp(max=max_norm)
    else:
        stats[name] = grad_norm(module)


class GanStrategy:
    """One training step of a GAN; the Trainer owns the loop, the guards and the files."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.conditional = trainer.family.conditional

    # --- helpers ----------------------------------------------------------------------------------------
    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        z = self.t.noise(n)
        return self.t.g(z, labels) if self.conditional else self.t.g(z)

    def discriminate(self, images: Tensor, labels: Tensor | None) -> Tensor:
        return self.t.d(images, labels) if self.conditional else self.t.d(images)

    def d_input(self, images: Tensor) -> Tensor:
        """What D sees: DiffAugment, then instance noise (both on real and fake, in D and G steps)."""
        t, cfg = self.t, self.t.config
        if cfg.train.augment:
            images = diff_augment(images, cfg.train.augment, t.augment_rng)
        std = instance_noise_std(cfg.loss.instance_noise, cfg.loss.instance_noise_steps, t.global_step)
        return instance_noise(images, std, t.augment_rng) if std > 0 else images

    def fake_labels(self, n: int) -> Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(self.t.config.model.num_classes, (n,), device=self.t.device, generator=self.t.noise_rng)

    # --- the step ---------------------------------------------------------------------------------------
    def batches_per_step(self, kind: str) -> int:
        """Real batches one ``kind`` of step takes: n_critic D steps, one, or none for a G step."""
        return self.t.config.optim.n_critic if kind == "both" else int(kind == "d")

    def counts_as_step(self, kind: str) -> bool:
        """A D-only update leaves G (and the step count) where it was."""
        return kind != "d"

    def train_step(self, next_batch: Batch, kind: str = "both") -> Stats:
        """``kind``: "both" (n_critic D steps then one G step), "d" (one D step) or "g" (one G step)."""
        stats: Stats = {}
        fake = labels = None
        if kind in ("both", "d"):
            n_critic = self.t.config.optim.n_critic if kind == "both" else 1
            for i in range(n_critic):
                keep_graph = kind == "both" and i == n_critic - 1  # the G step reuses the last fakes
                fake, labels = self.d_step(*next_batch(), keep_graph, stats)
        if kind in ("both", "g"):
            if fake is None:
                labels = self.fake_labels(self.t.config.train.batch_size)
                fake = self.generate(self.t.config.train.batch_size, labels)
            self.g_step(fake, labels, stats)
        return stats

    def d_step(self, real: Tensor, labels: Tensor, keep_graph: bool, stats: Stats) -> tuple[Tensor, Tensor | None]:
        """(1) Update D: maximize log D(x) + log(1 - D(G(z))), or the configured loss's equivalent.

        A cgan's fakes get the real batch's labels, so both sides have the same class mix.
        """
        t, cfg = self.t, self.t.config.loss
        loss_fn = LOSSES[cfg.name]
        labels = labels if self.conditional else None
        with torch.set_grad_enabled(keep_graph):
            fake = self.generate(real.shape[0], labels)
        real_in, fake_in = self.d_input(real), self.d_input(fake.detach())
        real_out, fake_out = self.discriminate(real_in, labels), self.discriminate(fake_in, labels)
        loss = loss_fn.d(real_out, fake_out, smoothing=cfg.label_smoothing)
        if loss_fn.gradient_penalty:
            penalty = gradient_penalty(t.d, real_in, fake_in, t.penalty_rng, labels=labels)
            stats["gradient_penalty"] = penalty.detach()
            loss = loss + cfg.gp_weight * penalty
        if cfg.r1_weight > 0:
            r1 = r1_penalty(t.d, real_in, labels=labels)
            stats["r1_penalty"] = r1.detach()
            loss = loss + cfg.r1_weight / 2 * r1
        t.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        clip_and_measure(t.d, t.config.optim.clip_d, "grad_norm_d", stats)
        t.opt_d.step()
        if loss_fn.clip_weights:
            clip_weights_(t.d, cfg.clip_value)
        to_score = torch.sigmoid if loss_fn.probability else (lambda x: x)
        stats["loss_d"] = loss.detach()
        stats["d_real"] = to_score(real_out.detach()).mean()
        stats["d_fake"] = to_score(fake_out.detach()).mean()
        return fake, labels

    def g_step(self, fake: Tensor, labels: Tensor | None, stats: Stats) -> None:
        """(2) Update G: maximize log D(G(z)) (non-saturating), or the configured loss's equivalent."""
        t = self.t
        t.d.requires_grad_(False)  # D's weight gradients are not needed here: skip computing them
        try:
            loss = LOSSES[t.config.loss.name].g(self.discriminate(self.d_input(fake), labels))
        finally:
            t.d.requires_grad_(True)
        t.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        clip_and_measure(t.g, t.config.optim.clip_g, "grad_norm_g", stats)
        t.opt_g.step()
        stats["loss_g"] = loss.detach()
