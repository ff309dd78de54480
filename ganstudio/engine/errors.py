"""The engine's own error (training cannot go on), and the line a failed run ends with. Config, data and
checkpoint problems have their own errors."""

from __future__ import annotations

import os

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
    if getattr(t, "group", None) is not None and lost_contact(err):
        return _lost_contact(t)
    return f"{type(err).__name__}: {err}"


# what gloo and NCCL say when the other end of a collective went away (gloo raises a plain RuntimeError)
_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "Read error", "Write error",
         "Socket Timeout", "timed out", "NCCL communicator was aborted", "remote process exited")


def lost_contact(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is a collective that failed because another rank stopped answering:
    it died, was killed, or its machine went away."""
    while err is not None:
        dist = getattr(torch, "distributed", None)
        if dist is not None and dist.is_available() and isinstance(err, dist.DistError):
            return True
        text = str(err)
        if isinstance(err, RuntimeError) and any(backend in text for backend in ("gloo", "NCCL", "c10d")) and \
                any(lost in text for lost in _LOST):
            return True  # a backend's own message: not a rank's own error that happens to say "Read error"
        err = err.__cause__
    return False


def _lost_contact(t) -> str:
    run = t.run_dir
    kept = f"{run.last_checkpoint} is intact" if run is not None and run.last_checkpoint.is_file() else \
        "no checkpoint had been written yet"
    here = os.environ.get("LOCAL_WORLD_SIZE", t.group.world_size)  # processes per machine: what --nproc says
    return (f"lost contact with another of the {t.group.world_size} processes at step {t.global_step} (it died, "
            f"was killed, or its machine went away), so this one stops too; {kept}: continue with "
            f"`ganstudio train --resume {run.path if run else 'RUN'} --nproc {here}`")


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
