"""The residual G and D (SNGAN/BigGAN): shapes and parameter counts against the layer formulas, widths,
self-attention, and the families that wrap the bodies (projection cgan, encoders)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.models import build_models
from ganstudio.models.conditional import ProjectionDiscriminator
from ganstudio.models.resnet import ResNetDiscriminator, ResNetGenerator, SelfAttention

Z, W, C = 8, 4, 3  # z_dim, width and channels of the hand-computed networks


def cfg(**fields) -> ModelConfig:
    return ModelConfig(**{"arch": "resnet", "z_dim": Z, "g_width": W, "d_width": W, "d_norm": "none", **fields})


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def g_params(widths: list[int], s0: int = 4) -> int:
    """linear z -> s0²·ch0; per block BN, conv3 (no bias, BN follows), BN, conv3, shortcut conv1; BN, conv3."""
    total = (Z + 1) * widths[0] * s0 * s0
    for ci, co in zip(widths, widths[1:]):
        total += bn(ci) + conv(ci, co, 3, bias=False) + bn(co) + conv(co, co, 3) + conv(ci, co, 1)
    return total + bn(widths[-1]) + conv(widths[-1], C, 3)


def d_params(widths: list[int]) -> int:
    """Optimized block (conv3, conv3, shortcut conv1 from the image), down blocks (conv3, conv3, conv1),
    a last block with an identity shortcut when the width stays, and the linear head."""
    total = conv(C, widths[0], 3) + conv(widths[0], widths[0], 3) + conv(C, widths[0], 1)
    last = len(widths) - 1
    for k, (ci, co) in enumerate(zip(widths, widths[1:]), start=1):
        total += conv(ci, co, 3) + conv(co, co, 3) + (conv(ci, co, 1) if k < last or ci != co else 0)
    return total + widths[-1] + 1


# Widths by hand: W·2^k channels k doublings from the image, capped at 16·W.
WIDTHS = {32: [32, 16, 8, 4], 64: [64, 32, 16, 8, 4], 128: [64, 64, 32, 16, 8, 4]}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", sorted(WIDTHS))
def test_parameter_counts_match_the_layer_formulas(size):
    g, d = ResNetGenerator(cfg(), size, C), ResNetDiscriminator(cfg(), size, C)
    assert count(g) == g_params(WIDTHS[size])
    assert count(d) == d_params(WIDTHS[size][::-1])


def test_the_32_px_generator_by_hand():
    # linear 8 -> 32x4x4: 9·512 = 4608; block 32 -> 16: 64 + 4608 + 32 + 2320 + 528 = 7552;
    # 16 -> 8: 32 + 1152 + 16 + 584 + 136 = 1920; 8 -> 4: 16 + 288 + 8 + 148 + 36 = 496; BN + conv3: 119
    assert count(ResNetGenerator(cfg(), 32, C)) == 4608 + 7552 + 1920 + 496 + 119 == 14695


@pytest.mark.parametrize("size", sorted(WIDTHS))
def test_block_shapes_follow_the_widths(size):
    g, d = ResNetGenerator(cfg(), size, C), ResNetDiscriminator(cfg(), size, C)
    widths = WIDTHS[size]
    h = g.main[1](g.main[0](torch.randn(2, Z)))
    assert h.shape == (2, widths[0], 4, 4)
    for k, block in enumerate(g.main[2:2 + len(widths) - 1], start=1):
        h = block(h)
        assert h.shape == (2, widths[k], 4 * 2 ** k, 4 * 2 ** k)
    assert g(torch.randn(2, Z)).shape == (2, C, size, size)
    h = torch.randn(2, C, size, size)
    for k, block in enumerate(d.main[:len(widths)]):  # the last block keeps 4 x 4
        h = block(h)
        assert h.shape == (2, widths[::-1][k], max(4, size >> (k + 1)), max(4, size >> (k + 1)))
    assert d.features(torch.randn(2, C, size, size)).shape == (2, widths[0]) and d.feature_dim == widths[0]


def test_widths_stop_at_sixteen_times_the_width():
    g = ResNetGenerator(cfg(), 512, 1)
    convs = [m.out_channels for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert max(convs) == 16 * W and g.main[0].out_features == 16 * W * 16


def test_28_px_starts_at_7x7():
    g, d = ResNetGenerator(cfg(), 28, 1), ResNetDiscriminator(cfg(), 28, 1)
    assert g.main[0].out_features == 4 * W * 7 * 7  # 28 = 7·2²: 4·W channels at 7 x 7
    assert g(torch.randn(3, Z)).shape == (3, 1, 28, 28)
    assert d.main[:-3](torch.randn(3, 1, 28, 28)).shape == (3, 4 * W, 7, 7)


def test_self_attention_starts_as_the_identity_and_learns():
    torch.manual_seed(0)
    attn = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(attn(x), x)  # γ = 0
    attn(x).square().sum().backward()
    assert attn.gate.gamma.grad is not None
    with torch.no_grad():
        attn.gate.gamma.fill_(1.0)
    assert not torch.allclose(attn(x), x)
    g = ResNetGenerator(cfg(), 64, C, attention=32)
    d = ResNetDiscriminator(cfg(), 64, C, attention=32)
    assert [type(m) for m in g.main].index(SelfAttention) == 2 + 3  # after the block reaching 32 x 32
    assert [type(m) for m in d.main].index(SelfAttention) == 1  # after the optimized block (64 -> 32)
    assert g(torch.randn(2, Z)).shape == (2, C, 64, 64) and d(torch.randn(2, C, 64, 64)).shape == (2,)
    # θ, φ, g and o at 8 channels (inner 8 // 8 = 1, g's 8 // 2 = 4), and γ
    assert count(g) - count(ResNetGenerator(cfg(), 64, C)) == 8 * 1 + 8 * 1 + 8 * 4 + 4 * 8 + 1


def test_projection_discriminator_sums_over_space_as_sngan_does():
    torch.manual_seed(0)
    _, d = build_models(cfg(family="cgan", num_classes=5), image_size=32, channels=C)
    assert isinstance(d, ProjectionDiscriminator) and d.projection.embedding_dim == d.body.feature_dim
    d.eval()
    x, y = torch.rand(4, C, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 4])
    h = d.body.features(x)  # already summed: (B, F)
    torch.testing.assert_close(d(x, y), d.body(x) + (d.projection.weight[y] * h).sum(1))


def test_spectral_norm_and_d_norm_apply_to_every_block():
    _, d = build_models(cfg(spectral_norm=True), image_size=32, channels=C)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m) for m in layers)
    _, d = build_models(cfg(d_norm="batch"), image_size=32, channels=C)
    # a norm before each of the residual path's ReLUs but the optimized block's first: 1 + 2 per block
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 1 + 2 * 3


@pytest.mark.parametrize("family", ["autoencoder", "vae"])
def test_resnet_encodes(family):
    torch.manual_seed(0)
    decoder, encoder = build_models(cfg(family=family), image_size=32, channels=C)
    codes = encoder(torch.rand(4, C, 32, 32) * 2 - 1)
    assert codes.shape == (4, 2 * Z if family == "vae" else Z)
    assert decoder(codes[:, :Z]).shape == (4, C, 32, 32)
