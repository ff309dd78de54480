"""TrainingPlots: data in, curves out; smoothing against a hand-written reference; markers; buffers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganstudio.gui.plots import KEYS, Columns, TrainingPlots, ema_debiased


def reference_ema(values, weight):
    """TensorBoard's smoothing, one value at a time."""
    last, count, out = 0.0, 0, []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(math.nan)
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight**count))
    return np.array(out)


def make_rows(start, n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"step": s, "epoch": 0, "loss_d": float(rng.uniform(0.3, 1.0)), "loss_g": float(rng.uniform(1, 3)),
             "d_real": float(rng.uniform(0.5, 0.9)), "d_fake": float(rng.uniform(0.1, 0.5)),
             "grad_norm_d": float(rng.uniform(1, 10)), "grad_norm_g": float(rng.uniform(0.1, 5)),
             "lr_d": 2e-4, "lr_g": 2e-4, "images_per_s": 900.0, "wall_time": s * 0.01}
            for s in range(start, start + n)]


@pytest.fixture
def plots(qtbot):
    widget = TrainingPlots()
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    return widget


def drawn(curve):
    """The data the curve was given (getData() would return what is displayed: downsampled)."""
    x, y = curve.xData, curve.yData
    return (np.array([]), np.array([])) if x is None else (x, y)


def wait_drawn(qtbot, plots, n):
    qtbot.waitUntil(lambda: len(drawn(plots.curves["loss_d"])[0]) == n, timeout=2000)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.99])
def test_ema_matches_reference_and_extends_in_chunks(weight):
    rng = np.random.default_rng(1)
    values = rng.normal(size=3000)
    values[::41] = np.nan
    values[7] = np.inf
    expected = reference_ema(values, weight)
    whole, _, _ = ema_debiased(values, weight)
    np.testing.assert_allclose(whole, expected, rtol=1e-12, atol=1e-12)
    pieces, last, count = [], 0.0, 0
    for start in range(0, len(values), 257):
        part, last, count = ema_debiased(values[start:start + 257], weight, last, count)
        pieces.append(part)
    np.testing.assert_allclose(np.concatenate(pieces), expected, rtol=1e-12, atol=1e-12)
    assert count == np.isfinite(values).sum()


def test_columns_double_when_full_and_keep_their_data():
    cols = Columns(("a", "b"), capacity=4)
    for start in range(0, 30, 3):
        cols.extend({"a": np.arange(start, start + 3, dtype=float)})  # "b" absent -> NaN
    assert cols.size == 30 and cols.capacity == 32
    np.testing.assert_array_equal(cols.view("a"), np.arange(30))
    assert np.isnan(cols.view("b")).all()


def test_append_counts_rows_and_the_timer_draws_them_all(qtbot, plots):
    for start in range(0, 500, 10):  # 50 appends inside one timer period -> one redraw with everything
        plots.append(make_rows(start, 10))
    assert plots.point_count() == 500
    assert plots._timer.isActive()
    wait_drawn(qtbot, plots, 500)
    x, y = drawn(plots.curves["loss_g"])
    np.testing.assert_array_equal(x, np.arange(500))
    assert len(drawn(plots.raw_curves["grad_norm_d"])[0]) == 500


def test_buffers_grow_past_their_capacity(qtbot, plots):
    rows = make_rows(0, 5000, seed=3)
    for start in range(0, 5000, 700):
        plots.append(rows[start:start + 700])
    assert plots.point_count() == 5000 and plots._data.capacity >= 5000
    expected = np.array([r["d_fake"] for r in rows])
    np.testing.assert_array_equal(plots._data.view("d_fake"), expected)
    np.testing.assert_allclose(plots.smoothed("d_fake"), reference_ema(expected, plots.smoothing_weight()))
    wait_drawn(qtbot, plots, 5000)


