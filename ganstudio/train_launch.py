"""``ganstudio train --nproc N``: torch's launcher (what ``torchrun`` runs) in this process, and the one line it
says when a group cannot start or breaks.

One machine: ``--standalone`` (a free port, nothing to set). Several: the same command on each machine with
``--nnodes M --rdzv-endpoint HOST:PORT`` (torchrun's c10d rendezvous) and the same ``--run-dir`` on a folder
they all reach. Each rank runs ``ganstudio train`` with the same arguments, less the launcher's.

Checked before anything starts, each one line and nothing written: more processes than GPUs, a batch that
does not split over the processes, the rendezvous port already taken on this machine. Machines that do not
all arrive within ``--rdzv-timeout``: one line, nothing written. A process that dies: torch's agent stops
the others and this says which rank died and how, and where the last checkpoint is; with
``--max-restarts N`` the group restarts instead and continues from that checkpoint (train_command.py).

Under this launcher the ranks leave the talking to it (``LAUNCHED`` in their environment): rank 0 prints
its own errors, the others only errors of their own, and a rank that lost its peers says nothing, since the
launcher names the one that died. torch's own launcher logging is silenced unless ``--debug``.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

LAUNCHED = "GANSTUDIO_LAUNCHED"  # set in the ranks' environment by launch()
DEFAULT_PORT = 29400  # torchrun's for c10d
DEFAULT_RDZV_TIMEOUT = 300
# the launcher's options: the ranks run the same command without them (option -> takes a value)
_LAUNCHER_OPTIONS = {"--nproc": True, "--nnodes": True, "--rdzv-endpoint": True, "--rdzv-timeout": True,
                     "--max-restarts": True}


def add_launch_arguments(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("several processes and machines (DDP through torch's launcher)")
    group.add_argument("--nproc", type=int, default=None, metavar="N",
                       help="train on N processes on this machine (as torchrun --nproc-per-node N): one per GPU, or "
                            "CPU processes; train.batch_size stays the global batch. Default: train.processes")
    group.add_argument("--nnodes", metavar="M|MIN:MAX",
                       help="machines taking part, each running this same command (needs --rdzv-endpoint)")
    group.add_argument("--rdzv-endpoint", metavar="HOST[:PORT]",
                       help=f"where the machines meet: one of them, and a free port (default {DEFAULT_PORT})")
    group.add_argument("--rdzv-timeout", type=int, default=DEFAULT_RDZV_TIMEOUT, metavar="SECONDS",
                       help=f"how long to wait for every machine (default {DEFAULT_RDZV_TIMEOUT})")
    group.add_argument("--max-restarts", type=int, default=0, metavar="N",
                       help="when a process dies, restart the group up to N times; it continues from the last "
                            "checkpoint (default 0: stop)")


def wants_group(args: argparse.Namespace) -> bool:
    """Whether ``ganstudio train`` should start torch's launcher rather than train in this process."""
    nproc = getattr(args, "nproc", None)
    return (nproc is not None and nproc != 1) or getattr(args, "nnodes", None) is not None or \
        getattr(args, "rdzv_endpoint", None) is not None or (getattr(args, "max_restarts", 0) or 0) > 0


