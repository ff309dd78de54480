"""Memory, measured: the peak memory of training steps, and the largest batch that fits (no Qt).

On CUDA the caching allocator keeps its own peak (``torch.cuda.max_memory_allocated``): exact and free.
On the CPU there is no such counter. The process's peak RSS (``ru_maxrss``) only moves when a new
lifetime high is reached, so after a first run it reads 0, and tracemalloc does not see torch's
allocator. What does see it is ``torch.profiler`` with ``profile_memory=True``: it records every
allocation and free torch makes, and the highest point of their running sum is the step's transient
peak. To that we add the bytes the trainer already holds (weights, gradients, optimizer state), so the
figure is the step's working set in torch tensors. It leaves out the dataset itself, Python objects and
libtorch's own code and thread pools (a few hundred MiB in the process). The profiler does not see the
free of a tensor made before it started (torch logs a warning), so a tensor replaced during the step
(gradients set to None, then made again) counts twice: the figure errs high, by about one set of
gradients at most. The profiler slows the step it watches and its first use costs about a second of
setup, so it watches one extra step, never a timed one.

``largest_batch`` bisects on a GPU, where a batch too big raises ``torch.OutOfMemoryError``. On the CPU
running out of memory gets the process killed instead, so it fits ``peak = a + b·batch`` through two
measured batches (small ones, doubled until the peak grows with the batch: see ``linear_points``) and
caps at the free RAM, with a margin.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import Callable

import torch

from ganstudio.config import RunConfig

GiB = 1024 ** 3
SMALL_BATCHES = (4, 8)   # the CPU's first two measured points; doubled from there (see linear_points)
RAM_MARGIN = 0.7         # of MemAvailable: the OS, the studio's window and the dataset need the rest
BATCH_LIMIT = 65536      # train.batch_size's own upper bound in the config


def format_bytes(n: float) -> str:
    """``"1.2 GiB"``, ``"340 MiB"``."""
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    if n >= 1024 ** 2:
        return f"{n / 1024 ** 2:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


# --- peak memory of a few steps ------------------------------------------------------------------------
def held_bytes(trainer) -> int:
    """Bytes of the tensors the trainer keeps between steps: weights, buffers, gradients, optimizer state
    and the EMA copy (each storage counted once)."""
    seen: dict[int, int] = {}

    def add(t) -> None:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()

    modules = [trainer.g, trainer.d] + ([trainer.sampler] if trainer.sampler is not None else [])
    for module in modules:
        for t in list(module.parameters()) + list(module.buffers()):
            add(t)
            add(t.grad)
    for opt in (trainer.opt_g, trainer.opt_d):
        for state in opt.state.values():
            for value in state.values():
                add(value)
    return sum(seen.values())


def measure_peak(device: torch.device, run: Callable[[], object], *, held: int = 0):
    """``(run(), peak bytes)`` for the memory ``run`` needs on ``device``; the peak is None on a device
    with no measure here (mps).

    CUDA: the allocator's peak over ``run`` (everything this process holds there, weights included).
    CPU: ``held`` plus the highest point of torch's allocations during ``run`` (torch.profiler).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = run()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device)
    if device.type != "cpu":
        return run(), None
    from torch.profiler import ProfilerActivity, profile

    # kineto logs "ERROR ... gpuGetDeviceCount failed" to stderr on a machine without a GPU each time;
    # level 5 hides that noise (the user's own setting wins). Two "USDT profiler_start/stop" lines remain.
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    total = top = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        total += e.nbytes()  # negative for a free
        top = max(top, total)
    return result, held + top


def step_peak(trainer, steps: int = 1) -> int | None:
    """Peak bytes of ``steps`` more training steps (see ``measure_peak``)."""
    def run() -> None:
        for _ in range(steps):
            trainer.train_step()

    return measure_peak(trainer.device, run, held=held_bytes(trainer))[1]


