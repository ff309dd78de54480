"""The runs index: one summary per run folder under some roots, for the runs dock and ``queue list``.

A run folder is any folder with a ``config.toml``, directly under a root or one level further down (a
folder of runs inside the runs folder). A summary is read from small files only: config.toml (tomllib,
not the pydantic model: a config from a newer version still lists), status.json, the last line of
metrics.jsonl and of samples/index.jsonl. Only a run without a recorded best score has its metrics
searched, and then as bytes (a line is parsed only when it names the primary metric).

``RunIndex`` keeps each summary with the sizes and mtimes of the files it came from, so listing again
(the dock does it every second) costs a few ``stat`` calls per run; a metrics file that only grew is read
from where the last look stopped. Nothing here imports torch, and nothing raises for a damaged run: what
could not be read becomes a note on its summary.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ganstudio.engine.rundir import INDEX_FILE, RunDir
from ganstudio.engine.status import LIVE, STATUS_FILE, RunStatus, effective_state, read_status
from ganstudio.families import FAMILIES

_TAIL = 16_384  # bytes read from the end of a log to find its last whole line (rows are ~300 bytes)
_WATCHED = tuple(os.path.relpath(p, "run") for p in (  # the files a summary comes from, relative to the run
    RunDir("run").config_path, Path("run", STATUS_FILE), RunDir("run").metrics_path,
    RunDir("run").samples_dir / INDEX_FILE, RunDir("run").last_checkpoint))
_DEFAULTS = {"family": "gan", "arch": "dcgan", "source": "bundled", "image_size": 28}  # RunConfig's defaults



def default_runs_root() -> Path:
    """Where the studio and the queue keep runs: GANSTUDIO_RUNS, else the user's data folder."""
    if os.environ.get("GANSTUDIO_RUNS"):
        return Path(os.environ["GANSTUDIO_RUNS"])
    import platformdirs

    return Path(platformdirs.user_data_dir("ganstudio")) / "runs"

@dataclass(frozen=True)
class RunSummary:
    """What the runs dock shows of one run folder. ``state`` is what to show: a status.json state (with
    "crashed" for a dead writer), else inferred from the files ("finished", "stopped"), else "unknown"."""

    path: Path
    name: str                       # the folder's name (Rename renames the folder)
    family: str | None
    arch: str | None
    dataset: str                    # "bundled", "torchvision:cifar10", "folder: /data/faces"
    image_size: int | None
    state: str
    step: int = 0
    elapsed: float | None = None    # training seconds over all sessions; None when nothing says
    metric: str | None = None       # the family's primary metric ("fid", "recon_mse"); lower is better
    best: float | None = None       # its best value so far; None before the first evaluation
    last_grid: Path | None = None   # the newest grid PNG, for the thumbnail
    modified: float = 0.0           # the newest mtime among the files read (Unix time)
    message: str = ""               # status.json's last word: why it failed or stopped
    notes: tuple[str, ...] = ()     # what could not be read, for a person

    @property
    def live(self) -> bool:
        """Whether a writer works on it now (running, paused or starting)."""
        return self.state in LIVE


@dataclass
class _Scan:
    """How far metrics.jsonl has been read, so a file that grew is read only from there."""

    key: tuple = ()
    offset: int = 0                 # just past the last whole line read
    best: float | None = None
    step: int | None = None         # of the last good row
    elapsed: float | None = None    # the last ``wall_time`` logged (eval rows have none)
    torn: bool = False              # the file ends with a line that has no newline yet

    def reset(self, key: tuple = ()) -> None:
        self.key, self.offset, self.best, self.step, self.elapsed, self.torn = key, 0, None, None, None, False


@dataclass
class _Entry:
    signature: tuple
    summary: RunSummary
    status: RunStatus | None        # as read with the summary: a live one is checked against the lock
    scan: _Scan = field(default_factory=_Scan)


