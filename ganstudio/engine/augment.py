"""What D sees, varied: DiffAugment and instance noise, as pure functions of a batch and a generator.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applies the
same random family of transforms to every image D sees, real and fake, in both the D and the G step. The
transforms are differentiable, so G still learns through them, and D can no longer memorise a small
dataset's exact pixels. The maths follows the authors' PyTorch code (images in [−1, 1]); the random
draws come from a ``torch.Generator`` instead of the global stream, so a run replays exactly.

Instance noise (Sønderby et al. 2017, "Amortised MAP Inference for Image Super-resolution") adds
Gaussian noise to D's inputs, so the real and fake distributions overlap while training starts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    """One U[0, 1) per image, shaped (B, 1, 1, 1) to broadcast; drawn where the generator lives, then
    moved (a CPU generator can drive a CUDA batch; the move is a small host-to-device copy)."""
    u = torch.rand((x.size(0), 1, 1, 1), generator=generator, device=generator.device)
    return u.to(device=x.device, dtype=x.dtype)


def _offsets(x: Tensor, low: int, high: int, generator: torch.Generator) -> Tensor:
    """One integer in [low, high) per image, shaped (B, 1) to broadcast over a row of pixel indices."""
    n = torch.randint(low, high, (x.size(0), 1), generator=generator, device=generator.device)
    return n.to(x.device)


# --- color: brightness, saturation, contrast ---------------------------------------------------------
def rand_brightness(x: Tensor, generator: torch.Generator) -> Tensor:
    """Add one offset in [−0.5, 0.5) per image."""
    return x + (_uniform(x, generator) - 0.5)


def rand_saturation(x: Tensor, generator: torch.Generator) -> Tensor:
    """Scale each pixel's distance from its channel mean by a factor in [0, 2). With one channel the
    pixel is its own mean, so nothing changes (the factor is still drawn: the stream stays the same)."""
    factor = _uniform(x, generator) * 2
    if x.size(1) == 1:
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * factor + mean


def rand_contrast(x: Tensor, generator: torch.Generator) -> Tensor:
    """Scale each image's distance from its overall mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


# --- translation ---------------------------------------------------------------------------------------
def rand_translation(x: Tensor, generator: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its side in each direction, filling with zeros (output
    pixel (i, j) is input pixel (i + dy, j + dx), or 0 outside the image)."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _offsets(x, -sy, sy + 1, generator), _offsets(x, -sx, sx + 1, generator)
    # Index a copy padded by one zero pixel; indices past the edge land on that padding.
    rows = (torch.arange(h, device=x.device) + dy + 1).clamp(0, h + 1)   # (B, H)
    cols = (torch.arange(w, device=x.device) + dx + 1).clamp(0, w + 1)   # (B, W)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # Advanced indices around a slice put their dims first: (B, H, W, C), then back to (B, C, H, W).
    # The gather is one pass over the batch and keeps the graph, so gradients flow to x.
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


# --- cutout --------------------------------------------------------------------------------------------
def rand_cutout(x: Tensor, generator: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Zero a rectangle of ``ratio`` of each side (a square for square images) centred at a random pixel;
    the part that falls outside the image is dropped."""
    h, w = x.shape[-2:]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # The authors' centre range: an even-sized cut may also be centred one pixel past the last one.
    top = _offsets(x, 0, h + (1 - ch % 2), generator) - ch // 2        # (B, 1)
    left = _offsets(x, 0, w + (1 - cw % 2), generator) - cw // 2
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + ch)                         # (B, H)
    in_cols = (cols >= left) & (cols < left + cw)                       # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])                 # (B, H, W)
    return x * keep[:, None].to(x.dtype)


AUGMENTS: dict[str, tuple[Callable[[Tensor, torch.Generator], Tensor], ...]] = {
    # applied in this order whatever the order of the policy; keys are TrainConfig.augment's choices
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


def diff_augment(x: Tensor, policy: list[str], generator: torch.Generator) -> Tensor:
    """DiffAugment a (B, C, H, W) batch with the transforms named in ``policy`` (keys of ``AUGMENTS``),
    applied in the order color, translation, cutout. Differentiable in ``x``; returns ``x`` itself for
    an empty policy, else a new tensor of the same shape, dtype, device and memory format.
    """
    unknown = set(policy) - set(AUGMENTS)
    if unknown:
        raise ValueError(f"unknown augmentation {sorted(unknown)}; choose from {', '.join(AUGMENTS)}")
    out = x
    for name, transforms in AUGMENTS.items():
        if name in policy:
            for transform in transforms:
                out = transform(out, generator)
    return out if out is x else _same_layout(out, x)


def _same_layout(out: Tensor, like: Tensor) -> Tensor:
    """``out`` in the memory format of ``like``: a channels-last D keeps channels-last inputs (a copy only
    when the layouts differ)."""
    if like.is_contiguous():
        return out.contiguous()
    if like.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


# --- instance noise ------------------------------------------------------------------------------------
def instance_noise(x: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """``x`` plus N(0, std²) noise per pixel; ``x`` itself, with nothing drawn, when ``std`` is 0."""
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=generator.device)
    return _same_layout(x + std * noise.to(device=x.device, dtype=x.dtype), x)


def instance_noise_std(initial: float, decay_steps: int, step: int) -> float:
    """The noise std at ``step``: ``initial`` falling linearly to 0 at ``decay_steps``, 0 after."""
    return initial * max(0.0, 1.0 - step / decay_steps)
