"""Fully connected G and D (Goodfellow et al. 2014), in the shape of the classic PyTorch GAN tutorial.

With z_dim = 100, g_width = 128 at 28 px grayscale the generator is exactly 100 -> 128 -> 256 -> 512
-> 1024 -> 784. Shapes below leave out the batch; w is the config's width. The same bodies serve the
other families: a cgan's G reads z joined with a label embedding (``in_features``), an encoder is D
with ``out_features`` outputs (see ``encoder.py``).
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn

from ganstudio.config import ModelConfig
from ganstudio.models.common import d_dropout, d_norm, g_norm


def _g_block(n_in: int, n_out: int, *, norm: str) -> list[nn.Module]:
    # BatchNorm1d on all hidden layers but the first, as in the tutorial and DCGAN's G (no norm right
    # after z). Its default eps, not the tutorial's BatchNorm1d(n, 0.8), which passes 0.8 as eps.
    return [nn.Linear(n_in, n_out), *g_norm(norm, n_out, conv=False), nn.LeakyReLU(0.2, inplace=True)]


class MLPGenerator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, in_features: int | None = None) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        self.image_shape = (channels, image_size, image_size)
        w = cfg.g_width
        self.main = nn.Sequential(
            # input is z (or z joined with a label embedding), going into a linear layer
            *_g_block(in_features or cfg.z_dim, w, norm="none"),
            # state size. w
            *_g_block(w, 2 * w, norm=cfg.g_norm),
            # state size. (w*2)
            *_g_block(2 * w, 4 * w, norm=cfg.g_norm),
            # state size. (w*4)
            *_g_block(4 * w, 8 * w, norm=cfg.g_norm),
            # state size. (w*8)
            nn.Linear(8 * w, math.prod(self.image_shape)),
            nn.Tanh(),
            # state size. (C*H*W), reshaped to C x H x W in forward
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.main(z).view(z.size(0), *self.image_shape)


class MLPDiscriminator(nn.Module):
    num_classes = 0  # unconditional: ``labels`` is accepted and ignored

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int = 1) -> None:
        super().__init__()
        w, p = cfg.d_width, cfg.d_dropout
        self.feature_dim = w  # length of features(x), what a projection D's class embedding must match

        def block(n_in: int, n_out: int, *, norm: bool) -> list[nn.Module]:
            norms = d_norm(cfg.d_norm, n_out, conv=False) if norm else []
            return [nn.Linear(n_in, n_out), *norms, nn.LeakyReLU(0.2, inplace=True), *d_dropout(p)]

        self.main = nn.Sequential(
            # input is (C*H*W), the flattened image; no norm on the first layer (DCGAN's rule for D)
            *block(channels * image_size * image_size, 4 * w, norm=False),
            # state size. (w*4)
            *block(4 * w, 2 * w, norm=True),
            # state size. (w*2)
            *block(2 * w, w, norm=True),
            # state size. w, the features
            nn.Linear(w, out_features),
            # state size. 1, a raw logit: the losses apply the sigmoid where they need one
        )

    def features(self, x: Tensor) -> Tensor:
        """φ(x), D up to its last layer: (B, w). The projection discriminator reads the label against it."""
        h = x.flatten(1)
        for layer in itertools.islice(self.main, len(self.main) - 1):
            h = layer(h)
        return h

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        # flatten copies a channels_last batch into C, H, W order, so the weights see the same layout
        return self.main(x.flatten(1)).view(-1)
