"""The latent explorer dock: loads a run in its thread, sliders change the image, errors stay in the dock."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ganstudio.engine import checkpoint
from ganstudio.gui import threads
from ganstudio.gui.latent_dock import LatentDock, LoadedRun

WAIT_MS = 30_000


@pytest.fixture
def run(trained_run, tmp_path):
    """A private copy, so a test may replace its checkpoint."""
    return shutil.copytree(trained_run, tmp_path / "tiny-run")


@pytest.fixture
def dock(qtbot):
    dock = LatentDock()
    qtbot.addWidget(dock)
    yield dock
    dock.shutdown()


def _open(qtbot, dock, run) -> np.ndarray:
    dock.set_run(run)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.show()
    assert dock.image is not None, dock.message.text()
    return dock.image


def test_nothing_loads_while_hidden(qtbot, dock, run):
    dock.set_run(run)
    qtbot.wait(50)
    assert dock.info is None and dock._thread is None  # no thread, no torch.load until it is shown


def test_loads_the_run_and_shows_its_first_grid_image(qtbot, dock, run):
    from ganstudio.engine.inference import fixed_noise, generate, load_generator

    image = _open(qtbot, dock, run)
    assert "tiny-run" in dock.header.text() and "step 6" in dock.header.text()
    assert dock.source.currentData() == "fixed" and dock.index.maximum() == 15
    assert dock.class_box.isHidden()  # an unconditional run: no class picker
    config, g = load_generator(run)
    assert np.array_equal(image, generate(g, fixed_noise(config, 1))[0])
    assert dock.picture.pixmap().width() == 28 * 8  # scaled up to about IMAGE_SIDE


@pytest.mark.parametrize("kind", ["principal", "random"])
def test_moving_a_slider_changes_the_image(qtbot, dock, run, kind):
    _open(qtbot, dock, run)
    dock.kind.setCurrentIndex(dock.kind.findData(kind))
    qtbot.waitUntil(lambda: dock.view().kind == kind)
    before = dock.image.copy()
    dock.sliders[0].setValue(30)
    assert dock.slider_values[0].text() == "+3.0σ"
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, before), timeout=WAIT_MS)
    dock.reset_sliders()
    qtbot.waitUntil(lambda: np.array_equal(dock.image, before), timeout=WAIT_MS)


def test_a_fast_drag_renders_the_last_position(qtbot, dock, run):
    from ganstudio.engine.inference import load_generator
    from ganstudio.latent import LatentExplorer, principal_directions

    _open(qtbot, dock, run)
    shown = []
    dock.image_shown.connect(lambda: shown.append(dock.image))
    for value in range(-30, 31, 2):  # 31 moves within a few ms: throttled and coalesced
        dock.sliders[1].setValue(value)
    _, g = load_generator(run)
    explorer = LatentExplorer(g, dock._worker.run.base("fixed", 0), principal_directions(g, 5))
    final = explorer.render([0, 3.0, 0, 0, 0])
    qtbot.waitUntil(lambda: dock.image is not None and np.array_equal(dock.image, final), timeout=WAIT_MS)
    assert len(shown) < 31


def test_choosing_another_sample_or_seed(qtbot, dock, run):
    first = _open(qtbot, dock, run)
    dock.index.setValue(5)
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, first), timeout=WAIT_MS)
    dock.source.setCurrentIndex(dock.source.findData("seed"))
    assert dock.index.maximum() == 2**31 - 1
    fifth = dock.image.copy()
    dock.index.setValue(123)
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, fifth), timeout=WAIT_MS)


def test_reload_picks_up_a_newer_checkpoint(qtbot, dock, run):
    _open(qtbot, dock, run)
    path = run / "checkpoints" / "last.pt"
    payload = checkpoint.load(path)
    payload["step"] = payload["state"]["step"] = 99  # a checkpoint whose two step counts disagree is refused
    payload["state"]["g"] = {k: v + 0.05 if v.is_floating_point() else v for k, v in payload["state"]["g"].items()}
    before = dock.image.copy()
    checkpoint.save(path, {k: v for k, v in payload.items() if k not in ("format", "format_version",
                                                                         "ganstudio_version")})
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.reload_button.click()
    assert "step 99" in dock.header.text()
    assert not np.array_equal(dock.image, before)


def test_a_run_without_a_checkpoint_says_so(qtbot, dock, run):
    (run / "checkpoints" / "last.pt").unlink()
    dock.set_run(run)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.show()
    assert dock.image is None and dock.message.isVisible()
    assert "No checkpoint yet" in dock.message.text() and "Reload" in dock.message.text()
    assert not dock.sliders[0].isEnabled()


def test_a_corrupt_checkpoint_says_so_and_reload_recovers(qtbot, dock, run, trained_run):
    path = run / "checkpoints" / "last.pt"
    path.write_bytes(b"definitely not a checkpoint")
    dock.set_run(run)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.show()
    assert "not a checkpoint" in dock.message.text()
    shutil.copy(trained_run / "checkpoints" / "last.pt", path)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.reload()
    assert dock.image is not None and dock.message.isHidden()


def test_follows_the_studio_run_through_its_callback(qtbot, run):
    current = {"run": None}
    dock = LatentDock(current_run=lambda: current["run"])
    qtbot.addWidget(dock)
    try:
        dock.show()
        assert "Open or start a run" in dock.message.text()
        current["run"] = run
        with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
            dock.reload()
        assert dock.image is not None
    finally:
        dock.shutdown()
    assert not [t for t in threads.live_threads() if t.isRunning()]


def test_class_picker_shows_for_a_conditional_run_only(qtbot, dock):
    """The worker's LoadedRun decides; a real cgan run goes through it in test_cgan_run (below)."""
    dock.show()
    classes = ("T-shirt/top", "Trouser", "class 2")
    dock._on_loaded(LoadedRun(dock._run_id, "c", 1, "Conditional GAN", False, 5, ("fixed", "seed"), {"fixed": 16},
                              classes))
    assert dock.class_box.isVisible() and dock.class_box.count() == 3
    assert dock.class_box.itemText(1) == "1 · Trouser" and dock.class_box.itemText(2) == "class 2"
    dock.class_box.setCurrentIndex(2)
    assert dock.view().label == 2
    dock._on_loaded(LoadedRun(dock._run_id, "g", 1, "GAN", False, 5, ("fixed", "seed"), {"fixed": 16}))
    assert dock.class_box.isHidden() and dock.view().label is None


