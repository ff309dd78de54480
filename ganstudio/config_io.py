"""The config's edges: its error type, ``--set`` overrides and dotted keys, and the bundled presets.

``config.py`` holds the fields; this module turns what people write (TOML files, ``--set KEY=VALUE``,
``{"optim.lr_g": 1e-4}``) into input for them, and pydantic's errors back into :class:`ConfigError`
entries that name the field, the value, what is allowed and where the value came from. It knows the
schema only as a pydantic model class passed in, so it never imports ``config.py``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ganstudio.resources import resource

UNKNOWN_FIELD = "unknown field"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config: for a person (``str``) and for a form (``key``, ``fields``)."""

    key: str | None              # the dotted field; None = the config as a whole (e.g. an unreadable file)
    value: Any                   # what was given for ``key`` (None when nothing was)
    message: str                 # what is wrong, then what is allowed where that is known
    source: str                  # where the value came from: a TOML file, "--set", "form", "code", ...
    fields: tuple[str, ...] = ()  # a cross-field rule's fields, ``key`` first; its message names them all
    item: int | None = None      # the list item at fault (``eval.metrics.1``)

    def __str__(self) -> str:
        where = f" (from {self.source})" if self.source else ""
        if self.key is None or self.fields:  # the message says which fields and values itself
            return self.message + where
        key = self.key if self.item is None else f"{self.key}.{self.item}"
        if self.message == UNKNOWN_FIELD:
            return f"{key}: {UNKNOWN_FIELD}{where}"
        return f"{key} = {self.value!r}: {self.message}{where}"


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config; ``entries`` for code."""

    def __init__(self, message: str, entries: Sequence[ConfigProblem] = ()) -> None:
        super().__init__(message)
        self.entries: tuple[ConfigProblem, ...] = tuple(entries) or (ConfigProblem(None, None, message, ""),)

    @classmethod
    def invalid(cls, entries: Sequence[ConfigProblem]) -> ConfigError:
        """The error for a config that does not validate: one line per entry, as the CLI prints it."""
        return cls("invalid config:\n  " + "\n  ".join(map(str, entries)), entries)


class RuleError(ValueError):
    """A cross-field rule broken, raised inside a model validator; ``fields`` are the ones it is about."""

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


# --- overrides and dotted keys ----------------------------------------------------------------------
def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr_g=1e-4"`` -> ``("optim.lr_g", 0.0001)``; values are read as TOML, else as text."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr_g=1e-4",
                          [ConfigProblem(None, item, "expected KEY=VALUE, e.g. optim.lr_g=1e-4", "--set")])
    text = text.strip()
    if text.lower() in ("none", "null", ""):
        return key, None
    try:
        return key, tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return key, text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """The CLI's ``--set KEY=VALUE`` strings as ``{dotted key: value}``; a later item wins over an earlier."""
    return dict(parse_override(item) for item in items)


def apply_changes(model: type[BaseModel], data: dict, changes: Mapping[str, Any], source: str,
                  data_source: str = "config") -> dict:
    """``data`` with each dotted key of ``changes`` set (None removes it, so the default applies).
    ``data_source`` names where ``data`` came from (a TOML file), for errors about its shape."""
    check_shape(model, data, data_source)
    for key, value in changes.items():
        if field_info(model, key) is None:
            raise ConfigError(f"unknown field {key!r} (from {source}); fields: {', '.join(field_keys(model))}",
                              [ConfigProblem(key, value, UNKNOWN_FIELD, source)])
        set_dotted(data, key, value)
    return data