def test_none_and_absent_values_become_gaps(qtbot, plots):
    rows = make_rows(0, 6)
    rows[2]["loss_d"] = None
    del rows[4]["loss_g"]
    plots.append(rows + [{"step": 6, "fid": 31.0}])  # a row with nothing to plot is skipped
    assert plots.point_count() == 6
    wait_drawn(qtbot, plots, 6)
    _, raw_d = drawn(plots.raw_curves["loss_d"])
    _, smooth_g = drawn(plots.curves["loss_g"])
    assert np.isnan(raw_d[2]) and np.isnan(smooth_g[4])
    assert np.isfinite(raw_d[[0, 1, 3, 4, 5]]).all()
    assert plots.curves["loss_d"].opts["skipFiniteCheck"] is False  # a NaN must stay a visible gap


def test_smoothing_slider_recomputes_every_curve(qtbot, plots):
    rows = make_rows(0, 200, seed=5)
    rows[50]["loss_g"] = None
    plots.append(rows[:120])
    plots.append(rows[120:])
    raw = [r["loss_g"] for r in rows]
    np.testing.assert_allclose(plots.smoothed("loss_g"), reference_ema(raw, plots.smoothing_weight()))
    plots.smoothing.setValue(90)
    np.testing.assert_allclose(plots.smoothed("loss_g"), reference_ema(raw, 0.9))
    plots.append(make_rows(200, 30, seed=6))  # extended incrementally from the new state
    more = raw + [r["loss_g"] for r in make_rows(200, 30, seed=6)]
    np.testing.assert_allclose(plots.smoothed("loss_g"), reference_ema(more, 0.9))
    wait_drawn(qtbot, plots, 230)
    np.testing.assert_allclose(drawn(plots.curves["loss_g"])[1], reference_ema(more, 0.9))
    plots.smoothing.setValue(0)
    np.testing.assert_allclose(plots.smoothed("loss_g"), np.array(more, dtype=float))


def test_markers_on_every_panel_and_load_rows_replaces(qtbot, plots):
    plots.append(make_rows(0, 100))
    plots.add_marker(40, "paused")
    plots.add_marker(60, "lr_g → 1e-3")
    assert plots.marker_count() == 2
    for panel in plots.panels:
        lines = [item for item in panel.items if type(item).__name__ == "InfiniteLine"]
        assert sorted(line.value() for line in lines) == [40, 60]
    plots.load_rows(make_rows(1000, 30))
    assert plots.point_count() == 30 and plots.marker_count() == 0
    assert not any(type(item).__name__ == "InfiniteLine" for item in plots.panels[0].items)
    wait_drawn(qtbot, plots, 30)
    assert drawn(plots.curves["d_real"])[0][0] == 1000
    plots.clear()
    assert plots.point_count() == 0
    wait_drawn(qtbot, plots, 0)


def test_a_palette_change_recolours_background_and_legends(plots):
    from PySide6.QtGui import QColor, QPalette

    palette = plots.palette()
    palette.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    palette.setColor(QPalette.ColorRole.Text, QColor("#e6e6e6"))
    plots.setPalette(palette)  # what switching to the dark theme does
    assert plots.canvas.backgroundBrush().color().name() == "#1e1e1e"
    for panel in plots.panels:
        assert panel.legend.brush().color().name() == "#1e1e1e"
        assert panel.legend.labelTextColor().name() == "#e6e6e6"


def test_long_curves_are_downsampled_and_clipped(plots):
    # set on the PlotItem: a curve's own options are overwritten when it is added to a plot
    for curve in (*plots.curves.values(), *plots.raw_curves.values()):
        assert curve.opts["autoDownsample"] and curve.opts["clipToView"]
        assert curve.opts["downsampleMethod"] == "peak"


