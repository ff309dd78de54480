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
    path.write_text('[train]\nbatch_size = 0\n[model]\narch = "stylegan"\n')  # not an architecture here
    with pytest.raises(ConfigError) as err:
        RunConfig.load(path)
    message = str(err.value)
    assert "train.batch_size = 0" in message and "≥ 1" in message
    assert "model.arch = 'stylegan'" in message and "one of 'mlp', 'dcgan'" in message
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


# --- structured errors ----------------------------------------------------------------------------------
def test_errors_carry_one_entry_per_line_naming_field_value_and_source(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nbatch_size = 0\n')
    with pytest.raises(ConfigError) as err:
        RunConfig.load(path, ["optim.lr_g=-1"])
    entries = {e.key: e for e in err.value.entries}
    assert set(entries) == {"train.batch_size", "optim.lr_g"}
    assert (entries["train.batch_size"].value, entries["train.batch_size"].source) == (0, str(path))
    assert (entries["optim.lr_g"].value, entries["optim.lr_g"].source) == (-1, "--set")
    assert "≥ 1" in entries["train.batch_size"].message and entries["optim.lr_g"].fields == ()
    assert str(err.value) == "invalid config:\n  " + "\n  ".join(str(e) for e in err.value.entries)


def test_the_cli_line_format_is_unchanged():
    with pytest.raises(ConfigError) as err:
        load_preset("dcgan-fashion", ["optim.lr_g=-1"])
    assert str(err.value) == ("invalid config:\n  optim.lr_g = -1: Input should be greater than 0; "
                              "allowed > 0.0 and ≤ 1.0 (from --set)")


def test_a_cross_field_error_names_its_fields_and_keeps_its_message():
    with pytest.raises(ConfigError) as err:
        load_preset("dcgan-fashion", ["model.family=vae"])
    (entry,) = err.value.entries
    assert entry.key == "loss.name" and entry.value == "bce" and entry.source == "--set"
    assert entry.fields == ("loss.name", "model.family")
    assert entry.message == ("loss.name = 'bce' cannot train model.family = 'vae': 'bce' is a GAN loss; "
                             "vae takes 'mse', 'bernoulli'")
    with pytest.raises(ConfigError) as err:
        RunConfig().updated("data.source", "folder")
    assert err.value.entries[0].fields == ("data.path", "data.source")


def test_a_list_item_error_names_the_field_and_the_item():
    with pytest.raises(ConfigError) as err:
        RunConfig().with_changes({"eval.metrics": ["fid", "nope"]})
    (entry,) = err.value.entries
    assert (entry.key, entry.item, entry.value) == ("eval.metrics", 1, "nope")
    assert str(entry).startswith("eval.metrics.1 = 'nope': ")


def test_errors_without_a_field_still_carry_an_entry(tmp_path):
    with pytest.raises(ConfigError) as err:
        RunConfig.load(tmp_path / "nope.toml")
    (entry,) = err.value.entries
    assert entry.key is None and "does not exist" in entry.message


# --- changes as a dict ------------------------------------------------------------------------------------
def test_with_changes_sets_validates_and_names_its_source():
    config = RunConfig().with_changes({"train.steps": 500, "optim.lr_g": 1e-3, "data.max_images": None})
    assert (config.train.steps, config.optim.lr_g, config.data.max_images) == (500, 1e-3, None)
    assert RunConfig().with_changes({}) == RunConfig()
    with pytest.raises(ConfigError) as err:
        config.with_changes({"optim.lr_d": 5.0}, source="form")
    assert err.value.entries[0].source == "form" and str(err.value).endswith("(from form)")
    with pytest.raises(ConfigError, match=r"unknown field 'optim\.lr' \(from form\)") as err:
        config.with_changes({"optim.lr": 0.1}, source="form")
    assert err.value.entries[0].key == "optim.lr"


def test_parse_overrides_reads_every_item_once_and_later_items_win():
    from ganstudio.config import parse_overrides

    assert parse_overrides(["train.steps=5", "optim.lr_g=1e-4", "train.steps=none"]) == {
        "train.steps": None, "optim.lr_g": 1e-4}
    assert load_preset("dcgan-fashion", {"train.steps": 7}) == load_preset("dcgan-fashion", ["train.steps=7"])


# --- the names table --------------------------------------------------------------------------------------
def test_the_config_choices_are_the_catalogs():
    import typing

    from ganstudio import catalog
    from ganstudio.config import DataConfig, EvalConfig, LossConfig, ModelConfig, OptimConfig

    def choices(section, name):
        annotation = section.model_fields[name].annotation
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        return typing.get_args(annotation)

    assert choices(LossConfig, "name") == catalog.GAN_LOSS_NAMES + catalog.RECON_LOSS_NAMES
    assert choices(ModelConfig, "family") == catalog.FAMILY_NAMES
    from ganstudio.families import FAMILIES

    assert tuple(FAMILIES) == catalog.FAMILY_NAMES and all(name == f.name for name, f in FAMILIES.items())
    assert choices(ModelConfig, "arch") == tuple(catalog.ARCH_CHOICES)
    assert choices(DataConfig, "source") == catalog.DATA_SOURCE_NAMES
    assert choices(EvalConfig, "metrics") == tuple(catalog.METRIC_CHOICES)
    assert choices(OptimConfig, "schedule") == tuple(catalog.SCHEDULE_CHOICES)
    for key, table in catalog.FIELD_CHOICES.items():
        section, _, name = key.partition(".")
        assert choices(RunConfig.model_fields[section].annotation, name) == tuple(table), key
        assert all(choice.description for choice in table.values()), key


def test_label_smoothing_follows_the_catalog_not_a_list_of_names(monkeypatch):
    from dataclasses import replace

    from ganstudio import catalog

    from ganstudio.config import from_dict

    config = {"loss": {"name": "hinge", "label_smoothing": 0.1}}
    with pytest.raises(ConfigError, match="label_smoothing"):
        from_dict(config)
    monkeypatch.setitem(catalog.LOSS_CHOICES, "hinge", replace(catalog.LOSS_CHOICES["hinge"], label_smoothing=True))
    assert from_dict(config).loss.label_smoothing == 0.1


def test_the_catalog_families_and_config_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, ganstudio.catalog, ganstudio.families; "
            "assert not {'torch', 'pydantic', 'ganstudio.config'} & set(sys.modules), sorted(sys.modules); "
            "import ganstudio.config; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
