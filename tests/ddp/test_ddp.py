"""DDP on two gloo processes: the same weights everywhere, the same run as one process, one writer, a
collective NaN guard and an exact resume (issue 15). Each test spawns 2 ranks for a few tiny steps."""

from __future__ import annotations

import json

import pytest
import torch

from ganstudio.config import RunConfig
from ganstudio.engine import Trainer
from ddp_workers import spawn

pytestmark = [pytest.mark.ddp, pytest.mark.slow]


def _config(**model) -> dict:
    return {
        "name": "ddp",
        "data": {"source": "bundled", "max_images": 256, "image_size": 28},
        "model": {"arch": "dcgan", "z_dim": 8, "g_width": 8, "d_width": 8, **model},
        "train": {"batch_size": 32, "device": "cpu", "log_every": 2, "sample_every": 5, "checkpoint_every": 5,
                  "num_samples": 8, "seed": 3, "steps": 6},
    }


def _equal(a: dict, b: dict) -> bool:
    # running statistics stay per rank (broadcast_buffers off, see engine/distributed.py): weights only
    keys = [k for k in a if "running" not in k and "num_batches" not in k]
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_weights_identical_on_both_ranks_and_only_rank0_writes(tmp_path):
    """A batch-norm D (real and fake in two forwards) with EMA, R1 and DiffAugment."""
    config = _config()
    config["train"] |= {"ema": 0.99, "augment": ["color", "translation"]}
    config["loss"] = {"r1_weight": 1.0}
    run = tmp_path / "run"
    r0, r1 = spawn(2, tmp_path / "out", config, run)
    assert r0["step"] == r1["step"] == 6
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])
    assert r0["group"] == "training on 2 processes (gloo, cpu)"
    assert r1["written"] == []
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 5, 6]  # logged, logged, sampled, logged; one writer: none twice
    assert all(r["world_size"] == 2 for r in rows)
    assert (run / "checkpoints" / "last.pt").is_file()


def test_two_ranks_of_32_equal_one_process_of_64(tmp_path):
    config = {
        "name": "eq", "data": {"source": "bundled", "max_images": 256, "image_size": 28},
        "model": {"arch": "mlp", "z_dim": 8, "g_width": 16, "d_width": 16, "g_norm": "none", "d_norm": "none",
                  "d_dropout": 0.0},
        "train": {"batch_size": 64, "device": "cpu", "log_every": 5, "sample_every": 100, "num_samples": 8,
                  "seed": 5, "steps": 10, "threads": 1},
    }
    r0, r1 = spawn(2, tmp_path / "out", config)
    single = Trainer(RunConfig.model_validate(config))
    single.run()
    assert r0["step"] == single.global_step == 10
    for name, ours in (("g", single.g.state_dict()), ("d", single.d.state_dict())):
        for key, value in ours.items():
            torch.testing.assert_close(r0[name][key], value, rtol=1e-5, atol=1e-6)
    assert _equal(r0["g"], r1["g"])


def test_nan_on_rank1_rolls_back_both(tmp_path):
    config = _config(d_norm="none")
    r0, r1 = spawn(2, tmp_path / "out", config, nan_rank=1, nan_step=3)
    for r in (r0, r1):
        assert r["step"] == 6
        assert [kind for _, kind, _ in r["warnings"]].count("nan") == 1
        assert r["lr_g"] == pytest.approx(config_lr() * RunConfig.model_validate(config).train.nan_lr_factor)
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])


def test_nan_on_rank1_in_a_paused_single_d_step_rolls_back_both(tmp_path):
    """A single step's NaN check is collective too: a rank that saw a NaN alone would wait in the NaN
    guard's collective for ever while the others marked the step and went on."""
    config = _config(d_norm="none")
    r0, r1 = spawn(2, tmp_path / "out", config, nan_rank=1, nan_step=3, nan_kind="d", paused_d_step_at=3)
    for r in (r0, r1):
        assert r["step"] == 6
        assert [kind for _, kind, _ in r["warnings"]].count("nan") == 1
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])


def config_lr() -> float:
    return RunConfig.model_validate(_config()).optim.lr_g


def test_resume_10_to_20_equals_20_straight(tmp_path):
    config = _config(arch="mlp", d_dropout=0.3)  # dropout draws from each rank's own global RNG
    config["train"] |= {"steps": 20, "checkpoint_every": 10, "augment": ["translation"]}
    straight = spawn(2, tmp_path / "a", config, tmp_path / "straight")
    config["train"]["steps"] = 10
    spawn(2, tmp_path / "b", config, tmp_path / "resumed")
    resumed = spawn(2, tmp_path / "c", config, tmp_path / "resumed", resume=True, changes={"train.steps": 20})
    assert resumed[0]["step"] == straight[0]["step"] == 20
    for rank in (0, 1):
        assert _equal(resumed[rank]["g"], straight[rank]["g"]) and _equal(resumed[rank]["d"], straight[rank]["d"])
    assert not [w for w in resumed[0]["warnings"] if w[1] == "notice"]


def test_rank0_controls_reach_every_rank(tmp_path):
    """A single D step, a live learning-rate change and a sample request, given to rank 0 mid-run."""
    run = tmp_path / "run"
    r0, r1 = spawn(2, tmp_path / "out", _config(), run, live_at=2)
    assert r0["step"] == r1["step"] == 6
    assert r0["lr_g"] == r1["lr_g"] == 1e-3
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])
    events = [json.loads(line)["kind"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert "changed" in events
    assert sorted(p.name for p in (run / "samples").glob("*.png"))[1] == "step_000002.png"  # the requested grid


def test_rank0_evaluates_and_every_rank_keeps_best_and_early_stop_in_step(tmp_path):
    config = _config()
    config["train"] |= {"eval_every": 2, "steps": 40}
    config["eval"] = {"num_samples": 200, "metrics": ["fid"], "early_stop": 1}
    run = tmp_path / "run"
    r0, r1 = spawn(2, tmp_path / "out", config, run)
    assert r0["step"] == r1["step"] < 40  # both stopped early, at the same step
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_samples" in r]
    assert evals and all(r["world_size"] == 2 for r in evals)
    assert len({r["step"] for r in evals}) == len(evals)
    from ganstudio.engine import checkpoint

    assert len(checkpoint.load(run / "checkpoints" / "best.pt")["state"]["ranks"]) == 2
