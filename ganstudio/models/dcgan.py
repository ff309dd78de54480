"""Convolutional G and D (Radford et al. 2015, "DCGAN"), after pytorch/examples' dcgan/main.py.

The networks grow from, and shrink to, a start size s0 (7 x 7 for 28 px, else 4 x 4) in n = log2(size /
s0) stride-2 steps: 16 px -> n = 2, 28 px -> n = 2, 32 px -> n = 3, 64 px -> n = 4, 512 px -> n = 7.
Widths double per step away from the image and stop at 8·width (``WIDTH_CAP``), the 64 px network of
the paper: uncapped, a 512 px G at ngf = 64 would start at ngf·2^6 = 4096 channels and hold 185 M
parameters (D 179 M), most in its first 4 x 4 to 16 x 16 maps where they buy little; capped, it keeps
512 channels from 4 x 4 to 64 x 64 and holds 16 M (D 15 M). Shape comments leave out the
batch and give the 32 px case (n = 3) in brackets; ngf and ndf are the config's g_width and d_width. The same
bodies serve the other families: a cgan's G reads z joined with a label embedding (``in_features``), an
encoder is D with ``out_features`` outputs (see ``encoder.py``).
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn

from ganstudio.config import ModelConfig
from ganstudio.models.common import d_dropout, d_norm, g_norm

WIDTH_CAP = 8  # most channels, as a multiple of g_width / d_width: sizes up to 64 px never reach it


def size_plan(image_size: int) -> tuple[int, int]:
    """``(s0, n)``: the start size and the number of stride-2 layers between it and ``image_size``."""
    s0 = 7 if image_size % 7 == 0 else 4
    n = math.log2(image_size / s0)
    if n < 1 or not n.is_integer():
        raise ValueError(
            f"data.image_size = {image_size} does not fit the dcgan architecture: it needs 7·2^n or "
            f"4·2^n pixels (n ≥ 1): 28 or a power of two from 16 to 512")
    return s0, int(n)


class DCGANGenerator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, in_features: int | None = None) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        s0, n = size_plan(image_size)
        ngf = cfg.g_width
        ch = ngf * min(2 ** (n - 1), WIDTH_CAP)
        layers: list[nn.Module] = [
            # input is Z, z_dim x 1 x 1 (a cgan's: z joined with a label embedding), going into a convolution
            # no bias under batch norm: its shift takes that part
            nn.ConvTranspose2d(in_features or cfg.z_dim, ch, s0, 1, 0, bias=cfg.g_norm == "none"),
            *g_norm(cfg.g_norm, ch, conv=True),
            nn.ReLU(True),
            # state size. (ngf*2^(n-1)) x s0 x s0          [(ngf*4) x 4 x 4]
        ]
        for k in range(n - 2, -1, -1):  # k: stride-2 layers still to come after this one
            out = ngf * min(2 ** k, WIDTH_CAP)
            layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=cfg.g_norm == "none"),
                       *g_norm(cfg.g_norm, out, conv=True), nn.ReLU(True)]
            ch = out
            # state size. channels halve, side doubles    [(ngf*2) x 8 x 8, then ngf x 16 x 16]
        layers += [
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1),
            nn.Tanh(),
            # state size. C x size x size                  [C x 32 x 32]
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.main(z.reshape(z.size(0), -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int = 1) -> None:
        super().__init__()
        s0, n = size_plan(image_size)
        ch = cfg.d_width
        layers: list[nn.Module] = [
            # input is C x size x size                     [C x 32 x 32]
            nn.Conv2d(channels, ch, 4, 2, 1),  # no norm on D's input layer (DCGAN §3)
            nn.LeakyReLU(0.2, inplace=True),
            # state size. ndf x size/2 x size/2            [ndf x 16 x 16]
        ]
        for _ in range(n - 1):
            out = min(ch * 2, cfg.d_width * WIDTH_CAP)
            norms = d_norm(cfg.d_norm, out, conv=True)
            layers += [nn.Conv2d(ch, out, 4, 2, 1, bias=not norms), *norms,
                       nn.LeakyReLU(0.2, inplace=True), *d_dropout(cfg.d_dropout)]
            ch = out
            # state size. channels double, side halves    [(ndf*2) x 8 x 8, then (ndf*4) x 4 x 4]
        self.feature_dim = ch  # channels of features(x), what a projection D's class embedding must match
        layers += [
            nn.Conv2d(ch, out_features, s0, 1, 0),
            # state size. 1 x 1 x 1, a raw logit: the losses apply the sigmoid where they need one
        ]
        self.main = nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """φ(x), D up to its last layer: (B, ndf*2^(n-1), s0, s0). The projection D reads the label against it."""
        for layer in itertools.islice(self.main, len(self.main) - 1):
            x = layer(x)
        return x

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.main(x).reshape(-1)
