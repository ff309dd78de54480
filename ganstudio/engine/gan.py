"""The GAN training step, written like the paper: update D (n_critic times), then update G.

One strategy serves unconditional and class-conditional GANs (G and D then also take the labels) and
every stabiliser the config switches on: label smoothing, instance noise, DiffAugment, R1 and gradient
penalties, weight clipping and gradient-norm clipping. It works on a :class:`TrainState` alone and
returns its figures as detached 0-d tensors still on the device; the loop adds them up and reads them
back only at logging intervals, so a step never waits for the device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganstudio.engine.augment import diff_augment, instance_noise, instance_noise_std
from ganstudio.engine.grads import Stats, clip_and_measure
from ganstudio.engine.state import Batch, TrainState
from ganstudio.losses import LOSSES, clip_weights_, gradient_penalty, r1_penalty

def counts_as_step(kind: str) -> bool:
    """A D-only update leaves G (and the step count) where it was."""
    return kind != "d"


def train_step(s: TrainState, next_batch: Batch, kind: str = "both") -> Stats:
    """``kind``: "both" (n_critic D steps then one G step), "d" (one D step) or "g" (one G step)."""
    stats: Stats = {}
    fake = labels = None
    if kind in ("both", "d"):
        n_critic = s.config.optim.n_critic if kind == "both" else 1
        for i in range(n_critic):
            keep_graph = kind == "both" and i == n_critic - 1  # the G step reuses the last fakes
            fake, labels = d_step(s, *next_batch(), keep_graph, stats)
    if kind in ("both", "g"):
        if fake is None:
            n = s.config.train.batch_size // s.world_size  # this rank's part of the global batch
            labels = fake_labels(s, n)
            fake = generate(s, n, labels)
        g_step(s, fake, labels, stats)
    return stats


def d_step(s: TrainState, real: Tensor, labels: Tensor, keep_graph: bool, stats: Stats
           ) -> tuple[Tensor, Tensor | None]:
    """(1) Update D: maximize log D(x) + log(1 - D(G(z))), or the configured loss's equivalent.

    A cgan's fakes get the real batch's labels, so both sides have the same class mix.
    """
    cfg = s.config.loss
    loss_fn = LOSSES[cfg.name]
    labels = labels if s.family.conditional else None
    with torch.set_grad_enabled(keep_graph):
        fake = generate(s, real.shape[0], labels)
    real_in, fake_in = d_input(s, real), d_input(s, fake.detach())
    real_out, fake_out = discriminate(s, real_in, labels), discriminate(s, fake_in, labels)
    loss = loss_fn.d(real_out, fake_out, smoothing=cfg.label_smoothing)
    if loss_fn.gradient_penalty:
        penalty = gradient_penalty(s.d, real_in, fake_in, labels=labels, alpha=s.penalty_weights(real.shape[0]))
        stats["gradient_penalty"] = penalty.detach()
        loss = loss + cfg.gp_weight * penalty
    if cfg.r1_weight > 0:
        r1 = r1_penalty(s.d, real_in, labels=labels)
        stats["r1_penalty"] = r1.detach()
        loss = loss + cfg.r1_weight / 2 * r1
    s.opt_d.zero_grad(set_to_none=True)
    update(s, "d", loss, stats)
    if loss_fn.clip_weights:
        clip_weights_(s.d, cfg.clip_value)
    to_score = torch.sigmoid if loss_fn.probability else (lambda x: x)
    stats["d_real"] = to_score(real_out.detach()).mean()
    stats["d_fake"] = to_score(fake_out.detach()).mean()
    return fake, labels


def g_step(s: TrainState, fake: Tensor, labels: Tensor | None, stats: Stats) -> None:
    """(2) Update G: maximize log D(G(z)) (non-saturating), or the configured loss's equivalent."""
    s.d.requires_grad_(False)  # D's weight gradients are not needed here: skip computing them
    try:
        loss = LOSSES[s.config.loss.name].g(discriminate(s, d_input(s, fake), labels))
    finally:
        s.d.requires_grad_(True)
    s.opt_g.zero_grad(set_to_none=True)
    update(s, "g", loss, stats)


def update(s: TrainState, net: str, loss: Tensor, stats: Stats) -> None:
    """Backward, clip and step one network ("g" or "d"); under fp16 through its gradient scaler, with the
    gradients unscaled before they are clipped and measured."""
    module, opt = (s.g, s.opt_g) if net == "g" else (s.d, s.opt_d)
    p = s.precision
    p.backward(loss, net)
    p.unscale(net, opt)
    clip_and_measure(module, getattr(s.config.optim, f"clip_{net}"), f"grad_norm_{net}", stats)
    p.step(net, opt)
    stats[f"loss_{net}"] = loss.detach()
    names = (f"loss_{net}", f"grad_norm_{net}", f"grad_norm_{net}_unclipped", "gradient_penalty", "r1_penalty")
    p.mark_skip(net, stats.get(f"grad_norm_{net}_unclipped", stats[f"grad_norm_{net}"]), stats,
                names if net == "d" else names[:3])


# --- what D and G see ---------------------------------------------------------------------------------
def generate(s: TrainState, n: int, labels: Tensor | None) -> Tensor:
    """G(z), autocast under bf16/fp16; returned in fp32, so augmentation, instance noise and the
    penalties' interpolation work in full precision (D casts back down at its first layer)."""
    z = s.noise(n)
    with s.precision.autocast():
        fake = s.g(z, labels) if labels is not None else s.g(z)
    return fake.float()


def discriminate(s: TrainState, images: Tensor, labels: Tensor | None) -> Tensor:
    """D's logits, autocast under bf16/fp16, returned in fp32: the losses' softplus, squares and means
    lose the small differences training needs in half precision."""
    with s.precision.autocast():
        logits = s.d(images, labels) if labels is not None else s.d(images)
    return logits.float()


def fake_labels(s: TrainState, n: int) -> Tensor | None:
    """Classes for a G step's fakes (a cgan), drawn uniformly from the training noise."""
    if not s.family.conditional:
        return None
    # like TrainState.noise: every rank draws the global batch's classes and takes its own part
    labels = torch.randint(s.config.model.num_classes, (n * s.world_size,), device=s.device, generator=s.rngs.noise)
    return labels[s.rank * n:(s.rank + 1) * n]


def d_input(s: TrainState, images: Tensor) -> Tensor:
    """What D sees: DiffAugment, then instance noise (both on real and fake, in D and G steps)."""
    cfg = s.config
    if cfg.train.augment:
        images = diff_augment(images, cfg.train.augment, s.rngs.augment)
    std = instance_noise_std(cfg.loss.instance_noise, cfg.loss.instance_noise_steps, s.step)
    return instance_noise(images, std, s.rngs.augment) if std > 0 else images
