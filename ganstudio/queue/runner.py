"""``ganstudio queue run``: work through the queue, one ``ganstudio train`` child process at a time.

Each child is ``python -m ganstudio train ARGS --run-dir FOLDER --quiet`` with its stdout and stderr in
``queue-logs/<id>.log``. Its outcome: finished (exit 0), failed (a non-zero exit), crashed (killed by a
signal, or gone without finishing), stopped (the runner was told to stop). A failed job never stops the
queue; the runner's exit code says whether any did. Torch-free: the children train, the runner waits.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ganstudio.fileio import append_line
from ganstudio.queue.jobs import RUNNER_LOCK, STATES, TAIL_LINES, Job, JobQueue, QueueError, exclusive_lock

Say = Callable[[str], None]


def run_folder_name(root: Path, job: Job) -> Path:
    """``root/NAME-YYYYmmdd-HHMMSS`` like the studio's runs (engine/rundir.py), NAME from the job."""
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "-", job.name or _args_name(job.args)).strip("-") or "job"
    stem = root / f"{slug[:60]}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = stem, 1
    while path.exists():
        n += 1
        path = stem.with_name(f"{stem.name}-{n}")
    return path


def _args_name(args: list[str]) -> str:
    for flag in ("--preset", "--config", "--resume"):
        if flag in args[:-1]:
            return Path(args[args.index(flag) + 1]).stem
    return "dcgan-fashion"  # `ganstudio train`'s default preset


