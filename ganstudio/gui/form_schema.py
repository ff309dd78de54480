"""The form's view of the RunConfig schema: one FieldSpec per field, in schema order (no Qt here)."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ganstudio.catalog import FIELD_CHOICES, LOSS_CHOICES
from ganstudio.config import RunConfig, allowed

_INT32 = (-(2**31), 2**31 - 1)  # QSpinBox holds a C int; wider ranges (a 64-bit seed) get a text box
# train.device is a string to the config ("cuda:7" is a valid name on any machine), so its annotation alone
# would make a text box; the form offers this machine's devices instead, and still takes a name typed
DEVICE_KEY = "train.device"
DEVICE_ALWAYS = ("auto", "cpu")  # offered at once; the rest of the list needs torch (form_editors.DeviceCombo)


@dataclass(frozen=True)
class FieldSpec:
    """What the form needs to know about one config field."""

    key: str                       # dotted, e.g. "optim.lr_g"
    title: str
    description: str
    kind: str                      # "choice", "multi", "bool", "spin", "int", "float", "path", "device", "text"
    optional: bool                 # ``X | None``: an empty text box means None
    live: bool                     # may change while training
    choices: tuple = ()
    choice_tips: tuple[str, ...] = ()  # what each choice means (catalog.FIELD_CHOICES), "" where unknown
    bounds: tuple[int, int] | None = None

    @property
    def tooltip(self) -> str:
        lines = [self.description, allowed(self.key)]
        if self.optional:
            lines.append("Empty = none.")
        if self.live:
            lines.append("Can change while training.")
        return "\n".join(line for line in lines if line)


def _loss_does(flag: str):
    """A rule: the field counts when the chosen loss has ``flag`` (a ``catalog.LossChoice`` capability)."""
    return lambda value: bool(getattr(LOSS_CHOICES.get(value("loss.name")), flag, False))


def _resnet_body(value) -> bool:
    d_arch = value("model.d_arch")
    return "resnet" in (value("model.arch"), value("model.arch") if d_arch == "same" else d_arch)


# Fields that do something only under some other field's value: shown only then (their values are kept).
# The family's own rules (families.Family.hidden) come first; these add the ones within a family.
CONDITIONS: dict[str, Any] = {
    "loss.gp_weight": _loss_does("gradient_penalty"),
    "loss.clip_value": _loss_does("clip_weights"),
    "loss.label_smoothing": _loss_does("label_smoothing"),
    "model.attention": _resnet_body,
    "optim.beta1": lambda value: value("optim.name") == "adam",
    "optim.beta2": lambda value: value("optim.name") == "adam",
    "optim.momentum": lambda value: value("optim.name") in ("sgd", "rmsprop"),
    "optim.schedule_steps": lambda value: value("optim.schedule") != "constant",
    "data.path": lambda value: value("data.source") == "folder",
    "data.import_from": lambda value: str(value("data.source")).startswith("torchvision:"),
    "data.download": lambda value: str(value("data.source")).startswith("torchvision:"),
    "train.cuda_graphs": lambda value: bool(value("train.compile")),
    "train.sync_batch_norm": lambda value: _int(value("train.processes")) > 1,
}
# The fields those conditions read: an edit of one of them shows or hides others
CONDITION_INPUTS = frozenset({"loss.name", "model.arch", "model.d_arch", "optim.name", "optim.schedule",
                              "data.source", "train.compile", "train.processes"})


def _int(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 1


def condition_holds(key: str, value) -> bool:
    """Whether ``key`` does something given the other fields (``value(dotted key)`` reads one)."""
    rule = CONDITIONS.get(key)
    return rule is None or rule(value)


def form_sections() -> list[tuple[str | None, str, list[FieldSpec]]]:
    """``(section name, title, fields)`` in schema order; top-level fields come as section ``None``."""
    top: list[FieldSpec] = []
    sections = []
    for name, info in RunConfig.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            specs = [_spec(f"{name}.{key}", field) for key, field in sub.model_fields.items()]
            sections.append((name, info.title or name.capitalize(), specs))
        else:
            top.append(_spec(name, info))
    return [(None, "", top), *sections]


def _spec(key: str, info) -> FieldSpec:
    annotation, optional = _strip_none(info.annotation)
    live = bool((info.json_schema_extra or {}).get("live"))
    common = dict(key=key, title=info.title or key, description=info.description or "", optional=optional, live=live)
    if key == DEVICE_KEY:
        return FieldSpec(kind="device", choices=DEVICE_ALWAYS, **common)
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return FieldSpec(kind="choice", choices=choices, choice_tips=_tips(key, choices), **common)
    if typing.get_origin(annotation) is list and typing.get_origin(typing.get_args(annotation)[0]) is Literal:
        choices = typing.get_args(typing.get_args(annotation)[0])
        return FieldSpec(kind="multi", choices=choices, choice_tips=_tips(key, choices), **common)
    if annotation is bool:
        return FieldSpec(kind="bool", **common)
    if annotation is int:
        bounds = _int_bounds(info.metadata)
        fits = bounds is not None and _INT32[0] <= bounds[0] and bounds[1] <= _INT32[1]
        return FieldSpec(kind="spin" if fits and not optional else "int", bounds=bounds, **common)
    if annotation is float:
        return FieldSpec(kind="float", **common)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return FieldSpec(kind="path", **common)
    return FieldSpec(kind="text", **common)


def _tips(key: str, choices: tuple) -> tuple[str, ...]:
    table = FIELD_CHOICES.get(key, {})
    return tuple(table[c].description if c in table else "" for c in choices)


def _strip_none(annotation) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def _int_bounds(metadata) -> tuple[int, int] | None:
    """``(low, high)`` inclusive from pydantic's ge/gt/le/lt; None unless both sides are bounded."""
    found: dict[str, int] = {}
    for meta in metadata:
        for attr, side, shift in (("ge", "low", 0), ("gt", "low", 1), ("le", "high", 0), ("lt", "high", -1)):
            if getattr(meta, attr, None) is not None:
                found[side] = int(getattr(meta, attr)) + shift
    return (found["low"], found["high"]) if len(found) == 2 else None
