"""A trained generator as a file other programs run: TorchScript (``.pt``) or ONNX (``.onnx``).

The exported model is G in eval mode on the CPU (the EMA weights when the run kept them): it takes
``z`` float32 (B, z_dim) and, for a class-conditional G, ``labels`` int64 (B,), and returns images
float32 (B, C, H, W) in [-1, 1]. The batch size B is free. Nothing is written until the export has
been loaded back (``torch.jit.load``; onnxruntime for ONNX) and matched the live model within
``TOLERANCE`` at several batch sizes, so a file at the output path always works.

TorchScript (``torch.jit.trace``) is deprecated in favour of torch.export: the docs say so from torch
2.9 and 2.11 made it formal. In 2.14 it still works, warning on every trace, save and load; those
warnings are silenced here, because the round trip below is what tells whether a file is good.
ONNX uses torch's ``dynamo=True`` exporter (torch.export, then onnxscript), which names the batch
dimension "batch"; it needs the ``onnx`` extra: ``pip install 'ganstudio[onnx]'``.
Costs: a TorchScript export of the tiny test models takes well under a second; ONNX about 2 s.
"""

from __future__ import annotations

import copy
import io
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganstudio.engine.inference import num_classes
from ganstudio.export_checks import ExportError, check_output_file  # not ganstudio.export: that one runs these
from ganstudio.fileio import atomic_write_bytes

TOLERANCE = 1e-4        # max abs difference, in [-1, 1] pixel units, between the file and the live model
CHECK_BATCHES = (1, 5)  # batch sizes the round trip runs: 1 is the usual special case of dynamic shapes
_TRACE_BATCH = 3        # export traces with 3 rows: torch.export specialises sizes 0 and 1
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
ONNX_HINT = "pip install 'ganstudio[onnx]'"


@dataclass(frozen=True)
class ModelExport:
    """What was written, and how closely it reproduced the live generator."""

    path: Path
    format: str                  # "TorchScript" or "ONNX"
    inputs: tuple[str, ...]      # ("z",) or ("z", "labels")
    max_abs_diff: float          # worst difference over the checked batch sizes
    batches: tuple[int, ...]     # batch sizes checked


def export_torchscript(g: nn.Module, out: str | Path) -> ModelExport:
    """Trace G to TorchScript, check it round-trips, then write ``out`` (``.pt``) atomically."""
    out = check_output_file(Path(out), (".pt", ".pts"), "TorchScript")
    model = _frozen_copy(g)
    with _quiet_jit():
        traced = torch.jit.trace(model, _inputs(model, _TRACE_BATCH, seed=0), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    data = buffer.getvalue()
    diff = _round_trip(model, _torchscript_runner(data, out), "TorchScript", out)
    _write(out, data)
    return ModelExport(out, "TorchScript", input_names(model), diff, CHECK_BATCHES)


def export_onnx(g: nn.Module, out: str | Path) -> ModelExport:
    """Export G to ONNX with a dynamic batch dimension, check it in onnxruntime, then write ``out``."""
    out = check_output_file(Path(out), (".onnx",), "ONNX")
    require_onnx()
    model = _frozen_copy(g)
    names = input_names(model)
    batch = torch.export.Dim("batch")
    # the labels' batch is the same symbol as z's; naming it again makes torch warn, so it stays anonymous
    shapes = {"z": {0: batch}, **({"labels": {0: torch.export.Dim.DYNAMIC}} if len(names) == 2 else {})}
    try:
        program = torch.onnx.export(model, _inputs(model, _TRACE_BATCH, seed=0), dynamo=True, verbose=False,
                                    input_names=list(names), output_names=["images"], dynamic_shapes=shapes)
        buffer = io.BytesIO()
        program.save(buffer, external_data=False)  # one self-contained file (generators are far below 2 GB)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; the person needs one message
        raise ExportError(f"ONNX export of the generator failed: {type(err).__name__}: {err}") from err
    data = buffer.getvalue()
    diff = _round_trip(model, _onnx_runner(data, out), "ONNX", out)
    _write(out, data)
    return ModelExport(out, "ONNX", names, diff, CHECK_BATCHES)


def export_run(run_dir: str | Path, which: str = "last", *, torchscript: str | Path | None = None,
               onnx: str | Path | None = None) -> list[ModelExport]:
    """Export a run's generator (EMA weights when kept) to the formats given; every check comes first."""
    from ganstudio.export_images import load_for_export

    if torchscript is None and onnx is None:
        raise ExportError("nothing to export: give a TorchScript (.pt) or an ONNX (.onnx) output")
    check_model_outputs(torchscript, onnx)
    _, g = load_for_export(run_dir, which)
    done = [export_torchscript(g, torchscript)] if torchscript is not None else []
    return done + ([export_onnx(g, onnx)] if onnx is not None else [])


def check_model_outputs(torchscript: str | Path | None, onnx: str | Path | None) -> None:
    """ExportError for an output name, a folder or a missing ONNX package, before anything is exported."""
    if torchscript is not None:
        check_output_file(Path(torchscript), (".pt", ".pts"), "TorchScript")
    if onnx is not None:
        check_output_file(Path(onnx), (".onnx",), "ONNX")
        require_onnx()


def check_torchscript(path: str | Path, g: nn.Module) -> float:
    """Load a TorchScript file and compare it with ``g``; the max abs difference, ExportError if too big."""
    path = Path(path)
    return _round_trip(_frozen_copy(g), _torchscript_runner(_read(path), path), "TorchScript", path)


def check_onnx(path: str | Path, g: nn.Module) -> float:
    """Run an ONNX file in onnxruntime and compare it with ``g``, as ``check_torchscript``."""
    require_onnx()
    path = Path(path)
    return _round_trip(_frozen_copy(g), _onnx_runner(_read(path), path), "ONNX", path)


def require_onnx() -> None:
    """ExportError naming the extra to install when the ONNX packages are missing."""
    import importlib.util

    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"ONNX export needs the optional packages {', '.join(ONNX_PACKAGES)} "
                          f"(missing: {', '.join(missing)}); install them with {ONNX_HINT}")


