"""Residual G and D of SNGAN and BigGAN (Miyato et al. 2018, appendix B; Brock et al. 2019), after
PyTorch-StudioGAN's ``src/models/resnet.py``.

G: a linear layer maps z to an s0 x s0 map (s0 = 7 for 28 px, else 4), then n = log2(size / s0)
up-sampling residual blocks (BN-ReLU-up-conv3-BN-ReLU-conv3, shortcut up-conv1), then BN-ReLU-conv3-tanh.
D: an "optimized" first block (conv3-ReLU-conv3-pool, shortcut pool-conv1: no ReLU on the raw pixels),
n - 1 down-sampling blocks (ReLU-conv3-ReLU-conv3-pool, shortcut conv1-pool), one block at s0 x s0 that
keeps the size, then ReLU, a sum over space and a linear layer.

Widths scale with resolution as StudioGAN's tables do: channels halve per doubling of G's side and double
per halving of D's, capped at 16·width (the 128 px networks' 1024 channels at width 64). The 64 and 128 px
widths are StudioGAN's; at 32 px its SNGAN keeps 4·width throughout, here G goes 4·w, 2·w, w (about 40%
fewer FLOPs at the same width). ngf and ndf are the config's g_width and d_width; shape comments leave
out the batch and give the 64 px case (n = 4) in brackets.

Spectral norm in D comes from the usual ``model.spectral_norm`` switch (``build_models`` applies it to
every conv and linear, attention included), not always on: the autoencoder families reuse D as an encoder,
which must stay unnormalised, and an unnormalised D stays comparable with dcgan's. The presets turn it on,
as SNGAN does. ``model.d_norm`` normalises D's residual paths before each ReLU when spectral norm is off
(StudioGAN's D without SN uses batch norm there); set it to 'none' with spectral norm, as SNGAN does.

Weights get the DCGAN init (N(0, 0.02)) like every body here, from ``build_models``; StudioGAN gives
SNGAN orthogonal init, which has not been compared here. Under spectral norm only D's biases and BN feel
the difference, since SN divides each weight by its own scale.

Self-attention (SAGAN, Zhang et al. 2019) at one resolution is ``model.attention`` (a side in pixels; 0,
the default, is none); the constructors' ``attention=`` overrides it. It sits after the block that
reaches that side.
It is not a config field yet: at 64-128 px and a CPU's widths it costs about as much as a block.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from ganstudio.config import ModelConfig
from ganstudio.models.common import d_dropout, d_norm, g_norm
from ganstudio.models.dcgan import size_plan

WIDTH_CAP = 16  # most channels, as a multiple of g_width / d_width (BigGAN's ch·16 at 4 x 4)


def widths(width: int, n: int) -> list[int]:
    """Channels at each of the n + 1 sides from s0 up to the image: ``width · min(2^k, 16)`` with k the
    doublings still to come, so G's last block (and D's first) has ``width`` channels."""
    return [width * min(2 ** k, WIDTH_CAP) for k in range(n, -1, -1)]


class SelfAttention(nn.Module):
    """SAGAN's non-local block: x + γ·o(softmax(θ(x)ᵀφ(x))·g(x)); φ and g are max-pooled to a quarter of
    the positions (BigGAN's saving). γ starts at 0, so the block starts as the identity and the network
    learns how much of it to use. Costs (H·W)²/4 multiply-adds per channel pair: the reason it sits at
    one resolution only."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.theta = nn.Conv2d(channels, inner, 1, bias=False)
        self.phi = nn.Sequential(nn.Conv2d(channels, inner, 1, bias=False), nn.MaxPool2d(2))
        self.g = nn.Sequential(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), nn.MaxPool2d(2))
        self.o = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gate = _Gate()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)                    # inner x HW
        phi = self.phi(x).flatten(2)                        # inner x HW/4
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # HW x HW/4
        g = self.g(x).flatten(2)                            # C/2 x HW/4
        out = (g @ attn.transpose(1, 2)).view(b, -1, h, w)  # C/2 x H x W
        return x + self.gate(self.o(out))


