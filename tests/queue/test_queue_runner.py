"""`ganstudio queue run` as a real process: jobs that finish, fail, get killed; a second runner refused; a
runner killed and restarted finds its job still running; SIGTERM stops the running job and keeps the rest."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganstudio.queue import JobQueue, runner_alive

TINY = ["--set", "data.max_images=128", "--set", "model.z_dim=8", "--set", "model.g_width=8",
        "--set", "model.d_width=8", "--set", "train.batch_size=16", "--set", "train.log_every=1",
        "--set", "train.threads=1", "--device", "cpu"]
LONG = [*TINY, "--steps", "1000000", "--max-time", "60"]  # runs until stopped or killed
DEADLINE = 60.0


class Runner:
    """``python -m ganstudio queue run`` with its output in files (a pipe nobody reads can block it)."""

    def __init__(self, runs: Path, tmp: Path) -> None:
        stamp = time.monotonic_ns()
        self.out = tmp / f"runner-{stamp}.txt"
        with self.out.open("w") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "ganstudio", "queue", "run", "--runs", str(runs)],
                                            stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def finish(self) -> int:
        try:
            return self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the runner still runs {DEADLINE} s later: {self.output()}") from None


@pytest.fixture
def runs(tmp_path):
    """A runs folder; every runner and job child still alive at the end is killed."""
    runners: list[Runner] = []
    root = tmp_path / "runs"
    yield root, lambda: runners.append(Runner(root, tmp_path)) or runners[-1]
    for runner in runners:
        if runner.process.poll() is None:
            runner.process.kill()
            runner.process.wait()
    if (root / "queue.json").exists():
        for job in JobQueue(root).read().jobs:
            if job.pid:
                try:
                    os.kill(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def wait_for(condition, what: str, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while not (found := condition()):
        assert time.monotonic() < end, f"no {what} within {deadline} s"
        time.sleep(0.05)
    return found


def training(queue: JobQueue, job_id: int) -> int:
    """The pid of job ``job_id`` once its child has logged a metrics row (it is training), else 0."""
    job = queue.read().job(job_id)
    metrics = Path(job.run_dir) / "metrics.jsonl" if job.run_dir else None
    return job.pid if job.state == "running" and job.pid and metrics and metrics.exists() else 0


@pytest.mark.slow
def test_a_failed_and_a_killed_job_are_marked_and_the_others_finish(runs):
    root, start = runs
    queue = JobQueue(root)
    queue.add([*TINY, "--steps", "2"], "first")
    queue.add(["--resume", str(root / "no-such-run")], "fails")  # exits 1: nothing to resume
    queue.add(LONG, "killed")
    queue.add([*TINY, "--steps", "2"], "last")
    runner = start()
    os.kill(wait_for(lambda: training(queue, 3), "training job 3"), signal.SIGKILL)
    assert runner.finish() == 1  # a job failed
    jobs = queue.read().jobs
    assert [job.state for job in jobs] == ["finished", "failed", "crashed", "finished"]
    assert jobs[1].exit_code == 1 and any("last.pt does not exist" in line for line in jobs[1].tail)
    assert jobs[2].exit_code == -signal.SIGKILL and "SIGKILL" in jobs[2].message
    assert "killed by SIGKILL" in jobs[2].tail[-1]  # the runner wrote it: the child could not
    assert (Path(jobs[3].run_dir) / "checkpoints" / "last.pt").exists()
    assert Path(jobs[3].log) == root / "queue-logs" / "4.log"
    out = runner.output()
    assert "job 2 (fails): failed" in out and "job 3 (killed): crashed" in out
    assert "queue: 2 finished, 1 failed, 1 crashed" in out
    assert queue.read().runner == {} and not runner_alive(root)


@pytest.mark.slow
def test_one_runner_at_a_time_a_restarted_runner_follows_its_job_and_sigterm_stops_the_job(runs):
    root, start = runs
    queue = JobQueue(root)
    queue.add([*TINY, "--steps", "1000000", "--max-time", "6"], "outlives its runner")
    queue.add(LONG, "stopped")
    queue.add([*TINY, "--steps", "2"], "stays queued")
    first = start()
    child = wait_for(lambda: training(queue, 1), "training job 1")
    assert runner_alive(root) and queue.read().runner["pid"] == first.process.pid

    second = start()
    assert second.finish() == 1
    assert "already working through" in second.output()
    assert queue.read().job(1).state == "running"  # the refused runner touched nothing

    first.process.kill()  # kill -9: the job's child lives on in its own session
    first.process.wait()
    assert not runner_alive(root) and queue.read().job(1).state == "running"
    os.kill(child, 0)  # raises if the child died with its runner

    third = start()
    os.kill(wait_for(lambda: training(queue, 2) and third.process.pid, "training job 2"), signal.SIGTERM)
    assert third.finish() == 128 + signal.SIGTERM
    jobs = queue.read().jobs
    assert [job.state for job in jobs] == ["finished", "stopped", "queued"]
    assert "still running from an earlier runner" in third.output()
    assert (Path(jobs[1].run_dir) / "checkpoints" / "last.pt").exists()  # the stop saved the job
    assert jobs[1].exit_code == 0 and not jobs[1].pid