def test_names_and_screenshot(qtbot, plots, artifacts_dir):
    assert plots.smoothing.objectName() == "smoothing" and plots.smoothing.accessibleName()
    rng = np.random.default_rng(7)
    n = 3000
    steps = np.arange(n)
    rows = [{"step": int(s), "loss_d": 0.7 + 0.6 * np.exp(-s / 400) + 0.15 * rng.normal(),
             "loss_g": 1.2 + 1.5 * (1 - np.exp(-s / 600)) + 0.3 * rng.normal(),
             "d_real": 0.65 + 0.2 * np.exp(-s / 500) + 0.05 * rng.normal(),
             "d_fake": 0.3 - 0.1 * np.exp(-s / 500) + 0.05 * rng.normal(),
             "grad_norm_d": float(np.exp(rng.normal(1.0, 0.5))), "grad_norm_g": float(np.exp(rng.normal(0, 0.5)))}
            for s in steps]
    for r in rows[1500:1530]:
        r["loss_g"] = None  # a NaN stretch shows as a gap
    plots.append(rows)
    plots.add_marker(1000, "paused")
    plots.add_marker(2200, "lr_g → 1e-3")
    plots.show()
    qtbot.waitExposed(plots)
    wait_drawn(qtbot, plots, n)
    assert list(plots.curves) == ["loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"]
    assert plots.grab().save(str(artifacts_dir / "plots.png"))