class Runner:
    """``ganstudio queue run``: the queue's jobs one at a time until none is queued.

    SIGINT, SIGTERM or SIGHUP stops the running job (its ``train`` saves a checkpoint on SIGTERM) and
    leaves the later jobs queued. Children run in their own session, so Ctrl-C in the runner's terminal
    reaches them once, through the runner: a second signal straight from the terminal would abort them
    without saving.
    """

    def __init__(self, queue: JobQueue, say: Say = print, poll: float = 0.1) -> None:
        self.queue, self.say, self.poll = queue, say, poll
        self.stopping = 0  # the signal that asked to stop
        self.child_pid = 0
        self.forwarded = 0  # SIGTERMs sent to the current child: the first stops and saves, a second aborts

    def run(self) -> int:
        with self._runner_lock(), self._signals():
            self._record_runner({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
            try:
                outcomes = self._adopt_orphans()
                while not self.stopping and (job := self._next()) is not None:
                    outcomes.append(self._work(job))
            finally:
                self._record_runner({})
        bad = sum(state in ("failed", "crashed") for state in outcomes)
        done = ", ".join(f"{outcomes.count(s)} {s}" for s in STATES if outcomes.count(s)) or "no jobs run"
        self.say(f"queue: {done}" + (f"; stopped by {signal.Signals(self.stopping).name}, later jobs stay queued"
                                     if self.stopping else ""))
        return 1 if bad else 128 + self.stopping if self.stopping else 0

    # --- one job ------------------------------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self.queue.edit() as queue:
            job = next((job for job in queue.jobs if job.state == "queued"), None)
            if job is None or self.stopping:  # a stop just now: leave the job queued rather than start it
                return None
            job.state, job.started, job.ended, job.exit_code, job.tail, job.message = "running", time.time(), 0, \
                None, [], ""
            named = [job.args[i + 1] for i, a in enumerate(job.args[:-1]) if a in ("--resume", "--run-dir")]
            job.run_dir = named[0] if named else str(run_folder_name(self.queue.root, job))  # train: resume wins
            job.log = str(self.queue.logs / f"{job.id}.log")
        return job

    def _work(self, job: Job) -> str:
        args = [a for i, a in enumerate(job.args) if a != "--run-dir" and job.args[i - 1:i] != ["--run-dir"]]
        command = [sys.executable, "-m", "ganstudio", "train", *args, "--run-dir", job.run_dir, "--quiet"]
        self.queue.logs.mkdir(parents=True, exist_ok=True)
        self.say(f"{job.describe()}: started; run folder {job.run_dir}, log {job.log}")
        try:
            with open(job.log, "ab") as log:
                child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.queue.root, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as err:
            return self._finish(job, "failed", None, f"could not start: {err}")
        self._follow(child.pid)
        with self.queue.edit() as queue:
            queue.job(job.id).pid = child.pid
        while (code := _wait(child, self.poll)) is None:
            pass
        self.child_pid = 0
        return self._finish(job, *self._outcome(job, code))

    def _outcome(self, job: Job, code: int | None) -> tuple[str, int | None, str]:
        from ganstudio.engine.status import effective_state, read_status

        status, _ = read_status(job.run_dir)
        said = status.message if status else ""
        if code is None:  # not our child (an earlier runner's): only its run folder can tell
            state = effective_state(job.run_dir, status)
            if state in ("finished", "stopped", "failed"):
                return state, None, said
            return "crashed", None, "the job's process went away without finishing (an earlier runner's child)"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return "crashed", code, f"killed by {name}" + (f"; {said}" if said else "")
        if self.stopping and (code == 0 or code > 128):
            return "stopped", code, said or "stopped by the queue's stop"
        if code:
            return "failed", code, said or f"exit code {code}"
        return ("stopped" if status and status.state == "stopped" else "finished"), code, said

    def _finish(self, job: Job, state: str, code: int | None, message: str) -> str:
        took = f" after {time.time() - job.started:.1f} s" if job.started else ""
        outcome = f"{job.describe()}: {state}{took}" + (f" ({message})" if message else "")
        if job.log:  # the log ends with what became of the job: a killed child cannot write that itself
            try:
                append_line(Path(job.log), f"ganstudio queue: {outcome}")
            except OSError:
                pass  # a full disk: queue.json below still says it
        tail = _tail(Path(job.log)) if state in ("failed", "crashed") and job.log else []
        with self.queue.edit() as queue:
            kept = queue.job(job.id) if any(j.id == job.id for j in queue.jobs) else job
            kept.state, kept.exit_code, kept.ended, kept.pid, kept.message, kept.tail = state, code, time.time(), 0, \
                message, tail
        self.say(f"{outcome}; {job.run_dir}")
        for line in tail[:-1]:
            self.say(f"    {line}")
        return state

    def _adopt_orphans(self) -> list[str]:
        """Jobs an earlier runner left running (it was killed): wait for a child still writing its run, then
        mark each from its run folder. Their children are in their own session, so they may well live on."""
        from ganstudio.engine.lock import writer_alive

        outcomes = []
        for job in [j for j in self.queue.read().jobs if j.state == "running"]:
            if job.run_dir and writer_alive(job.run_dir):
                self.say(f"{job.describe()}: still running from an earlier runner (pid {job.pid}); following it")
                self._follow(job.pid)
                while writer_alive(job.run_dir):
                    time.sleep(max(self.poll, 0.2))
                self.child_pid = 0
            outcomes.append(self._finish(job, *self._outcome(job, None)))
        return outcomes

    # --- the runner's lock and signals --------------------------------------------------------------------
    @contextmanager
    def _runner_lock(self) -> Iterator[None]:
        self.queue.root.mkdir(parents=True, exist_ok=True)
        lock = exclusive_lock(self.queue.root / RUNNER_LOCK, wait=0.25)  # 0.25 s: a reader's check holds it briefly
        try:
            lock.__enter__()
        except QueueError:
            pid = self.queue.read().runner.get("pid", "?")
            raise QueueError(f"a queue runner (pid {pid}) is already working through {self.queue.path}; one runner "
                             f"at a time (`kill {pid}` stops it and its running job)") from None
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        signums = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
        previous = {signum: signal.signal(signum, self._handle) for signum in signums}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        first = not self.stopping
        self.stopping = self.stopping or signum
        if first:
            _say_now(f"\n{signal.Signals(signum).name}: stopping the running job (it saves a checkpoint); "
                     "later jobs stay queued\n")
        self._forward()  # a second signal reaches the child as a second SIGTERM: it aborts without saving

    def _forward(self) -> None:
        if self.child_pid:
            self.forwarded += 1
            try:
                os.kill(self.child_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _follow(self, pid: int) -> None:
        """``pid`` is the child now; a stop asked before it started reaches it, once (see ``forwarded``)."""
        self.forwarded = 0
        self.child_pid = pid
        if self.stopping and not self.forwarded:  # the handler may have forwarded in between: not twice
            self._forward()

    def _record_runner(self, runner: dict) -> None:
        with self.queue.edit() as queue:
            queue.runner = runner


def _wait(child: subprocess.Popen, timeout: float) -> int | None:
    try:
        return child.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def _tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))  # the end is enough: a log can be long
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def _say_now(text: str) -> None:
    try:  # os.write: a handler may run in the middle of a print to the same stream
        os.write(sys.stderr.fileno(), text.encode(errors="replace"))
    except (OSError, ValueError):
        pass
