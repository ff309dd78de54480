"""The queue dock's "Add sweep…" dialog: one or two config fields, each with values listed by hand; one job
per combination (ganstudio.queue.sweep_jobs), every job the form's config with those fields changed."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QGridLayout, QLabel, QLineEdit, QVBoxLayout, QWidget,
)

from ganstudio.config import RunConfig, field_keys
from ganstudio.queue import parse_sweep, sweep_jobs

SHOWN_JOBS = 6  # the preview names this many jobs, then says how many more


class SweepDialog(QDialog):
    def __init__(self, config: RunConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep_dialog")
        self.setWindowTitle("Add sweep")
        self.setMinimumWidth(560)
        self.config = config
        self.fields: list[QComboBox] = []
        self.values: list[QLineEdit] = []
        grid = QGridLayout()
        grid.addWidget(QLabel("Field"), 0, 0)
        grid.addWidget(QLabel("Values, separated by commas"), 0, 1)
        for row, (key, hint) in enumerate((("optim.lr_g", "e.g. 1e-4, 2e-4, 4e-4"), ("", "optional: a second field"))):
            field = QComboBox()
            field.setObjectName(f"sweep_field_{row}")
            field.setEditable(True)
            field.addItems(["", *field_keys()])
            field.setCurrentText(key)
            values = QLineEdit()
            values.setObjectName(f"sweep_values_{row}")
            values.setPlaceholderText(hint)
            field.currentTextChanged.connect(self._update)
            values.textChanged.connect(self._update)
            grid.addWidget(field, row + 1, 0)
            grid.addWidget(values, row + 1, 1)
            self.fields.append(field)
            self.values.append(values)
        self.preview = QLabel()
        self.preview.setObjectName("sweep_preview")
        self.preview.setWordWrap(True)
        self.preview.setMinimumHeight(3 * self.fontMetrics().lineSpacing())  # room for the longest preview
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Each job trains <b>{config.name}</b> as in the form, with these fields changed."))
        layout.addLayout(grid)
        layout.addWidget(self.preview)
        layout.addWidget(self.buttons)
        self._update()
        self.values[0].setFocus()  # the first field is filled in already: its values come next

    def sweeps(self) -> list[tuple[str, list[str]]]:
        """The filled rows as (key, values); raises ValueError naming a row that is half filled or unknown."""
        sweeps, known = [], set(field_keys())
        for field, values in zip(self.fields, self.values, strict=True):
            key, text = field.currentText().strip(), values.text().strip()
            if not key and not text:
                continue
            if key not in known:
                raise ValueError(f"{key!r} is not a config field" if key else f"values {text!r} need a field")
            sweeps.append(parse_sweep(f"{key}={text}"))
        if not sweeps:
            raise ValueError("choose a field and list its values")
        return sweeps

    def jobs(self) -> list[tuple[list[str], str]]:
        """(extra `train` arguments, job name) per combination."""
        return sweep_jobs(self.sweeps(), self.config.name)

    @Slot()
    def _update(self) -> None:
        try:
            names = [name for _, name in self.jobs()]
        except ValueError as err:
            self.preview.setText(str(err))
            self.buttons.button(QDialogButtonBox.Ok).setEnabled(False)
            return
        more = f", and {len(names) - SHOWN_JOBS} more" if len(names) > SHOWN_JOBS else ""
        self.preview.setText(f"{len(names)} job(s): " + ", ".join(names[:SHOWN_JOBS]) + more)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(True)
