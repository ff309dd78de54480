"""The speed estimate of the Architecture dock: a few real training steps timed on a background thread,
their peak memory, and what they mean for the config's step or time budget; and the largest batch that
fits (``engine/memory.py``), on the same kind of thread."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from ganstudio.config import RunConfig, TrainConfig
from ganstudio.families import images_per_step

if TYPE_CHECKING:  # engine.memory imports torch: 2-4 s the GUI thread must not wait for at start-up
    from ganstudio.engine.memory import BatchFit

WARMUP_STEPS, TIMED_STEPS = 3, 10


def measure_throughput(config: RunConfig, *, warmup: int = WARMUP_STEPS, steps: int = TIMED_STEPS,
                       cancelled=lambda: False) -> dict | None:
    """Time ``steps`` training steps after ``warmup`` untimed ones, and measure their peak memory; None when
    ``cancelled()`` turns true.

    ``peak_bytes``: on CUDA the allocator's peak over the timed steps (free to read); on the CPU one more
    step watched by torch.profiler (it would slow a timed one), counting torch's tensors only; None on
    other devices. See ``engine/memory.py``.
    """
    import torch

    from ganstudio.engine.memory import step_peak
    from ganstudio.engine.trainer import Trainer

    trainer = Trainer(config)
    try:
        cuda = trainer.device.type == "cuda"
        for _ in range(warmup):  # first steps pay for allocation, kernel selection, lazy init
            if cancelled():
                return None
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize(trainer.device)  # the clock starts once the warm-up has really run
            torch.cuda.reset_peak_memory_stats(trainer.device)
        start = time.perf_counter()
        for _ in range(steps):
            if cancelled():
                return None
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize(trainer.device)  # CUDA steps are queued; wait for them once, at the end
        seconds = (time.perf_counter() - start) / steps
        if cuda:
            peak = torch.cuda.max_memory_allocated(trainer.device)
        elif cancelled():
            return None
        else:
            peak = step_peak(trainer)  # None on mps
    finally:
        trainer.close()
    # real images per step, as the loop counts them (n_critic D batches for a GAN)
    return {"images_per_s": images_per_step(config) / seconds, "seconds_per_step": seconds,
            "device": str(trainer.device), "peak_bytes": peak}


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


def describe_estimate(result: dict, train: TrainConfig) -> str:
    """``"≈ 1,234 img/s, peak 1.2 GiB on cpu; 10,000 steps ≈ 12 min"`` for the config's step or time
    budget (no peak where the device has no measure)."""
    ips, per_step = result["images_per_s"], result["seconds_per_step"]
    text = f"≈ {ips:,.0f}" if ips >= 10 else f"≈ {ips:.1f}"
    text += " img/s"
    if result.get("peak_bytes") is not None:
        from ganstudio.engine.memory import format_bytes  # torch is imported by now: the estimate ran

        text += f", peak {format_bytes(result['peak_bytes'])}"
    text += f" on {result['device']}"
    if train.steps:
        return f"{text}; {train.steps:,} steps ≈ {format_duration(train.steps * per_step)}"
    if train.max_time:
        return f"{text}; the {format_duration(train.max_time)} budget ≈ {int(train.max_time / per_step):,} steps"
    return f"{text}; no step budget set (1,000 steps ≈ {format_duration(1000 * per_step)})"


def describe_batch_fit(fit: BatchFit) -> str:
    """``"Largest batch that fits: 1,024 on cuda:0 (tried on the device)"``, or ``"≈ 412 on cpu (…)"``
    when extrapolated."""
    if fit.batch_size is None:
        return f"No batch size found on {fit.device}: {fit.note}"
    size = f"{fit.batch_size:,}" if fit.method == "bisection" else f"≈ {fit.batch_size:,}"
    return f"Largest batch that fits: {size} on {fit.device} ({fit.note})"


def short_batch_fit(fit: BatchFit) -> str:
    """``"Largest batch: 1,024 (cuda:0)"`` or ``"≈ 412 (cpu)"``: the label beside the tables; the sentence of
    ``describe_batch_fit`` (how it was found) is its tooltip."""
    if fit.batch_size is None:
        return f"No batch fits on {fit.device}"
    size = f"{fit.batch_size:,}" if fit.method == "bisection" else f"≈ {fit.batch_size:,}"
    return f"Largest batch: {size} ({fit.device})"


class _MeasureWorker(QObject):
    """Runs ``measure`` on its own thread; has no parent, so ``moveToThread`` works."""

    done = Signal(object)  # the result, an error message (str), or None when cancelled
    failure = "Cannot measure"

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self._config = config
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def measure(self):
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        try:
            result = self.measure()
        except ValueError as err:  # ConfigError, DataError: phrased for the person already
            result = f"{self.failure}: {err}"
        except Exception as err:  # noqa: BLE001 - shown in the widget; an exception must not escape into Qt
            result = f"{self.failure}: {type(err).__name__}: {err}"
        self.done.emit(None if self._cancel.is_set() else result)


class EstimateWorker(_MeasureWorker):
    """``measure_throughput`` on a thread: ``done`` carries its dict."""

    failure = "Cannot estimate"

    def measure(self):
        return measure_throughput(self._config, cancelled=self._cancel.is_set)


class BatchFitWorker(_MeasureWorker):
    """``engine.memory.largest_batch`` on a thread: ``done`` carries its ``BatchFit``."""

    failure = "Cannot find the largest batch"

    def measure(self):
        from ganstudio.engine.memory import largest_batch

        return largest_batch(self._config, cancelled=self._cancel.is_set)
