"""The run configuration as a form, generated from ``RunConfig``'s schema: a new field appears by itself.

A field's widget follows its annotation: Literal -> combo box, bool -> check box, bounded int -> spin
box, float -> text that accepts "2e-4", ``X | None`` -> text where empty means None, a folder -> text
plus a "…" button, ``train.device`` -> an editable list of this machine's devices (once torch is in, they
are checked against the machine too). Every edit re-validates the whole config with ``from_dict``, so the form shows the
very errors the CLI would, on the fields their entries name (``ConfigError.entries``).

The form follows the model family (``families.py``) and the values that make other fields count
(``form_schema.CONDITIONS``: the GP weight only for a loss with a gradient penalty): fields that do nothing are
hidden (a section with none left hides too), titles are the family's ("Decoder width"), the loss box offers
only the family's losses, and sections fold (``form_section.py``). Hidden fields keep their values, so
switching back restores them, unless a hidden value alone makes the config invalid (label smoothing left
from bce when the loss becomes hinge): then the hidden fields count with their defaults, which are valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel, QLineEdit, QScrollArea,
                               QToolButton, QVBoxLayout, QWidget)

from ganstudio.config import (ConfigError, ConfigProblem, RunConfig, from_dict, load_preset, preset_description,
                              preset_names)
from ganstudio.families import FAMILIES, Family
from ganstudio.gui.form_editors import ERROR_COLOR, Combo, make_editor, mark_invalid, read_value, write_value
from ganstudio.gui.form_schema import CONDITION_INPUTS, DEVICE_KEY, FieldSpec, condition_holds, form_sections
from ganstudio.gui.form_section import Section, align_labels

DEFAULT_PRESET = "dcgan-fashion"
LOCKED_TIP = "cannot change while training"
FOLDED = ("eval",)  # sections that start folded: rarely changed, and a fold keeps the common ones on screen
FAMILY_KEY, LOSS_KEY = "model.family", "loss.name"


def _dotted(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


# --- the form -------------------------------------------------------------------------------------------
class ConfigForm(QWidget):
    """Edits a RunConfig; emits a validated config after every edit, and live changes while running."""

    config_changed = Signal(object)          # a valid RunConfig, after any edit
    validity_changed = Signal(bool, str)     # (valid, message); message "" when valid
    live_changed = Signal(str, object)       # (dotted key, new value): a live field edited while running

    def __init__(self, config: RunConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("config_form")
        self._specs: dict[str, FieldSpec] = {}
        self._editors: dict[str, QWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._errors: dict[str, QLabel] = {}
        self._browse: dict[str, QToolButton] = {}
        self._rows: dict[str, tuple[QFormLayout, QWidget]] = {}  # key -> (its form, its field cell)
        self._groups: dict[str, tuple[Section, list[str]]] = {}  # section -> (its box, its keys)
        self._family: Family = FAMILIES["gan"]
        self._family_loss: dict[str, str] = {}  # the loss last chosen under each family, restored on return
        self._config: RunConfig | None = None
        self._message = ""
        self._validity: tuple[bool, str] | None = None
        self._loading = False
        self._running = False
        self._committed: dict[str, Any] = {}  # live values the trainer has been sent
        self._build()
        self.set_config(config if config is not None else _default_config())

    # --- building -------------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        head = QWidget(objectName="config_form.head")
        head_form = QFormLayout(head)
        head_form.setContentsMargins(9, 9, 9, 3)
        self._preset = Combo(objectName="preset")
        self._preset.setAccessibleName("Preset")
        self._preset.setPlaceholderText("custom")  # shown when the config is no preset's
        self._preset.setToolTip("Load a bundled preset into the form")
        for i, name in enumerate(preset_names()):
            self._preset.addItem(name)
            self._preset.setItemData(i, preset_description(name), Qt.ItemDataRole.ToolTipRole)
        self._preset.activated.connect(self._preset_chosen)
        head_form.addRow(self._make_label("Preset", self._preset, "preset"), self._preset)
        self._summary = QLabel(objectName="config_form.summary", wordWrap=True, visible=False)
        self._summary.setStyleSheet(f"color: {ERROR_COLOR};")
        self._summary.setAccessibleName("Config errors")
        self._summary.setContentsMargins(9, 0, 9, 3)
        inner = QWidget(objectName="config_form.fields")
        column = QVBoxLayout(inner)
        for name, title, specs in form_sections():
            if name is None:
                self._add_rows(head_form, specs)
                continue
            group = Section(name, title)
            self._add_rows(group.form(), specs)
            group.set_open(name not in FOLDED)
            self._groups[name] = (group, [spec.key for spec in specs])
            column.addWidget(group)
        column.addStretch(1)
        align_labels(self._labels, {key: {f.title_of(key, label.text()) for f in FAMILIES.values()}
                                    for key, label in self._labels.items()})
        scroll = QScrollArea(objectName="config_form.scroll", widgetResizable=True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        # never narrower than the form itself: with no horizontal scroll bar, the right edge would be cut
        scroll.setMinimumWidth(inner.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        outer.addWidget(head)
        outer.addWidget(self._summary)
        outer.addWidget(scroll, 1)

    def _add_rows(self, form: QFormLayout, specs: list[FieldSpec]) -> None:
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in specs:
            editor = make_editor(spec)
            self._specs[spec.key], self._editors[spec.key] = spec, editor
            error = QLabel(objectName=f"{spec.key}.error", wordWrap=True, visible=False)
            error.setStyleSheet(f"color: {ERROR_COLOR}; font-size: small;")
            error.setAccessibleName(f"{spec.title} error")
            self._errors[spec.key] = error
            cell = QWidget(objectName=f"{spec.key}.cell")
            box = QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(2)
            box.addWidget(self._with_browse(spec, editor) if spec.kind == "path" else editor)
            box.addWidget(error)
            form.addRow(self._make_label(spec.title, editor, spec.key, spec.tooltip), cell)
            self._rows[spec.key] = (form, cell)
            self._connect(spec, editor)

    def _make_label(self, title: str, buddy: QWidget, key: str, tooltip: str = "") -> QLabel:
        label = QLabel(title, objectName=f"{key}.label")
        label.setBuddy(buddy)
        label.setToolTip(tooltip or buddy.toolTip())
        self._labels[key] = label
        return label

    def _with_browse(self, spec: FieldSpec, editor: QLineEdit) -> QWidget:
        row = QWidget(objectName=f"{spec.key}.row")
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(editor, 1)
        button = QToolButton(objectName=f"{spec.key}.browse", text="…")
        button.setAccessibleName(f"Choose {spec.title}")
        button.setToolTip(f"Choose the {spec.title.lower()}")
        button.clicked.connect(lambda: self._browse_folder(spec.key))
        self._browse[spec.key] = button
        line.addWidget(button)
        return row

    def _connect(self, spec: FieldSpec, editor: QWidget) -> None:
        key = spec.key
        if spec.kind == "choice":
            editor.currentIndexChanged.connect(lambda _i: self._edited(key, commit=True))
        elif spec.kind == "bool":
            editor.toggled.connect(lambda _on: self._edited(key, commit=True))
        elif spec.kind == "multi":
            editor.changed.connect(lambda: self._edited(key, commit=True))
        elif spec.kind == "spin":
            editor.valueChanged.connect(lambda _v: self._edited(key, commit=True))
        elif spec.kind == "device":
            editor.currentTextChanged.connect(lambda _t: self._edited(key, commit=False))  # typed or chosen
            editor.lineEdit().editingFinished.connect(lambda: self._commit(key))
            editor.listed.connect(self._devices_listed)
        else:
            # validate on every keystroke, but send a live value only once the text is finished:
            # typing "1e-3" passes through "1", which must never reach the trainer
            editor.textChanged.connect(lambda _t: self._edited(key, commit=False))
            editor.editingFinished.connect(lambda: self._commit(key))

    # --- public API -----------------------------------------------------------------------------------
    def config(self) -> RunConfig | None:
        """The validated config, or None while some field is invalid."""
        return self._config

    def set_config(self, config: RunConfig) -> None:
        values = config.model_dump()
        self._loading = True
        try:
            self._apply_family(FAMILIES[config.model.family], config.loss.name)
            for key, spec in self._specs.items():
                write_value(spec, self._editors[key], _dotted(values, key))
            self._show_applying()  # the values decide which fields count (the loss: the GP weight...)
            self._preset.setCurrentIndex(self._preset.findText(config.name))
        finally:
            self._loading = False
        self._revalidate()
        if self._running:  # the window loaded a config mid-run: those are the values the trainer has
            self._committed = {k: _dotted(values, k) for k, s in self._specs.items() if s.live}

    def is_valid(self) -> bool:
        return self._config is not None

    def error_text(self) -> str:
        """The validation message ("" when valid), one line per problem."""
        return self._message

    def family(self) -> Family:
        """The model family the form shows (its fields, titles and losses)."""
        return self._family

    def is_shown(self, key: str) -> bool:
        """Whether the dotted field ``key`` is shown (it does something for the family, loss, optimizer...;
        ``applies``); hidden ones keep their values. A field in a folded section counts as shown."""
        form, cell = self._rows[key]
        group = next((g for g, keys in self._groups.values() if key in keys), None)
        return form.isRowVisible(cell) and (group is None or not group.isHidden())

    def applies(self, key: str) -> bool:
        """Whether ``key`` does something for the form's values: its family's rules, then the ones
        between fields (``form_schema.CONDITIONS``: the GP weight only for a loss with a gradient penalty)."""
        if not self._family.applies(key):
            return False
        return condition_holds(key, lambda other: read_value(self._specs[other], self._editors[other]))

    def section(self, name: str) -> Section:
        """The section box ``name`` ("loss", "optim"...), to fold or unfold."""
        return self._groups[name][0]

    def widget_for(self, key: str) -> QWidget:
        """The editor of the dotted field ``key`` (its objectName is ``key``)."""
        try:
            return self._editors[key]
        except KeyError:
            raise KeyError(f"no config field {key!r} in the form") from None

    def set_running(self, running: bool) -> None:
        """Lock the fields that cannot change while training; live ones stay editable."""
        self._running = running
        if running and self._config is not None:
            values = self._config.model_dump()
            self._committed = {k: _dotted(values, k) for k, s in self._specs.items() if s.live}
        self._preset.setEnabled(not running)
        for key, spec in self._specs.items():
            if spec.live:
                continue
            tip = f"{spec.tooltip}\n({LOCKED_TIP})" if running else spec.tooltip
            self._editors[key].setEnabled(not running)
            self._editors[key].setToolTip(tip)
            self._labels[key].setToolTip(tip)
            if key in self._browse:
                self._browse[key].setEnabled(not running)

    @Slot(str)
    def choose_preset(self, name: str) -> None:
        """Load a bundled preset into the form."""
        try:
            config = load_preset(name)
        except ConfigError as err:  # a broken preset file: say so, keep the form as it is
            self._summary.setText(f"preset {name!r}: {err}")
            self._summary.setVisible(True)
            return
        self.set_config(config)

    # --- editing --------------------------------------------------------------------------------------
    @Slot(int)
    def _preset_chosen(self, index: int) -> None:
        self.choose_preset(self._preset.itemText(index))

    def _browse_folder(self, key: str) -> None:
        editor = self._editors[key]
        folder = QFileDialog.getExistingDirectory(self, self._specs[key].title, editor.text())
        if folder:
            editor.setText(folder)
            self._commit(key)

    def _edited(self, key: str, *, commit: bool) -> None:
        if self._loading:
            return
        if key == FAMILY_KEY:
            family = read_value(self._specs[key], self._editors[key])
            if family in FAMILIES:
                self._loading = True  # the loss box changes with it: validate once, below
                try:
                    self._apply_family(FAMILIES[family])
                finally:
                    self._loading = False
        elif key in CONDITION_INPUTS:
            self._show_applying()
        self._revalidate()
        if commit:
            self._commit(key)

    def _commit(self, key: str) -> None:
        """Send a finished edit of a live field to the running trainer, once per new value."""
        if not self._running or not self._specs[key].live or self._config is None:
            return
        value = _dotted(self._config.model_dump(), key)
        if key in self._committed and self._committed[key] == value:
            return
        self._committed[key] = value
        self.live_changed.emit(key, value)

    def _apply_family(self, family: Family, loss: str | None = None) -> None:
        """Show ``family``'s fields under its titles and offer its losses; the loss becomes ``loss``, else
        stays if the family takes it, else the one last used with this family, else the family's default."""
        loss_editor = self._editors[LOSS_KEY]
        if loss_editor.value() in self._family.losses:
            self._family_loss[self._family.name] = loss_editor.value()
        current = loss if loss is not None else loss_editor.value()
        if current not in family.losses:
            current = self._family_loss.get(family.name, family.losses[0])
        loss_editor.offer(family.losses, current)
        self._family = family
        for key, spec in self._specs.items():
            title = family.title_of(key, spec.title)
            self._labels[key].setText(title)
            self._editors[key].setAccessibleName(title)
        self._show_applying()

    def _show_applying(self) -> None:
        """Show the fields that do something for the current values (``applies``), hide the rest."""
        for key in self._specs:
            form, cell = self._rows[key]
            form.setRowVisible(cell, self.applies(key))
        for group, keys in self._groups.values():
            group.setVisible(any(self.applies(key) for key in keys))
            group.refresh_header()

    def _gather(self, defaults_for: frozenset[str] = frozenset()) -> dict:
        """The editors' values as a config dict; the fields in ``defaults_for`` left out (so, defaults)."""
        data: dict = {}
        for key, spec in self._specs.items():
            if key in defaults_for:
                continue
            *parents, last = key.split(".")
            target = data
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = read_value(spec, self._editors[key])
        return data

    def _validate(self) -> RunConfig:
        config = self._validate_fields()
        problem = self._device_problem(config.train.device)
        if problem is not None:
            raise ConfigError.invalid([problem])
        return config

    def _validate_fields(self) -> RunConfig:
        try:
            return from_dict(self._gather(), source="form")
        except ConfigError:
            hidden = frozenset(key for key in self._specs if not self.applies(key))
            if not hidden:
                raise
            # a hidden field the person cannot see must not block the config (see the module docstring)
            return from_dict(self._gather(defaults_for=hidden), source="form")

    def _device_problem(self, device: str) -> ConfigProblem | None:
        """What this machine lacks for ``device`` (DeviceCombo.missing); its message names field and value."""
        missing = self._editors[DEVICE_KEY].missing(device) if DEVICE_KEY in self._editors else None
        return ConfigProblem(DEVICE_KEY, device, missing, "form", fields=(DEVICE_KEY,)) if missing else None

    @Slot()
    def _devices_listed(self) -> None:
        """A device loaded from a config before the machine was known may be missing here: say so now
        (only then: revalidating re-emits config_changed, which the preview answers with work)."""
        if self._config is None or self._device_problem(self._config.train.device) is not None:
            self._revalidate()

    def _revalidate(self) -> None:
        try:
            config = self._validate()
        except ConfigError as err:
            self._config, self._message, problems = None, str(err), err.entries
        else:
            self._config, self._message, problems = config, "", ()
        self.show_problems(problems)
        if self._validity != (self._config is not None, self._message):
            self._validity = (self._config is not None, self._message)
            self.validity_changed.emit(*self._validity)
        if self._config is not None:
            self.config_changed.emit(self._config)

    def show_problems(self, problems: Sequence[ConfigProblem]) -> None:
        """Mark the fields ``problems`` name (a ConfigError's entries) with their messages; problems about
        no field, or about a field the family hides, are listed above the form. Every edit calls this."""
        per_key: dict[str, list[str]] = {}
        loose: list[str] = []
        for problem in problems:
            named = [key for key in (problem.fields or (problem.key,)) if key in self._specs]
            for key in named:
                per_key.setdefault(key, []).append(problem.message)
            if not named or not all(self.applies(key) for key in named):
                loose.append(str(replace(problem, source="")))  # about a field not shown: say it here
        for key, editor in self._editors.items():
            mark_invalid(editor, self._errors[key], per_key.get(key, []))
        for group, keys in self._groups.values():
            if any(key in per_key for key in keys):
                group.set_open(True)  # a marked field must not sit folded out of sight
        summary = [f"Fix the marked fields: {', '.join(per_key)}"] if per_key else []
        self._summary.setText("\n".join(summary + loose))
        self._summary.setVisible(bool(summary or loose))


def _default_config() -> RunConfig:
    return load_preset(DEFAULT_PRESET) if DEFAULT_PRESET in preset_names() else RunConfig()
