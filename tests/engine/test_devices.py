"""train.device: names the config accepts, and what a machine without that device says (simulated)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ganstudio.config import ConfigError
from ganstudio.engine.devices import available_devices, check_precision, describe_devices, resolve_device


def _machine(monkeypatch, cuda: int = 0, mps: bool = False, bf16: bool = True) -> None:
    """Pretend this machine has ``cuda`` CUDA GPUs and, or not, an Apple-silicon GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Tesla T4")
    # 14.7 GiB, as a T4 reports it: listed as 14 GiB (rounded down, never promising more)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index=None: SimpleNamespace(name="Tesla T4", total_memory=15_828_320_256))


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_device_names_the_config_accepts(tiny_config, name):
    assert tiny_config.updated("train.device", name).train.device == name


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "CUDA", "cuda0", "mps:0", "tpu", ""])
def test_device_names_the_config_refuses_name_the_field(tiny_config, name):
    with pytest.raises(ConfigError, match=r"train\.device.*auto, cpu, cuda, cuda:N"):
        tiny_config.updated("train.device", name)


@pytest.mark.parametrize("cuda, mps, expected", [(2, True, "cuda"), (0, True, "mps"), (0, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    _machine(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto").type == expected


def test_present_devices_resolve(monkeypatch):
    _machine(monkeypatch, cuda=2, mps=False)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")
    assert available_devices() == ["cpu", "cuda:0", "cuda:1"]


def test_devices_are_described_for_a_person_choosing_one(monkeypatch):
    _machine(monkeypatch, cuda=2, mps=True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    assert describe_devices() == [("cpu", "cpu (16 threads)"), ("cuda:0", "cuda:0 Tesla T4, 14 GiB"),
                                  ("cuda:1", "cuda:1 Tesla T4, 14 GiB"), ("mps", "mps Apple GPU")]
    _machine(monkeypatch, cuda=0, mps=False)
    assert describe_devices() == [("cpu", "cpu (16 threads)")]


@pytest.mark.parametrize("cuda, mps, name, says", [
    (1, False, "cuda:3", r"train\.device = 'cuda:3' but there is no CUDA device 3 \(this machine has cpu, cuda:0\)"),
    (0, False, "cuda", r"train\.device = 'cuda' but no CUDA device is available \(this machine has cpu\)"),
    (0, True, "cuda:0", r"no CUDA device is available \(this machine has cpu, mps\)"),
    (2, False, "mps", r"train\.device = 'mps' but no Apple-silicon GPU \(MPS\).*has cpu, cuda:0, cuda:1"),
])
def test_a_device_that_is_not_present_gets_one_line_saying_what_there_is(monkeypatch, cuda, mps, name, says):
    _machine(monkeypatch, cuda=cuda, mps=mps)
    with pytest.raises(ConfigError, match=says) as err:
        resolve_device(name)
    assert "\n" not in str(err.value)


def test_a_trainer_on_a_missing_device_fails_before_building_anything(tiny_config, monkeypatch):
    _machine(monkeypatch, cuda=1)
    from ganstudio.engine import Trainer

    with pytest.raises(ConfigError, match="no CUDA device 3"):
        Trainer(tiny_config.updated("train.device", "cuda:3"))


def test_devices_lacking_a_precision_get_a_message(monkeypatch):
    _machine(monkeypatch, cuda=1, bf16=False)
    with pytest.raises(ConfigError, match=r"'fp16' needs a gradient scaler.*mps; use 'fp32', or 'bf16'"):
        check_precision("fp16", torch.device("mps"))
    with pytest.raises(ConfigError, match=r"'bf16' but cuda:0 \(Tesla T4, compute capability 7\.5\).*'fp16'"):
        check_precision("bf16", torch.device("cuda:0"))
    for precision in ("fp32", "bf16", "fp16"):
        check_precision(precision, torch.device("cpu"))  # the CPU runs all three
    check_precision("bf16", torch.device("mps"))


def test_the_cpu_generators_and_autocast_follow_the_device(tiny_config):
    from ganstudio.engine import Trainer

    trainer = Trainer(tiny_config.updated("train.precision", "bf16"))
    state = trainer.state
    assert state.rngs.noise.device == state.device == torch.device("cpu")
    assert state.precision.device_type == "cpu" and state.precision.dtype == torch.bfloat16
