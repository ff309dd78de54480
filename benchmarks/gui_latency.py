"""GUI responsiveness while the studio trains, and what the window costs in training speed.

    python benchmarks/gui_latency.py [--seconds 60] [--preset dcgan-fashion] [--screenshot FILE]

Each side runs in a fresh process, as a person would run it:
1. headless: ``Trainer.run`` on the preset for ``--seconds`` (the reference speed);
2. the studio: the window built as ``ganstudio`` builds it (``gui.app.build_studio``, a temporary
   settings file), shown, left to load torch and its preview, then training the preset for ``--seconds``
   from the Start action, while a 10 ms QTimer on the GUI thread records how late each tick fires (from
   the first logged row on, so the Trainer's construction is not counted).

Prints the stall figures (targets: p99 <= 16 ms, one frame at 60 Hz; max <= 50 ms), images/s of both
and the ratio window / headless (target >= 0.95). Timings only, never asserts.
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

TICK_MS = 10


def headless(config, root: Path) -> dict:
    from ganstudio.engine import RunDir, Trainer

    trainer = Trainer(config, RunDir(root / "headless"))
    trainer.run()
    return {"images_per_s": steady_rate(trainer.run_dir.read_metrics(), config)}


def in_window(config, root: Path, screenshot: str | None) -> dict:
    os.environ["GANSTUDIO_SETTINGS"] = str(root / "settings.ini")
    from PySide6.QtCore import QEventLoop, QTimer

    from ganstudio.engine import RunDir
    from ganstudio.gui import threads
    from ganstudio.gui.app import build_studio

    app, window = build_studio()
    window.run.runs_root = root / "gui"
    window.show()
    loop = QEventLoop()
    ready = QTimer(interval=20)  # the studio at rest: torch and the preview's tables loaded
    ready.timeout.connect(lambda: threads.torch_loaded() and window.preview.totals() and loop.quit())
    ready.start()
    loop.exec()
    ready.stop()
    window.form.set_config(config)
    app.processEvents()

    import time

    lateness: list[float] = []
    last = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    probe = QTimer()
    probe.setTimerType(probe.timerType().PreciseTimer)
    probe.timeout.connect(tick)
    window.actions["start"].trigger()
    worker = window.run.session.worker
    worker.progressed.connect(loop.quit)  # the Trainer is built and has logged: probe steady state only
    loop.exec()
    worker.progressed.disconnect(loop.quit)
    last[0] = time.perf_counter()
    probe.start(TICK_MS)
    worker.finished.connect(loop.quit)  # the event loop idles as the real app's does: no polling
    loop.exec()
    probe.stop()
    if screenshot:
        window.grab().save(screenshot)
    run_dir = window.run.run_dir
    window.close()
    return {"images_per_s": steady_rate(RunDir(run_dir).read_metrics(), config), "lateness_ms": lateness}


def steady_rate(rows: list[dict], config) -> float:
    """images/s over the logged intervals after the first (which includes start-up)."""
    from ganstudio.families import images_per_step

    rows = [r for r in rows[1:] if r.get("images_per_s")]
    images = sum(r["steps"] * images_per_step(config) for r in rows)
    seconds = sum(r["steps"] * images_per_step(config) / r["images_per_s"] for r in rows)
    return images / seconds if seconds else 0.0


def child(args) -> None:
    """One side of the comparison, in this (fresh) process; prints a JSON line."""
    from ganstudio.config import load_preset

    config = load_preset(args.preset, ["train.device='auto'", f"train.max_time={args.seconds}"])
    with tempfile.TemporaryDirectory() as tmp:
        result = headless(config, Path(tmp)) if args.child == "headless" else \
            in_window(config, Path(tmp), args.screenshot)
    print("RESULT " + json.dumps(result))


def run_child(args, side: str) -> dict:
    command = [sys.executable, __file__, "--child", side, "--seconds", str(args.seconds), "--preset", args.preset]
    if args.screenshot:
        command += ["--screenshot", str(args.screenshot)]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.seconds * 3 + 300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"{side} run failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--preset", default="dcgan-fashion")
    parser.add_argument("--screenshot", help="save the window as a PNG at the end of the run")
    parser.add_argument("--child", choices=["headless", "window"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    reference = run_child(args, "headless")
    gui = run_child(args, "window")
    lateness = gui["lateness_ms"]
    q = statistics.quantiles(lateness, n=100)
    over = sum(late > 16 for late in lateness)
    print(f"preset {args.preset}, {args.seconds:.0f} s each, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"GUI stall (10 ms probe, {len(lateness)} ticks): p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
          f"max {max(lateness):.1f} ms; {over} ticks late by more than 16 ms   (targets: p99 <= 16, max <= 50)")
    print(f"images/s: headless {reference['images_per_s']:.0f}, in the window {gui['images_per_s']:.0f}")
    print(f"ratio window / headless: {gui['images_per_s'] / reference['images_per_s']:.2f}x   (target >= 0.95)")


if __name__ == "__main__":
    main()
