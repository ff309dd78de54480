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


def test_busy_indicator_until_the_first_logged_row_and_while_a_step_stalls(qtbot, monkeypatch):
    from ganstudio.gui import status

    bar = StatusBar()
    qtbot.addWidget(bar)
    assert bar.busy.isHidden()
    bar.set_state("running")
    assert not bar.busy.isHidden()  # the first steps: nothing logged yet
    bar.show_progress(3, 0, 10.0, None)
    bar.note_row()
    assert bar.busy.isHidden()
    monkeypatch.setattr(status, "STALL_S", 0.05)
    qtbot.waitUntil(lambda: not bar.busy.isHidden(), timeout=2000)  # no new step for a while: busy again
    bar.show_progress(4, 0, 10.0, None)
    assert bar.busy.isHidden()
    bar.set_state("paused")
    assert bar.busy.isHidden()
    bar.show_progress(5, 0, 999.0, None)  # a single step while paused: its time is no speed
    assert bar.labels["step"].text() == "step 5" and bar.labels["speed"].text() == ""


def test_slow_configuration_moves_the_status_step_within_half_a_second(qtbot, tmp_path, tiny_config):
    """64 px RGB, two images a step on a CPU (tens of images a second, like the issue's 22): the first logged
    row is far off, yet the step count moves (Progress events) and a busy indicator shows until that row."""
    from PySide6.QtCore import QSettings

    from ganstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(window)
    # one torch thread: on two cores shared with other processes, two intra-op threads wait on each other
    # for a second at a time, and then no step could end within 0.5 s whatever the status bar does
    window.form.set_config(tiny_config.with_overrides([
        "data.image_size=64", "data.channels=3", "train.batch_size=2", "train.threads=1",
        "train.log_every=100000", "train.sample_every=100000", "train.checkpoint_every=100000",
        "train.steps=100000"]))
    window.show()
    qtbot.waitExposed(window)
    # the architecture preview builds the networks in a thread of its own: let it finish, as a person's
    # first look at the window would, so it does not compete with the first steps for two cores
    qtbot.waitUntil(lambda: window.preview.totals().get("generator", 0) > 0, timeout=30_000)
    try:
        window.actions["start"].trigger()
        qtbot.waitUntil(lambda: window.status.labels["step"].text() != "", timeout=60_000)
        assert not window.status.busy.isHidden() and window.run.last_row is None  # busy: nothing logged yet
        for _ in range(3):
            before = window.status.labels["step"].text()
            qtbot.waitUntil(lambda: window.status.labels["step"].text() != before, timeout=500)
        assert window.status.labels["speed"].text().endswith("img/s")
    finally:
        window.run.shutdown()


def test_an_uncoloured_state_follows_a_theme_switch(qtbot):
    """'stopped' and 'idle' use the palette's text colour, also after the palette changes (dark theme)."""
    from PySide6.QtGui import QColor, QPalette

    from ganstudio.gui.status import StatusBar

    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.set_state("stopped")
    dark = QPalette(bar.palette())
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#eeeeee"))
    bar.setPalette(dark)
    assert "#eeeeee" in bar.labels["state"].styleSheet()
    bar.set_state("running")
    assert "#eeeeee" not in bar.labels["state"].styleSheet()
