"""One writer per run folder: a second `ganstudio train` (new run or resume) or studio worker is refused,
naming the holder; a stale lock of a dead process is cleared with a note; another host's lock is honoured;
a new run never goes into a used folder. Real concurrent processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading

import pytest
from processes import TINY, checkpoint_step, logged_steps

from ganstudio.engine.lock import RunLock, RunLockedError

LONG = ["--set", "train.checkpoint_every=100000", "--set", "train.sample_every=100000"]


@pytest.fixture
def short_run(tmp_path, tiny_config):
    """A 2-step run folder with its checkpoint, trained in this process (faster than a CLI start)."""
    from ganstudio.engine import Trainer

    trainer = Trainer(tiny_config.updated("train.steps", 2), tmp_path / "run")
    trainer.run()
    trainer.close()
    return tmp_path / "run"


@pytest.mark.slow
def test_a_second_new_run_in_the_same_folder_is_refused_naming_the_first(train, tmp_path):
    """Nothing lost, a clear line: while one run writes a folder, a second new run there exits 1 naming the
    first one's pid and host; the first goes on and saves; afterwards a new run there is still refused."""
    run = tmp_path / "run"
    first = train(*TINY, *LONG, "--run-dir", str(run))
    first.wait_until(lambda: len(logged_steps(run)) >= 2, "two logged steps")
    second = train(*TINY, "--run-dir", str(run))
    assert second.finish() == 1
    assert f"is being written by pid {first.pid} on host {socket.gethostname()}" in second.stderr()
    first.signal(signal.SIGTERM)
    assert first.finish() == 0, first.stderr()
    steps = logged_steps(run)
    assert steps == list(range(1, len(steps) + 1))  # one writer's rows, in order
    third = train(*TINY, "--run-dir", str(run))
    assert third.finish() == 1 and "already holds a run; continue it with --resume" in third.stderr()


def test_a_new_run_into_a_used_folder_without_checkpoint_is_refused(train, tmp_path):
    """Nothing deleted: a folder holding files but no checkpoint (a run killed early, or anything else) is
    not a place for a new run; the command exits 1 naming what is there and leaves it as it was."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    job = train(*TINY, "--steps", "2", "--run-dir", str(run))
    assert job.finish() == 1
    assert "is not empty (notes.txt)" in job.stderr() and "choose another --run-dir" in job.stderr()
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_two_resumes_at_once_one_is_refused(train, short_run):
    """Nothing mixed: of two `train --resume R` at once the second exits 1 naming the first; metrics.jsonl
    then holds one row per step, in order."""
    run = short_run
    first = train("--resume", str(run), "--steps", "100000", "--quiet")
    first.wait_until(lambda: len(logged_steps(run)) >= 4, "the resumed run to log")
    second = train("--resume", str(run), "--steps", "100000", "--quiet")
    assert second.finish() == 1
    assert f"is being written by pid {first.pid}" in second.stderr() and "Traceback" not in second.stderr()
    first.signal(signal.SIGTERM)
    assert first.finish() == 0, first.stderr()
    steps = logged_steps(run)
    assert steps == list(range(1, len(steps) + 1))
    assert checkpoint_step(run / "checkpoints" / "last.pt") == steps[-1]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_lock_of_a_dead_process_is_cleared_with_a_note(train, short_run):
    """No hang, a clear line: a lock left by a killed process of this host (its flock is gone) does not
    block a resume; the note names the dead holder, and the lock is gone afterwards."""
    run = short_run
    pid = _dead_pid()
    holder = {"pid": pid, "host": socket.gethostname(), "started": "2024-01-01 00:00:00", "command": "train"}
    (run / "run.lock").write_text(json.dumps(holder))
    job = train("--resume", str(run), "--steps", "3", "--quiet")
    assert job.finish() == 0, job.stderr()
    assert f"note: cleared a stale lock on {run}: pid {pid} on host {socket.gethostname()}" in job.stderr()
    assert checkpoint_step(run / "checkpoints" / "last.pt") == 3 and not (run / "run.lock").exists()


def test_a_lock_from_another_host_is_honoured_and_says_how_to_clear_it(train, short_run):
    """Nothing mixed, a clear line: a lock naming another host (a shared file system) is not second-guessed;
    the resume exits 1 naming that holder and the file to delete if it is gone."""
    run = short_run
    holder = {"pid": 4242, "host": "elsewhere.example", "started": "2024-01-01 00:00:00", "command": "train"}
    (run / "run.lock").write_text(json.dumps(holder))
    job = train("--resume", str(run), "--steps", "3", "--quiet")
    assert job.finish() == 1
    err = job.stderr()
    assert "locked by pid 4242 on host elsewhere.example" in err and f"delete {run / 'run.lock'}" in err
    assert checkpoint_step(run / "checkpoints" / "last.pt") == 2 and (run / "run.lock").exists()


def test_the_lock_nests_in_one_thread_and_refuses_another(tmp_path):
    """One writer: the CLI's take and the loop's take in one thread nest; another thread is refused until
    the last release, which removes the lock file."""
    outer = RunLock(tmp_path / "run").acquire()
    inner = RunLock(tmp_path / "run").acquire()
    errors = []

    def other() -> None:
        try:
            RunLock(tmp_path / "run").acquire()
        except RunLockedError as err:
            errors.append(str(err))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert errors and "is being written by pid" in errors[0]
    inner.release()
    assert (tmp_path / "run" / "run.lock").exists()
    outer.release()
    assert not (tmp_path / "run" / "run.lock").exists()


@pytest.mark.slow
def test_the_studio_worker_is_refused_while_the_cli_writes(qtbot, train, short_run):
    """A clear message, nothing mixed: the studio continuing a run that `ganstudio train` is writing reports
    the holder on its failed signal and never starts training."""
    from ganstudio.engine import Control
    from ganstudio.gui.worker import TrainWorker

    run = short_run
    cli = train("--resume", str(run), "--steps", "100000", "--quiet")
    cli.wait_until(lambda: len(logged_steps(run)) >= 4, "the resumed run to log")
    worker = TrainWorker(Control(), run, None)
    messages, started = [], []
    worker.failed.connect(messages.append)
    worker.started_run.connect(started.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.run()
    assert len(messages) == 1 and f"is being written by pid {cli.pid}" in messages[0], messages
    assert "Traceback" not in messages[0] and not started
    cli.signal(signal.SIGTERM)
    assert cli.finish() == 0
