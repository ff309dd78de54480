"""Turning pixels into uint8 (C, H, W) tensors of the configured size and channel count.

One set of functions serves both paths: the in-memory path runs them on the whole dataset once, the
streaming path on one item at a time in the loader workers, so both see the same pixels.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ganstudio.data.base import CancelCheck, check_cancelled


# Why a file was skipped -> the words used in the one warning that counts them (in this order)
NOT_IMAGE, CORRUPT, TOO_LARGE = "not images", "corrupt", "too large (decompression bomb)"
ELONGATED, UNREADABLE = "too elongated", "unreadable"
REASONS = (NOT_IMAGE, CORRUPT, TOO_LARGE, ELONGATED, UNREADABLE)
# Longest side : shortest side an image may have. The centre crop keeps the middle square, 1/20 = 5 % of
# an image this long, so beyond it what trains is a sliver, not the picture; and the resize before the
# crop makes size^2 x ratio pixels: a 1,000,000 x 1 PNG at 64 px asked for 5.3 GB (21 GB for 4,000,000 x
# 1) while passing PIL's decompression-bomb check, which counts only input pixels. 1:20 still takes
# panoramas and long banners; with it a resize allocates at most 20 x size^2 x 3 bytes (15 MB at 512 px).
MAX_ASPECT = 20
# Images above this many pixels decode one at a time: decoding, the alpha composite and the RGB copy
# hold ~4 copies of the pixels, so 8 threads on 80-megapixel files (legal for PIL) would need ~10 GB.
_ONE_AT_A_TIME_PIXELS = 16_000_000
_big_image = threading.Lock()
# Formats PIL decodes by running a program on the file: EPS runs Ghostscript, an interpreter of the
# PostScript inside (a program, not pixels) whose parser has had many CVEs. No image folder needs them.
_REFUSED_FORMATS = {"EPS": "decoding it would run Ghostscript on the file"}
_ORIENTATION = 0x0112  # the EXIF tag; values 2-8 mean the pixels are stored mirrored or rotated
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
    if max(height, width) > MAX_ASPECT * min(height, width):  # the files path refuses these earlier
        raise ValueError(f"a {width} x {height} image is more elongated than 1:{MAX_ASPECT}; resizing it "
                         f"to {size} px would allocate {size * size * max(height, width) // min(height, width):,} "
                         "pixels per channel before the crop")
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
    """``Image.open(path)`` with decompression bombs and overlong shapes refused, and every error while
    the image is open (opening, decoding, converting) turned into :class:`SkippedImage`."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a named pipe would wait for a writer forever
            raise SkippedImage(path, UNREADABLE, "not a regular file (a folder, pipe or device)")
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a GAN never needs such an image and
            # decoding one can take gigabytes, so a warning is refused like the error above it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format in _REFUSED_FORMATS:
                    raise SkippedImage(path, NOT_IMAGE, f"{image.format}: {_REFUSED_FORMATS[image.format]}")
                _check_shape(path, image.size)
                yield image
    except SkippedImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise SkippedImage(path, TOO_LARGE, str(err)) from None
    except UnidentifiedImageError as err:
        raise SkippedImage(path, NOT_IMAGE, str(err)) from None
    except (PermissionError, IsADirectoryError, FileNotFoundError) as err:  # FileNotFound: a broken link
        raise SkippedImage(path, UNREADABLE, f"{type(err).__name__}: {err.strerror}") from None
    except MemoryError:
        raise SkippedImage(path, TOO_LARGE, "out of memory while decoding it") from None
    except Exception as err:  # noqa: BLE001 - see below
        # PIL's plugins report damaged data with OSError, ValueError, SyntaxError, EOFError, IndexError,
        # TypeError, KeyError, struct.error, ZeroDivisionError... depending on the format and where the
        # damage is. One bad file must never end a run, so whatever it raises skips that file, by name.
        raise SkippedImage(path, CORRUPT, f"{type(err).__name__}: {err}") from None


