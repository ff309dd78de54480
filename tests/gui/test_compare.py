"""The Compare view: runs of different lengths, families and sizes, read from hand-made run folders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ganstudio.config import RunConfig
from ganstudio.engine.rundir import RunDir
from ganstudio.gui import compare as compare_module
from ganstudio.gui.compare import CompareView, open_compare
from ganstudio.gui.compare_data import CompareRun, differing_keys

GAN_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
VAE_KEYS = ("recon", "kl", "loss", "grad_norm_d", "grad_norm_g")


def make_run(root, name, changes=None, last=40, log_every=10, grids=(), evals=(), seconds_per_step=0.5):
    """A run folder as the engine leaves it: config.toml, one metrics row per ``log_every`` steps (step,
    the family's keys, wall_time), grids at ``grids`` and evaluation rows ``evals`` ({step: {key: v}})."""
    config = RunConfig(name=name).with_changes(changes or {})
    run = RunDir(root / name)
    run.create()
    run.write_config(config)
    keys = VAE_KEYS if config.model.family in ("vae", "autoencoder") else GAN_KEYS
    for step in range(log_every, last + 1, log_every):
        run.append_metrics({"step": step, "epoch": 0, **{k: 1.0 + step / 100 + i for i, k in enumerate(keys)},
                            "wall_time": step * seconds_per_step})
        if step in evals:
            run.append_metrics({"step": step, "epoch": 0, **evals[step], "eval_samples": 500})
    size, channels = config.data.image_size, config.data.channels
    for step in grids:
        run.write_grid(step, np.full((4, size, size, channels), step % 256, dtype=np.uint8))
    return run.path


@pytest.fixture
def three_runs(tmp_path):
    """Three GAN runs of different lengths; b differs in optim.lr_g, c in train.batch_size."""
    a = make_run(tmp_path, "a", last=40, grids=(0, 10, 20, 30, 40), evals={20: {"fid": 80.0}, 40: {"fid": 60.0}})
    b = make_run(tmp_path, "b", {"optim.lr_g": 1e-4}, last=100, grids=(0, 25, 50, 75, 100),
                 evals={50: {"fid": 50.0}, 100: {"fid": 55.0}})
    c = make_run(tmp_path, "c", {"train.batch_size": 32}, last=10, grids=(5,))
    return [a, b, c]


def test_three_runs_of_different_lengths_overlay_their_curves(qtbot, three_runs):
    view = CompareView(three_runs)
    qtbot.addWidget(view)
    curves = view.curves
    assert curves.panel_ids() == [*GAN_KEYS, "eval:fid"]
    for i, last in enumerate((40, 100, 10)):
        x, y = curves.curve_data("loss_d", i)
        assert list(x) == list(range(10, last + 1, 10))  # every logged row, each run to its own length
        assert np.isfinite(y).all()
    x, y = curves.curve_data("eval:fid", 1)
    assert list(x) == [50, 100] and list(y) == [50.0, 55.0]
    assert curves.curve_data("eval:fid", 2)[0].size == 0  # c never evaluated
    assert all(name in view.legend.text() for name in ("a", "b", "c"))
    assert "FID: not measured in c" in view.notes.text()


def test_the_smoothing_and_the_time_axis_apply_to_every_run(qtbot, three_runs):
    view = CompareView(three_runs)
    qtbot.addWidget(view)
    curves = view.curves
    curves.smoothing.setValue(0)
    raw = [curves.curve_data("loss_g", i)[1].copy() for i in range(3)]
    curves.smoothing.setValue(90)
    for i in range(3):
        smoothed = curves.curve_data("loss_g", i)[1]
        assert smoothed[0] == pytest.approx(raw[i][0])  # debiased: the first point is the first value
        if len(raw[i]) > 1:
            assert smoothed[-1] < raw[i][-1]  # rising curves: the average lags behind
    curves.x_axis.setCurrentIndex(curves.x_axis.findData("time"))
    x, _ = curves.curve_data("loss_d", 1)
    assert list(x) == [step * 0.5 for step in range(10, 101, 10)]
    x, _ = curves.curve_data("eval:fid", 0)  # evaluations have no time of their own: read off the curve
    assert list(x) == [10.0, 20.0]


def test_the_step_slider_shows_each_runs_nearest_earlier_grid(qtbot, three_runs):
    view = CompareView(three_runs)
    qtbot.addWidget(view)
    grids = view.grids
    assert grids.steps == [0, 5, 10, 20, 25, 30, 40, 50, 75, 100]
    assert grids.shown_steps() == [40, 100, 5]  # opens at the newest stop
    grids.set_step(30)
    assert grids.current_step() == 30
    assert grids.shown_steps() == [30, 25, 5]
    assert "step 25" in grids.captions[1].text()
    grids.set_step(24)  # between stops: the last stop at or before it
    assert grids.shown_steps() == [20, 0, 5]
    grids.slider.setValue(0)
    assert grids.shown_steps() == [0, 0, None]
    assert "first grid is at step 5" in grids.captions[2].text()
    assert grids.views[2].image is None and grids.views[0].image is not None


def test_the_table_lists_exactly_the_differing_fields_and_each_runs_results(qtbot, three_runs):
    view = CompareView(three_runs)
    qtbot.addWidget(view)
    assert view.config_rows() == ["optim.lr_g", "train.batch_size"]
    rows = dict(view.table_rows())
    assert rows["optim.lr_g"] == ["0.0002", "0.0001", "0.0002"]
    assert rows["train.batch_size"] == ["64", "64", "32"]
    assert rows["last step"] == ["40", "100", "10"]
    assert rows["final D loss"] == [f"{1 + 40 / 100:.4g}", f"{1 + 100 / 100:.4g}", f"{1 + 10 / 100:.4g}"]
    assert rows["best FID"] == ["60 (step 40)", "50 (step 50)", "—"]
    table = view.table
    assert table.rowCount() == len(rows) and table.columnCount() == 3
    assert [table.verticalHeaderItem(r).text() for r in range(2)] == ["optim.lr_g", "train.batch_size"]


def test_identical_configs_differ_in_nothing(tmp_path):
    runs = [CompareRun.open(make_run(tmp_path, name)) for name in ("x", "y")]
    assert differing_keys(runs) == []  # the names differ, but they head the columns


def test_different_families_and_sizes_say_what_is_left_out(qtbot, tmp_path):
    gan = make_run(tmp_path, "gan-28", last=20, grids=(10, 20))
    vae = make_run(tmp_path, "vae-32", {"model.family": "vae", "loss.name": "mse", "data.image_size": 32},
                   last=30, grids=(10, 30))
    view = CompareView([gan, vae])
    qtbot.addWidget(view)
    panels = view.curves.panel_ids()
    assert {"loss_d", "recon", "grad_norm_d"} <= set(panels)
    assert view.curves.curve_data("loss_d", 1)[0].size == 0  # a VAE has no D loss: nothing drawn
    assert view.curves.curve_data("grad_norm_d", 1)[0].size == 3  # the gradient norms they share overlay
    assert view.curves.panels["grad_norm_d"].titleLabel.text == "|∇D| / |∇encoder|"
    notes = view.notes.text()
    assert "D loss, G loss, D(x), D(G(z)): not in vae-32" in notes
    assert "reconstruction, KL, −ELBO (β-weighted): not in gan-28" in notes
    assert "sample grids at their own sizes: 28 px in gan-28; 32 px in vae-32" in notes
    assert "model.family" in view.config_rows() and "data.image_size" in view.config_rows()
    view.grids.set_step(30)
    assert [v.image.width() for v in view.grids.views] == [2 + 2 * 30, 2 + 2 * 34]  # each at its own size


def test_a_truncated_metrics_line_still_opens_with_a_note(qtbot, tmp_path):
    folder = make_run(tmp_path, "torn", last=30, grids=(10,))
    with (folder / "metrics.jsonl").open("ab") as f:
        f.write(b'{"step": 40, "loss_d": 0.5, "los')  # the writer died mid-line
    (folder / "status.json").write_text("{not json")
    other = make_run(tmp_path, "fine", last=20)
    view = CompareView([folder, other])
    qtbot.addWidget(view)
    assert list(view.curves.curve_data("loss_d", 0)[0]) == [10, 20, 30]
    notes = view.notes.text()
    assert "torn: the last line of metrics.jsonl is cut short" in notes
    assert "torn: " in notes and "status.json could not be read" in notes
    assert "fine: no sample grids" in notes


def test_a_live_run_refreshes_while_open(qtbot, tmp_path):
    live = make_run(tmp_path, "live", last=20, grids=(10,))
    done = make_run(tmp_path, "done", last=20, grids=(10,))
    view = CompareView([live, done])
    qtbot.addWidget(view)
    assert view.grids.shown_steps() == [10, 10]
    run = RunDir(live)
    run.append_metrics({"step": 30, "loss_d": 0.25, "loss_g": 2.0, "wall_time": 15.0})
    run.write_grid(30, np.zeros((4, 28, 28, 1), dtype=np.uint8))
    qtbot.waitUntil(lambda: view.curves.curve_data("loss_d", 0)[0].size == 3, timeout=5000)  # the timer's read
    assert view.grids.shown_steps() == [30, 10]  # the slider was at its end: it follows the newest grid
    assert dict(view.table_rows())["last step"] == ["30", "20"]


def test_a_rewritten_metrics_file_is_read_again(tmp_path):
    """A resume from an earlier checkpoint moves later rows aside (RunDir.rewind): the file shrinks."""
    folder = make_run(tmp_path, "rewound", last=50)
    run = CompareRun.open(folder)
    assert run.train.size == 5
    RunDir(folder).rewind(20)
    assert run.refresh()
    assert list(run.train.view("step")) == [10, 20]


def test_open_compare_takes_two_to_six_runs(qtbot, tmp_path, monkeypatch, three_runs):
    told = []
    monkeypatch.setattr(compare_module.QMessageBox, "information", lambda *args: told.append(args[2]))
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    qtbot.addWidget(window)
    assert open_compare(window, three_runs[:1]) is None
    assert told and "2 to 6" in told[0]
    view = open_compare(window, three_runs)
    assert view is not None and view.isVisible() and view.parent() is window
    assert view.windowTitle() == "Compare a, b, c"
    view.close()


def test_comparing_runs_never_loads_torch(tmp_path, three_runs):
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from ganstudio.gui.compare import CompareView; "
            f"v = CompareView({[str(p) for p in three_runs]!r}); v.refresh(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
