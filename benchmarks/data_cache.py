"""Reading training batches from the prepared cache against decoding the folder every epoch.

    python benchmarks/data_cache.py [--images 20000] [--size 128] [--batch 64] [--batches 200]

Makes a folder of ``--images`` generated JPEGs (160 x 128 px, as photos come: not yet square) in a temp
folder, then measures, in one process:

1. the cache's one-time build (decode, resize, crop, write) and its reuse check on a second open;
2. batches from the cache: ``build_batches`` with ``data.memory_limit_mb = 0``, so every batch is
   gathered from the memory-mapped file (the path of a folder too large for memory), as float tensors
   in [-1, 1] like training gets;
3. a torchvision-style loader decoding the files every epoch: ``ImageFolder``-like dataset, PIL open,
   ``Resize(size)``, ``CenterCrop(size)``, ``PILToTensor``, shuffled, 2 workers, then the same
   normalisation.

It prints images/s of (2) and (3) and their ratio. Nothing is asserted: the figures depend on the
machine, its disk and its page cache (the file here was just written, so it is in memory).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganstudio.config import DataConfig
from ganstudio.data import build_batches

WARMUP = 5  # batches left out of each timing: worker start-up, first page faults


def make_folder(folder: Path, n: int, size: int) -> None:
    """Smooth colour gradients plus noise: JPEGs of a realistic size, cheap to generate."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:size, 0:size * 5 // 4].astype(np.float32)
    for i in range(n):
        a, b, c = rng.random(3) * 2
        base = np.stack([xs * a, ys * b, (xs + ys) * c], axis=-1) % 256
        noisy = base + rng.normal(0, 12, base.shape)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06}.jpg", quality=90)


class Files(Dataset):
    """What torchvision's ImageFolder does per item: open, convert to RGB, transform."""

    def __init__(self, paths: list[Path], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), 0


def rate(next_batch, batches: int, batch: int) -> float:
    for _ in range(WARMUP):
        next_batch()
    start = time.perf_counter()
    for _ in range(batches):
        next_batch()
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=200, help="timed batches per loader")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANSTUDIO_CACHE"] = str(Path(tmp, "cache"))  # the user's cache is left alone
        folder = Path(tmp, "images")
        folder.mkdir()
        start = time.perf_counter()
        make_folder(folder, args.images, args.size)
        print(f"generated {args.images} JPEGs in {time.perf_counter() - start:.1f} s")

        cfg = DataConfig(source="folder", path=folder, image_size=args.size, channels=3, cache="on",
                         memory_limit_mb=0)
        start = time.perf_counter()
        cached = build_batches(cfg, batch_size=args.batch, device="cpu", seed=0)
        built = time.perf_counter() - start
        start = time.perf_counter()
        cached = build_batches(cfg, batch_size=args.batch, device="cpu", seed=0)
        reopened = time.perf_counter() - start
        print(f"cache: built in {built:.1f} s ({args.images / built:.0f} images/s, once); "
              f"reopened in {reopened:.2f} s (a scan of sizes and mtimes)")
        batches = min(args.batches, cached.batches_per_epoch - WARMUP)
        from_cache = rate(cached.next, batches, args.batch)

        transform = transforms.Compose([transforms.Resize(args.size), transforms.CenterCrop(args.size),
                                        transforms.PILToTensor()])
        loader = DataLoader(Files(sorted(folder.iterdir()), transform), batch_size=args.batch, shuffle=True,
                            num_workers=2, drop_last=True, persistent_workers=True)
        iterator = iter(loader)

        def decoded_batch() -> torch.Tensor:
            images, _ = next(iterator)
            return images.float().div_(127.5).sub_(1)

        from_files = rate(decoded_batch, batches, args.batch)
        # the loader's workers are daemons: they end with this process
    print(f"batches of {args.batch} at {args.size} px RGB, {batches} timed each:")
    print(f"  from the cache (memory map)          {from_cache:10.0f} images/s")
    print(f"  decoding the files (DataLoader, 2 w)  {from_files:10.0f} images/s")
    print(f"  ratio cache / decoding                {from_cache / from_files:10.1f} x")


if __name__ == "__main__":
    main()
