"""One editor widget per config field, chosen by the field's kind, and reading/writing its value."""

from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QSpinBox, QWidget

from ganstudio.gui import threads
from ganstudio.gui.form_schema import FieldSpec

log = logging.getLogger(__name__)
ERROR_COLOR = "#c62828"


# Text editing keys a field keeps even when a window action shares them; any other Ctrl/Alt chord or function
# key goes to the window's actions (Ctrl+E is Export, not X11's "end of line"; F5 is Start).
_CLIPBOARD_KEYS = tuple(getattr(QKeySequence.StandardKey, name) for name in (
    "Copy", "Cut", "Paste", "Undo", "Redo", "SelectAll"))
_MOVING_KEYS = tuple(getattr(QKeySequence.StandardKey, name) for name in (
    "Delete", "Backspace", "DeleteStartOfWord", "DeleteEndOfWord", "MoveToNextWord", "MoveToPreviousWord",
    "SelectNextWord", "SelectPreviousWord", "MoveToStartOfLine", "MoveToEndOfLine", "SelectStartOfLine",
    "SelectEndOfLine"))
_CHORD = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


class KeyGuard(QObject):
    """Lets the window's shortcuts through a focused field instead of the field eating them.

    A field that never takes a space (a number, a device name) passes Space on to the window, where it is
    Pause/Resume, and never inserts it: after Tab a field's text is selected, and a space typed over it
    would silently empty a learning rate. Every field passes Ctrl/Alt chords and function keys that are not
    text editing keys (Ctrl+E, F5, Shift+F5...). Qt asks the focused widget first (``ShortcutOverride``);
    leaving that event unaccepted sends the key to the window's shortcut map.
    """

    def __init__(self, parent: QObject, *, takes_space: bool) -> None:
        super().__init__(parent)
        self.takes_space = takes_space

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        space = event.key() == Qt.Key.Key_Space and not event.modifiers() & _CHORD
        if space and not self.takes_space:
            event.ignore()  # unaccepted override: the shortcut map tries Space; a key press is dropped
            return True
        if kind == QEvent.Type.ShortcutOverride and self._for_the_window(event):
            event.ignore()
            return True
        return False

    @staticmethod
    def _for_the_window(event: QKeyEvent) -> bool:
        key = event.key()
        if not Qt.Key.Key_F1 <= key <= Qt.Key.Key_F35 and not event.modifiers() & _CHORD:
            return False  # plain typing and navigation stay in the field
        if any(event.matches(standard) for standard in _CLIPBOARD_KEYS):
            return False
        # Ctrl+letter moves (Ctrl+E, Ctrl+A on X11) are emacs habits; Ctrl+Left, Ctrl+Backspace stay
        letter = Qt.Key.Key_A <= key <= Qt.Key.Key_Z
        return letter or not any(event.matches(standard) for standard in _MOVING_KEYS)


def guard_keys(editor: QWidget, *, takes_space: bool) -> None:
    """Install a KeyGuard on ``editor`` (and the text box inside an editable combo box)."""
    guard = KeyGuard(editor, takes_space=takes_space)
    editor.installEventFilter(guard)
    if isinstance(editor, QComboBox) and editor.lineEdit() is not None:
        editor.lineEdit().installEventFilter(guard)


class Combo(QComboBox):
    """Takes the mouse wheel only when focused: scrolling the form must not change values on the way.

    ``choices`` are the values its items stand for, in order; ``offer`` narrows them (a family's losses).
    """

    choices: tuple = ()
    tips: dict = {}  # choice -> what it means, each item's tooltip

    def offer(self, choices, value=None) -> None:
        """Show only ``choices`` and select ``value`` (or nothing), without emitting change signals."""
        self.blockSignals(True)
        try:
            self.set_choices(choices)
            self.setCurrentIndex(self.choices.index(value) if value in self.choices else -1)
        finally:
            self.blockSignals(False)

    def set_choices(self, choices) -> None:
        """The items become ``choices``, each with its tooltip from ``tips``."""
        self.clear()
        self.choices = tuple(choices)
        for i, choice in enumerate(self.choices):
            self.addItem(str(choice))
            if self.tips.get(choice):
                self.setItemData(i, self.tips[choice], Qt.ItemDataRole.ToolTipRole)

    def value(self):
        index = self.currentIndex()
        return self.choices[index] if 0 <= index < len(self.choices) else None

    def wheelEvent(self, event) -> None:
        super().wheelEvent(event) if self.hasFocus() else event.ignore()


