"""A run's training state as plain data: networks, optimizers, random generators, the step and the config.

The step strategies (``gan.py``, ``autoencoder.py``) read and change a :class:`TrainState` and nothing
else; the Trainer owns one and adds the data, the run folder, sampling and evaluation around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganstudio.config import RunConfig
from ganstudio.engine import seeds
from ganstudio.engine.devices import check_precision
from ganstudio.engine.distributed import SYNC_BATCH_NORM_IGNORED, Group, sync_batch_norm, unwrap, wrap
from ganstudio.engine.precision import Precision
from ganstudio.engine.schedules import lr_factor, schedule_horizon
from ganstudio.families import Family, family_of
from ganstudio.models import build_models

Batch = Callable[[], tuple[Tensor, Tensor]]  # the next (images, labels) batch on the device


@dataclass
class Rngs:
    """The run's own generators: noise and penalties never draw from (or shift) the global RNG."""

    noise: torch.Generator    # z, a VAE's ε, a cgan's fake labels
    penalty: torch.Generator  # WGAN-GP's interpolation weights
    augment: torch.Generator  # DiffAugment, instance noise

    @classmethod
    def seeded(cls, seed: int, device: torch.device, rank: int = 0) -> Rngs:
        """Under several processes the noise and penalty streams are the same on every rank (each takes its
        part of the global batch's draw: see ``TrainState.noise`` and ``TrainState.penalty_weights``); the
        augmentation stream differs by rank, so the ranks' images are not all augmented alike."""
        return cls(torch.Generator(device).manual_seed(seed + seeds.NOISE),
                   torch.Generator(device).manual_seed(seed + seeds.PENALTY),
                   torch.Generator(device).manual_seed((seed + seeds.AUGMENT + rank * _RANK_STRIDE) % 2**64))

    @classmethod
    def moved(cls, seed: int, step: int, device: torch.device, rank: int = 0) -> Rngs:
        """Fresh streams for a run continued on another kind of device, whose generator states these are
        not (a CUDA generator keeps a seed and an offset, the CPU's a Mersenne-Twister table): seeded from
        the seed, the stream and the step, so the continued run is reproducible, though not the run that
        stayed on the first device. As in ``seeded``, the noise and penalty streams are the same on every
        rank, the augmentation stream is the rank's own."""
        def stream(offset: int, per_rank: bool) -> torch.Generator:
            value = seed + offset + step * _STEP_STRIDE + (rank * _RANK_STRIDE if per_rank else 0)
            return torch.Generator(device).manual_seed(value % 2**64)

        return cls(stream(seeds.NOISE, False), stream(seeds.PENALTY, False), stream(seeds.AUGMENT, True))

    @property
    def device_type(self) -> str:
        return self.noise.device.type

    def state_dict(self) -> dict[str, Any]:
        return {"noise_rng": self.noise.get_state(), "penalty_rng": self.penalty.get_state(),
                "augment_rng": self.augment.get_state(), "rng_device": self.device_type}

    def fits(self, state: dict[str, Any]) -> bool:
        """Whether ``state``'s generator states were saved on this kind of device (any CUDA GPU fits
        any other). Checkpoints older than ``rng_device`` tell by the state's size."""
        saved = state.get("rng_device")
        if saved is None:
            saved = "cpu" if state["noise_rng"].numel() == torch.Generator().get_state().numel() else "?"
            return saved == self.device_type or (saved == "?" and self.device_type != "cpu")
        return saved == self.device_type

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise_rng"].cpu())
        self.penalty.set_state(state["penalty_rng"].cpu())
        if "augment_rng" in state:  # absent from checkpoints written before DiffAugment existed
            self.augment.set_state(state["augment_rng"].cpu())


_STEP_STRIDE = 1_000_003  # > every seeds offset: stream k at step s never meets stream j at step t
_RANK_STRIDE = 7_919 * 2**40  # far beyond any step stride: rank r's streams meet no other rank's


