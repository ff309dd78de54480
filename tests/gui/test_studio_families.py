"""Every model family trains in the studio: the worker runs it, and the plots and gallery follow it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from ganstudio.gui.main_window import MainWindow

FAMILIES = {
    "cgan": ["model.family='cgan'", "train.num_samples=20"],
    "autoencoder": ["model.family='autoencoder'", "loss.name='mse'", "data.holdout=16"],
    "vae": ["model.family='vae'", "loss.name='bernoulli'", "data.holdout=16"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_in_the_studio(qtbot, tmp_path, tiny_config, family, artifacts_dir):
    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        runs_root=tmp_path / "runs")
    qtbot.addWidget(window)
    config = tiny_config.with_overrides(FAMILIES[family] + ["train.sample_every=2", "train.log_every=1"])
    window.form.set_config(config)
    window.show()
    qtbot.waitExposed(window)
    try:
        adversarial = family == "cgan"
        assert window.actions["step_d"].isEnabled() == adversarial
        window.actions["start"].trigger()
        qtbot.waitUntil(lambda: window.run.last_row is not None and window.run.last_row["step"] >= 4,
                        timeout=60_000)
        qtbot.waitUntil(lambda: window.gallery.snapshot_count() >= 2, timeout=60_000)
        window.actions["stop"].trigger()
        qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=60_000)
        keys = {"cgan": "loss_d", "autoencoder": "recon", "vae": "kl"}[family]
        assert keys in window.run.last_row
        assert window.plots.point_count() > 0
        window.grab().save(str(artifacts_dir / f"studio_{family}.png"))
    finally:
        window.run.shutdown()
