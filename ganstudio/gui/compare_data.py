"""What the Compare view shows, read from run folders only: each run's config (flattened), its training
and evaluation rows, its grids and state; which config fields differ; final and best figures; and what
cannot be compared (a D loss in a VAE run). No Qt and no torch: comparing runs must not wait for either.

Runs still being written are followed by ``CompareRun.refresh``: metrics.jsonl is read from where the
last read stopped (a torn last line waits for its end), the sample index and status.json are re-read
only when they change. Nothing here writes to a run folder or takes its lock.
"""

from __future__ import annotations

import bisect
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganstudio.engine.rundir import RunDir, read_sample_index
from ganstudio.engine.sample_index import RECONSTRUCTIONS, SAMPLES, SampleRecord
from ganstudio.engine.status import LIVE, effective_state, read_status
from ganstudio.families import FAMILIES
from ganstudio.gui.plot_data import KEYS, Columns, rows_to_block

MAX_RUNS = 6
TIME = "wall_time"  # training seconds of the whole run, in every training row (engine StepStats)
# Evaluation figures: (key, label, lower is better). "recon" and "kl" are also training keys, so an
# evaluation series is named "eval:<key>" wherever it sits beside the training ones.
EVAL_KEYS = (
    ("fid", "FID", True), ("kid", "KID", True), ("is", "IS", False), ("precision", "precision", False),
    ("recall", "recall", False), ("density", "density", False), ("coverage", "coverage", False),
    ("recon_mse", "held-out reconstruction MSE", True), ("recon", "held-out reconstruction", True),
    ("kl", "held-out KL", True), ("elbo", "held-out ELBO", False),
)
EVAL_LABELS = {key: label for key, label, _ in EVAL_KEYS}
LOWER_IS_BETTER = {key for key, _, lower in EVAL_KEYS if lower}
SKIPPED_FIELDS = ("name",)  # the run's name heads its column; it is not a difference between runs


def eval_id(key: str) -> str:
    return f"eval:{key}"


class MetricsTail:
    """metrics.jsonl read from where the last read stopped. A partial last line (a writer mid-write, or a
    crash) is left for the next read; ``torn`` says one is there now, ``skipped`` counts damaged lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.skipped = 0
        self.torn = False
        self._size = -1

    def read_new(self) -> tuple[list[dict], bool]:
        """(the rows added since the last read, whether the file was rewritten and all rows are new)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return [], False
        reset = size < self.offset  # a resume moved rows aside (RunDir.rewind): read it again from the top
        if reset:
            self.offset, self.skipped = 0, 0
        if size == self._size and not reset:
            return [], False
        self._size = size
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:
            return [], reset
        end = data.rfind(b"\n") + 1
        self.torn = end < len(data)
        self.offset += end
        rows = []
        for line in data[:end].splitlines():
            row = _metric_row(line)
            if row is None:
                self.skipped += 1 if line.strip() else 0
            else:
                rows.append(row)
        return rows, reset