def input_names(g: nn.Module) -> tuple[str, ...]:
    return ("z", "labels") if num_classes(g) else ("z",)


# --- helpers -------------------------------------------------------------------------------------
def _frozen_copy(g: nn.Module) -> nn.Module:
    """A CPU float32 copy in eval mode: the export never changes (or moves) the caller's G."""
    return copy.deepcopy(g).float().cpu().eval().requires_grad_(False)


def _inputs(g: nn.Module, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, g.z_dim, generator=rng)
    if not num_classes(g):
        return (z,)
    return z, torch.randint(0, num_classes(g), (batch,), generator=rng)


def _round_trip(model: nn.Module, run, what: str, path: Path) -> float:
    """Max abs difference between ``run(inputs)`` and the live model over CHECK_BATCHES."""
    worst = 0.0
    for i, batch in enumerate(CHECK_BATCHES):
        inputs = _inputs(model, batch, seed=1000 + i)
        with torch.no_grad():
            expected = model(*inputs).numpy()
        try:
            got = np.asarray(run(inputs))
        except Exception as err:  # noqa: BLE001 - a broken file fails in the runtime's own way
            raise ExportError(f"the {what} file {path} does not run with a batch of {batch}: "
                              f"{type(err).__name__}: {err}") from err
        if got.shape != expected.shape:
            raise ExportError(f"the {what} file {path} gives shape {got.shape} for a batch of {batch}, "
                              f"the generator {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
        if not worst <= TOLERANCE:  # also catches NaN
            raise ExportError(f"the {what} file {path} differs from the live generator by {worst:.3g} "
                              f"(allowed {TOLERANCE:g}) with a batch of {batch}; nothing was written")
    return worst


def _torchscript_runner(data: bytes, path: Path):
    try:
        with _quiet_jit():
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError or worse for a damaged file
        raise ExportError(f"cannot load {path} as TorchScript: it is truncated or not a TorchScript file "
                          f"({type(err).__name__})") from err

    def run(inputs):
        with torch.no_grad():
            return loaded(*inputs).numpy()
    return run


def _onnx_runner(data: bytes, path: Path):
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportError(f"cannot load {path} in onnxruntime: it is truncated or not an ONNX model "
                          f"({type(err).__name__})") from err
    names = [i.name for i in session.get_inputs()]

    def run(inputs):
        return session.run(None, {name: x.numpy() for name, x in zip(names, inputs)})[0]
    return run


@contextmanager
def _quiet_jit():
    """Silences torch.jit's deprecation notices and the tracer's warnings (the round trip checks instead)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ExportError(f"cannot read {path}: {err.strerror or err}") from err


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise ExportError(f"could not write {path}: {err.strerror or err}") from err

