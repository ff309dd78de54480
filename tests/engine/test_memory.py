"""Memory, measured: the CPU's peak from torch's allocations, the GPU's bisection (with a fake step that
runs out of memory above a threshold), and the CPU's extrapolation to the free RAM."""

from __future__ import annotations

import pytest
import torch

from ganstudio.engine import Trainer
from ganstudio.engine.memory import (BatchFit, bisect_largest, extrapolate, held_bytes, largest_batch, linear_points,
                                     measure_peak, step_peak)

MiB = 1024 ** 2


def test_cpu_peak_sees_a_transient_allocation_already_freed():
    def run():
        big = torch.empty(8 * MiB, dtype=torch.uint8)  # 8 MiB, freed before run returns
        del big
        return "ran"

    result, peak = measure_peak(torch.device("cpu"), run, held=100)
    assert result == "ran"
    assert 100 + 8 * MiB <= peak < 100 + 9 * MiB


def test_step_peak_counts_what_the_trainer_holds_and_grows_with_the_batch(tiny_config):
    peaks = []
    for batch in (4, 32):
        trainer = Trainer(tiny_config.updated("train.batch_size", batch))
        trainer.train_step()  # creates the optimizer state
        held = held_bytes(trainer)
        params = sum(p.numel() * p.element_size() for m in (trainer.g, trainer.d) for p in m.parameters())
        assert held >= 3 * params  # weights, gradients, and Adam's two moments at least
        peaks.append(step_peak(trainer))
        assert peaks[-1] > held
        trainer.close()
    assert peaks[1] > peaks[0]


@pytest.mark.parametrize("threshold", [1, 7, 16, 17, 100, 1000])
@pytest.mark.parametrize("start", [1, 16, 64])
def test_bisection_returns_exactly_the_largest_batch_that_fits(threshold, start):
    tried, released = [], []

    def fake_step(batch: int) -> None:  # as a GPU does: a batch too big raises, nothing else changes
        tried.append(batch)
        if batch > threshold:
            raise torch.OutOfMemoryError(f"CUDA out of memory at batch {batch}")

    assert bisect_largest(fake_step, start, limit=4096, release=lambda: released.append(1)) == threshold
    assert len(tried) <= 2 * 12 + 2  # doubling then halving: logarithmic in the limit
    assert len(released) == sum(b > threshold for b in tried)  # the cache freed after every failure


def test_bisection_stops_at_the_limit_and_says_when_nothing_fits():
    assert bisect_largest(lambda b: None, 16, limit=256) == 256

    def never(batch: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    assert bisect_largest(never, 16) is None


def test_bisection_lets_other_errors_through():
    def broken(batch: int) -> None:
        raise RuntimeError("a bug, not memory")

    with pytest.raises(RuntimeError, match="a bug"):
        bisect_largest(broken, 8)


def test_gpu_search_records_what_fitted_and_frees_the_cache_after_each_failure(tiny_config, monkeypatch):
    """The GPU path's wiring, on the CPU: trainers whose step runs out of memory above a batch of 24."""
    from ganstudio.engine import memory

    class FakeTrainer:
        def __init__(self, config, batch):
            self.batch = batch
            tried.append(batch)

        def train_step(self):
            if self.batch > 24:
                raise torch.OutOfMemoryError("CUDA out of memory")

        def close(self):
            pass

    releases, tried = [], []
    monkeypatch.setattr(memory, "_trainer_at", FakeTrainer)
    monkeypatch.setattr(memory, "measure_peak", lambda device, run: (run(), 1000 * 4))
    monkeypatch.setattr(memory, "_release_gpu", lambda: releases.append(1))
    fit = memory._bisect_on_gpu(tiny_config, torch.device("cuda"), 100, cancelled=lambda: False)
    assert fit.batch_size == 24 and fit.method == "bisection" and fit.device == "cuda"
    assert [b for b, _ in fit.points] == [16, 24] and fit.note == "tried on the device"
    assert tried == [16, 32, 24, 28, 26, 25]  # from train.batch_size: double, then bisect
    assert len(releases) == 2 + 4  # before and after the search, and after each of the 4 that failed
    fit = memory._bisect_on_gpu(tiny_config, torch.device("cuda"), 20, cancelled=lambda: False)
    assert fit.batch_size == 20 and "the dataset's 20 images are the upper bound" in fit.note


def test_extrapolation_is_the_line_through_two_points_under_the_margin():
    points = [(4, 100 * MiB + 4 * MiB), (8, 100 * MiB + 8 * MiB)]  # 100 MiB fixed, 1 MiB per image
    assert extrapolate(points, available=1000 * MiB, margin=0.5) == 400  # 100 + 400 = 500 MiB
    assert extrapolate(points, available=1000 * MiB, margin=0.5, limit=256) == 256
    assert extrapolate(points, available=50 * MiB, margin=0.5) == 1  # the caller says it may not fit


def test_points_are_taken_where_the_peak_grows_with_the_batch():
    # a step whose peak is the optimizer's fixed 10 MiB until the activations (1 MiB an image) pass it,
    # as the default DCGAN's is at small batches: a line through batches 4 and 8 would be flat
    held = 100 * MiB
    measured = []

    def measure(batch):
        measured.append(batch)
        return held, held + max(10 * MiB, batch * MiB)

    points, tried, seen_held, proportional = linear_points(measure, (4, 8), limit=4096, budget=10 ** 12)
    assert points == [(16, held + 16 * MiB), (32, held + 32 * MiB)] and proportional and seen_held == held
    assert [b for b, _ in tried] == measured == [4, 8, 16, 32]
    assert extrapolate(points, available=held + 1000 * MiB, margin=1.0) == 1000  # the true slope

    # the dataset stops the doubling first: the points are not proportional, and the caller is told so
    points, _, _, proportional = linear_points(measure, (4, 8), limit=8, budget=10 ** 12)
    assert points == [(4, held + 10 * MiB), (8, held + 10 * MiB)] and not proportional


def test_cpu_largest_batch_extrapolates_from_two_measured_points(tiny_config):
    fit = largest_batch(tiny_config, small=(4, 8), available=2 * 1024 * MiB)
    assert isinstance(fit, BatchFit) and fit.method == "extrapolation" and fit.device == "cpu"
    (b1, p1), (b2, p2) = fit.points
    assert b2 == 2 * b1 and b1 >= 4 and p2 > p1 > 0 and [b for b, _ in fit.tried[:2]] == [4, 8]
    assert fit.points == fit.tried[-2:]  # the two fitted points are the last two measured
    assert fit.batch_size == extrapolate(fit.points, fit.available, 0.7, limit=256)  # the tiny data's 256
    assert 2 <= fit.batch_size <= 256
    assert fit.available == 2 * 1024 * MiB and fit.note.startswith(f"extrapolated from batches {b1} (")


def test_cpu_largest_batch_says_when_even_one_image_may_not_fit(tiny_config):
    fit = largest_batch(tiny_config, available=1024)  # 1 KiB free
    assert fit.batch_size == 1 and fit.note.startswith("even this may not fit: extrapolated from ")
