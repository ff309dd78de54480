"""benchmarks/gpu_check.py, the one-command GPU check, run on the CPU with tiny networks: its own logic
(every row trains, figures are finite, the resume check compares real runs) is tested without a GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_gpu_check_runs_every_row_on_the_cpu(tmp_path, monkeypatch):
    import gpu_check

    monkeypatch.chdir(tmp_path)
    table = tmp_path / "table.md"
    rows = gpu_check.main(["--device", "cpu", "--steps", "4", "--tiny", "--presets", "dcgan-fashion,vae",
                           "--precisions", "fp32,bf16", "--compile", "off", "--markdown", str(table)])
    assert [(r["name"], r["precision"]) for r in rows] == [
        ("dcgan-fashion", "fp32"), ("dcgan-fashion", "bf16"), ("vae", "fp32"), ("vae", "bf16")]
    assert all("error" not in r and r["finite"] and r["img/s"] > 0 for r in rows), rows
    assert [r.get("resume") for r in rows] == [True, None, True, None]  # checked once per preset, in fp32
    text = table.read_text()
    assert "| dcgan-fashion | bf16 | off |" in text and "exact" in text


def test_a_failing_row_is_reported_and_the_check_goes_on(tmp_path, monkeypatch):
    import gpu_check

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gpu_check, "reference", lambda args: 1.0)
    rows = gpu_check.main(["--device", "cpu", "--steps", "2", "--tiny", "--presets", "dcgan-fashion",
                           "--precisions", "fp64,fp32", "--compile", "off"])
    assert "error" in rows[0] and "precision" in rows[0]["error"]  # fp64 is not a precision: a finding
    assert "error" not in rows[1] and rows[1]["resume"] is True


def test_cuda_graph_rows_are_measured_for_the_small_presets_on_cuda_only(tmp_path, monkeypatch):
    import gpu_check

    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(gpu_check, "train_row", lambda config, steps: seen.append(config.train) or
                        {"img/s": 1.0, "seconds": 1.0, "peak": 0.1, "finite": True, "images/step": 64})
    monkeypatch.setattr(gpu_check, "resumes_exactly", lambda config, steps, root: True)
    monkeypatch.setattr(gpu_check, "reference", lambda args: 1.0)
    monkeypatch.setattr(gpu_check.torch.cuda, "get_device_name", lambda *a: "a fake GPU")
    rows = gpu_check.main(["--device", "cuda", "--steps", "2", "--tiny", "--presets", "dcgan-fashion,resnet-128",
                           "--precisions", "fp32"])
    assert [(r["name"], r["compile"]) for r in rows] == [
        ("dcgan-fashion", "off"), ("dcgan-fashion", "on"), ("dcgan-fashion", "graphs"),
        ("resnet-128", "off"), ("resnet-128", "on")]  # 128 px: launch overhead is not what limits it
    assert [(t.compile, t.cuda_graphs) for t in seen] == [
        (False, False), (True, False), (True, True), (False, False), (True, False)]
    cpu = gpu_check.main(["--device", "cpu", "--steps", "2", "--tiny", "--presets", "dcgan-fashion",
                          "--precisions", "fp32", "--compile", "graphs"])
    assert cpu == []  # no CUDA: no graph rows