def check_shape(model: type[BaseModel], data: Any, source: str) -> None:
    """A config's sections must be tables (``[train]``), not values (``train = 5``): a ConfigError naming
    the section and the file. Field values are validation's job; this only keeps ``--set`` working."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config is a table of sections, not {type(data).__name__}")
    for name, info in model.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel) and name in data \
                and not isinstance(data[name], dict):
            message = (f"[{name}] is a section of fields (e.g. [{name}] then one 'field = value' per line), "
                       f"not a single value")
            raise ConfigError(f"invalid config:\n  {name} = {data[name]!r}: {message} (from {source})",
                              [ConfigProblem(name, data[name], message, source)])


def set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):  # e.g. --set train=5 then --set train.steps=10
            raise ConfigError(f"cannot set {key}: {part} holds {data!r}, not a section of fields",
                              [ConfigProblem(key, value, f"{part} is not a section of fields", "--set")])
    if value is None:
        data.pop(last, None)
    else:
        data[last] = value


def _get_dotted(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def field_keys(model: type[BaseModel]) -> list[str]:
    """Every dotted field of ``model``: ``name``, ``data.source``, ... (one level of sections)."""
    return [f"{name}.{sub}" if sub else name for name, sub in _walk_fields(model)]


def _walk_fields(model: type[BaseModel]) -> Iterator[tuple[str, str | None]]:
    for name, info in model.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for sub in section.model_fields:
                yield name, sub
        else:
            yield name, None


def field_info(model: type[BaseModel] | None, key: str):
    """The pydantic FieldInfo of the dotted field ``key``, or None when there is no such field."""
    info = None
    for part in key.split("."):
        info = model.model_fields.get(part) if model else None
        if info is None:
            return None
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return info


def allowed(model: type[BaseModel], key: str) -> str:
    """What a field accepts, in words: its choices or its bounds."""
    info = field_info(model, key)
    if info is None:
        return ""
    choices = getattr(info.annotation, "__args__", None)
    if choices and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in choices) and \
            getattr(info.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(repr(c) for c in choices)
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                parts.append(f"{sign} {getattr(meta, attr)}")
    return "allowed " + " and ".join(parts) if parts else ""


# --- validation errors -> entries -------------------------------------------------------------------
def validate(model: type[BaseModel], data: dict, *, source: str, changed: Collection[str] = (),
             changed_source: str = "--set"):
    """``model.model_validate(data)``; a failure becomes a ConfigError whose entries say the value came
    from ``changed_source`` for the keys in ``changed``, from ``source`` for the rest."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        origins = _Origins(source, frozenset(changed), changed_source)
        raise ConfigError.invalid([_problem(model, e, data, origins) for e in err.errors()]) from None


@dataclass(frozen=True)
class _Origins:
    source: str
    changed: frozenset[str]
    changed_source: str

    def of(self, *keys: str) -> str:
        """Where the value of ``keys`` came from: a key was changed when it or its section was
        (``--set "optim={lr_g=2}"`` changes ``optim.lr_g``)."""
        changed = any(key == c or key.startswith(c + ".") for key in keys for c in self.changed)
        return self.changed_source if changed else self.source


def _problem(model: type[BaseModel], error: dict, data: dict, origins: _Origins) -> ConfigProblem:
    names = [str(p) for p in error["loc"] if not isinstance(p, int)]
    item = next((p for p in error["loc"] if isinstance(p, int)), None)
    key = ".".join(names) or None
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, RuleError):  # a cross-field rule from a model validator: it names its fields
        return ConfigProblem(cause.fields[0], _get_dotted(data, cause.fields[0]), str(cause),
                             origins.of(*cause.fields), fields=cause.fields)
    if error["type"] == "value_error":  # a plain ValueError from a validator: its text is all we have
        msg = error["msg"].removeprefix("Value error, ")
        # the field at fault is the error's own: a --set value is blamed on --set even when the
        # validator's text does not spell the key out
        mentioned = [k for k in origins.changed if k in msg]
        if key is not None:
            return ConfigProblem(key, error.get("input"), msg, origins.of(key, *mentioned))
        return ConfigProblem(key, error.get("input"), msg, origins.of(*mentioned))
    if error["type"] == "extra_forbidden":
        return ConfigProblem(key, error.get("input"), UNKNOWN_FIELD, origins.of(key))
    msg, rule = error["msg"], allowed(model, key)
    message = msg + (f"; {rule}" if rule and rule not in msg else "")
    return ConfigProblem(key, error.get("input"), message, origins.of(key), item=item)


# --- presets ----------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    return sorted(p.stem for p in resource("presets").glob("*.toml"))


def preset_path(name: str) -> Path:
    path = resource("presets", f"{name}.toml")
    if not path.is_file():
        raise ConfigError(f"no preset named {name!r}; presets: {', '.join(preset_names())}")
    return path


def preset_description(name: str) -> str:
    """The first comment line of a preset file, which says what it is."""
    for line in preset_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def read_toml(path: Path) -> dict:
    """A config file's contents; a missing or unreadable file is a ConfigError naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
