"""The layout of ganstudio's sample grids (padding 2, ceil(sqrt(N)) per row unless told otherwise), and
reading it back from a PNG whose image size and count are not written down anywhere. No Qt here.

Grid layout (the same as ganstudio's run folder, i.e. torchvision's ``make_grid``): ``ncol =
ceil(sqrt(n))`` images per row, or the ``columns`` a sample event names (a cgan grid: one row per
class; reconstructions: (real, reconstruction) pairs side by side, an even count); 2 px of black padding
around and between images, empty cells black; a single image is written without padding.
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
STEP_FILE = re.compile(r"^step_(\d+)\.png$")    # samples/step_NNNNNN.png: a sample grid
RECON_FILE = re.compile(r"^recon_(\d+)\.png$")  # samples/recon_NNNNNN.png: (real, reconstruction) pairs


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
        return cls(n, *_layout(n, ncol), cell_h, cell_w, PAD if n > 1 else 0)

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


def _layout(n: int, ncol: int | None = None) -> tuple[int, int]:
    """(ncol, nrow) of a grid of n images; like torchvision, a row never has more columns than images."""
    ncol = max(1, min(ncol or math.ceil(math.sqrt(n)), n))
    return ncol, math.ceil(n / ncol)


def pair_columns(pairs: int) -> int:
    """Images per row for (real, reconstruction) pairs: a squarish grid of whole pairs (as the run folder's)."""
    return 2 * max(1, math.ceil(math.sqrt(pairs)))


def make_grid(images: np.ndarray, ncol: int | None = None) -> np.ndarray:
    """uint8 (N, H, W, C) -> one (H', W', C) grid laid out like the run folder's PNGs."""
    n, h, w, c = images.shape
    geo = GridGeometry.of(n, h, w, ncol)
    grid = np.zeros((geo.height, geo.width, c), dtype=np.uint8)
    for i in range(n):
        x, y = geo.origin(i)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def _candidates(width: int, height: int) -> list[GridGeometry]:
    """Every layout that yields a width x height grid (n is the largest count the layout allows):
    the square-root layouts, and any row count with square images (grids with given columns)."""
    found = [GridGeometry(1, 1, 1, height, width, 0)]  # a single image has no padding
    for ncol in range(1, (width - PAD) // (1 + PAD) + 1):
        if (width - PAD) % ncol:
            continue
        cell_w = (width - PAD) // ncol - PAD
        rows = {nrow for nrow in (ncol - 1, ncol) if nrow >= 1}  # ceil(n / ceil(sqrt(n))) is one of these
        if (height - PAD) % (cell_w + PAD) == 0:
            rows.add((height - PAD) // (cell_w + PAD))  # square images in however many rows
        for nrow in sorted(rows):
            if (height - PAD) % nrow == 0 and (height - PAD) // nrow > PAD and ncol * nrow > 1:
                cell_h = (height - PAD) // nrow - PAD
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
                   grid: np.ndarray | None = None, ncol: int | None = None,
                   pairs: bool = False) -> GridGeometry:
    """Recover the layout of a grid PNG from its size.

    Sizes alone are ambiguous (a 122 px square grid is 4 x 4 of 28 px or 2 x 2 of 58 px), so the
    candidates are ranked: matching the known ``image_size`` / ``n`` / ``ncol``; an even column count
    for ``pairs`` (reconstructions); square images; black padding lines in ``grid``'s pixels; a common
    image size; the square-root layout; then the finest layout. With ``grid`` the count ``n`` is
    refined by dropping all-black trailing cells of the last row.
    """
    def rank(geo: GridGeometry):
        wrong_size = image_size is not None and (geo.cell_h, geo.cell_w) != (image_size, image_size)
        wrong_count = n is not None and (geo.ncol, geo.nrow) != _layout(n, ncol)
        wrong_cols = ncol is not None and geo.ncol != ncol and geo.n > 1
        black = grid is None or _padding_is_black(grid, geo)
        return (wrong_size or wrong_count or wrong_cols, pairs and geo.ncol % 2 == 1, geo.cell_h != geo.cell_w,
                not black, geo.cell_w not in COMMON_SIZES, geo.nrow not in (geo.ncol - 1, geo.ncol), -geo.ncol)

    geo = min(_candidates(width, height), key=rank)
    if n is not None and (geo.ncol, geo.nrow) == _layout(n, ncol):
        return replace(geo, n=n)
    count = geo.n
    if grid is not None and count > 1:
        square = geo.nrow in (geo.ncol - 1, geo.ncol)
        fewest = (geo.nrow - 1) * geo.ncol + 1  # else the last row would be empty
        if square and ncol is None and not pairs:
            fewest = max((geo.ncol - 1) ** 2 + 1, fewest)  # else the square-root layout would differ
        while count > fewest and not geo.crop(grid, count - 1).any():
            count -= 1
    return replace(geo, n=count)


def read_grid(path: Path) -> np.ndarray:
    """A grid PNG -> uint8 (H, W, C) with C = 1 (greyscale) or 3."""
    with Image.open(path) as image:
        if image.mode in ("L", "1", "I", "I;16"):
            return np.asarray(image.convert("L"))[..., None]
        return np.asarray(image.convert("RGB"))
