"""The config form: generated from RunConfig, validates every edit, marks bad fields, locks while running."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QScrollArea, QSpinBox, QWidget

from ganstudio.config import RunConfig, field_keys, is_live, load_preset, preset_names
from ganstudio.gui.config_form import LOCKED_TIP, ConfigForm


@pytest.fixture
def form(qtbot):
    widget = ConfigForm()
    qtbot.addWidget(widget)
    return widget


def type_into(qtbot, editor: QLineEdit, text: str) -> None:
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def choose(editor: QComboBox, text: str) -> None:
    index = editor.findText(text)
    assert index >= 0, f"{text!r} is not a choice of {editor.objectName()}"
    editor.setCurrentIndex(index)


def is_marked(form: ConfigForm, key: str) -> bool:
    error = form.findChild(QWidget, f"{key}.error")
    return bool(form.widget_for(key).property("invalid")) and error.isVisibleTo(form) and bool(error.text())


def test_every_field_has_a_named_widget_with_tooltip(form):
    assert form.config() == load_preset("dcgan-fashion")
    for key in field_keys():
        widget = form.findChild(QWidget, key)
        assert widget is form.widget_for(key), key
        assert widget.toolTip() and widget.accessibleName(), key
    assert form.findChild(QScrollArea) is not None


def test_widgets_follow_annotations(form):
    assert isinstance(form.widget_for("model.arch"), QComboBox)
    assert isinstance(form.widget_for("train.tensorboard"), QCheckBox)
    batch = form.widget_for("train.batch_size")
    assert isinstance(batch, QSpinBox) and (batch.minimum(), batch.maximum()) == (1, 65536)
    assert isinstance(form.widget_for("train.seed"), QLineEdit)  # 2**63 - 1 does not fit a QSpinBox
    assert isinstance(form.widget_for("optim.lr_g"), QLineEdit)
    assert form.widget_for("train.steps").placeholderText() == "none"
    assert form.findChild(QWidget, "data.path.browse") is not None
    assert "allowed > 0.0 and ≤ 1.0" in form.widget_for("optim.lr_g").toolTip()


def test_choosing_a_preset_loads_it(form):
    preset = form.findChild(QComboBox, "preset")
    assert preset.currentText() == "dcgan-fashion" and preset.count() == len(preset_names())
    index = preset.findText("wgan-gp")
    preset.setCurrentIndex(index)
    preset.activated.emit(index)  # what a person's choice emits
    assert form.widget_for("loss.name").currentText() == "wgan-gp"
    assert form.widget_for("optim.lr_g").text() == "0.0001"
    assert form.widget_for("optim.n_critic").value() == 5
    assert form.widget_for("name").text() == "wgan-gp"
    assert form.config() == load_preset("wgan-gp")
    assert preset.itemData(index, Qt.ItemDataRole.ToolTipRole).startswith("WGAN-GP")


def test_invalid_learning_rate_is_marked_then_cleared(qtbot, form):
    seen = []
    form.validity_changed.connect(lambda valid, msg: seen.append((valid, msg)))
    configs = []
    form.config_changed.connect(configs.append)
    lr = form.widget_for("optim.lr_g")
    type_into(qtbot, lr, "-1")
    assert form.config() is None and not form.is_valid()
    assert seen[-1][0] is False and "optim.lr_g" in seen[-1][1] and "optim.lr_g" in form.error_text()
    assert is_marked(form, "optim.lr_g") and "border" in lr.styleSheet()
    assert not is_marked(form, "optim.lr_d")

    type_into(qtbot, lr, "4e-4")  # the preset's value
    assert seen[-1] == (True, "") and form.error_text() == ""
    assert not is_marked(form, "optim.lr_g") and lr.styleSheet() == ""
    assert configs[-1].optim.lr_g == 4e-4 and form.config() == load_preset("dcgan-fashion")


def test_text_that_is_no_number_is_marked(qtbot, form):
    type_into(qtbot, form.widget_for("optim.lr_d"), "fast")
    assert form.config() is None and is_marked(form, "optim.lr_d")
    assert "valid number" in form.findChild(QWidget, "optim.lr_d.error").text()


@pytest.mark.parametrize(("key", "bad", "good"),
                         [("train.steps", "0", ""), ("data.max_images", "0", "1e3"), ("train.seed", "-1", "7")])
def test_out_of_range_integers_in_text_boxes_are_marked(qtbot, form, key, bad, good):
    type_into(qtbot, form.widget_for(key), bad)
    assert form.config() is None and is_marked(form, key) and key in form.error_text()
    type_into(qtbot, form.widget_for(key), good)
    assert form.is_valid() and not is_marked(form, key)


def test_batch_size_spin_box_keeps_to_its_bounds(qtbot, form):
    batch = form.widget_for("train.batch_size")
    batch.lineEdit().selectAll()
    qtbot.keyClicks(batch, "100000")
    qtbot.keyClick(batch, Qt.Key.Key_Return)
    assert 1 <= batch.value() <= 65536 and form.is_valid()
    batch.setValue(0)  # clamped by the spin box: an out-of-range batch size cannot be entered
    assert form.config().train.batch_size == 1


def test_cross_field_rule_marks_both_fields(form):
    seen = []
    form.validity_changed.connect(lambda valid, msg: seen.append((valid, msg)))
    choose(form.widget_for("loss.name"), "wgan-gp")  # the default preset's D uses batch norm
    assert form.config() is None
    assert seen[-1][0] is False and "loss.name" in seen[-1][1] and "model.d_norm" in seen[-1][1]
    assert is_marked(form, "loss.name") and is_marked(form, "model.d_norm")
    choose(form.widget_for("model.d_norm"), "layer")
    assert seen[-1] == (True, "") and form.config().loss.name == "wgan-gp"
    assert not is_marked(form, "loss.name") and not is_marked(form, "model.d_norm")


def test_running_locks_fields_that_are_not_live(form):
    form.set_running(True)
    arch = form.widget_for("model.arch")
    assert not arch.isEnabled() and LOCKED_TIP in arch.toolTip()
    assert not form.findChild(QComboBox, "preset").isEnabled()
    assert not form.findChild(QWidget, "data.path.browse").isEnabled()
    for key in field_keys():
        assert form.widget_for(key).isEnabled() == is_live(key), key
    form.set_running(False)
    assert arch.isEnabled() and LOCKED_TIP not in arch.toolTip()


def test_live_edit_while_running_is_sent_once_finished(qtbot, form):
    form.set_running(True)
    sent = []
    form.live_changed.connect(lambda key, value: sent.append((key, value)))
    lr = form.widget_for("optim.lr_g")
    type_into(qtbot, lr, "0.001")
    assert sent == []  # "0.001" passed through "0", "0.", …: nothing goes out before the edit ends
    with qtbot.waitSignal(form.live_changed, timeout=1000) as blocker:
        qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert blocker.args == ["optim.lr_g", 0.001]
    form.widget_for("optim.n_critic").setValue(3)
    assert sent == [("optim.lr_g", 0.001), ("optim.n_critic", 3)]
    qtbot.keyClick(lr, Qt.Key.Key_Return)  # the same value again is not re-sent
    assert len(sent) == 2


def test_live_edit_is_not_sent_when_invalid_or_not_running(qtbot, form):
    sent = []
    form.live_changed.connect(lambda key, value: sent.append((key, value)))
    lr = form.widget_for("optim.lr_g")
    type_into(qtbot, lr, "0.001")
    qtbot.keyClick(lr, Qt.Key.Key_Return)
    form.set_running(True)
    type_into(qtbot, lr, "5")
    qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert sent == [] and is_marked(form, "optim.lr_g")


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip(form, name):
    config = load_preset(name)
    form.set_config(config)
    assert form.config() == config


def test_optional_and_path_fields_round_trip(form):
    config = RunConfig.model_validate({
        "name": "full", "data": {"source": "folder", "path": str(Path("/data/faces")), "max_images": 500},
        "train": {"steps": 10_000, "max_time": 90.5, "seed": 2**63 - 1, "threads": 2},
        "optim": {"lr_g": 1e-5, "lr_d": 0.000123456789},
    })
    form.set_config(config)
    assert form.widget_for("data.path").text() == str(Path("/data/faces"))
    assert form.widget_for("optim.lr_g").text() == "1e-05"
    assert form.config() == config
    form.widget_for("data.path").setText("")  # source = folder needs a path: a section rule
    assert is_marked(form, "data.path") and is_marked(form, "data.source")


def test_screenshot(qtbot, form, artifacts_dir):
    form.resize(460, 1500)  # tall enough to show every group in one picture
    form.show()
    qtbot.waitExposed(form)
    form.grab().save(str(artifacts_dir / "config_form.png"))
    type_into(qtbot, form.widget_for("optim.lr_g"), "-1")
    choose(form.widget_for("loss.name"), "wgan-gp")
    form.resize(460, 700)
    form.findChild(QScrollArea).ensureWidgetVisible(form.widget_for("optim.lr_g"))
    form.grab().save(str(artifacts_dir / "config_form_invalid.png"))
    assert (artifacts_dir / "config_form.png").stat().st_size > 0


# --- the model family -----------------------------------------------------------------------------
D_ONLY = ("loss.label_smoothing", "optim.n_critic", "loss.r1_weight", "model.spectral_norm", "train.augment")


def losses_offered(form: ConfigForm) -> list[str]:
    combo = form.widget_for("loss.name")
    return [combo.itemText(i) for i in range(combo.count())]


def test_family_vae_hides_d_only_fields_and_offers_reconstruction_losses(form):
    from ganstudio.catalog import GAN_LOSS_NAMES
    from ganstudio.families import FAMILIES

    assert all(form.is_shown(key) for key in D_ONLY) and not form.is_shown("loss.beta")
    assert losses_offered(form) == list(GAN_LOSS_NAMES)
    choose(form.widget_for("model.family"), "vae")
    assert form.family().name == "vae" and form.is_valid()
    for key in D_ONLY:
        assert not form.is_shown(key), key
    assert form.is_shown("loss.beta") and form.is_shown("model.d_width") and not form.is_shown("model.num_classes")
    assert losses_offered(form) == ["mse", "bernoulli"]
    assert form.config().loss.name == "mse"  # the family's default replaced the GAN loss
    title = form.findChild(QWidget, "model.g_width.label")
    assert title.text() == "Decoder width" and form.widget_for("model.g_width").accessibleName() == "Decoder width"
    assert form.findChild(QWidget, "model.z_dim.label").text() == FAMILIES["vae"].title_of("model.z_dim", "")

    choose(form.widget_for("model.family"), "gan")  # back: everything returns, with the loss used before
    assert all(form.is_shown(key) for key in D_ONLY) and not form.is_shown("loss.beta")
    assert losses_offered(form) == list(GAN_LOSS_NAMES) and form.config().loss.name == "bce"
    assert title.text() == "G width"
    assert form.config() == load_preset("dcgan-fashion")


def test_a_section_with_no_field_left_hides(form):
    from PySide6.QtWidgets import QGroupBox

    loss = form.findChild(QGroupBox, "loss")
    choose(form.widget_for("model.family"), "autoencoder")  # of the loss section only the loss applies
    assert not loss.isHidden() and form.is_shown("loss.name") and not form.is_shown("loss.beta")
    assert [key for key in field_keys() if key.startswith("loss.") and form.is_shown(key)] == ["loss.name"]


def test_a_loaded_config_sets_the_family_and_its_loss(form):
    vae = load_preset("dcgan-fashion", ["model.family=vae", "loss.name=bernoulli"])
    form.set_config(vae)
    assert form.config() == vae and losses_offered(form) == ["mse", "bernoulli"]
    assert form.widget_for("loss.name").currentText() == "bernoulli" and not form.is_shown("optim.n_critic")
    form.set_config(load_preset("wgan-gp"))
    assert form.config() == load_preset("wgan-gp") and form.is_shown("optim.n_critic")
    assert form.widget_for("optim.n_critic").value() == 5


def test_hidden_leftovers_do_not_block_the_config(qtbot, form):
    type_into(qtbot, form.widget_for("loss.label_smoothing"), "0.1")  # fine with bce
    assert form.config().loss.label_smoothing == 0.1
    choose(form.widget_for("model.family"), "vae")  # label smoothing would need a GAN loss, but it is hidden
    assert form.is_valid() and form.config().loss.label_smoothing == 0.0
    choose(form.widget_for("model.family"), "gan")
    assert form.config().loss.label_smoothing == 0.1  # the value was kept in its field


def test_an_invalid_pair_shows_the_validators_message(form):
    from ganstudio.families import check_config

    seen = []
    form.validity_changed.connect(lambda valid, msg: seen.append((valid, msg)))
    assert form.widget_for("model.d_norm").currentText() == "batch"
    choose(form.widget_for("loss.name"), "wgan-gp")  # a gradient penalty breaks under batch norm
    preset = load_preset("dcgan-fashion")
    expected = check_config(preset.model_copy(update={"loss": preset.loss.model_copy(update={"name": "wgan-gp"})}))
    assert expected and expected.fields == ("loss.name", "model.d_norm")
    expected = expected.message
    assert form.config() is None and not form.is_valid()
    assert seen[-1][0] is False and expected in seen[-1][1] and expected in form.error_text()
    assert is_marked(form, "loss.name") and is_marked(form, "model.d_norm")
    assert expected in form.findChild(QWidget, "loss.name.error").text()
    summary = form.findChild(QWidget, "config_form.summary")
    assert summary.isVisibleTo(form) and "loss.name" in summary.text()
    choose(form.widget_for("model.d_norm"), "layer")
    assert form.is_valid() and seen[-1] == (True, "")


def test_fields_hide_when_the_loss_makes_them_do_nothing(form):
    shown = {key for key in ("loss.gp_weight", "loss.clip_value", "loss.label_smoothing") if form.is_shown(key)}
    assert form.widget_for("loss.name").currentText() == "bce" and shown == {"loss.label_smoothing"}
    choose(form.widget_for("loss.name"), "wgan-gp")
    assert form.is_shown("loss.gp_weight") and not form.is_shown("loss.clip_value")
    assert not form.is_shown("loss.label_smoothing")  # a critic has no target to smooth
    choose(form.widget_for("loss.name"), "wgan")
    assert form.is_shown("loss.clip_value") and not form.is_shown("loss.gp_weight")
    assert form.is_shown("optim.beta1") and not form.is_shown("optim.momentum")
    choose(form.widget_for("optim.name"), "sgd")
    assert form.is_shown("optim.momentum") and not form.is_shown("optim.beta1")
    assert not form.is_shown("optim.schedule_steps")
    choose(form.widget_for("optim.schedule"), "cosine")
    assert form.is_shown("optim.schedule_steps")


def test_sync_batch_norm_shows_with_several_processes(form):
    assert form.widget_for("train.processes").value() == 1 and not form.is_shown("train.sync_batch_norm")
    form.widget_for("train.processes").setValue(2)
    assert form.is_shown("train.sync_batch_norm")
    form.widget_for("train.processes").setValue(1)
    assert not form.is_shown("train.sync_batch_norm")


def test_a_loaded_config_shows_the_fields_its_values_use(form):
    form.set_config(load_preset("wgan-gp"))
    assert form.is_shown("loss.gp_weight") and not form.is_shown("loss.clip_value")
    form.set_config(load_preset("dcgan-fashion"))
    assert not form.is_shown("loss.gp_weight")


def test_a_hidden_leftover_of_another_loss_does_not_block_the_config(qtbot, form):
    type_into(qtbot, form.widget_for("loss.label_smoothing"), "0.1")  # fine with bce
    choose(form.widget_for("loss.name"), "hinge")
    assert not form.is_shown("loss.label_smoothing")
    assert form.is_valid() and form.config().loss.label_smoothing == 0.0
    choose(form.widget_for("loss.name"), "bce")
    assert form.config().loss.label_smoothing == 0.1


def test_sections_fold_and_a_marked_field_unfolds_its_section(qtbot, form):
    form.show()
    qtbot.waitExposed(form)
    optim = form.section("optim")
    assert optim.is_open() and not form.section("eval").is_open()  # rarely changed: folded at first
    qtbot.mouseClick(form.findChild(QWidget, "optim.header"), Qt.MouseButton.LeftButton)
    assert not optim.is_open() and not form.widget_for("optim.lr_g").isVisible()
    assert form.is_shown("optim.lr_g")  # folded, not hidden: it still counts and keeps its value
    form.widget_for("optim.lr_g").setText("-1")
    assert optim.is_open() and form.widget_for("optim.lr_g").isVisible() and is_marked(form, "optim.lr_g")


def test_fields_are_marked_from_the_errors_entries_not_its_text(form):
    from ganstudio.config import ConfigProblem

    form.show_problems([
        ConfigProblem("optim.lr_g", -1.0, "too low for this", "form"),
        # a cross-field rule whose text names no field: only its entry says which fields it is about
        ConfigProblem("loss.name", "hinge", "these two disagree", "form", fields=("loss.name", "model.d_norm")),
        ConfigProblem(None, None, "the whole config is off", "form"),
    ])
    for key in ("optim.lr_g", "loss.name", "model.d_norm"):
        assert is_marked(form, key), key
    assert form.findChild(QWidget, "optim.lr_g.error").text() == "too low for this"
    assert form.findChild(QWidget, "model.d_norm.error").text() == "these two disagree"
    assert not is_marked(form, "optim.lr_d")
    summary = form.findChild(QWidget, "config_form.summary").text()
    assert "optim.lr_g, loss.name, model.d_norm" in summary and "the whole config is off" in summary
    form.show_problems(())
    assert not any(is_marked(form, key) for key in ("optim.lr_g", "loss.name", "model.d_norm"))


def test_a_cross_field_error_from_validation_marks_the_fields_its_entry_names(form):
    choose(form.widget_for("loss.name"), "wgan-gp")  # the preset's D has batch norm
    assert not form.is_valid()
    assert is_marked(form, "loss.name") and is_marked(form, "model.d_norm") and not is_marked(form, "optim.lr_g")
    assert "batch norm" in form.findChild(QWidget, "model.d_norm.error").text()


def test_choices_carry_their_catalog_descriptions_as_tooltips(form):
    from PySide6.QtCore import Qt

    from ganstudio.catalog import ARCH_CHOICES, LOSS_CHOICES, METRIC_CHOICES

    arch = form.widget_for("model.arch")
    assert arch.itemData(arch.findText("mlp"), Qt.ItemDataRole.ToolTipRole) == ARCH_CHOICES["mlp"].description
    choose(form.widget_for("model.family"), "vae")  # the loss box is refilled: its tips come along
    loss = form.widget_for("loss.name")
    assert loss.itemData(loss.findText("bernoulli"), Qt.ItemDataRole.ToolTipRole) == \
        LOSS_CHOICES["bernoulli"].description
    assert form.findChild(QWidget, "eval.metrics.kid").toolTip() == METRIC_CHOICES["kid"].description


def test_stabiliser_fields_explain_themselves(form):
    for key in ("model.spectral_norm", "loss.label_smoothing", "loss.r1_weight", "loss.instance_noise",
                "optim.clip_d", "optim.weight_decay_g", "optim.schedule", "train.augment", "loss.beta"):
        tip = form.widget_for(key).toolTip()
        assert len(tip) > 40 and tip == form.findChild(QWidget, f"{key}.label").toolTip(), key


def test_screenshot_vae(qtbot, form, artifacts_dir):
    choose(form.widget_for("model.family"), "vae")
    form.resize(460, 1300)
    form.show()
    qtbot.waitExposed(form)
    form.grab().save(str(artifacts_dir / "config_form_vae.png"))
    assert (artifacts_dir / "config_form_vae.png").stat().st_size > 0


# --- the device field -----------------------------------------------------------------------------
H200_BYTES = 150_012_116_992  # what torch reports for an H200: 139.7 GiB, listed as 139 (rounded down)


def simulate_machine(monkeypatch, cuda: int = 0, mps: bool = False) -> None:
    """Torch has loaded (as after the window's preload) on a machine with ``cuda`` H200s and, or not, MPS."""
    from types import SimpleNamespace

    import torch

    from ganstudio.gui import threads

    monkeypatch.setattr(threads, "torch_loaded", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index=None: SimpleNamespace(name="NVIDIA H200", total_memory=H200_BYTES))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)


