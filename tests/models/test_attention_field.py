"""model.attention: the resnet's self-attention layer (SAGAN) placed from the config, and refused where it
cannot sit."""

from __future__ import annotations

import pytest

from ganstudio.config import ConfigError, RunConfig, from_dict
from ganstudio.families import attention_sides
from ganstudio.models import build_models
from ganstudio.models.resnet import SelfAttention


def _config(**model) -> RunConfig:
    return from_dict({
        "data": {"source": "bundled", "max_images": 64, "image_size": model.pop("size", 32)},
        "model": {"arch": "resnet", "z_dim": 8, "g_width": 4, "d_width": 4, "spectral_norm": True,
                  "d_norm": "none", **model},
        "loss": {"name": "hinge"},
        "train": {"batch_size": 8, "device": "cpu", "num_samples": 8, "log_every": 1},
    }, source="test")


def test_the_sides_between_the_start_and_the_image():
    assert attention_sides(64) == [8, 16, 32]
    assert attention_sides(28) == [14]
    assert attention_sides(16) == [8]


def test_the_config_places_one_layer_in_g_and_one_in_d():
    config = _config(size=64, attention=16)
    g, d = build_models(config.model, image_size=64, channels=1)
    assert sum(isinstance(m, SelfAttention) for m in g.modules()) == 1
    assert sum(isinstance(m, SelfAttention) for m in d.modules()) == 1
    g0, d0 = build_models(_config(size=64).model, image_size=64, channels=1)
    assert not any(isinstance(m, SelfAttention) for m in [*g0.modules(), *d0.modules()])


def test_a_side_the_networks_do_not_pass_is_refused_naming_the_sides():
    with pytest.raises(ConfigError, match=r"model.attention = 48 .* use 0 or one of 8, 16, 32"):
        _config(size=64, attention=48)


def test_attention_needs_a_resnet_body():
    with pytest.raises(ConfigError, match="model.attention = 16 needs a resnet body"):
        _config(size=64, attention=16, arch="dcgan")


def test_a_resnet_with_attention_trains(tmp_path):
    from ganstudio.engine import Trainer

    trainer = Trainer(_config(attention=16))
    stats = trainer.step()
    assert trainer.global_step == 1 and stats.loss_d == stats.loss_d
