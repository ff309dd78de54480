"""Helpers of the fault-injection suite: `ganstudio train` as a real subprocess, and reading what it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "data.max_images=256", "--set", "model.z_dim=8", "--set", "model.g_width=8",
        "--set", "model.d_width=8", "--set", "train.batch_size=16", "--set", "train.device='cpu'",
        "--set", "train.log_every=1", "--set", "train.threads=1", "--quiet"]
DEADLINE = 60.0  # seconds for anything a healthy process does in well under five
class Train:
    """``python -m ganstudio train ARGS`` with stdout and stderr in files (a pipe nobody reads can block it)."""

    def __init__(self, tmp: Path, *args: str, code: str | None = None) -> None:
        stamp = time.monotonic_ns()
        self.out, self.err = tmp / f"out-{stamp}.txt", tmp / f"err-{stamp}.txt"
        command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "ganstudio", "train", *args]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, cwd=tmp)
        self.pid = self.process.pid

    def wait_until(self, condition, what: str, deadline: float = DEADLINE, interval: float = 0.01) -> None:
        end = time.monotonic() + deadline
        while not condition():
            assert self.process.poll() is None, f"exited ({self.process.returncode}) before {what}: {self.stderr()}"
            assert time.monotonic() < end, f"no {what} within {deadline} s: {self.stderr()}"
            time.sleep(interval)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def finish(self, deadline: float = DEADLINE) -> int:
        try:
            return self.process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {deadline} s later (a hang): {self.stderr()}") from None

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def logged_steps(run: Path) -> list[int]:
    """The steps in run/metrics.jsonl (a torn last line is skipped)."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return steps


def checkpoint_step(path: Path) -> int:
    from ganstudio.engine import checkpoint

    return int(checkpoint.load(path)["step"])


def tensors(value, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a checkpoint's nested dicts and lists, by its path."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    found = {}
    for key, item in items:
        found.update(tensors(item, f"{prefix}/{key}"))
    return found