class DeviceCombo(QComboBox):
    """``train.device``: an editable combo box whose items are labelled ("cuda:0 NVIDIA H200, 139 GiB") and
    whose value is the plain name ("cuda:0"); a name typed by hand is the value as typed, for the config
    to validate. ``always`` ("auto", "cpu") is listed at once; the machine's devices once torch is in.

    It never imports torch (the window must paint before torch loads): a timer reads
    ``threads.torch_loaded()`` and, once true, the devices are described on a plain background thread,
    because naming a GPU initialises CUDA, a GUI stall of up to seconds.
    """

    listed = Signal()  # the machine's devices are in the list; is_listed() from now on
    POLL_MS = 100      # a flag read per tick, nothing more

    def __init__(self, always: tuple[str, ...]) -> None:
        super().__init__()
        self._always = always
        self._described: Future | None = None
        self._listed = False
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)  # Enter must not turn typed text into an item
        for name in always:
            self.addItem(name, name)
        self._poll = QTimer(self, interval=self.POLL_MS)
        self._poll.timeout.connect(self._look)
        self._poll.start()

    def is_listed(self) -> bool:
        """True once the machine's devices are in the list (so torch is loaded)."""
        return self._listed

    def missing(self, device: str) -> str | None:
        """resolve_device's message when this machine lacks ``device``; None also while the machine's
        devices are not listed yet (until torch is in, the config's check of the name is all there is)."""
        if not self._listed:
            return None
        from ganstudio.config import ConfigError
        from ganstudio.engine.devices import resolve_device  # torch is loaded by now: no import cost

        try:
            resolve_device(device)
        except ConfigError as err:
            return str(err)
        return None

    def value(self) -> str:
        text = self.currentText().strip()
        index = self.findText(text)  # exact and case-sensitive: "CUDA" goes to the config, which refuses it
        return self.itemData(index) if index >= 0 else text

    def set_value(self, value: str) -> None:
        """Select ``value``'s item, or show ``value`` as typed text where this machine has no such device."""
        index = self.findData(value)
        self.setCurrentIndex(index)
        self.setEditText(self.itemText(index) if index >= 0 else str(value))  # typed text may hide the item

    def _look(self) -> None:
        if self._described is None:
            if not threads.torch_loaded():
                return
            if "torch" not in sys.modules:  # the preload failed; Start imports torch again and says why
                self._poll.stop()
                return
            self._described = _in_background(_describe_devices)
        elif self._described.done():
            self._poll.stop()
            try:
                devices = self._described.result()
            except Exception as err:  # noqa: BLE001 - a broken driver: auto and cpu still work, Start reports it
                log.warning("could not list this machine's devices: %s", err)
                return
            self._list(devices)

    def _list(self, devices: list[tuple[str, str]]) -> None:
        value = self.value()
        self.blockSignals(True)  # the value stays the same: nothing to report
        try:
            self.clear()
            described = dict(devices)
            for name in self._always:
                if name not in described:
                    self.addItem(name, name)
            for name, label in devices:
                self.addItem(label, name)
            self.set_value(value)
        finally:
            self.blockSignals(False)
        self._listed = True
        self.listed.emit()

    def wheelEvent(self, event) -> None:
        super().wheelEvent(event) if self.hasFocus() else event.ignore()


def _describe_devices() -> list[tuple[str, str]]:
    from ganstudio.engine.devices import describe_devices  # torch is loaded: this imports no torch

    return describe_devices()


