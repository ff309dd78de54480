"""The Source type and its two kinds, images in one array or one file per image, with the IDX reader
that MNIST-like datasets share; ``sources.py`` chooses among them, ``torchvision_sources.py`` fills them.

A :class:`Source` is an indexed collection that can decode one item (the streaming path) or all of
them at once (the in-memory path) with the same functions, so both paths see the same pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import CancelCheck, DataError, ImageSet, check_cancelled
from ganstudio.data.decode import (_RESIZE_CHUNK, SkippedImage, check_header, decode_file, decode_files,
                                   prepare, report_skipped)
from ganstudio.data.idx import read_idx

log = logging.getLogger(__name__)
_PROGRESS_FROM = 5000  # decodes of at least this many files show a progress bar (they take seconds)
_CHECK_EVERY = 32  # header checks between two calls of cancelled() (~3 ms of work)


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

    def decode_all(self, cancelled: CancelCheck = None, log_warnings: bool = True) -> ImageSet:
        """Every image, decoded. Raises :class:`Cancelled` soon after ``cancelled()`` turns true.

        The warnings (files skipped, and why) are in the result; with ``log_warnings`` they are also
        logged. Pass False when you show the result's warnings yourself: logging them as well printed
        each one twice (once through logging's last-resort stderr handler, once by the caller).
        """
        raise NotImplementedError

    def part(self, start: int, stop: int) -> Source:
        """Images ``start`` to ``stop`` (exclusive)."""
        raise NotImplementedError

    def head(self, n: int) -> Source:
        """The first ``n`` images."""
        return self.part(0, n)

    def checked(self, cancelled: CancelCheck = None, log_warnings: bool = True) -> Source:
        """This source minus the items found unusable without decoding them (streaming only); the
        arguments as for :meth:`decode_all`."""
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

    def decode_all(self, cancelled: CancelCheck = None, log_warnings: bool = True) -> ImageSet:
        n, have, height, width = self.array.shape
        if (have, height, width) == (self.channels, self.size, self.size):
            images = self.array  # already as configured: no copy, nothing to interrupt
        else:
            # batched resizes of a few thousand images: no per-image Python work, a check between them,
            # and one preallocated result, so the peak memory stays the result's
            images = torch.empty((n, self.channels, self.size, self.size), dtype=torch.uint8)
            for start in range(0, n, _RESIZE_CHUNK):
                check_cancelled(cancelled, f"preparing {self.name}")
                images[start:start + _RESIZE_CHUNK] = prepare(self.array[start:start + _RESIZE_CHUNK],
                                                              self.size, self.channels)
        return ImageSet(images, self.labels, self.class_names, _said(self.warnings, log_warnings))

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

    def decode_all(self, cancelled: CancelCheck = None, log_warnings: bool = True) -> ImageSet:
        images, kept, skipped = decode_files(self.paths, self.size, self.channels,
                                             progress=len(self.paths) >= _PROGRESS_FROM,
                                             cancelled=cancelled, where=self.where or self.name)
        warnings = list(self.warnings)
        report_skipped(skipped, len(self.paths), self.where, warnings)
        _said(warnings, log_warnings)
        if not kept:
            raise DataError(f"no readable image in {self.where}: {warnings[-1]}; "
                            "add PNG, JPEG, BMP, GIF, WebP or TIFF images to it")
        labels = None if self.labels is None else self.labels[torch.tensor(kept, dtype=torch.long)]
        return ImageSet(images, labels, self.class_names, warnings)

    def part(self, start: int, stop: int) -> FileSource:
        labels = None if self.labels is None else self.labels[start:stop]
        return replace(self, paths=self.paths[start:stop], labels=labels)

    def checked(self, cancelled: CancelCheck = None, log_warnings: bool = True) -> FileSource:
        """Drop files whose header shows they are not images, too large or too elongated (no pixels
        decoded).

        Reads one header per file: ~0.1 ms each from a warm disk cache, seconds for 100k files.
        """
        if not self.check_headers:
            return replace(self, warnings=_said(self.warnings, log_warnings))
        kept, skipped = [], []
        for i, path in enumerate(self.paths):
            if i % _CHECK_EVERY == 0:
                check_cancelled(cancelled, f"checking the files in {self.where or self.name} "
                                           f"({i} of {len(self.paths)} done)")
            try:
                check_header(path)
                kept.append(i)
            except SkippedImage as bad:
                skipped.append(bad)
        warnings = list(self.warnings)
        report_skipped(skipped, len(self.paths), self.where, warnings)
        _said(warnings, log_warnings)
        if not kept:
            raise DataError(f"no readable image in {self.where}: {warnings[-1]}")
        labels = None if self.labels is None else self.labels[torch.tensor(kept, dtype=torch.long)]
        return replace(self, paths=[self.paths[i] for i in kept], labels=labels, warnings=warnings)


def _said(warnings: list[str], log_them: bool) -> list[str]:
    """A copy of ``warnings``, each logged first when ``log_them``: the one place a source's warnings
    reach the log, so none is said twice."""
    if log_them:
        for message in warnings:
            log.warning(message)
    return list(warnings)


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
