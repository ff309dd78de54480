"""The queue file: ``queue.json`` in the runs folder, its jobs, its locks, and sweeps.

Each job is the arguments of a ``ganstudio train`` command, with its state (queued, running, finished,
failed, crashed, stopped), run folder, pid, exit code, times, log file and, when it failed, the log's last
lines. The runner (runner.py) changes states; the CLI and the studio add and remove jobs.

Two locks, both flocks the kernel drops when their holder dies (kill -9 included):
``queue.lock`` is held by the runner for as long as it runs, so two runners never run at once and a window
can tell whether a queue is running; ``queue.edit.lock`` is held for the moment of one read-change-write of
``queue.json``, so the runner marking a job and a window adding one never lose each other's change.
Standard library only: the studio reads this on its GUI thread, and ``queue list`` must not wait for torch.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ganstudio.fileio import atomic_write_bytes

try:
    import fcntl
except ImportError:  # Windows: no flock; the runner's pid in queue.json is all there is
    fcntl = None

QUEUE_FILE, RUNNER_LOCK, EDIT_LOCK, LOGS = "queue.json", "queue.lock", "queue.edit.lock", "queue-logs"
STATES = ("queued", "running", "finished", "failed", "crashed", "stopped")
DONE = frozenset({"finished", "failed", "crashed", "stopped"})
TAIL_LINES = 20  # of a failed job's log, kept in queue.json and printed: usually the traceback's end




class QueueError(RuntimeError):
    """A queue operation that cannot be done (a second runner, removing a running job); says why."""


@dataclass
class Job:
    id: int
    args: list[str]             # `ganstudio train` arguments, paths made absolute when added
    name: str = ""
    state: str = "queued"
    run_dir: str = ""           # chosen when the job starts, unless the args name one
    pid: int = 0                # the child's, while it runs
    exit_code: int | None = None
    added: float = 0.0          # Unix times
    started: float = 0.0
    ended: float = 0.0
    log: str = ""               # queue-logs/<id>.log: the child's stdout and stderr
    tail: list[str] = field(default_factory=list)  # the log's last lines, for a failed or crashed job
    message: str = ""

    def describe(self) -> str:
        what = self.name or " ".join(self.args) or "(defaults)"
        return f"job {self.id} ({what})"


@dataclass
class QueueFile:
    jobs: list[Job] = field(default_factory=list)
    next_id: int = 1
    runner: dict = field(default_factory=dict)  # pid, host, started of the runner working on it; {} when none

    def job(self, job_id: int) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise QueueError(f"no job {job_id} in the queue (see `ganstudio queue list`)")

    def to_json(self) -> str:
        return json.dumps({"next_id": self.next_id, "runner": self.runner,
                           "jobs": [asdict(job) for job in self.jobs]}, indent=1) + "\n"


class JobQueue:
    """The queue of one runs folder. Every read and change goes through here."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / QUEUE_FILE
        self.logs = self.root / LOGS
        self.notes: list[str] = []  # what was set aside on the way: shown once by the caller

    # --- reading and changing -----------------------------------------------------------------------------
    def read(self) -> QueueFile:
        with self.edit() as queue:
            return queue

    @contextmanager
    def edit(self) -> Iterator[QueueFile]:
        """Read queue.json under the edit lock, yield it, write it back if it changed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / EDIT_LOCK, wait=10.0):
            queue, before = self._load()
            yield queue
            after = queue.to_json()
            if after != before:
                atomic_write_bytes(self.path, after.encode())

    def _load(self) -> tuple[QueueFile, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return QueueFile(), ""
        except (OSError, ValueError) as err:
            return self._set_aside(err), ""
        try:
            return _from_json(json.loads(text)), text
        except (TypeError, ValueError, KeyError) as err:
            return self._set_aside(err), ""

    def _set_aside(self, err: Exception) -> QueueFile:
        """A queue file nobody can read blocks nothing: it is kept for a person to look at, and a new one
        starts. (Writes are atomic, so this is damage from outside, never a half-written file.)"""
        n = 1
        while (aside := self.path.with_name(f"{QUEUE_FILE}.unreadable-{n}")).exists():
            n += 1
        os.replace(self.path, aside)
        self.notes.append(f"{self.path} could not be read ({type(err).__name__}: {err}); it was renamed to "
                          f"{aside.name} and an empty queue started")
        return QueueFile()

    def add(self, args: list[str], name: str = "") -> Job:
        with self.edit() as queue:
            job = Job(queue.next_id, list(args), name, added=time.time())
            queue.next_id += 1
            queue.jobs.append(job)
        return job

    def remove(self, job_id: int) -> Job:
        with self.edit() as queue:
            job = queue.job(job_id)
            if job.state == "running":
                raise QueueError(f"{job.describe()} is running; stop the queue first (it stops the job, then "
                                 "the job can be removed)")
            queue.jobs.remove(job)
        return job

    def runner_pid(self) -> int:
        """The pid of the runner working on this queue now; 0 when none runs."""
        if not runner_alive(self.root):
            return 0
        runner = self.read().runner
        return int(runner.get("pid", 0)) if runner.get("host") in (None, socket.gethostname()) else 0

    def stop_runner(self, signum: int = signal.SIGTERM) -> bool:
        """Ask the running runner to stop: it stops its job (which saves a checkpoint) and leaves the rest
        queued. False when no runner was running."""
        pid = self.runner_pid()
        if not pid:
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True


def runner_alive(root: str | Path) -> bool:
    """Whether a ``queue run`` holds this runs folder's queue now (a check that takes nothing)."""
    path = Path(root) / RUNNER_LOCK
    if fcntl is None:
        pid = JobQueue(root).read().runner.get("pid", 0)
        return bool(pid) and _pid_alive(pid)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two windows checking at once both succeed
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(path: Path, wait: float) -> Iterator[None]:
    """An exclusive flock on ``path``; waits up to ``wait`` seconds, then raises QueueError."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise QueueError(f"{path} is held by another process") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # drops the flock


def _from_json(raw) -> QueueFile:
    if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list):
        raise ValueError("expected a JSON object with a list of jobs")
    known = {f.name for f in fields(Job)}
    jobs = []
    for item in raw["jobs"]:
        if not isinstance(item, dict):
            raise TypeError(f"a job is {type(item).__name__}, not an object")
        job = Job(**{k: v for k, v in item.items() if k in known})
        if not isinstance(job.id, int) or not isinstance(job.args, list) or job.state not in STATES:
            raise ValueError(f"job {item.get('id')!r} has a bad id, arguments or state {job.state!r}")
        jobs.append(job)
    next_id = raw.get("next_id", 1)
    if not isinstance(next_id, int):
        raise ValueError(f"next_id is {next_id!r}, not a whole number")
    runner = raw.get("runner") or {}
    if not isinstance(runner, dict):
        raise ValueError(f"runner is {runner!r}, not an object")
    return QueueFile(jobs, max([next_id, *(job.id + 1 for job in jobs)]), runner)


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


# --- sweeps -------------------------------------------------------------------------------------------------
def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``optim.lr_g=1e-4,2e-4`` -> ("optim.lr_g", ["1e-4", "2e-4"]). Commas inside brackets or quotes belong
    to a value (``model.channels=[1,2],[3,4]`` is two values)."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"a sweep is KEY=V1,V2,..., e.g. optim.lr_g=1e-4,2e-4; got {text!r}")
    parts = [part.strip() for part in _split_top_level(values)]
    if not parts or any(not part for part in parts):
        raise ValueError(f"sweep {key.strip()!r} needs values separated by commas, got {values!r}")
    return key.strip(), parts


def sweep_jobs(sweeps: list[tuple[str, list[str]]], name: str = "") -> list[tuple[list[str], str]]:
    """Every combination of the sweeps' values: (extra train arguments, job name), the first key slowest."""
    if len(sweeps) > 2:
        raise ValueError(f"a sweep varies one or two fields, got {len(sweeps)}")
    keys = [key for key, _ in sweeps]
    jobs = []
    for values in itertools.product(*(values for _, values in sweeps)):
        extra = [item for key, value in zip(keys, values, strict=True) for item in ("--set", f"{key}={value}")]
        label = " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in zip(keys, values, strict=True))
        jobs.append((extra, f"{name} {label}".strip()))
    return jobs


def _split_top_level(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