# --- the largest batch that fits -----------------------------------------------------------------------
@dataclass
class BatchFit:
    """What ``largest_batch`` found. ``points``: on a GPU each (batch size, peak bytes) that fitted; on the
    CPU the two the line runs through (the first is (0, bytes held) when the peak never grew in proportion
    to the batch before the dataset or the RAM stopped the doubling)."""

    batch_size: int | None  # None: not even a batch of one fits (GPU), or no free-RAM figure (CPU)
    device: str
    method: str             # "bisection" (GPU, tried) or "extrapolation" (CPU, estimated)
    points: list[tuple[int, int]] = field(default_factory=list)
    available: int | None = None  # the CPU's MemAvailable the estimate was capped at
    note: str = ""
    tried: list[tuple[int, int]] = field(default_factory=list)  # every (batch, peak) measured on the CPU


def bisect_largest(try_batch: Callable[[int], object], start: int, limit: int = BATCH_LIMIT,
                   release: Callable[[], None] = lambda: None,
                   cancelled: Callable[[], bool] = lambda: False) -> int | None:
    """The largest batch in ``1..limit`` for which ``try_batch(batch)`` does not raise
    ``torch.OutOfMemoryError``; None when 1 does not fit.

    Doubles (or halves) from ``start`` until one fits and one does not, then bisects between them:
    about 2·log2 tries. ``release()`` runs after each failure, outside the ``except`` block, since the
    traceback's frames hold the failed try's tensors until then. Assumes memory grows with the batch.
    """
    def fits(batch: int) -> bool:
        failed = False
        try:
            try_batch(batch)
        except torch.OutOfMemoryError:
            failed = True
        if failed:
            release()
        return not failed

    start = max(1, min(start, limit))
    if fits(start):
        good, bad = start, None
        while bad is None and good < limit and not cancelled():
            nxt = min(good * 2, limit)
            good, bad = (nxt, None) if fits(nxt) else (good, nxt)
        if bad is None:
            return good
    else:
        good, bad = None, start
        while good is None and bad > 1 and not cancelled():
            nxt = bad // 2
            good, bad = (nxt, bad) if fits(nxt) else (None, nxt)
        if good is None:
            return None
    while bad - good > 1 and not cancelled():
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return good


