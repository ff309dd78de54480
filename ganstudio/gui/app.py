"""Starting the studio: the window paints first; torch loads after, on a background thread.

``GANSTUDIO_REPORT_FIRST_PAINT=FILE`` (used by ``benchmarks/startup.py``) times a start: the window writes
a JSON line to FILE with the wall-clock time of its first paint event, when torch and the architecture
preview had loaded, and the GUI thread's longest stall meanwhile (a 10 ms timer's lateness), then quits.
"""

from __future__ import annotations

import json
import os
import sys
import time

REPORT_ENV = "GANSTUDIO_REPORT_FIRST_PAINT"


def run_studio(argv: list[str] | None = None) -> int:
    app, window = build_studio(argv)
    if os.environ.get(REPORT_ENV):
        window._startup_report = StartupReport(window, os.environ[REPORT_ENV])
    window.show()
    return app.exec()


def build_studio(argv: list[str] | None = None):
    """The application and its main window, not yet shown (``benchmarks/gui_latency.py`` starts here too)."""
    from PySide6.QtWidgets import QApplication

    from ganstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("ganstudio")
    app.setApplicationName("ganstudio")
    return app, MainWindow()  # it starts loading torch after its first paint


class StartupReport:
    """The start-up timing hook: first paint, then stalls until torch and the preview's tables are in."""

    TICK_MS = 10

    def __init__(self, window, path: str) -> None:
        from PySide6.QtCore import QTimer

        self.window, self.path = window, path
        self.figures: dict[str, float] = {}
        self.stalls: list[float] = []
        self.probe = QTimer()
        self.probe.setTimerType(self.probe.timerType().PreciseTimer)
        self.probe.timeout.connect(self._tick)
        window.first_painted.connect(self._painted)
        window.preview.updated.connect(lambda: self.figures.setdefault("preview", time.time()))

    def _painted(self) -> None:
        self.figures["first_paint"] = time.time()
        self.figures["torch_at_paint"] = "torch" in sys.modules  # should be False: torch loads after
        self.last = time.perf_counter()
        self.probe.start(self.TICK_MS)

    def _tick(self) -> None:
        from ganstudio.gui.threads import torch_loaded

        now = time.perf_counter()
        self.stalls.append(max(0.0, (now - self.last) * 1000 - self.TICK_MS))
        self.last = now
        if torch_loaded():
            self.figures.setdefault("torch", time.time())
        if "torch" in self.figures and "preview" in self.figures:
            self.probe.stop()
            stalls = sorted(self.stalls)
            self.figures.update(max_stall_ms=stalls[-1], p99_stall_ms=stalls[int(0.99 * (len(stalls) - 1))],
                                ticks=len(stalls))
            with open(self.path, "w") as f:
                f.write(json.dumps(self.figures) + "\n")
            self.window.close()  # as a person quits: settings saved, threads joined
