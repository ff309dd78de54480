"""Using a trained generator without building a Trainer (no dataset, no optimizers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganstudio.config import ConfigError, RunConfig, from_dict
from ganstudio.engine import checkpoint
from ganstudio.engine.rundir import RunDir
from ganstudio.models import build_models


def checkpoint_path(run_or_file: str | Path, which: str = "last") -> Path:
    """A checkpoint file from a run folder and a name (``last``), or a file given directly."""
    path = Path(run_or_file)
    if path.is_dir():
        named = RunDir(path).checkpoints_dir / f"{which}.pt"
        return named if named.is_file() or which in ("last", "best") else Path(which)
    return path


def load_generator(run_or_file: str | Path, which: str = "last", device: str | torch.device = "cpu"
                   ) -> tuple[RunConfig, nn.Module]:
    """(config, G in eval mode on ``device``) from a run folder's checkpoint; G's EMA weights when kept."""
    path = checkpoint_path(run_or_file, which)
    payload = checkpoint.load(path)
    try:
        config = from_dict(payload["config"], source=f"checkpoint {path}")
    except ConfigError as err:
        raise checkpoint.CheckpointError(f"the config inside {path} is not valid for this ganstudio: {err}")
    g, _ = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
    try:
        state = payload["state"]
        g.load_state_dict(state.get("g_ema", state["g"]))  # the EMA generator, when the run kept one
    except (KeyError, RuntimeError) as err:
        raise checkpoint.CheckpointError(f"{path}: generator weights do not match its config: {err}") from err
    return config, g.to(device).eval()


@torch.no_grad()
def generate(g: nn.Module, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, H, W, C) images for the latent vectors ``z``, in batches."""
    from ganstudio.engine.trainer import to_uint8

    device = next(g.parameters()).device
    parts = [to_uint8(g(z[i:i + batch_size].to(device))) for i in range(0, len(z), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 1, 1, 1), np.uint8)


def seeded_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


EVAL_SEED_OFFSET = 4  # evaluation noise: train.seed + 4, the same at every step and in `ganstudio eval`


@torch.no_grad()
def eval_images(g: nn.Module, config: RunConfig, n: int) -> torch.Tensor:
    """n uint8 images (N, C, H, W) on the CPU from the run's fixed evaluation noise; G in eval mode."""
    was_training = g.training
    g.eval()
    try:
        images = generate(g, seeded_noise(n, config.model.z_dim, config.train.seed + EVAL_SEED_OFFSET))
    finally:
        g.train(was_training)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