def extrapolate(points: list[tuple[int, int]], available: int, margin: float = RAM_MARGIN,
                limit: int = BATCH_LIMIT) -> int:
    """The largest batch whose ``a + b·batch`` (the line through the two measured points) stays under
    ``margin · available``; at least 1 (the caller says when even that is over), at most ``limit``."""
    (b1, p1), (b2, p2) = points
    slope = (p2 - p1) / (b2 - b1)
    if slope <= 0:  # the two peaks did not grow: nothing to extrapolate from, so trust only the larger
        return b2
    base = p1 - slope * b1
    return int(max(1, min(limit, (margin * available - base) // slope)))


def available_ram() -> int | None:
    """Bytes the OS could give without swapping: MemAvailable (Linux), else psutil if installed."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # not a dependency; used when present (macOS, Windows)
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _trainer_at(config: RunConfig, batch: int):
    from ganstudio.engine.trainer import Trainer

    return Trainer(config.updated("train.batch_size", batch))


def _release_gpu() -> None:
    gc.collect()              # the failed trainer's reference cycles hold its tensors
    torch.cuda.empty_cache()  # give the cached blocks back, so the next try starts from the same point


def largest_batch(config: RunConfig, *, small: tuple[int, int] = SMALL_BATCHES, margin: float = RAM_MARGIN,
                  available: int | None = None, cancelled: Callable[[], bool] = lambda: False) -> BatchFit:
    """The largest ``train.batch_size`` that fits this config's device memory; see the module docstring.

    Each try builds a trainer (on a GPU, two steps per try; on the CPU, a warm-up and a measured step at
    each of ``small`` and the doublings after them); a few seconds for small models. ``available``
    overrides the CPU's free RAM.
    """
    probe = _trainer_at(config, min(small))  # a DataError here names the config's problem, as training would
    device, images = probe.device, getattr(probe.batches, "num_images", BATCH_LIMIT)
    probe.close()
    del probe
    limit = min(BATCH_LIMIT, images)  # a batch larger than the dataset is refused by the data, not the memory
    if device.type == "cuda":
        return _bisect_on_gpu(config, device, limit, cancelled)
    return _extrapolate_on_cpu(config, device, small, margin, available, limit, cancelled)


def _bisect_on_gpu(config: RunConfig, device: torch.device, limit: int, cancelled) -> BatchFit:
    points: list[tuple[int, int]] = []

    def try_batch(batch: int) -> None:
        trainer = _trainer_at(config, batch)
        try:
            # two steps: the first creates the optimizer state, the second runs with it held
            _, peak = measure_peak(device, lambda: [trainer.train_step() for _ in range(2)])
            points.append((batch, peak))
        finally:
            trainer.close()

    _release_gpu()
    best = bisect_largest(try_batch, config.train.batch_size, limit, release=_release_gpu, cancelled=cancelled)
    _release_gpu()
    note = "tried on the device" + (f"; the dataset's {limit:,} images are the upper bound" if best == limit
                                    else "")
    if best is None:
        note = "not even a batch of 1 fits"
    if cancelled():  # the bisection stopped early: its answer is only a lower bound
        best, note = None, "cancelled"
    return BatchFit(best, str(device), "bisection", sorted(points), note=note)


def linear_points(measure: Callable[[int], tuple[int, int]], small: tuple[int, int], limit: int,
                  budget: float, cancelled: Callable[[], bool] = lambda: False):
    """Two ``(batch, peak)`` points on the part of the curve that grows with the batch, and every point
    measured; ``measure(batch)`` gives ``(held bytes, peak bytes)``.

    At small batches a step's peak is often where the optimizer updates the weights (a fixed size), not
    where the activations live: the default DCGAN peaks 0.11 MiB higher at batch 8 than at 4, though each
    image costs 0.4 MiB of activations. A line through those two would promise a batch 14 times too big.
    So the batch doubles until the transient part (peak − held) grows in proportion to it (within 12%),
    but never past ``limit`` or to a peak near ``budget`` (so measuring never risks the RAM itself).
    """
    (b1, b2), tried = small, []
    held, p1 = measure(b1)
    _, p2 = measure(b2)
    tried += [(b1, p1), (b2, p2)]
    while ((p2 - held) < 0.88 * (b2 / b1) * (p1 - held) and b2 * 2 <= limit
           and p2 * 2 < budget / 4 and not cancelled()):
        b1, p1, b2 = b2, p2, b2 * 2
        p2 = measure(b2)[1]
        tried.append((b2, p2))
    proportional = (p2 - held) >= 0.88 * (b2 / b1) * (p1 - held)
    return [(b1, p1), (b2, p2)], tried, held, proportional


def _extrapolate_on_cpu(config, device, small, margin, available, limit, cancelled) -> BatchFit:
    def measure(batch: int) -> tuple[int, int]:
        trainer = _trainer_at(config, batch)
        try:
            trainer.train_step()  # creates the optimizer state, which the measured step then holds
            return held_bytes(trainer), step_peak(trainer)
        finally:
            trainer.close()

    available = available if available is not None else available_ram()
    if available is None:
        return BatchFit(None, str(device), "extrapolation",
                        note="no free-RAM figure on this system (install psutil)")
    points, tried, held, proportional = linear_points(measure, small, limit, margin * available, cancelled)
    if cancelled():
        return BatchFit(None, str(device), "extrapolation", points, available, note="cancelled")
    if not proportional:  # never reached the part that grows: assume all of the transient does (safe side)
        b2, p2 = points[1]
        points = [(0, held), (b2, p2)]
    best = extrapolate(points, available, margin, limit)
    (b1, p1), (b2, p2) = points
    sizes = f"batches {b1} ({format_bytes(p1)}) and {b2} ({format_bytes(p2)})" if proportional else \
        f"batch {b2} ({format_bytes(p2)}), all above the {format_bytes(held)} held taken to grow with it"
    note = (f"extrapolated from {sizes}, capped at {margin:.0%} of the {format_bytes(available)} free "
            "RAM; counts torch's tensors, not the dataset or the process")
    if best == limit and limit < BATCH_LIMIT:
        note += f"; the dataset's {limit:,} images are the upper bound"
    if p1 + (p2 - p1) / (b2 - b1) * (best - b1) > margin * available:
        note = "even this may not fit: " + note
    return BatchFit(best, str(device), "extrapolation", points, available, note, tried)