class _Gate(nn.Module):
    """γ·x with γ learned from 0; its own layer so the architecture preview counts γ."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.gamma * x


class GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3, plus up-conv1 on the shortcut: (cin, s, s) -> (cout, 2s, 2s)."""

    def __init__(self, cin: int, cout: int, norm: str = "batch") -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *g_norm(norm, cin, conv=True), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=norm == "none"),  # BN's shift follows: no bias needed
            *g_norm(norm, cout, conv=True), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class DBlock(nn.Module):
    """[norm]-ReLU-conv3-[norm]-ReLU-conv3-[pool], shortcut conv1-[pool] when the size or width changes.

    ``first`` is SNGAN's optimized block: no ReLU (or norm) before the first conv, which would clip the
    raw pixels, and the shortcut pools before its conv1 (4x fewer multiply-adds at full resolution)."""

    def __init__(self, cin: int, cout: int, *, down: bool, first: bool, norm: str, dropout: float) -> None:
        super().__init__()
        def pool() -> list[nn.Module]:  # one instance per use, so the preview lists each call once
            return [nn.AvgPool2d(2)] if down else []

        pre = [] if first else [*d_norm(norm, cin, conv=True), nn.ReLU()]  # not in place: x feeds the shortcut
        mid = d_norm(norm, cout, conv=True)
        self.residual = nn.Sequential(
            *pre, nn.Conv2d(cin, cout, 3, 1, 1, bias=not mid), *mid, nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, 1, 1), *pool())
        self.shortcut: nn.Module | None = None  # the identity: the size and width stay
        if first:
            self.shortcut = nn.Sequential(*pool(), nn.Conv2d(cin, cout, 1))
        elif down or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1), *pool())
        self.dropout = nn.Sequential(*d_dropout(dropout)) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x) + (x if self.shortcut is None else self.shortcut(x))
        return out if self.dropout is None else self.dropout(out)


class SumPool(nn.Module):
    """Sum over space (SNGAN's D): B x C x H x W -> B x C."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sum((2, 3))


class ResNetGenerator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, in_features: int | None = None,
                 attention: int | None = None) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        attention = cfg.attention if attention is None else attention
        s0, n = size_plan(image_size)
        ch = widths(cfg.g_width, n)
        layers: list[nn.Module] = [
            # input is z (a cgan's: z joined with a label embedding), going into a linear layer
            nn.Linear(in_features or cfg.z_dim, ch[0] * s0 * s0),
            nn.Unflatten(1, (ch[0], s0, s0)),
            # state size. (ngf*16) x s0 x s0                 [(ngf*16) x 4 x 4]
        ]
        for k in range(n):
            layers.append(GBlock(ch[k], ch[k + 1], cfg.g_norm))
            # state size. channels halve, side doubles      [(ngf*8) x 8 x 8 ... ngf x 64 x 64]
            if attention == s0 * 2 ** (k + 1):
                layers.append(SelfAttention(ch[k + 1]))
        layers += [
            *g_norm(cfg.g_norm, ch[-1], conv=True), nn.ReLU(True),
            nn.Conv2d(ch[-1], channels, 3, 1, 1),
            nn.Tanh(),
            # state size. C x size x size                    [C x 64 x 64]
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.main(z.flatten(1))


class ResNetDiscriminator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int = 1,
                 attention: int | None = None) -> None:
        super().__init__()
        attention = cfg.attention if attention is None else attention
        s0, n = size_plan(image_size)
        ch = widths(cfg.d_width, n)[::-1]  # D's widths: ndf at full size, doubling as the side halves
        block = dict(norm=cfg.d_norm, dropout=cfg.d_dropout)
        layers: list[nn.Module] = [
            # input is C x size x size                       [C x 64 x 64]
            DBlock(channels, ch[0], down=True, first=True, **block),
            # state size. ndf x size/2 x size/2              [ndf x 32 x 32]
        ]
        for k in range(1, n + 1):
            if attention == image_size >> k:
                layers.append(SelfAttention(ch[k - 1]))
            # the last block keeps s0 x s0 (StudioGAN's): one more 3x3 look at the whole image
            layers.append(DBlock(ch[k - 1], ch[k], down=k < n, first=False, **block))
            # state size. channels double, side halves     [(ndf*2) x 16 x 16 ... (ndf*16) x 4 x 4]
        self.feature_dim = ch[-1]  # length of features(x), what a projection D's class embedding must match
        layers += [
            nn.ReLU(True),
            SumPool(),
            # state size. ndf*16, the features φ(x); summed, not averaged, as in SNGAN
            nn.Linear(ch[-1], out_features),
            # state size. 1, a raw logit: the losses apply the sigmoid where they need one
        ]
        self.main = nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """φ(x), D up to its last layer: (B, ndf·min(2^n, 16)). The projection D reads the label against it."""
        for layer in itertools.islice(self.main, len(self.main) - 1):
            x = layer(x)
        return x

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.main(x).reshape(-1)