@dataclass
class TrainState:
    """What one training step reads and changes. ``d`` is the encoder for the autoencoder families."""

    config: RunConfig
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rngs: Rngs
    device: torch.device
    memory_format: torch.memory_format = torch.contiguous_format
    step: int = 0  # counted (generator) steps so far
    precision: Precision | None = None  # autocast and fp16's scalers; built from the config when None
    moved_from: str | None = None  # the device type the loaded random streams came from, when not this one
    rank: int = 0        # this process's rank, and how many train together (torchrun; 1 = a single process)
    world_size: int = 1
    notices: list[str] = field(default_factory=list)  # what building did differently from the config, in words

    def __post_init__(self) -> None:
        if self.precision is None:
            self.precision = Precision(self.config.train.precision, self.device)

    @property
    def family(self) -> Family:
        return family_of(self.config)

    def noise(self, n: int) -> Tensor:
        if self.world_size == 1:
            return torch.randn(n, self.config.model.z_dim, device=self.device, generator=self.rngs.noise)
        # every rank draws the global batch's noise and takes its own rows: the same z as one process
        # drawing it all (the equivalence the DDP tests check), for a draw world_size times larger
        z = torch.randn(n * self.world_size, self.config.model.z_dim, device=self.device, generator=self.rngs.noise)
        return z[self.rank * n:(self.rank + 1) * n]

    def penalty_weights(self, n: int) -> Tensor:
        """WGAN-GP's interpolation weights α ~ U[0, 1] for this rank's ``n`` rows, on the penalty stream's
        device. As for ``noise``, every rank draws the global batch's and takes its own rows, so the penalty
        is the one a single process computes; a single process draws exactly what ``gradient_penalty``'s own
        draw would."""
        alpha = torch.rand(n * self.world_size, device=self.rngs.penalty.device, generator=self.rngs.penalty)
        return alpha[self.rank * n:(self.rank + 1) * n]

    def state_dict(self) -> dict[str, Any]:
        return {"g": unwrap(self.g).state_dict(), "d": unwrap(self.d).state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "step": self.step, **self.rngs.state_dict(), **self.precision.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.g).load_state_dict(state["g"])
        unwrap(self.d).load_state_dict(state["d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.precision.load_state_dict(state)
        if self.rngs.fits(state):
            self.rngs.load_state_dict(state)
            self.moved_from = None
        else:
            self.moved_from = state.get("rng_device", "another device")
            self.rngs = Rngs.moved(self.config.train.seed, self.step, self.device, self.rank)
        apply_optim_settings(self)


def build_state(config: RunConfig, device: torch.device, group: Group | None = None) -> TrainState:
    """Networks (drawn from the global RNG: seed it first), optimizers and generators for ``config``;
    under a ``group`` G and D each in its own DDP wrapper (see ``distributed.py``)."""
    model, train = config.model, config.train
    check_precision(train.precision, device)
    g, d = build_models(model, image_size=config.data.image_size, channels=config.data.channels)
    # channels-last pays off for convolutions only; an MLP flattens its input either way
    convs = {model.arch, model.d_arch} - {"same"}
    memory_format = torch.channels_last if train.channels_last and convs - {"mlp"} else torch.contiguous_format
    g.to(device, memory_format=memory_format)
    d.to(device, memory_format=memory_format)
    notices = []
    if train.sync_batch_norm:
        # before the DDP wrap, which registers the modules' parameters and buffers as they are then
        g, d = sync_batch_norm(g, group), sync_batch_norm(d, group)
        if group is None:
            notices.append(SYNC_BATCH_NORM_IGNORED)
    o = config.optim
    rank, world = (group.rank, group.world_size) if group else (0, 1)
    return TrainState(config, wrap(g, group), wrap(d, group),
                      _optimizer(config, g.parameters(), o.lr_g, o.weight_decay_g),
                      _optimizer(config, d.parameters(), o.lr_d, o.weight_decay_d),
                      Rngs.seeded(train.seed, device, rank), device, memory_format, rank=rank, world_size=world,
                      notices=notices)


def apply_optim_settings(state: TrainState) -> None:
    """Push the config's optimizer settings into the optimizers (the config is the truth)."""
    o = state.config.optim
    for opt, decay in ((state.opt_g, o.weight_decay_g), (state.opt_d, o.weight_decay_d)):
        for group in opt.param_groups:
            group["weight_decay"] = decay
            if "betas" in group:
                group["betas"] = (o.beta1, o.beta2)
            if "momentum" in group:
                group["momentum"] = o.momentum
    set_learning_rates(state)


def set_learning_rates(state: TrainState) -> None:
    """The configured rates times the schedule's factor at this step (a function of the step alone, so a
    resumed run gets exactly the same rates)."""
    o = state.config.optim
    factor = lr_factor(o.schedule, state.step, schedule_horizon(o, state.config.train))
    for opt, lr in ((state.opt_g, o.lr_g), (state.opt_d, o.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr * factor


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run with ``modules`` in eval mode (batch norm uses its running statistics), then restore them."""
    modes = [(m, m.training) for m in modules]
    try:
        for m, _ in modes:
            m.eval()
        yield
    finally:
        for m, training in modes:
            m.train(training)


def _optimizer(config: RunConfig, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    o = config.optim
    if o.name == "adam":
        # fused: one kernel for all parameters (CPU and CUDA), cheaper than the per-tensor loop
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), weight_decay=weight_decay, fused=True)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=o.momentum, weight_decay=weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=o.momentum, weight_decay=weight_decay, foreach=True)