class RunIndex:
    """Summaries of the runs under some roots, cached by the files' sizes and mtimes between calls."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    def list(self, roots: Iterable[str | Path]) -> list[RunSummary]:
        """Every run under ``roots`` (a root that is missing or unreadable gives none), each once, in
        the order found. A live state is checked against the run's lock on every call: a writer that
        dies changes no file."""
        found, seen = [], set()
        for folder in _run_folders(roots):
            if folder in seen:
                continue
            seen.add(folder)
            found.append(self.summary(folder))
        for gone in self._entries.keys() - seen:
            del self._entries[gone]
        return found

    def summary(self, folder: Path) -> RunSummary:
        signature = _signature(folder)
        entry = self._entries.get(folder)
        if entry is None or entry.signature != signature:
            scan = entry.scan if entry is not None else _Scan()
            status, note = read_status(folder)
            entry = _Entry(signature, _summarise(folder, signature, status, note, scan), status, scan)
            self._entries[folder] = entry
        summary = entry.summary
        if entry.status is not None and entry.status.state in LIVE:  # only the lock says its writer died
            state = effective_state(folder, entry.status) or summary.state
            if state != summary.state:
                summary = replace(summary, state=state)
        return summary


_default_index = RunIndex()


def list_runs(roots: Iterable[str | Path]) -> list[RunSummary]:
    """Every run under ``roots``; see :class:`RunIndex` (this uses one shared index, so calling again is
    cheap)."""
    return _default_index.list(roots)


def is_run_folder(folder: str | Path) -> bool:
    return os.path.isfile(os.path.join(folder, _WATCHED[0]))


# --- finding run folders ---------------------------------------------------------------------------
def _run_folders(roots: Iterable[str | Path]) -> Iterable[Path]:
    for root in roots:
        root = Path(root)
        for entry in _subfolders(root):
            if is_run_folder(entry):
                yield Path(entry)
            else:  # a folder of runs (one level): its own sub-folders are not searched further
                yield from (Path(sub) for sub in _subfolders(entry) if is_run_folder(sub))


def _subfolders(folder: str | Path) -> list[str]:
    """Plain strings, not Paths: the dock lists 500 runs every second, and Path objects cost more than the
    stat calls."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.path for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=True))
    except OSError:
        return []


