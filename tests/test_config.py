import pytest

from ganstudio.config import (ConfigError, RunConfig, allowed, field_keys, is_live, load_preset, parse_override,
                              preset_description, preset_names)


def test_presets_load_and_describe_themselves():
    names = preset_names()
    assert {"dcgan-fashion", "mlp-gan", "wgan-gp", "lsgan"} <= set(names)
    for name in names:
        config = load_preset(name)
        assert config.name == name
        assert preset_description(name)


def test_mlp_preset_is_the_tutorial_generator():
    config = load_preset("mlp-gan")
    assert (config.model.arch, config.model.z_dim, config.model.g_width) == ("mlp", 100, 128)


def test_every_field_has_title_and_description():
    for key in field_keys():
        section, _, name = key.partition(".")
        fields = RunConfig.model_fields if not name else RunConfig.model_fields[section].annotation.model_fields
        info = fields[name or section]
        assert info.title and info.description, key


def test_toml_round_trip(tmp_path):
    config = load_preset("wgan-gp", ["train.steps=7", "data.max_images=100"])
    config.save(tmp_path / "c.toml")
    assert RunConfig.load(tmp_path / "c.toml") == config


def test_bad_value_from_set_names_field_value_range_and_origin():
    with pytest.raises(ConfigError) as err:
        load_preset("dcgan-fashion", ["optim.lr_g=-1"])
    message = str(err.value)
    assert "optim.lr_g = -1" in message and "> 0" in message and "≤ 1" in message and "(from --set)" in message


def test_bad_value_from_toml_names_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nbatch_size = 0\n[model]\narch = "resnet"\n')
    with pytest.raises(ConfigError) as err:
        RunConfig.load(path)
    message = str(err.value)
    assert "train.batch_size = 0" in message and "≥ 1" in message
    assert "model.arch = 'resnet'" in message and "one of 'mlp', 'dcgan'" in message
    assert f"(from {path})" in message


def test_bad_value_from_code():
    with pytest.raises(ConfigError, match=r"train.steps = -3.*≥ 1.*\(from code\)"):
        RunConfig().updated("train.steps", -3)


def test_unknown_fields_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown field 'optim.lr'"):
        load_preset("dcgan-fashion", ["optim.lr=0.1"])
    path = tmp_path / "run.toml"
    path.write_text("[optim]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="optim.learning_rate: unknown field"):
        RunConfig.load(path)


def test_cross_field_rules_are_readable():
    with pytest.raises(ConfigError, match="wgan-gp.*d_norm.*batch.*from --set"):
        load_preset("dcgan-fashion", ["loss.name=wgan-gp"])
    with pytest.raises(ConfigError, match="needs data.path"):
        RunConfig().updated("data.source", "folder")


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        RunConfig.load(bad)
    with pytest.raises(ConfigError, match="no preset named 'nope'"):
        load_preset("nope")


def test_override_parsing():
    assert parse_override("optim.lr_g=1e-4") == ("optim.lr_g", 1e-4)
    assert parse_override("data.source=torchvision:FashionMNIST") == ("data.source", "torchvision:FashionMNIST")
    assert parse_override("train.steps=none") == ("train.steps", None)
    assert parse_override("train.tensorboard=true") == ("train.tensorboard", True)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("optim.lr_g")


def test_live_fields_and_allowed_text():
    assert is_live("optim.lr_g") and is_live("optim.lr_d") and not is_live("model.arch")
    assert allowed("model.d_norm") == "one of 'batch', 'layer', 'none'"
    assert allowed("optim.beta1") == "allowed ≥ 0.0 and < 1.0"
