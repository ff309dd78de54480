"""Hostile or careless config inputs: each is refused with one clear line naming the field, the value, what is
allowed and where it came from, before anything is written."""

from __future__ import annotations

import pytest

from ganstudio.cli import main
from ganstudio.config import ConfigError, RunConfig, load_preset


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\\b", ".hidden", "runs/../../etc"])
def test_a_run_name_cannot_leave_the_runs_folder(name, tmp_path, monkeypatch, capsys):
    """A clear line, nothing written: a run name with a path separator or '..' is refused, saying what is
    allowed, and no folder appears anywhere (the run folder is RUNS/NAME-TIMESTAMP)."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "--set", f"name={name!r}", "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "name = " in err and "letters, digits" in err and "(from --set)" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["work"]


def test_ordinary_run_names_pass():
    """No false alarm: the names people use (spaces, dots, dashes, digits, unicode letters) still pass."""
    for name in ("tiny", "dcgan fashion 2", "v1.2-b_3", "Läufe"):
        assert RunConfig().updated("name", name).name == name


@pytest.mark.parametrize("key", ["train.batch_size", "train.steps", "optim.lr_g", "train.max_time",
                                 "data.channels", "model.z_dim", "loss.gp_weight", "eval.num_samples",
                                 "data.max_images"])
def test_true_and_false_are_not_numbers(key):
    """A clear line: `batch_size = true` is refused (pydantic would take it as 1), naming the field."""
    for value in (True, False):
        with pytest.raises(ConfigError) as caught:
            RunConfig().updated(key, value, source="--set")
        assert caught.value.entries[0].key == key
        assert f"not {str(value).lower()}" in str(caught.value) and "(from --set)" in str(caught.value)


def test_true_in_a_toml_file_is_refused_naming_the_file(tmp_path):
    """A clear line naming the file: `batch_size = true` in a config file is refused, not read as 1."""
    path = tmp_path / "c.toml"
    path.write_text("[train]\nbatch_size = true\n")
    with pytest.raises(ConfigError, match=r"train.batch_size = True: expected a whole number.*c\.toml"):
        RunConfig.load(path)


def test_true_and_false_still_set_switches():
    """No false alarm: the true/false fields keep taking true/false."""
    config = RunConfig().updated("model.spectral_norm", True).updated("data.download", False)
    assert config.model.spectral_norm is True and config.data.download is False


@pytest.mark.parametrize("text, section", [("train = 5\n", "train"), ("data = 'x'\n", "data"),
                                           ("optim = [1, 2]\n", "optim"), ("[eval]\nx = 1\n[model]\n", None)])
def test_a_section_given_a_value_is_one_line_naming_it(tmp_path, text, section):
    """A clear line: `train = 5` in a TOML file (with or without --set into it) names the section and the
    file, not `'int' object does not support item assignment`."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    for overrides in ([], ["train.steps=5", "optim.lr_g=1e-4"]):
        with pytest.raises(ConfigError) as caught:
            RunConfig.load(path, overrides)
        message = str(caught.value)
        assert "object does not support" not in message and "has no attribute" not in message
        if section:
            assert f"[{section}] is a section" in message and str(path) in message


def test_set_after_a_section_was_set_to_a_value_is_a_clear_line():
    """A clear line: `--set train=5 --set train.steps=10` names the field, no Python error text."""
    with pytest.raises(ConfigError, match=r"cannot set train.steps: train holds 5"):
        load_preset("dcgan-fashion", ["train=5", "train.steps=10"])


@pytest.mark.parametrize("override, key", [("optim={lr_g=2.0}", "optim.lr_g"),
                                           ("train={batch_size=0}", "train.batch_size"),
                                           ("train.batch_size=true", "train.batch_size"), ("name='a/b'", "name")])
def test_set_errors_are_blamed_on_set_not_the_preset(override, key):
    """The right source: an error in a value that came from --set (a whole section included) says
    `from --set`, never the preset file it was applied to."""
    with pytest.raises(ConfigError) as caught:
        load_preset("dcgan-fashion", [override])
    entry = next(e for e in caught.value.entries if e.key == key)
    assert entry.source == "--set", str(caught.value)
    assert "presets" not in str(caught.value)


def test_an_error_in_the_file_is_still_blamed_on_the_file(tmp_path):
    """The right source, the other way: a bad value in the file names the file even when --set changed
    another field of the same section."""
    path = tmp_path / "c.toml"
    path.write_text("[train]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as caught:
        RunConfig.load(path, ["train.steps=5"])
    assert caught.value.entries[0].source == str(path)


@pytest.mark.parametrize("poison_from, saved", [(7, True), (2, False)], ids=["after a checkpoint", "before any"])
def test_when_the_nan_guard_gives_up_config_and_checkpoint_agree(tiny_config, tmp_path, monkeypatch,
                                                                  poison_from, saved):
    """Config and checkpoint agree, the message tells the truth: after the NaN guard gives up, config.toml
    holds the learning rates of the checkpoint (not the lowered ones), and the message claims a good
    checkpoint only when one was written."""
    from ganstudio.engine import Trainer, TrainingError, checkpoint
    from ganstudio.engine.rundir import RunDir

    config = tiny_config.with_overrides(["train.steps=30", "train.nan_max_rollbacks=2", "train.checkpoint_every=5"])
    trainer = Trainer(config, tmp_path / "run")
    original = trainer.strategy.train_step

    def broken(state, next_batch, kind="both"):
        stats = original(state, next_batch, kind)
        if trainer.global_step >= poison_from:
            stats["loss_g"] = stats["loss_g"] * float("nan")
        return stats

    monkeypatch.setattr(trainer.strategy, "train_step", broken)
    with pytest.raises(TrainingError, match="diverged") as caught:
        trainer.run()
    run = RunDir(tmp_path / "run")
    on_disk = RunConfig.load(run.config_path).optim
    assert (on_disk.lr_g, on_disk.lr_d) == (config.optim.lr_g, config.optim.lr_d)
    message = str(caught.value)
    if saved:
        assert checkpoint.load(run.last_checkpoint)["config"]["optim"]["lr_g"] == on_disk.lr_g
        assert "checkpoints/last.pt (step 5) is intact" in message
    else:
        assert not run.last_checkpoint.exists()
        assert "No checkpoint was written" in message and "intact" not in message
