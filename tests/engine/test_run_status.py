"""status.json: written atomically, read tolerantly, and "crashed" decided from the run's lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ganstudio.engine.lock import RunLock, writer_alive
from ganstudio.engine.status import STATUS_FILE, RunStatus, effective_state, read_status, write_status


def test_a_status_round_trips(tmp_path):
    status = RunStatus.now("running", step=12, elapsed=3.5, best={"fid": 24.3})
    write_status(tmp_path, status)
    assert read_status(tmp_path) == (status, None)
    assert status.pid == os.getpid() and status.host


def test_a_folder_without_a_status_has_none_and_no_note(tmp_path):
    assert read_status(tmp_path) == (None, None)
    assert effective_state(tmp_path, None) is None


@pytest.mark.parametrize("text", ["{", "[]", '{"state": "dancing"}', '{"state": "running", "step": "ten"}',
                                  '{"state": "running", "best": {"fid": "low"}}', "\x00\xff"])
def test_garbage_in_status_json_is_a_note_not_an_exception(tmp_path, text):
    (tmp_path / STATUS_FILE).write_bytes(text.encode("latin-1"))
    status, note = read_status(tmp_path)
    assert status is None and STATUS_FILE in note and "state is unknown" in note


def test_unknown_fields_from_a_newer_ganstudio_are_ignored(tmp_path):
    (tmp_path / STATUS_FILE).write_text(json.dumps({"state": "finished", "step": 5, "gpu": "H200"}))
    status, note = read_status(tmp_path)
    assert note is None and status.state == "finished" and status.step == 5


def test_a_live_state_without_a_lock_holder_is_crashed(tmp_path):
    running = RunStatus.now("running", step=3)
    write_status(tmp_path, running)
    assert effective_state(tmp_path, running) == "crashed"
    with RunLock(tmp_path):
        assert writer_alive(tmp_path)
        assert effective_state(tmp_path, running) == "running"
    assert effective_state(tmp_path, running.updated_to(state="finished")) == "finished"


def test_a_writer_killed_with_its_lock_held_shows_as_crashed(tmp_path):
    """kill -9: the kernel drops the flock, status.json still says running."""
    script = textwrap.dedent(f"""
        import sys, time
        from ganstudio.engine.lock import RunLock
        from ganstudio.engine.status import RunStatus, write_status
        lock = RunLock({str(tmp_path)!r}).acquire()
        write_status({str(tmp_path)!r}, RunStatus.now("running", step=7))
        print("ready", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        status, _ = read_status(tmp_path)
        assert effective_state(tmp_path, status) == "running"  # another process holds the lock
        child.kill()
        child.wait(10)
        assert effective_state(tmp_path, status) == "crashed"
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()


def test_a_probe_does_not_keep_a_writer_out(tmp_path):
    """writer_alive takes the flock for a moment; a writer arriving then waits for it instead of failing."""
    import fcntl

    (tmp_path / "run.lock").write_text("")
    fd = os.open(tmp_path / "run.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a probe caught mid-check
    import threading
    threading.Timer(0.05, os.close, (fd,)).start()
    with RunLock(tmp_path) as lock:
        assert lock.notes == [] or all("stale" in n for n in lock.notes)
