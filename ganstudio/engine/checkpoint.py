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
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except OSError as err:
        raise CheckpointError(
            f"could not write checkpoint {path}: {err.strerror or err}; the previous checkpoint is intact"
        ) from err


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
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
