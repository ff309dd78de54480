"""Learning-rate factors at the start, middle and end of each schedule, and where the horizon comes from."""

from __future__ import annotations

import pytest

from ganstudio.catalog import SCHEDULE_CHOICES
from ganstudio.config import OptimConfig, TrainConfig
from ganstudio.engine.schedules import LR_SCHEDULES, lr_factor, schedule_horizon


def test_schedules_are_the_config_choices():
    assert list(LR_SCHEDULES) == list(SCHEDULE_CHOICES)


@pytest.mark.parametrize("schedule, expected", [
    # steps:       0,   50,   100,  150   (horizon 100)
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.5, 0.0, 0.0]),
    ("cosine", [1.0, 0.5, 0.0, 0.0]),
    ("step", [1.0, 1.0, 0.5, 0.5]),
])
def test_factor_at_start_middle_end_and_past_the_horizon(schedule, expected):
    assert [lr_factor(schedule, s, 100) for s in (0, 50, 100, 150)] == pytest.approx(expected, abs=1e-12)


def test_cosine_is_slow_at_the_ends_and_linear_is_not():
    assert lr_factor("cosine", 10, 100) == pytest.approx(0.5 * (1 + 0.9510565162951535))   # cos(π/10)
    assert lr_factor("cosine", 10, 100) > lr_factor("linear", 10, 100)
    assert lr_factor("cosine", 90, 100) < lr_factor("linear", 90, 100)


def test_step_halves_every_period():
    assert [lr_factor("step", s, 30) for s in (0, 29, 30, 59, 60, 95)] == [1, 1, 0.5, 0.5, 0.25, 0.125]


def test_constant_needs_no_horizon_and_the_others_say_what_to_set():
    assert lr_factor("constant", 10**9, None) == 1.0
    for schedule in ("linear", "cosine", "step"):
        with pytest.raises(ValueError, match="optim.schedule_steps or train.steps"):
            lr_factor(schedule, 0, None)
    with pytest.raises(ValueError, match="'exp'"):
        lr_factor("exp", 0, 100)


def test_horizon_is_the_schedule_steps_else_the_step_budget():
    assert schedule_horizon(OptimConfig(schedule_steps=300), TrainConfig(steps=1000)) == 300
    assert schedule_horizon(OptimConfig(), TrainConfig(steps=1000)) == 1000
    assert schedule_horizon(OptimConfig(), TrainConfig()) is None
