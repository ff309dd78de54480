"""Using a trained generator without building a Trainer (no dataset, no optimizers).

Every generator takes ``(z, labels=None)`` and has ``z_dim`` and ``num_classes`` (0 = unconditional);
a conditional one needs an int64 label per row. The functions here pass labels only to a generator
that takes them, so callers can treat every family alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganstudio.config import ConfigError, RunConfig, from_dict
from ganstudio.engine import checkpoint, seeds
from ganstudio.engine.rundir import RunDir
from ganstudio.families import family_of
from ganstudio.models import build_models

def checkpoint_path(run_or_file: str | Path, which: str = "last") -> Path:
    """A checkpoint file from a run folder and a name (``last``), or a file given directly."""
    path = Path(run_or_file)
    if path.is_dir():
        named = RunDir(path).checkpoints_dir / f"{which}.pt"
        return named if named.is_file() or which in ("last", "best") else Path(which)
    return path


def load_networks(run_or_file: str | Path, which: str = "last", device: str | torch.device = "cpu"
                  ) -> tuple[RunConfig, nn.Module, nn.Module | None]:
    """(config, G, encoder or None), both in eval mode on ``device``, from one read of a checkpoint.

    G is the generator (the decoder of an autoencoder or VAE), with its EMA weights when the run kept
    them; the encoder is the autoencoder families' "D" (images -> codes; a VAE's codes are
    ``(mu, logvar)`` side by side), None for the GAN families. Raises CheckpointError.
    """
    path = checkpoint_path(run_or_file, which)
    return networks_from_payload(checkpoint.load(path), path, device)


def networks_from_payload(payload: dict, path: Path, device: str | torch.device = "cpu"
                          ) -> tuple[RunConfig, nn.Module, nn.Module | None]:
    """``load_networks`` for a checkpoint already read with ``checkpoint.load`` (to read its step too)."""
    try:
        config = from_dict(payload["config"], source=f"checkpoint {path}")
    except ConfigError as err:
        raise checkpoint.CheckpointError(f"the config inside {path} is not valid for this ganstudio: {err}")
    g, d = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
    encoder = d if family_of(config).encoder else None
    try:
        state = payload["state"]
        g.load_state_dict(state.get("g_ema", state["g"]))  # the EMA generator, when the run kept one
        if encoder is not None:
            encoder.load_state_dict(state["d"])
    except (KeyError, RuntimeError) as err:
        raise checkpoint.CheckpointError(f"{path}: network weights do not match its config: {err}") from err
    return config, g.to(device).eval(), None if encoder is None else encoder.to(device).eval()


def load_generator(run_or_file: str | Path, which: str = "last", device: str | torch.device = "cpu"
                   ) -> tuple[RunConfig, nn.Module]:
    """(config, G in eval mode on ``device``) from a run folder's checkpoint; G's EMA weights when kept."""
    config, g, _ = load_networks(run_or_file, which, device)
    return config, g


def num_classes(g: nn.Module) -> int:
    """How many classes ``g`` is conditioned on; 0 for an unconditional generator."""
    return int(getattr(g, "num_classes", 0) or 0)


def class_labels(n: int, classes: int) -> torch.Tensor:
    """``0, 1, …, classes-1, 0, 1, …`` (n of them): every class in turn, as the sample grids show them."""
    return torch.arange(n) % classes


@torch.no_grad()
def generate(g: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 256
             ) -> np.ndarray:
    """uint8 (N, H, W, C) images for the latent vectors ``z`` (and, for a conditional G, ``labels``)."""
    if num_classes(g):
        if labels is None:
            raise ValueError(f"this generator is conditioned on {num_classes(g)} classes: give one label per "
                             f"latent vector")
        if len(labels) != len(z):
            raise ValueError(f"{len(labels)} labels for {len(z)} latent vectors; give one label per vector")
    device = next(g.parameters()).device
    parts = []
    for i in range(0, len(z), batch_size):
        chunk = z[i:i + batch_size].to(device)
        images = g(chunk, labels[i:i + batch_size].to(device)) if num_classes(g) else g(chunk)
        parts.append(to_uint8(images))
    return np.concatenate(parts) if parts else np.zeros((0, 1, 1, 1), np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, H, W, C) numpy."""
    images = images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def seeded_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """(n, z_dim) standard normal noise from its own generator: the same seed gives the same rows."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def fixed_noise(config: RunConfig, n: int | None = None) -> torch.Tensor:
    """The first ``n`` rows (default all ``train.num_samples``) of the noise the run's sample grids use."""
    rows = seeded_noise(config.train.num_samples, config.model.z_dim, config.train.seed + seeds.FIXED)
    return rows if n is None else rows[:n]


@torch.no_grad()
def eval_images(g: nn.Module, config: RunConfig, n: int) -> torch.Tensor:
    """n uint8 images (N, C, H, W) on the CPU from the run's fixed evaluation noise; G in eval mode.

    A conditional G gets the labels ``arange(n) % num_classes``: every class equally often.
    """
    was_training = g.training
    g.eval()
    try:
        labels = class_labels(n, num_classes(g)) if num_classes(g) else None
        images = generate(g, seeded_noise(n, config.model.z_dim, config.train.seed + seeds.EVAL), labels)
    finally:
        g.train(was_training)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
