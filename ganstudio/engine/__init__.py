"""The training engine: pure Python and torch, no Qt."""

from ganstudio.engine.checkpoint import CheckpointError
from ganstudio.engine.control import Control
from ganstudio.engine.events import (CheckpointSaved, EvalResult, EvalStarted, Event, RunFinished, Samples, StepStats,
                                     TrainWarning)
from ganstudio.engine.rundir import RunDir
from ganstudio.engine.trainer import Trainer, TrainingError, resolve_device

__all__ = [
    "CheckpointError", "CheckpointSaved", "Control", "EvalResult", "EvalStarted", "Event", "RunDir", "RunFinished", "Samples",
    "StepStats", "Trainer", "TrainingError", "TrainWarning", "resolve_device",
]
