"""What the Trainer reports: plain dataclasses of floats, ints, strings and uint8 numpy arrays.

Nothing here holds a tensor, so events can cross threads (the studio's worker) or be written to disk
as they are; the exception is ``GeneratorSnapshot``, whose weights are a private CPU copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StepStats:
    """Means over the steps since the last report (``steps`` of them), ending at ``step``."""

    step: int
    epoch: int
    loss_d: float
    loss_g: float
    d_real: float  # D(x): mean sigmoid for probability losses, else mean raw score
    d_fake: float  # D(G(z)), measured in the D step
    grad_norm_d: float
    grad_norm_g: float
    lr_d: float
    lr_g: float
    images_per_s: float
    wall_time: float  # seconds since this run (or its resume) began
    steps: int = 1
    extra: dict[str, float] = field(default_factory=dict)  # loss-specific terms, e.g. the gradient penalty

    def to_json(self) -> dict:
        """The metrics.jsonl row; figures a family does not have (D(x) for an autoencoder) are left out."""
        row = {k: v for k, v in asdict(self).items() if not (k in _FAMILY_SPECIFIC and v != v)}
        row.update(row.pop("extra"))
        return row


_FAMILY_SPECIFIC = {"loss_d", "loss_g", "d_real", "d_fake"}


@dataclass(frozen=True)
class Progress:
    """The step count, several times a second between logging points: host integers and a clock, so it
    costs no device sync (the figures stay on ``log_every``)."""

    step: int
    epoch: int
    steps_per_s: float   # counted steps per second of training time, over the last interval
    images_per_s: float  # real images read per second (families.images_per_step), over the same interval


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to the run at an exact step: written to ``events.jsonl``, a marker on the
    plots and a line in the log, live and when the run is reopened.

    ``kind``: "paused", "resumed", "changed" (a live setting), "rollback" (the NaN guard), "stopped", or a
    single step taken while paused ("step", "step_d", "step_g"), whose own figures are in ``figures``.
    """

    step: int
    kind: str
    text: str  # the marker's label: "paused", "lr_g → 0.001", "D step"
    figures: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The events.jsonl row; a non-finite figure becomes None (JSON has no NaN)."""
        figures = {k: (v if v == v and abs(v) != float("inf") else None) for k, v in self.figures.items()}
        return {"step": self.step, "kind": self.kind, "text": self.text, **({"figures": figures} if figures else {})}

    @classmethod
    def from_json(cls, row: dict) -> RunEvent:
        """A row written by ``to_json``; KeyError, TypeError or ValueError when it is not one."""
        step, kind, text = row["step"], row["kind"], row["text"]
        if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0
                and isinstance(kind, str) and isinstance(text, str)):
            raise ValueError(f"not an event row: {row!r}")
        figures = row.get("figures") or {}
        return cls(step, kind, text, {k: float("nan") if v is None else float(v) for k, v in figures.items()})


SINGLE_STEPS = {"both": ("step", "step"), "d": ("step_d", "D step"), "g": ("step_g", "G step")}  # kind, label


@dataclass(frozen=True)
class Samples:
    step: int
    images: np.ndarray  # uint8 (N, H, W, C)
    path: Path | None = None  # the grid PNG written to the run folder, when there is one
    columns: int | None = None  # images per grid row (a cgan: one row per class); None = a square grid
    # autoencoder/VAE: real held-out images and their reconstructions, interleaved (real, recon, real, …)
    reconstructions: np.ndarray | None = None
    reconstructions_path: Path | None = None  # their PNG (RunDir.write_reconstructions), when there is one
    row_classes: tuple[int, ...] | None = None  # a cgan grid's class per row (as RunDir.write_grid records)


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: Path


@dataclass(frozen=True)
class GeneratorSnapshot:
    """The sampling generator's weights at ``step`` (the EMA copy when ``train.ema`` is on), answering
    ``Control.request("snapshot")``: the studio's latent explorer draws from it mid-run, without waiting
    for a checkpoint. The one event that holds tensors: a state_dict copied to the CPU, so nothing in it is
    shared with training or lives on its device."""

    step: int
    config: Any       # the run's RunConfig at that step: what G is built from
    state: dict       # G's state_dict, CPU tensors
    ema: bool         # the weight average (train.ema), not the last weights


@dataclass(frozen=True)
class TrainWarning:
    step: int
    kind: str  # "nan", "checkpoint", "data", ...
    message: str


@dataclass(frozen=True)
class EvalStarted:
    step: int
    num_samples: int


@dataclass(frozen=True)
class EvalResult:
    step: int
    metrics: dict[str, float]  # "fid", "kid", "kid_std", "is", "precision", "recall", ...
    num_samples: int  # the figures are FID@num_samples etc.
    extractor: str
    seconds: float
    best: bool = False  # the best primary metric so far (FID; reconstruction error for an autoencoder):
    # checkpoints/best.pt now holds this state
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunFinished:
    step: int
    reason: str  # "steps", "time", "stopped", "early-stop", "error"
    run_dir: Path | None
    error: str | None = None


Event = (StepStats | Progress | RunEvent | Samples | CheckpointSaved | TrainWarning | EvalStarted | EvalResult
         | RunFinished | GeneratorSnapshot)
