"""The layout of ganstudio's sample grids (padding 2, ceil(sqrt(N)) per row), and reading it back
from a PNG whose image size and count are not written down anywhere. No Qt here.

Grid layout (the same as ganstudio's run folder, i.e. torchvision's ``make_grid``): ``ncol =
ceil(sqrt(n))`` images per row, 2 px of black padding around and between images, empty cells black;
a single image is written without padding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

PAD = 2
COMMON_SIZES = (28, 32, 64, 128, 256, 16, 48, 96, 24, 40, 56, 80, 112, 160, 192, 224, 512)
STEP_FILE = re.compile(r"step_(\d+)\.png$")


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
    def of(cls, n: int, cell_h: int, cell_w: int) -> GridGeometry:
        return cls(n, *_layout(n), cell_h, cell_w, PAD if n > 1 else 0)

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


def _layout(n: int) -> tuple[int, int]:
    """(ncol, nrow) of a grid of n images."""
    ncol = max(1, math.ceil(math.sqrt(n)))
    return ncol, math.ceil(n / ncol)


def make_grid(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> one (H', W', C) grid laid out like the run folder's PNGs."""
    n, h, w, c = images.shape
    geo = GridGeometry.of(n, h, w)
    grid = np.zeros((geo.height, geo.width, c), dtype=np.uint8)
    for i in range(n):
        x, y = geo.origin(i)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def _candidates(width: int, height: int) -> list[GridGeometry]:
    """Every layout that yields a width x height grid (n is the largest count the layout allows)."""
    found = [GridGeometry(1, 1, 1, height, width, 0)]  # a single image has no padding
    for ncol in range(2, (width - PAD) // (1 + PAD) + 1):
        if (width - PAD) % ncol:
            continue
        for nrow in (ncol - 1, ncol):  # ceil(n / ceil(sqrt(n))) is one of these two
            if nrow >= 1 and (height - PAD) % nrow == 0 and (height - PAD) // nrow > PAD:
                cell_w, cell_h = (width - PAD) // ncol - PAD, (height - PAD) // nrow - PAD
                found.append(GridGeometry(ncol * nrow, ncol, nrow, cell_h, cell_w, PAD))
    return found


def _padding_is_black(grid: np.ndarray, geo: GridGeometry) -> bool:
    if geo.pad == 0:
        return True
    step_x, step_y = geo.cell_w + geo.pad, geo.cell_h + geo.pad
    cols = np.concatenate([np.arange(k * step_x, k * step_x + geo.pad) for k in range(geo.ncol + 1)])
    rows = np.concatenate([np.arange(k * step_y, k * step_y + geo.pad) for k in range(geo.nrow + 1)])
    return not grid[:, cols].any() and not grid[rows, :].any()


def infer_geometry(width: int, height: int, image_size: int | None = None, n: int | None = None,
                   grid: np.ndarray | None = None) -> GridGeometry:
    """Recover the layout of a grid PNG from its size.

    Sizes alone are ambiguous (a 122 px square grid is 4 x 4 of 28 px or 2 x 2 of 58 px), so the
    candidates are ranked: matching the known ``image_size`` / ``n``; square images; black padding
    lines in ``grid``'s pixels; a common image size; then the finest layout. With ``grid`` the count
    ``n`` is refined by dropping all-black trailing cells of the last row.
    """
    def rank(geo: GridGeometry):
        wrong_size = image_size is not None and (geo.cell_h, geo.cell_w) != (image_size, image_size)
        wrong_count = n is not None and (geo.ncol, geo.nrow) != _layout(n)
        black = grid is None or _padding_is_black(grid, geo)
        return (wrong_size or wrong_count, geo.cell_h != geo.cell_w, not black,
                geo.cell_w not in COMMON_SIZES, -geo.ncol)

    geo = min(_candidates(width, height), key=rank)
    if n is not None and (geo.ncol, geo.nrow) == _layout(n):
        return replace(geo, n=n)
    count = geo.n
    if grid is not None and count > 1:
        fewest = max((geo.ncol - 1) ** 2 + 1, (geo.nrow - 1) * geo.ncol + 1)  # else the layout would differ
        while count > fewest and not geo.crop(grid, count - 1).any():
            count -= 1
    return replace(geo, n=count)


def read_grid(path: Path) -> np.ndarray:
    """A grid PNG -> uint8 (H, W, C) with C = 1 (greyscale) or 3."""
    with Image.open(path) as image:
        if image.mode in ("L", "1", "I", "I;16"):
            return np.asarray(image.convert("L"))[..., None]
        return np.asarray(image.convert("RGB"))
