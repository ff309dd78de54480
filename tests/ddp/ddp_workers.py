"""What each spawned rank runs in the DDP tests, and the spawning itself (gloo, on the CPU).

Each rank writes what the test checks into ``out/rank{R}.pt``; nothing crosses back through pipes, so a
failing rank shows its traceback and the test fails at once instead of waiting.
"""

from __future__ import annotations

import builtins
import os
import socket
import sys
import time
import warnings as pywarnings
from pathlib import Path

import torch
import torch.multiprocessing as mp

TIMEOUT = 120  # seconds for a whole spawned job: a hang fails the test, never blocks the suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(world: int, out: Path, config: dict, run_dir: Path | None = None, **options) -> list[dict]:
    """Train ``config`` on ``world`` gloo processes; every rank's results, in rank order."""
    out.mkdir(parents=True, exist_ok=True)
    context = mp.start_processes(train, args=(world, free_port(), str(out), config, run_dir, options),
                                 nprocs=world, start_method="spawn", join=False)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world} ranks did not finish within {TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


def train(rank: int, world: int, port: int, out: str, config: dict, run_dir: Path | None, options: dict) -> None:
    # every Python warning the rank raises (torch's own, e.g. DDP's), for tests that there are none of a kind
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        _train(rank, world, port, out, config, run_dir, options, caught)
    # done, its file written and the group destroyed: leave as `ganstudio train`'s ranks do (train_command's
    # _leave), since gloo's threads torn down with the interpreter sometimes abort the rank (SIGABRT,
    # "terminate called without an active exception"), failing a test whose training went right
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _train(rank: int, world: int, port: int, out: str, config: dict, run_dir: Path | None, options: dict,
           caught: list) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from ganstudio.config import RunConfig
    from ganstudio.engine import Control, Trainer, distributed
    from ganstudio.engine.events import TrainWarning

    written: list[str] = []
    if rank and run_dir is not None:
        _record_writes(Path(run_dir), written)
    if options.get("resume"):
        trainer = Trainer.resume(run_dir, options.get("changes"))
    else:
        trainer = Trainer(RunConfig.model_validate(config), run_dir)
    if rank == options.get("nan_rank") is not None:
        _nan_at(trainer, options["nan_step"], options.get("nan_kind"))
    warnings: list[tuple[int, str, str]] = []
    control = Control()
    callbacks = [lambda e: warnings.append((e.step, e.kind, e.message)) if isinstance(e, TrainWarning) else None]
    if rank == 0 and options.get("live_at"):
        callbacks.append(_live_changes(control, options["live_at"]))
    if rank == 0 and options.get("paused_d_step_at"):
        callbacks.append(_paused_d_step(control, options["paused_d_step_at"]))
    finished = trainer.run(control, callbacks)
    torch.save({"step": finished.step, "g": trainer.g.state_dict(), "d": trainer.d.state_dict(),
                "warnings": warnings + [(0, "notice", w) for w in trainer.warnings], "written": written,
                "lr_g": trainer.config.optim.lr_g, "group": distributed.current().describe(),
                "python_warnings": [str(w.message) for w in caught],
                "compiled": [m._compiled_call_impl is not None for m in (trainer.g, trainer.d)]},
               Path(out) / f"rank{rank}.pt")
    trainer.close()
    distributed.cleanup()


def _live_changes(control, step: int):
    """Rank 0's control gets, once at ``step``: a single D step, a live learning rate and a sample request
    (what the studio or the command file sends); the other ranks must follow it."""
    from ganstudio.engine.events import StepStats

    done = []

    def callback(event) -> None:
        if isinstance(event, StepStats) and event.step >= step and not done:
            done.append(step)
            control.step_once("d")
            control.set_hparam("optim.lr_g", 1e-3)
            control.request("sample")
    return callback


def _paused_d_step(control, step: int):
    """Rank 0's control, once at ``step``: pause, one D step (a person's click), then resume once that
    step has been dealt with (marked, or rolled back)."""
    from ganstudio.engine.events import RunEvent, StepStats, TrainWarning

    state = {"asked": False, "resumed": False}

    def callback(event) -> None:
        if isinstance(event, StepStats) and event.step >= step and not state["asked"]:
            state["asked"] = True
            control.pause()
            control.step_once("d")
        elif state["asked"] and not state["resumed"] and (
                isinstance(event, RunEvent) and event.kind == "step_d" or
                isinstance(event, TrainWarning) and event.kind == "nan"):
            state["resumed"] = True
            control.resume()
    return callback


def _nan_at(trainer, step: int, kind: str | None = None) -> None:
    """This rank's figures turn NaN once, at ``step`` (or, with ``kind``, in the first step of that kind from
    ``step`` on): a divergence only this rank sees."""
    real, done = trainer.train_step, []

    def train_step(kind_run="both"):
        figures = real(kind_run)
        due = trainer.global_step == step if kind is None else trainer.global_step >= step and kind_run == kind
        if due and not done:
            done.append(step)
            figures["loss_d"] = torch.tensor(float("nan"))
        return figures

    trainer.train_step = train_step


def _record_writes(run_dir: Path, written: list[str]) -> None:
    """Note every file this rank opens for writing inside the run folder (there should be none)."""
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and str(Path(file).resolve()).startswith(str(run_dir.resolve())):
            written.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    builtins.open = recording_open
