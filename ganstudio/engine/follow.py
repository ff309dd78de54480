"""Following a run folder that another process writes: what is new since the last look.

``RunFollower(folder).poll()`` returns the metrics rows, grids, events and warnings appended since the
previous poll, and the run's status when it changed. It reads each append-only file from the byte offset
where it stopped, so a poll costs a few ``stat`` calls when nothing changed; a torn last line (a writer
mid-append) is left for the next poll. A file that shrank or was replaced (a resume moved later rows
aside) starts over, and the poll says ``reset`` so the viewer rebuilds from what it returns.

The first poll returns the whole history. No torch and no Qt: the studio polls on its GUI thread and
``ganstudio queue`` in its own process, and the writer may be on another machine (a shared folder).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganstudio.engine.events import RunEvent, Samples
from ganstudio.engine.rundir import INDEX_FILE, RunDir, _metric_row, read_sample_index
from ganstudio.engine.sample_index import RECONSTRUCTIONS, SAMPLES, SampleRecord
from ganstudio.engine.status import LIVE, LOG_FILE, STATUS_FILE, RunStatus, effective_state, read_status
from ganstudio.grids import read_grid

LOCK_CHECK_INTERVAL = 1.0  # seconds between checks that a live run's writer still holds its lock


@dataclass
class FollowUpdate:
    """What one poll found. ``reset``: the history was rewritten, so ``rows``/``events`` are all of it."""

    rows: list[dict] = field(default_factory=list)
    grids: list[SampleRecord] = field(default_factory=list)  # by step, samples before reconstructions
    events: list[RunEvent] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)  # log.jsonl rows: {"step", "kind", "message", "time"}
    status: RunStatus | None = None  # when status.json changed
    state: str | None = None         # the effective state, when it changed ("crashed" for a dead writer)
    notes: list[str] = field(default_factory=list)  # what could not be read, in words
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.rows or self.grids or self.events or self.log or self.status or self.state or self.notes
                    or self.reset)


class _Tail:
    """An append-only file read from where the last read stopped; whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.inode = path, 0, None

    def read(self) -> tuple[list[bytes], bool]:
        """(new whole lines, whether the file was replaced or cut back: then they are all of it)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return [], False
        reset = self.inode is not None and (stat.st_ino != self.inode or stat.st_size < self.offset)
        if reset:
            self.offset = 0
        self.inode = stat.st_ino
        if stat.st_size == self.offset:
            return [], reset
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(stat.st_size - self.offset)
        except OSError:
            return [], reset
        whole = data[:data.rfind(b"\n") + 1]
        self.offset += len(whole)
        return whole.splitlines(), reset

    def reread(self) -> list[bytes]:
        """Every whole line, from the start."""
        self.offset = 0
        return self.read()[0]


class RunFollower:
    def __init__(self, folder: str | Path) -> None:
        self.run = RunDir(folder)
        self.folder = self.run.path
        self.metrics = _Tail(self.run.metrics_path)
        self.events = _Tail(self.run.events_path)
        self.index = _Tail(self.run.samples_dir / INDEX_FILE)
        self.log = _Tail(self.folder / LOG_FILE)
        self.seen: set[tuple[str, int]] = set()  # grids already returned, by (kind, step)
        self.status: RunStatus | None = None
        self.state: str | None = None
        self._status_key = None
        self._said: set[str] = set()
        self._next_lock_check = 0.0
        self.skipped = 0  # damaged metrics rows so far
        self.first = True

    def poll(self) -> FollowUpdate:
        update = FollowUpdate()
        (rows, reset_rows), (events, reset_events) = self.metrics.read(), self.events.read()
        if reset_rows or reset_events:  # a resume moved later lines aside: rebuild from both files whole
            update.reset = True
            rows = rows if reset_rows else self.metrics.reread()
            events = events if reset_events else self.events.reread()
        self._parse_rows(rows, update)
        for raw in events:
            try:
                update.events.append(RunEvent.from_json(json.loads(raw)))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        self._poll_grids(update)
        for raw in self.log.read()[0]:
            row = _json(raw)
            if isinstance(row, dict) and isinstance(row.get("message"), str):
                update.log.append(row)
        self._poll_status(update)
        self.first = False
        return update

    def _parse_rows(self, lines: list[bytes], update: FollowUpdate) -> None:
        skipped = 0
        for raw in lines:
            row = _metric_row(raw)
            if row is None:
                skipped += 1
            else:
                update.rows.append(row)
        if skipped:
            self.skipped += skipped
            update.notes.append(f"{self.run.metrics_path}: {skipped} damaged rows skipped (left in the file)")

    def _poll_grids(self, update: FollowUpdate) -> None:
        lines, reset = self.index.read()
        if self.first or reset or update.reset:
            # the whole index (grids from before index.jsonl too); lines read above are in it
            if reset or update.reset:
                self.seen.clear()
            records = read_sample_index(self.run.samples_dir)
        else:
            records = []
            for raw in lines:
                try:
                    record = SampleRecord.from_row(json.loads(raw), self.run.samples_dir)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue
                if record.path.is_file():  # the PNG is written before its row: gone means deleted since
                    records.append(record)
        for record in records:
            key = (record.kind, record.step)
            if update.reset or key not in self.seen:
                self.seen.add(key)
                update.grids.append(record)
        update.grids.sort(key=lambda r: (r.step, r.kind != SAMPLES))

    def _poll_status(self, update: FollowUpdate) -> None:
        path = self.folder / STATUS_FILE
        try:
            stat = os.stat(path)
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        now = time.monotonic()
        if key != self._status_key:
            self._status_key = key
            status, note = read_status(self.folder)
            if note and note not in self._said:
                self._said.add(note)
                update.notes.append(note)
            if status is not None and status != self.status:
                self.status = update.status = status
            self._next_lock_check = 0.0  # a new status: look at its writer now
        if self.status is not None and (self.status.state not in LIVE or now >= self._next_lock_check):
            self._next_lock_check = now + LOCK_CHECK_INTERVAL
            state = effective_state(self.folder, self.status)
            if state != self.state:
                self.state = update.state = state


def load_samples(grid: SampleRecord, pairs: SampleRecord | None = None) -> Samples:
    """A grid (and its reconstructions) read back from its PNG as a ``Samples`` event, images uint8 (N, H, W, C)
    cut out of the grid: what the studio shows for a grid a live worker made. OSError when a file is gone."""
    return Samples(grid.step, _images(grid), grid.path, grid.columns,
                   _images(pairs) if pairs else None, pairs.path if pairs else None, grid.row_classes)


def pair_up(grids: list[SampleRecord]) -> list[tuple[SampleRecord, SampleRecord | None]]:
    """Each sample grid with the reconstructions of its step, when there are some."""
    recons = {r.step: r for r in grids if r.kind == RECONSTRUCTIONS}
    return [(r, recons.get(r.step)) for r in grids if r.kind == SAMPLES]


def _images(record: SampleRecord) -> np.ndarray:
    grid = read_grid(record.path)
    geometry = record.geometry()
    images = np.stack([geometry.crop(grid, i) for i in range(record.count)])
    return np.ascontiguousarray(images[..., :1] if record.channels == 1 else images)


def _json(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None
