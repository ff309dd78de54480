"""torchrun's elastic restart: a rank killed with SIGKILL under --max-restarts 1 restarts the group, which
resumes from the last checkpoint and ends at the configured step count, leaving no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddp_workers import free_port

pytestmark = [pytest.mark.ddp, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()] if tasks.exists() else []


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def _step(run: Path) -> int:
    try:
        return json.loads((run / "status.json").read_text()).get("step", 0)
    except (OSError, ValueError):
        return 0


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)  # polling another process's files: no signal to wait on


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc (Linux)")
def test_kill_one_rank_under_max_restarts_resumes_and_finishes(tmp_path):
    run, steps = tmp_path / "run", 400
    # elastic through a rendezvous endpoint (the two-machine form, on one machine), as the README shows it
    command = [sys.executable, "-m", "ganstudio", "train", "--nproc", "2", "--max-restarts", "1", "--nnodes", "1:2",
               "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-timeout", "6", "--preset", "mlp-gan",
               "--device", "cpu", "--steps", str(steps), "--run-dir", str(run), "--quiet",
               "--set", "train.batch_size=16", "--set", "train.checkpoint_every=20", "--set", "model.g_width=16",
               "--set", "model.d_width=16", "--set", "data.max_images=256", "--set", "train.log_every=10"]
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait(lambda: (run / "checkpoints" / "last.pt").is_file() and _step(run) >= 40, 90, "no checkpoint")
        victim = next(p for p in _children(job.pid) if _rank_of(p) == 1)
        killed_at = _step(run)
        assert killed_at < steps  # killed mid-run, not after the end
        os.kill(victim, signal.SIGKILL)
        output, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output
    assert "run folder:" in output and f"(step {steps}, steps)" in output
    assert _step(run) == steps
    assert output.count("training on 2 processes (gloo, cpu)") == 2  # the first group, and the restarted one
    assert "restarted after a process failed (restart 1 of 1): continuing from step " in output
    assert "Traceback" not in output and "lost contact" not in output  # the launcher restarted it: nothing to say
    assert not _children(job.pid)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc (Linux)")
def test_sigterm_to_the_launcher_stops_every_rank_with_one_good_checkpoint(tmp_path):
    from ganstudio.engine import checkpoint

    run = tmp_path / "run"
    command = [sys.executable, "-m", "ganstudio", "train", "--nproc", "2", "--preset", "mlp-gan", "--device", "cpu",
               "--steps", "100000", "--run-dir", str(run), "--quiet", "--set", "train.batch_size=16",
               "--set", "train.checkpoint_every=20", "--set", "model.g_width=16", "--set", "model.d_width=16",
               "--set", "data.max_images=256"]
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait(lambda: (run / "checkpoints" / "last.pt").is_file(), 90, "no checkpoint")
        ranks = _children(job.pid)
        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in output
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert saved["step"] == _step(run) > 0 and len(saved["state"]["ranks"]) == 2
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert len(ranks) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in ranks)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc (Linux)")
def test_ranks_stop_when_their_launcher_is_killed(tmp_path):
    """kill -9 of the launcher passes no signal on: each rank gets SIGTERM from the kernel (its parent died),
    saves and exits, instead of training on as an orphan."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "ganstudio", "train", "--nproc", "2", "--preset", "mlp-gan", "--device", "cpu",
               "--steps", "100000", "--run-dir", str(run), "--quiet", "--set", "train.batch_size=16",
               "--set", "train.checkpoint_every=20", "--set", "model.g_width=16", "--set", "model.d_width=16",
               "--set", "data.max_images=256"]
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    ranks: list[int] = []
    try:
        _wait(lambda: (run / "checkpoints" / "last.pt").is_file(), 90, "no checkpoint")
        ranks = _children(job.pid)
        assert len(ranks) == 2
        job.kill()  # SIGKILL to the launcher alone, not its process group
        job.wait(10)
        _wait(lambda: not any(Path(f"/proc/{pid}").exists() and b"zombie" not in _status(pid) for pid in ranks),
              60, "ranks still running after their launcher died")
    finally:
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if job.poll() is None:
            job.kill()
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"  # saved on the way out


def _status(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"
