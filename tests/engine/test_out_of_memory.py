"""Out of memory mid-run: a message naming a batch size to try, and a run that resumes from last.pt."""

from __future__ import annotations

import pytest
import torch

from ganstudio.engine import Trainer
from ganstudio.engine.checkpoint import load
from ganstudio.engine.errors import TrainingError
from ganstudio.engine.events import RunFinished


def _run_out_of_memory_at(trainer: Trainer, call: int, monkeypatch) -> None:
    """D's ``call``-th forward raises the torch OOM error, as a GPU does when a batch does not fit."""
    calls = {"n": 0}
    forward = trainer.d.forward

    def patched(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(trainer.d, "forward", patched)


def test_out_of_memory_names_a_smaller_batch_and_the_run_resumes(tiny_config, tmp_path, monkeypatch):
    config = tiny_config.with_overrides(["train.steps=8", "train.checkpoint_every=4", "train.sample_every=100"])
    trainer = Trainer(config, tmp_path / "run")
    _run_out_of_memory_at(trainer, call=3 * 4 + 2, monkeypatch=monkeypatch)  # D runs 3 times a step: in step 5
    events = []
    with pytest.raises(TrainingError) as err:
        trainer.run(callbacks=[events.append])
    message = str(err.value)
    assert "out of memory on cpu at train.batch_size = 16" in message
    assert "new run with train.batch_size = 8" in message and f"--resume {tmp_path / 'run'}" in message
    assert [e.reason for e in events if isinstance(e, RunFinished)] == ["error"]
    assert load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4  # nothing from the failed step

    # a GPU's memory freed again (another process ended): the run goes on from its checkpoint
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.global_step == 4
    finished = resumed.run()
    assert finished.reason == "steps" and resumed.global_step == 8


def test_out_of_memory_before_any_checkpoint_says_so(tiny_config, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config.with_overrides(["train.steps=3", "train.sample_every=100"]), tmp_path / "run")
    _run_out_of_memory_at(trainer, call=1, monkeypatch=monkeypatch)
    with pytest.raises(TrainingError, match=r"try train\.batch_size = 8 .*no checkpoint was written yet"):
        trainer.run()
