"""Encoders for the autoencoder and VAE families: a discriminator body ending in a code instead of a logit.

Reusing D's bodies keeps one recipe per architecture: an encoder is D with ``out_features`` outputs
(z_dim for an autoencoder, 2*z_dim for a VAE's mu and logvar), without D's dropout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganstudio.config import ModelConfig
from ganstudio.models.dcgan import DCGANDiscriminator
from ganstudio.models.mlp import MLPDiscriminator
from ganstudio.models.resnet import ResNetDiscriminator


def _encoder_config(cfg: ModelConfig) -> ModelConfig:
    # model.d_dropout is hidden for the autoencoder families (families.py): it must change nothing
    return cfg.model_copy(update={"d_dropout": 0.0})


class MLPEncoder(MLPDiscriminator):
    """Images -> codes (B, out_features) through the MLP discriminator's layers."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int) -> None:
        super().__init__(_encoder_config(cfg), image_size, channels, out_features=out_features)
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.main(x.flatten(1))


class DCGANEncoder(DCGANDiscriminator):
    """Images -> codes (B, out_features) through the DCGAN discriminator's layers."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int) -> None:
        super().__init__(_encoder_config(cfg), image_size, channels, out_features=out_features)
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.main(x).flatten(1)  # out_features x 1 x 1 -> out_features


class ResNetEncoder(ResNetDiscriminator):
    """Images -> codes (B, out_features) through the residual discriminator's layers."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, *, out_features: int) -> None:
        super().__init__(_encoder_config(cfg), image_size, channels, out_features=out_features)
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.main(x)  # already (B, out_features): D's last layer is linear


@torch.no_grad()
def init_logvar_(encoder: nn.Module, z_dim: int) -> nn.Module:
    """Start a VAE's log-variances near 0 (σ ≈ 1, the prior's): the logvar half of the last layer gets
    N(0, 1e-3) weights and zero biases, so exp(logvar) stays finite in the first steps. Call after the init."""
    last = encoder.main[-1]
    nn.init.normal_(last.weight[z_dim:], 0.0, 1e-3)
    nn.init.zeros_(last.bias[z_dim:])
    return encoder
