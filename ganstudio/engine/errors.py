"""The engine's own error: training cannot go on. Config, data and checkpoint problems have theirs."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, out of memory, ...); the message says what to try."""