def launch(args: argparse.Namespace, config) -> int:
    """Start the group (``config``: the run's, None when resuming) and wait for it; the exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError, RendezvousTimeoutError
    from torch.distributed.run import get_args_parser, run

    from ganstudio.config import ConfigError
    from ganstudio.engine import RunDir

    for name, default in (("nnodes", None), ("rdzv_endpoint", None), ("rdzv_timeout", DEFAULT_RDZV_TIMEOUT),
                          ("max_restarts", 0)):
        setattr(args, name, getattr(args, name, default))  # a Namespace built elsewhere (the queue) may lack them
    nproc = 1 if args.nproc is None else args.nproc
    nodes = _nodes(args.nnodes)
    several = args.nnodes is not None or args.rdzv_endpoint is not None
    if nproc < 1 or args.max_restarts < 0 or args.rdzv_timeout < 1:
        raise ConfigError("--nproc and --rdzv-timeout must be at least 1, --max-restarts at least 0")
    if several and not args.rdzv_endpoint:
        raise ConfigError("--nnodes needs --rdzv-endpoint HOST:PORT: the machine and port where the machines meet")
    if several and not (args.run_dir or args.resume):
        raise ConfigError("training on several machines needs --run-dir (or --resume) naming the same folder on "
                          "each, on storage they all reach: rank 0 writes it, the others read its config and "
                          "checkpoints")
    if config is not None:
        check_devices(config.train.device, nproc, config.train.sync_batch_norm)
        for world in sorted({nproc * nodes[0], nproc * nodes[1]}):
            if config.train.batch_size % world:
                raise ConfigError(f"train.batch_size = {config.train.batch_size} does not divide by {world} "
                                  f"processes (train.batch_size is the global batch, split evenly over them); "
                                  f"use a multiple of {world}")
    argv = rank_argv(getattr(args, "argv", None) or sys.argv[1:])
    run_dir = args.resume or args.run_dir
    if run_dir is None:  # named here, so every rank writes (rank 0) or reads the same folder
        run_dir = RunDir.new("runs", config.name).path
        argv += ["--run-dir", str(run_dir)]
    if several:
        host, port = _endpoint(args.rdzv_endpoint)
        check_port(host, port)
        where = ["--nnodes", args.nnodes or "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}",
                 "--rdzv-id", f"ganstudio-{Path(run_dir).name}",
                 "--rdzv-conf", f"join_timeout={args.rdzv_timeout},last_call_timeout={_last_call(args.rdzv_timeout)}"]
    else:
        where = ["--standalone"]
    launcher = get_args_parser().parse_args(
        [*where, "--nproc-per-node", str(nproc), "--max-restarts", str(args.max_restarts),
         "--module", "ganstudio", *argv])
    os.environ[LAUNCHED] = "1"
    # each rank's share of the cores (torch's launcher would set 1 and print a banner about it)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        with _torch_logs_quiet(not getattr(args, "debug", False)):
            run(launcher)
    except SignalException as err:  # passed on to every rank, which stopped and saved together
        print(f"ganstudio train: stopped by {signal.Signals(err.sigval).name}", file=sys.stderr)
        return 128 + int(err.sigval)
    except RendezvousTimeoutError:
        print(f"ganstudio train: not every machine ({args.nnodes or 1}) joined at {args.rdzv_endpoint} within "
              f"{args.rdzv_timeout} s; start this same command on each of them (or wait longer with "
              "--rdzv-timeout); nothing was trained", file=sys.stderr)
        return 1
    except RendezvousError as err:
        print(f"ganstudio train: the machines could not meet at {args.rdzv_endpoint}: {err or type(err).__name__}",
              file=sys.stderr)
        return 1
    except ChildFailedError as err:
        line = failure_line(err.failures, Path(run_dir), nproc, args.max_restarts)
        if line:
            print(f"ganstudio train: {line}", file=sys.stderr)
        return 1
    return 0


def check_devices(device: str, nproc: int, sync_batch_norm: bool = False) -> None:
    """One process per GPU: refuse more, before anything starts (NCCL fails on two ranks per GPU); and
    what needs a GPU (``train.sync_batch_norm``) on CPU processes."""
    import torch

    from ganstudio.config import ConfigError
    from ganstudio.engine.distributed import sync_batch_norm_refused

    kind = device.split(":")[0]
    if kind not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device = {device!r}: several processes train on cuda or cpu only")
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        if sync_batch_norm:
            raise ConfigError(sync_batch_norm_refused(nproc, "cpu"))
        cores = os.cpu_count() or 1
        if nproc > cores:
            print(f"note: {nproc} processes on {cores} CPU cores: each gets less than a core", file=sys.stderr)
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"train.device = {device!r} but this machine has no CUDA device; set train.device = "
                          "'cpu' (or 'auto') to train the processes on the CPU")
    if nproc > count:
        raise ConfigError(f"{nproc} processes on this machine but {count} CUDA device(s): start one process per "
                          f"GPU (--nproc {count}), or set train.device = 'cpu'")


def check_port(host: str, port: int) -> None:
    """The rendezvous port must be free on the machine that hosts it. Binding it tells: taken (refused at
    once; torch's agent would otherwise talk to whatever holds it and wait for ever), free, or an address of
    another machine (its own agent checks there)."""
    from ganstudio.config import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--rdzv-endpoint {host}:{port}: cannot resolve {host!r} ({err.strerror})") from None
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise ConfigError(f"port {port} on {host} is already in use (another job's rendezvous, or "
                                      f"another program): pick a free one, e.g. --rdzv-endpoint {host}:"
                                      f"{port + 1}") from None
                continue  # EADDRNOTAVAIL: not this machine's address


def failure_line(failures: dict, run_dir: Path, nproc: int, max_restarts: int) -> str | None:
    """What to say when the group failed: which rank died and how, and how to go on. None when every failed
    rank exited with an error of its own, which it has already printed."""
    killed = [(rank, f) for rank, f in failures.items() if f.exitcode < 0]
    if not killed:
        return None
    # torch's agent stops the survivors with SIGTERM: the rank that died of something else came first
    rank, failure = min(killed, key=lambda item: (-item[1].exitcode == signal.SIGTERM, item[1].timestamp, item[0]))
    how = _signal_name(-failure.exitcode)
    restarts = f" after {max_restarts} restart(s)" if max_restarts else ""
    line = f"rank {rank} (pid {failure.pid}) was killed by {how}{restarts}; the other processes were stopped"
    step = _checkpoint_step(run_dir)
    if step is None:
        return f"{line}; no checkpoint had been written yet"
    hint = "" if max_restarts else " (--max-restarts 1 restarts the group by itself)"
    return (f"{line}. {run_dir}/checkpoints/last.pt (step {step}) is intact: continue with "
            f"`ganstudio train --resume {run_dir} --nproc {nproc}`{hint}")


def rank_argv(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's options (each rank runs the rest)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in _LAUNCHER_OPTIONS:
            skip = "=" not in item and _LAUNCHER_OPTIONS[name]
            continue
        out.append(item)
    return out


def quiet_rank() -> tuple[int, bool]:
    """(this process's rank, whether the launcher speaks for it): for a rank's own error printing."""
    return int(os.environ.get("RANK", "0")), os.environ.get(LAUNCHED) == "1"


def _nodes(spec: str | None) -> tuple[int, int]:
    from ganstudio.config import ConfigError

    try:
        low, _, high = (spec or "1").partition(":")
        nodes = int(low), int(high or low)
    except ValueError:
        raise ConfigError(f"--nnodes {spec!r}: a number of machines, or MIN:MAX") from None
    if not 1 <= nodes[0] <= nodes[1]:
        raise ConfigError(f"--nnodes {spec!r}: at least 1, and MIN <= MAX")
    return nodes


def _endpoint(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    from ganstudio.config import ConfigError

    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"--rdzv-endpoint {text!r}: HOST or HOST:PORT") from None
    if not host or not 0 < number < 65536:
        raise ConfigError(f"--rdzv-endpoint {text!r}: HOST or HOST:PORT, the port 1-65535")
    return host, number


def _last_call(timeout: int) -> int:
    """Seconds to wait for more machines once MIN of ``--nnodes MIN:MAX`` are there (torch's default, 30, when
    the whole wait allows it): the rendezvous must close before --rdzv-timeout ends."""
    return max(1, min(30, timeout // 2))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _checkpoint_step(run_dir: Path) -> int | None:
    """The step checkpoints/last.pt holds (None when there is none, or it cannot be read)."""
    from ganstudio.engine import checkpoint

    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        return None
    try:
        return int(checkpoint.load(path)["step"])
    except Exception:  # noqa: BLE001 - a damaged file: say nothing about a step
        return None


@contextmanager
def _torch_logs_quiet(quiet: bool):
    """torch's launcher logs each closing signal and failure in its own format: this module says it once."""
    if not quiet:
        yield
        return
    names = [name for name in logging.root.manager.loggerDict
             if name.startswith(("torch.distributed.elastic", "torch.distributed.run"))]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
