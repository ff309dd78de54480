"""The plain types every data module shares: the error a person sees, a decoded image set, and the
exception (and check) that makes long reads interruptible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


class DataError(ValueError):
    """A data problem phrased for the person who set up the run: names the path or source and what to do."""


@dataclass
class ImageSet:
    """A whole dataset decoded to memory, already at the configured size and channel count."""

    images: torch.Tensor  # uint8 (N, C, H, W) on the CPU
    labels: torch.Tensor | None  # int64 (N,), None when the source has no classes
    class_names: list[str] | None
    warnings: list[str] = field(default_factory=list)  # e.g. files that were skipped, and why

    def __len__(self) -> int:
        return len(self.images)


class Cancelled(Exception):
    """The caller's ``cancelled()`` turned true while a dataset was being read; nothing was kept.

    Not a :class:`DataError`: nothing is wrong with the data, and code that shows "check your data"
    for a DataError must not say that to someone who closed the window. Not a BaseException either
    (as asyncio's CancelledError is): callers catch it by name, and a plain Exception keeps it visible
    to the usual error paths if one is missed.
    """


CancelCheck = Callable[[], bool] | None  # the ``cancelled`` argument every long data call takes


def check_cancelled(cancelled: CancelCheck, doing: str) -> None:
    """Raise :class:`Cancelled` when ``cancelled()`` is true; ``doing`` ends the message ("decoding /x")."""
    if cancelled is not None and cancelled():
        raise Cancelled(f"cancelled while {doing}")
