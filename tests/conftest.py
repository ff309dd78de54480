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


@pytest.fixture(autouse=True)
def _collector_back_after_windows():
    """A main window turns Python's automatic garbage collection off while it lives (gui/threads.py); a
    test must not leave one alive, or every later test would run without it. Windows closed with
    deleteLater are deleted here, where no event loop would otherwise do it."""
    yield
    import sys

    threads = sys.modules.get("ganstudio.gui.threads")
    if threads is None or not threads.collector_owners():
        return
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert not threads.collector_owners(), "the test left a main window alive"


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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 6-step tiny DCGAN run, trained once per session: sample grids at steps 0, 2, 4, 6 and
    checkpoints/last.pt. Read-only: a test that writes into a run copies it first."""
    from ganstudio.config import RunConfig
    from ganstudio.engine import Trainer

    config = RunConfig.model_validate({
        "name": "tiny",
        "data": {"source": "bundled", "max_images": 128, "image_size": 28},
        "model": {"arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8},
        "train": {"batch_size": 16, "device": "cpu", "log_every": 1, "sample_every": 2, "steps": 6,
                  "checkpoint_every": 5, "num_samples": 16, "seed": 1},
    })
    path = tmp_path_factory.mktemp("trained") / "tiny-run"
    trainer = Trainer(config, path)
    trainer.run()
    trainer.close()
    return path


def _family_run(path, family: str, steps: int, **model):
    from ganstudio.config import RunConfig
    from ganstudio.engine import Trainer

    vae = family == "vae"
    config = RunConfig.model_validate({
        "name": family, "data": {"source": "bundled", "max_images": 64, "image_size": 28, "holdout": 16},
        "model": {"family": family, "arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8, **model},
        "loss": {"name": "bernoulli"} if vae else {},
        "optim": {"lr_g": 3e-3, "lr_d": 3e-3, "beta1": 0.9} if vae else {},
        "train": {"batch_size": 16, "device": "cpu", "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
                  "num_samples": 10, "seed": 3, "steps": steps}})
    trainer = Trainer(config, path)
    trainer.run()
    trainer.close()
    return path


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory):
    """A 3-step tiny class-conditional DCGAN run (10 classes, z_dim 8). Read-only."""
    return _family_run(tmp_path_factory.mktemp("cgan") / "cgan-run", "cgan", steps=3, num_classes=10)


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    """A 20-step tiny DCGAN VAE run (z_dim 8, 16 held-out images): codes and images that differ. Read-only."""
    return _family_run(tmp_path_factory.mktemp("vae") / "vae-run", "vae", steps=20)
