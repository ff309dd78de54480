"""The autoencoder and VAE training step, on the same Trainer loop as the GANs.

The Trainer's ``d`` is the encoder and ``g`` the decoder (so checkpoints, EMA, sampling and export
treat the decoder as the generator). One step encodes a batch, decodes it and minimises the
reconstruction loss, plus β·KL(q(z|x) ‖ N(0, I)) for a VAE (Kingma & Welling 2014), updating both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ganstudio.engine.gan import Batch, Stats, clip_and_measure
from ganstudio.losses import kl_normal, reconstruction_loss

if TYPE_CHECKING:
    from ganstudio.engine.trainer import Trainer


class AutoencoderStrategy:
    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.variational = trainer.family.variational

    def encode(self, images: Tensor, *, sample: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(z, mu, logvar): a VAE draws z = mu + σ·ε with the Trainer's noise generator (reparameterised,
        so gradients reach the encoder) when ``sample``, else takes the mean; an autoencoder's code is z."""
        code = self.t.d(images)
        if not self.variational:
            return code, None, None
        mu, logvar = code.float().chunk(2, dim=1)
        if not sample:
            return mu, mu, logvar
        eps = torch.randn(mu.shape, device=mu.device, generator=self.t.noise_rng)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar

    def model_input(self, images: Tensor) -> Tensor:
        """uint8 (N, C, H, W) images as the encoder sees training batches: [-1, 1] floats on the device."""
        x = images.to(self.t.device).float().div_(127.5).sub_(1)
        return x.contiguous(memory_format=self.t.memory_format)

    def beta(self) -> float:
        """β, ramped up linearly over ``loss.kl_warmup`` steps."""
        cfg = self.t.config.loss
        ramp = min(1.0, self.t.global_step / cfg.kl_warmup) if cfg.kl_warmup else 1.0
        return cfg.beta * ramp

    def losses(self, images: Tensor, *, sample: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """(reconstructions, per-image reconstruction loss (B,), per-image KL (B,) or None)."""
        z, mu, logvar = self.encode(images, sample=sample)
        recon = self.t.g(z)
        rec = reconstruction_loss(self.t.config.loss.name, recon, images)
        return recon, rec, (kl_normal(mu, logvar) if self.variational else None)

    def batches_per_step(self, kind: str) -> int:
        return 1

    def counts_as_step(self, kind: str) -> bool:
        return True  # D-only/G-only mean nothing here: every kind is a whole step

    def train_step(self, next_batch: Batch, kind: str = "both") -> Stats:
        """One update of encoder and decoder together; D-only/G-only steps mean nothing here, so any
        ``kind`` is a whole step."""
        t, stats = self.t, {}
        images, _ = next_batch()
        _, rec, kl = self.losses(images, sample=True)
        loss = rec.mean()
        stats["recon"] = loss.detach()
        if kl is not None:
            stats["kl"] = kl.mean().detach()
            loss = loss + self.beta() * kl.mean()
            stats["loss"] = loss.detach()
        t.opt_d.zero_grad(set_to_none=True)
        t.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        clip_and_measure(t.d, t.config.optim.clip_d, "grad_norm_d", stats)
        clip_and_measure(t.g, t.config.optim.clip_g, "grad_norm_g", stats)
        t.opt_d.step()
        t.opt_g.step()
        return stats

    @torch.no_grad()
    def held_out_metrics(self, images: Tensor, batch_size: int = 256) -> dict[str, float]:
        """Reconstruction error (and ELBO parts for a VAE) of uint8 (N, C, H, W) held-out images.

        recon_mse is per pixel on the [0, 1] scale; recon and kl are per image, in the loss's units
        (nats for bernoulli); elbo = −(recon + kl), the evidence lower bound with β = 1. A VAE encodes
        to its mean here, so the figures do not depend on a random draw.
        """
        t = self.t
        sums = {"recon_mse": 0.0, "recon": 0.0, "kl": 0.0}
        with eval_mode(t.d, t.g):
            for start in range(0, len(images), batch_size):
                x = self.model_input(images[start:start + batch_size])
                recon, rec, kl = self.losses(x, sample=False)
                sums["recon_mse"] += float(((recon.float() - x) / 2).square().flatten(1).mean(1).sum())
                sums["recon"] += float(rec.sum())
                if kl is not None:
                    sums["kl"] += float(kl.sum())
        out = {k: v / len(images) for k, v in sums.items()}
        if self.variational:
            out["elbo"] = -(out["recon"] + out["kl"])
        else:
            del out["kl"]
        return out

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Decoded codes of uint8 (N, C, H, W) images, as [-1, 1] floats; eval mode, no randomness."""
        t = self.t
        with eval_mode(t.d, t.g):
            x = self.model_input(images)
            z, _, _ = self.encode(x, sample=False)
            decoder = t.sampler  # the EMA decoder when it is on, as for samples
            return decoder(z)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run with ``modules`` in eval mode (batch norm uses its running statistics), then restore them."""
    modes = [(m, m.training) for m in modules]
    try:
        for m, _ in modes:
            m.eval()
        yield
    finally:
        for m, training in modes:
            m.train(training)
