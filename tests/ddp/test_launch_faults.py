"""``ganstudio train --nproc``'s faults (issue 15): more processes than GPUs, a port in use, machines that never
arrive, a rank that dies without --max-restarts. Each: one clear line, no hang, no process left, and the run
folder untouched or resumable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ddp_workers import free_port
from ganstudio.config import ConfigError
from ganstudio.train_launch import check_devices, failure_line

pytestmark = pytest.mark.ddp
TINY = ["--preset", "mlp-gan", "--device", "cpu", "--quiet", "--set", "train.batch_size=16", "--set",
        "model.g_width=16", "--set", "model.d_width=16", "--set", "data.max_images=256"]


def _train(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganstudio", "train", *TINY, *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _said(stderr: str) -> list[str]:
    """What the command said, less the training's own warnings."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning")]


def _ours(run: Path) -> list[int]:
    """Processes (other than this one) whose command line names ``run``: none may be left."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if str(run).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_a_port_in_use_is_refused_at_once(tmp_path):
    run = tmp_path / "run"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _train(tmp_path, "--nproc", "2", "--rdzv-endpoint", f"127.0.0.1:{port}", "--run-dir", str(run))
    assert done.returncode == 2
    assert _said(done.stderr) == [f"ganstudio train: error: port {port} on 127.0.0.1 is already in use (another "
                                  f"job's rendezvous, or another program): pick a free one, e.g. --rdzv-endpoint "
                                  f"127.0.0.1:{port + 1}"]
    assert not run.exists()


def test_machines_that_never_arrive_time_out_with_one_line(tmp_path):
    run = tmp_path / "run"
    started = time.monotonic()
    done = _train(tmp_path, "--nproc", "2", "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
                  "--rdzv-timeout", "2", "--run-dir", str(run))
    assert done.returncode == 1
    said = _said(done.stderr)
    assert len(said) == 1 and said[0].startswith("ganstudio train: not every machine (2) joined at 127.0.0.1:")
    assert "within 2 s" in said[0] and "nothing was trained" in said[0]
    assert time.monotonic() - started < 40
    assert not run.exists() and not _ours(run)


def test_launcher_options_start_the_launcher_and_nonsense_is_refused(tmp_path):
    from argparse import Namespace

    from ganstudio.train_launch import wants_group

    assert not wants_group(Namespace(nproc=1))
    assert wants_group(Namespace(nproc=0)) and wants_group(Namespace(nproc=1, max_restarts=1))
    done = _train(tmp_path, "--nproc", "0", "--run-dir", str(tmp_path / "r"), timeout=30)
    assert done.returncode == 2 and "--nproc and --rdzv-timeout must be at least 1" in done.stderr
    assert not (tmp_path / "r").exists()


def test_several_machines_need_a_shared_run_folder_and_an_endpoint(tmp_path):
    done = _train(tmp_path, "--nproc", "2", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:1")
    assert done.returncode == 2 and "needs --run-dir" in done.stderr
    done = _train(tmp_path, "--nproc", "2", "--nnodes", "2", "--run-dir", str(tmp_path / "r"))
    assert done.returncode == 2 and "--nnodes needs --rdzv-endpoint" in done.stderr


def test_more_processes_than_gpus_is_refused(monkeypatch, tmp_path):
    done = _train(tmp_path, "--nproc", "2", "--device", "cuda", "--run-dir", str(tmp_path / "run"), timeout=30)
    if not torch.cuda.is_available():
        assert done.returncode == 2
        assert _said(done.stderr) == ["ganstudio train: error: train.device = 'cuda' but this machine has no CUDA "
                                      "device; set train.device = 'cpu' (or 'auto') to train the processes on the CPU"]
    with pytest.raises(ConfigError, match=r"^train.sync_batch_norm = true needs CUDA GPUs, but these 2 processes "
                                          r"train on the cpu"):
        check_devices("cpu", 2, sync_batch_norm=True)  # refused before any process starts
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_devices("auto", 2, sync_batch_norm=True)  # one per GPU: fine
    with pytest.raises(ConfigError, match=r"^3 processes on this machine but 2 CUDA device\(s\): start one process "
                                          r"per GPU \(--nproc 2\), or set train.device = 'cpu'$"):
        check_devices("cuda", 3)
    with pytest.raises(ConfigError, match="several processes train on cuda or cpu only"):
        check_devices("mps", 2)


def test_the_line_names_the_rank_that_died_not_the_ones_the_agent_stopped(tmp_path):
    run = tmp_path / "run"

    def failure(pid, exitcode, timestamp):
        return SimpleNamespace(pid=pid, exitcode=exitcode, timestamp=timestamp)

    # rank 0 stopped by the agent's SIGTERM, rank 1 killed: rank 1 is the one
    line = failure_line({0: failure(10, -15, 5), 1: failure(11, -9, 5)}, run, 2, 0)
    assert line == ("rank 1 (pid 11) was killed by SIGKILL; the other processes were stopped; no checkpoint had "
                    "been written yet")
    assert failure_line({1: failure(11, 1, 5)}, run, 2, 0) is None  # an error of its own: the rank said it


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc (Linux)")
def test_a_rank_killed_without_restarts_stops_the_group_with_one_line(tmp_path):
    from ganstudio.engine import checkpoint
    from test_elastic import _children, _rank_of, _step, _wait

    run = tmp_path / "run"
    command = [sys.executable, "-m", "ganstudio", "train", "--nproc", "2", "--steps", "100000", "--run-dir", str(run),
               *TINY, "--set", "train.checkpoint_every=20"]
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait(lambda: (run / "checkpoints" / "last.pt").is_file() and _step(run) >= 40, 90, "no checkpoint")
        victim = next(p for p in _children(job.pid) if _rank_of(p) == 1)
        os.kill(victim, signal.SIGKILL)
        _out, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 1
    said = [line for line in _said(err) if line != "training on 2 processes (gloo, cpu)"]
    saved = checkpoint.load(run / "checkpoints" / "last.pt")  # intact, and loads with weights_only
    assert said == [f"ganstudio train: rank 1 (pid {victim}) was killed by SIGKILL; the other processes were "
                    f"stopped. {run}/checkpoints/last.pt (step {saved['step']}) is intact: continue with "
                    f"`ganstudio train --resume {run} --nproc 2` (--max-restarts 1 restarts the group by itself)"]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["message"].startswith("lost contact with another of the 2 ")
    assert not _ours(run)


def test_a_lost_peer_is_explained_and_said_once(tmp_path, monkeypatch, capsys):
    from ganstudio.engine import RunDir
    from ganstudio.engine.errors import TrainingError, explain, lost_contact
    from ganstudio.train_command import _rank_failed

    gloo = RuntimeError("[gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:9650: Connection reset by peer")
    trainer = SimpleNamespace(group=SimpleNamespace(world_size=2), global_step=7, run_dir=RunDir(tmp_path / "run"))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert explain(gloo, trainer) == (
        "lost contact with another of the 2 processes at step 7 (it died, was killed, or its machine went away), so "
        f"this one stops too; no checkpoint had been written yet: continue with `ganstudio train --resume "
        f"{tmp_path / 'run'} --nproc 2`")
    assert explain(gloo, SimpleNamespace(group=None)).startswith("RuntimeError: ")  # alone: nobody to lose
    wrapped = TrainingError("lost contact ...")
    wrapped.__cause__ = gloo
    assert lost_contact(wrapped) and not lost_contact(RuntimeError("shape mismatch"))
    assert not lost_contact(RuntimeError("Read error: image 7 is truncated"))  # a rank's own: it must say it

    def said(rank: int, local: int, launched: bool, err: Exception) -> str:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(local))
        monkeypatch.setenv("GANSTUDIO_LAUNCHED", "1" if launched else "0")
        _rank_failed(err)
        return capsys.readouterr().err

    assert said(0, 0, False, wrapped) == "ganstudio train: error: lost contact ...\n"  # under a bare torchrun
    assert said(0, 0, True, wrapped) == ""  # our launcher names the rank that died
    assert said(1, 1, False, wrapped) == ""
    assert said(1, 1, True, ConfigError("data.path is missing")) == ""  # rank 0 of this machine says it
    assert said(4, 0, True, ConfigError("data.path is missing")) == "ganstudio train: rank 4: error: data.path is " \
                                                                     "missing\n"  # the first of another machine
    assert said(1, 1, True, ValueError("its own")) == "ganstudio train: rank 1: error: its own\n"
