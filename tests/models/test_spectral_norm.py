"""Spectral norm on D (Miyato et al. 2018): every Linear/Conv weight, and a projection D's embedding."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganstudio.config import ModelConfig
from ganstudio.models import build_models

SMALL = {"z_dim": 16, "g_width": 8, "d_width": 8, "num_classes": 5}
KINDS = {"gan": {"family": "gan"}, "cgan-projection": {"family": "cgan", "conditioning": "projection"},
         "cgan-concat": {"family": "cgan", "conditioning": "concat"}}


def build_d(kind: str, arch: str, **fields) -> nn.Module:
    torch.manual_seed(0)
    return build_models(ModelConfig(**{**SMALL, **KINDS[kind], "arch": arch, **fields}),
                        image_size=32, channels=3)[1]


def top_singular_values(d: nn.Module, *, normalised_only: bool = False) -> list[float]:
    """σ₁ of every Linear/Conv/Embedding weight as D uses it, conv kernels read as (out, in·k·k)."""
    layers = [m for m in d.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding))
              and (parametrize.is_parametrized(m) or not normalised_only)]
    return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item() for m in layers]


def run_in_train_mode(d: nn.Module, steps: int = 3) -> None:
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    d.train()
    with torch.no_grad():
        for _ in range(steps):  # each forward runs one more power iteration
            d(x, y)
    d.eval()  # σ₁ is then read with the u and v the last forward left


@torch.no_grad()
def scale_weights_(d: nn.Module, factor: float) -> None:
    for m in d.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m) else m.weight
            weight.mul_(factor)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_every_d_weight_has_unit_spectral_norm(kind, arch):
    d = build_d(kind, arch, spectral_norm=True)
    layers = [m for m in d.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all(parametrize.is_parametrized(m) for m in layers)
    embeddings = [m for m in d.modules() if isinstance(m, nn.Embedding)]
    assert [parametrize.is_parametrized(m) for m in embeddings] == {
        "gan": [], "cgan-projection": [True], "cgan-concat": [False]}[kind]  # concat's embedding is an input
    scale_weights_(d, 10.0)  # SN divides by σ₁, so a weight ten times larger changes nothing
    run_in_train_mode(d)
    sigmas = top_singular_values(d, normalised_only=True)
    assert sigmas and all(s == pytest.approx(1.0, rel=0.05) for s in sigmas), sigmas


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_without_spectral_norm_weights_keep_their_scale(arch):
    d = build_d("gan", arch)
    assert not any(parametrize.is_parametrized(m) for m in d.modules())
    scale_weights_(d, 10.0)
    run_in_train_mode(d)
    assert max(top_singular_values(d)) > 1.5


def test_generator_is_never_normalised():
    g, _ = build_models(ModelConfig(**SMALL, spectral_norm=True), image_size=32, channels=3)
    assert not any(parametrize.is_parametrized(m) for m in g.modules())


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_penalties_backpropagate_through_spectral_norm(kind, arch):
    # R1 and WGAN-GP take D's input gradient with create_graph, then backpropagate into D's weights
    d = build_d(kind, arch, spectral_norm=True, d_norm="layer")
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, torch.tensor([0, 1, 2, 3])).sum(), x, create_graph=True)
    grad.square().sum().backward()
    originals = [m.parametrizations.weight.original for m in d.modules() if parametrize.is_parametrized(m)]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in originals)
