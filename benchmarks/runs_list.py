"""Time to list a folder of 500 runs: the runs index (``engine/runs.py``) and the runs dock's first fill.

    python benchmarks/runs_list.py [--runs 500] [--rows 300] [--repeats 5] [--keep DIR]

Generates ``--runs`` realistic run folders (config.toml as the studio writes it, metrics.jsonl with
``--rows`` rows and an evaluation every 50 steps, samples/index.jsonl naming a few grid PNGs, status.json;
one run in five is an older run without status.json, whose best FID is searched in its metrics), then
times, as medians of ``--repeats``:
1. the reference: a bare ``os.scandir`` of the folders plus a stat of each run's config.toml;
2. ``RunIndex.list`` cold (a new index, the files in the page cache) and warm (nothing changed: the
   dock's once-a-second refresh), and warm after one run's metrics grew (a live run);
3. the runs dock's first fill in a real window: from creating the dock to its table showing every row,
   with the first visible thumbnails requested (they load in the background).
Target: cold listing and first fill <= 1 s. Timings only: it prints figures and ratios, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STATES = ("finished", "stopped", "failed", "finished", "running")  # "running" with no writer: crashed


def _grid_png() -> bytes:
    """A 64-image 28 px grey grid as a run writes it (~240 x 240 px): smooth blobs, which compress like
    generated images do (uniform noise would make a PNG ten times the size)."""
    import io

    import numpy as np

    from ganstudio.grids import grid_image

    y, x = np.mgrid[0:28, 0:28] / 27.0
    centres = np.random.default_rng(0).uniform(0.2, 0.8, (64, 2, 1, 1))
    blobs = np.exp(-((x - centres[:, 0]) ** 2 + (y - centres[:, 1]) ** 2) * 12)
    images = (blobs * 255).astype(np.uint8)[..., None]
    out = io.BytesIO()
    grid_image(images).save(out, format="PNG")
    return out.getvalue()


def _config_toml(i: int) -> str:
    from ganstudio.config import RunConfig

    family = ("gan", "cgan", "autoencoder", "gan")[i % 4]
    config = RunConfig().with_changes({"name": f"run{i}", "model.family": family,
                                       "loss.name": "mse" if family == "autoencoder" else "bce",
                                       "train.steps": 3000})
    return config.to_toml()


def make_run(folder: Path, i: int = 0, *, state: str | None = "finished", rows: int = 300,
             grids: int = 4, png: bytes | None = None, config: str | None = None, best: bool = True) -> Path:
    """One run folder as the engine leaves it; ``state`` None: an older run without status.json."""
    config = config or _config_toml(i)
    folder.mkdir(parents=True)
    (folder / "samples").mkdir()
    (folder / "checkpoints").mkdir()
    (folder / "config.toml").write_text(config)
    lines, fid = [], None
    metric = "recon_mse" if 'family = "autoencoder"' in config else "fid"
    for k in range(rows):
        step = 10 * (k + 1)
        lines.append(json.dumps({"step": step, "epoch": step // 150, "loss_d": 1.2 + k * 1e-3, "loss_g": 0.8,
                                 "d_real": 0.6, "d_fake": 0.4, "grad_norm_d": 3.1, "grad_norm_g": 2.2,
                                 "lr_d": 2e-4, "lr_g": 2e-4, "images_per_s": 900.5, "wall_time": step * 0.05,
                                 "steps": 10}))
        if step % 500 == 0:
            fid = 200.0 / (1 + step / 500 + i % 7)
            lines.append(json.dumps({"step": step, "epoch": step // 150, metric: fid, "eval_samples": 1000}))
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    png = png or _grid_png()
    index = []
    for g in range(grids):
        step = (g + 1) * 10 * rows // max(grids, 1)
        (folder / "samples" / f"step_{step:06d}.png").write_bytes(png)
        index.append(json.dumps({"step": step, "file": f"step_{step:06d}.png", "kind": "samples", "rows": 8,
                                 "columns": 8, "image_size": [28, 28], "channels": 1, "count": 64}))
    (folder / "samples" / "index.jsonl").write_text("".join(line + "\n" for line in index))
    (folder / "checkpoints" / "last.pt").write_bytes(b"\0" * 64)
    if state is not None:
        now = time.time()
        status = {"state": state, "step": 10 * rows, "pid": 1, "host": os.uname().nodename, "started": now - 60,
                  "updated": now, "elapsed": rows * 0.5,
                  "message": "out of memory on cpu at step 12" if state == "failed" else "",
                  "best": {metric: fid} if best and fid is not None else {}}
        (folder / "status.json").write_text(json.dumps(status) + "\n")
        if state == "running":
            (folder / "run.lock").write_text(json.dumps({"pid": 1, "host": os.uname().nodename}) + "\n")
    return folder


def make_runs(root: Path, n: int, rows: int = 300) -> list[Path]:
    png, configs = _grid_png(), [_config_toml(i) for i in range(4)]
    return [make_run(root / f"run{i:04d}", i, state=None if i % 5 == 4 else STATES[i % len(STATES)], rows=rows,
                     png=png, config=configs[i % 4]) for i in range(n)]


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _scandir(root: Path) -> None:
    with os.scandir(root) as entries:
        for e in entries:
            if e.is_dir():
                os.stat(os.path.join(e.path, "config.toml"))


def _dock_fill(root: Path, repeats: int) -> float:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ganstudio.gui.runs_dock import RunsDock

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(root.parent / "settings.ini"), QSettings.IniFormat)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dock = RunsDock(settings, root)
        dock.resize(1200, 700)
        dock.show()
        app.processEvents()
        assert dock.model.rowCount() == len(os.listdir(root)), "not every run is listed"
        times.append(time.perf_counter() - t0)
        dock.close()
        dock.deleteLater()
        app.processEvents()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate the runs here and leave them")
    args = parser.parse_args()
    from ganstudio.engine.runs import RunIndex

    base = args.keep or Path(tempfile.mkdtemp(prefix="ganstudio-runs-bench-"))
    root = base / "runs"
    try:
        t0 = time.perf_counter()
        make_runs(root, args.runs, args.rows)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1e6
        print(f"generated {args.runs} runs ({args.rows} metrics rows each, {size:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        RunIndex().list([root])  # the page cache, as after any earlier look at the folder
        reference = _median(lambda: _scandir(root), args.repeats)
        cold = _median(lambda: RunIndex().list([root]), args.repeats)
        index = RunIndex()
        index.list([root])
        warm = _median(lambda: index.list([root]), args.repeats)
        live = root / "run0000" / "metrics.jsonl"

        def grow():
            with open(live, "a") as f:
                f.write(json.dumps({"step": 10**6, "loss_d": 1.0, "wall_time": 1.0}) + "\n")
            index.list([root])

        grown = _median(grow, args.repeats)
        fill = _dock_fill(root, args.repeats)
        print(f"reference: os.scandir + stat of config.toml  {reference * 1e3:8.1f} ms")
        print(f"RunIndex.list cold                           {cold * 1e3:8.1f} ms  ({cold / reference:.0f}x the "
              f"reference; target <= 1000 ms)")
        print(f"RunIndex.list warm, nothing changed          {warm * 1e3:8.1f} ms  ({warm / reference:.1f}x)")
        print(f"RunIndex.list warm, one live run grew        {grown * 1e3:8.1f} ms  ({grown / reference:.1f}x)")
        print(f"runs dock first fill in a window             {fill * 1e3:8.1f} ms  ({fill / reference:.0f}x the "
              f"reference; target <= 1000 ms)")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
