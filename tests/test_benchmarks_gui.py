"""The GUI benchmarks' arithmetic: a steady images/s that holds for any n_critic."""

import importlib.util
from pathlib import Path

import pytest

from ganstudio.config import load_preset


def _load(name):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_steady_rate_skips_the_first_interval_and_weights_by_time():
    gui_latency = _load("gui_latency")
    config = load_preset("wgan-gp", ["train.batch_size=64"])  # n_critic 5: 320 images a step
    rows = [{"step": 10, "steps": 10, "images_per_s": 1.0},  # start-up: left out
            {"step": 20, "steps": 10, "images_per_s": 3200.0},  # 1 s
            {"step": 40, "steps": 20, "images_per_s": 1600.0}]  # 4 s
    assert gui_latency.steady_rate(rows, config) == pytest.approx(30 * 320 / 5.0)


def test_startup_runs_the_installed_command():
    startup = _load("startup")
    command = startup.studio_command()
    assert (len(command) == 1 and Path(command[0]).name == "ganstudio") or command[1:] == ["-m", "ganstudio"]
