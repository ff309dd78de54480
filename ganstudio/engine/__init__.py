"""The training engine: pure Python and torch, no Qt.

Importing this package loads nothing heavy: each name below is imported from its module on first use
(PEP 562), so the studio can use ``Control``, ``RunDir`` and the events on its GUI thread before torch
has loaded. ``Trainer`` and the rest bring torch in when first touched.
"""

from __future__ import annotations

import importlib

_WHERE = {  # name -> the module that defines it
    "CheckpointError": "checkpoint",
    "Control": "control",
    "RunDir": "rundir",
    "Trainer": "trainer", "resolve_device": "trainer",
    "TrainingError": "errors",
    **{name: "events" for name in ("CheckpointSaved", "EvalResult", "EvalStarted", "Event", "Progress",
                                   "RunFinished", "Samples", "StepStats", "TrainWarning")},
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value
