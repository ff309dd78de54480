"""The two plain types every data module shares: the error a person sees, and a decoded image set."""

from __future__ import annotations

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
