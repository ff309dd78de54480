"""Training batches on the device: in memory (:class:`TensorBatches`) or streamed (:class:`StreamBatches`).

Both draw the same order: epoch ``e`` is the permutation ``randperm(N)`` from a generator seeded with
``hash(seed, e)``, cut into ``N // batch_size`` batches (the last partial batch is dropped). So the
whole data order is fixed by (seed, epoch, position), which is all ``state_dict`` needs to resume
exactly, and the two implementations can stand in for each other across a resume.

Under several processes (``shard``) ``batch_size`` stays the global batch: every rank walks the same
order and takes its own contiguous part of each batch, so the ranks together see exactly the batches one
process would.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import mmap
import multiprocessing
import multiprocessing.synchronize

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganstudio.config import DataConfig
from ganstudio.data import cache
from ganstudio.data.base import CancelCheck, Cancelled, DataError, ImageSet
from ganstudio.data.decode import SkippedImage
from ganstudio.data.source_types import FileSource
from ganstudio.data.sources import Source, open_source

log = logging.getLogger(__name__)
_MAX_FALLBACKS = 16  # a streamed file that fails to decode is replaced by one of the next 16 images
_FLIP_SALT = 0x9E3779B97F4A7C15  # keeps an epoch's flip coins apart from its order (same generator and seed)
# data.cache = "auto" prepares folders of at least this many files: below it decoding takes a second or
# two, about what checking and mapping a cache saves, and no file is left in the user's cache folder
CACHE_FROM = 1000
_RELEASE_BYTES = 256 * 2 ** 20  # mapped pages a MapBatches keeps in its resident set before dropping them


def epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for one epoch's permutation; a hash keeps nearby (seed, epoch) pairs unrelated."""
    digest = hashlib.blake2b(f"ganstudio-data:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def permutation(seed: int, epoch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Epoch ``epoch``'s order of the ``n`` images (CPU int64), drawn with ``generator`` (re-seeded)."""
    generator.manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


class Batches:
    """Endless training batches; see the module docstring for the order they come in."""

    in_memory: bool

    def __init__(self, *, num_images: int, batch_size: int, image_size: int, channels: int,
                 class_names: list[str] | None, warnings: list[str], device: torch.device | str,
                 seed: int, name: str) -> None:
        if batch_size > num_images:
            raise DataError(f"train.batch_size = {batch_size} is larger than the {num_images} images of "
                            f"{name}; lower the batch size or use more images")
        self.num_images, self.batch_size = num_images, batch_size
        self.image_size, self.channels = image_size, channels
        self.class_names = class_names
        self.num_classes = len(class_names) if class_names else None
        self.warnings = warnings
        self.device = torch.device(device)
        self.batches_per_epoch = num_images // batch_size
        self.epoch = 0  # completed passes over the data
        self._position = 0  # batches already taken in the current epoch
        self._seed = seed
        # our own generator: drawing the order never touches (or depends on) the global RNG
        self._generator = torch.Generator()
        self._part = slice(0, batch_size)  # this rank's rows of each global batch (all of it: one process)

    def shard(self, rank: int, world_size: int) -> None:
        """Take rows [rank·b, (rank+1)·b) of each global batch, b = batch_size / world_size."""
        if self.batch_size % world_size:
            raise DataError(f"train.batch_size = {self.batch_size} does not divide by {world_size} processes")
        b = self.batch_size // world_size
        self._part = slice(rank * b, (rank + 1) * b)
        self._restart()

    def _rows(self, position: int) -> slice:
        """The positions in the epoch's order of this rank's part of batch ``position``."""
        start = position * self.batch_size
        return slice(start + self._part.start, start + self._part.stop)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """images float32 (B, C, H, W) in [-1, 1] and labels int64 (B,) (-1 = unlabelled), on the device."""
        raise NotImplementedError

    def close(self) -> None:
        """Release loader workers (streaming); the object can still be used, they restart on demand."""

    def _advance(self) -> None:
        self._drawn = (self.epoch, self._position)  # the batch being handed out: what _hflip flips
        self._position += 1
        if self._position == self.batches_per_epoch:
            self.epoch += 1
            self._position = 0

    hflip = False  # data.hflip, set by build_batches
    _coins_key: tuple[int, int] | None = None

    def _hflip(self, images: torch.Tensor) -> torch.Tensor:
        """``data.hflip``: mirror each image of the batch just taken with probability 1/2, on the device.

        The coins are one draw per epoch and image position, from the data's generator re-seeded from
        (seed, epoch) as the order is: a resumed run flips exactly the images it would have. It costs one
        N-byte copy to the device per epoch and a batch-sized select per step, no host sync."""
        if not self.hflip:
            return images
        epoch, position = self._drawn
        if self._coins_key != (self._seed, epoch):
            self._generator.manual_seed(epoch_seed(self._seed, epoch) ^ _FLIP_SALT)
            coins = torch.rand(self.num_images, generator=self._generator) < 0.5
            self._coins, self._coins_key = coins.to(self.device), (self._seed, epoch)
        flip = self._coins[self._rows(position)]
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)

    def state_dict(self) -> dict:
        """Plain ints: loads under ``torch.load(weights_only=True)``."""
        return {"seed": self._seed, "epoch": self.epoch, "position": self._position,
                "num_images": self.num_images, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where ``state`` was taken (the seed comes from ``state``)."""
        for key in ("num_images", "batch_size"):
            if int(state[key]) != getattr(self, key):
                raise DataError(
                    f"cannot resume the data order: the checkpoint was taken with {key} = {state[key]}, "
                    f"this run has {getattr(self, key)}. Use the same data settings and batch size as "
                    "the run that wrote the checkpoint")
        self._seed, self.epoch, self._position = int(state["seed"]), int(state["epoch"]), int(state["position"])
        self._restart()

    def _restart(self) -> None:
        """Forget anything drawn ahead of (epoch, position)."""


class TensorBatches(Batches):
    """The whole dataset as one uint8 tensor on the device; a batch is one gather, no host sync."""

    in_memory = True

    def __init__(self, data: ImageSet, *, batch_size: int, device: torch.device | str, seed: int,
                 name: str = "the dataset") -> None:
        n, channels, size, _ = data.images.shape
        super().__init__(num_images=n, batch_size=batch_size, image_size=size, channels=channels,
                         class_names=data.class_names, warnings=list(data.warnings), device=device,
                         seed=seed, name=name)
        self._images = data.images.to(self.device)  # the one host -> device copy of the pixels
        labels = data.labels if data.labels is not None else torch.full((n,), -1, dtype=torch.long)
        self._labels = labels.to(self.device)
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._order_epoch != self.epoch:
            # once per epoch: randperm on the CPU (the same order on every device), copied from pinned
            # memory without blocking, so the CPU never waits for the device here either
            order = permutation(self._seed, self.epoch, self.num_images, self._generator)
            cuda = self.device.type == "cuda"
            self._order = (order.pin_memory() if cuda else order).to(self.device, non_blocking=cuda)
            self._order_epoch = self.epoch
        index = self._order[self._rows(self._position)]  # Python ints only: no .item(), no sync
        self._advance()
        images = self._hflip(self._images.index_select(0, index).float().div_(127.5).sub_(1))
        return images, self._labels.index_select(0, index)

    def _restart(self) -> None:
        self._order, self._order_epoch = None, -1


class MapBatches(Batches):
    """Batches gathered per step from a prepared cache file (``cache.py``), mapped read-only: no
    decoding, and each step reads only its batch's rows (B x C x H x W bytes), whatever the folder's size.

    Random rows come from the OS page cache (a memcpy) once the file has been read; from a cold disk each
    is a seek, so the first epoch of a folder larger than RAM runs at the disk's random-read rate.
    """

    in_memory = False

    def __init__(self, prepared: cache.Prepared, source: FileSource, *, batch_size: int,
                 device: torch.device | str, seed: int) -> None:
        n, channels, size, _ = prepared.images.shape
        super().__init__(num_images=n, batch_size=batch_size, image_size=size, channels=channels,
                         class_names=source.class_names, warnings=list(source.warnings) + prepared.warnings,
                         device=device, seed=seed, name=source.name)
        self._images = prepared.images
        labels = prepared.labels(source)
        self._labels = labels if labels is not None else torch.full((n,), -1, dtype=torch.long)
        self._order: np.ndarray | None = None
        self._order_epoch = -1
        self._read_since_release = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._order_epoch != self.epoch:
            self._order = permutation(self._seed, self.epoch, self.num_images, self._generator).numpy()
            self._order_epoch = self.epoch
        index = self._order[self._rows(self._position)]
        self._advance()
        rows = torch.from_numpy(np.asarray(self._images[index]))  # reads these rows only, in this order
        self._release(rows.numel())
        cuda = self.device.type == "cuda"
        if cuda:
            rows = rows.pin_memory()  # so the copy below overlaps the device's work
        images = self._hflip(rows.to(self.device, non_blocking=cuda).float().div_(127.5).sub_(1))
        return images, self._labels[torch.from_numpy(index)].to(self.device, non_blocking=cuda)

    def _release(self, nbytes: int) -> None:
        """Drop the map's pages from this process every 256 MiB read: they stay in the OS page cache (the
        next read of them is still a memcpy), but no longer count in the resident set, which would
        otherwise grow to the file's size over an epoch and look like a leak."""
        self._read_since_release += nbytes
        handle = getattr(self._images, "_mmap", None)
        if self._read_since_release >= _RELEASE_BYTES and handle is not None and hasattr(mmap, "MADV_DONTNEED"):
            handle.madvise(mmap.MADV_DONTNEED)
            self._read_since_release = 0

    def _restart(self) -> None:
        self._order, self._order_epoch = None, -1