def listed_form(qtbot, config: RunConfig | None = None) -> ConfigForm:
    """A form whose device box has listed the (simulated) machine's devices."""
    form = ConfigForm(config)
    qtbot.addWidget(form)
    with qtbot.waitSignal(form.widget_for("train.device").listed, timeout=10_000):
        pass  # the box's timer sees torch loaded, then the devices are described off the GUI thread
    return form


def device_items(form: ConfigForm) -> list[tuple[str, str]]:
    combo = form.widget_for("train.device")
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def test_device_box_offers_auto_and_cpu_before_torch_has_loaded(qtbot, monkeypatch):
    from ganstudio.gui import threads

    monkeypatch.setattr(threads, "torch_loaded", lambda: False)
    form = ConfigForm()
    qtbot.addWidget(form)
    combo = form.widget_for("train.device")
    assert isinstance(combo, QComboBox) and combo.isEditable()
    assert device_items(form) == [("auto", "auto"), ("cpu", "cpu")] and not combo.is_listed()
    type_into(qtbot, combo.lineEdit(), "cuda:3")  # no machine to check against yet: the name is valid
    assert form.config().train.device == "cuda:3" and not is_marked(form, "train.device")
    choose(combo, "cpu")
    assert form.config().train.device == "cpu"


def test_device_box_lists_this_machines_gpus_by_name_and_memory(qtbot, monkeypatch):
    simulate_machine(monkeypatch, cuda=1)
    form = listed_form(qtbot)
    assert device_items(form) == [("auto", "auto"), ("cpu (16 threads)", "cpu"),
                                  ("cuda:0 NVIDIA H200, 139 GiB", "cuda:0")]
    combo = form.widget_for("train.device")
    with qtbot.waitSignal(form.config_changed, timeout=1000) as blocker:
        choose(combo, "cuda:0 NVIDIA H200, 139 GiB")
    assert blocker.args[0].train.device == "cuda:0"  # the plain value, never the label
    assert form.config().train.device == "cuda:0" and not is_marked(form, "train.device")
    form.set_config(form.config().updated("train.device", "cpu"))
    assert combo.currentText() == "cpu (16 threads)" and form.config().train.device == "cpu"


