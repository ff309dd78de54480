"""Dataset sources: where images come from, before they are decoded.

:func:`open_source` picks the source named by ``DataConfig.source``: the bundled Fashion-MNIST subset,
an image folder, or a torchvision dataset (``torchvision_sources.py``). The Source types themselves are
in ``source_types.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import DataError, ImageSet
from ganstudio.data.source_types import ArraySource, FileSource, Source, idx_source
from ganstudio.data.torchvision_sources import torchvision_source  # torchvision itself loads only when used
from ganstudio.resources import resource

__all__ = ["ArraySource", "FASHION_MNIST_CLASSES", "FileSource", "Source", "bundled_source", "folder_source",
           "held_out", "idx_source", "load_images", "open_source"]

log = logging.getLogger(__name__)
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
BUNDLED = ("datasets", "fashion-mnist-10k")


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
