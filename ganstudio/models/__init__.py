"""The model registry: architectures (bodies) by name, put together per family by ``build_models``.

Every generator (or decoder) maps z of shape (B, z_dim) to images (B, C, H, W) in [-1, 1] through
``forward(z, labels=None)`` and has ``z_dim`` and ``num_classes`` (0 when unconditional). Every
discriminator maps ``(images, labels=None)`` to raw logits (B,) and has ``num_classes``, so any loss in
``ganstudio.losses`` works with any model. Every encoder maps images to (B, out_features). A new
architecture is one module with its classes, one line in ``MODELS`` and its row (name and description)
in ``catalog.ARCH_CHOICES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from torch import nn

from ganstudio.catalog import ARCH_CHOICES
from ganstudio.config import ModelConfig
from ganstudio.families import FAMILIES
from ganstudio.models.common import LayerInfo, describe, init_weights_, spectral_norm_
from ganstudio.models.conditional import CONDITIONINGS, ConditionalGenerator, label_dim
from ganstudio.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganstudio.models.encoder import DCGANEncoder, MLPEncoder, ResNetEncoder, init_logvar_
from ganstudio.models.mlp import MLPDiscriminator, MLPGenerator
from ganstudio.models.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = ["CONDITIONINGS", "MODELS", "LayerInfo", "ModelSpec", "NetworkInput", "build_models", "describe",
           "init_weights_", "label_dim", "model_inputs", "spectral_norm_"]


@dataclass(frozen=True)
class ModelSpec:
    name: str                                # its row in catalog.ARCH_CHOICES
    generator: Callable[..., nn.Module]      # (cfg, image_size, channels, *, in_features=z_dim)
    discriminator: Callable[..., nn.Module]  # (cfg, image_size, channels, *, out_features=1)
    encoder: Callable[..., nn.Module]        # (cfg, image_size, channels, *, out_features)

    @property
    def description(self) -> str:
        return ARCH_CHOICES[self.name].description


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (  # ModelConfig.arch's choices (d_arch's, but "same")
    ModelSpec("mlp", MLPGenerator, MLPDiscriminator, MLPEncoder),
    ModelSpec("dcgan", DCGANGenerator, DCGANDiscriminator, DCGANEncoder),
    ModelSpec("resnet", ResNetGenerator, ResNetDiscriminator, ResNetEncoder),
)}


def _spec(field: str, arch: str) -> ModelSpec:
    try:
        return MODELS[arch]
    except KeyError:
        raise ValueError(f"model.{field} = {arch!r}: expected one of {', '.join(map(repr, MODELS))}") from None


def build_models(cfg: ModelConfig, *, image_size: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for ``cfg.family`` at this image size, with DCGAN weight init; for the autoencoder
    families ``(decoder, encoder)``, the encoder giving z_dim numbers (2*z_dim for a VAE: mu, logvar).

    G's body comes from ``cfg.arch``, D's (or the encoder's) from ``cfg.d_arch``. The weights are drawn
    from torch's global RNG, so seed it first for a reproducible run.
    """
    family = FAMILIES.get(cfg.family)
    if family is None:
        raise ValueError(f"model.family = {cfg.family!r}: expected one of {', '.join(map(repr, FAMILIES))}")
    g_spec = _spec("arch", cfg.arch)
    d_spec = g_spec if cfg.d_arch == "same" else _spec("d_arch", cfg.d_arch)
    if family.encoder:
        decoder = init_weights_(g_spec.generator(cfg, image_size, channels))
        codes = 2 * cfg.z_dim if family.variational else cfg.z_dim
        encoder = init_weights_(d_spec.encoder(cfg, image_size, channels, out_features=codes))
        return decoder, (init_logvar_(encoder, cfg.z_dim) if family.variational else encoder)
    if family.conditional:
        g = ConditionalGenerator(cfg, image_size, channels, g_spec.generator)
        d = CONDITIONINGS[cfg.conditioning](cfg, image_size, channels, d_spec.discriminator)
    else:
        g, d = g_spec.generator(cfg, image_size, channels), d_spec.discriminator(cfg, image_size, channels)
    g, d = init_weights_(g), init_weights_(d)
    return g, (spectral_norm_(d) if cfg.spectral_norm else d)  # after the init: it normalises the drawn weights


class NetworkInput(NamedTuple):
    title: str                    # what the studio calls the network: "Generator", "Encoder", ...
    shape: tuple[int, ...]        # one sample's input, no batch: what ``describe`` needs


def model_inputs(cfg: ModelConfig, *, image_size: int, channels: int) -> dict[str, NetworkInput]:
    """``{"g": ..., "d": ...}`` for the two networks ``build_models`` returns, in that order: their
    names for this family and the input shapes to ``describe`` them with."""
    encoder = FAMILIES[cfg.family].encoder
    return {"g": NetworkInput("Decoder" if encoder else "Generator", (cfg.z_dim,)),
            "d": NetworkInput("Encoder" if encoder else "Discriminator", (channels, image_size, image_size))}
