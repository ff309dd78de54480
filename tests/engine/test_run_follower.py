"""RunFollower: what is new in a run folder since the last look, read tolerantly and cheaply."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from ganstudio.engine.events import RunEvent
from ganstudio.engine.follow import RunFollower, load_samples, pair_up
from ganstudio.engine.rundir import RunDir
from ganstudio.engine.status import RunStatus, write_status


def _row(step: int) -> str:
    return json.dumps({"step": step, "loss_d": 1.0 / (step + 1), "loss_g": 0.5})


def test_rows_arrive_once_and_a_torn_last_line_waits_for_the_rest(tmp_path):
    follower = RunFollower(tmp_path)
    assert not follower.poll()  # an empty folder: nothing, and no exception
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(_row(1) + "\n" + _row(2) + "\n" + _row(3)[:9])
    update = follower.poll()
    assert [r["step"] for r in update.rows] == [1, 2] and not update.reset
    assert not follower.poll().rows  # nothing new
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(_row(3)[9:] + "\n" + "garbage\n")
    update = follower.poll()
    assert [r["step"] for r in update.rows] == [3]
    assert any("1 damaged rows skipped" in n for n in update.notes)


def test_a_rewritten_history_is_a_reset_with_every_row_and_event(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        run.append_metrics({"step": step, "loss_d": 1.0})
    run.append_event(RunEvent(2, "paused", "paused"))
    follower = RunFollower(tmp_path)
    first = follower.poll()
    assert [r["step"] for r in first.rows] == [1, 2, 3] and [e.kind for e in first.events] == ["paused"]
    run.rewind(1)  # a resume from step 1 moves the later rows and events aside (a new file)
    update = follower.poll()
    assert update.reset and [r["step"] for r in update.rows] == [1] and update.events == []
    run.append_metrics({"step": 2, "loss_d": 0.5})
    assert [r["step"] for r in follower.poll().rows] == [2]


def test_grids_are_returned_once_and_read_back_as_images(tmp_path):
    run = RunDir(tmp_path)
    run.create()
    images = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 1), dtype=np.uint8)
    run.write_grid(0, images, columns=3)
    follower = RunFollower(tmp_path)
    assert [g.step for g in follower.poll().grids] == [0]
    run.write_grid(5, images[::-1], columns=3)
    run.write_reconstructions(5, images[:4])
    grids = follower.poll().grids
    assert [(g.step, g.kind) for g in grids] == [(5, "samples"), (5, "reconstructions")]
    (grid, pairs), = pair_up(grids)
    samples = load_samples(grid, pairs)
    assert samples.step == 5 and samples.columns == 3 and samples.images.shape == (6, 8, 8, 1)
    assert np.array_equal(samples.images, images[::-1]) and samples.reconstructions.shape == (4, 8, 8, 1)
    assert not follower.poll().grids


def test_status_changes_and_a_garbage_status_is_a_note_once(tmp_path):
    follower = RunFollower(tmp_path)
    write_status(tmp_path, RunStatus.now("finished", step=9))
    update = follower.poll()
    assert update.status.step == 9 and update.state == "finished"
    assert follower.poll().status is None  # unchanged: not returned again
    (tmp_path / "status.json").write_text("{torn")
    update = follower.poll()
    assert any("status.json" in n for n in update.notes) and update.status is None
    (tmp_path / "status.json").write_text("{torn!")
    assert not any("status.json" in n for n in follower.poll().notes)  # said once


def test_a_running_status_without_a_writer_is_crashed(tmp_path):
    write_status(tmp_path, RunStatus.now("running", step=4))
    update = RunFollower(tmp_path).poll()
    assert update.status.state == "running" and update.state == "crashed"


def test_the_log_rows_arrive(tmp_path):
    with (tmp_path / "log.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "kind": "command", "message": "ignored unknown command"}) + "\n")
    assert [r["message"] for r in RunFollower(tmp_path).poll().log] == ["ignored unknown command"]


def test_following_status_and_commands_do_not_load_torch():
    code = ("import sys, ganstudio.engine.follow, ganstudio.engine.commands, ganstudio.engine.status\n"
            "from ganstudio.engine.follow import RunFollower\n"
            "RunFollower('.').poll()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_writer_that_finished_since_its_status_was_read_is_not_crashed(tmp_path):
    """The race of a reader: it read "running", then the writer wrote its end and let go of the lock."""
    from ganstudio.engine.status import effective_state

    stale = RunStatus.now("running", step=5)
    write_status(tmp_path, stale.updated_to(state="finished"))
    assert effective_state(tmp_path, stale) == "finished"