# --- one run -------------------------------------------------------------------------------------------
def _stat(path: str | Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino  # the inode: a file replaced whole (a rewind) starts over


def _signature(folder: Path) -> tuple:
    """(config, status, metrics, sample index, last checkpoint): each (size, mtime, inode) or None."""
    base = str(folder)
    return tuple(_stat(os.path.join(base, name)) for name in _WATCHED)


def _summarise(folder: Path, signature: tuple, status: RunStatus | None, status_note: str | None,
               scan: _Scan) -> RunSummary:
    run = RunDir(folder)
    notes: list[str] = [status_note] if status_note else []
    config = _read_config(run.config_path, notes)
    defaults = _DEFAULTS if config else {}  # an unreadable config says nothing, not "a default GAN"
    model, data = _table(config, "model"), _table(config, "data")
    family = model.get("family", defaults.get("family"))
    family = family if isinstance(family, str) else None
    metric = FAMILIES[family].primary_metric if family in FAMILIES else None
    live = status is not None and status.state in LIVE
    recorded = status is not None and metric in status.best  # else the metrics are searched for it
    _scan_metrics(run.metrics_path, signature[2], None if recorded else metric, scan)
    if scan.torn and not live:  # a live writer may be mid-line; a stopped one left a torn line behind
        notes.append(f"{run.metrics_path.name} ends with a torn line (left out)")
    if status is not None:
        state, step, elapsed = effective_state(folder, status) or status.state, status.step, status.elapsed
        best = status.best[metric] if recorded else scan.best
    else:
        step, elapsed, best = scan.step or 0, scan.elapsed, scan.best
        state = _inferred_state(config, step, signature[4] is not None, scan.step is not None)
    grid = _last_grid(run, notes)
    return RunSummary(
        path=folder, name=folder.name, family=family, arch=_text(model.get("arch", defaults.get("arch"))),
        dataset=_dataset(data, defaults), image_size=_whole(data.get("image_size", defaults.get("image_size"))),
        state=state,
        step=step if isinstance(step, int) else 0, elapsed=elapsed if isinstance(elapsed, int | float) else None,
        metric=metric, best=best, last_grid=grid, message=status.message if status is not None else "",
        modified=max((s[1] for s in signature if s is not None), default=0) / 1e9, notes=tuple(notes))


def _read_config(path: Path, notes: list[str]) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        notes.append(f"config.toml could not be read ({type(err).__name__}: {err})")
        return {}


def _table(config: dict, name: str) -> dict:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dataset(data: dict, defaults: dict) -> str:
    source = _text(data.get("source", defaults.get("source"))) or "?"
    path = _text(data.get("path")) or _text(data.get("import_from"))
    return f"{source}: {path}" if source == "folder" and path else source


def _inferred_state(config: dict, step: int, has_checkpoint: bool, logged: bool) -> str:
    """A run from before status.json: finished when it reached its step budget, stopped when it left a
    checkpoint or logged rows (it may also have crashed: nothing on disk tells those apart)."""
    steps = _table(config, "train").get("steps")
    if isinstance(steps, int) and step >= steps > 0:
        return "finished"
    return "stopped" if has_checkpoint or logged else "unknown"


# --- metrics.jsonl: the last row, and the best primary metric --------------------------------------------
def _scan_metrics(path: Path, stat: tuple[int, int, int] | None, metric: str | None, scan: _Scan) -> None:
    """Bring ``scan`` up to date with ``path``. With ``metric`` every new line that names it is parsed
    (found by a byte search, so the other rows cost nothing); without, only the last whole line is."""
    key = (metric, stat[2] if stat else None)
    if stat is None:
        scan.reset()
        return
    size = stat[0]
    if scan.key != key or size < scan.offset:  # another metric wanted, or the file was replaced (a rewind)
        scan.reset(key)
    try:
        with open(path, "rb") as f:
            if metric is None:  # only the tail
                f.seek(max(scan.offset, size - _TAIL))
            else:
                f.seek(scan.offset)
            start = f.tell()
            data = f.read(size - start)
    except OSError:
        return
    end = data.rfind(b"\n") + 1
    scan.torn = end < len(data)
    whole = data[:end]
    if metric is not None:
        _best_in(whole, metric.encode(), scan)
    step = None
    for raw in reversed(whole.splitlines()):
        row = _row(raw)
        if row is None:
            continue
        step = row["step"] if step is None else step
        wall_time = row.get("wall_time")
        if isinstance(wall_time, int | float) and not isinstance(wall_time, bool):
            scan.elapsed = wall_time
            break
    scan.step = step if step is not None else scan.step
    scan.offset = start + end


def _best_in(data: bytes, metric: bytes, scan: _Scan) -> None:
    needle = b'"' + metric + b'"'
    at = data.find(needle)
    while at >= 0:
        begin = data.rfind(b"\n", 0, at) + 1
        stop = data.find(b"\n", at)
        row = _row(data[begin:stop if stop >= 0 else len(data)])
        value = row.get(metric.decode()) if row else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            scan.best = value if scan.best is None else min(scan.best, value)
        if stop < 0:
            break
        at = data.find(needle, stop)


def _row(raw: bytes) -> dict | None:
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return row if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


# --- samples/index.jsonl: the newest grid ----------------------------------------------------------------
def _last_grid(run: RunDir, notes: list[str]) -> Path | None:
    """The grid named by the index's last good row, read from the end; a run from before the index: its
    newest PNG by name. A missing file is a note, never an error."""
    index = run.samples_dir / INDEX_FILE
    try:
        with open(index, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            lines = f.read().splitlines()
    except FileNotFoundError:
        return _newest_png(run.samples_dir)
    except OSError as err:
        notes.append(f"samples/{INDEX_FILE} could not be read ({err.strerror or err})")
        return None
    for raw in reversed(lines):
        try:
            row = json.loads(raw)
            name = row["file"]
        except (ValueError, TypeError, KeyError):
            continue
        if not isinstance(name, str) or Path(name).name != name:
            continue
        grid = run.samples_dir / name
        if grid.is_file():
            return grid
        notes.append(f"the last sample grid (samples/{name}) is missing")
        return None
    return None


def _newest_png(samples: Path) -> Path | None:
    try:
        with os.scandir(samples) as entries:
            names = [e.name for e in entries if e.name.endswith(".png") and e.name.startswith("step_")]
    except OSError:
        return None
    return samples / max(names) if names else None
