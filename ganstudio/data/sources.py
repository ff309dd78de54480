"""Dataset sources: where images come from, before they are decoded.

:func:`open_source` picks the source named by ``DataConfig.source``: the bundled Fashion-MNIST subset,
an image folder, or a torchvision dataset (``torchvision_sources.py``). The Source types themselves are
in ``source_types.py``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import CancelCheck, DataError, ImageSet, check_cancelled
from ganstudio.data.source_types import ArraySource, FileSource, Source, idx_source
from ganstudio.data.torchvision_sources import torchvision_source  # torchvision itself loads only when used
from ganstudio.resources import resource

__all__ = ["ArraySource", "FASHION_MNIST_CLASSES", "FileSource", "Source", "bundled_source", "folder_source",
           "held_out", "idx_source", "load_images", "open_source"]

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
BUNDLED = ("datasets", "fashion-mnist-10k")


# --- choosing a source -----------------------------------------------------------------------------
def open_source(cfg: DataConfig, limit: int | None = None, cancelled: CancelCheck = None) -> Source:
    """The training images ``cfg`` names, cut to ``cfg.max_images`` minus the held-out ones, and to
    ``limit``; decodes nothing yet. Raises Cancelled when ``cancelled()`` turns true during the scan."""
    source = _split(cfg, cancelled)[0]
    return source.head(limit) if limit is not None and limit < len(source) else source


def held_out(cfg: DataConfig, limit: int | None = None, cancelled: CancelCheck = None) -> Source | None:
    """The ``data.holdout`` images kept out of training (the last ones), or None when there are none."""
    source = _split(cfg, cancelled)[1]
    return source.head(limit) if source is not None and limit is not None and limit < len(source) else source


def _split(cfg: DataConfig, cancelled: CancelCheck = None) -> tuple[Source, Source | None]:
    check_cancelled(cancelled, f"opening data.source = {cfg.source}")
    if cfg.source == "bundled":
        source = bundled_source(cfg)
    elif cfg.source == "folder":
        source = folder_source(cfg, cancelled)
    else:
        source = torchvision_source(cfg, cancelled)
    if cfg.max_images is not None and cfg.max_images < len(source):
        source = source.head(cfg.max_images)
    if not cfg.holdout:
        return source, None
    n = len(source)
    if cfg.holdout >= n:
        raise DataError(f"data.holdout = {cfg.holdout} leaves no training images: {source.name} has {n}; "
                        "hold out fewer")
    # the folder's own notes (ignored files, links) travel with the training part only: said once
    return source.head(n - cfg.holdout), replace(source.part(n - cfg.holdout, n), warnings=[])


def load_images(cfg: DataConfig, limit: int | None = None, cancelled: CancelCheck = None) -> ImageSet:
    """Decode the whole dataset (at most ``limit`` images) into a uint8 CPU tensor; its warnings are
    logged. Raises Cancelled soon after ``cancelled()`` turns true."""
    return open_source(cfg, limit, cancelled).decode_all(cancelled)


def bundled_source(cfg: DataConfig) -> ArraySource:
    folder = resource(*BUNDLED)
    return idx_source("the bundled Fashion-MNIST subset", folder / "train-images-idx3-ubyte.gz",
                      folder / "train-labels-idx1-ubyte.gz", FASHION_MNIST_CLASSES, cfg)


# --- image folders ---------------------------------------------------------------------------------
def folder_source(cfg: DataConfig, cancelled: CancelCheck = None) -> FileSource:
    """Every file under ``cfg.path``; class subfolders (two or more) become labels. Linked folders are
    followed, each real folder once."""
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} (data.path) does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"data.path {root} is a file, not a folder; set data.path to the folder holding it")
    walk = _FolderWalk(root, cancelled)
    entries = _visible(root.iterdir())
    # as os.walk lists them: everything but folders, so a broken link or a pipe is skipped by name later
    loose = [p for p in entries if not p.is_dir()]
    listing = {d: walk.files_under(d) for d in entries if d.is_dir() and walk.enter(d)}
    class_dirs = [d for d, found in listing.items() if found]
    warnings: list[str] = walk.notes()
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


class _FolderWalk:
    """Lists the files below folders, entering each real folder once.

    Linked folders are followed (a dataset linked into the folder is part of it), but a link back to a
    folder already entered (a loop such as ``root/again -> root``, or two links to one folder) would
    list the same images again, or forever; each folder is known by its (device, inode).
    """

    def __init__(self, root: Path, cancelled: CancelCheck) -> None:
        self.root, self.cancelled = root, cancelled
        self.seen: set[tuple[int, int]] = set()
        self.repeats: list[Path] = []  # links to folders already entered
        self.unreadable: list[str] = []
        self.enter(root)

    def enter(self, folder: Path) -> bool:
        """True the first time ``folder`` (after links) is seen."""
        try:
            stat = folder.stat()
        except OSError as err:
            self.unreadable.append(f"{folder} ({err.strerror})")
            return False
        key = (stat.st_dev, stat.st_ino)
        if key in self.seen:
            self.repeats.append(folder)
            return False
        self.seen.add(key)
        return True

    def files_under(self, folder: Path) -> list[Path]:
        """All visible files below ``folder`` (entered already), in a fixed (sorted) order."""
        found: list[Path] = []
        walk = os.walk(folder, followlinks=True,
                       onerror=lambda err: self.unreadable.append(f"{err.filename} ({err.strerror})"))
        for parent, dirs, files in walk:  # one check per folder: listing even 100k names takes ~0.1 s
            check_cancelled(self.cancelled, f"listing the files in {self.root} ({len(found)} so far)")
            dirs[:] = [d for d in sorted(dirs) if not d.startswith(".") and self.enter(Path(parent, d))]
            found += [Path(parent, f) for f in sorted(files) if not f.startswith(".")]
        return found

    def notes(self) -> list[str]:
        """Warnings for the folders read once only or not at all."""
        notes = []
        if self.repeats:
            shown = "; ".join(f"{p} -> {p.resolve()}" for p in self.repeats[:3])
            notes.append(f"read {len(self.repeats)} linked folders only once, as they lead to a folder "
                         f"already read (a link loop?): {shown}")
        if self.unreadable:
            notes.append(f"could not read {len(self.unreadable)} folders under {self.root}, so their images "
                         f"are left out; check their permissions: {'; '.join(self.unreadable[:3])}")
        return notes
