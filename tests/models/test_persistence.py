"""Every family's weights survive torch.save / torch.load(weights_only=True) and copy.deepcopy."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.models import build_models

SMALL = {"z_dim": 16, "g_width": 8, "d_width": 8, "num_classes": 5}
KINDS = {"gan": {"family": "gan"}, "cgan-projection": {"family": "cgan", "conditioning": "projection"},
         "cgan-concat": {"family": "cgan", "conditioning": "concat"},
         "autoencoder": {"family": "autoencoder"}, "vae": {"family": "vae"}}
CASES = [(kind, arch, sn) for kind in sorted(KINDS) for arch in ("mlp", "dcgan", "resnet") for sn in (False, True)]


def build(kind: str, arch: str, sn: bool, seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{**SMALL, **KINDS[kind], "arch": arch, "spectral_norm": sn})
    return build_models(cfg, image_size=28, channels=1)


@torch.no_grad()
def outputs(g: nn.Module, d: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """G's images and D's (or the encoder's) outputs on fixed inputs, in eval mode."""
    g.eval(), d.eval()
    gen = torch.Generator().manual_seed(1)
    z, x, y = torch.randn(4, 16, generator=gen), torch.rand(4, 1, 28, 28, generator=gen), torch.arange(4)
    labels = (y,) if g.num_classes else ()
    return g(z, *labels), (d(x) if hasattr(d, "out_features") else d(x, *labels))  # an encoder takes x only


@pytest.mark.parametrize("kind,arch,sn", CASES)
def test_state_dict_round_trip_under_weights_only(kind, arch, sn):
    g, d = build(kind, arch, sn, seed=0)
    outputs(g.train(), d.train())  # one train-mode pass moves BN statistics and SN's u and v off their start
    buffer = io.BytesIO()
    torch.save({"g": g.state_dict(), "d": d.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain tensors only: no pickled modules
    g2, d2 = build(kind, arch, sn, seed=1)
    g2.load_state_dict(state["g"]), d2.load_state_dict(state["d"])
    for before, after in zip(outputs(g, d), outputs(g2, d2)):
        torch.testing.assert_close(after, before)


@pytest.mark.parametrize("kind,arch,sn", CASES)
def test_deepcopy_gives_an_independent_equal_model(kind, arch, sn):
    g, d = build(kind, arch, sn, seed=0)
    g2, d2 = copy.deepcopy(g), copy.deepcopy(d)  # the trainer's G EMA is a deepcopy
    for before, after in zip(outputs(g, d), outputs(g2, d2)):
        torch.testing.assert_close(after, before)
    originals = {id(p) for p in [*g.parameters(), *d.parameters()]}
    assert not originals & {id(p) for p in [*g2.parameters(), *d2.parameters()]}
