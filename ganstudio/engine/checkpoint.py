"""Checkpoint files: everything needed to continue a run exactly, loaded without unpickling code.

A checkpoint is a dict of tensors and plain Python values written with ``torch.save`` and read with
``torch.load(weights_only=True)``, which refuses any pickled object that is not a tensor, a container
or a primitive (so a malicious file runs nothing). numpy's RNG state is stored as a tensor for that
reason.
"""

from __future__ import annotations

import pickle
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganstudio import __version__
from ganstudio.fileio import atomic_write

FORMAT = "ganstudio.checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "ganstudio_version", "config", "step", "state")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or is not one this ganstudio can continue from."""


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: the previous file at ``path`` survives any failure, a full disk included."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "ganstudio_version": __version__, **payload}
    existed = Path(path).is_file()
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except (OSError, RuntimeError) as err:  # torch reports some write failures as RuntimeError only
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        kept = "the previous checkpoint is intact" if existed else "no earlier checkpoint exists there"
        raise CheckpointError(f"could not write checkpoint {path}: {reason}; {kept}") from err


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we report below
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # garbage bytes, not a pickled object we refused
            raise CheckpointError(f"cannot read checkpoint {path}: it is truncated or not a checkpoint") from err
        raise CheckpointError(
            f"refused to load {path}: it contains objects other than tensors and plain values "
            f"(not a ganstudio checkpoint, or a tampered one); nothing in it was run"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: it is truncated or not a checkpoint ({err})") from err
    _check_compatible(path, payload)
    _check_types(path, payload)
    _check_belongs(path, payload)
    return payload


def _check_compatible(path: Path, payload: Any) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganstudio checkpoint (no '{FORMAT}' header)")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is an incomplete ganstudio checkpoint (missing {', '.join(missing)})")
    version = payload["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, written by ganstudio {payload['ganstudio_version']}; "
            f"this ganstudio {__version__} reads format {FORMAT_VERSION} only"
        )


# What load_state_dict reads from "state", by type: a wrongly typed entry is named here rather than
# surfacing as "'int' object has no attribute 'cpu'" deep inside a load.
_STATE_TENSOR_MAPS = ("g", "d", "g_ema")
_STATE_TENSORS = ("fixed_noise", "noise_rng", "penalty_rng", "augment_rng")
_STATE_DICTS = ("opt_g", "opt_d", "data", "rng")
_STATE_NUMBERS = ("elapsed", "best_score")
_STATE_INTS = ("step", "evals_since_best", "world_size")
_STATE_NAMES = ("rng_device",)


def _check_types(path: Path, payload: dict) -> None:
    """Every entry a resume or an export reads has the type it must have; a CheckpointError names the first
    that does not (a hand-edited or foreign file)."""
    def wrong(key: str, value: Any, wanted: str) -> CheckpointError:
        return CheckpointError(f"{path} is damaged: {key} is {type(value).__name__} {_short(value)}, "
                               f"not {wanted}; use another checkpoint (checkpoints/best.pt, or a copy)")

    if not _is_int(payload["step"]) or payload["step"] < 0:
        raise wrong("step", payload["step"], "a step count (a whole number ≥ 0)")
    for key in ("config", "state"):
        if not isinstance(payload[key], dict):
            raise wrong(key, payload[key], "a table")
    state = payload["state"]
    for key in _STATE_TENSOR_MAPS:
        if key in state and not (isinstance(state[key], dict) and
                                 all(isinstance(v, torch.Tensor) for v in state[key].values())):
            raise wrong(f"state.{key}", state[key], "a table of tensors (network weights)")
    for key in _STATE_TENSORS:
        if key in state and not isinstance(state[key], torch.Tensor):
            raise wrong(f"state.{key}", state[key], "a tensor")
    for key in _STATE_DICTS:
        if key in state and not isinstance(state[key], dict):
            raise wrong(f"state.{key}", state[key], "a table")
    for key in _STATE_NUMBERS:
        if key in state and (isinstance(state[key], bool) or not isinstance(state[key], int | float)):
            raise wrong(f"state.{key}", state[key], "a number")
    for key in _STATE_INTS:
        if key in state and not _is_int(state[key]):
            raise wrong(f"state.{key}", state[key], "a whole number")
    for key in _STATE_NAMES:
        if key in state and not isinstance(state[key], str):
            raise wrong(f"state.{key}", state[key], "a name")
    if "step" in state and state["step"] != payload["step"]:
        raise CheckpointError(f"{path} is damaged: it says step {payload['step']} but its state is at step "
                              f"{state['step']}; use another checkpoint")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_belongs(path: Path, payload: dict) -> None:
    """A checkpoint in a run folder's checkpoints/ must be that run's: its config may differ from the
    folder's config.toml only in live fields, budgets and placement (``config.may_differ_within_run``).
    An mlp checkpoint copied into a dcgan run would otherwise be resumed, sampled and exported as that run.
    A run folder whose config.toml is missing or unreadable cannot say; the checkpoint's own config rules.
    """
    from ganstudio.config import ConfigError, RunConfig, from_dict, identity_differences

    path = Path(path)
    if path.parent.name != "checkpoints" or not (path.parent.parent / "config.toml").is_file():
        return
    toml = path.parent.parent / "config.toml"
    try:
        folder_config = RunConfig.load(toml)
        own = from_dict(payload["config"], source=f"checkpoint {path}")
    except ConfigError:
        return  # an unreadable config.toml, or a checkpoint config the loaders report themselves
    differences = identity_differences(own, folder_config)
    if differences:
        listed = "; ".join(f"{key} = {a!r} in the checkpoint, {b!r} in config.toml" for key, a, b in differences)
        raise CheckpointError(
            f"{path} belongs to another run: its config differs from {toml} in {listed}. Move it out of "
            f"{path.parent.parent} (and pass the file itself) to use it on its own, or put back this run's checkpoint")


# --- random number generators ------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """The global RNG states of python, numpy, torch and CUDA, in weights_only-safe types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # one state per GPU of the machine that saved it; a run continued on fewer GPUs (saved on two,
        # resumed on one) restores the GPUs both machines have (set_rng_state_all would fail on the rest)
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
