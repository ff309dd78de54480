"""Shared fixtures: tiny configs that train in well under a second a step on two CPU cores."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's dataset cache, settings or runs."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("GANSTUDIO_CACHE", str(base / "cache"))
    monkeypatch.setenv("GANSTUDIO_SETTINGS", str(base / "settings.ini"))  # never the user's QSettings
    monkeypatch.setenv("GANSTUDIO_RUNS", str(base / "runs"))


@pytest.fixture
def tiny_config():
    """A DCGAN a few thousand parameters big on 256 bundled images, logging every step."""
    from ganstudio.config import RunConfig

    return RunConfig.model_validate({
        "name": "tiny",
        "data": {"source": "bundled", "max_images": 256, "image_size": 28},
        "model": {"arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8},
        "train": {"batch_size": 16, "device": "cpu", "log_every": 1, "sample_every": 5,
                  "checkpoint_every": 5, "num_samples": 16, "seed": 1},
    })
