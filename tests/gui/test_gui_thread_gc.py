"""Python's cyclic garbage collector runs on the GUI thread while a window is open.

Collected on a training thread, a cycle holding Qt wrappers (a plot panel replaced when the family
changes) is finalised there, and PySide6's deferred deletion of it crashed the studio (SIGSEGV in
shiboken's BindingManager::runDeletionInMainThread). ``test_window_extras`` changes the family and
presses Start, the way that crashed; this checks the mechanism itself.
"""

import gc
import threading
import weakref

from PySide6.QtCore import QObject, QSettings

from ganstudio.gui.main_window import MainWindow


def _qt_cycle(finalised_on: list) -> None:
    """Garbage only the cyclic collector frees: an object that holds itself and a QObject."""
    class Cycle:
        pass

    cycle = Cycle()
    cycle.itself, cycle.qt = cycle, QObject()
    weakref.finalize(cycle, lambda: finalised_on.append(threading.current_thread() is threading.main_thread()))


def _allocate_on_a_thread() -> None:
    """What a training thread does all the time: allocate past the collector's threshold."""
    thread = threading.Thread(target=lambda: [[] for _ in range(50 * gc.get_threshold()[0])])
    thread.start()
    thread.join()


def test_with_a_window_open_qt_garbage_is_collected_on_the_gui_thread_only(qtbot, tmp_path):
    assert gc.isenabled()
    before: list[bool] = []
    _qt_cycle(before)
    _allocate_on_a_thread()
    assert before == [False]  # without the window's collector: finalised on the thread that allocated

    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), runs_root=tmp_path / "runs")
    try:
        assert not gc.isenabled()
        after: list[bool] = []
        _qt_cycle(after)
        _allocate_on_a_thread()
        assert after == []  # the thread's allocations collected nothing
        held = [[] for _ in range(2 * gc.get_threshold()[0])]  # past the threshold until the timer's look
        qtbot.waitUntil(lambda: bool(after), timeout=5_000)  # the GUI thread's timer collected
        assert after == [True] and held
    finally:
        window.close()
        window.deleteLater()  # not qtbot.addWidget: its teardown would close a deleted window
    qtbot.waitUntil(gc.isenabled, timeout=5_000)  # the last window gone: Python's own collection again


def test_a_collector_timer_deleted_first_still_lets_the_last_window_restore_collection(qtbot, tmp_path):
    """At the interpreter's exit shiboken may delete the timer before the window: closing the studio then
    printed a RuntimeError traceback ("Internal C++ object (QTimer) already deleted") and never restored
    Python's own collection."""
    from shiboken6 import Shiboken

    from ganstudio.gui import threads

    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), runs_root=tmp_path / "runs")
    timer = threads._collector
    assert timer is not None and not gc.isenabled()
    Shiboken.delete(timer)
    window.close()
    window.deleteLater()
    qtbot.waitUntil(gc.isenabled, timeout=5_000)
    assert threads.collector_owners() == 0 and threads._collector is None
