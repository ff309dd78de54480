"""The training plots' data: numpy columns that double when full, TensorBoard's smoothing computed in
chunks, and metrics rows turned into columns. No Qt here."""

from __future__ import annotations

import math

import numpy as np

from ganstudio.families import FAMILIES

# Every key any family plots: the columns hold them all, so switching family redraws, never loses, data.
KEYS = tuple(dict.fromkeys(key for family in FAMILIES.values() for plot in family.plots for key, _ in plot.keys))


def ema_debiased(values: np.ndarray, weight: float, last: float = 0.0, count: int = 0):
    """TensorBoard's smoothing: an EMA over the finite values, debiased by ``1 - weight**count``.

    Non-finite values stay NaN (a gap) and do not enter the average. ``last`` and ``count`` carry the
    state from the values before these, so a long series can be extended chunk by chunk.
    Returns ``(smoothed, last, count)``.

    Vectorised as a parallel prefix scan of ``y[k] = w*y[k-1] + (1-w)*v[k]``: log2(n) passes of whole-
    array adds with coefficients w**d <= 1 (stable, unlike a cumsum scaled by w**-k, which overflows).
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    v = values[finite]
    if v.size == 0:
        return out, last, count
    w = min(max(float(weight), 0.0), 0.999999)
    y = (1.0 - w) * v
    d = 1
    while d < y.size:
        coef = w**d
        if coef == 0.0:  # older terms have underflowed: nothing left to add
            break
        y[d:] = y[d:] + coef * y[:-d]  # the right side is evaluated into a temporary first
        d *= 2
    k = np.arange(1, y.size + 1, dtype=np.float64)
    if last and w > 0.0:
        y += np.power(w, k) * last
    debias = 1.0 - np.power(w, k + count) if w > 0.0 else 1.0
    out[finite] = y / debias
    return out, float(y[-1]), count + int(v.size)


class Columns:
    """Float64 columns of one shared length that double their capacity when full."""

    def __init__(self, names, capacity: int = 1024):
        self.names = tuple(names)
        self.size = 0
        self._data = {name: np.full(capacity, np.nan) for name in self.names}

    @property
    def capacity(self) -> int:
        return len(next(iter(self._data.values())))

    def extend(self, block: dict[str, np.ndarray]) -> None:
        n = len(next(iter(block.values())))
        need = self.size + n
        if need > self.capacity:
            grown = max(need, 2 * self.capacity)
            for name, old in self._data.items():
                new = np.full(grown, np.nan)
                new[: self.size] = old[: self.size]
                self._data[name] = new
        for name in self.names:
            self._data[name][self.size : need] = block.get(name, np.nan)
        self.size = need

    def view(self, name: str) -> np.ndarray:
        return self._data[name][: self.size]

    def clear(self) -> None:
        self.size = 0


def rows_to_block(rows: list[dict]) -> dict[str, np.ndarray]:
    """Training rows with a step and at least one plotted key -> columns; None, absent or non-finite -> NaN.

    Evaluation rows (they carry ``eval_samples``) are left out: a VAE's held-out "recon" and "kl" are
    not training points, and the metrics panel plots them.
    """
    rows = [r for r in rows if r.get("step") is not None and "eval_samples" not in r and any(k in r for k in KEYS)]
    block = {"step": np.array([float(r["step"]) for r in rows], dtype=np.float64)}
    for key in KEYS:
        col = np.array([_number(r.get(key)) for r in rows], dtype=np.float64)
        col[~np.isfinite(col)] = np.nan
        block[key] = col
    return block


def _number(value) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan
