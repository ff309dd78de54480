"""Several processes on torchrun: the process group, and the decisions every rank must take together.

torchrun starts one process per device and hands each its place in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`setup` reads it and joins the
group: NCCL on CUDA (each rank on the GPU its ``LOCAL_RANK`` names), gloo on the CPU. Without that
environment nothing here runs and ``torch.distributed`` is never imported: a single process trains
exactly as it always did, with no overhead.

The rules a GAN under DDP needs (the parts off-the-shelf recipes get wrong):

* G and D get separate DDP wrappers (:func:`wrap`): D's gradients are reduced in its own step, G's in
  its own.
* no buffer broadcast (``broadcast_buffers=False``): D sees real and fake in two forwards before one backward; a buffer
  broadcast at the second forward overwrites batch norm's running statistics in place while autograd
  still holds them, which fails. Running statistics only matter in eval mode (rank 0's samples, from
  rank 0's shard), so nothing is lost by leaving them per rank. ``train.sync_batch_norm`` pools the
  batch statistics instead (:func:`sync_batch_norm`, CUDA only: SyncBatchNorm does not run on the CPU);
  D's two forwards are then two collectives, the same on every rank.
* A forward with no parameter that wants a gradient (D during G's step: ``requires_grad_(False)``)
  bypasses DDP: otherwise DDP waits for gradients that never come and the next step fails.
* Every branching decision is collective: figures are averaged over the ranks at each report (so a NaN
  on one rank is a NaN on all, and all roll back), and at each step boundary rank 0's control (pause,
  stop, single steps, requests, live changes, its training clock) is broadcast (:class:`SharedControl`).
"""

from __future__ import annotations

import datetime
import inspect
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

TIMEOUT = datetime.timedelta(minutes=10)  # a rank that dies is reported, not waited on for ever


@dataclass(frozen=True)
class Group:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"training on {self.world_size} processes ({self.backend}, {self.device.type})"

    # --- collectives (every rank calls each of them, in the same order) ----------------------------------
    def average(self, figures: dict[str, float]) -> dict[str, float]:
        """The figures' mean over the ranks (the same keys on every rank: the same step ran everywhere).
        A NaN or inf on one rank makes it non-finite on all, so the NaN guard rolls back all of them."""
        import torch.distributed as dist

        keys = sorted(figures)
        values = torch.tensor([float(figures[k]) for k in keys], dtype=torch.float64, device=self._wire)
        dist.all_reduce(values)
        return dict(zip(keys, (values / self.world_size).tolist()))

    def all_true(self, flag: bool) -> bool:
        """True when ``flag`` holds on every rank."""
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=self._wire)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (others pass anything, usually None)."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._wire if self.backend == "nccl" else None)
        return box[0]

    def from_main(self, compute: Callable[[], Any]) -> Any:
        """``compute()`` on rank 0 alone, its result (or its exception) on every rank."""
        result = error = None
        if self.is_main:
            try:
                result = compute()
            except Exception as err:  # noqa: BLE001 - raised on every rank below
                error = err
        result, error = self.broadcast((result, error))
        if error is not None:
            raise error
        return result

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0; None elsewhere."""
        import torch.distributed as dist

        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    @property
    def _wire(self) -> torch.device:
        # NCCL moves CUDA tensors only; gloo moves CPU tensors
        return self.device if self.backend == "nccl" else torch.device("cpu")


_group: Group | None = None


def requested() -> bool:
    """Whether torchrun (or another launcher) started this process as part of a group of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> Group | None:
    """The group this process trains in; None for a single process."""
    return _group


