"""One place that starts and stops QThreads, so none is ever destroyed while running.

Every background job in the studio (training, estimating, exporting) is a QObject moved to a QThread
started here. ``stop_thread`` quits and joins; ``live_threads`` lets tests check that none is left.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject, QThread

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def start_in_thread(worker: QObject, run_slot, name: str) -> QThread:
    """Move ``worker`` (which must have no parent) to a new QThread and call ``run_slot`` there."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(run_slot)
    _threads.add(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread | None, timeout_ms: int = 30_000) -> bool:
    """Ask the thread's event loop to quit and wait for it; True once it has finished."""
    if thread is None:
        return True
    thread.quit()
    return thread.wait(timeout_ms)


def live_threads() -> list[QThread]:
    return [t for t in list(_threads) if t is not None]
