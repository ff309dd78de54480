"""The one grid tiler (``ganstudio.grids``) against torchvision, grid geometry, and reading a layout back
from a PNG's pixel size (``engine.sample_index.infer_geometry``, for run folders from before the index).

Moved from tests/gui/test_gallery.py when the layout left the GUI; no Qt here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ganstudio.engine.sample_index import infer_geometry
from ganstudio.grids import GridGeometry, pair_columns
from ganstudio.grids import tile as make_grid


def images_for(step: int, n: int = 16, size: int = 28, channels: int = 1) -> np.ndarray:
    """Never-black images whose pixels say which step and image they are: value 40 + step + index."""
    values = (40 + step + np.arange(n)) % 256
    return np.broadcast_to(values[:, None, None, None], (n, size, size, channels)).astype(np.uint8)


# --- grid layout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 10, 16, 17, 64])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_infer_geometry_from_png_size(n, size):
    true = GridGeometry.of(n, size, size)
    grid = make_grid(images_for(0, n, size))
    assert grid.shape[:2] == (true.height, true.width)
    guessed = infer_geometry(true.width, true.height)
    assert (guessed.ncol, guessed.nrow, guessed.cell_w, guessed.cell_h) == (true.ncol, true.nrow, size, size)
    assert infer_geometry(true.width, true.height, grid=grid) == true  # pixels give the exact count


def test_infer_geometry_resolves_ambiguous_sizes_with_hints_or_pixels():
    # 122 x 122 is 4 x 4 images of 28 px or 2 x 2 of 58 px
    four = make_grid(images_for(0, 4, 58))
    assert four.shape[:2] == (122, 122)
    assert infer_geometry(122, 122).cell_w == 28  # the common size wins when nothing else is known
    assert infer_geometry(122, 122, grid=four) == GridGeometry.of(4, 58, 58)  # no padding through images
    assert infer_geometry(122, 122, image_size=58).cell_w == 58
    assert infer_geometry(122, 122, n=4) == GridGeometry.of(4, 58, 58)


@pytest.mark.parametrize(("n", "ncol"), [(100, 10), (80, 8), (40, 4), (30, 10), (32, 8), (8, 4)])
def test_infer_geometry_of_grids_with_given_columns(n, ncol):
    """A cgan grid has one row per class; reconstructions have pairs per row: not the square-root layout."""
    true = GridGeometry.of(n, 28, 28, ncol)
    grid = make_grid(images_for(0, n), ncol)
    assert (true.ncol, true.nrow) == (ncol, -(-n // ncol)) and grid.shape[:2] == (true.height, true.width)
    assert infer_geometry(true.width, true.height, grid=grid) == true
    assert infer_geometry(true.width, true.height, n=n, ncol=ncol) == true


def test_geometry_maps_pixels_to_cells():
    geo = GridGeometry.of(10, 28, 28)  # 4 per row, 3 rows, two empty cells at the end
    assert (geo.width, geo.height) == (122, 92)
    assert geo.cell_at(2, 2) == 0 and geo.cell_at(29, 29) == 0 and geo.cell_at(32, 2) == 1
    assert geo.cell_at(30, 5) is None and geo.cell_at(31, 31) is None and geo.cell_at(1, 9) is None  # padding
    assert geo.cell_at(*geo.origin(9)) == 9 and geo.cell_at(*geo.origin(9)[::-1]) == 6
    assert geo.cell_at(*geo.origin(10)) is None  # an empty cell


def test_make_grid_matches_torchvision():
    """The numpy tiler gives torchvision make_grid's pixels (what the run folder wrote before it)."""
    torch = pytest.importorskip("torch")
    from torchvision.utils import make_grid as torchvision_grid

    from ganstudio.grids import grid_image

    for n, channels, columns in [(1, 3, None), (5, 1, None), (16, 3, None), (10, 1, None), (40, 1, 4),
                                 (30, 3, 10), (5, 1, 8), (32, 1, pair_columns(16)), (1, 1, None)]:
        images = np.random.default_rng(n).integers(0, 256, (n, 12, 12, channels), dtype=np.uint8)
        nrow = columns or int(np.ceil(np.sqrt(n)))
        theirs = torchvision_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=nrow, padding=2,
                                  pad_value=0).permute(1, 2, 0).numpy()  # greyscale comes back RGB
        ours = make_grid(images, columns)
        np.testing.assert_array_equal(np.broadcast_to(ours, theirs.shape), theirs)
        np.testing.assert_array_equal(np.asarray(grid_image(images, columns)), theirs)  # the file's pixels
