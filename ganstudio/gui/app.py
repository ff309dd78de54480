"""Starting the studio: the window paints first; torch loads after, on a background thread.

``GANSTUDIO_REPORT_FIRST_PAINT=FILE`` (used by ``benchmarks/startup.py``) times a start: the window writes
a JSON line to FILE with the wall-clock time of its first paint event, when torch and the architecture
preview had loaded, and the GUI thread's longest stall meanwhile (a 10 ms timer's lateness), then quits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

REPORT_ENV = "GANSTUDIO_REPORT_FIRST_PAINT"


def run_studio(argv: list[str] | None = None) -> int:
    from ganstudio.gui import threads

    app, window = build_studio(argv)
    if os.environ.get(REPORT_ENV):
        window._startup_report = StartupReport(window, os.environ[REPORT_ENV])
    stopper = SignalStop(window)
    window.show()
    code = app.exec()
    stopper.uninstall()
    if stopper.signal_name:
        print(f"ganstudio: closed on {stopper.signal_name}", file=sys.stderr)
    if threads.abandoned():  # a job that ignored its stop: exiting normally would destroy its QThread (abort)
        print("ganstudio: a background job did not stop in time; exiting without it (checkpoints are written "
              "atomically, so the last one is intact)", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code or 1)
    return code


class SignalStop:
    """SIGTERM, SIGHUP and SIGINT close the studio as its Quit does: training stops, saves, the window closes.
    A second one aborts at once without saving (exit 128 + the signal); the last checkpoint stays.

    Python runs a signal handler only between bytecodes of the main thread, and that thread sits in Qt's
    event loop (C++), so a handler alone would wait for the next Python slot, which may never come. With
    ``signal.set_wakeup_fd`` the interpreter's C-level handler also writes a byte to a socket, and a
    QSocketNotifier on the other end wakes the event loop at once; its slot is Python, so the handler runs.
    Chosen over a polling QTimer: no wake-ups while idle and no added latency.
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self, window) -> None:
        from PySide6.QtCore import QSocketNotifier

        self.window = window
        self.signal_name: str | None = None
        self._receive, self._send = socket.socketpair()
        for end in (self._receive, self._send):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._receive.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)
        self._previous_fd = signal.set_wakeup_fd(self._send.fileno())  # main thread only
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._receive.close()
        self._send.close()

    def _drain(self) -> None:
        try:
            self._receive.recv(512)  # the signal numbers; the handlers have run (or run now, in Python)
        except OSError:
            pass

    def _handle(self, signum: int, frame) -> None:
        from PySide6.QtCore import QTimer

        name = signal.Signals(signum).name
        if self.signal_name is not None:
            _say(f"\nganstudio: {name} again: aborting without saving; the last checkpoint is intact\n")
            os._exit(128 + signum)  # the training thread may be mid-step: nothing of it may be written
        self.signal_name = name
        run = getattr(self.window, "run", None)
        if run is not None and run.busy and run.starting:
            _say(f"\nganstudio: {name}: stopping the start-up (nothing has been trained) and closing\n")
        elif run is not None and run.busy:
            _say(f"\nganstudio: {name}: stopping training, saving a checkpoint and closing (again to abort "
                 "without saving)\n")
        else:
            _say(f"\nganstudio: {name}: closing\n")
        self.window.closing_by_signal = True  # no questions (a running queue goes on: it outlives the window)
        QTimer.singleShot(0, self.window.close)  # from the event loop, not from inside whatever code was running


def _say(text: str) -> None:
    """From a signal handler: os.write, since the interrupted code may be mid-write on sys.stderr."""
    try:
        os.write(sys.stderr.fileno(), text.encode(errors="replace"))
    except (OSError, ValueError):
        pass


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
