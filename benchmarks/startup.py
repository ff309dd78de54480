"""Start-up time of the studio window and memory growth over a long run in it.

    python benchmarks/startup.py [--steps 3000] [--repeats 3]

1. Seconds from process start to the main window shown (offscreen), against the same for a bare Qt
   window (the floor: Python + Qt alone), median of ``--repeats`` fresh processes. Target <= 1.0 s.
2. RSS growth of the process while the window trains ``--steps`` steps of the default preset with a sample
   grid every 100 steps, extrapolated to MB per 10k steps. Target <= 50 MB per 10k steps. The reference
   is the same run headless (``Trainer.run``) in the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOW_STUDIO = """
import sys, time
from PySide6.QtCore import QTimer, QSettings
from PySide6.QtWidgets import QApplication
from ganstudio.gui.main_window import MainWindow
app = QApplication([])
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.IniFormat))
window.show()
QTimer.singleShot(0, lambda: (print(time.time(), 'torch' in sys.modules), app.quit()))
app.exec()
"""
SHOW_BARE = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
window = QMainWindow(); window.resize(1400, 860); window.show()
QTimer.singleShot(0, lambda: (print(time.time(), 'torch' in sys.modules), app.quit()))
app.exec()
"""


def time_to_window(code: str, settings: Path) -> tuple[float, bool]:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code, str(settings)], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    return float(out[0]) - start, out[1] == "True"


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
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        studio = [time_to_window(SHOW_STUDIO, root / "s.ini") for _ in range(args.repeats)]
        bare = [time_to_window(SHOW_BARE, root / "s.ini") for _ in range(args.repeats)]
        t_studio, t_bare = statistics.median(s for s, _ in studio), statistics.median(s for s, _ in bare)
        print(f"process start -> window shown: studio {t_studio:.2f} s, bare Qt window {t_bare:.2f} s "
              f"(ratio {t_studio / t_bare:.2f}x; target <= 1.0 s); torch imported before showing: "
              f"{any(t for _, t in studio)}")

        from ganstudio.config import load_preset

        config = load_preset("dcgan-fashion", [f"train.steps={args.steps}", "train.sample_every=100",
                                               "train.checkpoint_every=1000"])
        headless = rss_growth_headless(config, root)
        gui = rss_growth_in_window(config, root)
    print(f"RSS growth over {args.steps} steps (sample every 100): window {gui:.1f} MB / 10k steps, "
          f"headless {headless:.1f} MB / 10k steps   (target <= 50)")


if __name__ == "__main__":
    main()
