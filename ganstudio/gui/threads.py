"""One place that starts and stops background work, so no QThread is ever destroyed while running.

Every background job in the studio (training, estimating, exporting) is a QObject moved to a QThread
started here. ``stop_thread`` quits and joins; ``live_threads`` lets tests check that none is left.
``preload_torch`` imports torch off the GUI thread once the window has painted, and
``collect_on_gui_thread`` keeps Python's cyclic garbage collector off every other thread.
"""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QTimer
from shiboken6 import Shiboken

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
_abandoned: list[QThread] = []  # strong references: a QThread destroyed while running aborts the process
_SLICE_MS = 50  # join_thread's wait between two looks at the GUI's events and Python's signal handlers


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


def join_thread(thread: QThread | None, timeout_ms: int) -> bool:
    """Like ``stop_thread``, for a wait the person watches (closing the window): the window keeps painting
    and Python signal handlers keep running (a second Ctrl-C must be able to abort), because the wait is
    cut into slices with the GUI's non-input events processed between them.

    A thread still running after ``timeout_ms`` is kept here, so it is never destroyed while it runs (Qt
    would abort the process); ``abandoned()`` lists it for the studio's exit. True once it has finished.
    """
    if thread is None:
        return True
    from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop

    thread.quit()
    deadline = QDeadlineTimer(timeout_ms)
    while not thread.wait(min(_SLICE_MS, max(0, deadline.remainingTime()))):
        if deadline.hasExpired():
            _abandoned.append(thread)
            return False
        QCoreApplication.processEvents(QEventLoop.ExcludeUserInputEvents, _SLICE_MS)
    return True


def abandoned() -> list[QThread]:
    """Threads that outlived ``join_thread``'s wait and still run."""
    return [t for t in _abandoned if t.isRunning()]


def live_threads() -> list[QThread]:
    return [t for t in list(_threads) if t is not None]


# --- torch, loaded once in the background after the window's first paint ----------------------------------
# A plain daemon thread, not a QThread: it runs no Qt code, and an interpreter that exits mid-import must not
# wait for it. The GUI thread still gets the GIL every switch interval (5 ms) except while C code holds it:
# the dynamic linker mapping libtorch (shortened by _map_torch_libraries) and the cyclic garbage collector.
_torch_ready = threading.Event()
_torch_loader: threading.Thread | None = None
PRELOAD = ("torch", "ganstudio.models", "torch._dynamo")  # dynamo: meta-device batch norm (the architecture
# preview) imports it on first use, ~900 modules; better here, with the collector held off, than later


def preload_torch() -> None:
    """Start importing torch and the model zoo on a background thread (once; later calls do nothing), so
    Start, the architecture preview and the estimate find them loaded."""
    global _torch_loader
    if _torch_loader is None:
        _torch_loader = threading.Thread(target=_import_torch, name="preload-torch", daemon=True)
        _torch_loader.start()


def torch_loaded() -> bool:
    """True once ``preload_torch``'s import has finished (successfully or not)."""
    return _torch_ready.is_set()


def torch_pending() -> bool:
    """True while ``preload_torch``'s import runs: whatever imports torch on the GUI thread now would wait
    for it there (Python's import lock), frozen for as long as the import takes (tens of seconds on a cold
    disk), so the studio offers such actions only once this is False."""
    return _torch_loader is not None and not _torch_ready.is_set()


def _import_torch() -> None:
    """Import PRELOAD with the cyclic collector off, then freeze what is loaded.

    With torch loaded a full collection walks ~400k objects and holds the GIL for ~130 ms: the imports
    trigger several (a GUI stall each), and so do a training run's allocations later. Module objects
    live for the whole process, so the collector need not walk them again: ``gc.freeze`` moves them out
    of its reach. Cost: cyclic garbage alive at the freeze is never reclaimed; only a start that is really
    loading torch freezes, when little but startup objects exist.
    """
    import importlib

    fresh = "torch" not in sys.modules
    collecting = gc.isenabled()
    if fresh:
        gc.disable()
    try:
        with _module_lock(PRELOAD[0]):  # see _module_lock: another thread's `import torch` waits, GIL released
            _map_torch_libraries()
            importlib.import_module(PRELOAD[0])
        for name in PRELOAD[1:]:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - whoever needs torch next imports it again and reports the error
        pass
    finally:
        if fresh:
            gc.freeze()
            if collecting:
                gc.enable()
        _torch_ready.set()


