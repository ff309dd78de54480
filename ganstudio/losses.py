"""GAN objectives as small pure functions of D's raw logits, picked by name from ``LOSSES``.

Every function takes raw discriminator outputs (no sigmoid) and returns a scalar to minimise. Log-
probability losses go through ``softplus``: log σ(x) = −softplus(−x) and log(1 − σ(x)) = −softplus(x),
which stay finite where log(sigmoid(x)) would give −inf for large |x|.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --- minimax / non-saturating (Goodfellow et al. 2014, "Generative Adversarial Nets") -----------------
def bce_d(real: Tensor, fake: Tensor) -> Tensor:
    """D maximises log D(x) + log(1 − D(G(z))): binary cross-entropy, real -> 1, fake -> 0."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g(fake: Tensor) -> Tensor:
    """G minimises log(1 − D(G(z))), the original saturating form: its gradient vanishes while D wins."""
    return -F.softplus(fake).mean()


def bce_g(fake: Tensor) -> Tensor:
    """G maximises log D(G(z)) instead, the paper's non-saturating fix: strong gradients early on."""
    return F.softplus(-fake).mean()


# --- least squares (Mao et al. 2017, "Least Squares Generative Adversarial Networks") ------------------
def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """D regresses real outputs to b = 1 and fake ones to a = 0 (the paper's 0-1 coding)."""
    return 0.5 * ((real - 1).square().mean() + fake.square().mean())


def lsgan_g(fake: Tensor) -> Tensor:
    """G pushes D's output on fakes to c = 1."""
    return 0.5 * (fake - 1).square().mean()


# --- Wasserstein (Arjovsky et al. 2017 "Wasserstein GAN"; Gulrajani et al. 2017 "Improved Training") ---
def wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """The critic maximises E[D(x)] − E[D(G(z))], an estimate of the Wasserstein-1 distance when D is
    1-Lipschitz (kept so by weight clipping, or by the gradient penalty)."""
    return fake.mean() - real.mean()


def wgan_g(fake: Tensor) -> Tensor:
    """G maximises the critic's score on its samples."""
    return -fake.mean()


# --- hinge (Lim & Ye 2017 "Geometric GAN"; Miyato et al. 2018; Zhang et al. 2019 "SAGAN") -------------
def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """D wants real scores ≥ 1 and fake scores ≤ −1; samples past the margin cost nothing."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    """G maximises D's raw score on its samples, with no margin (the same as WGAN's G)."""
    return -fake.mean()


# --- penalties and constraints -----------------------------------------------------------------------
def gradient_penalty(d: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = αx + (1 − α)G(z), one α ~ U[0, 1] per sample
    (Gulrajani et al. 2017). Differentiable in D's weights (create_graph), so the caller adds
    ``gp_weight * gradient_penalty(...)`` to the D loss. Costs a second forward and a double backward.
    """
    shape = (real.size(0),) + (1,) * (real.dim() - 1)
    # Drawn where the generator lives, then moved: a CPU generator works for a CUDA batch.
    device = generator.device if generator is not None else real.device
    alpha = torch.rand(shape, generator=generator, device=device).to(real)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


@torch.no_grad()
def clip_weights_(d: nn.Module, c: float) -> None:
    """Clamp every parameter of D to [−c, c] (WGAN's crude Lipschitz constraint, as its code does:
    biases and norm scales included)."""
    for p in d.parameters():
        p.clamp_(-c, c)


@dataclass(frozen=True)
class GanLoss:
    d: Callable[[Tensor, Tensor], Tensor]   # (real_logits, fake_logits) -> scalar D loss
    g: Callable[[Tensor], Tensor]           # fake_logits -> scalar G loss
    probability: bool        # sigmoid(logit) is a probability: D(x) is reported as mean sigmoid, else raw mean
    clip_weights: bool = False      # WGAN: clip D's weights to ±clip_value after each D step
    gradient_penalty: bool = False  # WGAN-GP: add gp_weight * gradient_penalty(...) to the D loss
    description: str = ""


LOSSES: dict[str, GanLoss] = {  # keys are the choices of LossConfig.name
    "minimax": GanLoss(bce_d, minimax_g, probability=True,
                       description="Original GAN: G minimises log(1 − D(G(z))); saturates when D wins"),
    "bce": GanLoss(bce_d, bce_g, probability=True,
                   description="Non-saturating GAN: G maximises log D(G(z)); the usual default"),
    "lsgan": GanLoss(lsgan_d, lsgan_g, probability=False,
                     description="Least squares GAN (Mao et al. 2017): squared error to targets 0 and 1"),
    "wgan": GanLoss(wgan_d, wgan_g, probability=False, clip_weights=True,
                    description="Wasserstein GAN (Arjovsky et al. 2017) with weight clipping; use n_critic 5"),
    "wgan-gp": GanLoss(wgan_d, wgan_g, probability=False, gradient_penalty=True,
                       description="Wasserstein GAN with gradient penalty (Gulrajani et al. 2017); D without "
                                   "batch norm"),
    "hinge": GanLoss(hinge_d, hinge_g, probability=False,
                     description="Hinge loss (Geometric GAN, SAGAN): margins at ±1 for D"),
}
