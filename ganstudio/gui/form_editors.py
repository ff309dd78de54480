"""One editor widget per config field, chosen by the field's kind, and reading/writing its value."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from ganstudio.gui.form_schema import FieldSpec


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
    if spec.kind in ("choice", "spin"):
        editor.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    editor.setObjectName(spec.key)
    editor.setAccessibleName(spec.title)
    editor.setAccessibleDescription(spec.description)
    editor.setToolTip(spec.tooltip)
    return editor


def read_value(spec: FieldSpec, editor: QWidget) -> Any:
    """The editor's value; text that does not parse goes to pydantic as is, to be reported there."""
    if spec.kind == "choice":
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