# --- model families ---------------------------------------------------------------------------------
def vae_rows(start, n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(start, start + n):
        recon, kl = 60 * np.exp(-s / 300) + 25 + rng.normal(), 4 + 14 * (1 - np.exp(-s / 200)) + 0.5 * rng.normal()
        rows.append({"step": s, "epoch": 0, "recon": recon, "kl": kl, "loss": recon + kl,
                     "grad_norm_d": float(np.exp(rng.normal(1, 0.4))),
                     "grad_norm_g": float(np.exp(rng.normal(0.5, 0.4))),
                     "lr_d": 1e-3, "lr_g": 1e-3, "images_per_s": 2000.0, "wall_time": s * 0.01})
    return rows


def test_gan_layout_is_the_default(plots):
    assert plots.family.name == "gan" and len(plots.panels) == 3
    assert [p.getAxis("left").labelText for p in plots.panels] == ["loss", "D output", "grad norm"]
    assert [p.getAxis("left").logMode for p in plots.panels] == [False, False, True]
    assert set(KEYS) >= {"loss_d", "recon", "kl", "loss"}


def test_vae_has_the_elbo_panel_and_plots_recon_and_kl(qtbot, plots):
    plots.set_family("vae")
    assert plots.panel_titles == ["ELBO parts", "Gradient norms"] and len(plots.panels) == 2
    assert set(plots.curves) == {"recon", "kl", "loss", "grad_norm_d", "grad_norm_g"}
    legend = [label.text for _sample, label in plots.panels[0].legend.items]
    assert legend == ["reconstruction", "KL", "−ELBO (β-weighted)"]
    rows = vae_rows(0, 50)
    eval_row = {"step": 40, "recon_mse": 0.02, "recon": 31.0, "kl": 12.0, "elbo": -43.0, "eval_samples": 500}
    plots.append(rows + [eval_row])  # an evaluation row is no training point
    assert plots.point_count() == 50
    qtbot.waitUntil(lambda: len(drawn(plots.curves["kl"])[0]) == 50, timeout=2000)
    x, raw_kl = drawn(plots.raw_curves["kl"])
    np.testing.assert_array_equal(x, np.arange(50))
    np.testing.assert_array_equal(raw_kl, [r["kl"] for r in rows])
    np.testing.assert_array_equal(drawn(plots.raw_curves["recon"])[1], [r["recon"] for r in rows])
    assert np.isfinite(drawn(plots.curves["loss"])[1]).all()


def test_autoencoder_shows_reconstruction_and_gradient_norms(plots):
    plots.set_family("autoencoder")
    assert plots.panel_titles == ["Reconstruction", "Gradient norms"]
    assert set(plots.curves) == {"recon", "grad_norm_d", "grad_norm_g"}
    legend = [label.text for _sample, label in plots.panels[1].legend.items]
    assert legend == ["|∇encoder|", "|∇decoder|"] and plots.panels[1].getAxis("left").logMode


def test_switching_family_keeps_data_and_markers(qtbot, plots):
    plots.load_rows(make_rows(0, 30))
    plots.add_marker(10, "paused")
    plots.set_family("cgan")  # the same panels: nothing rebuilt
    panels = list(plots.panels)
    plots.set_family("gan")
    assert plots.panels == panels
    plots.set_family("vae")
    assert plots.panels != panels and plots.marker_count() == 1
    for panel in plots.panels:
        assert [item.value() for item in panel.items if type(item).__name__ == "InfiniteLine"] == [10]
    plots.set_family("gan")
    qtbot.waitUntil(lambda: len(drawn(plots.curves["loss_d"])[0]) == 30, timeout=2000)
    assert plots.point_count() == 30


def test_set_config_follows_the_family(plots):
    from ganstudio.config import load_preset

    plots.set_config(load_preset("dcgan-fashion", ["model.family=autoencoder", "loss.name=mse"]))
    assert plots.family.name == "autoencoder"
    plots.set_config(None)
    assert plots.family.name == "autoencoder"


def test_reopened_vae_history_plots_its_keys(qtbot, plots):
    import json

    lines = [json.dumps(r) for r in vae_rows(0, 20)]
    lines.insert(10, json.dumps({"step": 10, "recon_mse": 0.03, "recon": 40.0, "kl": 9.0, "elbo": -49.0,
                                 "eval_samples": 200}))
    rows = [json.loads(line) for line in lines]  # as RunDir.read_metrics gives them
    plots.set_family("vae")
    plots.load_rows(rows)
    assert plots.point_count() == 20
    qtbot.waitUntil(lambda: len(drawn(plots.curves["recon"])[0]) == 20, timeout=2000)
    assert np.isnan(plots._data.view("loss_d")).all()


def test_screenshot_vae(qtbot, plots, artifacts_dir):
    plots.set_family("vae")
    plots.append(vae_rows(0, 1500, seed=2))
    plots.add_marker(700, "paused")
    plots.show()
    qtbot.waitExposed(plots)
    qtbot.waitUntil(lambda: len(drawn(plots.curves["recon"])[0]) == 1500, timeout=2000)
    assert plots.grab().save(str(artifacts_dir / "plots_vae.png"))


def test_markers_close_together_share_one_line_with_counted_events(qtbot, plots):
    """Tapping Space 200 times leaves one labelled line per panel, not 1,200 items (a 347 ms stall)."""
    plots.append(make_rows(0, 1000))
    for i in range(100):
        plots.add_marker(500 + i % 3, "paused")
        plots.add_marker(500 + i % 3, "resumed")
    assert plots.marker_line_count() == 1 and plots.marker_count() == 200
    assert plots.marker_labels() == ["paused ×100, resumed ×100"]
    for panel in plots.panels:
        lines = [item for item in panel.items if type(item).__name__ == "InfiniteLine"]
        assert len(lines) == 1 and lines[0].label.format == "paused ×100, resumed ×100"
    plots.add_marker(900, "lr_g → 1e-3")  # far from the last one: a line of its own
    assert plots.marker_labels() == ["paused ×100, resumed ×100", "lr_g → 1e-3"]
    plots.set_family("vae")  # rebuilt panels keep the merged labels
    plots.set_family("gan")
    labels = sorted(item.label.format for item in plots.panels[0].items if type(item).__name__ == "InfiniteLine")
    assert labels == ["lr_g → 1e-3", "paused ×100, resumed ×100"]


def _lines(panel):
    return [item for item in panel.items if type(item).__name__ == "InfiniteLine"]


def test_marker_labels_are_staggered_readable_and_clear_of_the_legend(qtbot, plots):
    plots.show()
    qtbot.waitExposed(plots)
    plots.append(make_rows(0, 200))
    for step, text in ((50, "paused"), (60, "resumed"), (70, "lr_g → 0.001"), (199, "stopped")):
        plots.add_marker(step, text)
    wait_drawn(qtbot, plots, 200)
    qtbot.wait(50)  # a paint, so the labels have their places
    for panel in plots.panels:
        view = panel.vb.sceneBoundingRect()
        labels = [line.label for line in sorted(_lines(panel), key=lambda line: line.value())]
        rects = [label.sceneBoundingRect() for label in labels]
        heights = [label.orthoPos for label in labels]
        assert all(a != b for a, b in zip(heights, heights[1:]))  # neighbours never share a height
        for i, a in enumerate(rects):  # no label overlaps another
            assert not any(a.intersects(b) for b in rects[i + 1:]), (i, a)
        for rect in rects:  # the newest, at the right edge, flips to the line's left: not cut off
            assert view.contains(rect), (rect, view)
        legend = panel.legend.sceneBoundingRect()
        assert not legend.intersects(view)  # the legend sits above the data
        assert not any(legend.intersects(rect) for rect in rects)


def test_a_lone_first_point_is_drawn_as_a_symbol(qtbot, plots):
    plots.append(make_rows(0, 1))
    wait_drawn(qtbot, plots, 1)
    assert plots.curves["loss_d"].opts["symbol"] == "o"
    plots.append(make_rows(1, 100))
    wait_drawn(qtbot, plots, 101)
    assert plots.curves["loss_d"].opts["symbol"] is None  # a long curve is a line


def test_log_axis_labels_decades_not_every_minor_tick(plots):
    axis = plots.panels[-1].getAxis("left")
    assert plots.panels[-1].titleLabel.text is not None and axis.logMode
    axis.setRange(-3, 1)  # four decades
    minor = [v + math.log10(k) for v in range(-3, 1) for k in range(2, 10)]
    assert [s for s in axis.logTickStrings(minor, 1.0, None) if s] == []
    assert axis.logTickStrings([-3, -2, 0], 1.0, 1.0) == ["0.001", "0.01", "1"]
    axis.setRange(0, 1.2)  # about one decade: 2 and 5 as well
    labelled = [s for s in axis.logTickStrings([math.log10(k) for k in range(2, 10)], 1.0, None) if s]
    assert labelled == ["2", "5"]


def test_single_steps_are_points_of_their_kind_not_curve_rows(qtbot, plots):
    from ganstudio.engine.events import RunEvent

    plots.append(make_rows(0, 10))
    plots.add_event(RunEvent(9, "paused", "paused"))
    plots.add_event(RunEvent(9, "step_d", "D step", {"loss_d": 0.7, "d_real": 0.6, "d_fake": 0.4,
                                                      "grad_norm_d": 3.0}))
    plots.add_event(RunEvent(10, "step_g", "G step", {"loss_g": 2.0, "grad_norm_g": 1.0}))
    assert plots.point_count() == 10  # the curves' rows are untouched: no gap row, no repeated step
    assert plots.single_step_points() == [("step_d", 9), ("step_g", 10)]
    assert plots.marker_labels() == ["paused"]
    losses = plots.panels[0]
    names = [label.text for _sample, label in losses.legend.items]
    assert "D step" in names and "G step" in names
    symbols = {item.opts["symbol"] for item in losses.items if getattr(item, "opts", {}).get("pen", 0) is None}
    assert symbols == {"t1", "t"}
    plots.clear()
    assert plots.single_step_points() == [] and "D step" not in [lbl.text for _s, lbl in losses.legend.items]


def test_a_redraw_fits_the_ranges_before_the_paint(plots, qtbot):
    """The redraw fits the ranges itself. Left to the paint, the new range invalidates what was just painted and
    each new row costs two paints of every panel (the stall a followed run's rows caused)."""
    plots.show()
    plots.append(make_rows(0, 50))
    wait_drawn(qtbot, plots, 50)
    plots.append(make_rows(50, 30))
    plots._redraw()
    for plot in plots.panels:  # no paint has run since: the redraw fitted them
        assert plot.vb.viewRange()[0][1] >= 79
    lowest = min(r["loss_d"] for r in make_rows(0, 50) + make_rows(50, 30))
    assert plots.panels[0].vb.viewRange()[1][0] <= lowest
    assert not plots.panels[0].getAxis("bottom").isVisible()  # one step axis, under the last panel
    assert plots.panels[-1].getAxis("bottom").isVisible()
