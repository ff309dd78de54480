"""MetricsPanel: evaluation rows in, points out; the panels follow the family and the data."""

from __future__ import annotations

import pytest

from ganstudio.gui.metrics_panel import MetricsPanel


@pytest.fixture
def panel(qtbot):
    widget = MetricsPanel()
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    return widget


def points(panel, key):
    x, y = panel.curves[key].getData()
    return ([] if x is None else list(x)), ([] if y is None else list(y))


GAN_ROW = {"step": 500, "fid": 41.5, "kid": 0.0123, "kid_std": 0.001, "is": 3.2, "precision": 0.6, "recall": 0.4,
           "eval_samples": 1000}
VAE_ROW = {"step": 300, "recon_mse": 0.0215, "recon": 22.5, "kl": 14.0, "elbo": -36.5, "fid": 60.2, "kid": 0.05,
           "is": 2.5, "precision": 0.5, "recall": 0.3, "eval_samples": 500}
AE_ROW = {"step": 200, "recon_mse": 0.0101, "recon": 8.0, "eval_samples": 500}


def test_gan_rows_plot_sample_quality(panel):
    assert panel.shown_panels() == ("fid", "kid", "is", "pr")
    panel.append([{"step": 100, "loss_d": 0.5}, GAN_ROW])  # a training row is not an evaluation
    assert panel.point_count() == 1
    assert points(panel, "fid") == ([500], [41.5]) and points(panel, "kid")[1] == [pytest.approx(12.3)]
    assert panel.shown_panels() == ("fid", "kid", "is", "pr")
    assert panel.summary.text().startswith("step 500: FID@1000 41.5, KID@1000 0.0123 ± 0.001")


def test_vae_rows_show_reconstruction_elbo_and_fid(panel):
    panel.set_family("vae")
    assert panel.shown_panels() == ("recon_mse", "elbo", "fid", "kid", "is", "pr")  # before any evaluation
    panel.append([VAE_ROW])
    assert points(panel, "recon_mse") == ([300], [0.0215])
    assert points(panel, "kl") == ([300], [14.0]) and points(panel, "elbo") == ([300], [36.5])  # shown as −ELBO
    assert points(panel, "fid") == ([300], [60.2])
    assert panel.shown_panels() == ("recon_mse", "elbo", "fid", "kid", "is", "pr")
    text = panel.summary.text()
    assert "reconstruction MSE 0.0215" in text and "KL 14" in text and "ELBO -36.5" in text and "FID@500 60.2" in text


def test_autoencoder_shows_only_what_it_measured(panel):
    panel.set_family("autoencoder")
    assert panel.shown_panels() == ("recon_mse", "elbo")
    panel.load_rows([{"step": 100, "recon": 30.0, "images_per_s": 10.0}, AE_ROW])  # a training "recon" row
    assert points(panel, "recon") == ([200], [8.0]) and panel.shown_panels() == ("recon_mse", "elbo")
    assert panel.summary.text() == "step 200: reconstruction MSE 0.0101, reconstruction 8"
    panel.clear()
    assert panel.point_count() == 0 and panel.summary.text().startswith("No evaluation yet")


def test_panels_follow_the_data_of_a_reopened_run(panel):
    panel.load_rows([GAN_ROW])
    panel.set_family("autoencoder")  # the data decides while there is some
    assert panel.shown_panels() == ("fid", "kid", "is", "pr")
    panel.load_rows([AE_ROW, {**AE_ROW, "step": 400, "recon_mse": 0.008}])
    assert panel.shown_panels() == ("recon_mse", "elbo") and points(panel, "recon_mse")[0] == [200, 400]


def test_screenshot_vae(qtbot, panel, artifacts_dir):
    panel.set_family("vae")
    rows = [{**VAE_ROW, "step": s, "recon_mse": 0.05 / (1 + s / 500), "recon": 40 / (1 + s / 800),
             "kl": 8 + s / 200, "elbo": -(40 / (1 + s / 800) + 8 + s / 200), "fid": 90 / (1 + s / 400)}
            for s in range(0, 3001, 500)]
    panel.load_rows(rows)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.grab().save(str(artifacts_dir / "metrics_vae.png"))


def test_a_lone_evaluation_gets_a_sensible_range_and_the_legend_lists_only_what_was_measured(qtbot, panel):
    panel.show()
    qtbot.waitExposed(panel)
    panel.append([{"step": 509, "fid": 120.0, "precision": 0.6, "recall": 0.4, "eval_samples": 500}])
    x_low, x_high = panel.plots["fid"].viewRange()[0]
    assert x_low <= 0 and x_high >= 509  # not 508.6 to 509.4
    y_low, y_high = panel.plots["fid"].viewRange()[1]
    assert y_low <= 108 and y_high >= 132  # at least ±10% around the one value
    assert panel.legend_names("pr") == ["precision", "recall"]  # density and coverage were not measured
    panel.append([{"step": 1000, "fid": 90.0, "precision": 0.7, "recall": 0.5, "density": 0.9, "coverage": 0.8,
                   "eval_samples": 500}])
    assert panel.legend_names("pr") == ["precision", "recall", "density", "coverage"]
    assert panel.plots["fid"].vb.autoRangeEnabled()[1]  # two values: back to following the data
