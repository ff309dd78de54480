"""Training objectives as small pure functions: GAN losses picked by name from ``LOSSES``, D's
penalties, and the autoencoder/VAE reconstruction (``RECON_LOSSES``) and KL terms.

The registries are built from ``catalog.LOSS_CHOICES``: GAN loss ``foo`` is ``foo_d`` and ``foo_g`` here
("-" read as "_"), reconstruction loss ``foo`` is ``foo_recon``; what a loss can do (label smoothing, a
gradient penalty, ...) is its catalog row. A new loss is its functions here plus one row there.

Every GAN loss takes raw discriminator outputs (no sigmoid) and returns a scalar to minimise; every D
loss takes a ``smoothing`` keyword (one-sided label smoothing), which the losses without a real-image
target ignore (the config refuses it for them). Log-probability losses go through ``softplus``:
log σ(x) = −softplus(−x) and log(1 − σ(x)) = −softplus(x), which stay finite where log(sigmoid(x))
would give −inf for large |x|.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganstudio.catalog import LOSS_CHOICES, LossChoice


# --- minimax / non-saturating (Goodfellow et al. 2014, "Generative Adversarial Nets") -----------------
def bce_d(real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """D maximises log D(x) + log(1 − D(G(z))): binary cross-entropy, real -> 1 − smoothing, fake -> 0.

    One-sided label smoothing (Salimans et al. 2016, "Improved Techniques for Training GANs") moves only
    the real target: its minimum is at D(x) = 1 − s, so D gains nothing from total confidence.
    """
    real_term = F.softplus(-real)                    # −log σ(r), the cross-entropy with target 1
    if smoothing:  # target t: t·softplus(−r) + (1 − t)·softplus(r), BCE-with-logits in its safe form
        real_term = (1 - smoothing) * real_term + smoothing * F.softplus(real)
    return real_term.mean() + F.softplus(fake).mean()


minimax_d = bce_d  # the original GAN and its non-saturating fix differ only in G's objective


def minimax_g(fake: Tensor) -> Tensor:
    """G minimises log(1 − D(G(z))), the original saturating form: its gradient vanishes while D wins."""
    return -F.softplus(fake).mean()


def bce_g(fake: Tensor) -> Tensor:
    """G maximises log D(G(z)) instead, the paper's non-saturating fix: strong gradients early on."""
    return F.softplus(-fake).mean()


