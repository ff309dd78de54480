"""A full disk, for real: a child process whose file-size limit (RLIMIT_FSIZE) makes writes fail with EFBIG
the way a full disk fails them with ENOSPC (torch.save turning it into "unexpected pos …" included).

Promises: mid-run, a failed write is one warning naming the file and training goes on; the previous
checkpoint stays intact; no torn line, no half file, no temp file is left; at the end, or in a one-shot
command, the failure is one clear line naming the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganstudio.engine import checkpoint
from ganstudio.engine.rundir import RunDir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

# Ignoring SIGXFSZ is what makes a write past the limit fail with EFBIG instead of killing the process.
_PRELUDE = """
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, HARD = resource.getrlimit(resource.RLIMIT_FSIZE)
def disk_full_at(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, HARD))
"""

_TRAIN = _PRELUDE + """
from ganstudio.config import RunConfig
from ganstudio.engine import Control, Trainer
from ganstudio.engine.events import CheckpointSaved, TrainWarning

trainer, control, warnings = Trainer(RunConfig.model_validate_json(sys.argv[1]), sys.argv[2]), Control(), []
metrics = trainer.run_dir.metrics_path

def fill_the_disk(event):
    if isinstance(event, CheckpointSaved) and event.step == 5:
        disk_full_at(metrics.stat().st_size + 100)  # the next metrics row is cut short mid-write
    if isinstance(event, TrainWarning):
        warnings.append(event.message)
        if str(metrics) in event.message:
            disk_full_at(256)                        # now config.toml fails too: a live change writes it
            control.set_hparam("optim.lr_g", 1e-4)

error = None
try:
    trainer.run(control, [fill_the_disk])
except Exception as err:
    error = f"{type(err).__name__}: {err}"
print(json.dumps({"warnings": warnings, "error": error, "step": trainer.global_step}))
"""

_COMMANDS = _PRELUDE + """
disk_full_at(200)
from ganstudio.cli import main
for command in json.loads(sys.argv[1]):
    print("=== " + command[0], file=sys.stderr, flush=True)
    print(json.dumps(main(command)), flush=True)
