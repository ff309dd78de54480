"""Evaluation inside training: metrics.jsonl rows, events, best.pt, early stop, diagnostics, and the CLI."""

import json
import math

import pytest
from PIL import Image

from ganstudio.engine import EvalResult, RunDir, StepStats, Trainer, TrainWarning, checkpoint
from ganstudio.engine.diagnostics import WINDOW, Diagnostics


@pytest.fixture
def eval_config(tiny_config):
    return tiny_config.with_overrides(["eval.num_samples=200", "eval.metrics=['fid', 'kid', 'is', 'pr', 'dc']",
                                       "train.eval_every=4", "train.steps=8"])


def test_evaluations_are_logged_with_sample_counts_and_best_checkpoint_kept(eval_config, tmp_path):
    seen = []
    Trainer(eval_config, tmp_path / "run").run(callbacks=[seen.append])
    results = [e for e in seen if isinstance(e, EvalResult)]
    assert [r.step for r in results] == [4, 8]
    for key in ("fid", "kid", "kid_std", "is", "precision", "recall", "density", "coverage"):
        assert math.isfinite(results[0].metrics[key]), key
    assert results[0].num_samples == 200 and results[0].best
    assert any("FID" in w for w in results[0].warnings)  # 200 samples is too few to mean much: said so
    rows = [r for r in RunDir(tmp_path / "run").read_metrics() if "eval_samples" in r]
    assert [(r["step"], r["eval_samples"]) for r in rows] == [(4, 200), (8, 200)]
    best = checkpoint.load(tmp_path / "run" / "checkpoints" / "best.pt")
    best_step = max((r for r in results if r.best), key=lambda r: r.step).step
    assert best["step"] == best_step


def test_early_stop_when_fid_does_not_improve(eval_config):
    trainer = Trainer(eval_config.with_overrides(["eval.early_stop=1", "eval.metrics=['fid']", "train.steps=40"]))
    trainer.best_score = 0.0  # nothing can beat it
    finished = trainer.run()
    assert finished.reason == "early-stop" and trainer.global_step == 4


def test_a_briefly_trained_generator_beats_an_untrained_one(tiny_config):
    config = tiny_config.with_overrides(["data.max_images=2000", "model.g_width=32", "model.d_width=32",
                                         "model.z_dim=32", "train.batch_size=64", "train.log_every=50",
                                         "eval.num_samples=1000", "eval.metrics=['fid']"])
    trainer = Trainer(config)
    untrained = trainer.evaluate().metrics["fid"]
    for _ in range(150):
        trainer.train_step()
    trained = trainer.evaluate().metrics["fid"]
    assert trained < 0.7 * untrained, (untrained, trained)


def _stats(step, **kw):
    base = dict(step=step, epoch=0, loss_d=0.7, loss_g=0.7, d_real=0.6, d_fake=0.4, grad_norm_d=3.0,
                grad_norm_g=2.0, lr_d=2e-4, lr_g=2e-4, images_per_s=100.0, wall_time=1.0)
    return StepStats(**{**base, **kw})


@pytest.mark.parametrize("fields, kind", [
    ({"d_real": 0.999, "d_fake": 0.001, "loss_d": 0.002}, "d-overpowering"),
    ({"grad_norm_d": 250.0}, "exploding-gradients"),
    ({"grad_norm_g": 1e-6}, "vanishing-gradients"),
])
def test_diagnostics_fire_once_after_a_sustained_window(fields, kind):
    diagnostics = Diagnostics(probability_loss=True)
    fired = [w for i in range(WINDOW + 3) for w in diagnostics.check_stats(_stats(i, **fields))]
    assert [w.kind for w in fired] == [kind] and fired[0].step == WINDOW - 1
    assert "Try:" in fired[0].message
    assert not [w for w in diagnostics.check_stats(_stats(99)) if w.kind == kind]  # cleared: re-arms
    healthy = Diagnostics(probability_loss=True)
    assert not [w for i in range(10) for w in healthy.check_stats(_stats(i))]


def test_mode_collapse_warning_names_its_figures():
    diagnostics = Diagnostics(probability_loss=True)
    (warning,) = diagnostics.check_eval(100, diversity_ratio=0.2, class_share=0.3)
    assert warning.kind == "mode-collapse" and "0.20" in warning.message and "30%" in warning.message
    assert diagnostics.check_eval(200, diversity_ratio=0.9, class_share=1.0) == []


def test_cli_eval_prints_table_writes_json_and_neighbours(eval_config, tmp_path, capsys):
    from ganstudio.cli import main

    Trainer(eval_config.updated("train.eval_every", 0), tmp_path / "run").run()
    out = tmp_path / "eval.json"
    assert main(["eval", str(tmp_path / "run"), "-n", "100", "--json", str(out),
                 "--neighbours", str(tmp_path / "nn.png"), "--metrics", "fid,kid"]) == 0
    printed = capsys.readouterr()
    assert "FID" in printed.out and "@100" in printed.out and "warning" in printed.err
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"fid", "kid", "kid_std"} and result["num_samples"] == 100
    with Image.open(tmp_path / "nn.png") as sheet:  # 8 rows of 28 px (+2 px gaps); 1 + 3 images + a gap
        assert sheet.size == (4 * 28 + 6, 8 * 30)


def test_cli_eval_of_a_missing_run_is_one_line(tmp_path, capsys):
    from ganstudio.cli import main

    assert main(["eval", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_warnings_from_evaluation_reach_callbacks(eval_config):
    seen = []
    Trainer(eval_config.updated("train.steps", 4)).run(callbacks=[seen.append])
    assert any(isinstance(e, TrainWarning) and e.kind == "eval" and "FID" in e.message for e in seen)