def setup(device_setting: str = "auto") -> Group | None:
    """Join the group torchrun's environment describes (once; later calls return it); None without one.

    ``device_setting`` is ``train.device``: ``auto`` or ``cuda`` take the GPU ``LOCAL_RANK`` names when
    CUDA exists, anything else (``cpu``) trains every rank on the CPU with gloo."""
    global _group
    if _group is not None or not requested():
        return _group
    import torch.distributed as dist

    from ganstudio.config import ConfigError

    _die_with_launcher()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    kind = device_setting.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():  # else it would quietly train on the CPU
        raise ConfigError(f"train.device = {device_setting!r} but this machine has no CUDA device; set "
                          "train.device = 'cpu' (or 'auto') to train the processes on the CPU")
    cuda = kind in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        # every rank checks the count of the whole machine, so all of them refuse with the same line before
        # any rendezvous (a check of LOCAL_RANK alone failed some ranks while the others waited for them)
        here, gpus = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), local + 1), torch.cuda.device_count()
        if here > gpus:
            raise ConfigError(f"{here} processes on this machine but {gpus} CUDA device(s): start one process "
                              f"per GPU (--nproc {gpus}), or set train.device = 'cpu'")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif kind not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device = {device_setting!r}: several processes train on cuda or cpu only")
    else:
        device = torch.device("cpu")
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        # torchrun keeps one store across the restarts of --max-restarts: keys under this attempt's own
        # prefix, or a restarted rank reads the addresses of the group that died and cannot connect
        store, _, _ = next(dist.rendezvous("env://", timeout=TIMEOUT))
        store = dist.PrefixStore(f"ganstudio/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=TIMEOUT,
                                **({"device_id": device} if cuda else {}))
    _group = Group(rank, world, local, backend, device)
    return _group


def _die_with_launcher() -> None:
    """A rank whose launcher dies without passing a signal on (kill -9 of torchrun or of ``ganstudio train
    --nproc``) would train on as an orphan for ever. Linux's PR_SET_PDEATHSIG sends it SIGTERM instead, which
    it handles as any stop: it saves and exits. Elsewhere nothing is done."""
    if not sys.platform.startswith("linux") or "TORCHELASTIC_RUN_ID" not in os.environ:
        return  # only under torchrun's agent (torchrun, --nproc): a process of our own has its own parent
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the call above: nobody would send the signal now
        os.kill(os.getpid(), signal.SIGTERM)


def cleanup() -> None:
    """Leave the group (at the end of a run, on every rank)."""
    global _group
    if _group is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    _group = None


def check_batch(batch_size: int, group: Group | None) -> None:
    """``train.batch_size`` is the global batch: it must split evenly over the ranks."""
    from ganstudio.config import ConfigError

    if group is not None and batch_size % group.world_size:
        raise ConfigError(f"train.batch_size = {batch_size} does not divide by the {group.world_size} "
                          f"processes (train.batch_size is the global batch, split evenly over them); use a "
                          f"multiple of {group.world_size}")


def own_rank(state: dict[str, Any], group: Group | None) -> tuple[dict[str, Any], str | None]:
    """A state (checkpoint or snapshot) with this rank's random states in place of rank 0's, and a
    notice when it was written by another number of processes (the run then continues from rank 0's
    states: the global batch is the same, the numbers are not the ones the old group would have drawn)."""
    rank, world = (group.rank, group.world_size) if group else (0, 1)
    saved = int(state.get("world_size", 1))
    if saved != world:
        return state, (f"the checkpoint was written by {saved} process(es) and this run has {world}: it "
                       "continues with the same global batch, but not exactly as the old run would have")
    ranks = state.get("ranks")
    return ({**state, **ranks[rank]} if ranks else state), None


# --- the networks ---------------------------------------------------------------------------------------
def wrap(module: nn.Module, group: Group | None) -> nn.Module:
    """``module`` in its own DDP wrapper under a group; as it is otherwise."""
    if group is None or not any(p.requires_grad for p in module.parameters()):
        return module
    _canonical_conv_strides(module)
    device_ids = [group.device.index] if group.device.type == "cuda" else None
    ddp = _gan_ddp_type()
    # no buffer broadcast at each forward (see the module docstring); torch >= 2.14 names it forward_sync_buffers
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters \
        else {"broadcast_buffers": False}
    return ddp(module, device_ids=device_ids, **no_sync)


def _canonical_conv_strides(module: nn.Module) -> None:
    """Give a conv weight that is contiguous in memory but carries channels-last strides (in_channels 1 under
    ``train.channels_last``: [8, 1, 4, 4] with strides [16, 1, 4, 1]) the canonical strides. Both describe
    the same memory, but DDP's bucket view copies the weight's strides, and a double backward (WGAN-GP's
    penalty, R1) makes that weight's gradient with the canonical ones: DDP then warns "Grad strides do not
    match bucket view strides" and copies the gradient at every step. The memory order is the same, so
    nothing changes but the strides. Transposed convolutions keep theirs: their weight gradients come with
    the channels-last strides whatever the weight's (checked on the CPU), so they already match."""
    for layer in module.modules():
        if not isinstance(layer, nn.modules.conv._ConvNd) or layer.transposed:
            continue
        for p in layer.parameters(recurse=False):
            canonical = torch.empty(p.shape, device="meta").stride()
            if p.is_contiguous() and p.stride() != canonical:
                p.data = p.data.clone(memory_format=torch.contiguous_format)


