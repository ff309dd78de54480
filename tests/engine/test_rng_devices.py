"""Random streams across machines: a checkpoint saved on more GPUs, or on another kind of device."""

from __future__ import annotations

import torch

from ganstudio.engine import Trainer, checkpoint
from tests.engine.test_trainer import _assert_states_equal


def _fake_gpus(monkeypatch, count: int) -> list[int]:
    """A machine with ``count`` CUDA GPUs as far as the global RNG is concerned; returns the indices set."""
    restored: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append(device))
    return restored


def test_a_checkpoint_from_two_gpus_restores_the_one_gpu_there_is(monkeypatch):
    state = checkpoint.rng_state()  # no GPU here: add the states two GPUs would have saved
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    restored = _fake_gpus(monkeypatch, 1)
    checkpoint.set_rng_state(state)
    assert restored == [0]


def test_a_checkpoint_from_two_gpus_on_three_restores_both(monkeypatch):
    state = checkpoint.rng_state()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    restored = _fake_gpus(monkeypatch, 3)
    checkpoint.set_rng_state(state)
    assert restored == [0, 1]


def _as_if_saved_on_cuda(path) -> None:
    """Rewrite a CPU checkpoint's run streams the way a CUDA run stores them (seed and offset, 16 bytes)."""
    payload = checkpoint.load(path)
    state = payload["state"]
    cuda_state = torch.Generator().manual_seed(7).get_state()[:16].clone()
    for key in ("noise_rng", "penalty_rng", "augment_rng"):
        state[key] = cuda_state
    state["rng_device"] = "cuda"
    checkpoint.save(path, {k: v for k, v in payload.items() if not k.startswith(("format", "ganstudio_version"))})


def test_a_run_moved_from_cuda_to_the_cpu_continues_reproducibly_with_a_warning(tiny_config, tmp_path):
    config = tiny_config.with_overrides(["train.steps=2", "train.checkpoint_every=1000", "train.sample_every=1000"])
    Trainer(config, tmp_path / "run").run()
    _as_if_saved_on_cuda(tmp_path / "run" / "checkpoints" / "last.pt")

    continued = []
    for attempt in range(2):  # the same moved checkpoint, continued twice: the same numbers
        trainer = Trainer.resume(tmp_path / "run", {"train.steps": 4})
        assert any("continues on cpu from a checkpoint saved on cuda" in w for w in trainer.warnings)
        state = trainer.state_dict()
        assert state["rng_device"] == "cpu"
        continued.append(trainer)
        trainer.step()
        trainer.step()
    assert continued[0].global_step == continued[1].global_step == 4
    _assert_states_equal(continued[0].state_dict(), continued[1].state_dict())


def test_a_run_on_the_same_device_loads_its_streams_without_a_warning(tiny_config, tmp_path):
    config = tiny_config.with_overrides(["train.steps=2", "train.checkpoint_every=1000", "train.sample_every=1000"])
    first = Trainer(config, tmp_path / "run")
    first.run()
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.warnings == []
    assert torch.equal(resumed.state.rngs.noise.get_state(), first.state.rngs.noise.get_state())


def test_a_checkpoint_older_than_rng_device_still_loads_its_cpu_streams(tiny_config, tmp_path):
    config = tiny_config.with_overrides(["train.steps=2", "train.checkpoint_every=1000", "train.sample_every=1000"])
    first = Trainer(config, tmp_path / "run")
    first.run()
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    payload = checkpoint.load(path)
    del payload["state"]["rng_device"]
    checkpoint.save(path, {k: v for k, v in payload.items() if not k.startswith(("format", "ganstudio_version"))})
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.warnings == []
    assert torch.equal(resumed.state.rngs.penalty.get_state(), first.state.rngs.penalty.get_state())
