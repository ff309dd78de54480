"""The Source type and its two kinds, images in one array or one file per image, with the IDX reader
that MNIST-like datasets share; ``sources.py`` chooses among them, ``torchvision_sources.py`` fills them.

A :class:`Source` is an indexed collection that can decode one item (the streaming path) or all of
them at once (the in-memory path) with the same functions, so both paths see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import DataError, ImageSet
from ganstudio.data.decode import SkippedImage, check_header, decode_file, decode_files, prepare, report_skipped
from ganstudio.data.idx import read_idx

_PROGRESS_FROM = 5000  # decodes of at least this many files show a progress bar (they take seconds)


@dataclass(kw_only=True)
class Source:
    """An indexed image collection at its native resolution; ``item``/``decode_all`` give uint8 pixels."""

    name: str  # says where the images come from, in messages
    size: int  # the configured side and channel count every decoded image has
    channels: int
    labels: torch.Tensor | None  # int64 (N,)
    class_names: list[str] | None
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, index: int) -> torch.Tensor:
        """uint8 (C, size, size) for one image; may raise SkippedImage (file sources)."""
        raise NotImplementedError

    def decode_all(self) -> ImageSet:
        raise NotImplementedError

    def part(self, start: int, stop: int) -> Source:
        """Images ``start`` to ``stop`` (exclusive)."""
        raise NotImplementedError

    def head(self, n: int) -> Source:
        """The first ``n`` images."""
        return self.part(0, n)

    def checked(self) -> Source:
        """This source minus the items found unusable without decoding them (streaming only)."""
        return self

    def label(self, index: int) -> int:
        return -1 if self.labels is None else int(self.labels[index])


@dataclass(kw_only=True)
class ArraySource(Source):
    """Images already in memory as one uint8 (N, C, h, w) tensor: MNIST-like IDX files, CIFAR, SVHN."""

    array: torch.Tensor

    def __len__(self) -> int:
        return len(self.array)

    def item(self, index: int) -> torch.Tensor:
        return prepare(self.array[index:index + 1], self.size, self.channels)[0]

    def decode_all(self) -> ImageSet:
        # one batched resize for the whole set: no per-image Python work
        images = prepare(self.array, self.size, self.channels)
        return ImageSet(images, self.labels, self.class_names, list(self.warnings))

    def part(self, start: int, stop: int) -> ArraySource:
        labels = None if self.labels is None else self.labels[start:stop]
        return replace(self, array=self.array[start:stop], labels=labels)


@dataclass(kw_only=True)
class FileSource(Source):
    """One image file per item: an image folder, CelebA."""

    paths: list[Path] = field(default_factory=list)
    where: str = ""  # the folder, for the skipped-files warning
    check_headers: bool = True  # False where the files are known good (a checksummed archive)

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, index: int) -> torch.Tensor:
        return decode_file(self.paths[index], self.size, self.channels)

    def decode_all(self) -> ImageSet:
        images, kept, skipped = decode_files(self.paths, self.size, self.channels,
                                             progress=len(self.paths) >= _PROGRESS_FROM)
        warnings = list(self.warnings)
        report_skipped(skipped, len(self.paths), self.where, warnings)
        if not kept:
            raise DataError(f"no readable image in {self.where}: {warnings[-1]}; "
                            "add PNG, JPEG, BMP, GIF, WebP or TIFF images to it")
        labels = None if self.labels is None else self.labels[torch.tensor(kept, dtype=torch.long)]
        return ImageSet(images, labels, self.class_names, warnings)

    def part(self, start: int, stop: int) -> FileSource:
        labels = None if self.labels is None else self.labels[start:stop]
        return replace(self, paths=self.paths[start:stop], labels=labels)

    def checked(self) -> FileSource:
        """Drop files whose header shows they are not images or are too large (no pixels decoded).

        Reads one header per file: ~0.1 ms each from a warm disk cache, seconds for 100k files.
        """
        if not self.check_headers:
            return self
        kept, skipped = [], []
        for i, path in enumerate(self.paths):
            try:
                check_header(path)
                kept.append(i)
            except SkippedImage as bad:
                skipped.append(bad)
        warnings = list(self.warnings)
        report_skipped(skipped, len(self.paths), self.where, warnings)
        if not kept:
            raise DataError(f"no readable image in {self.where}: {warnings[-1]}")
        labels = None if self.labels is None else self.labels[torch.tensor(kept, dtype=torch.long)]
        return replace(self, paths=[self.paths[i] for i in kept], labels=labels, warnings=warnings)


def idx_source(name: str, images_file: Path, labels_file: Path, class_names: list[str],
               cfg: DataConfig) -> ArraySource:
    """An MNIST-like pair of IDX files (28x28 uint8 images, uint8 labels) as a source."""
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.dtype != "uint8":
        raise DataError(f"{images_file} holds {images.dtype} of shape {images.shape}, not uint8 images "
                        "(N, H, W); is it an image file of the right dataset?")
    if labels.shape != images.shape[:1]:
        raise DataError(f"{labels_file} has {labels.shape} labels for the {len(images)} images in "
                        f"{images_file}; the two files must come from the same dataset split")
    return ArraySource(
        name=name, size=cfg.image_size, channels=cfg.channels, class_names=class_names,
        labels=torch.from_numpy(labels.astype("int64")),
        # frombuffer'd arrays are read-only; copy once so torch owns writable memory
        array=torch.from_numpy(images.copy()).unsqueeze(1))
