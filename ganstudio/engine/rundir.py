"""The run folder: config.toml, metrics.jsonl, samples/ (grid PNGs and index.jsonl), checkpoints/last.pt.

Everything the studio shows can be rebuilt from these files. RunDir alone knows the file names; others
ask it (``sample_path``, ``sample_index``). No torch here: the studio imports this on the GUI thread.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np

from ganstudio.config import RunConfig
from ganstudio.engine.sample_index import KINDS, RECONSTRUCTIONS, SAMPLES, SampleRecord, infer_record
from ganstudio.fileio import atomic_write, atomic_write_bytes
from ganstudio.grids import grid_image, pair_columns

INDEX_FILE = "index.jsonl"  # in samples/: one row per grid written, its step, kind and layout
_FILE_PREFIX = {SAMPLES: "step_", RECONSTRUCTIONS: "recon_"}  # samples/step_NNNNNN.png, recon_NNNNNN.png
_KIND_OF_PREFIX = {prefix: kind for kind, prefix in _FILE_PREFIX.items()}
_FILE_NAME = re.compile(rf"^({'|'.join(_FILE_PREFIX.values())})(\d+)\.png$")


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.samples_dir = self.path / "samples"
        self.checkpoints_dir = self.path / "checkpoints"
        self.last_checkpoint = self.checkpoints_dir / "last.pt"

    @classmethod
    def new(cls, root: str | Path, name: str) -> RunDir:
        """A fresh folder ``root/name-YYYYmmdd-HHMMSS`` (with a suffix if that exists)."""
        stem = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = stem, 1
        while path.exists():
            n += 1
            path = stem.with_name(f"{stem.name}-{n}")
        return cls(path)

    def create(self) -> None:
        for folder in (self.path, self.samples_dir, self.checkpoints_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: RunConfig) -> None:
        config.save(self.config_path)

    def append_metrics(self, row: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")

    def read_metrics(self) -> list[dict]:
        """The logged rows; a torn last line (from a crash mid-write) is ignored."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past ``after_step``: on resume from a checkpoint, history after it did not happen."""
        rows = self.read_metrics()
        kept = [r for r in rows if r.get("step", 0) <= after_step]
        if len(kept) != len(rows) or self.metrics_path.is_file():
            text = "".join(json.dumps(r) + "\n" for r in kept)
            atomic_write_bytes(self.metrics_path, text.encode())

    def sample_path(self, step: int) -> Path:
        """Where the sample grid of ``step`` goes."""
        return self.samples_dir / f"{_FILE_PREFIX[SAMPLES]}{step:06d}.png"

    def reconstructions_path(self, step: int) -> Path:
        """Where the (real, reconstruction) pairs of ``step`` go."""
        return self.samples_dir / f"{_FILE_PREFIX[RECONSTRUCTIONS]}{step:06d}.png"

    def write_grid(self, step: int, images: np.ndarray, columns: int | None = None,
                   row_classes: list[int] | None = None) -> Path:
        """The sample grid of uint8 (N, H, W, C) ``images``, ``columns`` per row (None: a square grid),
        and its index row; ``row_classes``: a conditional grid's class per row."""
        path = self.sample_path(step)
        self._write(SampleRecord.of(step, SAMPLES, path, images, columns, row_classes), images)
        return path

    def write_reconstructions(self, step: int, pairs: np.ndarray) -> Path:
        """(real, reconstruction) pairs, interleaved in ``pairs``, side by side in a squarish grid."""
        path = self.reconstructions_path(step)
        self._write(SampleRecord.of(step, RECONSTRUCTIONS, path, pairs, pair_columns(len(pairs) // 2)), pairs)
        return path

    def sample_index(self) -> list[SampleRecord]:
        """Every grid of the run, by step (samples before reconstructions); see ``read_sample_index``."""
        return read_sample_index(self.samples_dir)

    def _write(self, record: SampleRecord, images: np.ndarray) -> None:
        image = grid_image(images, record.columns)
        atomic_write(record.path, lambda f: image.save(f, format="PNG"))
        # After the PNG, so a row always names a whole file. One os.write of one line on an O_APPEND
        # file: a reader in another process sees the whole row or, mid-write, a torn last line it skips.
        line = (json.dumps(record.to_row()) + "\n").encode()
        fd = os.open(self.samples_dir / INDEX_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read_sample_index(samples_dir: str | Path) -> list[SampleRecord]:
    """The grids in a run's samples/ folder (or the run folder), by step, samples before reconstructions.

    Rows of ``index.jsonl`` give each layout; a torn or foreign row is skipped and, for a step written
    twice (a resume), the last row wins. Grid PNGs the index does not name (every one, in a run folder
    from before the index) get a layout read back from their pixel size, helped by the index's rows of
    the same kind. Files that are gone are left out.
    """
    folder = Path(samples_dir)
    if (folder / "samples").is_dir():
        folder = folder / "samples"
    if not folder.is_dir():
        return []
    found: dict[tuple[str, int], SampleRecord] = {}
    index = folder / INDEX_FILE
    lines = index.read_text(encoding="utf-8").splitlines() if index.is_file() else []
    for line in lines:
        try:
            record = SampleRecord.from_row(json.loads(line), folder)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        found[(record.kind, record.step)] = record
    found = {key: r for key, r in found.items() if r.path.is_file()}
    hints = {r.kind: (r.height if r.height == r.width else None, r.count, r.columns) for r in found.values()}
    known: dict = {}
    for path in folder.glob("*.png"):
        match = _FILE_NAME.match(path.name)
        if match is None:
            continue
        kind, step = _KIND_OF_PREFIX[match.group(1)], int(match.group(2))
        if (kind, step) not in found and (record := infer_record(step, kind, path, hints.get(kind, (None,) * 3),
                                                                 known)) is not None:
            found[(kind, step)] = record
    return sorted(found.values(), key=lambda r: (r.step, KINDS.index(r.kind)))


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a None in metrics.jsonl means "not a finite number"
    return value
