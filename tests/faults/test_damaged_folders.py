"""Damaged run folders: a bad row in metrics.jsonl or samples/index.jsonl is skipped and counted, and the
rest of the run opens and continues; a folder that cannot be read at all gets a dialog naming it and the
studio's window stays as it was."""

from __future__ import annotations

import shutil

import pytest

from ganstudio.cli import main
from ganstudio.engine.rundir import RunDir, read_sample_index

# each damages one line of metrics.jsonl in its own way; every one was an uncaught exception before
DAMAGED_ROWS = [
    b'{"loss_d": 1.0}\n',                  # no step
    b'{"step": "61", "loss_d": 1.0}\n',    # step as text
    b"[1, 2, 3]\n",                        # not a table
    b'{"step": 3, "loss_d": 1.0, \xff\xfe}\n',  # not UTF-8
    b'{"step": true}\n',                   # a bool is not a step
    b'{"step": -4}\n',                     # nor is a negative number
    b'{"step": 2, "loss_d": "high"}\n',    # a figure that is not a number
    b"null\n",
    b"\xc3\x28\n",                          # invalid UTF-8 alone
]


def _damage(run: RunDir) -> int:
    """Insert every damaged row between the good ones (and a torn last line); returns how many."""
    lines = run.metrics_path.read_bytes().splitlines(keepends=True)
    mixed = [line for pair in zip(lines, DAMAGED_ROWS) for line in pair] + lines[len(DAMAGED_ROWS):]
    run.metrics_path.write_bytes(b"".join(mixed) + b'{"step": 99, "loss')
    return min(len(lines), len(DAMAGED_ROWS))


@pytest.fixture
def run(trained_run, tmp_path):
    """A copy of the session's 6-step run, to damage."""
    return RunDir(shutil.copytree(trained_run, tmp_path / "run"))


def test_damaged_metrics_rows_are_skipped_and_counted(run):
    """Nothing lost, a clear count: every good row is read, each damaged one is skipped and counted, and a
    torn last line (a writer mid-write) is ignored without being counted as damage."""
    good = run.read_metrics()
    damaged = _damage(run)
    rows = run.read_metrics()
    assert rows == good and rows.skipped == damaged == 6


def test_cli_resume_of_a_damaged_run_continues_and_says_so(run, capsys):
    """Nothing deleted, a clear line: `train --resume` on a folder with damaged rows continues, prints how
    many were skipped, and leaves those lines in the file (they are the person's to look at)."""
    damaged = _damage(run)
    before = run.metrics_path.read_bytes()
    assert main(["train", "--resume", str(run.path), "--steps", "8", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"{damaged} damaged rows skipped" in err and str(run.metrics_path) in err
    rows = run.read_metrics()
    assert [r["step"] for r in rows] == list(range(1, 9))
    text = run.metrics_path.read_bytes()
    assert all(line in text for line in DAMAGED_ROWS[:damaged])
    assert text.startswith(before.split(b"\n", 1)[0])


@pytest.mark.parametrize("line", [b"[1, 2]\n", b"\xff\xfe\n", b'{"step": 2}\n', b'{"step": 2, "file": 5, "kind": '
                                  b'"samples", "rows": 1, "columns": 1, "image_size": [28, 28], "channels": 1, '
                                  b'"count": 1}\n', b'{"step": 2, "file": ".", "kind": "samples", "rows": 4, '
                                  b'"columns": 4, "image_size": 28, "channels": 1, "count": 16}\n', b"7\n",
                                  b'{"step": 2, "file": "step_000002.png", "kind": "samples", "rows": "x", '
                                  b'"columns": 4, "image_size": [28, 28], "channels": 1, "count": 16}\n'])
def test_a_damaged_sample_index_row_is_skipped_and_the_grids_still_show(run, line):
    """Nothing lost: a damaged samples/index.jsonl row (not a table, not UTF-8, missing or wrongly typed
    fields) is skipped; every grid still appears, its layout read back from the PNG where the row was bad."""
    expected = [(r.step, r.kind) for r in run.sample_index()]
    index = run.samples_dir / "index.jsonl"
    index.write_bytes(line + index.read_bytes() + line)
    assert [(r.step, r.kind) for r in read_sample_index(run.samples_dir)] == expected


def test_stale_temp_files_of_this_run_are_removed_at_start(run, tmp_path, capsys):
    """Nothing else deleted: temp files a kill left in this run folder (ganstudio's `.NAME.XXXXXXXX.tmp`)
    are removed when the run continues, and said so; look-alikes, other folders' temp files and files in
    sub-folders stay."""
    stale = [run.checkpoints_dir / ".last.pt.k3j2_h1g.tmp", run.samples_dir / ".step_000008.png.abcdefgh.tmp",
             run.path / ".config.toml.0a1b2c3d.tmp"]
    kept = [run.path / "notes.tmp", run.path / ".x.tmp", run.checkpoints_dir / "last.pt.abcdefgh.tmp",
            tmp_path / ".last.pt.zzzzzzzz.tmp", run.samples_dir / "mine" / ".step_000001.png.abcdefgh.tmp"]
    for path in stale + kept:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 100)
    assert main(["train", "--resume", str(run.path), "--steps", "7", "--quiet"]) == 0
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert "removed 3 temp file(s)" in capsys.readouterr().err


# --- the studio -----------------------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path, tiny_config):
    from PySide6.QtCore import QSettings

    from ganstudio.gui.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                     runs_root=tmp_path / "runs")
    qtbot.addWidget(win)
    win.form.set_config(tiny_config)
    yield win
    win.run.shutdown()


