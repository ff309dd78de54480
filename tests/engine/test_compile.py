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


def test_cuda_graphs_need_compile(tiny_config):
    from ganstudio.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        tiny_config.with_overrides(["train.cuda_graphs=true"])
    (problem,) = caught.value.entries
    assert problem.key == "train.cuda_graphs" and "train.compile = true" in problem.message


def test_cuda_graphs_off_a_cuda_gpu_compile_plainly_with_one_warning(tiny_config, monkeypatch):
    modes = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kwargs: modes.append(kwargs.get("mode")))
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    trainer = Trainer(tiny_config.with_overrides(["train.compile=true", "train.cuda_graphs=true"]))
    trainer.step()
    trainer.step()
    assert modes == [None, None] and marks == []
    (warning,) = trainer.warnings
    assert "train.cuda_graphs = true works on a CUDA GPU only" in warning and "cpu" in warning


def test_cuda_graphs_on_a_cuda_gpu_compile_reduce_overhead_and_mark_every_step(tiny_config, monkeypatch):
    """The CUDA path's logic on the CPU: the device is reported as CUDA to the Trainer's choice only."""
    modes = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kwargs: modes.append(kwargs.get("mode")))
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    trainer = Trainer(tiny_config.with_overrides(["train.compile=true", "train.cuda_graphs=true"]))
    trainer._cuda_graphs = True  # what a CUDA device sets in __init__ (this machine has none)
    trainer.warnings.clear()
    for _ in range(3):
        trainer.step()
    assert modes == ["reduce-overhead", "reduce-overhead"]  # G and D, once
    assert len(marks) == 3  # every step begins a new graph generation