class _SourceDataset(Dataset):
    """Decodes one item per call in a loader worker; a file that fails is replaced by a later one."""

    def __init__(self, source: Source) -> None:
        self.source = source
        # set by StreamBatches.close(): a worker stops between two images instead of finishing its batch,
        # which is what DataLoader's own shutdown waits for (up to 5 s per worker, then it kills them)
        self.stop: multiprocessing.synchronize.Event | None = None
        self._warned: set[int] = set()  # per worker process: each bad file is named once, not every epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.source)
        for offset in range(min(n, _MAX_FALLBACKS)):
            if self.stop is not None and self.stop.is_set():
                raise Cancelled("the stream was closed")  # read by no one: the loader is shutting down
            item = (index + offset) % n
            try:
                image = self.source.item(item)
            except SkippedImage as bad:  # found only now: the header looked fine when the set was opened
                if item not in self._warned:
                    self._warned.add(item)
                    log.warning("skipped %s while streaming; using the next image instead", bad)
                continue
            return image, self.source.label(item)
        raise DataError(f"{_MAX_FALLBACKS} images in a row from {self.source.name} could not be decoded "
                        f"(from index {index}); check the files")


class _EpochBatchSampler:
    """Yields batches of indices forever, in the order of :func:`epoch_seed`, from (epoch, position)."""

    def __init__(self, batches: Batches, epoch: int, position: int) -> None:
        self.seed, self.generator, self.num_images = batches._seed, batches._generator, batches.num_images
        self.per_epoch, self.rows = batches.batches_per_epoch, batches._rows
        self.epoch, self.position = epoch, position

    def __iter__(self):
        epoch, position = self.epoch, self.position
        while True:
            order = permutation(self.seed, epoch, self.num_images, self.generator).tolist()
            for b in range(position, self.per_epoch):
                yield order[self.rows(b)]
            epoch, position = epoch + 1, 0


