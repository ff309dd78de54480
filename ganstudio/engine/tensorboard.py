"""Optional TensorBoard output: the same scalars and sample grids as metrics.jsonl and samples/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganstudio.config import ConfigError
from ganstudio.engine.events import Event, RunFinished, Samples, StepStats
from ganstudio.grids import grid_image


class TensorBoardWriter:
    """An event callback writing TensorBoard event files into ``folder``."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard = true needs the tensorboard package: "
                              "pip install 'ganstudio[tensorboard]' (or set train.tensorboard = false)") from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStats):
            for key, value in event.to_json().items():
                if key not in ("step", "epoch", "steps") and isinstance(value, float):
                    self.writer.add_scalar(key, value, event.step)
        elif isinstance(event, Samples):
            self.writer.add_image("samples", np.asarray(grid_image(event.images, event.columns).convert("RGB")),
                                  event.step, dataformats="HWC")
        elif isinstance(event, RunFinished):
            self.writer.close()