def _in_background(work) -> Future:
    """Run ``work`` on a daemon thread (no Qt in it, like threads.preload_torch); its result in the Future."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as err:  # noqa: BLE001 - handed to whoever reads the Future
            future.set_exception(err)

    threading.Thread(target=run, name="describe-devices", daemon=True).start()
    return future


class _Spin(QSpinBox):
    def wheelEvent(self, event) -> None:
        super().wheelEvent(event) if self.hasFocus() else event.ignore()


class _Choices(QWidget):
    """A list of choices (``list[Literal[...]]``) as a row of check boxes."""

    changed = Signal()

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.boxes = {}
        for choice in spec.choices:
            box = QCheckBox(str(choice))
            box.setObjectName(f"{spec.key}.{choice}")
            box.setToolTip(dict(zip(spec.choices, spec.choice_tips)).get(choice, ""))
            box.setAccessibleName(f"{spec.title}: {choice}")
            box.toggled.connect(self.changed)
            layout.addWidget(box)
            self.boxes[choice] = box
        layout.addStretch(1)

    def value(self) -> list:
        return [choice for choice, box in self.boxes.items() if box.isChecked()]

    def set_value(self, value: list) -> None:
        for choice, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(choice in value)
            box.blockSignals(False)


def make_editor(spec: FieldSpec) -> QWidget:
    if spec.kind == "choice":
        editor = Combo()
        editor.tips = {c: tip for c, tip in zip(spec.choices, spec.choice_tips) if tip}
        editor.set_choices(spec.choices)
        editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        editor.setMinimumContentsLength(8)  # long choices must not widen the dock
    elif spec.kind == "device":
        editor = DeviceCombo(spec.choices)
        editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        editor.setMinimumContentsLength(8)  # a GPU's long name must not widen the dock
    elif spec.kind == "bool":
        editor = QCheckBox()
    elif spec.kind == "multi":
        editor = _Choices(spec)
    elif spec.kind == "spin":
        editor = _Spin()
        editor.setRange(*spec.bounds)
        editor.setKeyboardTracking(False)  # typing "50" reports 50 once, not 5 then 50
        editor.setAccelerated(True)
    else:
        editor = QLineEdit()
        if spec.optional:
            editor.setPlaceholderText("none")
    if spec.kind in ("choice", "spin", "device"):
        editor.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    if spec.kind in ("spin", "int", "float", "device", "text", "path"):
        # numbers and device names never contain a space: Space there is the window's Pause/Resume
        guard_keys(editor, takes_space=spec.kind in ("text", "path"))
    editor.setObjectName(spec.key)
    editor.setAccessibleName(spec.title)
    if spec.kind == "device":  # its text box is an input of its own, for automation and screen readers
        editor.lineEdit().setObjectName(f"{spec.key}.text")
        editor.lineEdit().setAccessibleName(spec.title)
    editor.setAccessibleDescription(spec.description)
    editor.setToolTip(spec.tooltip)
    return editor


def read_value(spec: FieldSpec, editor: QWidget) -> Any:
    """The editor's value; text that does not parse goes to pydantic as is, to be reported there."""
    if spec.kind in ("choice", "device"):
        return editor.value()
    if spec.kind == "bool":
        return editor.isChecked()
    if spec.kind == "multi":
        return editor.value()
    if spec.kind == "spin":
        return editor.value()
    text = editor.text().strip()
    if spec.optional and not text:
        return None
    if spec.kind in ("int", "float"):
        try:
            number = float(text)  # "2e-4"; for an int, "1e4" is a fine way to write 10000
        except ValueError:
            return text
        if spec.kind == "float" or not number.is_integer():
            return number
        return int(text) if text.lstrip("+-").isdigit() else int(number)  # exact beyond 2**53
    return text if spec.kind == "path" else editor.text()


def write_value(spec: FieldSpec, editor: QWidget, value: Any) -> None:
    if spec.kind == "choice":
        editor.setCurrentIndex(editor.choices.index(value) if value in editor.choices else -1)
    elif spec.kind == "device":
        editor.set_value(value)
    elif spec.kind == "bool":
        editor.setChecked(bool(value))
    elif spec.kind == "multi":
        editor.set_value(value or [])
    elif spec.kind == "spin":
        editor.setValue(int(value))
    elif value is None:
        editor.setText("")
    else:
        editor.setText(repr(value) if isinstance(value, float) else str(value))  # repr: shortest exact float


def mark_invalid(editor: QWidget, label: QLabel, messages: list[str]) -> None:
    """Frame ``editor`` in red and show ``messages`` under it, or clear both when there are none."""
    invalid = bool(messages)
    if bool(editor.property("invalid")) != invalid:
        editor.setProperty("invalid", invalid)
        qt_class = next(c.__name__ for c in type(editor).__mro__ if c.__module__.startswith("PySide6"))
        # a type selector styles the editor itself and not, say, a combo box's popup list
        editor.setStyleSheet(f"{qt_class} {{ border: 1px solid {ERROR_COLOR}; border-radius: 2px; }}"
                             if invalid else "")
    label.setText("\n".join(messages))
    label.setVisible(invalid)
