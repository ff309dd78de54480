"""Checkpoints that do not belong: another run's (another architecture), a hand-edited one with wrongly typed
fields, and an earlier one a run is rewound to. Each is refused with a clear line naming what differs, or
continued without deleting any history."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from ganstudio.cli import main
from ganstudio.engine import Trainer, checkpoint
from ganstudio.engine.checkpoint import CheckpointError
from ganstudio.engine.events import TrainWarning
from ganstudio.engine.inference import load_generator
from ganstudio.engine.rundir import RunDir, read_sample_index


def _fingerprint(folder) -> dict[str, str]:
    """Every file of a folder and its hash: to show a refused command changed nothing."""
    return {str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run(trained_run, tmp_path):
    """A copy of the session's 6-step dcgan run (grids every 2 steps, last.pt at step 6)."""
    return RunDir(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory):
    """checkpoints/last.pt of a 1-step mlp run: a checkpoint of another architecture."""
    from ganstudio.config import RunConfig

    config = RunConfig.model_validate({
        "name": "mlp", "data": {"source": "bundled", "max_images": 32},
        "model": {"arch": "mlp", "z_dim": 8, "g_width": 8, "d_width": 8},
        "train": {"batch_size": 16, "device": "cpu", "steps": 1, "num_samples": 4}})
    trainer = Trainer(config, tmp_path_factory.mktemp("mlp") / "run")
    trainer.run()
    trainer.close()
    return trainer.run_dir.last_checkpoint


@pytest.mark.parametrize("command", [
    ["train", "--resume", "{run}", "--steps", "9", "--quiet"],
    ["sample", "{run}", "-n", "4", "-o", "{out}/grid.png"],
    ["export", "{run}", "--grid", "{out}/grid.png", "-n", "4"],
    ["eval", "{run}", "-n", "10", "--neighbours", "{out}/n.png"],
], ids=["train --resume", "sample", "export", "eval"])
def test_a_checkpoint_of_another_run_is_refused(run, mlp_checkpoint, tmp_path, command, capsys):
    """A clear line, nothing changed: an mlp last.pt copied into a dcgan run folder is refused by every
    command that reads it, naming the fields that differ; the run folder is byte for byte as it was."""
    shutil.copy(mlp_checkpoint, run.last_checkpoint)
    before = _fingerprint(run.path)
    args = [part.format(run=run.path, out=tmp_path) for part in command]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "model.arch = 'mlp' in the checkpoint, 'dcgan' in config.toml" in err
    assert str(run.last_checkpoint) in err and len(err.strip().splitlines()) == 1
    assert _fingerprint(run.path) == before
    assert not list(tmp_path.glob("*.png"))


def test_live_fields_and_budgets_may_differ(run):
    """No false alarm: config.toml may differ from last.pt in live fields (a live learning-rate change,
    a NaN rollback), budgets and where it runs; sampling and resuming still work."""
    from ganstudio.config import RunConfig

    config = RunConfig.load(run.config_path).with_changes(
        {"optim.lr_g": 1e-3, "train.sample_every": 3, "train.steps": 50, "train.max_time": 60.0,
         "train.threads": 1, "name": "renamed"})
    config.save(run.config_path)
    load_generator(run.path)
    assert Trainer.resume(run.path).global_step == 6


def test_resume_with_a_changed_fixed_field_keeps_checkpoint_and_config_in_agreement(run):
    """No self-inflicted refusal: continuing with a fixed field changed (a new seed) writes a checkpoint at
    once, so a kill before the next one does not leave a folder whose last.pt its own config refuses."""
    trainer = Trainer.resume(run.path, {"train.seed": 7, "train.steps": 6})
    trainer.run()
    assert checkpoint.load(run.last_checkpoint)["config"]["train"]["seed"] == 7


def test_rewinding_to_an_earlier_checkpoint_moves_later_history_aside(run, tmp_path):
    """Nothing deleted, said so: resuming from a checkpoint older than the run's history moves the later
    metrics rows to metrics.rewound-1.jsonl and the later grids to samples/rewound-1/, with a warning;
    the resumed history holds each step once, in order."""
    early = tmp_path / "step6.pt"
    shutil.copy(run.last_checkpoint, early)
    Trainer.resume(run.path, {"train.steps": 10}).run()
    rows_before = run.read_metrics()
    later_grid = (run.samples_dir / "step_000010.png").read_bytes()
    shutil.copy(early, run.last_checkpoint)  # back to step 6

    seen = []
    Trainer.resume(run.path, {"train.steps": 8}).run(callbacks=[seen.append])
    said = [e.message for e in seen if isinstance(e, TrainWarning) and e.kind == "resume"]
    assert said and "4 metric rows to metrics.rewound-1.jsonl" in said[0] and "2 sample grids" in said[0]
    assert [r["step"] for r in run.read_metrics()] == list(range(1, 9))
    aside = RunDir(run.path)
    aside.metrics_path = run.path / "metrics.rewound-1.jsonl"
    assert aside.read_metrics() == [r for r in rows_before if r["step"] > 6]
    moved = run.samples_dir / "rewound-1"
    assert (moved / "step_000010.png").read_bytes() == later_grid
    assert sorted(r.step for r in run.sample_index()) == [0, 2, 4, 6, 8]
    assert [(r.step, r.path.parent.name) for r in read_sample_index(moved)] == [(8, "rewound-1"), (10, "rewound-1")]


def _edited(path, tmp_path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    out = tmp_path / "checkpoints" / "last.pt"
    out.parent.mkdir(exist_ok=True)
    torch.save(payload, out)
    return out


WRONG = {
    "step is text": (lambda p: p.update(step="x"), "step is str 'x'"),
    "step is a bool": (lambda p: p.update(step=True), "step is bool"),
    "state.step disagrees": (lambda p: p["state"].update(step=3), "state is at step 3"),
    "an RNG state is a number": (lambda p: p["state"].update(noise_rng=5), "state.noise_rng is int"),
    "weights are numbers": (lambda p: p["state"].update(g={"w": 5}), "state.g is dict"),
    "fixed noise is a list": (lambda p: p["state"].update(fixed_noise=[1.0]), "state.fixed_noise is list"),
    "elapsed is text": (lambda p: p["state"].update(elapsed="1 s"), "state.elapsed is str"),
    "config is a number": (lambda p: p.update(config=5), "config is int"),
    "state is a list": (lambda p: p.update(state=[1]), "state is list"),
    "the RNG table is empty": (lambda p: p["state"].update(rng={}), "missing entry"),
    "the data position is empty": (lambda p: p["state"].update(data={}), "missing entry"),
    "an optimizer state is foreign": (lambda p: p["state"].update(opt_g={"state": {}, "param_groups": []}),
                                      "does not match its config"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrongly_typed_checkpoint_field_is_one_clear_line(trained_run, tmp_path, case):
    """A clear line: a checkpoint with a wrongly typed entry is refused by resume with a CheckpointError
    naming the file and the entry, never a Python error like `'int' object has no attribute 'cpu'`."""
    edit, expected = WRONG[case]
    path = _edited(RunDir(trained_run).last_checkpoint, tmp_path, edit)
    shutil.copy(RunDir(trained_run).config_path, tmp_path / "config.toml")
    with pytest.raises(CheckpointError) as caught:
        Trainer.resume(tmp_path)
    message = str(caught.value)
    assert expected in message and str(path) in message, message
    assert "has no attribute" not in message