def test_screenshot(qtbot, dock, run, artifacts_dir):
    _open(qtbot, dock, run)
    dock.resize(360, 560)
    dock.sliders[0].setValue(15)
    dock.sliders[2].setValue(-20)
    before = dock.image.copy()
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, before), timeout=WAIT_MS)
    qtbot.wait(50)
    dock.grab().save(str(artifacts_dir / "latent_dock.png"))


def test_no_thread_is_left_after_shutdown(qtbot, dock, run):
    _open(qtbot, dock, run)
    assert dock._thread.isRunning()
    dock.shutdown()
    assert dock._thread is None
    assert not [t for t in threads.live_threads() if t.isRunning()]


def test_the_main_window_shows_it_from_the_view_menu(qtbot, run, tmp_path, artifacts_dir):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QTabBar

    from ganstudio.gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        runs_root=tmp_path / "runs")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    dock = window.docks["latent"]
    assert dock.isHidden() and window.latent._thread is None  # hidden by default, nothing loaded
    assert dock.toggleViewAction() in window.view_menu.actions()
    window.run.open_run(run)
    with qtbot.waitSignal(window.latent.image_shown, timeout=WAIT_MS):
        dock.toggleViewAction().trigger()
    assert dock.isVisible() and window.latent.image is not None
    assert window.docks["metrics"] in window.tabifiedDockWidgets(dock)  # a tab beside plots and metrics
    bar = next(b for b in window.findChildren(QTabBar) if "Latent explorer" in [b.tabText(i) for i in range(b.count())])
    assert bar.tabText(bar.currentIndex()) == "Latent explorer"  # and in front
    assert "tiny-run" in window.latent.header.text()
    window.grab().save(str(artifacts_dir / "main_window_latent.png"))
    window.close()
    assert window.latent._thread is None


# --- real cgan and VAE runs ----------------------------------------------------------------------
def test_a_cgan_run_gets_a_class_picker_and_each_class_its_image(qtbot, dock, cgan_run):
    from ganstudio.engine.inference import fixed_noise, generate, load_generator

    image = _open(qtbot, dock, cgan_run)
    assert dock.class_box.isVisible() and dock.class_box.count() == 10
    assert dock.class_box.itemText(9) == "9 · Ankle boot" and "Conditional GAN" in dock.header.text()
    config, g = load_generator(cgan_run)
    assert np.array_equal(image, generate(g, fixed_noise(config, 1), torch.tensor([0]))[0])
    dock.class_box.setCurrentIndex(7)
    expected = generate(g, fixed_noise(config, 1), torch.tensor([7]))[0]
    qtbot.waitUntil(lambda: np.array_equal(dock.image, expected), timeout=WAIT_MS)
    before = dock.image.copy()
    dock.sliders[0].setValue(-25)  # principal directions of class 7
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, before), timeout=WAIT_MS)