def test_the_studio_opens_a_run_with_damaged_rows(window, run):
    """The rest of the run opens: the plots show every good row, and the log counts the damaged ones."""
    good = len(run.read_metrics())
    damaged = _damage(run)
    window.run.open_run(run.path)
    assert window.run.run_dir == run.path
    assert window.plots.point_count() == good
    assert f"{damaged} damaged rows skipped" in window.log.toPlainText()
    assert not _error_shown(window)


def _error_shown(window) -> bool:
    from PySide6.QtWidgets import QMessageBox

    return any(box.isVisible() for box in window.findChildren(QMessageBox, "error_box"))


UNREADABLE = {
    "no config.toml": lambda run: run.config_path.unlink(),
    "config.toml: a section given a value": lambda run: run.config_path.write_text("train = 5\n"),
    "config.toml: not UTF-8": lambda run: run.config_path.write_bytes(b"name = '\xff'\n"),
    "config.toml: not TOML": lambda run: run.config_path.write_text("[train\n"),
    "config.toml: a folder": lambda run: (run.config_path.unlink(), run.config_path.mkdir()),
    "config.toml: a bad value": lambda run: run.config_path.write_text("[train]\nbatch_size = true\n"),
    "metrics.jsonl: a folder": lambda run: (run.metrics_path.unlink(), run.metrics_path.mkdir()),
    "config.toml: a field of a newer version": lambda run: run.config_path.write_text(
        run.config_path.read_text().replace("[train]\n", "[train]\nnew_knob = 3\n", 1)),
}


@pytest.mark.parametrize("damage", list(UNREADABLE))
def test_an_unreadable_run_folder_leaves_the_window_as_it_was(window, run, trained_run, tmp_path, damage):
    """No half-switched window: opening a folder that cannot be read shows a dialog naming the folder and
    leaves the open run, its settings and its plots exactly as they were."""
    first = RunDir(shutil.copytree(trained_run, tmp_path / "first"))
    window.run.open_run(first.path)
    config, points = window.form.config(), window.plots.point_count()
    UNREADABLE[damage](run)
    window.run.open_run(run.path)
    assert _error_shown(window)
    assert window.run.run_dir == first.path
    assert window.form.config() == config and window.plots.point_count() == points
    assert str(run.path) in window.log.toPlainText()


@pytest.mark.parametrize(("damage", "title", "said"), [
    ("no config.toml", "Not a run folder", "has no config.toml (yet)"),
    ("config.toml: a field of a newer version", "Cannot read the run's settings",
     "train.new_knob: unknown field"),
    ("config.toml: a bad value", "Cannot read the run's settings", "train.batch_size"),
])
def test_the_dialog_says_why_the_settings_cannot_be_read(window, run, damage, title, said):
    """Not "Not a run folder" for a folder that is one: a config.toml this version cannot read says so, and
    an unknown field (a newer ganstudio's) says which version can open it."""
    from PySide6.QtWidgets import QMessageBox

    UNREADABLE[damage](run)
    window.run.open_run(run.path)
    box = next(box for box in window.findChildren(QMessageBox, "error_box") if box.isVisible())
    assert box.windowTitle() == title and said in box.text()
    assert ("A newer ganstudio may have written it" in box.text()) == ("newer" in damage)