class StreamBatches(Batches):
    """A DataLoader decoding per item in ``workers`` processes; for datasets too large to keep in memory."""

    in_memory = False

    def __init__(self, source: Source, *, batch_size: int, device: torch.device | str, seed: int,
                 workers: int = 0) -> None:
        super().__init__(num_images=len(source), batch_size=batch_size, image_size=source.size,
                         channels=source.channels, class_names=source.class_names,
                         warnings=list(source.warnings), device=device, seed=seed, name=source.name)
        self._dataset = _SourceDataset(source)
        self._workers = workers
        self._iterator = None

    def _loader(self) -> DataLoader:
        sampler = _EpochBatchSampler(self, self.epoch, self._position)
        # a fresh flag per loader: the workers inherit it (fork) or receive it pickled (spawn)
        self._dataset.stop = multiprocessing.get_context().Event() if self._workers else None
        return DataLoader(
            self._dataset, batch_sampler=sampler, num_workers=self._workers,
            pin_memory=self.device.type == "cuda",  # pinned pages let the copy below overlap compute
            # the loader draws its workers' base seed from this generator, not from the global RNG
            generator=torch.Generator().manual_seed(self._seed))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._iterator is None:  # starting workers costs ~0.1-1 s; once per run or resume
            self._iterator = iter(self._loader())
        images, labels = next(self._iterator)
        self._advance()
        images = self._hflip(images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1))
        return images, labels.to(self.device, non_blocking=True)

    def _restart(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers: each finishes the image it is decoding, not its whole batch."""
        iterator, self._iterator = self._iterator, None
        if self._dataset.stop is not None:
            self._dataset.stop.set()
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()  # otherwise the workers live until garbage collection


def _flipping(build):
    """Sets ``data.hflip`` on the batches ``build`` returns, whichever kind it picks."""
    @functools.wraps(build)
    def wrapped(cfg: DataConfig, *args, **kwargs) -> Batches:
        batches = build(cfg, *args, **kwargs)
        batches.hflip = cfg.hflip
        return batches
    return wrapped


@_flipping
def build_batches(cfg: DataConfig, *, batch_size: int, device: torch.device | str, seed: int,
                  cancelled: CancelCheck = None, progress: cache.Progress = None) -> Batches:
    """In memory when N x C x H x W bytes fit in ``cfg.memory_limit_mb`` MiB, else streamed; a folder
    goes through its prepared cache first (``data.cache``, see ``cache.py``): read into memory from
    there, or batches gathered from its map (:class:`MapBatches`). ``progress(done, total)`` follows
    the cache's build.

    ``cancelled`` is asked while the folder is listed, checked and decoded (once per folder, every 32
    header checks, once per decoded file); when it returns True, :class:`Cancelled` is raised within
    about one file's decode and nothing is kept. The result's ``warnings`` are not logged: show them.
    """
    source = open_source(cfg, cancelled=cancelled)
    nbytes = len(source) * cfg.channels * cfg.image_size ** 2
    fits = nbytes <= cfg.memory_limit_mb * 2 ** 20
    if _cache_wanted(cfg, source):
        try:
            prepared = cache.prepare(source, cancelled=cancelled, progress=progress)
        except cache.CacheUnavailable as err:
            if cfg.cache == "on":
                raise
            fallback = _uncached(cfg, source, fits, batch_size=batch_size, device=device, seed=seed,
                                 cancelled=cancelled)
            fallback.warnings.append(f"{err}; decoding the folder without it this time")
            return fallback
        if fits:
            return TensorBatches(prepared.image_set(source), batch_size=batch_size, device=device, seed=seed,
                                 name=source.name)
        return MapBatches(prepared, source, batch_size=batch_size, device=device, seed=seed)
    return _uncached(cfg, source, fits, batch_size=batch_size, device=device, seed=seed, cancelled=cancelled)


def _cache_wanted(cfg: DataConfig, source: Source) -> bool:
    """Sources of one file per image (folders, torchvision:CelebA); the array sources (MNIST, CIFAR,
    SVHN) are one array in memory already, and resizing it in batches takes well under a minute."""
    if not isinstance(source, FileSource) or not source.where or cfg.cache == "off":
        return False
    return cfg.cache == "on" or len(source) >= CACHE_FROM


def _uncached(cfg: DataConfig, source: Source, fits: bool, *, batch_size: int, device: torch.device | str,
              seed: int, cancelled: CancelCheck) -> Batches:
    """Decoded into memory now, or streamed through a DataLoader decoding per step."""
    nbytes = len(source) * cfg.channels * cfg.image_size ** 2
    if fits:
        return TensorBatches(source.decode_all(cancelled, log_warnings=False), batch_size=batch_size,
                             device=device, seed=seed, name=source.name)
    log.info("%s needs %.0f MiB > data.memory_limit_mb = %d: streaming it with %d workers",
             source.name, nbytes / 2 ** 20, cfg.memory_limit_mb, cfg.workers)
    return StreamBatches(source.checked(cancelled, log_warnings=False), batch_size=batch_size, device=device,
                         seed=seed, workers=cfg.workers)