def test_a_vae_run_starts_from_a_real_image(qtbot, dock, vae_run, artifacts_dir):
    image = _open(qtbot, dock, vae_run)
    assert dock.source.currentData() == "real" and dock.index.maximum() == 15  # the 16 held-out images
    assert dock.kind.itemText(0) == "Principal (PCA of codes)" and dock.class_box.isHidden()
    dock.index.setValue(4)
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, image), timeout=WAIT_MS)
    before = dock.image.copy()
    dock.sliders[0].setValue(30)
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, before), timeout=WAIT_MS)
    dock.resize(360, 560)
    dock.grab().save(str(artifacts_dir / "latent_dock_vae.png"))


# --- live weights from a running training ------------------------------------------------------------
def _snapshot_from(run, sign: float = -1.0):
    """A GeneratorSnapshot as the loop sends it: G's weights (here the checkpoint's, weights times ``sign``,
    so they differ from the file) on the CPU."""
    from ganstudio.config import from_dict
    from ganstudio.engine.events import GeneratorSnapshot

    payload = checkpoint.load(run / "checkpoints" / "last.pt")
    state = {k: v * sign if k.endswith("weight") else v.clone() for k, v in payload["state"]["g"].items()}
    return GeneratorSnapshot(int(payload["step"]), from_dict(payload["config"]), state, ema=False)


def _generator(snapshot):
    from ganstudio.models import build_models

    config = snapshot.config
    g, _ = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
    g.load_state_dict(snapshot.state)
    return g.eval()


def test_live_weights_need_no_checkpoint(qtbot, dock, run):
    from ganstudio.engine.inference import fixed_noise, generate

    snapshot = _snapshot_from(run)
    (run / "checkpoints" / "last.pt").unlink()  # a run that has not saved one yet
    dock.set_run(run)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.show()
    assert "No checkpoint yet" in dock.message.text()
    with qtbot.waitSignal(dock.live_requested, timeout=1000):
        dock.set_live(True)  # training started: the dock asks for its weights at once
    assert dock.reload_button.text() == "Refresh" and "running training" in dock.message.text()
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.show_snapshot(snapshot)
    assert dock.info.live and "step 6 · live" in dock.header.text() and dock.message.isHidden()
    expected = generate(_generator(snapshot), fixed_noise(snapshot.config, 1))[0]
    assert np.array_equal(dock.image, expected)
    before = dock.image.copy()
    dock.sliders[1].setValue(20)  # the sliders work on the live weights too
    qtbot.waitUntil(lambda: not np.array_equal(dock.image, before), timeout=WAIT_MS)
    with qtbot.waitSignal(dock.live_requested, timeout=1000):
        dock.reload_button.click()  # Refresh: the weights have moved on


def test_a_snapshot_nobody_asked_for_is_ignored(qtbot, dock, run):
    _open(qtbot, dock, run)
    info = dock.info
    dock.show_snapshot(_snapshot_from(run))
    qtbot.wait(100)
    assert dock.info is info and not dock.info.live


def test_training_that_ends_before_answering_leaves_the_checkpoint(qtbot, dock, run):
    _open(qtbot, dock, run)
    with qtbot.waitSignal(dock.live_requested, timeout=1000):
        dock.set_live(True)
    with qtbot.waitSignal(dock.image_shown, timeout=WAIT_MS):
        dock.set_live(False)  # stopped: Reload again, from checkpoints/last.pt
    assert dock.reload_button.text() == "Reload" and not dock.info.live and "live" not in dock.header.text()


def test_the_studio_explores_a_paused_run_before_its_first_checkpoint(qtbot, tmp_path, tiny_config):
    from PySide6.QtCore import QSettings

    from ganstudio.gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        runs_root=tmp_path / "runs")
    qtbot.addWidget(window)
    window.form.set_config(tiny_config.with_overrides(["train.checkpoint_every=1000", "train.ema=0.9"]))
    window.show()
    qtbot.waitExposed(window)
    try:
        window.run.start(paused=True)
        with qtbot.waitSignal(window.latent.image_shown, timeout=WAIT_MS):
            window.docks["latent"].toggleViewAction().trigger()
        assert window.latent.image is not None, window.latent.message.text()
        assert not (window.run.run_dir / "checkpoints" / "last.pt").exists()
        assert window.latent.info.live and window.latent.info.ema and "EMA weights" in window.latent.header.text()
    finally:
        window.run.shutdown()
        window.close()
    assert window.latent._thread is None
