"""The run folder: config.toml, metrics.jsonl, samples/step_NNNNNN.png, checkpoints/last.pt.

Everything the studio shows can be rebuilt from these files.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from ganstudio.config import RunConfig
from ganstudio.fileio import atomic_write, atomic_write_bytes


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.samples_dir = self.path / "samples"
        self.checkpoints_dir = self.path / "checkpoints"
        self.last_checkpoint = self.checkpoints_dir / "last.pt"

    @classmethod
    def new(cls, root: str | Path, name: str) -> RunDir:
        """A fresh folder ``root/name-YYYYmmdd-HHMMSS`` (with a suffix if that exists)."""
        stem = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = stem, 1
        while path.exists():
            n += 1
            path = stem.with_name(f"{stem.name}-{n}")
        return cls(path)

    def create(self) -> None:
        for folder in (self.path, self.samples_dir, self.checkpoints_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: RunConfig) -> None:
        config.save(self.config_path)

    def append_metrics(self, row: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")

    def read_metrics(self) -> list[dict]:
        """The logged rows; a torn last line (from a crash mid-write) is ignored."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past ``after_step``: on resume from a checkpoint, history after it did not happen."""
        rows = self.read_metrics()
        kept = [r for r in rows if r.get("step", 0) <= after_step]
        if len(kept) != len(rows) or self.metrics_path.is_file():
            text = "".join(json.dumps(r) + "\n" for r in kept)
            atomic_write_bytes(self.metrics_path, text.encode())

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:06d}.png"

    def write_grid(self, step: int, images: np.ndarray, columns: int | None = None) -> Path:
        path = self.sample_path(step)
        save_grid(images, path, columns)
        return path

    def write_reconstructions(self, step: int, pairs: np.ndarray) -> Path:
        """``samples/recon_NNNNNN.png``: (real, reconstruction) pairs side by side."""
        path = self.samples_dir / f"recon_{step:06d}.png"
        save_grid(pairs, path, pair_columns(len(pairs) // 2))
        return path


def pair_columns(pairs: int) -> int:
    """Images per row for ``pairs`` (real, reconstruction) pairs: a squarish grid of whole pairs."""
    return 2 * max(1, math.ceil(math.sqrt(pairs)))


def grid_image(images: np.ndarray, padding: int = 2, columns: int | None = None) -> Image.Image:
    """uint8 (N, H, W, C) -> one PIL image, ``columns`` (default ceil(sqrt(N))) images per row."""
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2)
    nrow = columns or math.ceil(math.sqrt(len(images)))
    grid = make_grid(tensor, nrow=nrow, padding=padding, pad_value=0).permute(1, 2, 0).numpy()
    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)


def save_grid(images: np.ndarray, path: Path, columns: int | None = None) -> None:
    image = grid_image(images, columns=columns)
    atomic_write(Path(path), lambda f: image.save(f, format="PNG"))


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a None in metrics.jsonl means "not a finite number"
    return value
