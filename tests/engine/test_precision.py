"""train.precision (bf16, fp16 with gradient scalers) and train.compile, on the CPU with tiny models."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from ganstudio.engine import Trainer
from ganstudio.engine import gan as gan_step
from ganstudio.engine.errors import TrainingError
from ganstudio.engine.events import TrainWarning
from ganstudio.engine.precision import all_skipped
from ganstudio.losses import gradient_penalty, r1_penalty
from tests.engine.test_trainer import _assert_states_equal, _params


def _split_and_straight(config, tmp_path, steps: int):
    """(straight run to 2·steps, run to steps then resumed to 2·steps): their Trainers."""
    straight = Trainer(config.updated("train.steps", 2 * steps), tmp_path / "straight")
    straight.run()
    first = Trainer(config.updated("train.steps", steps), tmp_path / "split")
    first.run()
    resumed = Trainer.resume(tmp_path / "split", {"train.steps": 2 * steps})
    resumed.run()
    return straight, resumed


@pytest.mark.parametrize("overrides", [["train.precision='bf16'"],
                                       ["train.precision='bf16'", "loss.r1_weight=1.0"],
                                       ["train.precision='fp16'", "loss.name='wgan-gp'", "model.d_norm='layer'",
                                        "optim.n_critic=2"]])
def test_half_precision_trains_and_resumes_bit_exactly(tiny_config, tmp_path, overrides):
    config = tiny_config.with_overrides([*overrides, "train.checkpoint_every=1000", "train.sample_every=1000"])
    straight, resumed = _split_and_straight(config, tmp_path, steps=3)
    assert resumed.global_step == straight.global_step == 6
    _assert_states_equal(straight.state_dict(), resumed.state_dict())
    if "fp16" in overrides[0]:  # the scalers' state travels in the checkpoint
        assert {"scaler_g", "scaler_d"} <= straight.state_dict().keys()


def test_bf16_runs_the_networks_in_bf16_and_the_losses_in_fp32(tiny_config, monkeypatch):
    trainer = Trainer(tiny_config.updated("train.precision", "bf16"))
    seen = {}
    real_d = gan_step.LOSSES["bce"].d

    def spy(real, fake, smoothing=0.0):
        seen["logits"] = real.dtype
        return real_d(real, fake, smoothing)

    def hook(module, inputs, out):
        seen.setdefault("d_out", out.dtype)

    trainer.d.register_forward_hook(hook)
    monkeypatch.setitem(gan_step.LOSSES, "bce", replace(gan_step.LOSSES["bce"], d=spy))
    stats = trainer.step()
    assert seen == {"d_out": torch.bfloat16, "logits": torch.float32}
    assert math.isfinite(stats.loss_d) and math.isfinite(stats.loss_g)


@pytest.mark.parametrize("penalty", [r1_penalty, gradient_penalty])
def test_penalties_are_computed_in_fp32_under_autocast(penalty):
    torch.manual_seed(0)
    d = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 1))
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    args = (d, real) if penalty is r1_penalty else (d, real, fake, torch.Generator().manual_seed(1))
    exact = penalty(*args)
    with torch.autocast("cpu", dtype=torch.float16):
        autocast = penalty(*args)
    assert autocast.dtype == torch.float32
    assert torch.equal(exact, autocast)  # the same fp32 computation, whatever the caller's autocast


def test_fp16_overflow_is_skipped_by_the_scaler_not_rolled_back(tiny_config, tmp_path, monkeypatch):
    """An inf D loss for one step: the scaler skips that update (D unchanged, its scale halved), the
    NaN guard does not fire, and the run resumes bit-exactly afterwards."""
    config = tiny_config.with_overrides(["train.precision='fp16'", "train.checkpoint_every=1000",
                                         "train.sample_every=1000"])
    trainer = Trainer(config.updated("train.steps", 3), tmp_path / "run")
    for _ in range(2):
        trainer.step()
    d_before, scale_before = _params(trainer.d), trainer.state.precision.scalers["d"].get_scale()
    real_d = gan_step.LOSSES["bce"].d
    overflowing = replace(gan_step.LOSSES["bce"], d=lambda r, f, smoothing=0.0: real_d(r, f) * math.inf)
    monkeypatch.setitem(gan_step.LOSSES, "bce", overflowing)
    stats = trainer.step()
    assert all(torch.equal(a, b) for a, b in zip(d_before, _params(trainer.d)))
    assert trainer.state.precision.scalers["d"].get_scale() == scale_before / 2
    assert stats.extra["fp16_skipped_d"] == 1.0 and stats.loss_d == 0.0  # reported, not a NaN
    assert stats.extra["fp16_skipped_g"] == 0.0  # G's own update went ahead
    monkeypatch.undo()

    events = []
    trainer.run(callbacks=[events.append])
    assert not [e for e in events if isinstance(e, TrainWarning) and e.kind == "nan"]
    resumed = Trainer.resume(tmp_path / "run", {"train.steps": 5})
    resumed.run()
    trainer.config = trainer.config.updated("train.steps", 5)
    trainer.run()
    _assert_states_equal(trainer.state_dict(), resumed.state_dict())


def test_the_nan_guard_fires_when_every_fp16_update_is_skipped_even_at_a_scale_below_one():
    scales = {"fp16_scale_d": 0.25, "fp16_scale_g": 1024.0}
    assert all_skipped({"loss_d": 0.0, "fp16_skipped_d": 1.0, "fp16_skipped_g": 0.0, **scales})
    assert not all_skipped({"loss_d": 0.5, "fp16_skipped_d": 0.5, "fp16_skipped_g": 0.0, **scales})
    # the first steps of a run: the scale is still coming down from 65536
    assert not all_skipped({"fp16_skipped_d": 1.0, "fp16_scale_d": 32768.0})
    assert not all_skipped({"loss_d": 0.5})


def test_an_inf_loss_under_fp16_is_rolled_back_once_the_scale_is_below_one(tiny_config, monkeypatch):
    config = tiny_config.with_overrides(["train.precision='fp16'", "train.steps=40", "train.log_every=20",
                                         "train.nan_max_rollbacks=0", "train.sample_every=1000"])
    real_d = gan_step.LOSSES["bce"].d
    overflowing = replace(gan_step.LOSSES["bce"], d=lambda r, f, smoothing=0.0: real_d(r, f) * math.inf)
    monkeypatch.setitem(gan_step.LOSSES, "bce", overflowing)
    with pytest.raises(TrainingError, match="every fp16 update skipped"):
        Trainer(config).run()


def test_fp16_autoencoder_trains_with_one_scaler(tmp_path):
    from ganstudio.config import RunConfig

    config = RunConfig.model_validate({
        "name": "ae", "data": {"source": "bundled", "max_images": 64, "image_size": 28},
        "model": {"family": "autoencoder", "arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8},
        "loss": {"name": "mse"},
        "train": {"batch_size": 16, "device": "cpu", "precision": "fp16", "num_samples": 4, "seed": 2}})
    trainer = Trainer(config)
    before = _params(trainer.g)
    for _ in range(20):  # a summed reconstruction loss overflows at the first scales: the scale comes down
        stats = trainer.step()
    assert math.isfinite(stats.extra["recon"]) and stats.extra["fp16_skipped_g"] == 0.0
    assert set(trainer.state.precision.scalers) == {"g", "d"} and "scaler_g" in trainer.state_dict()
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(trainer.g)))
