"""The rows of a run folder's ``samples/index.jsonl`` (one per grid PNG: its step, kind and layout), and
recovering that layout from a PNG's pixel size for run folders written before the index existed.

No torch, no Qt: the studio reads these on the GUI thread. The file names themselves are RunDir's
(``engine/rundir.py``); this module sees only paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ganstudio.grids import PAD, GridGeometry, layout, read_grid

SAMPLES, RECONSTRUCTIONS = "samples", "reconstructions"  # the two kinds of grid a run writes
KINDS = (SAMPLES, RECONSTRUCTIONS)
COMMON_SIZES = (28, 32, 64, 128, 256, 16, 48, 96, 24, 40, 56, 80, 112, 160, 192, 224, 512)


@dataclass(frozen=True)
class SampleRecord:
    """One grid PNG and how it is laid out. ``row_classes``: a conditional grid's class per row."""

    step: int
    kind: str        # SAMPLES, or RECONSTRUCTIONS: (real, reconstruction) pairs side by side
    path: Path       # the index row holds its name relative to samples/
    rows: int
    columns: int
    height: int      # of one image, in pixels
    width: int
    channels: int    # of the images the model made (1 or 3); the PNG itself is always RGB
    count: int       # images in the grid; the last row may have empty cells
    row_classes: tuple[int, ...] | None = None
    inferred: bool = False  # read back from the pixel size (a run folder from before the index)

    @classmethod
    def of(cls, step: int, kind: str, path: Path, images: np.ndarray, columns: int | None = None,
           row_classes=None) -> SampleRecord:
        """The record of a grid of uint8 (N, H, W, C) ``images`` tiled ``columns`` per row."""
        n, h, w, c = images.shape
        ncol, nrow = layout(n, columns)
        classes = tuple(int(k) for k in row_classes) if row_classes is not None else None
        return cls(int(step), kind, Path(path), nrow, ncol, h, w, c, n, classes)

    def geometry(self) -> GridGeometry:
        return GridGeometry(self.count, self.columns, self.rows, self.height, self.width,
                            PAD if self.count > 1 else 0)

    def to_row(self) -> dict:
        """The index.jsonl row; ``file`` is relative to the samples folder, so the run folder can move."""
        row = {"step": self.step, "file": self.path.name, "kind": self.kind, "rows": self.rows,
               "columns": self.columns, "image_size": [self.height, self.width], "channels": self.channels,
               "count": self.count}
        if self.row_classes is not None:
            row["row_classes"] = list(self.row_classes)
        return row

    @classmethod
    def from_row(cls, row: dict, samples_dir: Path) -> SampleRecord:
        """The record of an index row; KeyError, TypeError or ValueError when the row is not one."""
        h, w = row["image_size"]
        if row["kind"] not in KINDS or Path(row["file"]).name != row["file"]:
            raise ValueError(f"not a sample index row: {row}")
        classes = row.get("row_classes")
        return cls(int(row["step"]), row["kind"], Path(samples_dir) / row["file"], int(row["rows"]),
                   int(row["columns"]), int(h), int(w), int(row["channels"]), int(row["count"]),
                   tuple(int(k) for k in classes) if classes is not None else None)


# --- run folders written before index.jsonl ------------------------------------------------------
Hints = tuple[int | None, int | None, int | None]  # (image size, count, columns) known from elsewhere


def infer_record(step: int, kind: str, path: Path, hints: Hints = (None, None, None),
                 known: dict | None = None) -> SampleRecord | None:
    """A record for a grid PNG that the index does not name, from its pixel size (None if unreadable).

    ``known`` caches layouts by (kind, width, height): a run's grids share one layout, so only the
    first of each size is decoded (to check its padding and empty cells), the rest only opened.
    """
    known = {} if known is None else known
    try:
        with Image.open(path) as image:
            width, height = image.size
        key = (kind, width, height)
        if key not in known:
            grid = read_grid(path)
            image_size, n, ncol = hints
            geo = infer_geometry(width, height, image_size=image_size, n=n, grid=grid, ncol=ncol,
                                 pairs=kind == RECONSTRUCTIONS)
            grey = grid.shape[-1] == 1 or bool((grid == grid[..., :1]).all())
            known[key] = (geo, 1 if grey else 3)
    except (OSError, ValueError):
        return None
    geo, channels = known[key]
    return SampleRecord(step, kind, Path(path), geo.nrow, geo.ncol, geo.cell_h, geo.cell_w, channels, geo.n,
                        inferred=True)


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
        wrong_count = n is not None and (geo.ncol, geo.nrow) != layout(n, ncol)
        wrong_cols = ncol is not None and geo.ncol != ncol and geo.n > 1
        black = grid is None or _padding_is_black(grid, geo)
        return (wrong_size or wrong_count or wrong_cols, pairs and geo.ncol % 2 == 1, geo.cell_h != geo.cell_w,
                not black, geo.cell_w not in COMMON_SIZES, geo.nrow not in (geo.ncol - 1, geo.ncol), -geo.ncol)

    geo = min(_candidates(width, height), key=rank)
    if n is not None and (geo.ncol, geo.nrow) == layout(n, ncol):
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
