"""The engine's own error (training cannot go on), and the line a failed run ends with. Config, data and
checkpoint problems have their own errors."""

from __future__ import annotations

import torch

from ganstudio.config import ConfigError
from ganstudio.engine.checkpoint import CheckpointError


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, out of memory, ...); the message says what to try."""


def explain(err: Exception, t) -> str:
    """The one line a failed run ends with: what went wrong and what to try."""
    if isinstance(err, torch.OutOfMemoryError):
        return _out_of_memory(t)
    if isinstance(err, TrainingError | CheckpointError | ConfigError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _out_of_memory(t) -> str:
    """Which batch size to try, and how to go on. Nothing of the failed step is saved (the loop writes only
    from a consistent state), so checkpoints/last.pt is the last good point. Half the batch is a guess
    that fits unless memory is nearly all weights and optimizer state; the studio's Estimate measures."""
    size = t.config.train.batch_size
    head = f"out of memory on {t.device} at train.batch_size = {size} (step {t.global_step})"
    if size == 1:
        return f"{head}: lower data.image_size or the model widths (model.g_width, model.d_width)"
    smaller = size // 2
    run = t.run_dir
    if run is not None and run.last_checkpoint.is_file():
        # a checkpoint's data order is tied to its batch size: the smaller batch means a new run
        return (f"{head}: start a new run with train.batch_size = {smaller} (or lower the model widths); "
                "checkpoints/last.pt is intact, and "
                f"`ganstudio train --resume {run.path}` continues it at batch size {size} once memory is free")
    return f"{head}: try train.batch_size = {smaller} (or lower the model widths); no checkpoint was written yet"
