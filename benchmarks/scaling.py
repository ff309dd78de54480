"""DDP scaling: images/s of one run on 1, 2 (and N) processes at the same global batch.

    python benchmarks/scaling.py [--preset dcgan-32] [--steps 120] [--batch 64] [--device auto]

Each measurement is a real ``ganstudio train`` job (``--nproc N`` for several processes: torch's
launcher, gloo on the CPU, NCCL on GPUs) writing a throwaway run folder; images/s is the mean of the
metrics.jsonl rows after the first (which holds start-up and the first, slower steps). Scaling
efficiency is images/s on N processes / (N x images/s on 1).

On the CPU it also compares 2 processes x 1 thread against 1 process x 2 threads (the same cores, used
by DDP or by torch's intra-op threads). With CUDA it runs 1, 2, ..., every GPU of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def images_per_s(preset: str, steps: int, batch: int, device: str, nproc: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        command = [sys.executable, "-m", "ganstudio", "train", "--preset", preset, "--steps", str(steps),
                   "--device", device, "--run-dir", str(run), "--quiet", "--nproc", str(nproc),
                   "--set", f"train.batch_size={batch}", "--set", f"train.threads={threads}",
                   "--set", f"train.log_every={max(1, steps // 6)}", "--set", f"train.sample_every={steps * 10}",
                   "--set", f"train.checkpoint_every={steps * 10}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rates = [r["images_per_s"] for r in rows if "images_per_s" in r][1:]
        return statistics.mean(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dcgan-32")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=64, help="the global batch (the same for every N)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cuda = args.device in ("auto", "cuda") and torch.cuda.is_available()
    counts = range(1, torch.cuda.device_count() + 1) if cuda else (1, 2)
    where = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}" if cuda else f"cpu, {os.cpu_count()} cores"
    print(f"{args.preset}, global batch {args.batch}, {args.steps} steps, {where}")
    print(f"{'processes':>9} {'threads':>7} {'images/s':>10} {'efficiency':>10}")
    rates: dict[int, float] = {}
    for n in counts:
        rates[n] = images_per_s(args.preset, args.steps, args.batch, args.device, n, threads=1)
        print(f"{n:>9} {1:>7} {rates[n]:>10.0f} {rates[n] / (n * rates[1]):>10.2f}")
    if not cuda:
        threaded = images_per_s(args.preset, args.steps, args.batch, args.device, 1, threads=2)
        print(f"{1:>9} {2:>7} {threaded:>10.0f}")
        print(f"2 processes x 1 thread / 1 process x 2 threads: {rates[2] / threaded:.2f}")


if __name__ == "__main__":
    main()
