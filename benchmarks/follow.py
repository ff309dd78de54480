"""Following a headless run from the studio: how soon a row or a grid is drawn, and what it costs the GUI.

    python benchmarks/follow.py [--seconds 20] [--workload preset|stress] [--sample-every N]

A real headless ``ganstudio train`` writes a run folder in its own process. ``--workload preset`` (the
default) is what a person follows: the default preset at full speed, as benchmarks/gui_latency.py trains it in
the window, logging every 10 steps and writing a grid every ``--sample-every`` (default 100) steps.
``--workload stress`` is a tiny DCGAN logging every step (about 100 rows a second here) and writing a grid
every ``--sample-every`` (default 20) steps: far more than any real run sends. The studio window (built
as ``ganstudio`` builds it, with a temporary settings file) first sits idle for ``--seconds`` while that run
trains (the reference: the same machine, the same load), then opens the run, which follows it, for
``--seconds``. A 10 ms QTimer on the GUI
thread records how late each tick fires in both phases.

Latency: a row is "written" at metrics.jsonl's mtime when the follower reads it and "drawn" when the plots'
redraw timer has passed it to the curves (setData); a grid is written at its PNG's mtime and drawn when the
gallery has shown it. Targets for the stall: p99 <= 16 ms, max <= 50 ms. Timings only, never asserts.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK_MS = 10
TINY = ["--set", "data.max_images=256", "--set", "model.z_dim=8", "--set", "model.g_width=8",
        "--set", "model.d_width=8", "--set", "train.batch_size=16", "--set", "train.device='cpu'",
        "--set", "train.log_every=1", "--set", "train.threads=1", "--quiet"]


class Heartbeat:
    """A 10 ms precise timer; ``lateness`` in ms per tick."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.lateness: list[float] = []
        self.last = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(self.timer.timerType().PreciseTimer)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness.append(max(0.0, (now - self.last) * 1000 - TICK_MS))
        self.last = now

    def run(self, app, seconds: float) -> list[float]:
        self.lateness, self.last = [], time.perf_counter()
        self.timer.start(TICK_MS)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)  # the real app idles in its event loop; this is as close without exiting it
        self.timer.stop()
        return self.lateness


def wait_for(app, condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            sys.exit(f"no {what} within {seconds} s")
        app.processEvents()
        time.sleep(0.01)


def summary(name: str, values: list[float]) -> str:
    if len(values) < 2:
        return f"{name}: {len(values)} samples"
    return (f"{name} ({len(values)}): median {statistics.median(values):.1f} ms, p99 {p99(values):.1f} ms, "
            f"max {max(values):.1f} ms")


def p99(values: list[float]) -> float:
    """Nearest rank: a value that occurred, never above the max."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workload", choices=["preset", "stress"], default="preset")
    parser.add_argument("--sample-every", type=int, help="steps between grids (default: 100, or 20 for stress)")
    args = parser.parse_args()
    if args.sample_every is None:
        args.sample_every = 20 if args.workload == "stress" else 100
    workload = TINY if args.workload == "stress" else ["--preset", "dcgan-fashion", "--set", "train.log_every=10",
                                                       "--quiet"]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["GANSTUDIO_SETTINGS"] = str(root / "settings.ini")
        run = root / "run"
        with (root / "err.txt").open("w") as err:
            child = subprocess.Popen([sys.executable, "-m", "ganstudio", "train", "--run-dir", str(run),
                                      "--max-time", str(args.seconds * 3 + 60), *workload,
                                      "--set", f"train.sample_every={args.sample_every}"],
                                     stdout=subprocess.DEVNULL, stderr=err, cwd=root)
        try:
            measure(args, run, child)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(30)


def measure(args, run: Path, child) -> None:
    from ganstudio.engine.status import read_status
    from ganstudio.gui import threads
    from ganstudio.gui.app import build_studio

    app, window = build_studio()
    window.show()
    wait_for(app, lambda: threads.torch_loaded() and window.preview.totals(), 120, "studio at rest")
    wait_for(app, lambda: (read_status(run)[0] or None) is not None and read_status(run)[0].state == "running",
             120, "running headless run")
    idle = Heartbeat().run(app, args.seconds)  # reference: the window idle while the same run trains

    window.run.open_run(run)
    following = window.run.following
    if following is None:
        sys.exit("the window did not follow the run")
    rows_written: list[float] = []  # mtimes of metrics.jsonl at reads not yet drawn
    row_latency, grid_latency = [], []

    def rows_read(_rows) -> None:
        rows_written.append((run / "metrics.jsonl").stat().st_mtime)

    def drawn() -> None:
        now = time.time()
        row_latency.extend((now - written) * 1000 for written in rows_written)
        rows_written.clear()

    def grid_shown(samples) -> None:
        grid_latency.append((time.time() - samples.path.stat().st_mtime) * 1000)

    following.source.progressed.connect(rows_read)  # connected after the controller's slot: called after it
    window.plots._timer.timeout.connect(drawn)      # after the plots' own redraw slot
    following.source.sampled.connect(grid_shown)    # after the gallery has shown it
    steps0 = window.plots.point_count()
    busy = Heartbeat().run(app, args.seconds)
    rows = window.plots.point_count() - steps0
    window.run.stop()  # through the command file
    wait_for(app, lambda: child.poll() is not None, 60, "the headless run to stop")
    state = window.status.state
    window.close()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"workload {args.workload}; {args.seconds:.0f} s idle then {args.seconds:.0f} s following; {rows} rows "
          f"({rows / args.seconds:.0f}/s) and {len(grid_latency)} grids arrived; window state after stop: {state}")
    print("follow latency, written -> drawn:")
    print("  " + summary("metrics rows", row_latency))
    print("  " + summary("sample grids", grid_latency))
    print("GUI stall (10 ms probe):   (targets: p99 <= 16 ms, max <= 50 ms)")
    print("  " + summary("idle, same load (reference)", idle))
    print("  " + summary("following", busy))
    print(f"ratio following / idle: p99 {p99(busy) / max(p99(idle), 0.1):.2f}x, "
          f"max {max(busy) / max(max(idle), 0.1):.2f}x")


if __name__ == "__main__":
    main()
