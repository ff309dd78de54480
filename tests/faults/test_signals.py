"""Signals to `ganstudio train`: SIGTERM, SIGHUP and a first Ctrl-C stop after the step and save (exit 0); a
second one aborts without writing, and the last good checkpoint stays; one during start-up ends it
cleanly. Real processes, real signals (os.kill), waiting on what the process writes, with deadlines.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import torch
from processes import TINY, checkpoint_step, logged_steps, tensors


def _slowed(module: str, name: str, seconds: float) -> str:
    """The same CLI, with ``module.name`` slowed by ``seconds`` a call, touching the file argv[1] first."""
    return f"""
import sys, time
from pathlib import Path
import {module} as target
marker, original = Path(sys.argv[1]), target.{name}
def slow(*args, **kwargs):
    marker.touch()
    time.sleep({seconds})
    return original(*args, **kwargs)
target.{name} = slow
from ganstudio.cli import main
sys.exit(main(["train", *sys.argv[2:]]))
"""


SLOW_START = _slowed("ganstudio.data.decode", "decode_file", 0.05)  # each image's decode, once decoding began
SLOW_BUILD = _slowed("ganstudio.engine.trainer", "build_state", 2)  # the networks' build, after the data


# --- the first signal: finish the step, save, exit 0 ------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_mid_run_save_and_exit_0(train, tmp_path, signum):
    """A clear line, nothing lost: SIGTERM (how Docker, systemd and SLURM stop jobs) and SIGHUP (a closed
    terminal) finish the step, save a checkpoint of it and exit 0, saying so."""
    run = tmp_path / "run"
    job = train(*TINY, "--set", "train.checkpoint_every=100000", "--run-dir", str(run))
    job.wait_until(lambda: len(logged_steps(run)) >= 3, "three logged steps")
    job.signal(signum)
    assert job.finish() == 0, job.stderr()
    name = signal.Signals(signum).name
    err = job.stderr()
    assert f"{name}: stopping after this step and saving a checkpoint" in err and "Traceback" not in err
    saved = checkpoint_step(run / "checkpoints" / "last.pt")  # the only save: periodic ones are off
    assert saved >= 3 and saved == max(logged_steps(run))
    assert f"stopped by {name} at step {saved}" in err and f"(step {saved}, stopped)" in job.stdout()
    assert not (run / "run.lock").exists()


def test_sigterm_while_stopped_then_continued_saves(train, tmp_path):
    """No hang, nothing lost: a job paused with SIGSTOP (Ctrl-Z) and then killed the way shells kill a
    stopped job (SIGTERM, then SIGCONT) stops between its steps and saves."""
    run = tmp_path / "run"
    job = train(*TINY, "--set", "train.checkpoint_every=100000", "--run-dir", str(run))
    job.wait_until(lambda: len(logged_steps(run)) >= 2, "two logged steps")
    job.signal(signal.SIGSTOP)
    job.signal(signal.SIGTERM)
    job.signal(signal.SIGCONT)
    assert job.finish() == 0, job.stderr()
    assert checkpoint_step(run / "checkpoints" / "last.pt") == max(logged_steps(run))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_startup_exits_cleanly_without_writing(train, tmp_path, signum):
    """A clear line, no traceback, nothing written: a signal while the data is still being decoded ends the
    command within moments (the decoding polls the stop), with exit 128 + the signal and no run folder."""
    folder, run, marker = tmp_path / "images", tmp_path / "run", tmp_path / "decoding"
    _image_folder(folder, 400)  # 400 x 50 ms: 10 s of decoding on two cores, unless it is stopped
    job = train(str(marker), *TINY, "--set", "data.source='folder'", "--set", f"data.path='{folder}'",
                "--run-dir", str(run), code=SLOW_START)
    job.wait_until(marker.exists, "the decoding to begin")
    started = time.monotonic()
    job.signal(signum)
    assert job.finish() == 128 + signum, job.stderr()
    assert time.monotonic() - started < 5, "the decoding went on after the signal"
    err = job.stderr()
    name = signal.Signals(signum).name
    assert f"stopped by {name} during start-up, before the first step; nothing was trained or saved" in err
    assert "Traceback" not in err
    assert not run.exists()


def test_signal_while_the_networks_are_built_exits_cleanly_without_writing(train, tmp_path):
    """The same clear end for a signal after the data is read and before the first step: the build runs
    to its end (it does not poll), then the command ends with exit 128 + the signal, writing nothing."""
    run, marker = tmp_path / "run", tmp_path / "building"
    job = train(str(marker), *TINY, "--run-dir", str(run), code=SLOW_BUILD)
    job.wait_until(marker.exists, "the networks' build to begin")
    job.signal(signal.SIGTERM)
    assert job.finish() == 128 + signal.SIGTERM, job.stderr()
    err = job.stderr()
    assert "stopped by SIGTERM during start-up, before the first step; nothing was trained or saved" in err
    assert "Traceback" not in err and not run.exists()


def test_a_signal_during_the_polled_build_only_stops_and_elsewhere_raises():
    """Where the main thread polls the stop (the Trainer's build), a first signal raises nothing: an
    exception from a handler can land inside a thread pool's lock handling and hang the exit. A second one
    there, or one elsewhere in start-up, raises at once, with the first signal's exit code."""
    from ganstudio.engine import Control
    from ganstudio.engine.control import Abort
    from ganstudio.train_command import _Interrupts

    control = Control()
    interrupts = _Interrupts(control, speaks=False)
    with interrupts.polled():
        interrupts._handle(signal.SIGTERM, None)  # the build polls: nothing raised
        assert control.stopped and interrupts.signal_name == "SIGTERM"
        with pytest.raises(Abort) as second:  # insisting: a part of the build may not poll
            interrupts._handle(signal.SIGINT, None)
    assert second.value.exit_code == 128 + signal.SIGTERM

    outside = _Interrupts(Control(), speaks=False)
    with pytest.raises(Abort) as raised:
        outside._handle(signal.SIGTERM, None)
    assert raised.value.exit_code == 128 + signal.SIGTERM
    assert "stopped by SIGTERM during start-up" in str(raised.value)


def _image_folder(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir()
    for i in range(n):
        Image.new("L", (8, 8), i % 256).save(folder / f"{i:04d}.png")


# --- a second signal: abort without writing -----------------------------------------------------------------
SLOW_STEPS = ["--set", "model.g_width=64", "--set", "model.d_width=64", "--set", "train.batch_size=128"]  # ~0.2 s
WIDE = ["--set", "model.g_width=32", "--set", "model.d_width=32", "--set", "train.batch_size=64"]  # ~50 ms steps


@pytest.mark.slow
def test_two_quick_interrupts_keep_the_last_good_checkpoint(train, tmp_path):
    """Exact resume, nothing torn: two SIGINTs 5 ms apart (the second lands inside the step or the final
    save) abort with a clear line and exit 130, and last.pt stays a periodic checkpoint identical, tensor
    for tensor, to a clean run stopped at its step (not one labelled step N holding part of N+1)."""
    run = tmp_path / "run"
    every = ["--set", "train.checkpoint_every=4", "--set", "train.sample_every=1000"]
    job = train(*TINY, *SLOW_STEPS, *every, "--run-dir", str(run))
    job.wait_until(lambda: len(logged_steps(run)) >= 6, "six logged steps")
    job.signal(signal.SIGINT)
    # the second as soon as the first has been handled: inside the step it interrupted (~0.2 s long, so
    # a busy test machine cannot let the step, the save and the exit all finish in between)
    job.wait_until(lambda: "stopping after this step" in job.stderr(), "the first signal handled", interval=0.001)
    job.signal(signal.SIGINT)
    assert job.finish() == 130, job.stderr()
    err = job.stderr()
    assert "aborted by a second signal (SIGINT) without saving this step" in err and "Traceback" not in err
    from ganstudio.engine import checkpoint

    kept = checkpoint.load(run / "checkpoints" / "last.pt")
    assert kept["step"] % 4 == 0 and f"last saved at step {kept['step']}" in err
    assert not list((run / "checkpoints").glob(".*.tmp"))

    clean_run = tmp_path / "clean"
    clean = train(*TINY, *SLOW_STEPS, *every, "--steps", str(kept["step"]), "--run-dir", str(clean_run))
    assert clean.finish() == 0, clean.stderr()
    reference = tensors(checkpoint.load(clean_run / "checkpoints" / "last.pt")["state"])
    mine = tensors(kept["state"])
    assert mine.keys() == reference.keys()
    differ = [key for key in mine if not torch.equal(mine[key], reference[key])]
    assert not differ, f"{len(differ)} tensors differ from a clean stop at step {kept['step']}: {differ[:5]}"


@pytest.mark.slow
def test_a_second_sigterm_during_a_checkpoint_write_leaves_a_whole_checkpoint(train, tmp_path):
    """Nothing torn, no temp file left: a second SIGTERM sent while a checkpoint is being written (its temp
    file exists) aborts with exit 143; last.pt still loads and the temp file is gone."""
    run = tmp_path / "run"
    big = ["--set", "model.g_width=64", "--set", "model.d_width=64", "--set", "train.checkpoint_every=1",
           "--set", "train.sample_every=1000"]
    job = train(*TINY, *big, "--run-dir", str(run))
    checkpoints = run / "checkpoints"
    job.wait_until(lambda: (checkpoints / "last.pt").exists(), "a first checkpoint")
    job.signal(signal.SIGTERM)
    job.wait_until(lambda: any(checkpoints.glob(".last.pt.*.tmp")), "a checkpoint write", interval=0.0005)
    job.signal(signal.SIGTERM)
    code = job.finish()
    err = job.stderr()
    assert code in (0, 143), err  # 0: that write had just finished, and it was the final save
    assert "Traceback" not in err
    saved = checkpoint_step(checkpoints / "last.pt")
    assert saved >= 1 and not list(checkpoints.glob(".*.tmp"))
    if code == 143:
        assert f"aborted by a second signal (SIGTERM) without saving this step; {checkpoints / 'last.pt'} is intact" \
            in err
