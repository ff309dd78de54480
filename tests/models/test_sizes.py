"""Every allowed image size: each conv body builds and runs forward and backward at 1 and 3 channels,
trains two steps at a few sizes, keeps its widths capped, and the sizes that do not fit are refused."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from torch import nn

from ganstudio.config import ConfigError, DataConfig, ModelConfig, RunConfig
from ganstudio.engine import Trainer
from ganstudio.models import build_models

SIZES = typing.get_args(DataConfig.model_fields["image_size"].annotation)
TINY = {"z_dim": 8, "g_width": 4, "d_width": 4}


def test_the_allowed_sizes():
    assert SIZES == (16, 28, 32, 64, 128, 256, 512)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", (1, 3))
def test_every_size_builds_runs_and_back_propagates(arch, size, channels):
    torch.manual_seed(0)
    g, d = build_models(ModelConfig(arch=arch, **TINY), image_size=size, channels=channels)
    n = 1 if size >= 256 else 2  # one image is enough at 256-512 px (BN still has H·W values per channel)
    images = g(torch.randn(n, 8))
    assert images.shape == (n, channels, size, size)
    logits = d(images)
    assert logits.shape == (n,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("size,channels", [(16, 3), (28, 1), (128, 3)])
def test_trains_two_steps(tiny_config, tmp_path, arch, size, channels):
    config = tiny_config.with_changes({
        "data.image_size": size, "data.channels": channels, "data.max_images": 8, "train.batch_size": 2,
        "model.arch": arch, "model.g_width": 4, "model.d_width": 4, "train.steps": 2, "train.num_samples": 2,
        "loss.name": "hinge" if arch == "resnet" else "bce", "model.spectral_norm": arch == "resnet"})
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    assert trainer.global_step == 2
    assert trainer.sample(n=2, seed=0).shape == (2, size, size, channels)  # uint8 N, H, W, C


def test_dcgan_widths_stop_at_eight_times_the_width():
    g, d = build_models(ModelConfig(arch="dcgan", **TINY), image_size=512, channels=3)
    assert max(m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)) == 8 * 4
    assert max(m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)) == 8 * 4
    # up to 64 px nothing changes: the paper's 64 px G is ngf·8 -> ngf·4 -> ngf·2 -> ngf -> C
    g64, _ = build_models(ModelConfig(arch="dcgan", g_width=64), image_size=64, channels=3)
    assert [m.out_channels for m in g64.modules() if isinstance(m, nn.ConvTranspose2d)] == [512, 256, 128, 64, 3]


@pytest.mark.parametrize("size", [24, 48, 100, 1024])
def test_a_size_that_does_not_fit_is_refused_naming_the_field_and_the_choices(size):
    with pytest.raises(ConfigError) as err:
        RunConfig().updated("data.image_size", size)
    assert "data.image_size" in str(err.value) and "16, 28, 32, 64, 128, 256 or 512" in str(err.value)


@pytest.mark.parametrize("changes,field", [
    ({"model.arch": "mlp"}, "model.arch"),
    ({"model.d_arch": "mlp"}, "model.d_arch"),
    ({"model.arch": "mlp", "model.d_arch": "resnet"}, "model.arch"),
])
def test_an_mlp_above_64_px_is_refused_in_one_line(changes, field):
    assert RunConfig().with_changes({**changes, "data.image_size": 64})  # still fine at 64
    with pytest.raises(ConfigError) as err:
        RunConfig().with_changes({**changes, "data.image_size": 128})
    message = str(err.value)
    assert f"{field} = 'mlp' is too large at data.image_size = 128" in message
    assert len(message.strip().splitlines()) == 2  # "invalid config:" and the one line
    assert err.value.entries[0].fields[:2] == (field, "data.image_size")


@pytest.mark.parametrize("changes", [
    {"model.family": "cgan", "model.conditioning": "projection"},
    {"model.family": "cgan", "model.conditioning": "concat"},
    {"model.family": "vae", "loss.name": "bernoulli"},
], ids=["cgan-projection", "cgan-concat", "vae"])
def test_resnet_trains_two_steps_in_the_other_families(tiny_config, tmp_path, changes):
    config = tiny_config.with_changes({
        "model.arch": "resnet", "model.g_width": 4, "model.d_width": 4, "model.d_norm": "none",
        "data.max_images": 8, "train.batch_size": 2, "train.steps": 2, "train.num_samples": 2, **changes})
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    assert trainer.global_step == 2 and np.isfinite(trainer.sample(n=2, seed=0)).all()
