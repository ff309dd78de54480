"""The architecture preview: layer tables from the config (meta device), a speed estimate on a thread."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget, QTreeWidget

from ganstudio.config import RunConfig, load_preset
from ganstudio.gui import threads
from ganstudio.gui.arch_preview import ArchitecturePreview
from ganstudio.gui.estimate import describe_batch_fit, describe_estimate, format_duration, short_batch_fit


@pytest.fixture
def preview(qtbot):
    widget = ArchitecturePreview()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


@pytest.fixture
def tiny():
    return RunConfig.model_validate({
        "name": "tiny", "data": {"max_images": 128},
        "model": {"z_dim": 16, "g_width": 8, "d_width": 8},
        "train": {"batch_size": 16, "device": "cpu", "steps": 10_000},
    })


def show(qtbot, preview, config):
    with qtbot.waitSignal(preview.updated, timeout=10_000):  # after the debounce
        preview.set_config(config)


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset", ["dcgan-fashion", "mlp-gan"])
def test_lists_layers_with_totals_of_the_built_models(qtbot, preview, preset):
    from ganstudio.models import build_models

    config = load_preset(preset)
    show(qtbot, preview, config)
    g, d = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
    assert preview.totals() == {"generator": param_count(g), "discriminator": param_count(d)}
    for name, model in (("generator", g), ("discriminator", d)):
        tree = preview.findChild(QTreeWidget, f"{name}_layers")
        leaves = [m for m in model.modules() if next(m.children(), None) is None]
        assert tree.topLevelItemCount() == len(leaves) + 1  # + the total row
        total = tree.topLevelItem(tree.topLevelItemCount() - 1)
        assert total.text(0) == "Total" and total.text(3) == f"{param_count(model):,}"
    assert preview.message() == ""


def test_dcgan_shapes_are_shown(qtbot, preview):
    show(qtbot, preview, load_preset("dcgan-fashion"))
    tree = preview.findChild(QTreeWidget, "generator_layers")
    first, last = tree.topLevelItem(0), tree.topLevelItem(tree.topLevelItemCount() - 2)
    assert (first.text(0), first.text(1), first.text(2)) == ("main.0", "ConvTranspose2d", "128 × 7 × 7")
    assert (last.text(1), last.text(2)) == ("Tanh", "1 × 28 × 28")


def test_updates_are_debounced(qtbot, preview, tiny):
    seen = []
    preview.updated.connect(lambda: seen.append(preview.totals()))
    wide = tiny.updated("model.g_width", 32)
    preview.set_config(tiny)
    preview.set_config(wide)  # a burst of edits rebuilds once, with the last config
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    qtbot.wait(300)
    assert len(seen) == 1 and seen[0]["generator"] > 10_000


def test_a_model_that_cannot_be_built_shows_why(qtbot, preview, tiny):
    show(qtbot, preview, tiny)
    impossible = tiny.model_copy(update={"data": tiny.data.model_copy(update={"image_size": 48})})
    show(qtbot, preview, impossible)
    assert "image_size = 48" in preview.message() and preview.totals() == {}
    assert not preview.findChild(QTreeWidget, "generator_layers").isVisibleTo(preview)
    show(qtbot, preview, tiny)
    assert preview.message() == "" and preview.findChild(QTreeWidget, "generator_layers").isVisibleTo(preview)


def test_estimate_reports_speed_and_stops_its_thread(qtbot, preview, tiny):
    preview.set_config(tiny)
    button = preview.findChild(type(preview._button), "estimate")
    with qtbot.waitSignal(preview.estimated, timeout=60_000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert not button.isEnabled() and preview.is_estimating()
    result = blocker.args[0]
    assert result["images_per_s"] > 0 and result["seconds_per_step"] > 0 and result["device"] == "cpu"
    assert result["peak_bytes"] > 0  # torch's tensors during one more step, as the profiler saw them
    assert not preview.is_estimating() and button.isEnabled()
    assert not [t for t in threads.live_threads() if t.isRunning()]
    text = preview.findChild(type(preview._result), "estimate_result").text()
    assert text.startswith("≈ ") and " img/s, peak " in text and "iB on cpu; 10,000 steps ≈ " in text


def test_estimate_error_is_shown_not_raised(qtbot, preview, tiny):
    preview.set_config(tiny.updated("data.max_images", 8))  # fewer images than one batch: a DataError
    preview.estimate()
    qtbot.waitUntil(lambda: not preview.is_estimating(), timeout=60_000)
    assert preview._result.text().startswith("Cannot estimate: train.batch_size = 16")
    assert preview._button.isEnabled()


def test_shutdown_while_estimating_stops_the_thread(qtbot, preview, tiny):
    preview.set_config(tiny)
    preview.estimate()
    preview.shutdown()
    assert not preview.is_estimating() and not [t for t in threads.live_threads() if t.isRunning()]
    qtbot.wait(50)  # a late result from the stopped job is ignored
    assert preview._button.isEnabled()


def test_destroying_the_widget_mid_estimate_stops_the_thread(qtbot, tiny):
    import shiboken6
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    preview = ArchitecturePreview(parent)
    preview.set_config(tiny)
    preview.estimate()
    assert preview.is_estimating()
    shiboken6.delete(parent)  # as when a window is torn down with its docks
    assert not [t for t in threads.live_threads() if t.isRunning()]


def test_no_estimate_while_training(preview, tiny):
    preview.set_config(tiny)
    preview.set_running(True)
    assert not preview._button.isEnabled() and not preview._fit_button.isEnabled()
    preview.set_running(False)
    assert preview._button.isEnabled() and preview._fit_button.isEnabled()


def test_estimate_text():
    result = {"images_per_s": 1234.5, "seconds_per_step": 0.072, "device": "cuda:0"}
    train = RunConfig().train
    assert describe_estimate(result, train.model_copy(update={"steps": 10_000})) == \
        "≈ 1,234 img/s on cuda:0; 10,000 steps ≈ 12 min"
    assert "no step budget set" in describe_estimate(result, train)
    assert "the 1 h budget ≈ 50,000 steps" in describe_estimate(result, train.model_copy(update={"max_time": 3600}))
    assert [format_duration(s) for s in (5, 120, 5400, 3 * 86400)] == ["5 s", "2 min", "1 h 30 min", "3.0 days"]
    with_peak = dict(result, peak_bytes=int(1.2 * 1024 ** 3))
    assert describe_estimate(with_peak, train.model_copy(update={"steps": 10_000})) == \
        "≈ 1,234 img/s, peak 1.2 GiB on cuda:0; 10,000 steps ≈ 12 min"
    assert describe_estimate(dict(result, peak_bytes=None), train).startswith("≈ 1,234 img/s on cuda:0; ")


def test_batch_fit_text():
    from ganstudio.engine.memory import BatchFit

    tried = BatchFit(1024, "cuda:0", "bisection", [(512, 2 ** 30), (1024, 2 ** 31)], note="tried on the device")
    assert describe_batch_fit(tried) == "Largest batch that fits: 1,024 on cuda:0 (tried on the device)"
    guessed = BatchFit(4123, "cpu", "extrapolation", [(4, 1), (8, 2)], 2 ** 34, note="extrapolated from …")
    assert describe_batch_fit(guessed) == "Largest batch that fits: ≈ 4,123 on cpu (extrapolated from …)"
    none = BatchFit(None, "cuda:0", "bisection", note="not even a batch of 1 fits")
    assert describe_batch_fit(none) == "No batch size found on cuda:0: not even a batch of 1 fits"
    assert short_batch_fit(tried) == "Largest batch: 1,024 (cuda:0)"
    assert short_batch_fit(guessed) == "Largest batch: ≈ 4,123 (cpu)"
    assert short_batch_fit(none) == "No batch fits on cuda:0"


def test_largest_batch_button_extrapolates_on_the_cpu_and_stops_its_thread(qtbot, preview, tiny):
    preview.set_config(tiny)
    button = preview.findChild(type(preview._button), "largest_batch")
    with qtbot.waitSignal(preview.batch_found, timeout=60_000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert preview.is_estimating() and not button.isEnabled() and not preview._button.isEnabled()
    fit = blocker.args[0]
    assert fit.method == "extrapolation" and fit.device == "cpu" and [b for b, _ in fit.tried[:2]] == [4, 8]
    assert len(fit.points) == 2 and 2 <= fit.batch_size <= 128  # the tiny data's 128 images bound it
    assert not preview.is_estimating() and button.isEnabled() and preview._button.isEnabled()
    assert not [t for t in threads.live_threads() if t.isRunning()]
    label = preview.findChild(type(preview._result), "estimate_result")
    assert label.text() == f"Largest batch: ≈ {fit.batch_size:,} (cpu)"  # short: the tables keep their room
    tip = label.toolTip()
    assert tip.startswith("Largest batch that fits: ≈ ") and "on cpu (extrapolated from " in tip and "free RAM" in tip


def test_largest_batch_error_is_shown_not_raised(qtbot, preview, tiny):
    preview.set_config(tiny.updated("data.max_images", 2))  # fewer images than the first measured batch
    preview.find_largest_batch()
    qtbot.waitUntil(lambda: not preview.is_estimating(), timeout=60_000)
    assert preview._result.text().startswith("Cannot find the largest batch: train.batch_size = 4")
    assert preview._fit_button.isEnabled()


def test_screenshot(qtbot, preview, artifacts_dir):
    show(qtbot, preview, load_preset("dcgan-fashion"))
    preview.resize(560, 640)
    preview.show()
    qtbot.waitExposed(preview)
    preview._result.setText("≈ 1,261 img/s, peak 41 MiB on cpu; 10,000 steps ≈ 8 min")  # what an estimate shows
    preview.grab().save(str(artifacts_dir / "arch_preview.png"))
    assert (artifacts_dir / "arch_preview.png").stat().st_size > 0


# --- model families -----------------------------------------------------------------------------------
def layer_types(preview, name):
    tree = preview.findChild(QTreeWidget, f"{name}_layers")
    return [tree.topLevelItem(i).text(1) for i in range(tree.topLevelItemCount() - 1)]


def last_shape(preview, name):
    tree = preview.findChild(QTreeWidget, f"{name}_layers")
    return tree.topLevelItem(tree.topLevelItemCount() - 2).text(2)


def test_a_vae_shows_decoder_and_encoder(qtbot, preview):
    from ganstudio.models import build_models

    config = load_preset("dcgan-fashion", ["model.family=vae", "loss.name=mse", "model.z_dim=16"])
    show(qtbot, preview, config)
    assert preview.message() == ""
    assert preview.titles() == {"generator": "Decoder", "discriminator": "Encoder"}
    assert preview.tab_titles() == [f"Decoder ({preview.totals()['generator']:,})",
                                    f"Encoder ({preview.totals()['discriminator']:,})"]
    decoder, encoder = build_models(config.model, image_size=28, channels=1)
    assert preview.totals() == {"generator": param_count(decoder), "discriminator": param_count(encoder)}
    assert last_shape(preview, "generator") == "1 × 28 × 28"
    assert last_shape(preview, "discriminator").split(" × ")[0] == "32"  # mean and log-variance of 16 numbers
    assert preview.summary().startswith("VAE: dcgan, 28×28×1, code size 16")
    show(qtbot, preview, load_preset("dcgan-fashion"))  # back to a GAN: the names follow
    assert preview.titles() == {"generator": "Generator", "discriminator": "Discriminator"}


def test_a_cgan_shows_its_label_inputs(qtbot, preview):
    from ganstudio.models import build_models

    config = load_preset("dcgan-fashion", ["model.family=cgan", "model.num_classes=10"])
    show(qtbot, preview, config)
    assert preview.message() == "" and preview.titles()["generator"] == "Generator"
    g, d = build_models(config.model, image_size=28, channels=1)
    assert preview.totals() == {"generator": param_count(g), "discriminator": param_count(d)}
    assert "Embedding" in layer_types(preview, "generator") and "Embedding" in layer_types(preview, "discriminator")
    assert last_shape(preview, "generator") == "1 × 28 × 28"
    assert "10 classes (projection conditioning)" in preview.summary()
    show(qtbot, preview, config.updated("model.conditioning", "concat"))
    assert "10 classes (concat conditioning)" in preview.summary()
    assert "Embedding" in layer_types(preview, "discriminator")


def test_mixed_bodies_are_named(qtbot, preview):
    config = load_preset("mlp-gan", ["model.d_arch=dcgan"])
    show(qtbot, preview, config)
    assert preview.message() == ""
    assert "Conv2d" in layer_types(preview, "discriminator") and "Conv2d" not in layer_types(preview, "generator")
    assert preview.summary().startswith("GAN: mlp generator + dcgan discriminator, 28×28×1")
    ae = load_preset("mlp-gan", ["model.family=autoencoder", "loss.name=mse", "model.d_arch=dcgan"])
    show(qtbot, preview, ae)
    assert preview.summary().startswith("Autoencoder: mlp decoder + dcgan encoder")
    assert last_shape(preview, "discriminator").split(" × ")[0] == str(ae.model.z_dim)


def test_screenshot_vae(qtbot, preview, artifacts_dir):
    show(qtbot, preview, load_preset("dcgan-fashion", ["model.family=vae", "loss.name=bernoulli", "model.z_dim=16"]))
    preview.resize(560, 640)
    preview.show()
    qtbot.waitExposed(preview)
    assert preview.grab().save(str(artifacts_dir / "arch_preview_vae.png"))


def test_tables_are_built_off_the_gui_thread(qtbot, preview, tiny, monkeypatch):
    import threading

    from ganstudio.gui import arch_preview

    threads_seen = []
    describe = arch_preview.describe_config

    def spy(config):
        threads_seen.append(threading.current_thread())
        return describe(config)

    monkeypatch.setattr(arch_preview, "describe_config", spy)
    show(qtbot, preview, tiny)
    assert threads_seen and threading.main_thread() not in threads_seen
    assert preview.totals()["generator"] > 0


def test_tables_show_every_column_whole_and_several_rows_in_a_small_dock(qtbot, preview):
    show(qtbot, preview, load_preset("dcgan-fashion"))
    preview.resize(400, 330)  # about the Architecture dock of a 1400 × 860 window
    preview.show()
    qtbot.waitExposed(preview)
    tabs = preview.findChild(QTabWidget, "arch_tables")
    for index, name in enumerate(("generator", "discriminator")):
        tabs.setCurrentIndex(index)
        tree = preview.findChild(QTreeWidget, f"{name}_layers")
        qtbot.waitUntil(tree.isVisible)
        header = tree.header()
        for column in (2, 3):  # output shapes and parameter counts: never cut
            needed = max(tree.fontMetrics().horizontalAdvance(tree.topLevelItem(row).text(column))
                         for row in range(tree.topLevelItemCount()))
            assert header.sectionSize(column) >= needed, (name, column)
        assert header.sectionPosition(3) + header.sectionSize(3) <= tree.viewport().width(), name
        rows = tree.viewport().height() // tree.visualItemRect(tree.topLevelItem(0)).height()
        assert rows >= 6, (name, rows)  # two stacked tables showed 2.5 rows each in this space
