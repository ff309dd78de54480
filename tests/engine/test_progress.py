"""The step count between logging points (Progress events) and the step strategies on plain state."""

from __future__ import annotations

import pytest
import torch

from ganstudio.engine import Control, Progress, StepStats, Trainer, gan, loop
from ganstudio.engine.state import build_state
from ganstudio.families import images_per_step


@pytest.mark.parametrize("n_critic", [1, 3])
def test_progress_counts_every_step_between_logging_points(tiny_config, monkeypatch, n_critic):
    monkeypatch.setattr(loop, "PROGRESS_INTERVAL", 0.0)  # every step reports, so the counts are exact
    config = tiny_config.with_changes({"train.steps": 6, "train.log_every": 1000, "train.sample_every": 1000,
                                       "optim.n_critic": n_critic})
    seen = []
    Trainer(config).run(callbacks=[seen.append])
    progress = [e for e in seen if isinstance(e, Progress)]
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6]
    stats = [e for e in seen if isinstance(e, StepStats)]
    assert [s.step for s in stats] == [6]  # the figures wait for the logging point (here the end)
    per_step = images_per_step(config)
    assert per_step == 16 * n_critic
    for p in progress:  # images/s counts n_critic batches a step: the ratio is the images per step
        assert p.images_per_s == pytest.approx(p.steps_per_s * per_step)


def test_progress_is_throttled(tiny_config):
    config = tiny_config.with_changes({"train.steps": 8, "train.log_every": 1000})
    seen = []
    Trainer(config).run(callbacks=[seen.append])
    progress = [e for e in seen if isinstance(e, Progress)]
    assert len(progress) < 8  # at most one every loop.PROGRESS_INTERVAL seconds, not one a step
    assert all(p.steps_per_s > 0 for p in progress)


def test_a_paused_single_d_step_reports_its_step_at_once(tiny_config):
    control, seen = Control(), []
    control.pause()
    control.step_once("d")
    control.step_once("both")
    trainer = Trainer(tiny_config.with_changes({"train.log_every": 1000}))

    def stop_when_idle(event):
        seen.append(event)
        if isinstance(event, Progress) and event.step == 1:
            control.stop()

    trainer.run(control, [stop_when_idle])
    progress = [e for e in seen if isinstance(e, Progress)]
    assert [p.step for p in progress] == [0, 1]  # the D step leaves the count; the full step moves it
    assert progress[0].steps_per_s == 0 and progress[0].images_per_s > 0


def test_a_gan_step_needs_plain_state_only(tiny_config):
    """The strategy sees networks, optimizers, generators, step and config: no Trainer."""
    torch.manual_seed(0)
    state = build_state(tiny_config, torch.device("cpu"))
    before = [p.detach().clone() for p in state.g.parameters()]
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    stats = gan.train_step(state, lambda: (real, torch.zeros(16, dtype=torch.long)))
    assert {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"} <= set(stats)
    assert any(not torch.equal(a, b) for a, b in zip(before, state.g.parameters()))
    assert state.step == 0  # counting steps is the Trainer's job