def test_device_box_on_a_plain_cpu_machine_lists_auto_and_cpu_only(qtbot, monkeypatch):
    simulate_machine(monkeypatch, cuda=0, mps=False)
    form = listed_form(qtbot)
    assert device_items(form) == [("auto", "auto"), ("cpu (16 threads)", "cpu")]
    assert form.config().train.device == load_preset("dcgan-fashion").train.device


def test_device_box_lists_an_apple_gpu(qtbot, monkeypatch):
    simulate_machine(monkeypatch, cuda=0, mps=True)
    form = listed_form(qtbot)
    assert device_items(form)[-1] == ("mps Apple GPU", "mps")
    choose(form.widget_for("train.device"), "mps Apple GPU")
    assert form.config().train.device == "mps"


def test_a_device_typed_by_hand_is_validated_against_the_machine(qtbot, monkeypatch):
    simulate_machine(monkeypatch, cuda=1)
    form = listed_form(qtbot)
    editor = form.widget_for("train.device").lineEdit()
    type_into(qtbot, editor, "cuda:7")
    assert form.config() is None and is_marked(form, "train.device")
    error = form.findChild(QWidget, "train.device.error").text()
    assert "no CUDA device 7 (this machine has cpu, cuda:0)" in error and "train.device" in form.error_text()
    type_into(qtbot, editor, "gpu")  # not a device name at all: the config's own message
    assert is_marked(form, "train.device") and "auto, cpu, cuda, cuda:N" in form.error_text()
    type_into(qtbot, editor, "cuda:0")  # the plain name typed is as good as choosing the item
    assert form.config().train.device == "cuda:0" and not is_marked(form, "train.device")


def test_a_saved_device_this_machine_lacks_shows_and_is_marked_once_the_devices_are_known(qtbot, monkeypatch):
    simulate_machine(monkeypatch, cuda=1)
    saved = load_preset("dcgan-fashion", ["train.device=cuda:1"])
    form = ConfigForm(saved)
    qtbot.addWidget(form)
    combo = form.widget_for("train.device")
    assert combo.currentText() == "cuda:1" and form.config() == saved  # before the machine is known
    with qtbot.waitSignal(form.validity_changed, timeout=10_000) as blocker:
        pass  # the devices get listed, and the form revalidates
    assert blocker.args[0] is False and "no CUDA device 1" in blocker.args[1]
    assert combo.currentText() == "cuda:1" and is_marked(form, "train.device") and form.config() is None
    choose(combo, "cuda:0 NVIDIA H200, 139 GiB")
    assert form.config() == saved.updated("train.device", "cuda:0")
