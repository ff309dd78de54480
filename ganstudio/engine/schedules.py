"""Learning-rate schedules as factors of the configured rates, a pure function of the step count.

Stateless on purpose: no scheduler object keeps a count of its own, so a run resumed from a checkpoint
gets exactly the learning rates it would have had, from the step number alone, and a live change of
``optim.lr_g`` or ``optim.lr_d`` is scaled by the same factor from the next step on. "Exactly" holds for
the same horizon: with ``optim.schedule_steps`` unset the horizon is ``train.steps``, so resuming with a
larger step budget stretches the rest of a linear or cosine decay.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ganstudio.config import OptimConfig, TrainConfig


def _constant(step: int, horizon: int | None) -> float:
    return 1.0


def _linear(step: int, horizon: int) -> float:
    return max(0.0, 1.0 - step / horizon)


def _cosine(step: int, horizon: int) -> float:
    # Loshchilov & Hutter 2017 ("SGDR"), one cycle without restarts; held at 0 after the horizon
    return 0.5 * (1.0 + math.cos(math.pi * min(step, horizon) / horizon))


def _step(step: int, horizon: int) -> float:
    return 0.5 ** (step // horizon)


LR_SCHEDULES: dict[str, Callable[[int, int], float]] = {  # keys are catalog.SCHEDULE_CHOICES
    "constant": _constant,   # 1 throughout
    "linear": _linear,       # 1 − step / horizon, down to 0 at the horizon
    "cosine": _cosine,       # ½(1 + cos(π·step / horizon)): slow start and end, fast middle
    "step": _step,           # halved every horizon steps
}


def lr_factor(schedule: str, step: int, horizon: int | None) -> float:
    """The factor the configured learning rates are multiplied by for the update after ``step`` steps
    (so the first update, at step 0, uses the full rate). ``horizon`` is the decay length of "linear"
    and "cosine" and the period of "step"; "constant" needs none.
    """
    try:
        factor = LR_SCHEDULES[schedule]
    except KeyError:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}") from None
    if schedule != "constant" and horizon is None:
        raise ValueError(f"schedule {schedule!r} needs a horizon: set optim.schedule_steps or train.steps")
    return factor(step, horizon)


def schedule_horizon(optim_cfg: OptimConfig, train_cfg: TrainConfig) -> int | None:
    """The schedule's length: ``optim.schedule_steps``, else the step budget ``train.steps`` (None when
    neither is set, which the config allows only for the constant schedule)."""
    return optim_cfg.schedule_steps or train_cfg.steps
