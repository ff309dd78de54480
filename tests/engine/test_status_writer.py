"""The training loop writes status.json (running, paused, finished, stopped, failed) and log.jsonl, and
obeys commands.jsonl: the run folder is the truth about a run."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ganstudio.engine import Control, StepStats, Trainer, TrainingError
from ganstudio.engine.commands import COMMANDS_FILE, CommandError, CommandReader, send_command
from ganstudio.engine.status import LOG_FILE, read_status
from ganstudio.fileio import WriteError


def _status(folder):
    status, note = read_status(folder)
    assert note is None
    return status


def _log(folder) -> list[dict]:
    path = folder / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_run_is_running_while_it_trains_then_finished(tmp_path, tiny_config):
    seen = []

    def look(event):
        if isinstance(event, StepStats) and event.step == 2:
            seen.append(_status(tmp_path / "run"))

    trainer = Trainer(tiny_config.updated("train.steps", 4), tmp_path / "run")
    trainer.run(callbacks=[look])
    trainer.close()
    assert seen[0].state == "running" and seen[0].pid > 0 and seen[0].host and seen[0].device == "cpu"
    final = _status(tmp_path / "run")
    assert (final.state, final.step, final.message) == ("finished", 4, "reached train.steps")
    assert final.started == seen[0].started and final.updated >= seen[0].updated and final.elapsed > 0


def test_a_stopped_run_says_stopped(tmp_path, tiny_config):
    control = Control()

    def stop_at_3(event):
        if isinstance(event, StepStats) and event.step == 3:
            control.stop()

    trainer = Trainer(tiny_config, tmp_path / "run")
    trainer.run(control, [stop_at_3])
    trainer.close()
    status = _status(tmp_path / "run")
    assert (status.state, status.step) == ("stopped", 3) and "checkpoint saved" in status.message


def test_a_failing_run_says_failed_with_the_reason_in_status_and_log(tmp_path, tiny_config):
    def break_at_2(event):
        if isinstance(event, StepStats) and event.step == 2:
            raise RuntimeError("the cable came loose")

    trainer = Trainer(tiny_config, tmp_path / "run")
    with pytest.raises(TrainingError):
        trainer.run(callbacks=[break_at_2])
    trainer.close()
    status = _status(tmp_path / "run")
    assert status.state == "failed" and "the cable came loose" in status.message
    assert any(row["kind"] == "error" and "the cable came loose" in row["message"] for row in _log(tmp_path / "run"))


def test_a_full_disk_for_status_is_one_warning_and_training_goes_on(tmp_path, tiny_config, monkeypatch):
    from ganstudio.engine import status_writer

    def full(folder, status):
        raise WriteError(28, "No space left on device", str(folder / "status.json"))

    monkeypatch.setattr(status_writer, "write_status", full)
    warnings = []
    trainer = Trainer(tiny_config.updated("train.steps", 3), tmp_path / "run")
    finished = trainer.run(callbacks=[lambda e: warnings.append(e) if type(e).__name__ == "TrainWarning" else None])
    trainer.close()
    assert finished.reason == "steps" and finished.step == 3
    disk = [w for w in warnings if "status.json" in w.message]
    assert len(disk) == 1 and disk[0].kind == "disk"


def _train_in_thread(trainer, control, finished: list):
    def target():
        try:
            finished.append(trainer.run(control))
        finally:
            trainer.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _wait(condition, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"no {what} within {timeout} s"
        time.sleep(0.02)


def test_the_command_file_pauses_steps_and_stops_a_run(tmp_path, tiny_config):
    run = tmp_path / "run"
    trainer, control, finished = Trainer(tiny_config, run), Control(), []
    thread = _train_in_thread(trainer, control, finished)
    try:
        _wait(lambda: (run / "status.json").exists(), "status")
        send_command(run, "pause")
        _wait(lambda: _status(run).state == "paused", "paused status")
        paused_at = _status(run).step
        send_command(run, "step")
        _wait(lambda: any(e.kind == "step" for e in trainer.run_dir.read_events()), "single step event")
        send_command(run, "set", key="optim.lr_g", value=1e-4)
        _wait(lambda: any(e.kind == "changed" for e in trainer.run_dir.read_events()), "live change")
        assert trainer.config.optim.lr_g == 1e-4 and control.paused
        send_command(run, "stop")
        thread.join(30)
        assert not thread.is_alive()
    finally:
        control.stop()
        thread.join(30)
    status = _status(run)
    assert finished[0].reason == "stopped" and status.state == "stopped"
    assert status.step == paused_at + 1  # paused, one step, stopped: nothing ran in between


def test_an_unknown_or_malformed_command_is_a_warning_in_the_log_and_ignored(tmp_path, tiny_config):
    run = tmp_path / "run"
    trainer, control, finished = Trainer(tiny_config, run), Control(), []
    thread = _train_in_thread(trainer, control, finished)
    try:
        _wait(lambda: (run / "status.json").exists(), "status")
        with (run / COMMANDS_FILE).open("a") as f:
            f.write(json.dumps({"command": "jump", "sent": time.time()}) + "\n")
            f.write("{not json\n")
            f.write(json.dumps({"command": "set", "key": "train.batch_size", "value": 4, "sent": time.time()}) + "\n")
        _wait(lambda: len([r for r in _log(run) if r["kind"] in ("command", "config")]) >= 3, "three warnings")
        assert _status(run).state == "running"  # ignored: it trains on
        send_command(run, "stop")
        thread.join(30)
    finally:
        control.stop()
        thread.join(30)
    messages = [r["message"] for r in _log(run)]
    assert any("unknown command 'jump'" in m for m in messages)
    assert any("not a JSON command" in m for m in messages)
    assert any("train.batch_size cannot change" in m for m in messages)
    assert trainer.config.train.batch_size == tiny_config.train.batch_size
    assert finished[0].reason == "stopped"


def test_commands_sent_to_an_earlier_writer_are_not_replayed(tmp_path):
    (tmp_path / COMMANDS_FILE).write_text(json.dumps({"command": "stop", "sent": 1.0}) + "\n")
    control = Control()
    reader = CommandReader(tmp_path, since=time.time() - 1)
    assert reader.poll(control) == [] and not control.stopped
    send_command(tmp_path, "pause")
    assert reader.poll(control, force=True) == [] and control.paused and not control.stopped


def test_a_torn_command_line_waits_for_the_rest(tmp_path):
    control = Control()
    reader = CommandReader(tmp_path, since=0)
    reader.poll(control, force=True)
    with (tmp_path / COMMANDS_FILE).open("a") as f:
        f.write('{"command": "pau')
    assert reader.poll(control, force=True) == [] and not control.paused
    with (tmp_path / COMMANDS_FILE).open("a") as f:
        f.write('se", "sent": 5}\n')
    assert reader.poll(control, force=True) == [] and control.paused


def test_send_command_refuses_what_the_engine_would_not_know():
    with pytest.raises(CommandError, match="unknown command"):
        send_command("/nonexistent", "jump")
    with pytest.raises(CommandError, match="key"):
        send_command("/nonexistent", "set", value=3)



def test_a_command_sent_while_the_run_starts_up_is_obeyed(tmp_path, tiny_config):
    """Sent after the writer took the lock but before its loop began (the data loading): not history."""
    from ganstudio.engine.lock import RunLock

    run = tmp_path / "run"
    with RunLock(run):  # as `ganstudio train` and the studio's worker do, before building the Trainer
        send_command(run, "stop")
        trainer = Trainer(tiny_config.updated("train.steps", 3), run)
        finished = trainer.run()
        trainer.close()
    assert finished.reason == "stopped" and finished.step == 0
