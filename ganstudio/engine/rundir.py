"""The run folder: config.toml, metrics.jsonl, events.jsonl, samples/ (grid PNGs and index.jsonl),
checkpoints/last.pt.

Everything the studio shows can be rebuilt from these files. RunDir alone knows the file names; others
ask it (``sample_path``, ``sample_index``). No torch here: the studio imports this on the GUI thread.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganstudio.config import RunConfig
from ganstudio.engine.events import RunEvent
from ganstudio.engine.sample_index import KINDS, RECONSTRUCTIONS, SAMPLES, SampleRecord, infer_record
from ganstudio.fileio import append_line, atomic_write, atomic_write_bytes
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
        self.events_path = self.path / "events.jsonl"  # pause, resume, live changes, rollbacks, single steps
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

    def temp_folders(self) -> tuple[Path, ...]:
        """Where this run's writes make temp files (see ``fileio.remove_stale_temps``)."""
        return self.path, self.samples_dir, self.checkpoints_dir

    def create(self) -> None:
        for folder in (self.path, self.samples_dir, self.checkpoints_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: RunConfig) -> None:
        config.save(self.config_path)

    def append_metrics(self, row: dict) -> None:
        """One row; on a full disk a WriteError naming metrics.jsonl, and the file is as it was."""
        append_line(self.metrics_path, json.dumps({k: _json_value(v) for k, v in row.items()}))

    def append_event(self, event: RunEvent) -> None:
        """One event row (append + a whole line per write, like metrics.jsonl, so a crash tears one line
        at most); a full disk raises a WriteError naming events.jsonl."""
        append_line(self.events_path, json.dumps(event.to_json()))

    def read_events(self) -> list[RunEvent]:
        """The run's events in file order; a torn or damaged line is skipped, never fatal."""
        try:
            data = self.events_path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return []
        events = []
        for line in data.splitlines():
            try:
                events.append(RunEvent.from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        return events

    def read_metrics(self) -> Rows:
        """The logged rows, in file order. A torn last line (a writer mid-write, or a crash) is ignored;
        damaged rows (not JSON, not UTF-8, no whole-number ``step``, a value that is not a number) are
        skipped and counted in the result's ``skipped``, so one bad line never hides a run's history."""
        rows = Rows()
        for raw, row in _metric_lines(self.metrics_path):
            if row is not None:
                rows.append(row)
            elif raw.endswith(b"\n"):
                rows.skipped += 1
        return rows

    def rewind(self, step: int) -> Rewound | None:
        """Resuming from a checkpoint at ``step``: move what was logged after it aside, never delete it.

        Metrics rows past ``step`` go to ``metrics.rewound-N.jsonl`` and grids past it (with their index
        rows) to ``samples/rewound-N/``, so the resumed run's history is not mixed with the abandoned one
        and a grid of the same step is not overwritten. Damaged lines stay where they are. None when
        nothing lay past ``step``.
        """
        lines = list(_metric_lines(self.metrics_path))
        later = [raw for raw, row in lines if row is not None and row["step"] > step]
        grids = [(path, n) for path, n in self._grid_files() if n > step]
        events = self.events_path.read_bytes().splitlines(keepends=True) if self.events_path.is_file() else []
        later_events = [line for line in events if (_index_step(line) or 0) > step]
        if not later and not grids and not later_events:
            return None
        n = 1
        while (self._rewound_metrics(n).exists() or (self.samples_dir / f"rewound-{n}").exists()
               or self._rewound_events(n).exists()):
            n += 1
        moved = Rewound(step, len(later), len(grids), self._rewound_metrics(n), self.samples_dir / f"rewound-{n}",
                        len(later_events), self._rewound_events(n))
        if later_events:  # the abandoned stretch's pauses and changes would mark steps the run no longer has
            atomic_write_bytes(moved.events_file, b"".join(_whole(line) for line in later_events))
            atomic_write_bytes(self.events_path, b"".join(line for line in events if (_index_step(line) or 0) <= step))
        if later:  # the copy first: a crash between the two writes leaves rows twice, never nowhere
            atomic_write_bytes(moved.metrics, b"".join(_whole(raw) for raw in later))
            kept = b"".join(raw for raw, row in lines if row is None or row["step"] <= step)
            atomic_write_bytes(self.metrics_path, kept)
        if grids:
            self._move_grids(step, grids, moved.samples)
        return moved

    def _rewound_metrics(self, n: int) -> Path:
        return self.path / f"metrics.rewound-{n}.jsonl"

    def _rewound_events(self, n: int) -> Path:
        return self.path / f"events.rewound-{n}.jsonl"

    def _grid_files(self) -> list[tuple[Path, int]]:
        if not self.samples_dir.is_dir():
            return []
        found = []
        for path in self.samples_dir.iterdir():
            match = _FILE_NAME.match(path.name)
            if match is not None and path.is_file():
                found.append((path, int(match.group(2))))
        return found

    def _move_grids(self, step: int, grids: list[tuple[Path, int]], folder: Path) -> None:
        folder.mkdir()
        index = self.samples_dir / INDEX_FILE
        lines = index.read_bytes().splitlines(keepends=True) if index.is_file() else []
        later = [line for line in lines if (_index_step(line) or 0) > step]
        if later:
            atomic_write_bytes(folder / INDEX_FILE, b"".join(_whole(line) for line in later))
        for path, _ in grids:
            os.replace(path, folder / path.name)
        if later:
            atomic_write_bytes(index, b"".join(line for line in lines if (_index_step(line) or 0) <= step))

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
        # After the PNG, so a row always names a whole file (see fileio.append_line for readers).
        append_line(self.samples_dir / INDEX_FILE, json.dumps(record.to_row()))


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
    try:
        lines = index.read_bytes().splitlines() if index.is_file() else []
    except OSError:
        lines = []  # unreadable: every grid's layout is read back from its pixels below
    for line in lines:
        try:  # bytes: json.loads rejects a line that is not UTF-8 with a ValueError, like any damage
            record = SampleRecord.from_row(json.loads(line), folder)
        except (KeyError, TypeError, ValueError, AttributeError):
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


class Rows(list):
    """metrics.jsonl's good rows; ``skipped``: how many damaged rows were left out."""

    skipped: int = 0


@dataclass(frozen=True)
class Rewound:
    """What ``RunDir.rewind`` moved aside: rows and grids logged after ``step``, and where they went."""

    step: int
    rows: int
    grids: int
    metrics: Path   # metrics.rewound-N.jsonl
    samples: Path   # samples/rewound-N/
    events: int = 0
    events_file: Path | None = None  # events.rewound-N.jsonl

    def __str__(self) -> str:
        parts = [f"{self.rows} metric rows to {self.metrics.name}"] if self.rows else []
        parts += [f"{self.grids} sample grids to samples/{self.samples.name}/"] if self.grids else []
        parts += [f"{self.events} events to {self.events_file.name}"] if self.events else []
        return (f"resuming from the checkpoint at step {self.step}: what was logged after it is kept, moved "
                f"aside ({' and '.join(parts)})")


def _metric_lines(path: Path) -> Iterator[tuple[bytes, dict | None]]:
    """Each line of metrics.jsonl as (its raw bytes, the row or None when damaged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for raw in data.splitlines(keepends=True):
        yield raw, _metric_row(raw)


def _metric_row(raw: bytes) -> dict | None:
    try:
        row = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(row, dict) or not _is_count(row.get("step")):
        return None
    if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in row.values()):
        return None
    return row


def _index_step(line: bytes) -> int | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return step if _is_count(step) else None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _whole(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a None in metrics.jsonl means "not a finite number"
    return value
