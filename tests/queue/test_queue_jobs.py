"""The queue file without running anything: adding, sweeps, removing, and a damaged file set aside."""

import json
import subprocess
import sys

import pytest

from ganstudio.cli import main
from ganstudio.queue import JobQueue, QueueError, parse_sweep, sweep_jobs

TINY = ["--set", "data.max_images=128", "--set", "model.g_width=8", "--set", "model.d_width=8", "--device", "cpu"]


def test_a_sweep_over_two_fields_is_their_product_first_key_slowest():
    sweeps = [parse_sweep("optim.lr_g=1e-4,2e-4"), parse_sweep("train.batch_size=16, 32 ,64")]
    jobs = sweep_jobs(sweeps, "lr")
    assert [name for _, name in jobs] == ["lr lr_g=1e-4 batch_size=16", "lr lr_g=1e-4 batch_size=32",
                                          "lr lr_g=1e-4 batch_size=64", "lr lr_g=2e-4 batch_size=16",
                                          "lr lr_g=2e-4 batch_size=32", "lr lr_g=2e-4 batch_size=64"]
    assert jobs[4][0] == ["--set", "optim.lr_g=2e-4", "--set", "train.batch_size=32"]


def test_sweep_values_keep_commas_inside_brackets_and_quotes():
    assert parse_sweep("model.x=[1,2],[3,4]") == ("model.x", ["[1,2]", "[3,4]"])
    assert parse_sweep("data.path='a,b','c'") == ("data.path", ["'a,b'", "'c'"])
    for bad in ("optim.lr_g", "=1,2", "optim.lr_g=1,,2", "optim.lr_g="):
        with pytest.raises(ValueError, match="sweep"):
            parse_sweep(bad)
    with pytest.raises(ValueError, match="one or two"):
        sweep_jobs([("a", ["1"])] * 3)


def test_queue_add_with_sweeps_queues_every_combination_with_absolute_paths(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    config = tmp_path / "c.toml"
    config.write_text('name = "mine"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["queue", "add", "--runs", str(runs), "--config", "c.toml", *TINY, "--steps", "3",
                 "--sweep", "optim.lr_g=1e-4,2e-4", "--sweep", "train.batch_size=16,32"]) == 0
    assert capsys.readouterr().out.count("queued job") == 4
    jobs = JobQueue(runs).read().jobs
    assert [job.id for job in jobs] == [1, 2, 3, 4] and {job.state for job in jobs} == {"queued"}
    assert jobs[0].args[:2] == ["--config", str(config)]  # the runner's child runs elsewhere
    assert jobs[3].args[-4:] == ["--set", "optim.lr_g=2e-4", "--set", "train.batch_size=32"]
    assert "--steps" in jobs[2].args


def test_queue_add_checks_the_config_now_and_queues_nothing_when_it_is_bad(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["queue", "add", "--runs", str(runs), "--sweep", "optim.lr_g=1e-4,-1"]) == 2
    assert "optim.lr_g = -1" in capsys.readouterr().err
    assert JobQueue(runs).read().jobs == []


def test_an_unreadable_queue_file_is_set_aside_and_an_empty_queue_starts(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "queue.json").write_text('{"jobs": [{"id": 1, "args": [], "state": "exploded"}]}')
    (runs / "queue.json.unreadable-1").write_text("an older one")
    assert main(["queue", "list", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "could not be read" in out and "queue.json.unreadable-2" in out and "0 job(s)" in out
    assert "exploded" in (runs / "queue.json.unreadable-2").read_text()
    assert (runs / "queue.json.unreadable-1").read_text() == "an older one"
    queue = JobQueue(runs)
    assert queue.add(["--steps", "1"]).id == 1 and queue.notes == []
    (runs / "queue.json").write_bytes(b"\xff\xfe garbage")
    assert JobQueue(runs).read().jobs == []
    assert (runs / "queue.json.unreadable-3").exists()


def test_remove_takes_queued_jobs_and_refuses_a_running_one(tmp_path, capsys):
    queue = JobQueue(tmp_path)
    for n in range(3):
        queue.add(["--steps", str(n + 1)])
    with queue.edit() as current:
        current.job(2).state = "running"
    with pytest.raises(QueueError, match="job 2 .* is running"):
        queue.remove(2)
    assert main(["queue", "remove", "--runs", str(tmp_path), "2"]) == 1
    assert "is running" in capsys.readouterr().err
    assert main(["queue", "remove", "--runs", str(tmp_path), "3"]) == 0
    assert [job.id for job in queue.read().jobs] == [1, 2]
    assert queue.add([]).id == 4  # ids are never reused: a log queue-logs/3.log stays the removed job's
    with pytest.raises(QueueError, match="no job 9"):
        queue.remove(9)
    raw = json.loads((tmp_path / "queue.json").read_text())
    assert raw["next_id"] == 5


def test_the_queue_never_loads_torch_or_qt(tmp_path):
    """`queue list`, the runner and the studio's dock read the queue before (or without) torch."""
    code = ("import sys\n"
            "from ganstudio.cli import main\n"
            "import ganstudio.queue.runner\n"
            f"assert main(['queue', 'list', '--runs', {str(tmp_path)!r}]) == 0\n"
            "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules, 'torch or Qt was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