def _metric_row(line: bytes) -> dict | None:
    """The same rule as RunDir.read_metrics: a JSON object with a whole-number step and numbers (or None)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    step = row.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return None
    if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in row.values()):
        return None
    return row


@dataclass
class CompareRun:
    """One run folder as the Compare view reads it; ``refresh`` picks up what a live writer added."""

    folder: Path
    name: str
    flat: dict = field(default_factory=dict)  # dotted config field -> value, as in config.toml
    family: str | None = None
    image_size: int | None = None
    evals: list[dict] = field(default_factory=list)
    grids: list[SampleRecord] = field(default_factory=list)
    state: str | None = None
    config_note: str | None = None
    status_note: str | None = None

    def __post_init__(self) -> None:
        self.train = Columns(("step", TIME, *KEYS), capacity=256)
        self._tail = MetricsTail(RunDir(self.folder).metrics_path)
        self._index_stamp: tuple | None = None
        self._status_stamp: tuple | None = None

    @classmethod
    def open(cls, folder: str | Path) -> CompareRun:
        """Read a run folder; damage of any kind becomes a note (``notes``), never an exception."""
        folder = Path(folder)
        run = cls(folder, folder.name)
        run._read_config()
        run.refresh()
        return run

    # --- reading ----------------------------------------------------------------------------------
    def _read_config(self) -> None:
        path = RunDir(self.folder).config_path
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.config_note = "no config.toml: its settings are unknown"
            return
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            self.config_note = f"config.toml could not be read ({err}): its settings are unknown"
            return
        try:
            from ganstudio.config import from_dict

            # validated, so fields the file leaves to their defaults compare like written ones
            data = from_dict(data, source=str(path)).model_dump(mode="json", exclude_none=True)
        except ValueError as err:  # pydantic's ValidationError, ConfigError and RuleError are ValueErrors
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            said = " ".join(lines[:2]) or type(err).__name__  # "invalid config:" and its first problem
            self.config_note = f"config.toml is not a valid config ({said}); compared as written"
        self.flat = flatten(data)
        family = self.flat.get("model.family", "gan")
        self.family = family if family in FAMILIES else None
        size = self.flat.get("data.image_size")
        self.image_size = size if isinstance(size, int) else None

    def refresh(self) -> bool:
        """Read what was added since the last call; whether anything changed."""
        changed = self._read_metrics()
        changed |= self._read_grids()
        changed |= self._read_status()
        return changed

    def _read_metrics(self) -> bool:
        rows, reset = self._tail.read_new()
        if reset:
            self.train.clear()
            self.evals = []
        if not rows:
            return reset
        self.evals.extend(r for r in rows if "eval_samples" in r)
        train = [r for r in rows if "eval_samples" not in r and any(k in r for k in KEYS)]
        if train:
            block = rows_to_block(train)
            block[TIME] = np.array([_number(r.get(TIME)) for r in train], dtype=np.float64)
            self.train.extend(block)
        return True

    def _read_grids(self) -> bool:
        samples = self.folder / "samples"
        stamp = _stamp(samples / "index.jsonl") + _stamp(samples)
        if stamp == self._index_stamp:
            return False
        self._index_stamp = stamp
        records = read_sample_index(samples)
        grids = [r for r in records if r.kind == SAMPLES] or [r for r in records if r.kind == RECONSTRUCTIONS]
        if [(r.step, r.path) for r in grids] == [(r.step, r.path) for r in self.grids]:
            return False
        self.grids = grids
        return True

    def _read_status(self) -> bool:
        stamp = _stamp(self.folder / "status.json") + _stamp(self.folder / "run.lock")
        if stamp == self._status_stamp and self.state not in LIVE:
            return False  # a live state is checked every time: a writer can die without touching a file
        self._status_stamp = stamp
        status, note = read_status(self.folder)
        state = effective_state(self.folder, status)
        changed = (state, note) != (self.state, self.status_note)
        self.state, self.status_note = state, note
        return changed

    # --- what the view asks -------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.state in LIVE

    def notes(self) -> list[str]:
        """Everything worth saying about this run's folder, in words."""
        notes = [n for n in (self.config_note, self.status_note) if n]
        if self._tail.torn and not self.live:
            notes.append("the last line of metrics.jsonl is cut short (a crash mid-write?); it is left out")
        if self._tail.skipped:
            notes.append(f"{self._tail.skipped} damaged line(s) in metrics.jsonl left out")
        if not self._tail.path.exists():
            notes.append("no metrics.jsonl: no curves")
        if not self.grids:
            notes.append("no sample grids")
        if self.state == "crashed":
            notes.append("its writer died without finishing (crashed)")
        return notes

    def has(self, key: str) -> bool:
        """Whether this run's family plots training key ``key`` (a VAE has no D loss)."""
        family = FAMILIES.get(self.family or "")
        return family is not None and any(k == key for plot in family.plots for k, _ in plot.keys)

    def label_of(self, key: str) -> str | None:
        family = FAMILIES.get(self.family or "")
        for plot in family.plots if family else ():
            for k, label in plot.keys:
                if k == key:
                    return label
        return None

    def last_step(self) -> int | None:
        steps = [int(self.train.view("step")[-1])] if self.train.size else []
        steps += [r["step"] for r in self.evals[-1:]] + [g.step for g in self.grids[-1:]]
        return max(steps) if steps else None

    def training_time(self) -> float | None:
        times = self.train.view(TIME)
        finite = times[np.isfinite(times)]
        return float(finite[-1]) if finite.size else None

    def final(self, key: str) -> float | None:
        """The last finite logged value of training key ``key``."""
        values = self.train.view(key)
        finite = values[np.isfinite(values)]
        return float(finite[-1]) if finite.size else None

    def best(self, key: str) -> tuple[float, int] | None:
        """(the best evaluated value of ``key``, its step): the lowest for FID, KID and errors, else highest."""
        points = [(r[key], r["step"]) for r in self.evals if _finite(r.get(key))]
        if not points:
            return None
        pick = min if key in LOWER_IS_BETTER else max
        return pick(points, key=lambda p: p[0])

    def eval_series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        points = [(r["step"], r[key]) for r in self.evals if _finite(r.get(key))]
        steps = np.array([p[0] for p in points], dtype=np.float64)
        return steps, np.array([p[1] for p in points], dtype=np.float64)

    def time_at(self, steps: np.ndarray) -> np.ndarray | None:
        """Training time at ``steps``, interpolated between the training rows (evaluations have none)."""
        x, t = self.train.view("step"), self.train.view(TIME)
        known = np.isfinite(t)
        if not known.any():
            return None
        return np.interp(steps, x[known], t[known])

    def grid_at(self, step: int) -> SampleRecord | None:
        """The run's last grid at or before ``step`` (None before its first)."""
        i = bisect.bisect_right([g.step for g in self.grids], step)
        return self.grids[i - 1] if i else None


