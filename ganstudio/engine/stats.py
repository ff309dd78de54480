"""Step figures added up on the device and read back once per logging interval."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class StatsAccumulator:
    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}
        self.steps = 0
        self.images = 0

    def add(self, stats: dict[str, Tensor], images: int) -> None:
        for key, value in stats.items():
            value = value.float()
            self._sums[key] = self._sums[key] + value if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1
        self.steps += 1
        self.images += images

    def means(self) -> dict[str, float]:
        """Means since the last reset. This is the host-device sync point."""
        if not self._sums:
            return {}
        keys = list(self._sums)
        values = torch.stack([self._sums[k] for k in keys]).cpu().tolist()
        return {k: v / self._counts[k] for k, v in zip(keys, values)}

    def reset(self) -> None:
        self.__init__()


def all_finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())
