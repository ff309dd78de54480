"""Start-up time of the studio as a person starts it, and memory growth over a long run in its window.

    python benchmarks/startup.py [--repeats 5] [--steps 3000]

1. Seconds from process start to the main window's first paint event, for the real command (the
   installed ``ganstudio`` entry point, else ``python -m ganstudio``) with a temporary settings file:
   without saved settings (a first start) and with them (as after any earlier use: the last config,
   window geometry and dock layout), beside a bare Qt main window (the floor: Python + Qt alone).
   ``GANSTUDIO_REPORT_FIRST_PAINT`` (see ``ganstudio/gui/app.py``) makes the studio write when it first
   painted, when torch and the architecture preview had loaded, and the GUI thread's longest stall
   meanwhile (a 10 ms timer's lateness); then it closes. Medians of ``--repeats`` fresh processes.
   Target: <= 1.0 s warm with saved settings; stalls while torch loads <= 0.35 s.
2. RSS growth of the process while the window trains ``--steps`` steps of the default preset with a sample
   grid every 100 steps, extrapolated to MB per 10k steps (``--steps 0`` skips it). Target <= 50 MB per
   10k steps. The reference is the same run headless (``Trainer.run``) in the same process.

Timings only: it prints figures and ratios and never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BARE = """
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not hasattr(self, "t"):
            self.t = time.time()
            QTimer.singleShot(0, app.quit)
        return False
app = QApplication([])
window = QMainWindow(); window.resize(1400, 860)
spy = FirstPaint(); window.installEventFilter(spy)
window.show(); app.exec()
open(sys.argv[1], "w").write(json.dumps({"first_paint": spy.t}))
"""


def studio_command() -> list[str]:
    script = Path(sys.executable).with_name("ganstudio")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ganstudio"]


def timed_start(command: list[str], settings: Path, report: Path) -> dict:
    """Start ``command``; its figures, with times in seconds after the process was started."""
    report.unlink(missing_ok=True)
    env = {**os.environ, "GANSTUDIO_SETTINGS": str(settings), "GANSTUDIO_REPORT_FIRST_PAINT": str(report)}
    start = time.time()
    subprocess.run(command, env=env, check=True, timeout=120, capture_output=True)
    figures = json.loads(report.read_text())
    for key in ("first_paint", "torch", "preview"):
        if key in figures:
            figures[key] -= start
    return figures


def startup(repeats: int, root: Path) -> None:
    studio, report = studio_command(), root / "report.json"
    saved = root / "saved.ini"
    timed_start(studio, saved, report)  # warms the disk cache and writes the settings a later start finds
    runs = {"bare Qt window": [], "studio, first start": [], "studio, saved settings": []}
    for i in range(repeats):  # interleaved, so a change in the machine's load hits all three alike
        runs["bare Qt window"].append(timed_start([sys.executable, "-c", BARE, str(report)], saved, report))
        fresh = root / f"fresh{i}.ini"
        runs["studio, first start"].append(timed_start(studio, fresh, report))
        runs["studio, saved settings"].append(timed_start(studio, saved, report))
    floor = statistics.median(r["first_paint"] for r in runs["bare Qt window"])
    print(f"{' '.join(Path(c).name for c in studio)}: median of {repeats}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("process start -> first paint of the main window (target <= 1.0 s warm):")
    for name, figures in runs.items():
        paint = statistics.median(r["first_paint"] for r in figures)
        print(f"  {name:24s} {paint:.2f} s   ({paint / floor:.2f}x the bare window)")
    for name in ("studio, first start", "studio, saved settings"):
        figures = runs[name]
        print(f"{name}: torch loaded at {statistics.median(r['torch'] for r in figures):.2f} s, architecture "
              f"preview at {statistics.median(r['preview'] for r in figures):.2f} s; torch imported before the "
              f"first paint: {any(r['torch_at_paint'] for r in figures)}")
        stalls = [r["max_stall_ms"] for r in figures]
        print(f"  longest GUI-thread stall from first paint until both loaded: median {statistics.median(stalls):.0f} "
              f"ms, worst {max(stalls):.0f} ms (target <= 350); p99 of 10 ms ticks "
              f"{statistics.median(r['p99_stall_ms'] for r in figures):.0f} ms")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_growth_in_window(config, root: Path) -> float:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ganstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(settings=QSettings(str(root / "s.ini"), QSettings.IniFormat), runs_root=root / "gui")
    window.show()
    window.form.set_config(config)
    window.run.start()
    return _growth(lambda: window.run.last_row["step"] if window.run.last_row else 0,
                   lambda: window.run.busy, app.processEvents, config.train.steps, window.close)


def rss_growth_headless(config, root: Path) -> float:
    import threading

    from ganstudio.engine import RunDir, Trainer

    trainer = Trainer(config, RunDir(root / "headless"))
    thread = threading.Thread(target=trainer.run)
    thread.start()
    return _growth(lambda: trainer.global_step, thread.is_alive, lambda: None, config.train.steps, thread.join)


def _growth(step, alive, pump, steps: int, end) -> float:
    """MB per 10k steps between 10% of the run (warm) and its end."""
    warm_at, first = steps // 10, None
    while alive():
        pump()
        if first is None and step() >= warm_at:
            first = (step(), rss_mb())
        time.sleep(0.01)
    last = (step(), rss_mb())
    end()
    return (last[1] - first[1]) / (last[0] - first[0]) * 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000, help="steps of the memory run (0: skip it)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    try:
        startup(args.repeats, root)
        if args.steps:
            memory(args.steps, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def memory(steps: int, root: Path) -> None:
    from ganstudio.config import load_preset

    config = load_preset("dcgan-fashion", [f"train.steps={steps}", "train.sample_every=100",
                                           "train.checkpoint_every=1000"])
    headless = rss_growth_headless(config, root)
    gui = rss_growth_in_window(config, root)
    print(f"RSS growth over {steps} steps (sample every 100): window {gui:.1f} MB / 10k steps, "
          f"headless {headless:.1f} MB / 10k steps   (target <= 50)")


if __name__ == "__main__":
    main()