# --- across runs ------------------------------------------------------------------------------------
def flatten(data: dict, prefix: str = "") -> dict:
    """{"optim": {"lr_g": 1e-4}} -> {"optim.lr_g": 1e-4}; lists stay values."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


_MISSING = object()


def differing_keys(runs: list[CompareRun]) -> list[str]:
    """The dotted config fields whose values are not the same in every run (a field one run lacks
    differs), in config order; the run name is left out (it heads each column)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.flat))
    return [k for k in keys if k not in SKIPPED_FIELDS
            and len({json.dumps(run.flat.get(k, _MISSING), default=str, sort_keys=True) for run in runs}) > 1]


def training_keys(runs: list[CompareRun]) -> list[str]:
    """Training keys any run's family plots, in plot order."""
    return [k for k in KEYS if any(run.has(k) for run in runs)]


def eval_keys(runs: list[CompareRun]) -> list[str]:
    """Evaluation figures measured in any run."""
    return [k for k, _, _ in EVAL_KEYS if any(_finite(r.get(k)) for run in runs for r in run.evals)]


def key_label(runs: list[CompareRun], key: str) -> str:
    """A training key's name, as the runs' families call it ("|∇D| / |∇encoder|" when they differ)."""
    labels = dict.fromkeys(label for run in runs if (label := run.label_of(key)))
    return " / ".join(labels) or key


def left_out(runs: list[CompareRun]) -> list[str]:
    """What cannot be compared, in words: a curve some runs' families do not have, a figure some runs
    did not measure, grids of different sizes."""
    # one line per set of runs lacking something: "D loss, G loss: not in vae-…", not a line per curve
    absent: dict[tuple[str, ...], list[str]] = {}
    for key in training_keys(runs):
        missing = tuple(run.name for run in runs if not run.has(key))
        if missing:
            absent.setdefault(missing, []).append(key_label(runs, key))
    notes = [f"{', '.join(labels)}: not in {', '.join(names)}" for names, labels in absent.items()]
    unmeasured: dict[tuple[str, ...], list[str]] = {}
    for key in eval_keys(runs):
        missing = tuple(run.name for run in runs if not any(_finite(r.get(key)) for r in run.evals))
        if missing:
            unmeasured.setdefault(missing, []).append(EVAL_LABELS[key])
    notes += [f"{', '.join(labels)}: not measured in {', '.join(names)}" for names, labels in unmeasured.items()]
    untimed = [run.name for run in runs if run.train.size and run.training_time() is None]
    if untimed:
        notes.append(f"training time: not logged in {', '.join(untimed)} (their curves show against the step only)")
    sizes: dict[int, list[str]] = {}
    for run in runs:
        if run.grids:
            sizes.setdefault(run.grids[-1].height, []).append(run.name)
    if len(sizes) > 1:
        notes.append("sample grids at their own sizes: " + "; ".join(
            f"{size} px in {', '.join(names)}" for size, names in sorted(sizes.items())))
    families = {run.family for run in runs if run.family}
    if len(families) > 1:
        notes.append(f"different families ({', '.join(sorted(families))}): only the curves they share overlay")
    return notes


def grid_steps(runs: list[CompareRun]) -> list[int]:
    """Every step at which some run wrote a grid: the global step slider's stops."""
    return sorted({g.step for run in runs for g in run.grids})


def format_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value) -> float:
    return float(value) if _finite(value) else math.nan


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (None,)
    return (st.st_size, st.st_mtime_ns)
