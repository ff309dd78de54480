"""Dataset sources: where images come from, before they are decoded.

A :class:`Source` is an indexed collection that can decode one item (the streaming path) or all of
them at once (the in-memory path) with the same functions, so both paths see the same pixels.
:func:`open_source` picks the source named by ``DataConfig.source``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import DataError, ImageSet
from ganstudio.data.decode import (SkippedImage, check_header, decode_file, decode_files, prepare,
                                   report_skipped)
from ganstudio.data.idx import read_idx
from ganstudio.resources import resource

log = logging.getLogger(__name__)
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
BUNDLED = ("datasets", "fashion-mnist-10k")
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


# --- choosing a source -----------------------------------------------------------------------------
def open_source(cfg: DataConfig, limit: int | None = None) -> Source:
    """The training images ``cfg`` names, cut to ``cfg.max_images`` minus the held-out ones, and to
    ``limit``; decodes nothing yet."""
    source = _split(cfg)[0]
    return source.head(limit) if limit is not None and limit < len(source) else source


def held_out(cfg: DataConfig, limit: int | None = None) -> Source | None:
    """The ``data.holdout`` images kept out of training (the last ones), or None when there are none."""
    source = _split(cfg)[1]
    return source.head(limit) if source is not None and limit is not None and limit < len(source) else source


def _split(cfg: DataConfig) -> tuple[Source, Source | None]:
    if cfg.source == "bundled":
        source = bundled_source(cfg)
    elif cfg.source == "folder":
        source = folder_source(cfg)
    else:
        from ganstudio.data.torchvision_sources import torchvision_source  # imports torchvision (~1 s)
        source = torchvision_source(cfg)
    if cfg.max_images is not None and cfg.max_images < len(source):
        source = source.head(cfg.max_images)
    if not cfg.holdout:
        return source, None
    n = len(source)
    if cfg.holdout >= n:
        raise DataError(f"data.holdout = {cfg.holdout} leaves no training images: {source.name} has {n}; "
                        "hold out fewer")
    return source.head(n - cfg.holdout), source.part(n - cfg.holdout, n)


def load_images(cfg: DataConfig, limit: int | None = None) -> ImageSet:
    """Decode the whole dataset (at most ``limit`` images) into a uint8 CPU tensor."""
    return open_source(cfg, limit).decode_all()


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


def bundled_source(cfg: DataConfig) -> ArraySource:
    folder = resource(*BUNDLED)
    return idx_source("the bundled Fashion-MNIST subset", folder / "train-images-idx3-ubyte.gz",
                      folder / "train-labels-idx1-ubyte.gz", FASHION_MNIST_CLASSES, cfg)


# --- image folders ---------------------------------------------------------------------------------
def folder_source(cfg: DataConfig) -> FileSource:
    """Every file under ``cfg.path``; class subfolders (two or more) become labels."""
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} (data.path) does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"data.path {root} is a file, not a folder; set data.path to the folder holding it")
    warnings: list[str] = []
    entries = _visible(root.iterdir())
    loose = [p for p in entries if p.is_file()]
    listing = {d: _files_under(d) for d in entries if d.is_dir()}
    class_dirs = [d for d, found in listing.items() if found]
    if len(class_dirs) >= 2:
        paths, labels = [], []
        for label, class_dir in enumerate(class_dirs):
            paths += listing[class_dir]
            labels += [label] * len(listing[class_dir])
        if loose:
            shown = ", ".join(d.name for d in class_dirs[:5]) + (", ..." if len(class_dirs) > 5 else "")
            warnings.append(f"ignored {len(loose)} files directly in {root}: its images are sorted into "
                            f"class subfolders ({shown}), so files beside them have no class; move "
                            "them into one")
            log.warning(warnings[-1])
        class_names, label_tensor = [d.name for d in class_dirs], torch.tensor(labels, dtype=torch.long)
    else:
        paths = loose + [p for found in listing.values() for p in found]  # the order os.walk gives
        class_names, label_tensor = None, None
    if not paths:
        raise DataError(f"image folder {root} (data.path) holds no files; put images in it, or in one "
                        "subfolder per class")
    return FileSource(name=f"folder {root}", size=cfg.image_size, channels=cfg.channels,
                      labels=label_tensor, class_names=class_names, warnings=warnings,
                      paths=paths, where=str(root))


def _visible(paths) -> list[Path]:
    return sorted(p for p in paths if not p.name.startswith("."))  # .DS_Store, .git, ...


def _files_under(folder: Path) -> list[Path]:
    """All visible files below ``folder``, in a fixed (sorted) order; symlinked folders not followed."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent, f) for f in sorted(files) if not f.startswith(".")]
    return found
