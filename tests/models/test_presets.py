"""Every preset loads and builds its networks; the folder presets take a folder with two --set changes."""

import math

import pytest
import torch

from ganstudio.config import load_preset, preset_description, preset_names
from ganstudio.models import build_models, describe, model_inputs


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_its_networks(name):
    config = load_preset(name)
    data = config.data
    with torch.device("meta"):  # full widths, nothing allocated: the studio's preview builds this way
        g, d = build_models(config.model, image_size=data.image_size, channels=data.channels)
    inputs = model_inputs(config.model, image_size=data.image_size, channels=data.channels)
    out = describe(g, inputs["g"].shape)[-1].output_shape  # an MLP's Tanh is flat: C·H·W
    assert math.prod(out) == data.channels * data.image_size ** 2
    assert describe(d, inputs["d"].shape)


@pytest.mark.parametrize("name,size", [("resnet-64", 64), ("resnet-128", 128), ("resnet-fashion", 28)])
def test_resnet_presets_are_sngan(name, size):
    config = load_preset(name)
    assert (config.model.arch, config.loss.name, config.model.spectral_norm) == ("resnet", "hinge", True)
    assert config.data.image_size == size and "residual g and d" in preset_description(name).lower()
    if size > 28:  # the folder presets: RGB, flipped, augmented
        assert config.data.channels == 3 and config.data.hflip
        assert set(config.train.augment) == {"translation", "color", "cutout"}


@pytest.mark.parametrize("name", ["resnet-64", "resnet-128"])
def test_folder_presets_take_a_folder(name, tmp_path):
    config = load_preset(name, ["data.source=folder", f"data.path={tmp_path}"])
    assert config.data.source == "folder" and config.data.path == tmp_path and config.data.image_size > 28
