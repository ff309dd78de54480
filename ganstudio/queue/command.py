"""``ganstudio queue add|list|run|remove``: the queue from a shell. Light to import (cli.py builds its parser
at every start): the config is loaded only to check a job as it is added."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ganstudio.engine.runs import default_runs_root
from ganstudio.queue.jobs import JobQueue, parse_sweep, sweep_jobs
from ganstudio.train_command import add_train_arguments


def add_queue_parser(sub) -> None:
    queue = sub.add_parser("queue", help="a queue of training jobs run one after another",
                           description="Jobs are `ganstudio train` commands kept in queue.json in the runs folder; "
                                       "`queue run` works through them one at a time, each a child process, and "
                                       "goes on when one fails.")
    verbs = queue.add_subparsers(dest="verb", metavar="ACTION", required=True)
    add = verbs.add_parser("add", help="queue a job: the same arguments as `ganstudio train`",
                           description="Queue one job, or with --sweep one job per combination of values. Takes "
                                       "`ganstudio train`'s arguments; the config is checked now, not at 3 am.")
    add_train_arguments(add)
    add.add_argument("--name", default="", help="a name for the job (and its run folder)")
    add.add_argument("--sweep", action="append", default=[], type=_sweep, metavar="KEY=V1,V2,...",
                     help="one job per value, e.g. --sweep optim.lr_g=1e-4,2e-4; twice for every pair of values")
    add.set_defaults(func=cmd_queue_add)
    listing = verbs.add_parser("list", help="show the jobs and their states")
    listing.set_defaults(func=cmd_queue_list)
    run = verbs.add_parser("run", help="work through the queue until no job is queued",
                           description="One job at a time; a failed job is marked and the next starts. Ctrl-C or "
                                       "SIGTERM stops the running job (it saves a checkpoint) and leaves the rest "
                                       "queued. Exit code 1 when any job failed or crashed.")
    run.set_defaults(func=cmd_queue_run)
    remove = verbs.add_parser("remove", help="take jobs off the queue (not a running one)")
    remove.add_argument("ids", type=int, nargs="+", metavar="ID", help="job numbers, as `queue list` shows them")
    remove.set_defaults(func=cmd_queue_remove)
    for parser in (add, listing, run, remove):
        parser.add_argument("--runs", type=Path, metavar="DIR",
                            help="the runs folder holding queue.json (default: $GANSTUDIO_RUNS, else the studio's)")


def _sweep(text: str) -> tuple[str, list[str]]:
    try:
        return parse_sweep(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _queue(args: argparse.Namespace) -> JobQueue:
    queue = JobQueue(args.runs or default_runs_root())
    queue.read()  # an unreadable file is set aside now, and said first
    for note in queue.notes:
        print(f"note: {note}")
    return queue


def train_argv(args: argparse.Namespace) -> list[str]:
    """The parsed train arguments back as an argument list, paths absolute (the runner's child runs in the
    runs folder, not where `queue add` was typed)."""
    argv: list[str] = []
    for flag, value in (("--config", args.config), ("--preset", args.preset), ("--resume", args.resume),
                        ("--run-dir", args.run_dir)):
        if value is not None:
            argv += [flag, str(Path(value).expanduser().resolve()) if isinstance(value, Path) else value]
    for item in args.overrides:
        argv += ["--set", item]
    for flag, value in (("--steps", args.steps), ("--max-time", args.max_time), ("--device", args.device),
                        ("--seed", args.seed)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def check_job(argv: list[str]) -> None:
    """Raise the error `ganstudio train` would give for these arguments' config (ConfigError, a missing file).
    A --resume job is not checked: an earlier job in the queue may be the one that makes its folder."""
    from ganstudio.config import RunConfig, load_preset
    from ganstudio.train_command import _train_changes

    parser = argparse.ArgumentParser(prog="ganstudio queue add", add_help=False)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    if args.resume is None:
        changes = _train_changes(args)
        RunConfig.load(args.config, changes) if args.config else load_preset(args.preset or "dcgan-fashion", changes)


def cmd_queue_add(args: argparse.Namespace) -> int:
    base = train_argv(args)
    jobs = [(base + extra, name) for extra, name in sweep_jobs(args.sweep, args.name)] if args.sweep else \
        [(base, args.name)]
    if args.run_dir is not None and len(jobs) > 1:
        raise ValueError("--run-dir names one folder, but a sweep makes several runs; leave --run-dir out")
    for argv, _ in jobs:
        check_job(argv)
    queue = _queue(args)
    for argv, name in jobs:
        job = queue.add(argv, name)
        print(f"queued {job.describe()}")
    return 0


def cmd_queue_list(args: argparse.Namespace) -> int:
    queue = _queue(args)
    current = queue.read()
    pid = queue.runner_pid()
    print(f"{queue.path}: {len(current.jobs)} job(s); " + (f"a runner (pid {pid}) is working through it" if pid
                                                          else "no runner (start one with `ganstudio queue run`)"))
    for job in current.jobs:
        print(f"{job.id:>4}  {job.state:<9} {_times(job):<22} {job.name or ' '.join(job.args) or '(defaults)'}")
        if job.run_dir and job.state != "queued":
            print(f"{'':15}{job.run_dir}")
        if job.message and job.state != "finished":
            print(f"{'':15}{job.message}")
        for line in job.tail[-5:]:
            print(f"{'':15}| {line}")
    return 0


def _times(job) -> str:
    if not job.started:
        return ""
    start = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.started))
    took = (job.ended or time.time()) - job.started
    return f"{start} {took / 60:5.1f} min"


def cmd_queue_run(args: argparse.Namespace) -> int:
    from ganstudio.queue.runner import Runner

    queue = _queue(args)
    return Runner(queue, say=lambda text: print(text, flush=True)).run()


def cmd_queue_remove(args: argparse.Namespace) -> int:
    queue = _queue(args)
    for job_id in args.ids:
        job = queue.remove(job_id)
        print(f"removed {job.describe()} ({job.state})")
    return 0
