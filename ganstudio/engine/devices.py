"""Which device a run trains on, and whether that device can do what the config asks of it.

``train.device`` is checked for its form by the config (``cuda:7`` is a valid name on any machine); this
module checks it against the machine at hand, when a Trainer is built, and says what the machine has
instead. Nothing else in the engine names a device: it follows ``TrainState.device``.
"""

from __future__ import annotations

import torch

from ganstudio.config import ConfigError


def available_devices() -> list[str]:
    """The device names this machine has: ``cpu``, then ``cuda:0`` …, then ``mps``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def describe_devices() -> list[tuple[str, str]]:
    """``(value, label)`` for each device of ``available_devices``, in its order, for a person choosing
    one: ``("cpu", "cpu (16 threads)")``, ``("cuda:0", "cuda:0 NVIDIA H200, 139 GiB")``, ``("mps", "mps Apple GPU")``.

    Cost: the first call initialises CUDA where there is a GPU (names and memory need it), a fraction of a
    second or more; the studio calls it off the GUI thread. Memory is rounded down: never promise more.
    """
    described = []
    for name in available_devices():
        if name.startswith("cuda:"):
            index = int(name.partition(":")[2])
            gib = torch.cuda.get_device_properties(index).total_memory // 2**30
            described.append((name, f"{name} {torch.cuda.get_device_name(index)}, {gib} GiB"))
        elif name == "mps":
            described.append((name, "mps Apple GPU"))
        else:  # torch's default intra-op threads, which train.threads = 0 keeps
            described.append((name, f"cpu ({torch.get_num_threads()} threads)"))
    return described


def resolve_device(name: str) -> torch.device:
    """The torch device for a ``train.device`` value; ``auto`` picks CUDA, then MPS, then the CPU.
    ConfigError, naming what this machine has, for a device that is not present."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    has = f"this machine has {', '.join(available_devices())}"
    if name.startswith("cuda"):
        if not name.removeprefix("cuda").removeprefix(":").isdigit() and name != "cuda":
            raise ConfigError(f"train.device = {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps")
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device = {name!r} but no CUDA device is available ({has}); use 'auto' or 'cpu'")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device = {name!r} but there is no CUDA device {index} ({has}); "
                              f"use 'cuda' or 'cuda:0' … 'cuda:{torch.cuda.device_count() - 1}'")
    elif name == "mps" and not _mps_available():
        raise ConfigError(f"train.device = 'mps' but no Apple-silicon GPU (MPS) is available ({has}); "
                          "use 'auto' or 'cpu'")
    elif name not in ("cpu", "mps"):
        raise ConfigError(f"train.device = {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    """ConfigError when ``device`` cannot train at ``precision`` (a sentence, not a traceback later)."""
    if precision == "fp16" and device.type == "mps":
        # GradScaler's MPS support is recent and untested here; bf16 needs no scaler at all
        raise ConfigError("train.precision = 'fp16' needs a gradient scaler, which ganstudio does not run on "
                          "mps; use 'fp32', or 'bf16' (macOS 14 or later)")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        raise ConfigError(f"train.precision = 'bf16' but {device} ({torch.cuda.get_device_name(index)}, compute "
                          f"capability {major}.{minor}) has no bf16 arithmetic (it needs 8.0, Ampere, or newer); "
                          "use 'fp16' or 'fp32'")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
