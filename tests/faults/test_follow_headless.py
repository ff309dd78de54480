"""Following a run that a headless `ganstudio train` writes: rows, grids and status arrive while it trains,
and a writer killed with -9 shows as crashed."""

from __future__ import annotations

import time

from processes import TINY

from ganstudio.engine.commands import send_command
from ganstudio.engine.follow import RunFollower


def test_a_follower_sees_a_headless_run_grow_then_crash(train, tmp_path):
    run = tmp_path / "run"
    job = train("--run-dir", str(run), "--steps", "100000", "--set", "train.sample_every=5", *TINY)
    follower = RunFollower(run)
    rows, grids, states, polls_with_rows = [], [], [], 0

    def look() -> None:
        nonlocal polls_with_rows
        update = follower.poll()
        rows.extend(update.rows)
        grids.extend(update.grids)
        polls_with_rows += bool(update.rows)
        if update.state:
            states.append(update.state)

    job.wait_until(lambda: (look(), len(grids) >= 3 and polls_with_rows >= 3)[1], "rows and three grids")
    steps = [row["step"] for row in rows]
    assert steps == sorted(set(steps)), "each row once, in order"
    assert {g.step for g in grids} >= {0, 5, 10} and states[0] == "running"
    send_command(run, "pause")
    job.wait_until(lambda: (look(), states[-1] == "paused")[1], "the paused state")
    job.kill()  # kill -9: nothing is written, the kernel drops the lock
    end = time.monotonic() + 10
    while states[-1] != "crashed" and time.monotonic() < end:
        look()
        time.sleep(0.05)
    assert states[-1] == "crashed"
