"""Builders for small image files (good, odd and broken) and the Debian Fashion-MNIST files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def debian_fashion_mnist() -> Path:
    """The full Fashion-MNIST files from Debian's package; the tests that need them fail (not skip)."""
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{DEBIAN_FASHION_MNIST} is missing: run `apt-get install dataset-fashion-mnist`")
    return DEBIAN_FASHION_MNIST


class ImageFiles:
    """Builders for image files, served by the ``files`` fixture (so test modules import nothing)."""

    @staticmethod
    def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
        shape = (height, width, channels) if channels > 1 else (height, width)
        return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


    @staticmethod
    def save(path: Path, array: np.ndarray, **kwargs) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, **kwargs)
        return path


    @staticmethod
    def truncated(path: Path, array: np.ndarray, **kwargs) -> Path:
        """A real image file cut in half: the header reads fine, the pixels do not."""
        ImageFiles.save(path, array, **kwargs)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path


    @staticmethod
    def corrupt_png(path: Path) -> Path:
        """A PNG whose compressed pixel stream is overwritten with garbage."""
        gradient = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
        ImageFiles.save(path, gradient)
        data = bytearray(path.read_bytes())
        start = data.find(b"IDAT") + 10
        data[start:start + 30] = b"\xff" * 30
        path.write_bytes(bytes(data))
        return path


    @staticmethod
    def bomb_png(path: Path, side: int) -> Path:
        """A valid all-black 1-bit PNG of side x side pixels: ~side^2/8 bytes to decode, a few KB on disk."""
        def chunk(tag: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

        row = bytes(1 + (side + 7) // 8)  # filter byte + packed bits
        packer = zlib.compressobj(9)
        idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
        header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, grayscale
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
        return path


@pytest.fixture
def files() -> type[ImageFiles]:
    return ImageFiles
