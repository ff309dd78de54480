"""The status bar's ETA: right for every family and n_critic, from Progress events and logged rows."""

from __future__ import annotations

import pytest

from ganstudio.config import load_preset
from ganstudio.gui.status import Eta, StatusBar, eta_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_eta_with_n_critic_5_counts_steps_not_batches():
    config = load_preset("wgan-gp", ["train.steps=1000", "train.batch_size=64"])
    assert config.optim.n_critic == 5
    eta = Eta(config)
    # one counted step reads 5 batches of 64: 320 images/s is one step a second, 100 steps to go
    assert eta.row({"step": 900, "images_per_s": 320.0, "wall_time": 10.0}) == pytest.approx(100.0)
    fresh = Eta(config)
    assert fresh.progress(900, steps_per_s=1.0, images_per_s=320.0) == pytest.approx(100.0)


def test_eta_of_an_autoencoder_reads_one_batch_a_step():
    config = load_preset("autoencoder", ["train.steps=500", "train.batch_size=32"])
    eta = Eta(config)
    assert eta.row({"step": 100, "images_per_s": 64.0}) == pytest.approx(200.0)  # 2 steps/s, 400 to go


def test_eta_with_a_time_budget_stops_while_paused():
    config = load_preset("dcgan-fashion", ["train.max_time=60"])
    clock = FakeClock()
    eta = Eta(config, elapsed0=100.0, clock=clock)  # a resumed run: 100 s of training before this session
    assert eta.row({"step": 10, "images_per_s": 640.0, "wall_time": 120.0}) == pytest.approx(40.0)
    clock.now += 10
    assert eta.progress(20, steps_per_s=10.0, images_per_s=640.0) == pytest.approx(30.0)
    eta.pause()
    clock.now += 500  # paused: training time does not pass
    assert eta.eta(20) == pytest.approx(30.0)
    eta.resume()
    clock.now += 5
    assert eta.eta(20) == pytest.approx(25.0)


def test_eta_takes_the_budget_that_ends_first_and_smooths_the_speed():
    config = load_preset("dcgan-fashion", ["train.steps=1000", "train.max_time=3600"])
    eta = Eta(config, clock=FakeClock())
    eta.row({"step": 0, "images_per_s": 640.0, "wall_time": 0.0})  # 10 steps/s
    assert eta.eta(900) == pytest.approx(10.0)  # the steps end first
    eta.progress(900, steps_per_s=20.0, images_per_s=1280.0)  # one fast interval moves it a quarter of the way
    assert eta.steps_per_s == pytest.approx(12.5)
    assert eta_seconds(0, None, 100, None) is None and eta_seconds(0, 0.0, None, None) is None
    assert eta_seconds(10, 5.0, 5, None) == 0.0  # past the budget: never negative


def test_status_bar_shows_progress(qtbot):
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.show_progress(12_345, 3, 1234.4, 75.0)
    texts = {name: label.text() for name, label in bar.labels.items()}
    assert (texts["step"], texts["epoch"], texts["speed"], texts["eta"]) == \
        ("step 12,345", "epoch 3", "1,234 img/s", "ETA 1:15")
    bar.show_progress(12_346, 3, None, None)
    assert bar.labels["speed"].text() == "" and bar.labels["eta"].text() == ""