def _module_lock(name: str):
    """Python's own import lock for module ``name``, held here while torch's libraries are mapped.

    Without it, a thread that imports torch meanwhile (the architecture preview's, 200 ms after the first
    paint) runs torch's ``ctypes.CDLL`` of its global-deps library, which keeps the GIL while it waits for
    the dynamic linker's lock that our ``dlopen`` holds: the GUI thread then froze for as long as mapping
    libtorch takes (0.1-1.5 s measured under Xvfb; more on a cold disk). Waiting for this lock instead
    releases the GIL, and the import it then finds is done. The lock is re-entrant, so our own import of
    torch under it proceeds. ``_ModuleLockManager`` is private to importlib (stable in 3.8-3.13);
    without it, nothing is held and the freeze can come back, nothing worse.
    """
    import contextlib

    try:
        from importlib._bootstrap import _ModuleLockManager
    except ImportError:
        return contextlib.nullcontext()
    return _ModuleLockManager(name)


def _map_torch_libraries() -> None:
    """Map torch's big shared libraries with ``dlopen`` called through ctypes, which releases the GIL
    around foreign calls; the import that follows then finds them loaded.

    Python's own extension loading (and ``ctypes.CDLL``) hold the GIL while the dynamic linker maps and
    relocates libtorch (0.2-0.3 s here), and the GUI thread cannot paint meanwhile. The flags are those
    torch's import uses: its global-deps library RTLD_GLOBAL, the rest local. Best effort: a library
    that fails to map (NULL) is left to the import, which loads it, or explains, as usual.
    """
    if sys.platform != "linux":
        return
    try:
        import ctypes
        import importlib.util
        import os

        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.submodule_search_locations:
            return
        lib = Path(spec.submodule_search_locations[0]) / "lib"
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
        for name, scope in (("libtorch_global_deps.so", os.RTLD_GLOBAL), ("libtorch_python.so", os.RTLD_LOCAL)):
            if (lib / name).is_file():
                dlopen(os.fsencode(lib / name), os.RTLD_NOW | scope)
    except (OSError, AttributeError, ValueError):
        pass  # no dlopen to call: the import maps the libraries itself


# --- Python's cyclic garbage collector, on the GUI thread only ----------------------------------------------
# The collector runs on whichever thread crosses its allocation threshold: in the studio, mostly the training
# worker's. A cycle holding Qt wrappers collected there (a plot panel replaced when the family changes:
# pyqtgraph's items reach themselves through their menus and signals) is finalised off the GUI thread, PySide6
# queues the C++ deletions for the main thread, and draining that queue crashed the process (SIGSEGV in
# shiboken's BindingManager::runDeletionInMainThread; change the family, press Start). So while a window is
# open, automatic collection is off and a timer on the GUI thread collects what Python itself would have.
COLLECT_MS = 100
_collector: QTimer | None = None
_collector_owners = 0
_collector_restores = True  # whether automatic collection was on before the first owner


def collect_on_gui_thread(owner: QObject) -> None:
    """From now until ``owner`` (the main window) is destroyed, the cyclic collector runs only from a
    timer on the calling thread, which must be the GUI thread. Owners nest; the last one restores it."""
    global _collector, _collector_owners, _collector_restores
    if _collector_owners == 0:
        _collector_restores = gc.isenabled()
        gc.disable()
        _collector = QTimer()
        _collector.setObjectName("gui_thread_gc")
        _collector.timeout.connect(collect_due)
        _collector.start(COLLECT_MS)
    _collector_owners += 1
    owner.destroyed.connect(_release_collector)


def collector_owners() -> int:
    """How many windows hold the collector on the GUI thread now."""
    return _collector_owners


def collect_due() -> int:
    """Collect the oldest generation Python's own rule says is due (0 when none is); what it found."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            return gc.collect(generation)
    return 0


def _release_collector(*_args) -> None:
    global _collector, _collector_owners
    _collector_owners -= 1
    if _collector_owners == 0 and _collector is not None:
        timer, _collector = _collector, None
        if Shiboken.isValid(timer):  # at the interpreter's exit, shiboken may have deleted it before the window
            timer.stop()
            timer.deleteLater()
        if _collector_restores:  # no collection here: this runs inside the window's destructor
            gc.enable()
