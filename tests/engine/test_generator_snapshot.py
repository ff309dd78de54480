"""Control.request("snapshot"): the loop hands out the sampling generator's weights mid-run (for the latent
explorer), a private CPU copy, without writing a checkpoint."""

from __future__ import annotations

import threading

import pytest
import torch

from ganstudio.engine import Control, Trainer
from ganstudio.engine.events import GeneratorSnapshot


def _snapshots_while_paused(trainer: Trainer) -> tuple[list[GeneratorSnapshot], Control]:
    """Run two steps, then (paused) ask for a snapshot, then stop; the snapshots the loop emitted."""
    control, seen = Control(), []

    def on_event(event) -> None:
        if isinstance(event, GeneratorSnapshot):
            seen.append(event)
            control.stop()
        elif trainer.global_step >= 2 and not control.paused:
            control.pause()
            control.request("snapshot")

    _run_guarded(trainer, control, on_event)
    return seen, control


def _run_guarded(trainer: Trainer, control: Control, on_event) -> None:
    """``trainer.run``, stopped after 20 s should no snapshot ever come (the test then fails, not hangs)."""
    guard = threading.Timer(20, control.stop)
    guard.start()
    try:
        trainer.run(control, [on_event])
    finally:
        guard.cancel()


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_snapshot_is_the_sampler_weights_on_the_cpu(tiny_config, tmp_path, ema):
    trainer = Trainer(tiny_config.updated("train.ema", ema), tmp_path / "run")
    try:
        (snap,), _ = _snapshots_while_paused(trainer)
        assert snap.step == trainer.global_step >= 2 and snap.ema == (ema > 0)
        sampler = trainer.g_ema if ema else trainer.g
        live = sampler.state_dict()
        assert snap.state.keys() == live.keys() and snap.config == trainer.config
        for key, value in snap.state.items():
            assert value.device.type == "cpu" and torch.equal(value, live[key].cpu())
            assert value.data_ptr() != live[key].data_ptr()  # a copy: training may go on changing its own
        if ema:
            assert any(not torch.equal(snap.state[k], trainer.g.state_dict()[k]) for k in snap.state)
    finally:
        trainer.close()


def test_a_snapshot_writes_nothing_to_the_run_folder(tiny_config, tmp_path):
    trainer = Trainer(tiny_config.updated("train.checkpoint_every", 1000), tmp_path / "run")
    try:
        control = Control()
        control.pause()
        control.request("snapshot")
        seen = []

        def on_event(event) -> None:
            if isinstance(event, GeneratorSnapshot):
                seen.append(event)
                assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()  # none needed
                control.stop()

        _run_guarded(trainer, control, on_event)
        assert len(seen) == 1 and seen[0].step == 0  # paused before the first step: the starting weights
    finally:
        trainer.close()
