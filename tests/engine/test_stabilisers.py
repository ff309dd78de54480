"""Each stabiliser switch acts on training (spectral norm and dropout are tested with the models,
EMA in test_trainer.py, the maths of each trick in test_losses/test_augment/test_schedules)."""

import pytest
import torch

from ganstudio.engine import Trainer
from ganstudio.engine.schedules import lr_factor


def _d_inputs(trainer):
    """Record every batch D sees."""
    seen = []
    trainer.d.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


def test_gradient_clipping_bounds_the_logged_norm(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["optim.clip_d=0.01", "optim.clip_g=0.02"]))
    for _ in range(3):
        stats = trainer.step()
        assert stats.grad_norm_d <= 0.01 * 1.0001 and stats.grad_norm_g <= 0.02 * 1.0001
        assert stats.extra["grad_norm_d_unclipped"] > 0.01  # it did have something to clip


def test_label_smoothing_changes_the_d_loss(tiny_config):
    plain, smooth = (Trainer(tiny_config.with_overrides([f"loss.label_smoothing={s}"])) for s in (0.0, 0.2))
    a, b = plain.step(), smooth.step()
    assert a.d_real == pytest.approx(b.d_real)  # same weights, same batch: D's first outputs agree
    assert a.loss_d != pytest.approx(b.loss_d)  # but the target for real images is 0.8, not 1


def test_instance_noise_reaches_d_and_decays(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["loss.instance_noise=0.5", "loss.instance_noise_steps=4"]))
    twin = Trainer(tiny_config)  # same seed: the same batches in the same order
    seen = _d_inputs(trainer)
    trainer.step()
    assert 0.4 < float((seen[0] - twin.next_batch()[0]).std()) < 0.6  # D's first input: real + N(0, 0.5²)
    trainer.global_step = 4  # fully decayed: D sees the images themselves
    seen.clear()
    trainer.step("d")
    assert torch.equal(seen[0], twin.next_batch()[0])


def test_diffaugment_changes_what_d_sees_on_both_sides(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["train.augment=['translation', 'cutout']"]))
    twin = Trainer(tiny_config)
    seen = _d_inputs(trainer)
    trainer.step()
    real = twin.next_batch()[0]
    assert seen[0].shape == real.shape and not torch.equal(seen[0], real)
    cut = (seen[0] == 0).flatten(1).float().mean(1)  # cutout zeroes a quarter of each image
    assert float(cut.min()) >= 0.2


def test_r1_penalty_is_logged_and_enters_the_d_loss(tiny_config):
    plain, r1 = (Trainer(tiny_config.with_overrides([f"loss.r1_weight={w}"])) for w in (0.0, 10.0))
    a, b = plain.step(), r1.step()
    assert "r1_penalty" not in a.extra and b.extra["r1_penalty"] > 0
    assert b.loss_d == pytest.approx(a.loss_d + 5.0 * b.extra["r1_penalty"], rel=1e-4)


def test_weight_decay_is_per_network(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["optim.weight_decay_d=0.1"]))
    assert [g["weight_decay"] for g in trainer.opt_d.param_groups] == [0.1]
    assert [g["weight_decay"] for g in trainer.opt_g.param_groups] == [0.0]
    trainer.set_hparam("optim.weight_decay_g", 0.05)  # live
    assert trainer.opt_g.param_groups[0]["weight_decay"] == 0.05


def test_two_time_scale_rates_reach_the_optimizers(tiny_config):
    stats = Trainer(tiny_config.with_overrides(["optim.lr_g=0.0004", "optim.lr_d=0.0001"])).step()
    assert (stats.lr_g, stats.lr_d) == (0.0004, 0.0001)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "step"])
def test_learning_rate_schedule_follows_the_step(tiny_config, schedule):
    trainer = Trainer(tiny_config.with_overrides([f"optim.schedule='{schedule}'", "optim.schedule_steps=4",
                                                  "optim.lr_g=0.001", "optim.lr_d=0.002"]))
    for step in range(6):
        stats = trainer.step()
        assert stats.lr_g == pytest.approx(0.001 * lr_factor(schedule, step, 4))
        assert stats.lr_d == pytest.approx(0.002 * lr_factor(schedule, step, 4))
    assert trainer.opt_g.param_groups[0]["lr"] < 0.001


def test_schedule_needs_a_horizon(tiny_config):
    from ganstudio.config import ConfigError

    with pytest.raises(ConfigError, match="optim.schedule_steps or train.steps"):
        tiny_config.with_overrides(["optim.schedule='cosine'"])


def test_d_dropout_makes_d_noisy_while_training_only(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["model.d_dropout=0.5", "model.d_norm='none'"]))
    x = trainer.next_batch()[0]
    with torch.no_grad():
        assert not torch.equal(trainer.d(x), trainer.d(x))  # a fresh mask per call
        trainer.d.eval()
        assert torch.equal(trainer.d(x), trainer.d(x))
