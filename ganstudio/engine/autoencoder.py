"""The autoencoder and VAE training step, on the same loop as the GANs.

The state's ``d`` is the encoder and ``g`` the decoder (so checkpoints, EMA, sampling and export treat
the decoder as the generator). One step encodes a batch, decodes it and minimises the reconstruction
loss, plus β·KL(q(z|x) ‖ N(0, I)) for a VAE (Kingma & Welling 2014), updating both.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganstudio.engine.grads import Stats, clip_and_measure
from ganstudio.engine.state import Batch, TrainState, eval_mode
from ganstudio.losses import kl_normal, reconstruction_loss


def counts_as_step(kind: str) -> bool:
    return True  # D-only/G-only mean nothing here: every kind is a whole step


def train_step(s: TrainState, next_batch: Batch, kind: str = "both") -> Stats:
    """One update of encoder and decoder together; any ``kind`` is a whole step."""
    stats: Stats = {}
    images, _ = next_batch()
    _, rec, kl = losses(s, images, sample=True)
    loss = rec.mean()
    stats["recon"] = loss.detach()
    if kl is not None:
        stats["kl"] = kl.mean().detach()
        loss = loss + beta(s) * kl.mean()
        stats["loss"] = loss.detach()
    s.opt_d.zero_grad(set_to_none=True)
    s.opt_g.zero_grad(set_to_none=True)
    # one loss trains both networks, so under fp16 one scaler (G's) scales it and steps both optimizers
    p = s.precision
    p.backward(loss, "g")
    p.unscale("g", s.opt_d, s.opt_g)
    clip_and_measure(s.d, s.config.optim.clip_d, "grad_norm_d", stats)
    clip_and_measure(s.g, s.config.optim.clip_g, "grad_norm_g", stats)
    p.step("g", s.opt_d, s.opt_g)
    if p.scalers:
        norm = torch.stack([stats.get(f"grad_norm_{n}_unclipped", stats[f"grad_norm_{n}"]) for n in "dg"]).sum()
        p.mark_skip("g", norm, stats, ("recon", "kl", "loss", "grad_norm_d", "grad_norm_g",
                                       "grad_norm_d_unclipped", "grad_norm_g_unclipped"))
    return stats


def encode(s: TrainState, images: Tensor, *, sample: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(z, mu, logvar): a VAE draws z = mu + σ·ε with the run's noise generator (reparameterised, so
    gradients reach the encoder) when ``sample``, else takes the mean; an autoencoder's code is z."""
    with s.precision.autocast():
        code = s.d(images).float()
    if not s.family.variational:
        return code, None, None
    mu, logvar = code.float().chunk(2, dim=1)
    if not sample:
        return mu, mu, logvar
    eps = s.noise(mu.shape[0])
    return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


def beta(s: TrainState) -> float:
    """β, ramped up linearly over ``loss.kl_warmup`` steps."""
    cfg = s.config.loss
    ramp = min(1.0, s.step / cfg.kl_warmup) if cfg.kl_warmup else 1.0
    return cfg.beta * ramp


def losses(s: TrainState, images: Tensor, *, sample: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """(reconstructions, per-image reconstruction loss (B,), per-image KL (B,) or None)."""
    z, mu, logvar = encode(s, images, sample=sample)
    with s.precision.autocast():
        recon = s.g(z).float()  # the reconstruction terms are sums over thousands of pixels: fp32
    rec = reconstruction_loss(s.config.loss.name, recon, images)
    return recon, rec, (kl_normal(mu, logvar) if s.family.variational else None)


def model_input(s: TrainState, images: Tensor) -> Tensor:
    """uint8 (N, C, H, W) images as the encoder sees training batches: [-1, 1] floats on the device."""
    x = images.to(s.device).float().div_(127.5).sub_(1)
    return x.contiguous(memory_format=s.memory_format)


@torch.no_grad()
def held_out_metrics(s: TrainState, images: Tensor, batch_size: int = 256) -> dict[str, float]:
    """Reconstruction error (and ELBO parts for a VAE) of uint8 (N, C, H, W) held-out images.

    recon_mse is per pixel on the [0, 1] scale; recon and kl are per image, in the loss's units (nats for
    bernoulli); elbo = −(recon + kl), the evidence lower bound with β = 1. A VAE encodes to its mean
    here, so the figures do not depend on a random draw.
    """
    sums = {"recon_mse": 0.0, "recon": 0.0, "kl": 0.0}
    with eval_mode(s.d, s.g):
        for start in range(0, len(images), batch_size):
            x = model_input(s, images[start:start + batch_size])
            recon, rec, kl = losses(s, x, sample=False)
            sums["recon_mse"] += float(((recon.float() - x) / 2).square().flatten(1).mean(1).sum())
            sums["recon"] += float(rec.sum())
            if kl is not None:
                sums["kl"] += float(kl.sum())
    out = {k: v / len(images) for k, v in sums.items()}
    if s.family.variational:
        out["elbo"] = -(out["recon"] + out["kl"])
    else:
        del out["kl"]
    return out


@torch.no_grad()
def reconstruct(s: TrainState, images: Tensor, decoder: nn.Module) -> Tensor:
    """Decoded codes of uint8 (N, C, H, W) images, as [-1, 1] floats; eval mode, no randomness.
    ``decoder`` is the one samples use (the EMA decoder when it is on)."""
    with eval_mode(s.d, s.g, decoder):
        z, _, _ = encode(s, model_input(s, images), sample=False)
        return decoder(z)
