"""Events at their exact step (events.jsonl) and single steps that leave metrics.jsonl whole."""

from __future__ import annotations

import math

from ganstudio.engine import Control, Progress, RunDir, Trainer, loop
from ganstudio.engine.events import RunEvent


def _drive(tiny_config, tmp_path, monkeypatch):
    """Pause at step 3 (no row is due there: log_every is 1000), change lr_g, take a D and a G step,
    resume, stop at step 6. Returns the run folder and the events seen live."""
    monkeypatch.setattr(loop, "PROGRESS_INTERVAL", 0.0)  # a Progress event every step, to act on
    config = tiny_config.with_changes({"train.log_every": 1000, "train.sample_every": 1000,
                                       "train.checkpoint_every": 1000, "train.steps": 50})
    control, run = Control(), RunDir(tmp_path / "run")
    seen: list = []

    def drive(event):
        seen.append(event)
        if isinstance(event, Progress) and event.step == 3 and not control.paused and not _kinds(seen):
            control.pause()
        elif isinstance(event, RunEvent) and event.kind == "paused":
            control.set_hparam("optim.lr_g", 0.0005)
            control.step_once("d")
            control.step_once("g")
        elif isinstance(event, RunEvent) and event.kind == "step_g":
            control.resume()
        elif isinstance(event, Progress) and event.step == 6:
            control.stop()

    Trainer(config, run).run(control, [drive])
    return run, [e for e in seen if isinstance(e, RunEvent)]


def _kinds(seen):
    return [e.kind for e in seen if isinstance(e, RunEvent)]


def test_events_carry_their_exact_step_and_are_written_to_the_run_folder(tiny_config, tmp_path, monkeypatch):
    run, live = _drive(tiny_config, tmp_path, monkeypatch)
    expected = [(3, "paused"), (3, "changed"), (3, "step_d"), (4, "step_g"), (4, "resumed"), (6, "stopped")]
    assert [(e.step, e.kind) for e in live] == expected
    assert run.read_events() == live  # reopened: the same events, at the same steps
    changed = live[1]
    assert changed.text == "lr_g → 0.0005"
    d_step, g_step = live[2], live[3]
    assert set(d_step.figures) >= {"loss_d", "d_real", "d_fake"} and "loss_g" not in d_step.figures
    assert set(g_step.figures) >= {"loss_g"} and "loss_d" not in g_step.figures
    assert all(math.isfinite(v) for v in (*d_step.figures.values(), *g_step.figures.values()))


def test_single_d_and_g_steps_leave_no_gap_rows_or_repeated_steps(tiny_config, tmp_path, monkeypatch):
    run, _ = _drive(tiny_config, tmp_path, monkeypatch)
    rows = run.read_metrics()
    steps = [r["step"] for r in rows if "eval_samples" not in r]
    assert steps == sorted(set(steps)), steps  # no step twice (a D step used to repeat step 3)
    for row in rows:  # every row has both networks' figures (a G step used to leave D's empty)
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert row.get(key) is not None and math.isfinite(row[key]), (row["step"], key)


def test_a_single_full_step_is_a_row_and_a_point(tiny_config, tmp_path):
    control = Control()
    control.pause()
    control.step_once("both")
    seen = []

    def stop_after_the_step(event):
        seen.append(event)
        if isinstance(event, RunEvent) and event.kind == "step":
            control.stop()

    run = RunDir(tmp_path / "run")
    Trainer(tiny_config.with_changes({"train.log_every": 1000}), run).run(control, [stop_after_the_step])
    events = run.read_events()
    assert [(e.step, e.kind) for e in events] == [(0, "paused"), (1, "step"), (1, "stopped")]
    assert {"loss_d", "loss_g"} <= set(events[1].figures)
    assert [r["step"] for r in run.read_metrics()] == [1]


def test_events_reader_skips_a_torn_last_line_and_damaged_rows(tmp_path):
    run = RunDir(tmp_path)
    run.create()
    run.append_event(RunEvent(5, "paused", "paused"))
    run.append_event(RunEvent(9, "step_d", "D step", {"loss_d": 0.5, "d_real": float("nan")}))
    with open(run.events_path, "ab") as f:
        f.write(b'{"step": "x", "kind": "paused", "text": "p"}\n\xff\xfe\n{"step": 12, "kind": "resu')
    events = run.read_events()
    assert [(e.step, e.kind) for e in events] == [(5, "paused"), (9, "step_d")]
    assert events[1].figures["loss_d"] == 0.5 and math.isnan(events[1].figures["d_real"])


def test_resuming_moves_events_after_the_checkpoint_aside(tmp_path):
    run = RunDir(tmp_path)
    run.create()
    for step in (5, 20):
        run.append_event(RunEvent(step, "paused", "paused"))
    moved = run.rewind(10)
    assert moved is not None and moved.events == 1
    assert [e.step for e in run.read_events()] == [5]
    assert "1 events to events.rewound-1.jsonl" in str(moved)