# --- least squares (Mao et al. 2017, "Least Squares Generative Adversarial Networks") ------------------
def lsgan_d(real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """D regresses real outputs to b = 1 − smoothing and fake ones to a = 0 (the paper's 0-1 coding)."""
    return 0.5 * ((real - (1 - smoothing)).square().mean() + fake.square().mean())


def lsgan_g(fake: Tensor) -> Tensor:
    """G pushes D's output on fakes to c = 1."""
    return 0.5 * (fake - 1).square().mean()


# --- Wasserstein (Arjovsky et al. 2017 "Wasserstein GAN"; Gulrajani et al. 2017 "Improved Training") ---
def wgan_d(real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """The critic maximises E[D(x)] − E[D(G(z))], an estimate of the Wasserstein-1 distance when D is
    1-Lipschitz (kept so by weight clipping, or by the gradient penalty). A critic has no target to
    smooth: ``smoothing`` is ignored."""
    return fake.mean() - real.mean()


def wgan_g(fake: Tensor) -> Tensor:
    """G maximises the critic's score on its samples."""
    return -fake.mean()


wgan_gp_d, wgan_gp_g = wgan_d, wgan_g  # WGAN-GP is WGAN with the gradient penalty added by the step


# --- hinge (Lim & Ye 2017 "Geometric GAN"; Miyato et al. 2018; Zhang et al. 2019 "SAGAN") -------------
def hinge_d(real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """D wants real scores ≥ 1 and fake scores ≤ −1; samples past the margin cost nothing, so there is
    no target to smooth: ``smoothing`` is ignored."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    """G maximises D's raw score on its samples, with no margin (the same as WGAN's G)."""
    return -fake.mean()


# --- penalties and constraints -----------------------------------------------------------------------
def _score(d: nn.Module, x: Tensor, labels: Tensor | None) -> Tensor:
    """D's output on ``x``: a conditional D is called ``d(x, labels)``, an unconditional one ``d(x)``."""
    return d(x) if labels is None else d(x, labels)


def _full_precision(x: Tensor):
    """Autocast off for a penalty's forward and input gradient, even when the caller autocasts.

    Why: the penalties are squared gradient norms. In fp16 the per-pixel input gradients of a D that is
    doing well are tiny (they underflow to 0, and the penalty with them), their squares overflow past 65504
    when D is steep, and the double backward through them loses the rest. A gradient scaler cannot fix
    this from outside: the penalty is part of the loss the scaler multiplies, so scaling its inner gradient
    too would scale it twice. The cost: the penalty's D pass (one forward, a double backward) runs at fp32
    speed under bf16/fp16.
    """
    return torch.autocast(x.device.type, enabled=False)


def gradient_penalty(d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None,
                     labels: Tensor | None = None, alpha: Tensor | None = None) -> Tensor:
    """WGAN-GP's E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = αx + (1 − α)G(z), one α ~ U[0, 1] per sample
    (Gulrajani et al. 2017). Differentiable in D's weights (create_graph), so the caller adds
    ``gp_weight * gradient_penalty(...)`` to the D loss. Costs a second forward and a double backward.

    ``labels``: a conditional D's class per row, shared by ``real`` and ``fake`` (a cgan draws its fakes
    for the real images' labels); None for an unconditional D.

    ``alpha``: the (N,) weights, when the caller draws them (several processes each take their rows of
    the global batch's draw); else drawn from ``generator``.
    """
    shape = (real.size(0),) + (1,) * (real.dim() - 1)
    real, fake = real.float(), fake.float()
    if alpha is None:
        # Drawn where the generator lives, then moved: a CPU generator works for a CUDA batch.
        device = generator.device if generator is not None else real.device
        alpha = torch.rand(shape, generator=generator, device=device)
    alpha = alpha.reshape(shape).to(real)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with _full_precision(mixed):
        (grad,) = torch.autograd.grad(_score(d, mixed, labels).float().sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(d: nn.Module, real: Tensor, labels: Tensor | None = None) -> Tensor:
    """R1 = E‖∇ₓD(x)‖² on real images (Mescheder et al. 2018, "Which Training Methods for GANs do
    actually Converge?"): penalising D's slope at the data stops it from growing without bound there.
    Differentiable in D's weights (create_graph); the caller adds ``r1_weight / 2 * r1_penalty(...)``
    to the D loss. Costs a second forward of D on the reals and a double backward.
    """
    x = real.detach().float().requires_grad_(True)
    with _full_precision(x):
        (grad,) = torch.autograd.grad(_score(d, x, labels).float().sum(), x, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


@torch.no_grad()
def clip_weights_(d: nn.Module, c: float) -> None:
    """Clamp every parameter of D to [−c, c] (WGAN's crude Lipschitz constraint, as its code does:
    biases and norm scales included)."""
    for p in d.parameters():
        p.clamp_(-c, c)


@dataclass(frozen=True)
class GanLoss:
    d: Callable[..., Tensor]         # (real_logits, fake_logits, smoothing=0.0) -> scalar D loss
    g: Callable[[Tensor], Tensor]    # fake_logits -> scalar G loss
    probability: bool        # sigmoid(logit) is a probability: D(x) is reported as mean sigmoid, else raw mean
    clip_weights: bool = False      # WGAN: clip D's weights to ±clip_value after each D step
    gradient_penalty: bool = False  # WGAN-GP: add gp_weight * gradient_penalty(...) to the D loss
    label_smoothing: bool = False   # d uses its smoothing argument (a target for real images to soften)
    description: str = ""


def _function(name: str, suffix: str) -> Callable[..., Tensor]:
    found = globals().get(f"{name.replace('-', '_')}_{suffix}")
    if found is None:
        raise NotImplementedError(f"catalog loss {name!r} needs a function {name.replace('-', '_')}_{suffix} "
                                  "in ganstudio/losses.py")
    return found


def _gan_loss(choice: LossChoice) -> GanLoss:
    return GanLoss(_function(choice.name, "d"), _function(choice.name, "g"), probability=choice.probability,
                   clip_weights=choice.clip_weights, gradient_penalty=choice.gradient_penalty,
                   label_smoothing=choice.label_smoothing, description=choice.description)


# --- autoencoder / VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") ----------------------
# Images are in [−1, 1]; both terms are per-image sums over pixels (B,), computed in float32 because a
# sum over thousands of pixels in half precision loses the small differences training needs.
_EPS = 1e-6  # keeps log(p) and log(1 − p) finite where the decoder's output reaches 0 or 1


def mse_recon(recon: Tensor, target: Tensor) -> Tensor:
    """Σ squared error per image, measured on the [0, 1] scale: Σ((recon − target) / 2)²."""
    return ((recon.float() - target.float()) / 2).square().flatten(1).sum(1)


def bernoulli_recon(recon: Tensor, target: Tensor) -> Tensor:
    """Σ per-pixel binary cross-entropy per image, with target and recon mapped to [0, 1] (recon clamped
    into [ε, 1 − ε]): −Σ t·log p + (1 − t)·log(1 − p), the Bernoulli decoder's negative log-likelihood."""
    p = ((recon.float() + 1) / 2).clamp(_EPS, 1 - _EPS)
    t = (target.float() + 1) / 2
    return -(t * p.log() + (1 - t) * (1 - p).log()).flatten(1).sum(1)


# --- the registries: catalog.LOSS_CHOICES's rows, with their code ----------------------------------------
LOSSES: dict[str, GanLoss] = {  # the GAN values of LossConfig.name
    name: _gan_loss(choice) for name, choice in LOSS_CHOICES.items() if not choice.reconstruction}
RECON_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {  # the autoencoder/VAE values of LossConfig.name
    name: _function(name, "recon") for name, choice in LOSS_CHOICES.items() if choice.reconstruction}


def reconstruction_loss(name: str, recon: Tensor, target: Tensor) -> Tensor:
    """The reconstruction term ``name`` (a key of ``RECON_LOSSES``) of each image: shape (B,)."""
    try:
        fn = RECON_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown reconstruction loss {name!r}; choose one of {', '.join(RECON_LOSSES)}") from None
    return fn(recon, target)


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, exp(logvar)) ‖ N(0, I)) per sample, summed over latent dims: shape (B,).
    Closed form ½Σ(μ² + σ² − 1 − log σ²)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).flatten(1).sum(1)
