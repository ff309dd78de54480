"""Sample grids: the one tiler every grid goes through, where each image sits in a grid, reading one back.

numpy and PIL only (no torch, no Qt), so the run folder, the exports and the gallery all lay grids out
the same way. The layout is torchvision's ``make_grid`` as ganstudio has always written it: ``columns``
images per row (default ceil(sqrt(n)), never more than n), 2 px of black padding around and between
images, empty cells black, and a single image without padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PAD = 2


@dataclass(frozen=True)
class GridGeometry:
    """Where each of ``n`` images sits in a grid: ``ncol`` x ``nrow`` cells of cell_h x cell_w."""

    n: int
    ncol: int
    nrow: int
    cell_h: int
    cell_w: int
    pad: int = PAD

    @classmethod
    def of(cls, n: int, cell_h: int, cell_w: int, ncol: int | None = None) -> GridGeometry:
        """The layout of ``n`` images, ``ncol`` per row (default ceil(sqrt(n)); never more than n)."""
        return cls(n, *layout(n, ncol), cell_h, cell_w, PAD if n > 1 else 0)

    @property
    def width(self) -> int:
        return self.ncol * (self.cell_w + self.pad) + self.pad

    @property
    def height(self) -> int:
        return self.nrow * (self.cell_h + self.pad) + self.pad

    def origin(self, i: int) -> tuple[int, int]:
        """(x, y) of image ``i``'s top-left pixel."""
        row, col = divmod(i, self.ncol)
        return self.pad + col * (self.cell_w + self.pad), self.pad + row * (self.cell_h + self.pad)

    def cell_at(self, x: float, y: float) -> int | None:
        """The image under grid pixel (x, y); None on padding or an empty cell."""
        col, dx = divmod(int(x) - self.pad, self.cell_w + self.pad)
        row, dy = divmod(int(y) - self.pad, self.cell_h + self.pad)
        if not (0 <= col < self.ncol and 0 <= row < self.nrow and dx < self.cell_w and dy < self.cell_h):
            return None
        i = row * self.ncol + col
        return i if i < self.n else None

    def crop(self, grid: np.ndarray, i: int) -> np.ndarray:
        x, y = self.origin(i)
        return grid[y : y + self.cell_h, x : x + self.cell_w]


def layout(n: int, ncol: int | None = None) -> tuple[int, int]:
    """(ncol, nrow) of a grid of n images; like torchvision, a row never has more columns than images."""
    ncol = max(1, min(ncol or math.ceil(math.sqrt(n)), n))
    return ncol, math.ceil(n / ncol)


def pair_columns(pairs: int) -> int:
    """Images per row for ``pairs`` (real, reconstruction) pairs: a squarish grid of whole pairs."""
    return 2 * max(1, math.ceil(math.sqrt(pairs)))


def tile(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (H', W', C) grid, ``columns`` (default ceil(sqrt(N))) per row."""
    n, h, w, c = images.shape
    geo = GridGeometry.of(n, h, w, columns)
    grid = np.zeros((geo.height, geo.width, c), dtype=np.uint8)
    for i in range(n):
        x, y = geo.origin(i)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def grid_image(images: np.ndarray, columns: int | None = None) -> Image.Image:
    """The grid as the files hold it: an RGB PIL image, greyscale repeated into three channels as
    torchvision's make_grid did, so grids written before and after the switch to numpy are the same."""
    grid = tile(images, columns)
    if grid.shape[-1] == 1:
        grid = np.repeat(grid, 3, axis=2)
    return Image.fromarray(grid)


def read_grid(path: Path) -> np.ndarray:
    """A grid PNG -> uint8 (H, W, C) with C = 1 (greyscale) or 3."""
    with Image.open(path) as image:
        if image.mode in ("L", "1", "I", "I;16"):
            return np.asarray(image.convert("L"))[..., None]
        return np.asarray(image.convert("RGB"))
