"""Keys in a focused form field: numbers never take a space, so Space (Pause/Resume) and the window's other
shortcuts reach the window from them; text fields keep Space but not the window's Ctrl chords."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from ganstudio.gui import threads
from ganstudio.gui.form_editors import KeyGuard
from ganstudio.gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path, tiny_config):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.form.set_config(tiny_config)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: threads.torch_loaded() and not _notice(win), timeout=30_000)  # "Loading PyTorch…"
    yield win
    win.run.shutdown()
    win.preview.shutdown()


def _focus_selected(qtbot, win, key):
    """The field as after Tab: focused, its whole text selected."""
    editor = win.form.widget_for(key)
    win.activateWindow()
    editor.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is editor)
    editor.selectAll()
    return editor


@pytest.mark.parametrize("key", ["optim.lr_d", "optim.beta1", "train.batch_size"])
def test_space_in_a_number_field_resumes_and_leaves_the_value(qtbot, window, key):
    editor = _focus_selected(qtbot, window, key)
    before = editor.text()
    window.actions["pause"].setEnabled(True)  # as while training; the slot does nothing when idle
    with qtbot.waitSignal(window.actions["pause"].triggered, timeout=2000):
        qtbot.keyClick(editor, Qt.Key.Key_Space)
    assert editor.text() == before and window.form.is_valid()


def test_space_in_a_number_field_types_nothing_when_the_action_is_off(qtbot, window):
    editor = _focus_selected(qtbot, window, "optim.lr_g")
    before = editor.text()
    assert not window.actions["pause"].isEnabled()  # idle: Space has no action to go to
    qtbot.keyClick(editor, Qt.Key.Key_Space)
    assert editor.text() == before and window.form.is_valid()


def test_a_text_field_keeps_space_and_passes_ctrl_e_to_export(qtbot, window):
    editor = _focus_selected(qtbot, window, "name")
    editor.setText("my run")
    editor.end(False)
    qtbot.keyClick(editor, Qt.Key.Key_Space)
    assert editor.text() == "my run "  # a name may hold spaces
    window.actions["export"].setEnabled(True)
    triggered = []
    window.actions["export"].triggered.disconnect()  # the dialog itself is tested elsewhere
    window.actions["export"].triggered.connect(lambda: triggered.append(True))
    editor.home(False)
    qtbot.keyClick(editor, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert triggered and editor.cursorPosition() == 0  # not moved to the end of the line


def test_function_keys_reach_the_window_from_a_number_field(qtbot, window):
    editor = _focus_selected(qtbot, window, "optim.lr_g")
    with qtbot.waitSignal(window.actions["start"].triggered, timeout=2000):
        qtbot.keyClick(editor, Qt.Key.Key_F5)
    window.run.shutdown()


@pytest.mark.parametrize(("key", "modifiers", "to_window"), [
    (Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier, True),   # X11 binds it to "end of line"
    (Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier, False),  # Select all stays in the field
    (Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier, True),
    (Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier, False),  # copy stays in the field
    (Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier, False),
    (Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier, False),
    (Qt.Key.Key_X, Qt.KeyboardModifier.NoModifier, False),
])
def test_key_guard_leaves_the_window_its_chords_whatever_the_platforms_bindings(qapp, key, modifiers, to_window):
    # offscreen Qt has no X11 bindings, so the line edit would not eat Ctrl+E here anyway: check the rule itself
    event = QKeyEvent(QEvent.Type.ShortcutOverride, key, modifiers)
    assert KeyGuard._for_the_window(event) is to_window


def _notice(win):
    from PySide6.QtWidgets import QLabel

    return win.findChild(QLabel, "status_notice").text()


def test_an_invalid_form_says_why_start_is_refused(qtbot, window):
    assert window.actions["start"].isEnabled() and _notice(window) == ""
    window.form.widget_for("optim.lr_d").setText("")
    for name in ("start", "step"):
        action = window.actions[name]
        assert not action.isEnabled() and "optim.lr_d" in action.toolTip(), name
    assert _notice(window).startswith("Start refused") and "optim.lr_d" in _notice(window)
    window.form.widget_for("optim.lr_d").setText("0.0002")
    assert window.actions["start"].isEnabled() and _notice(window) == ""
    assert "optim.lr_d" not in window.actions["start"].toolTip() and "(F5)" in window.actions["start"].toolTip()


def test_resume_is_refused_while_a_live_field_is_invalid(qtbot, window):
    window.run.start(paused=True)
    qtbot.waitUntil(lambda: window.run.state == "paused" and window.actions["pause"].isEnabled(), timeout=10_000)
    editor = _focus_selected(qtbot, window, "optim.beta1")
    qtbot.keyClicks(editor, "x")  # a slip: "x" in place of the number
    resume = window.actions["pause"]
    assert not resume.isEnabled() and "optim.beta1" in resume.toolTip()
    assert _notice(window).startswith("Resume refused") and "optim.beta1" in _notice(window)
    assert not window.actions["step"].isEnabled()  # a step would use the old value as silently
    qtbot.keyClick(editor, Qt.Key.Key_Space)  # Space has no action to reach and types nothing
    assert window.run.state == "paused" and editor.text() == "x"
    editor.setText("0.5")
    assert resume.isEnabled() and _notice(window) == ""
    with qtbot.waitSignal(resume.triggered, timeout=2000):
        qtbot.keyClick(editor, Qt.Key.Key_Space)
    assert window.run.state == "running"
