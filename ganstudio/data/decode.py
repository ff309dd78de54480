"""Turning pixels into uint8 (C, H, W) tensors of the configured size and channel count.

One set of functions serves both paths: the in-memory path runs them on the whole dataset once, the
streaming path on one item at a time in the loader workers, so both see the same pixels.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# Why a file was skipped -> the words used in the one warning that counts them
NOT_IMAGE, CORRUPT, TOO_LARGE = "not images", "corrupt", "too large (decompression bomb)"
_BACKGROUND = 255  # transparent pixels are composited onto white, as image viewers and browsers show them
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_RESIZE_CHUNK = 4096  # images resized per interpolate call; bounds the temporary before the crop


class SkippedImage(Exception):
    """A file that cannot be used; ``reason`` is one of NOT_IMAGE, CORRUPT, TOO_LARGE."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason} ({detail})")
        self.path, self.reason = path, reason


# --- tensors ---------------------------------------------------------------------------------------
def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} -> ``channels``; RGB -> L uses PIL's ITU-R 601 luminance."""
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    # PIL's fixed-point weights (L = (19595 R + 38470 G + 7471 B + 2^15) >> 16), so the array sources
    # and the file sources turn the same RGB pixel into the same gray value
    rgb = images.to(torch.int32)
    gray = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 32768) >> 16
    return gray.unsqueeze(1).to(torch.uint8)


def resize_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, size, size): shorter side to ``size`` (antialiased), centre crop."""
    height, width = images.shape[-2:]
    if height == width == size:
        return images
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    for start in range(0, len(images), _RESIZE_CHUNK):
        chunk = images[start:start + _RESIZE_CHUNK]
        if (new_h, new_w) != (height, width):
            chunk = _interpolate(chunk, (new_h, new_w))
        out[start:start + len(chunk)] = chunk[:, :, top:top + size, left:left + size]
    return out


def _interpolate(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 images; torch's native uint8 kernel is ~8x faster on the CPU
    than going through float32, which remains the fallback where that kernel is missing."""
    try:
        return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
    except (RuntimeError, NotImplementedError):
        resized = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        return resized.round_().clamp_(0, 255).to(torch.uint8)


def prepare(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Native uint8 (N, C, H, W) -> configured channels and size; resizes whichever side has fewer channels."""
    if channels > images.shape[1]:
        return to_channels(resize_crop(images, size), channels)
    return resize_crop(to_channels(images, channels), size)


# --- files -----------------------------------------------------------------------------------------
@contextmanager
def open_image(path: Path):
    """``Image.open(path)`` with decompression bombs refused and PIL's errors turned into SkippedImage."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a GAN never needs such an image and
            # decoding one can take gigabytes, so a warning is refused like the error above it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise SkippedImage(path, TOO_LARGE, str(err)) from None
    except UnidentifiedImageError as err:
        raise SkippedImage(path, NOT_IMAGE, str(err)) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as err:
        # PIL reports damaged data with any of these, depending on the format and where the damage is
        raise SkippedImage(path, CORRUPT, f"{type(err).__name__}: {err}") from None


def decode_file(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file -> uint8 (channels, size, size). Raises SkippedImage for anything unusable."""
    with open_image(path) as image:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale for free; draft keeps both sides >= size
        image.draft(None, (size, size))
        pixels = _to_uint8(image, channels)
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    return resize_crop(tensor, size)[0]


def _to_uint8(image: Image.Image, channels: int) -> np.ndarray:
    """Any PIL mode -> uint8 (H, W, channels). Decodes the pixels (the costly part)."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        gray = _deep_to_8bit(np.asarray(image), mode)  # convert("L") would clip every value above 255
        image = Image.fromarray(gray, "L")
    elif mode in _ALPHA_MODES or "transparency" in image.info:  # e.g. P, L or RGB with a transparent colour
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (_BACKGROUND,) * 3 + (255,))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("RGB" if channels == 3 else "L")
    pixels = np.array(image)  # a writable copy: torch.from_numpy warns on read-only arrays
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _deep_to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float gray -> uint8 by scaling, not clipping."""
    if mode == "F":  # float images are either 0..1 or 0..255 by convention
        values = np.nan_to_num(values.astype(np.float64))
        return np.clip(values * (255 if values.max(initial=0) <= 1 else 1), 0, 255).round().astype(np.uint8)
    # "I;16*" is 16-bit by definition; PIL also opens 16-bit PNG/TIFF as "I", so "I" is read as 16-bit
    scaled = np.clip(values.astype(np.float64), 0, 65535) / 257  # 65535 -> 255, 257 -> 1
    return scaled.round().astype(np.uint8)


def check_header(path: Path) -> None:
    """Cheap check that ``path`` is an image of a sane size (reads the header only; no pixel decode).

    Raises SkippedImage. Truncated pixel data is only found by :func:`decode_file`.
    """
    with open_image(path):
        pass


def decode_files(paths: Sequence[Path], size: int, channels: int,
                 progress: bool = False) -> tuple[torch.Tensor, list[int], list[SkippedImage]]:
    """Decode many files on a thread pool (PIL releases the GIL while decoding).

    Returns uint8 (M, C, size, size) for the M readable files, their indices into ``paths``, and the
    skipped files. Decodes straight into one preallocated tensor, so the peak memory is the result's.
    """
    out = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)

    def one(i: int) -> SkippedImage | None:
        try:
            out[i] = decode_file(paths[i], size, channels)
        except SkippedImage as skipped:
            return skipped
        return None

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(one, range(len(paths)))
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(paths), desc="decoding images", unit="img")
        results = list(results)
    kept = [i for i, r in enumerate(results) if r is None]
    skipped = [r for r in results if r is not None]
    return (out if not skipped else out[kept]), kept, skipped


def skipped_message(skipped: Sequence[SkippedImage], total: int, where: str) -> str:
    """One line counting skipped files by reason, e.g. 'skipped 3 of 120 files in /x (2 not images, ...)'."""
    counts = Counter(s.reason for s in skipped)
    reasons = ", ".join(f"{counts[r]} {r}" for r in (NOT_IMAGE, CORRUPT, TOO_LARGE) if counts[r])
    examples = "; ".join(str(s) for s in skipped[:3])
    return f"skipped {len(skipped)} of {total} files in {where} ({reasons}); e.g. {examples}"


def report_skipped(skipped: Sequence[SkippedImage], total: int, where: str, out: list[str]) -> None:
    """Log the one warning for ``skipped`` files and append it to ``out`` (nothing when none)."""
    if skipped:
        message = skipped_message(skipped, total, where)
        log.warning(message)
        out.append(message)
