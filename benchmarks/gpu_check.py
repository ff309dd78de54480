"""The GPU check, one command: every preset trained a few hundred steps, in each precision, compiled and not.

    python benchmarks/gpu_check.py [--device cuda] [--steps 300] [--presets a,b] [--precisions fp32,bf16,fp16]
                                   [--compile both|on|off|graphs] [--markdown FILE]

For each preset × precision × compile (off, on, and on with CUDA graphs for the presets up to 64 px) it
runs ``Trainer.run`` (the loop the CLI and the studio drive) and reports images/s (the median of the
logged intervals after the first, so start-up and compilation are left out), peak device memory, and
whether every logged figure stayed finite. Per preset it also checks that a run stopped halfway and
resumed from its checkpoint ends bit-identical to one trained straight through (fp32, eager,
deterministic algorithms). A pytorch/examples-style DCGAN loop on the same device
(``throughput.bare_loop``) is the reference images/s. Presets that train on a folder get a generated
folder of random colour images. A failing row is reported as an error in the table, and the check goes
on: the table is what to fix. ``--markdown FILE`` writes the table for the README.

Runs on the CPU too (``--device cpu --steps 4``): that is how its own logic is tested without a GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, for the resume check

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ganstudio.config import load_preset, preset_names  # noqa: E402
from ganstudio.engine import StepStats, Trainer  # noqa: E402
from ganstudio.families import images_per_step  # noqa: E402

CORE = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")


def preset_config(name: str, args, folder: Path, **train):
    """The preset on this device for a short check; a folder preset reads the generated folder."""
    changes = {"train.device": args.device, "train.seed": 0, "train.eval_every": 0, "train.ema": 0.0,
               "train.sample_every": 10**7, "train.checkpoint_every": 10**7, "train.max_time": None,
               **{f"train.{k}": v for k, v in train.items()}}
    config = load_preset(name)
    if config.data.source == "folder":
        changes["data.path"] = str(folder)
    if args.tiny:  # the script's own smoke test: the smallest networks that still build
        changes.update({"model.g_width": 8, "model.d_width": 8, "model.z_dim": 8, "train.batch_size": 8,
                        "data.max_images": 64, "data.holdout": min(config.data.holdout, 16),
                        "eval.num_samples": 16})
    return config.with_changes(changes, source="gpu_check")


def make_folder(root: Path, n: int, size: int) -> Path:
    """n random RGB PNGs of ``size`` px (what a folder preset trains on here: speed, not quality)."""
    from PIL import Image

    folder = root / f"images-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def train_row(config, steps: int) -> dict:
    """Images/s, peak memory and finiteness of ``steps`` steps of ``config``."""
    device = torch.device(config.train.device) if config.train.device != "auto" else None
    cuda = torch.cuda.is_available() and (device is None or device.type == "cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    rows: list[StepStats] = []
    start = time.perf_counter()
    trainer = Trainer(config.with_changes({"train.steps": steps, "train.log_every": max(1, steps // 10)}))
    try:
        trainer.run(callbacks=[lambda e: rows.append(e) if isinstance(e, StepStats) else None])
    finally:
        trainer.close()
    seconds = time.perf_counter() - start
    steady = [r.images_per_s for r in rows[1:] if r.images_per_s > 0] or [r.images_per_s for r in rows]
    finite = all(math.isfinite(v) for r in rows for v in (getattr(r, k) for k in CORE) if v == v)
    return {"img/s": statistics.median(steady) if steady else float("nan"), "seconds": seconds,
            "peak": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "finite": finite,
            "images/step": images_per_step(config)}


def resumes_exactly(config, steps: int, root: Path) -> bool:
    """Train ``steps`` straight; train half, resume from the checkpoint, finish: every G and D tensor equal."""
    half = max(1, steps // 2)
    config = config.with_changes({"train.log_every": half, "train.checkpoint_every": half})
    torch.use_deterministic_algorithms(True)
    try:
        straight = Trainer(config.with_changes({"train.steps": 2 * half}), root / "straight")
        straight.run()
        first = Trainer(config.with_changes({"train.steps": half}), root / "split")
        first.run()
        first.close()
        resumed = Trainer.resume(root / "split", {"train.steps": 2 * half}, source="gpu_check")
        resumed.run()
        a, b = straight.state_dict(), resumed.state_dict()
        straight.close()
        resumed.close()
        return all(torch.equal(a[net][k], b[net][k]) for net in ("g", "d") for k in a[net])
    finally:
        torch.use_deterministic_algorithms(False)


def reference(args) -> float:
    """images/s of the pytorch/examples-style loop (throughput.bare_loop) on the default preset's model."""
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import bare_loop

    from ganstudio.data import load_images

    config = preset_config("dcgan-fashion", args, Path("."))
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    return bare_loop(config, load_images(config.data).images, device, max(args.steps, 5))


def fmt(row: dict) -> list[str]:
    if "error" in row:
        return [row["name"], row["precision"], row["compile"], "error", "", "", row["error"][:90]]
    peak = f"{row['peak']:.2f}" if row["peak"] is not None else "—"
    resume = {True: "exact", False: "DIFFERS", None: ""}[row.get("resume")]
    return [row["name"], row["precision"], row["compile"], f"{row['img/s']:,.0f}", peak,
            "yes" if row["finite"] else "NO", resume]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, mps, cpu or auto")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--presets", help="comma-separated (default: every preset)")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--compile", default="both", choices=["both", "on", "off", "graphs"],
                        help="both = off, on and (CUDA, ≤ 64 px) on with CUDA graphs")
    parser.add_argument("--markdown", type=Path, help="also write the table here, as Markdown")
    parser.add_argument("--tiny", action="store_true", help="tiny networks: a smoke test of this script")
    args = parser.parse_args(argv)

    names = args.presets.split(",") if args.presets else preset_names()
    # "graphs": compiled with CUDA graphs (train.cuda_graphs), for the small models (≤ 64 px) whose steps
    # are launch-bound on a fast GPU; a CUDA device only (elsewhere it is plain compile)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    compiles = {"both": ["off", "on", "graphs"], "on": ["on", "graphs"], "off": ["off"],
                "graphs": ["graphs"]}[args.compile]
    compiles = [c for c in compiles if c != "graphs" or cuda]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders: dict[int, Path] = {}
        for name in names:
            size = load_preset(name).data.image_size
            folder = folders.get(size) or folders.setdefault(size, make_folder(root, 64 if args.tiny else 512, size))
            for precision in args.precisions.split(","):
                for compiled in compiles:
                    if compiled == "graphs" and size > 64:
                        continue
                    row = {"name": name, "precision": precision, "compile": compiled}
                    try:
                        config = preset_config(name, args, folder, precision=precision, compile=compiled != "off",
                                               cuda_graphs=compiled == "graphs")
                        row.update(train_row(config, args.steps))
                        if precision == "fp32" and compiled == "off":
                            row["resume"] = resumes_exactly(config, min(args.steps, 40), root / name)
                    except Exception as err:  # noqa: BLE001 - a failing row is a finding, not the end of the check
                        row["error"] = f"{type(err).__name__}: {err}".replace("\n", " ")
                    results.append(row)
                    print("  ".join(fmt(row)), flush=True)
        ref = reference(args)

    header = ["preset", "precision", "compile", "img/s", "peak GiB", "finite", "resume"]
    name = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    lines = [f"GPU check on {name}, torch {torch.__version__}, {args.steps} steps per row; reference "
             f"(pytorch/examples-style DCGAN loop, same device): {ref:,.0f} img/s", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(row)) + " |" for row in results]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return results


if __name__ == "__main__":
    main()
