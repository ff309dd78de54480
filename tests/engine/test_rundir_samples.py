"""RunDir's sample grids: file names, samples/index.jsonl rows, and reading layouts back (index or, for
run folders from before the index, the pixel size). No torch needed except to compare with torchvision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganstudio.engine.rundir import INDEX_FILE, RunDir, read_sample_index
from ganstudio.engine.sample_index import RECONSTRUCTIONS, SAMPLES, SampleRecord, infer_geometry
from ganstudio.grids import GridGeometry, grid_image, pair_columns, read_grid


def images(n: int, size: int = 28, channels: int = 1, value: int = 90) -> np.ndarray:
    out = np.zeros((n, size, size, channels), dtype=np.uint8)
    out[:] = (value + np.arange(n) % 100)[:, None, None, None]
    return out


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.create()
    return run


def index_rows(run: RunDir) -> list[dict]:
    return [json.loads(line) for line in (run.samples_dir / INDEX_FILE).read_text().splitlines()]


def test_each_grid_gets_one_index_row_with_its_layout(run):
    path = run.write_grid(40, images(30, 32, 3), columns=10, row_classes=[7, 8, 9])
    recon = run.write_reconstructions(40, images(16))
    assert path == run.sample_path(40) and recon == run.reconstructions_path(40) and path != recon
    assert path.is_file() and recon.is_file()
    assert index_rows(run) == [
        {"step": 40, "file": path.name, "kind": "samples", "rows": 3, "columns": 10, "image_size": [32, 32],
         "channels": 3, "count": 30, "row_classes": [7, 8, 9]},
        {"step": 40, "file": recon.name, "kind": "reconstructions", "rows": 3, "columns": pair_columns(8),
         "image_size": [28, 28], "channels": 1, "count": 16},
    ]
    samples, pairs = run.sample_index()
    assert (samples.kind, samples.path, samples.row_classes, samples.inferred) == (SAMPLES, path, (7, 8, 9), False)
    assert samples.geometry() == GridGeometry.of(30, 32, 32, 10)
    assert pairs.kind == RECONSTRUCTIONS and pairs.geometry() == GridGeometry.of(16, 28, 28, pair_columns(8))
    with Image.open(path) as png:
        assert png.size == (samples.geometry().width, samples.geometry().height)


def test_the_png_is_the_tiled_grid(run):
    grey = images(10)
    path = run.write_grid(0, grey)
    with Image.open(path) as png:
        assert png.mode == "RGB"  # greyscale repeated into RGB, as torchvision's make_grid wrote it
    np.testing.assert_array_equal(read_grid(path), np.asarray(grid_image(grey)))
    geo = run.sample_index()[0].geometry()
    assert geo == GridGeometry.of(10, 28, 28) and geo.crop(read_grid(path), 9)[..., 0].max() == 99


def test_a_torn_last_row_and_foreign_rows_are_skipped_and_a_rewritten_step_wins(run):
    run.write_grid(0, images(16))
    run.write_grid(5, images(16))
    run.write_grid(5, images(9))  # a resume rewrote step 5
    with (run.samples_dir / INDEX_FILE).open("a") as f:
        f.write('{"step": 3, "file": "../../etc/passwd", "kind": "samples", "rows": 1, "columns": 1, '
                '"image_size": [2, 2], "channels": 1, "count": 1}\n')
        f.write('{"step": 10, "file": "st')  # a writer was mid-row
    records = run.sample_index()
    assert [(r.step, r.count) for r in records] == [(0, 16), (5, 9)]


def test_a_deleted_file_is_left_out(run):
    run.write_grid(0, images(4))
    run.write_grid(1, images(4)).unlink()
    assert [r.step for r in run.sample_index()] == [0]


def _write_the_old_way(run: RunDir, step: int, grid: np.ndarray, columns: int | None = None,
                       kind: str = SAMPLES) -> Path:
    """A grid PNG as ganstudio wrote it before index.jsonl: the file and no row."""
    path = run.sample_path(step) if kind == SAMPLES else run.reconstructions_path(step)
    grid_image(grid, columns).save(path)
    return path


def test_a_run_folder_from_before_the_index_is_read_from_pixel_sizes(run):
    for step in (200, 0, 100):
        _write_the_old_way(run, step, images(80, 28), columns=8)  # a cgan: 10 rows of 8
        _write_the_old_way(run, step, images(16, 28), pair_columns(8), RECONSTRUCTIONS)
    (run.samples_dir / "step_notes.png").write_bytes(b"")  # not a grid name
    colour = images(10, 32, 3)
    colour[..., 1] //= 2
    _write_the_old_way(run, 300, colour)
    assert not (run.samples_dir / INDEX_FILE).exists()
    records = run.sample_index()
    assert [(r.step, r.kind) for r in records] == [(0, SAMPLES), (0, RECONSTRUCTIONS), (100, SAMPLES),
                                                   (100, RECONSTRUCTIONS), (200, SAMPLES), (200, RECONSTRUCTIONS),
                                                   (300, SAMPLES)]
    assert all(r.inferred for r in records)
    first, pairs, last = records[0], records[1], records[-1]
    assert (first.rows, first.columns, first.height, first.width, first.count, first.channels) == (10, 8, 28, 28, 80, 1)
    assert (pairs.rows, pairs.columns, pairs.count) == (3, pair_columns(8), 16)
    assert (last.rows, last.columns, last.height, last.count, last.channels) == (3, 4, 32, 10, 3)
    assert read_sample_index(run.path) == read_sample_index(run.samples_dir) == records  # either folder


def test_a_resumed_old_run_lists_old_files_and_new_rows(run):
    _write_the_old_way(run, 0, images(16))
    run.write_grid(10, images(16))
    records = run.sample_index()
    assert [(r.step, r.inferred) for r in records] == [(0, True), (10, False)]
    assert records[0].geometry() == records[1].geometry() == GridGeometry.of(16, 28, 28)


def test_the_index_wins_over_an_ambiguous_pixel_size(run):
    """4 dark 58 px images make a 122 px grid that reads as 4 x 4 of 28 px; the index knows better."""
    dark = np.zeros((4, 58, 58, 1), dtype=np.uint8)
    dark[:, 5:20, 5:20] = 200  # content away from where a 28 px layout would have its padding
    path = run.write_grid(0, dark)
    grid = read_grid(path)
    assert grid.shape[:2] == (122, 122)
    assert infer_geometry(122, 122, grid=grid).cell_w == 28  # what the pixels alone would say
    assert run.sample_index()[0].geometry() == GridGeometry.of(4, 58, 58)
    (run.samples_dir / INDEX_FILE).unlink()  # the same folder without its index falls back to guessing
    assert run.sample_index()[0].width == 28


def test_record_rows_round_trip(tmp_path):
    record = SampleRecord.of(7, SAMPLES, tmp_path / "x.png", images(6), columns=3, row_classes=[1, 2])
    assert SampleRecord.from_row(json.loads(json.dumps(record.to_row())), tmp_path) == record


def test_rundir_imports_no_torch():
    """The studio imports the run folder on the GUI thread before torch loads (engine/__init__ aside)."""
    code = (
        "import sys, types, pathlib, ganstudio\n"
        "engine = types.ModuleType('ganstudio.engine')\n"
        "engine.__path__ = [str(pathlib.Path(ganstudio.__file__).parent / 'engine')]\n"
        "sys.modules['ganstudio.engine'] = engine\n"
        "import ganstudio.engine.rundir, ganstudio.grids\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'PySide6') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
