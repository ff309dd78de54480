"""A run's state on disk: ``status.json`` in its folder, written atomically by the one process that writes
the run, read by anyone (the runs dock, a window following the run, the queue, ``ganstudio queue list``).

The writer records what it knows: starting, running, paused, finished, stopped or failed, with its step,
pid, host and times. A writer that dies cannot record that it died, so readers decide "crashed" from the
run's lock (engine/lock.py): a status that says running or paused while nobody holds ``run.lock`` belongs
to a dead writer. No torch here: listing 500 runs must not wait for it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

from ganstudio.engine.lock import writer_alive
from ganstudio.fileio import atomic_write_bytes

STATUS_FILE = "status.json"
LOG_FILE = "log.jsonl"  # the run's warnings and its end, one JSON object a line: what a follower shows

State = Literal["starting", "running", "paused", "finished", "stopped", "failed", "crashed"]
LIVE: frozenset[str] = frozenset({"starting", "running", "paused"})  # a writer should be holding the lock
STATES: tuple[str, ...] = ("starting", "running", "paused", "finished", "stopped", "failed", "crashed")


@dataclass(frozen=True)
class RunStatus:
    state: State
    step: int = 0
    pid: int = 0
    host: str = ""
    started: float = 0.0  # Unix times: when this writer took the run, and when it last wrote
    updated: float = 0.0
    elapsed: float = 0.0  # training seconds over all sessions of the run
    message: str = ""     # the last thing worth saying: a failure's reason, why it stopped
    best: dict[str, float] = field(default_factory=dict)  # the primary metric's best value, e.g. {"fid": 24.3}
    device: str = ""      # where it trains, e.g. "cuda:0" or "cpu"

    @classmethod
    def now(cls, state: State, **values) -> RunStatus:
        """A status written by this process, now."""
        now = time.time()
        return cls(state, pid=os.getpid(), host=socket.gethostname(), started=values.pop("started", now),
                   updated=now, **values)

    def updated_to(self, **values) -> RunStatus:
        return replace(self, updated=time.time(), **values)


def write_status(folder: str | Path, status: RunStatus) -> None:
    """Atomically: a reader sees the old status or the new one, never half of one. Raises OSError (a full
    disk): the caller decides whether that is worth a warning."""
    atomic_write_bytes(Path(folder) / STATUS_FILE, (json.dumps(asdict(status)) + "\n").encode())


def read_status(folder: str | Path) -> tuple[RunStatus | None, str | None]:
    """(the status, a note when the file is there but unreadable). A run written before status.json
    existed has neither: (None, None). Garbage in the file is a note, never an exception."""
    path = Path(folder) / STATUS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"{path} could not be read ({type(err).__name__}: {err}); the run's state is unknown"
    try:
        return _from_json(raw), None
    except (TypeError, ValueError) as err:
        return None, f"{path} is not a run status ({err}); the run's state is unknown"


def effective_state(folder: str | Path, status: RunStatus | None) -> State | None:
    """The state to show: a live state whose writer no longer holds the run's lock is "crashed". A writer on
    another host is taken at its word (its lock cannot be checked from here)."""
    if status is None or status.state not in LIVE:
        return status.state if status else None
    if status.host and status.host != socket.gethostname():
        return status.state
    if writer_alive(folder):
        return status.state
    # the writer may have written its end and let go of the lock since ``status`` was read: read it again
    again, _ = read_status(folder)
    return again.state if again is not None and again.state not in LIVE else "crashed"


def _from_json(raw) -> RunStatus:
    if not isinstance(raw, dict):
        raise TypeError(f"expected a JSON object, not {type(raw).__name__}")
    if raw.get("state") not in STATES:
        raise ValueError(f"unknown state {raw.get('state')!r}")
    known = {f.name: f.type for f in fields(RunStatus)}
    values = {k: v for k, v in raw.items() if k in known}
    for name in ("step", "pid"):
        if not isinstance(values.get(name, 0), int) or isinstance(values.get(name), bool):
            raise ValueError(f"{name} is {values[name]!r}, not a whole number")
    for name in ("started", "updated", "elapsed"):
        if not isinstance(values.get(name, 0.0), int | float) or isinstance(values.get(name), bool):
            raise ValueError(f"{name} is {values[name]!r}, not a number")
    for name in ("host", "message", "device"):
        if not isinstance(values.get(name, ""), str):
            raise ValueError(f"{name} is {values[name]!r}, not text")
    best = values.get("best", {})
    if not isinstance(best, dict) or not all(isinstance(k, str) and isinstance(v, int | float) and
                                             not isinstance(v, bool) for k, v in best.items()):
        raise ValueError(f"best is {best!r}, not a table of numbers")
    return RunStatus(**values)
