"""Start with Processes > 1: the child job's command line, `ganstudio train` honouring train.processes, the
close question (stop the job, leave it running, or cancel; a signal never asks), and a real 2-process job
that the studio starts, follows, pauses and stops, leaving no process behind."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from ganstudio.gui import job_launch
from ganstudio.gui.main_window import MainWindow
from ganstudio.train_command import _processes


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                     runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    job = win.run.job
    if job is not None and job.running:  # a failed test: end the job, and close without the question
        os.killpg(job.proc.pid, 15)
        job.proc.wait(60)
    win.run.job = None
    win.run.shutdown()


def test_the_job_command_starts_the_same_train_command_on_n_processes(tmp_path):
    run, config = tmp_path / "runs" / "tiny-1", tmp_path / "job.toml"
    assert job_launch.job_command(run, 2, config) == [
        sys.executable, "-m", "ganstudio", "train", "--config", str(config), "--run-dir", str(run),
        "--nproc", "2", "--quiet"]
    resumed = job_launch.job_command(run, 4, changes={"optim.lr_g": 1e-4, "train.steps": None, "name": "a b"})
    assert resumed[4:] == ["--resume", str(run), "--set", "optim.lr_g=0.0001", "--set", "train.steps=none",
                           "--set", 'name="a b"', "--nproc", "4", "--quiet"]
    from ganstudio.config_io import parse_overrides  # the child reads back what was meant

    assert parse_overrides([resumed[i + 1] for i, a in enumerate(resumed) if a == "--set"]) == {
        "optim.lr_g": 1e-4, "train.steps": None, "name": "a b"}
    config_file, log = job_launch.job_files(tmp_path / "runs", run)
    assert config_file.parent == log.parent == tmp_path / "runs" / ".jobs" / "tiny-1"  # not in the run folder


def test_train_honours_the_processes_field_and_the_flag_wins(tmp_path, tiny_config):
    config = tmp_path / "c.toml"
    tiny_config.with_changes({"train.processes": 2}).save(config)

    def args(*argv):
        ns = argparse.Namespace(config=config, preset=None, resume=None, overrides=[], steps=None, max_time=None,
                                device=None, seed=None, nproc=None, argv=["train", "--config", str(config), *argv])
        for item in argv:
            if item.startswith("--nproc="):
                ns.nproc = int(item.split("=")[1])
        return ns

    assert _processes(args()) == 2  # no flag: the config's Processes
    assert _processes(args("--nproc=1")) == 1  # the flag, even at 1, wins
    assert _processes(args("--nproc=3")) == 3
    only = args()
    only.overrides = ["train.processes=1"]
    assert _processes(only) == 1


def _fake_job(window, tmp_path):
    """A launch whose child is a sleeper: the close question without starting torch."""
    launch = job_launch.JobLaunch(window.run, tmp_path / "runs" / "job", [sys.executable, "-c",
                                  "import time; time.sleep(60)"], tmp_path / "job.log", 2)
    launch.start()
    return launch


def test_closing_asks_about_a_job_cancel_keeps_the_window_keep_leaves_it_running(qtbot, window, tmp_path,
                                                                                     monkeypatch):
    answers = ["cancel", "keep"]
    monkeypatch.setattr(job_launch, "ask_on_close", lambda parent, folder: answers.pop(0))
    launch = _fake_job(window, tmp_path)
    assert window.run.busy and "starting 2 processes" in window.statusBar().currentMessage()
    window.close()
    assert window.isVisible() and answers == ["keep"]
    window.close()
    assert not window.isVisible() and answers == []
    assert launch.running  # left running: it belongs to its own session
    os.killpg(launch.proc.pid, 9)
    launch.proc.wait(10)


def test_closing_and_stopping_a_job_waits_for_its_exit(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(job_launch, "ask_on_close", lambda parent, folder: "stop")
    launch = _fake_job(window, tmp_path)
    window.close()
    assert window.isVisible()  # painting while the job stops
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert launch.proc.returncode is not None


def test_a_signal_close_leaves_the_job_running_without_asking(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(job_launch, "ask_on_close", lambda parent, folder: pytest.fail("asked on a signal"))
    launch = _fake_job(window, tmp_path)
    window.closing_by_signal = True
    window.close()
    assert not window.isVisible() and launch.running
    os.killpg(launch.proc.pid, 9)
    launch.proc.wait(10)


def test_a_job_that_ends_before_training_shows_its_log(qtbot, window, tmp_path):
    launch = job_launch.JobLaunch(window.run, tmp_path / "runs" / "job", [sys.executable, "-c",
                                  "import sys; print('no such data folder: /x'); sys.exit(2)"], tmp_path / "j.log", 2)
    launch.start()
    qtbot.waitUntil(lambda: window.status.state == "error", timeout=10_000)
    assert not window.run.busy and "no such data folder: /x" in window.log.toPlainText()


def _children(pid: int) -> set[int]:
    """pid's descendants, from /proc (psutil is not installed)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, not yet reaped by its parent


@pytest.mark.slow
@pytest.mark.ddp
def test_the_studio_starts_follows_pauses_and_stops_a_two_process_job(qtbot, window, tiny_config, tmp_path):
    config = tiny_config.with_changes({"train.processes": 2, "train.threads": 1, "train.sample_every": 1000,
                                       "train.checkpoint_every": 1000})
    window.form.set_config(config)
    window.actions["start"].trigger()
    launch = window.run.job
    assert launch is not None and launch.command[-3:] == ["--nproc", "2", "--quiet"]
    qtbot.waitUntil(lambda: window.run.last_row is not None, timeout=120_000)  # rows arrive through the folder
    ranks = _children(launch.proc.pid)
    assert window.run.last_row["world_size"] == 2 and len(ranks) >= 2
    window.actions["pause"].trigger()
    status = launch.folder / "status.json"
    qtbot.waitUntil(lambda: json.loads(status.read_text()).get("state") == "paused", timeout=30_000)
    window.actions["stop"].trigger()
    qtbot.waitUntil(lambda: not launch.running, timeout=60_000)
    assert launch.proc.returncode == 0, job_launch._tail(launch.log_file)
    assert all(_gone(pid) for pid in ranks | {launch.proc.pid})
    assert (launch.folder / "checkpoints" / "last.pt").is_file()
    qtbot.waitUntil(lambda: window.status.state == "stopped", timeout=10_000)
