"""``ganstudio train``: start-up, the run folder's writer lock, signals, the progress bar.

Signals (SIGINT, SIGTERM, SIGHUP): during start-up one ends the command at once, nothing saved; while
training the first stops after the step and saves, a second aborts without writing. See ``_Interrupts``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganstudio.train_launch import launch, quiet_rank, wants_group


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """``ganstudio train``'s arguments; ``ganstudio queue add`` takes the same (queue/command.py)."""
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="a run config TOML file")
    source.add_argument("--preset", help="a bundled preset (see `ganstudio presets`); default dcgan-fashion")
    source.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override a config field, e.g. --set optim.lr_g=1e-4 (repeatable)")
    train.add_argument("--steps", type=int, help="stop at this many total generator steps")
    train.add_argument("--max-time", type=float, metavar="SECONDS", help="stop after this much training time")
    train.add_argument("--run-dir", type=Path, help="folder for this run (default: runs/NAME-TIMESTAMP)")
    train.add_argument("--device", help="where to train: auto (the default), cpu, cuda, cuda:N or mps")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _train_changes(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` items and the shortcut flags (``--steps``, ...) as one ``{dotted key: value}``."""
    from ganstudio.config import parse_overrides

    changes = parse_overrides(args.overrides)
    for flag, key in (("steps", "train.steps"), ("max_time", "train.max_time"), ("device", "train.device"),
                      ("seed", "train.seed")):
        value = getattr(args, flag)
        if value is not None:
            changes[key] = value
    return changes


def cmd_train(args: argparse.Namespace) -> int:
    from ganstudio.engine import distributed

    if not distributed.requested():  # a rank of a group runs as it is: torchrun (or --nproc) started it
        args.nproc = _processes(args)
        if wants_group(args):
            return _launch(args)
    code = _run(args, distributed)
    if distributed.requested():
        _leave(code)
    return code


def _leave(code: int) -> None:
    """A rank's exit, without the interpreter's teardown: files are closed and the group destroyed by now,
    and tearing down gloo's worker threads with the interpreter sometimes aborts the rank (SIGABRT,
    "terminate called without an active exception": pytorch issues 190489 and 179291)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run(args: argparse.Namespace, distributed) -> int:
    from ganstudio.engine import Control

    control = Control()
    interrupts = _Interrupts(control, speaks=_speaks())
    try:
        with interrupts:  # from the first moment: a signal during start-up ends it cleanly too
            return _train(args, control, interrupts)
    except KeyboardInterrupt as err:  # the handlers' Abort (a second signal, or one during start-up)
        if interrupts.speaks:
            print(f"ganstudio train: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except Exception as err:
        if control.stopped and not interrupts.training:  # data.Cancelled: the build saw the stop first
            if interrupts.speaks:
                print(f"ganstudio train: {interrupts.startup_message()}", file=sys.stderr)
            return interrupts.exit_code()
        if distributed.requested() and not getattr(args, "debug", False):
            return _rank_failed(err)
        raise


def _speaks() -> bool:
    """Rank 0 (or a single process) prints; the other ranks of a group keep quiet about what every rank sees."""
    return quiet_rank()[0] == 0


def _rank_failed(err: Exception) -> int:
    """A rank's error, said once for the group: an error every rank meets (a config value) by the first rank
    of each machine, anything else by the rank it happened on, and a lost peer by rank 0 only when no
    launcher of ours names the rank that died (train_launch.py)."""
    from ganstudio.config import ConfigError
    from ganstudio.engine.errors import lost_contact

    rank, launched = quiet_rank()
    if lost_contact(err):
        speak = rank == 0 and not launched
    elif isinstance(err, ConfigError):
        speak = int(os.environ.get("LOCAL_RANK", rank)) == 0
    else:
        speak = True
    if speak:
        print(f"ganstudio train: {f'rank {rank}: ' if rank else ''}error: {err}", file=sys.stderr)
    return 2 if isinstance(err, ConfigError) else 1


def _train(args: argparse.Namespace, control, interrupts: _Interrupts) -> int:
    from ganstudio.config import RunConfig, load_preset
    from ganstudio.engine import RunDir, Trainer

    changes = _train_changes(args)
    config = None
    if not args.resume:
        config = RunConfig.load(args.config, changes) if args.config else \
            load_preset(args.preset or "dcgan-fashion", changes)
    from ganstudio.engine import distributed

    run_dir = RunDir(args.resume or args.run_dir) if args.resume or args.run_dir else RunDir.new("runs", config.name)
    main = not distributed.requested() or int(os.environ.get("RANK", "0")) == 0  # rank 0 alone writes and talks
    if config is not None and _restarted() and run_dir.last_checkpoint.is_file():
        config = None  # torchrun restarted the group (--max-restarts): continue from the last checkpoint
        args.resume = run_dir.path
    # the lock before the Trainer: refuse a second writer now
    with _writer_lock(run_dir, new=config is not None) if main else _no_lock() as lock:
        for note in lock.notes if lock else ():
            print(f"note: {note}", file=sys.stderr)
        with interrupts.polled():  # the data's decoding (minutes for a big folder) stops at the first signal
            if config is None:
                trainer = Trainer.resume(args.resume, changes, cancelled=lambda: control.stopped)
            else:
                trainer = Trainer(config, run_dir, cancelled=lambda: control.stopped)
        if control.stopped:  # the signal came after the data was read, while the networks were built
            trainer.close()
            raise interrupts.startup_abort()
        for warning in (*trainer.batches.warnings, *trainer.warnings) if main else ():
            print(f"warning: {warning}", file=sys.stderr)
        if trainer.group and main:
            print(trainer.group.describe(), file=sys.stderr)
        if _restarted() and main:
            print(f"restarted after a process failed (restart {os.environ['TORCHELASTIC_RESTART_COUNT']} of "
                  f"{os.environ.get('TORCHELASTIC_MAX_RESTARTS', '?')}): continuing from step {trainer.global_step}",
                  file=sys.stderr)
        interrupts.started(trainer.run_dir.last_checkpoint if trainer.run_dir else None,
                           trainer.global_step if args.resume else None)
        progress = _Progress(trainer, enabled=not args.quiet and main, speaks=main)
        try:
            finished = trainer.run(control, [progress, interrupts.note_event])
        finally:
            progress.close()
            trainer.close()
            distributed.cleanup()
    if not main:
        return 0
    if interrupts.signal_name and interrupts.saved_step == finished.step:
        print(f"stopped by {interrupts.signal_name} at step {finished.step}: checkpoint saved to "
              f"{interrupts.checkpoint}", file=sys.stderr)
    print(f"run folder: {finished.run_dir} (step {finished.step}, {finished.reason})")
    return 0


def _processes(args: argparse.Namespace) -> int:
    """How many processes to train on: ``--nproc`` when given, else the config's ``train.processes`` (the
    studio's Processes field). A config that cannot be read counts as 1: ``_train`` then says what is wrong."""
    from ganstudio.config import ConfigError, RunConfig, load_preset

    if getattr(args, "nproc", None) is not None:  # given: it wins, --nproc 1 included
        return args.nproc
    try:
        changes = _train_changes(args)
        if args.resume:
            return RunConfig.load(Path(args.resume) / "config.toml", changes).train.processes
        config = RunConfig.load(args.config, changes) if args.config else \
            load_preset(args.preset or "dcgan-fashion", changes)
    except (ConfigError, OSError, ValueError):
        return 1
    return config.train.processes


def _restarted() -> bool:
    """Whether torchrun started this group again after a process of it failed."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


@contextmanager
def _no_lock():
    yield None  # a rank > 0: rank 0 holds the run folder's lock


def _launch(args: argparse.Namespace) -> int:
    """``ganstudio train --nproc N`` (and ``--nnodes``): the same command on N processes through torch's
    launcher, in this process (train_launch.py)."""
    from ganstudio.config import RunConfig, load_preset

    config = None
    if not args.resume:
        changes = _train_changes(args)
        config = RunConfig.load(args.config, changes) if args.config else \
            load_preset(args.preset or "dcgan-fashion", changes)
    return launch(args, config)


@contextmanager
def _writer_lock(run_dir, new: bool):
    """Hold the run folder's writer lock (engine/lock.py); a new run also needs the folder empty."""
    from ganstudio.engine.lock import LOCK_FILE, RunLock

    if not new and not run_dir.path.is_dir():
        yield None  # Trainer.resume says what is missing
        return
    with RunLock(run_dir.path) as lock:  # removes the folder again if it made it and nothing was written
        if new:
            _refuse_used_folder(run_dir, LOCK_FILE)
        yield lock


def _refuse_used_folder(run_dir, lock_file: str) -> None:
    """Two new runs in one folder would mix their files, and the second would hide the first."""
    if run_dir.last_checkpoint.exists():
        raise FileExistsError(f"{run_dir.path} already holds a run; continue it with --resume {run_dir.path}")
    found = sorted(p.name for p in run_dir.path.iterdir() if p.name != lock_file)
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise FileExistsError(f"{run_dir.path} is not empty ({shown}) and holds no checkpoint to continue from; "
                              "a new run needs a new or empty folder: choose another --run-dir, or delete that "
                              "folder if its contents are not wanted")


class _Interrupts:
    """SIGINT, SIGTERM and SIGHUP while ``train`` runs.

    During start-up (reading data, building models) a signal ends the command at once: nothing has been
    trained, so nothing is saved. While the Trainer is built, which polls the stop (``polled``), the
    first signal only stops, and the build raises ``data.Cancelled`` from a point of its choosing: an
    exception raised by a handler can land between a lock's acquire and the ``with`` that releases it, and
    a lock of the decoding's thread pool left held hangs the exit (CI saw it once). Elsewhere in start-up,
    and for a second signal, it raises Abort. Once training, the first one stops after the current step
    and saves a checkpoint, exit 0: SIGTERM is how Docker, systemd, SLURM and Kubernetes stop jobs, SIGHUP
    comes when the terminal closes. A second one raises Abort, and the loop then writes nothing
    (engine/loop.py saves only a whole state), so the last good checkpoint stays; exit 128 + the signal.

    Messages go out with os.write: a handler runs between two bytecodes of the main thread, which may be
    inside tqdm's write to stderr (a reentrant write on a buffered stream raises RuntimeError).
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self, control, speaks: bool = True) -> None:
        """``speaks``: print what a signal does (rank 0 only: torch's launcher passes it to every rank)."""
        self.control, self.speaks = control, speaks
        self.training = False
        self.signal_name: str | None = None  # the first signal received
        self.signum = signal.SIGINT
        self.checkpoint: Path | None = None
        self.saved_step: int | None = None  # the step checkpoints/last.pt holds, as far as this process knows
        self._previous: dict = {}
        self._polled = False  # the main thread is in code that asks control.stopped (the Trainer's build)

    def __enter__(self) -> _Interrupts:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    @contextmanager
    def polled(self):
        """While the code inside asks ``control.stopped`` often enough (the data build, once per file), a
        first signal only stops it; that code then raises ``data.Cancelled`` from a point it chose."""
        self._polled = True
        try:
            yield
        finally:
            self._polled = False

    def started(self, checkpoint: Path, saved_step: int | None) -> None:
        """Training begins: from now on the first signal stops and saves."""
        self.checkpoint, self.saved_step, self.training = checkpoint, saved_step, True

    def note_event(self, event) -> None:
        from ganstudio.engine import CheckpointSaved

        if isinstance(event, CheckpointSaved) and event.path == self.checkpoint:
            self.saved_step = event.step

    def exit_code(self) -> int:
        return 128 + int(self.signum)

    def startup_message(self) -> str:
        return (f"stopped by {self.signal_name or 'an interrupt'} during start-up, before the first step; "
                "nothing was trained or saved")

    def startup_abort(self):
        from ganstudio.engine.control import Abort

        return Abort(self.startup_message(), self.exit_code())

    def _handle(self, signum: int, frame) -> None:
        from ganstudio.engine.control import Abort

        name, first = signal.Signals(signum).name, self.signal_name is None
        if first:
            self.signal_name, self.signum = name, signum
        self.control.stop()  # also cancels a data build in progress (Trainer's cancelled)
        if not self.training:
            if self._polled and first:  # a second one aborts at once: a part of the build may not poll
                return
            raise self.startup_abort()
        if first:
            if self.speaks:
                _say(f"\n{name}: stopping after this step and saving a checkpoint (Ctrl-C or SIGTERM again "
                     "aborts without saving)\n")
            return
        kept = (f"{self.checkpoint} is intact (last saved at step {self.saved_step})"
                if self.saved_step is not None else "no checkpoint had been written in this run yet")
        raise Abort(f"aborted by a second signal ({name}) without saving this step; {kept}", 128 + signum)


def _say(text: str) -> None:
    try:
        os.write(sys.stderr.fileno(), text.encode(errors="replace"))
    except (OSError, ValueError):
        pass  # no stderr to tell: the stop happens all the same


class _Progress:
    """tqdm bar fed by the Trainer's events: the step a few times a second (Progress), the figures at
    logging intervals (StepStats)."""

    def __init__(self, trainer, enabled: bool, speaks: bool = True) -> None:
        """``enabled``: draw the bar; ``speaks``: print warnings (rank 0 only: every rank sees them)."""
        from tqdm import tqdm

        self.speaks = speaks
        self.bar = tqdm(total=trainer.config.train.steps, initial=trainer.global_step, unit="step",
                        disable=not enabled, dynamic_ncols=True)
        self.keys = [key for key, _ in trainer.family.plots[0].keys]  # the family's losses: D/G, recon, KL

    def __call__(self, event) -> None:
        from ganstudio.engine import Progress, StepStats, TrainWarning

        if isinstance(event, Progress):
            self.bar.update(event.step - self.bar.n)
        elif isinstance(event, StepStats):
            self.bar.update(event.step - self.bar.n)
            row = event.to_json()
            figures = {key: f"{row[key]:.3f}" for key in self.keys if key in row}
            self.bar.set_postfix(**figures, img_s=f"{event.images_per_s:.0f}", refresh=False)
        elif isinstance(event, TrainWarning) and self.speaks:
            self.bar.write(f"warning (step {event.step}): {event.message}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
