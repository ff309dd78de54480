"""Resuming from the studio: the form's changes reach Trainer.resume as a dict, never as --set text."""

from __future__ import annotations

import shutil

from ganstudio.engine import Control
from ganstudio.gui.run_control import _resume_changes
from ganstudio.gui.worker import TrainWorker


def test_only_changed_live_and_budget_fields_travel_with_their_values(tiny_config):
    new = tiny_config.with_changes({"train.steps": 12, "optim.lr_g": 1e-3, "data.path": "/elsewhere",
                                    "model.g_width": 16, "data.source": "folder"})
    assert _resume_changes(tiny_config, new) == {"train.steps": 12, "optim.lr_g": 1e-3}
    assert _resume_changes(tiny_config, tiny_config) == {}


def test_the_worker_resumes_with_a_dict_of_changes(qtbot, trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    worker = TrainWorker(Control(), run, None, {"train.steps": 8, "train.log_every": 2})
    rows = []
    worker.progressed.connect(rows.extend)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as finished:
        worker.run()
    assert finished.args[0].reason == "steps" and [r["step"] for r in rows] == [8]


def test_a_bad_change_fails_naming_the_form_as_its_source(qtbot, trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    worker = TrainWorker(Control(), run, None, {"optim.lr_g": -1.0})
    messages = []
    worker.failed.connect(messages.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.run()
    assert len(messages) == 1 and "optim.lr_g = -1.0" in messages[0] and "(from form)" in messages[0]
