"""The queue dock: jobs added from the form's config and a sweep, a queue run by another process shown live
and its running job signalled, Run queue starting a detached runner, and the question on closing."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import ganstudio.gui.queue_dock as queue_dock
from ganstudio.gui.queue_dock import QueueDock
from ganstudio.gui.queue_sweep import SweepDialog
from ganstudio.queue import JobQueue, runner_alive

TINY = ["--set", "data.max_images=128", "--set", "model.z_dim=8", "--set", "model.g_width=8",
        "--set", "model.d_width=8", "--set", "train.batch_size=16", "--set", "train.log_every=1",
        "--set", "train.threads=1", "--device", "cpu"]


@pytest.fixture
def dock(qtbot, tmp_path, tiny_config):
    widget = QueueDock(tmp_path / "runs", lambda: tiny_config, poll_ms=100)
    qtbot.addWidget(widget)
    widget.resize(560, 320)
    return widget


def cells(dock: QueueDock, column: int) -> list[str]:
    return [dock.table.item(row, column).text() for row in range(dock.table.rowCount())]


def test_add_current_config_and_a_sweep_queue_checked_jobs(dock, qtbot, monkeypatch):
    dock.buttons["add"].click()
    job = dock.queue.read().jobs[0]
    assert job.name == "tiny" and job.args[0] == "--config"
    assert Path(job.args[1]).parent == dock.queue.root / "queue-configs" and Path(job.args[1]).exists()
    assert cells(dock, 2) == ["queued"] and dock.buttons["run"].isEnabled() and not dock.buttons["stop"].isEnabled()

    def fill(dialog: SweepDialog) -> int:
        dialog.fields[0].setCurrentText("optim.lr_g")
        dialog.values[0].setText("1e-4, 2e-4")
        dialog.fields[1].setCurrentText("train.batch_size")
        dialog.values[1].setText("8,16")
        assert dialog.preview.text().startswith("4 job(s): tiny lr_g=1e-4 batch_size=8")
        return 1

    monkeypatch.setattr(SweepDialog, "exec", fill)
    dock.buttons["sweep"].click()
    assert cells(dock, 1)[1:] == ["tiny lr_g=1e-4 batch_size=8", "tiny lr_g=1e-4 batch_size=16",
                                  "tiny lr_g=2e-4 batch_size=8", "tiny lr_g=2e-4 batch_size=16"]
    assert dock.queue.read().job(5).args[2:] == ["--set", "optim.lr_g=2e-4", "--set", "train.batch_size=16"]

    dock.table.selectRow(0)
    dock.buttons["remove"].click()
    assert [job.id for job in dock.queue.read().jobs] == [2, 3, 4, 5]


def test_a_sweep_with_a_bad_value_queues_nothing_and_says_which_field(dock, monkeypatch):
    complaints = []
    monkeypatch.setattr(queue_dock.QMessageBox, "warning", lambda parent, title, text: complaints.append(text))

    def fill(dialog: SweepDialog) -> int:
        dialog.fields[0].setCurrentText("optim.lr_g")
        dialog.values[0].setText("1e-4, -5")
        return 1

    monkeypatch.setattr(SweepDialog, "exec", fill)
    dock.buttons["sweep"].click()
    assert dock.queue.read().jobs == [] and "optim.lr_g" in complaints[0] and "Nothing was queued" in complaints[0]
    assert list((dock.queue.root / "queue-configs").iterdir()) == []  # its saved config is gone again
    dock.current_config = lambda: None  # the form has an invalid field
    dock.buttons["add"].click()
    assert dock.queue.read().jobs == [] and "has errors" in complaints[1]


def test_the_sweep_dialog_names_a_half_filled_row(qtbot, tiny_config):
    dialog = SweepDialog(tiny_config)
    qtbot.addWidget(dialog)
    dialog.values[0].setText("1e-4")
    dialog.values[1].setText("3")
    assert "need a field" in dialog.preview.text()
    dialog.fields[1].setCurrentText("train.nonsense")
    assert "not a config field" in dialog.preview.text()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()


@pytest.mark.slow
def test_a_queue_run_by_another_process_is_shown_followed_and_asked_about_on_close(dock, qtbot, monkeypatch,
                                                                                   tmp_path, artifacts_dir):
    queue = JobQueue(dock.queue.root)
    queue.add([*TINY, "--steps", "1000000", "--max-time", "60"], "long")
    queue.add([*TINY, "--steps", "2"], "next")
    followed = []
    dock.running_job_changed.connect(followed.append)
    with (tmp_path / "runner.txt").open("w") as out:  # as if started from a shell, or by an earlier window
        runner = subprocess.Popen([sys.executable, "-m", "ganstudio", "queue", "run", "--runs", str(queue.root)],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        qtbot.waitUntil(lambda: cells(dock, 2)[:1] not in ([], ["queued"], ["running · starting"],
                                                           ["running · step 0"]), timeout=60_000)
        assert cells(dock, 2)[0].startswith("running · step ") and cells(dock, 2)[1] == "queued"
        assert followed == [Path(queue.read().job(1).run_dir)]
        dock.table.selectRow(1)
        step = cells(dock, 2)[0]
        qtbot.waitUntil(lambda: cells(dock, 2)[0] != step, timeout=30_000)
        assert [i.row() for i in dock.table.selectionModel().selectedRows()] == [1]  # the update kept it
        assert dock.summary.text().startswith("Running") and dock.buttons["stop"].isEnabled()
        assert not dock.buttons["run"].isEnabled()
        dock.grab().save(str(artifacts_dir / "queue_dock.png"))

        answers = iter(["cancel", "keep"])
        monkeypatch.setattr(queue_dock, "ask_on_close", lambda parent, job: next(answers))
        assert dock.confirm_close() is False and dock.confirm_close() is True
        assert runner.poll() is None and runner_alive(queue.root)  # "let it go on": untouched

        monkeypatch.setattr(queue_dock, "ask_on_close", lambda parent, job: "stop")
        assert dock.confirm_close() is True
        assert runner.wait(timeout=60) == 128 + signal.SIGTERM
        dock.refresh()
        assert cells(dock, 2)[0].startswith("stopped · step ") and cells(dock, 2)[1] == "queued"
        assert followed[-1] is None and dock.buttons["run"].isEnabled()
    finally:
        runner.kill()
        runner.wait()
        for job in queue.read().jobs:
            if job.pid:
                os.kill(job.pid, signal.SIGKILL)


def test_run_queue_starts_a_runner_in_its_own_session_that_works_through_the_queue(dock, qtbot):
    JobQueue(dock.queue.root).add([*TINY, "--steps", "2"], "short")
    dock.refresh()
    dock.buttons["run"].click()
    runner = queue_dock._detached[-1]
    try:
        assert os.getsid(runner.pid) == runner.pid  # its own session: closing the window does not end it
        qtbot.waitUntil(lambda: cells(dock, 2) == ["finished · step 2"], timeout=60_000)
        assert runner.wait(timeout=30) == 0
        assert "job 1 (short): finished" in (dock.queue.logs / "runner.log").read_text()
        qtbot.waitUntil(lambda: not dock.buttons["stop"].isEnabled(), timeout=5_000)
    finally:
        runner.kill()
        runner.wait()
