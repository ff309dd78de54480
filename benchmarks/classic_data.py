"""The data side of the classic pytorch/examples loops the benchmarks compare against."""

from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import Dataset


class PilImages(Dataset):
    """1-channel images served as torchvision's MNIST serves them: one PIL image per item, transformed."""

    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i, 0].numpy(), mode="L")), 0
