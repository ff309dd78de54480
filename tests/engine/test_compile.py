"""train.compile: compiled G and D, and the one-warning fallback to eager when the compiler fails."""

from __future__ import annotations

import pytest
import torch

from ganstudio.engine import Trainer
from ganstudio.engine.events import TrainWarning
from tests.engine.test_trainer import _assert_states_equal


def _compile_warnings(events):
    return [e for e in events if isinstance(e, TrainWarning) and e.kind == "compile"]


def _no_compiler(*args, **kwargs):
    raise RuntimeError("Compiler: cc is not found")


def _compiles_then_fails_when_called(fn, *args, **kwargs):
    """What a missing C compiler looks like: torch.compile returns, the first call fails."""
    def call(*a, **k):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error")
    return call


@pytest.mark.parametrize("failing", [_no_compiler, _compiles_then_fails_when_called])
def test_a_failing_compiler_falls_back_to_eager_with_one_warning(tiny_config, tmp_path, monkeypatch, failing):
    config = tiny_config.with_overrides(["train.steps=3", "train.sample_every=100", "train.checkpoint_every=100"])
    eager = Trainer(config, tmp_path / "eager")
    eager.run()

    monkeypatch.setattr(torch, "compile", failing)
    events = []
    fallback = Trainer(config.updated("train.compile", True), tmp_path / "compiled")
    fallback.run(callbacks=[events.append])
    (warning,) = _compile_warnings(events)
    assert "train.compile = true but torch.compile failed" in warning.message and "cc" in warning.message
    assert fallback.warnings == [warning.message]
    assert fallback.g._compiled_call_impl is None and fallback.d._compiled_call_impl is None
    # the failed attempt left no trace: the run is exactly the uncompiled one
    _assert_states_equal(eager.state_dict(), fallback.state_dict())


def test_a_real_error_in_the_first_step_still_raises(tiny_config, monkeypatch):
    monkeypatch.setattr(torch, "compile", _compiles_then_fails_when_called)
    trainer = Trainer(tiny_config.updated("train.compile", True))
    monkeypatch.setattr(trainer, "next_batch", lambda: (_ for _ in ()).throw(ValueError("bad batch")))
    with pytest.raises(ValueError, match="bad batch"):
        trainer.step()
    assert trainer.warnings == []  # not blamed on the compiler: eager failed the same way


@pytest.mark.slow  # compiling G and D, forward and backward, takes about 30 s on 2 CPU cores
def test_compile_on_this_machine_trains_and_checkpoints_plain_weights(tiny_config, tmp_path):
    config = tiny_config.with_overrides(["model.arch='mlp'", "train.steps=2", "train.compile=true",
                                         "train.sample_every=100", "train.checkpoint_every=100"])
    events = []
    compiled = Trainer(config, tmp_path / "run")
    compiled.run(callbacks=[events.append])
    assert compiled.global_step == 2
    assert len(_compile_warnings(events)) <= 1  # compiled here, or fell back saying why
    if not compiled.warnings:
        assert compiled.g._compiled_call_impl is not None
    state = compiled.state_dict()
    assert not [k for net in ("g", "d") for k in state[net] if k.startswith("_orig_mod")]
    plain = Trainer.resume(tmp_path / "run", {"train.compile": False, "train.steps": 3})
    assert plain.g._compiled_call_impl is None
    _assert_states_equal(state["g"], plain.state_dict()["g"])
    plain.run()
    assert plain.global_step == 3
