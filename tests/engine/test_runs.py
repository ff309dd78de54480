"""The runs index (engine/runs.py): summaries of run folders, damaged ones included, cached between calls."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ganstudio.engine.runs as runs_module
from ganstudio.engine.lock import RunLock
from ganstudio.engine.runs import RunIndex, list_runs


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "runs_list.py"
    spec = importlib.util.spec_from_file_location("bench_runs_list", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _by_name(runs):
    return {run.name: run for run in runs}


def test_states_steps_and_best_scores_of_finished_stopped_and_older_runs(tmp_path):
    bench.make_run(tmp_path / "done", 0, state="finished")
    bench.make_run(tmp_path / "halted", 1, state="stopped", rows=100)
    bench.make_run(tmp_path / "ae", 2, state="failed")
    bench.make_run(tmp_path / "old", 3, state=None)           # from before status.json
    bench.make_run(tmp_path / "old-short", 0, state=None, rows=50)
    runs = _by_name(list_runs([tmp_path]))
    assert {k: r.state for k, r in runs.items()} == {
        "done": "finished", "halted": "stopped", "ae": "failed", "old": "finished", "old-short": "stopped"}
    assert runs["done"].family == "gan" and runs["done"].metric == "fid" and runs["done"].best == pytest.approx(200 / 7)
    assert runs["ae"].family == "autoencoder" and runs["ae"].metric == "recon_mse" and runs["ae"].best is not None
    assert runs["ae"].message == "out of memory on cpu at step 12" and runs["done"].message == ""
    # the older run: its step, time and best FID come from metrics.jsonl (the last row is an eval row)
    assert runs["old"].step == 3000 and runs["old"].elapsed == pytest.approx(150.0)
    assert runs["old"].best == pytest.approx(200 / 10)
    assert runs["halted"].step == 1000 and runs["halted"].last_grid.name == "step_001000.png"
    assert runs["done"].dataset == "bundled" and runs["done"].image_size == 28 and runs["done"].arch == "dcgan"
    assert all(not r.notes for r in runs.values())


def test_a_live_writer_is_running_and_a_dead_one_crashed(tmp_path):
    live = bench.make_run(tmp_path / "live", state="running")
    dead = bench.make_run(tmp_path / "dead", state="running")  # status says running; run.lock nobody holds
    (live / "run.lock").unlink()
    index = RunIndex()
    with RunLock(live):
        runs = _by_name(index.list([tmp_path]))
        assert runs["live"].state == "running" and runs["live"].live
        assert runs["dead"].state == "crashed" and not runs["dead"].live
    # the writer went away without a word (no file of the run changed): the cached summary follows the lock
    assert _by_name(index.list([tmp_path]))["live"].state == "crashed"
    assert dead.exists()


def test_damaged_files_are_notes_never_errors(tmp_path):
    garbage = bench.make_run(tmp_path / "garbage", state="finished")
    (garbage / "status.json").write_text("{not json")
    torn = bench.make_run(tmp_path / "torn", state=None, rows=20)
    with open(torn / "metrics.jsonl", "a") as f:
        f.write('{"step": 999, "loss_d": 1.')
    missing = bench.make_run(tmp_path / "missing", state="stopped")
    for png in (missing / "samples").glob("*.png"):
        png.unlink()
    bad_config = bench.make_run(tmp_path / "badconfig", state="stopped")
    (bad_config / "config.toml").write_text("[model\nfamily = ")
    runs = _by_name(list_runs([tmp_path]))
    assert runs["garbage"].state == "finished"  # inferred from its step budget, as for an older run
    assert any("status.json" in note for note in runs["garbage"].notes)
    assert runs["torn"].step == 200 and any("torn" in note for note in runs["torn"].notes)
    assert runs["missing"].last_grid is None and any("missing" in note for note in runs["missing"].notes)
    assert runs["badconfig"].family is None and any("config.toml" in n for n in runs["badconfig"].notes)


def test_a_rescan_follows_growth_new_runs_and_removals(tmp_path):
    old = bench.make_run(tmp_path / "old", state=None, rows=10)
    grouped = bench.make_run(tmp_path / "queue" / "job1", state="finished")  # one level down is found
    index = RunIndex()
    first = _by_name(index.list([tmp_path]))
    assert set(first) == {"old", "job1"} and first["old"].step == 100 and first["old"].best is None
    with open(old / "metrics.jsonl", "a") as f:  # a writer appends rows: read from where the last look stopped
        f.write(json.dumps({"step": 110, "wall_time": 7.5}) + "\n" + json.dumps({"step": 110, "fid": 12.5}) + "\n")
    bench.make_run(tmp_path / "new", state="stopped")
    os.rename(grouped, tmp_path / "queue" / "job1-renamed")
    second = _by_name(index.list([tmp_path]))
    assert set(second) == {"old", "new", "job1-renamed"}
    assert second["old"].step == 110 and second["old"].elapsed == 7.5 and second["old"].best == 12.5


def test_missing_and_unreadable_roots_list_nothing(tmp_path):
    (tmp_path / "file").write_text("")
    assert list_runs([tmp_path / "nope", tmp_path / "file"]) == []


def test_500_runs_list_within_a_second(tmp_path, monkeypatch):
    """The issue's bound is 1 s for 500 runs; cold, on a loaded 2-core machine, this lists them in about
    0.2 s (benchmarks/runs_list.py prints the figure), so 1 s leaves room for a slow CI runner without
    hiding a regression to per-run pydantic validation or full metrics parsing (several seconds)."""
    bench.make_runs(tmp_path / "runs", 500)
    RunIndex().list([tmp_path / "runs"])  # the page cache, as after any earlier look
    t0 = time.perf_counter()
    runs = RunIndex().list([tmp_path / "runs"])
    cold = time.perf_counter() - t0
    assert len(runs) == 500 and cold < 1.0, f"500 runs took {cold:.2f} s"
    index = RunIndex()
    index.list([tmp_path / "runs"])
    parsed = []
    real_load = runs_module.tomllib.load
    monkeypatch.setattr(runs_module.tomllib, "load", lambda f: parsed.append(f.name) or real_load(f))
    again = index.list([tmp_path / "runs"])
    # the dock's once-a-second rescan: stat calls only, no config parsed again (its time is the benchmark's)
    assert parsed == [] and [r.path for r in again] == [r.path for r in runs]


def test_listing_runs_never_imports_torch(tmp_path):
    bench.make_run(tmp_path / "a", state="running")
    code = ("import sys; from ganstudio.engine.runs import list_runs\n"
            f"assert len(list_runs([{str(tmp_path)!r}])) == 1\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
