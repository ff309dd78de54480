"""The model registry: each family is a generator and a discriminator builder under one name.

Every generator maps z of shape (B, z_dim) to images (B, C, H, W) in [-1, 1] and has ``z_dim``; every
discriminator maps images to raw logits (B,), so any loss in ``ganstudio.losses`` works with any model.
A new family is one module with the two classes plus one line in ``MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.models.common import LayerInfo, describe, init_weights_
from ganstudio.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganstudio.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["MODELS", "LayerInfo", "ModelSpec", "build_models", "describe", "init_weights_"]


@dataclass(frozen=True)
class ModelSpec:
    generator: Callable[[ModelConfig, int, int], nn.Module]      # (cfg, image_size, channels)
    discriminator: Callable[[ModelConfig, int, int], nn.Module]
    description: str


MODELS: dict[str, ModelSpec] = {  # keys are the choices of ModelConfig.arch
    "mlp": ModelSpec(MLPGenerator, MLPDiscriminator,
                     "Fully connected G and D (Goodfellow et al. 2014): fast to train, blurrier images"),
    "dcgan": ModelSpec(DCGANGenerator, DCGANDiscriminator,
                       "Convolutional G and D (Radford et al. 2015): the standard image GAN"),
}


def build_models(cfg: ModelConfig, *, image_size: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for ``cfg.arch`` at this image size, with DCGAN weight init.

    The weights are drawn from torch's global RNG, so seed it first for a reproducible run.
    """
    try:
        spec = MODELS[cfg.arch]
    except KeyError:
        raise ValueError(f"model.arch = {cfg.arch!r}: expected one of {', '.join(map(repr, MODELS))}") from None
    generator = init_weights_(spec.generator(cfg, image_size, channels))
    discriminator = init_weights_(spec.discriminator(cfg, image_size, channels))
    return generator, discriminator
