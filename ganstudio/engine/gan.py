"""The GAN training step, written like the paper: update D (n_critic times), then update G.

It returns its figures as detached 0-d tensors still on the device; the Trainer adds them up and
reads them back only at logging intervals, so a step never waits for the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganstudio.config import RunConfig
from ganstudio.losses import LOSSES, clip_weights_, gradient_penalty

Stats = dict[str, Tensor]


def grad_norm(module: nn.Module) -> Tensor:
    """Global L2 norm of the gradients, on the device (no sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class GanStrategy:
    """One training step of a GAN; the Trainer owns the loop, the guards and the files."""

    def __init__(self, config: RunConfig, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, noise: Callable[[int], Tensor],
                 penalty_rng: torch.Generator) -> None:
        self.config, self.g, self.d, self.opt_g, self.opt_d = config, g, d, opt_g, opt_d
        self.noise, self.penalty_rng = noise, penalty_rng

    def train_step(self, next_batch: Callable[[], tuple[Tensor, Tensor]], kind: str = "both") -> Stats:
        """``kind``: "both" (n_critic D steps then one G step), "d" (one D step) or "g" (one G step)."""
        stats: Stats = {}
        fake = None
        if kind in ("both", "d"):
            n_critic = self.config.optim.n_critic if kind == "both" else 1
            for i in range(n_critic):
                keep_graph = kind == "both" and i == n_critic - 1  # the G step reuses the last fakes
                fake = self.d_step(next_batch()[0], keep_graph, stats)
        if kind in ("both", "g"):
            if fake is None:
                fake = self.g(self.noise(self.config.train.batch_size))
            self.g_step(fake, stats)
        return stats

    def d_step(self, real: Tensor, keep_graph: bool, stats: Stats) -> Tensor:
        """(1) Update D: maximize log D(x) + log(1 - D(G(z))), or the configured loss's equivalent."""
        loss_fn, cfg = LOSSES[self.config.loss.name], self.config.loss
        with torch.set_grad_enabled(keep_graph):
            fake = self.g(self.noise(real.shape[0]))
        real_out, fake_out = self.d(real), self.d(fake.detach())
        loss = loss_fn.d(real_out, fake_out)
        if loss_fn.gradient_penalty:
            penalty = gradient_penalty(self.d, real, fake.detach(), self.penalty_rng)
            stats["gradient_penalty"] = penalty.detach()
            loss = loss + cfg.gp_weight * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        stats["grad_norm_d"] = grad_norm(self.d)
        self.opt_d.step()
        if loss_fn.clip_weights:
            clip_weights_(self.d, cfg.clip_value)
        to_score = torch.sigmoid if loss_fn.probability else (lambda t: t)
        stats["loss_d"] = loss.detach()
        stats["d_real"] = to_score(real_out.detach()).mean()
        stats["d_fake"] = to_score(fake_out.detach()).mean()
        return fake

    def g_step(self, fake: Tensor, stats: Stats) -> None:
        """(2) Update G: maximize log D(G(z)) (non-saturating), or the configured loss's equivalent."""
        self.d.requires_grad_(False)  # D's weight gradients are not needed here: skip computing them
        try:
            loss = LOSSES[self.config.loss.name].g(self.d(fake))
        finally:
            self.d.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        stats["grad_norm_g"] = grad_norm(self.g)
        self.opt_g.step()
        stats["loss_g"] = loss.detach()
