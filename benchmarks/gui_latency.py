"""GUI responsiveness while training, and what the window costs in training speed.

    python benchmarks/gui_latency.py [--seconds 60] [--preset dcgan-fashion]

1. Headless: ``Trainer.run`` for ``--seconds`` on the preset (the reference).
2. The studio window (offscreen) trains the same preset for ``--seconds`` while a 10 ms QTimer probe
   records how late each tick fires: the GUI event loop's stall (p50, p99, max).

Prints the stall figures (targets: p99 <= 16 ms, one frame at 60 Hz; max <= 50 ms) and images/s of both,
with the ratio GUI / headless (target >= 0.95).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def headless(config, seconds: float, root: Path) -> float:
    from ganstudio.engine import RunDir, Trainer

    trainer = Trainer(config.updated("train.max_time", seconds), RunDir(root / "headless"))
    trainer.run()
    rows = trainer.run_dir.read_metrics()
    return _steady_rate(rows, config.train.batch_size)


def in_window(config, seconds: float, root: Path, screenshot: Path | None = None) -> tuple[float, list[float]]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ganstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(root / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, runs_root=root / "gui")
    window.show()
    window.form.set_config(config.updated("train.max_time", seconds))
    app.processEvents()

    lateness: list[float] = []
    clock, interval = QElapsedTimer(), 10
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        lateness.append(max(0.0, (now - last[0]) / 1e6 - interval))
        last[0] = now

    probe = QTimer()
    probe.setTimerType(probe.timerType().PreciseTimer)
    probe.timeout.connect(tick)
    window.run.start()
    worker = window.run.session.worker
    loop = QEventLoop()
    worker.progressed.connect(loop.quit)  # the Trainer is built and has logged: probe steady state only
    loop.exec()
    worker.progressed.disconnect(loop.quit)
    last[0] = clock.nsecsElapsed()
    probe.start(interval)
    worker.finished.connect(loop.quit)  # the event loop idles as the real app's does: no polling
    loop.exec()
    probe.stop()
    if screenshot:
        window.grab().save(str(screenshot))
    run_dir = window.run.run_dir
    window.close()
    from ganstudio.engine import RunDir

    return _steady_rate(RunDir(run_dir).read_metrics(), config.train.batch_size), lateness


def _steady_rate(rows: list[dict], batch_size: int) -> float:
    """images/s over the logged intervals after the first (which includes start-up)."""
    rows = rows[1:]
    steps = sum(r["steps"] for r in rows)
    seconds = sum(r["steps"] * batch_size / r["images_per_s"] for r in rows if r["images_per_s"])
    return steps * batch_size / seconds if seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--preset", default="dcgan-fashion")
    parser.add_argument("--screenshot", type=Path, help="save the window as a PNG at the end of the run")
    args = parser.parse_args()
    from ganstudio.config import load_preset

    config = load_preset(args.preset, ["train.device='auto'"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference = headless(config, args.seconds, root)
        gui, lateness = in_window(config, args.seconds, root, args.screenshot)
    q = statistics.quantiles(lateness, n=100)
    print(f"preset {args.preset}, {args.seconds:.0f} s each, python {sys.version.split()[0]}")
    print(f"GUI stall (10 ms probe, {len(lateness)} ticks): p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
          f"max {max(lateness):.1f} ms   (targets: p99 <= 16, max <= 50)")
    print(f"images/s: headless {reference:.0f}, in the window {gui:.0f}")
    print(f"ratio GUI / headless: {gui / reference:.2f}x   (target >= 0.95)")


if __name__ == "__main__":
    main()
