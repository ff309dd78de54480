"""A headless `ganstudio train` steered through its command file (`ganstudio control`): paused, stepped,
changed and stopped from another process, with status.json and events.jsonl saying what happened."""

from __future__ import annotations

import json

from processes import TINY

from ganstudio.cli import main
from ganstudio.engine.rundir import RunDir
from ganstudio.engine.status import effective_state, read_status


def _state(run):
    status, _ = read_status(run)
    return status.state if status else None


def _kinds(run) -> list[str]:
    return [event.kind for event in RunDir(run).read_events()]


def test_ganstudio_control_pauses_steps_and_stops_a_headless_run(train, tmp_path, capsys):
    run = tmp_path / "run"
    job = train("--run-dir", str(run), "--steps", "100000", *TINY)
    job.wait_until(lambda: _state(run) == "running", "a running status")
    assert main(["control", str(run), "pause"]) == 0
    job.wait_until(lambda: _state(run) == "paused", "the paused status")
    status, _ = read_status(run)
    assert status.pid == job.pid and effective_state(run, status) == "paused"

    assert main(["control", str(run), "step-d"]) == 0
    job.wait_until(lambda: "step_d" in _kinds(run), "a D step event")
    assert main(["control", str(run), "set", "optim.lr_d=5e-5"]) == 0
    job.wait_until(lambda: "changed" in _kinds(run), "the live change")
    assert _state(run) == "paused"  # stepping and changing did not resume it

    assert main(["control", str(run), "stop"]) == 0
    assert job.finish() == 0, job.stderr()
    status, _ = read_status(run)
    assert status.state == "stopped" and effective_state(run, status) == "stopped"
    kinds = _kinds(run)
    assert kinds.index("paused") < kinds.index("step_d") < kinds.index("changed") < kinds.index("stopped")
    assert 'lr_d = 5e-05' in (run / "config.toml").read_text()
    sent = [json.loads(line)["command"] for line in (run / "commands.jsonl").read_text().splitlines()]
    assert sent == ["pause", "step_d", "set", "stop"]
    assert "sent stop" in capsys.readouterr().out


def test_ganstudio_control_refuses_a_run_nobody_writes_and_a_field_that_is_not_live(trained_run, capsys):
    assert main(["control", str(trained_run), "pause"]) == 1
    assert "nobody is writing" in capsys.readouterr().err
    assert main(["control", str(trained_run), "set", "train.batch_size=4"]) == 2
    assert "cannot change while a run is going" in capsys.readouterr().err
    assert main(["control", str(trained_run), "dance"]) == 1
    assert "unknown command 'dance'" in capsys.readouterr().err
    assert not (trained_run / "commands.jsonl").exists()
