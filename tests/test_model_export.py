"""Generator export to TorchScript and ONNX (ganstudio/model_export.py) and `ganstudio export --torchscript/--onnx`."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from ganstudio import model_export
from ganstudio.cli import main
from ganstudio.config import ModelConfig
from ganstudio.engine import checkpoint
from ganstudio.export import ExportError
from ganstudio.model_export import (
    TOLERANCE, check_onnx, check_torchscript, export_onnx, export_run, export_torchscript, require_onnx,
)
from ganstudio.models import build_models

# torch 2.14 warns that TorchScript is deprecated on every jit call; these tests load files with it on purpose
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\..*` is deprecated:FutureWarning")

GENERATORS = {  # the networks a run exports: a GAN's G, a cgan's G(z, labels), a VAE's decoder
    "gan-mlp": {"family": "gan", "arch": "mlp"},
    "gan-dcgan": {"family": "gan", "arch": "dcgan"},
    "cgan-dcgan": {"family": "cgan", "arch": "dcgan", "num_classes": 10},
    "vae-decoder": {"family": "vae", "arch": "dcgan"},
}


def _generator(name: str) -> nn.Module:
    """A tiny generator whose images span [-1, 1] like a trained one's (torch's default init, batch-norm
    statistics from a few batches), not the flat grey of a fresh DCGAN init: a match within 1e-4 then
    means something."""
    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=8, g_width=8, d_width=8, **GENERATORS[name])
    g, _ = build_models(cfg, image_size=28, channels=1)
    norms = [m for m in g.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for module in g.modules():
        if hasattr(module, "reset_parameters") and not isinstance(module, nn.Embedding):
            module.reset_parameters()
    for norm in norms:
        norm.momentum = None  # running statistics = the plain average over the batches below
    g.train()
    with torch.no_grad():
        for _ in range(4):
            g(*_inputs(g, 64))
    for norm in norms:
        norm.momentum = 0.1
    return g.eval()


def _inputs(g: nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    z = torch.randn(batch, 8, generator=torch.Generator().manual_seed(batch))
    return (z, torch.arange(batch) % 10) if g.num_classes else (z,)


@pytest.mark.parametrize("name", GENERATORS)
def test_torchscript_round_trip(name, tmp_path):
    g = _generator(name)
    done = export_torchscript(g, tmp_path / "g.pt")
    assert done.path.is_file() and done.format == "TorchScript" and done.max_abs_diff <= TOLERANCE
    assert done.inputs == (("z", "labels") if g.num_classes else ("z",))
    loaded = torch.jit.load(str(tmp_path / "g.pt"))
    for batch in (1, 5, 17):  # any batch size, not just the traced one
        inputs = _inputs(g, batch)
        with torch.no_grad():
            expected, got = g(*inputs), loaded(*inputs)
        assert got.shape == (batch, 1, 28, 28) and expected.std() > 0.05
        assert (got - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("name", GENERATORS)
def test_onnx_round_trip_with_a_dynamic_batch(name, tmp_path, capfd):
    g = _generator(name)
    done = export_onnx(g, tmp_path / "g.onnx")
    assert done.format == "ONNX" and done.max_abs_diff <= TOLERANCE
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the exporter's progress lines and warnings stay quiet
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == list(done.inputs) and session.get_inputs()[0].shape == ["batch", 8]
    for batch in (1, 5):
        inputs = _inputs(g, batch)
        with torch.no_grad():
            expected = g(*inputs).numpy()
        got = session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]
        assert got.shape == (batch, 1, 28, 28) and np.abs(got - expected).max() <= TOLERANCE


def test_export_leaves_the_callers_generator_alone(tmp_path):
    g = _generator("gan-dcgan").train()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    export_torchscript(g, tmp_path / "g.pt")
    assert g.training  # exported in eval mode from a copy
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())


def test_a_file_that_does_not_match_is_refused(tmp_path):
    g, other = _generator("gan-mlp"), _generator("gan-dcgan")
    export_torchscript(g, tmp_path / "g.pt")
    export_onnx(g, tmp_path / "g.onnx")
    assert check_torchscript(tmp_path / "g.pt", g) <= TOLERANCE
    assert check_onnx(tmp_path / "g.onnx", g) <= TOLERANCE
    with torch.no_grad():
        other.main[0].weight.mul_(2)  # dcgan: same shapes, other numbers
    export_torchscript(other, tmp_path / "other.pt")
    different = _generator("gan-dcgan")
    with pytest.raises(ExportError, match=r"differs from the live generator by [\d.e+-]+ \(allowed 0.0001\)"):
        check_torchscript(tmp_path / "other.pt", different)
    cgan = _generator("cgan-dcgan")
    with pytest.raises(ExportError, match="does not run with a batch of 1"):
        check_torchscript(tmp_path / "g.pt", cgan)  # z only, but a cgan passes labels too


def test_corrupt_files_and_bad_output_paths_are_clear_errors(tmp_path):
    g = _generator("gan-mlp")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ExportError, match="cannot load .*junk.pt as TorchScript: it is truncated or not"):
        check_torchscript(tmp_path / "junk.pt", g)
    with pytest.raises(ExportError, match="cannot load .*junk.onnx in onnxruntime: it is truncated or not an ONNX"):
        check_onnx(tmp_path / "junk.onnx", g)
    with pytest.raises(ExportError, match="cannot read"):
        check_torchscript(tmp_path / "missing.pt", g)
    with pytest.raises(ExportError, match=r"TorchScript file .*g\.onnx must end in \.pt or \.pts"):
        export_torchscript(g, tmp_path / "g.onnx")
    with pytest.raises(ExportError, match=r"ONNX file .*g\.pt must end in \.onnx"):
        export_onnx(g, tmp_path / "g.pt")
    with pytest.raises(ExportError, match="does not exist; create it"):
        export_torchscript(g, tmp_path / "missing" / "g.pt")
    (tmp_path / "taken.onnx").mkdir()
    with pytest.raises(ExportError, match="is an existing folder"):
        export_onnx(g, tmp_path / "taken.onnx")


def test_nothing_is_written_when_the_check_fails(tmp_path, monkeypatch):
    g = _generator("gan-mlp")
    export_torchscript(g, tmp_path / "g.pt")
    previous = (tmp_path / "g.pt").read_bytes()
    monkeypatch.setattr(model_export, "TOLERANCE", -1.0)  # no file can pass
    for call, path in ((export_torchscript, tmp_path / "g.pt"), (export_onnx, tmp_path / "new.onnx")):
        with pytest.raises(ExportError, match="nothing was written"):
            call(_generator("gan-dcgan"), path)
    assert (tmp_path / "g.pt").read_bytes() == previous and not (tmp_path / "new.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]  # no temp files either


def test_without_the_onnx_extra_the_message_names_it(monkeypatch, tmp_path, trained_run, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ExportError, match=r"missing: onnxruntime\); install them with pip install 'ganstudio\[onnx\]'"):
        require_onnx()
    assert main(["export", str(trained_run), "--grid", str(tmp_path / "grid.png"), "--onnx",
                 str(tmp_path / "g.onnx")]) == 1
    assert "pip install 'ganstudio[onnx]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before the grid was written


# --- from a run folder, and the CLI --------------------------------------------------------------
def test_cli_exports_both_formats(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--torchscript", str(tmp_path / "g.pt"), "--onnx",
                 str(tmp_path / "g.onnx")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote the generator as TorchScript (z -> images) to {tmp_path / 'g.pt'}; it matches")
    assert lines[1].startswith(f"wrote the generator as ONNX (z -> images) to {tmp_path / 'g.onnx'}")
    assert "at batch sizes 1 and 5" in lines[1]
    assert (tmp_path / "g.pt").stat().st_size > 0 and (tmp_path / "g.onnx").stat().st_size > 0


def test_cli_model_export_errors(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--grid", str(tmp_path / "grid.png"), "--torchscript",
                 str(tmp_path / "g.onnx")]) == 1
    assert "must end in .pt" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # the model output is checked before the grid is written
    assert main(["export", str(tmp_path), "--torchscript", str(tmp_path / "g.pt")]) == 1
    assert "no checkpoints/last.pt yet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(trained_run)])
    assert "--torchscript, --onnx" in capsys.readouterr().err


def test_the_ema_weights_are_exported(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    path = run / "checkpoints" / "last.pt"
    payload = checkpoint.load(path)
    averaged = {k: v * 0.5 if v.is_floating_point() and k.endswith("weight") else v
                for k, v in payload["state"]["g"].items()}
    payload["state"]["g_ema"] = averaged
    checkpoint.save(path, {k: v for k, v in payload.items() if k not in ("format", "format_version",
                                                                         "ganstudio_version")})
    (done,) = export_run(run, torchscript=tmp_path / "g.pt")
    from ganstudio.engine.inference import load_generator

    _, g = load_generator(run)
    assert all(torch.equal(v, averaged[k]) for k, v in g.state_dict().items())
    assert check_torchscript(done.path, g) <= TOLERANCE
    g.load_state_dict(payload["state"]["g"])  # the last (not averaged) weights give other images
    with pytest.raises(ExportError, match="differs from the live generator"):
        check_torchscript(done.path, g)