def sync_batch_norm(module: nn.Module, group: Group | None) -> nn.Module:
    """``module`` with every batch norm a SyncBatchNorm, whose batch statistics are pooled over the group's
    ranks (``train.sync_batch_norm``): what a small per-GPU batch needs. The same weights and buffers; call
    it before :func:`wrap`. CUDA only: SyncBatchNorm's forward does not run on the CPU."""
    from ganstudio.config import ConfigError

    if group is None:
        return module
    if group.device.type != "cuda":
        raise ConfigError(sync_batch_norm_refused(group.world_size, group.device.type))
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def sync_batch_norm_refused(processes: int, device_type: str) -> str:
    return (f"train.sync_batch_norm = true needs CUDA GPUs, but these {processes} processes train on the "
            f"{device_type} (SyncBatchNorm does not run there): set train.sync_batch_norm = false")


SYNC_BATCH_NORM_IGNORED = ("train.sync_batch_norm = true is ignored by a single process: there is no other "
                           "process to pool batch statistics with")


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (what checkpoints, samples and exports use)."""
    return module.module if _GAN_DDP is not None and isinstance(module, _GAN_DDP) else module


_GAN_DDP = None  # the DDP subclass below, made on first use: a single process never imports torch.distributed


def _gan_ddp_type():
    global _GAN_DDP
    if _GAN_DDP is None:
        from torch.nn.parallel import DistributedDataParallel

        class GanDDP(DistributedDataParallel):
            def forward(self, *args, **kwargs):
                # D inside G's step has requires_grad off: its gradients are not wanted, so DDP must not
                # expect them (it would fail at the next step); a no-grad forward needs no DDP either
                if not torch.is_grad_enabled() or not next(self.module.parameters()).requires_grad:
                    return self.module(*args, **kwargs)
                return super().forward(*args, **kwargs)

        _GAN_DDP = GanDDP
    return _GAN_DDP


# --- the loop's control, shared ---------------------------------------------------------------------------
class SharedControl:
    """The loop's control under a group: every rank sees the same pause state, requests, live changes,
    next action and training clock, all of them rank 0's, taken at the step boundary in one broadcast.

    Commands (from the studio, Ctrl-C, the command file) reach rank 0's own control, the ``source``; the
    other ranks' sources are ignored, so a signal torchrun forwards to every rank stops the run once,
    through rank 0, at a step boundary."""

    def __init__(self, source, group: Group, clock: Callable[[], float]) -> None:
        self.source, self.group, self.clock = source, group, clock
        self._paused = self._stopped = False
        self._requests: list[str] = []
        self._changes: list[tuple[str, Any]] = []
        self.training_time = 0.0
        self._lock = threading.Lock()

    # commands go to rank 0's own control, which the next boundary shares
    def pause(self) -> None:
        self.source.pause()

    def resume(self) -> None:
        self.source.resume()

    def step_once(self, kind: str = "both") -> None:
        self.source.step_once(kind)

    def stop(self) -> None:
        self.source.stop()

    def request(self, name: str) -> None:
        self.source.request(name)

    def set_hparam(self, key: str, value: Any) -> None:
        self.source.set_hparam(key, value)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.source.wait_idle(timeout)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def take_requests(self) -> list[str]:
        with self._lock:
            requests, self._requests = self._requests, []
        return requests

    def take_changes(self) -> list[tuple[str, Any]]:
        with self._lock:
            changes, self._changes = self._changes, []
        return changes

    def next_step(self, timeout: float | None = None) -> str | None:
        """Rank 0 asks its control (blocking while paused, as a single process does); every rank gets
        the answer, with what came with it. Called at the same point of every rank's loop."""
        decision = None
        if self.group.is_main:
            action = self.source.next_step(timeout=timeout)
            decision = (action, self.source.paused, self.source.take_requests(), self.source.take_changes(),
                        self.clock())
        action, paused, requests, changes, self.training_time = self.group.broadcast(decision)
        with self._lock:
            self._paused, self._stopped = paused, action is None
            self._requests += requests
            self._changes += changes
        return action
