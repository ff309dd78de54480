"""One section of the config form (Data, Model, Loss...) that folds away under its header, so a person sees
the sections they work in and one line for each of the others. Folding hides nothing for good: a section
with a marked field unfolds (``ConfigForm.show_problems``), and the header says how many fields it holds."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

ROW_SPACING = 4  # px between rows: the default (~10 with some styles) fits a third fewer fields on screen


class Section(QGroupBox):
    """A group box whose header button folds its rows away; ``form()`` is the QFormLayout of its rows."""

    toggled_open = Signal(bool)

    def __init__(self, name: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(title)
        self._title = title
        self._header = QToolButton(objectName=f"{name}.header", checkable=True, checked=True)
        self._header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._header.setAutoRaise(True)
        self._header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._header.setAccessibleName(f"{title} section")
        self._header.setToolTip(f"Show or hide the {title.lower()} settings")
        font = self._header.font()
        font.setBold(True)
        self._header.setFont(font)
        self._header.toggled.connect(self._set_open)
        self._body = QWidget(objectName=f"{name}.body")
        self._form = QFormLayout(self._body)
        self._form.setContentsMargins(4, 0, 0, 2)
        self._form.setVerticalSpacing(ROW_SPACING)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 2, 6, 4)
        column.setSpacing(2)
        column.addWidget(self._header)
        column.addWidget(self._body)
        self._set_open(True)

    def form(self) -> QFormLayout:
        return self._form

    def title(self) -> str:  # the box draws no title of its own: the header button carries it
        return self._title

    def is_open(self) -> bool:
        return self._header.isChecked()

    def set_open(self, open_: bool) -> None:
        self._header.setChecked(open_)

    def count_shown(self) -> int:
        return sum(1 for row in range(self._form.rowCount()) if self._form.isRowVisible(row))

    def refresh_header(self) -> None:
        """The header's text: the title, and while folded, how many fields it holds."""
        shown = self.count_shown()
        self._header.setText(self._title if self.is_open() else f"{self._title}  ({shown} fields)")

    def _set_open(self, open_: bool) -> None:
        self._body.setVisible(open_)
        self._header.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.refresh_header()
        self.toggled_open.emit(open_)


def align_labels(labels: dict[str, QLabel], titles: dict[str, set[str]]) -> None:
    """One label column for all sections, wide enough for every title a label may take (``titles``: the
    families' names for it), so the fields line up down the whole form whatever the family."""
    width = 0
    for key, label in labels.items():
        metrics = label.fontMetrics()
        for title in titles.get(key, set()) | {label.text()}:
            width = max(width, label.sizeHint().width() + metrics.horizontalAdvance(title)
                        - metrics.horizontalAdvance(label.text()))
    for label in labels.values():
        label.setMinimumWidth(width)