def _check_shape(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < 1:
        raise SkippedImage(path, CORRUPT, f"its header says {width} x {height} pixels")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise SkippedImage(path, ELONGATED, f"{width} x {height} pixels, beyond 1:{MAX_ASPECT}; the centre "
                                            "crop would keep under 5 % of it")


def decode_file(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file -> uint8 (channels, size, size), upright per its EXIF orientation; the first frame
    of an animation. Raises SkippedImage for anything unusable, naming the file."""
    with open_image(path) as image:
        width, height = image.size
        with _big_image if width * height > _ONE_AT_A_TIME_PIXELS else nullcontext():
            # JPEG can decode at 1/2, 1/4 or 1/8 scale for free; draft keeps both sides >= size
            image.draft(None, (size, size))
            # decode now, so damage raises here: reading the EXIF of a PNG loads it, and a second load
            # after a failed one returns the half-decoded pixels without a word
            image.load()
            pixels = _to_uint8(_upright(image), channels)
            tensor = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
            return resize_crop(tensor, size)[0]


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (cameras and phones store pixels as the sensor saw
    them and record the turn). Only when a turn is needed: exif_transpose copies the pixels otherwise."""
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block costs the orientation, not the image
        return image
    return ImageOps.exif_transpose(image) if orientation in range(2, 9) else image


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
    """Cheap check that ``path`` is an image of a sane size and shape (reads the header only; no pixel
    decode).

    Raises SkippedImage. Truncated pixel data is only found by :func:`decode_file`.
    """
    with open_image(path):
        pass


def decode_files(paths: Sequence[Path], size: int, channels: int, progress: bool = False,
                 cancelled: CancelCheck = None, where: str = "images",
                 done: Callable[[int], None] | None = None
                 ) -> tuple[torch.Tensor, list[int], list[SkippedImage]]:
    """Decode many files on a thread pool (PIL releases the GIL while decoding).

    Returns uint8 (M, C, size, size) for the M readable files, their indices into ``paths``, and the
    skipped files. Decodes straight into one preallocated tensor, so the peak memory is the result's.
    Raises :class:`Cancelled` within about one file's decode of ``cancelled()`` turning true.
    ``done(k)``: called on this thread as the first k files are done (decoded or skipped), in order.
    """
    out = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)
    stop = threading.Event()  # cancelled() is the caller's; only this thread calls it, the pool reads this

    def one(i: int) -> SkippedImage | None:
        if stop.is_set():
            return None
        try:
            out[i] = decode_file(paths[i], size, channels)
        except SkippedImage as skipped:
            return skipped
        return None

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    results: list[SkippedImage | None] = []
    try:
        ordered = pool.map(one, range(len(paths)))
        if progress:
            from tqdm import tqdm
            ordered = tqdm(ordered, total=len(paths), desc="decoding images", unit="img")
        for result in ordered:  # in order: waits for one file at a time, then asks once per file
            check_cancelled(cancelled, f"decoding {where} ({len(results)} of {len(paths)} files done)")
            results.append(result)
            if done is not None:
                done(len(results))
    finally:
        stop.set()  # the queued files return at once; shutdown then waits only for those mid-decode
        pool.shutdown(wait=True, cancel_futures=True)
    kept = [i for i, r in enumerate(results) if r is None]
    skipped = [r for r in results if r is not None]
    return (out if not skipped else out[kept]), kept, skipped


def skipped_message(skipped: Sequence[SkippedImage], total: int, where: str) -> str:
    """One line counting skipped files by reason, e.g. 'skipped 3 of 120 files in /x (2 not images, ...)'."""
    counts = Counter(s.reason for s in skipped)
    reasons = ", ".join(f"{counts[r]} {r}" for r in REASONS if counts[r])
    examples = "; ".join(str(s) for s in skipped[:3])
    return f"skipped {len(skipped)} of {total} files in {where} ({reasons}); e.g. {examples}"


def report_skipped(skipped: Sequence[SkippedImage], total: int, where: str, out: list[str]) -> None:
    """Append the one warning for ``skipped`` files to ``out`` (nothing when none). Not logged here:
    whoever returns ``out`` logs it or hands it on, so it is said once (see ``Source.decode_all``)."""
    if skipped:
        out.append(skipped_message(skipped, total, where))
