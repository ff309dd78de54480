"""Class-conditional G and D (Mirza & Osindero 2014) around the unconditional bodies (mlp, dcgan, resnet).

G reads z joined with a learned label embedding. D sees the label in one of two ways (``model.conditioning``):
by projection (Miyato & Koyama 2018), the label scoring the features D already computes, or by
concatenation, the label as one more input channel. Shapes leave out the batch; F is the body's
``feature_dim``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganstudio.config import ModelConfig

Body = Callable[..., nn.Module]  # an entry of MODELS: (cfg, image_size, channels, **size overrides)


def label_dim(num_classes: int) -> int:
    """Length of G's label embedding: one per class, as a one-hot has, so the first layer can give every
    class its own offset; capped at 128 (BigGAN's size for 1000 classes) so many classes do not dwarf z."""
    return min(num_classes, 128)


def _require(labels: Tensor | None, num_classes: int, role: str) -> Tensor:
    if labels is None:
        raise ValueError(
            f"this {role} is class-conditional (model.family = 'cgan', {num_classes} classes): call it with "
            f"labels, an int64 tensor of shape (B,) with values in [0, {num_classes})")
    return labels


class ConditionalGenerator(nn.Module):
    """G(z, y): the body built for z joined with y's embedding, so one z can be drawn as every class."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, body: Body) -> None:
        super().__init__()
        self.z_dim, self.num_classes = cfg.z_dim, cfg.num_classes
        self.embed = nn.Embedding(cfg.num_classes, label_dim(cfg.num_classes))
        self.body = body(cfg, image_size, channels, in_features=cfg.z_dim + self.embed.embedding_dim)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        y = self.embed(_require(labels, self.num_classes, "generator"))
        # input is (z_dim + label_dim); the body maps it to C x H x W in [-1, 1]
        return self.body(torch.cat([z, y.to(z.dtype)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + <embed(y), mean_space φ(x)> (Miyato & Koyama 2018): the label scores features D
    already has, rather than being one more input that D can learn to ignore."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, body: Body) -> None:
        super().__init__()
        self.num_classes = cfg.num_classes
        self.body = body(cfg, image_size, channels)
        # torch's N(0, 1), not the DCGAN N(0, 0.02): each class starts with its own clear direction, so G's
        # gradients differ by class from the first step. A 16-wide 28 px DCGAN cgan after 1500 steps had
        # 50-69% of its samples classified as their class with it, 2-18% with N(0, 0.02) (4 seeds); an
        # MLP cgan the two were within seed noise. Mean pooling keeps this term's start small.
        self.projection = nn.Embedding(cfg.num_classes, self.body.feature_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = _require(labels, self.num_classes, "discriminator")
        h = self.body.features(x)                          # φ(x): F (mlp, resnet) or F x s0 x s0 (dcgan)
        score = self.body.main[-1](h).reshape(-1)          # ψ(φ(x)), D's unconditional logit
        # F: a dcgan's map is averaged, not summed as in SNGAN, for the same scale at any s0; resnet's
        # features come already summed over space (SNGAN's D), so its projection is SNGAN's exactly
        pooled = h.flatten(2).mean(2) if h.dim() > 2 else h
        return score + (self.projection(labels) * pooled).sum(1)


class ConcatDiscriminator(nn.Module):
    """D(x, y) on x with y's embedding as one more image-sized channel, the classic cGAN input. An MLP
    body flattens it, so there the label is H*W numbers joined to the flattened image."""

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, body: Body) -> None:
        super().__init__()
        self.num_classes, self.image_size = cfg.num_classes, image_size
        self.embed = nn.Embedding(cfg.num_classes, image_size * image_size)  # N(0, 1): on the pixels' scale
        self.body = body(cfg, image_size, channels + 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        y = self.embed(_require(labels, self.num_classes, "discriminator"))
        y = y.view(-1, 1, self.image_size, self.image_size).to(x.dtype)  # 1 x H x W
        # input is (C + 1) x H x W: the image and its label map
        return self.body(torch.cat([x, y], dim=1))


CONDITIONINGS: dict[str, Callable[..., nn.Module]] = {  # keys are the choices of ModelConfig.conditioning
    "projection": ProjectionDiscriminator,
    "concat": ConcatDiscriminator,
}
