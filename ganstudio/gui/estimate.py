"""The speed estimate of the Architecture dock: a few real training steps timed on a background thread,
and what they mean for the config's step or time budget."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, Signal, Slot

from ganstudio.config import RunConfig, TrainConfig
from ganstudio.families import images_per_step

WARMUP_STEPS, TIMED_STEPS = 3, 10


def measure_throughput(config: RunConfig, *, warmup: int = WARMUP_STEPS, steps: int = TIMED_STEPS,
                       cancelled=lambda: False) -> dict | None:
    """Time ``steps`` training steps after ``warmup`` untimed ones; None when ``cancelled()`` turns true."""
    import torch

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
        start = time.perf_counter()
        for _ in range(steps):
            if cancelled():
                return None
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize(trainer.device)  # CUDA steps are queued; wait for them once, at the end
        seconds = (time.perf_counter() - start) / steps
    finally:
        trainer.close()
    # real images per step, as the loop counts them (n_critic D batches for a GAN)
    return {"images_per_s": images_per_step(config) / seconds, "seconds_per_step": seconds,
            "device": str(trainer.device)}


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
    """``"≈ 1,234 img/s on cpu; 10,000 steps ≈ 12 min"`` for the config's step or time budget."""
    ips, per_step = result["images_per_s"], result["seconds_per_step"]
    text = f"≈ {ips:,.0f}" if ips >= 10 else f"≈ {ips:.1f}"
    text += f" img/s on {result['device']}"
    if train.steps:
        return f"{text}; {train.steps:,} steps ≈ {format_duration(train.steps * per_step)}"
    if train.max_time:
        return f"{text}; the {format_duration(train.max_time)} budget ≈ {int(train.max_time / per_step):,} steps"
    return f"{text}; no step budget set (1,000 steps ≈ {format_duration(1000 * per_step)})"


class EstimateWorker(QObject):
    """Runs ``measure_throughput`` on its own thread; has no parent, so ``moveToThread`` works."""

    done = Signal(object)  # the result dict, an error message (str), or None when cancelled

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self._config = config
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        try:
            result = measure_throughput(self._config, cancelled=self._cancel.is_set)
        except ValueError as err:  # ConfigError, DataError: phrased for the person already
            result = f"Cannot estimate: {err}"
        except Exception as err:  # noqa: BLE001 - shown in the widget; an exception must not escape into Qt
            result = f"Cannot estimate: {type(err).__name__}: {err}"
        self.done.emit(result)