"""


def _child(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


@pytest.mark.slow
def test_a_full_disk_mid_run_warns_naming_each_file_and_training_goes_on(tiny_config, tmp_path):
    """Training goes on, nothing torn: with the disk full after the step-5 checkpoint, each kind of file
    (metrics.jsonl, a sample grid, config.toml after a live change, checkpoints/last.pt) gets one warning
    naming it; training reaches its budget; the final checkpoint is an error naming last.pt; the step-5
    checkpoint is intact; metrics.jsonl holds only whole lines; no temp file is left."""
    config = tiny_config.with_overrides(["train.steps=12"])
    run = RunDir(tmp_path / "run")
    child = _child(_TRAIN, config.model_dump_json(), str(run.path))
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.splitlines()[-1])
    warnings = result["warnings"]

    assert result["step"] == 12  # training went on to its budget
    for path in (run.metrics_path, run.sample_path(10), run.config_path, run.last_checkpoint):
        said = [w for w in warnings if f"could not write {path}" in w or f"could not write checkpoint {path}" in w]
        assert len(said) == 1, (path, warnings)  # one warning per file, not one per step
        assert "File too large" in said[0] and "training goes on" in said[0]
    assert result["error"].startswith(f"CheckpointError: could not write checkpoint {run.last_checkpoint}")
    assert "previous checkpoint is intact" in result["error"]

    assert checkpoint.load(run.last_checkpoint)["step"] == 5
    text = run.metrics_path.read_bytes()
    assert text.endswith(b"\n") and [json.loads(line)["step"] for line in text.splitlines()] == [1, 2, 3, 4, 5]
    for line in (run.samples_dir / "index.jsonl").read_bytes().splitlines():
        json.loads(line)
    assert not run.sample_path(10).exists()
    assert _temp_files(run.path) == []


@pytest.mark.slow
def test_one_shot_writes_on_a_full_disk_fail_with_the_path_and_leave_nothing(trained_run, tmp_path):
    """A clear line, nothing half-written: export (grid, GIF), sample (single images) and
    eval --neighbours on a full disk each exit 1 with one line naming the file they could not write,
    and leave no 0-byte or partial file and no temp file."""
    out = tmp_path / "out"
    out.mkdir()
    commands = {
        "export --grid": (["export", str(trained_run), "--grid", str(out / "g.png"), "-n", "16"], out / "g.png"),
        "export --gif": (["export", str(trained_run), "--gif", str(out / "p.gif")], out / "p.gif"),
        "sample": (["sample", str(trained_run), "-n", "4", "-o", str(out / "singles")], out / "singles"),
        "eval --neighbours": (["eval", str(trained_run), "-n", "10", "--neighbours", str(out / "n.png")],
                              out / "n.png"),
    }
    child = _child(_COMMANDS, json.dumps([c for c, _ in commands.values()]))
    assert child.returncode == 0, child.stderr
    codes = [json.loads(line) for line in child.stdout.splitlines() if line.strip() in ("0", "1", "2")]
    sections = child.stderr.split("=== ")[1:]
    assert codes == [1] * len(commands), child.stderr
    for (name, (_, path)), section in zip(commands.items(), sections):
        errors = [line for line in section.splitlines() if "error:" in line]
        assert len(errors) == 1 and f"could not write {path}" in errors[0] and "File too large" in errors[0], \
            (name, section)
        assert "Traceback" not in section
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_a_cut_short_append_leaves_no_torn_line(tmp_path):
    """No torn line: an append that a full disk cuts short is undone, so the next row is not glued to
    half of this one; a torn last line left by an earlier crash is closed before the next row."""
    from ganstudio.fileio import append_line

    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b'{"step": 1}\n{"step": 2, "lo')  # a crash mid-write
    append_line(log, '{"step": 3}')
    assert log.read_bytes() == b'{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n'
    script = _PRELUDE + f"""
from ganstudio.fileio import WriteError, append_line
disk_full_at({log.stat().st_size + 5})
try:
    append_line({str(log)!r}, '{{"step": 4, "loss_d": 1.0}}')
except WriteError as err:
    print(err)
"""
    child = _child(script)
    assert f"could not write {log}: File too large" in child.stdout, child.stderr
    assert log.read_bytes() == b'{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n'
    rows = RunDir(tmp_path).read_metrics()
    assert [r["step"] for r in rows] == [1, 3] and rows.skipped == 1


def test_a_failed_first_checkpoint_does_not_claim_an_earlier_one(tmp_path, monkeypatch):
    """A clear line that is true: with no last.pt yet, the error says none exists (not "intact")."""
    import errno

    import torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    with pytest.raises(checkpoint.CheckpointError, match="no earlier checkpoint exists there"):
        checkpoint.save(path, {"config": {}, "step": 0, "state": {}})
    path.write_bytes(b"an earlier one")
    with pytest.raises(checkpoint.CheckpointError, match="the previous checkpoint is intact"):
        checkpoint.save(path, {"config": {}, "step": 0, "state": {}})
    assert path.read_bytes() == b"an earlier one"


def test_the_run_lock_holds_on_a_full_disk(tmp_path, monkeypatch):
    """Training goes on when the disk is full: the lock cannot record its holder, but the flock still
    keeps a second writer out, and a note says so."""
    import errno
    import threading

    from ganstudio.engine.lock import RunLock, RunLockedError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with RunLock(tmp_path / "run") as lock:
        assert any("could not record this process" in note for note in lock.notes)
        refused = []

        def second():
            try:
                RunLock(tmp_path / "run").acquire()
            except RunLockedError as err:
                refused.append(str(err))

        other = threading.Thread(target=second)
        other.start()
        other.join(10)
        assert refused and "being written" in refused[0]
