"""The status bar's warnings badge: how many warnings this run gave, and a click opens them with their hints.

The engine's diagnostics end a warning's message with ". Try: <hint>"; the list shows that hint in its
own column, so what to do is read apart from what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QToolButton,
                               QVBoxLayout, QWidget)

HINT_MARK = ". Try: "


@dataclass(frozen=True)
class WarningRow:
    step: int
    kind: str
    message: str
    hint: str


def split_hint(message: str) -> tuple[str, str]:
    """("what happened", "what to try") from an engine warning's message; the hint may be empty."""
    head, mark, hint = message.partition(HINT_MARK)
    return (head + "." if mark else message), hint


class WarningsBadge(QToolButton):
    """Hidden until the first warning; then "⚠ N", and a click lists them all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("warnings_badge")
        self.setAccessibleName("Warnings")
        self.setAutoRaise(True)
        self.setStyleSheet("QToolButton { color: white; background: #d08000; border-radius: 6px; padding: 0 6px; }")
        self.rows: list[WarningRow] = []
        self.dialog: WarningsDialog | None = None
        self.clicked.connect(self.show_list)
        self.hide()

    def add(self, warning) -> None:
        """An engine TrainWarning (step, kind, message)."""
        message, hint = split_hint(warning.message)
        self.rows.append(WarningRow(warning.step, warning.kind, message, hint))
        self.setText(f"⚠ {len(self.rows)}")
        self.setToolTip(f"{len(self.rows)} warning(s); the latest: {message}\nClick for the list with hints")
        self.show()
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.fill(self.rows)

    def clear(self) -> None:
        self.rows.clear()
        self.setText("")
        self.hide()
        if self.dialog is not None:
            self.dialog.fill(self.rows)

    def show_list(self) -> None:
        if self.dialog is None:
            self.dialog = WarningsDialog(self.window())
        self.dialog.fill(self.rows)
        self.dialog.show()
        self.dialog.raise_()


class WarningsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("warnings_dialog")
        self.setWindowTitle("Warnings")
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("warnings_table")
        self.table.setAccessibleName("Warnings")
        self.table.setHorizontalHeaderLabels(["Step", "Kind", "What happened", "Try"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for column in (0, 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        header.setSectionResizeMode(3, QHeaderView.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(860, 320)

    def fill(self, rows: list[WarningRow]) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate((f"{row.step:,}", row.kind, row.message, row.hint or "—")):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeRowsToContents()
