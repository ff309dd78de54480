"""What an export may be asked for: its errors, limits and defaults, and the checks of counts, rates and
output paths that can be made before any image is generated.

Shared by the image writers (``export_images.py``) and the plan that runs them (``export.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[int, int], None]  # progress(done, total); raising ExportCancelled from it stops an export

MAX_IMAGES = 100_000    # singles; past this a typo in -n fills the disk
MAX_GRID = 4096         # a 64x64 grid of 64 px images is already a 4k x 4k PNG
MAX_STEPS = 1000        # interpolation columns / GIF frames
MAX_ROWS = 64
DEFAULT_IMAGES = 64     # a grid or singles when no count is given
DEFAULT_PER_CLASS = 8   # the same for a conditional G, per class: a grid 8 wide, one row per class
MODES = ("linear", "slerp")
MAX_SCALE = 16          # GIF enlargement: a 28 px image becomes 448 px, a 64 px grid of 64 px images 8k
MAX_GIF_SIDE = 8192     # px: browsers and viewers refuse (or crawl on) larger animations
CHECKPOINTS = ("last", "best")  # the named checkpoints a run folder may hold (checkpoints/NAME.pt)

# class names of the datasets ganstudio knows, as their sources name them (ganstudio/data); kept here, free
# of torch, so the studio can label a cgan's grid rows before torch has loaded
_DIGITS = [str(d) for d in range(10)]
KNOWN_CLASSES: dict[str, list[str]] = {
    "bundled": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"],
    "torchvision:MNIST": ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
                          "7 - seven", "8 - eight", "9 - nine"],
    "torchvision:KMNIST": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    "torchvision:CIFAR10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"],
    "torchvision:SVHN": _DIGITS,
}
KNOWN_CLASSES["torchvision:FashionMNIST"] = KNOWN_CLASSES["bundled"]


class ExportError(RuntimeError):
    """An export that cannot be done as asked; the message says what to change."""


class ExportCancelled(ExportError):
    """Raised from a progress callback to stop an export between two images."""


def check_count(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ExportError(f"{name} must be between {low} and {high}, got {value}")


def check_fps(fps: float) -> None:
    if not 0.1 <= fps <= 50:  # GIF delays are in 1/100 s and viewers slow anything under 2/100 s
        raise ExportError(f"frames per second must be between 0.1 and 50, got {fps}")


def check_scale(scale: int, width: int = 0, height: int = 0) -> None:
    """An integer enlargement, and the enlarged frame (``width`` x ``height`` before it) within MAX_GIF_SIDE."""
    check_count("GIF scale", scale, 1, MAX_SCALE)
    if max(width, height) * scale > MAX_GIF_SIDE:
        most = max(1, MAX_GIF_SIDE // max(width, height))
        raise ExportError(f"a GIF scale of {scale} makes {width * scale} x {height * scale} px frames, more than "
                          f"{MAX_GIF_SIDE} px a side; choose a scale of at most {most}")


def class_names(config) -> list[str]:
    """A conditional run's class names (``config`` a RunConfig), one per class: the dataset's where ganstudio
    knows them (Fashion-MNIST, MNIST, KMNIST, CIFAR-10, SVHN; an image folder's class subfolders), else
    "class k". Reads at most one folder listing, never an image."""
    known = KNOWN_CLASSES.get(config.data.source, [])
    if config.data.source == "folder" and config.data.path is not None:
        known = _folder_classes(Path(config.data.path).expanduser())
    return [known[k] if k < len(known) else f"class {k}" for k in range(config.model.num_classes)]


def _folder_classes(root: Path) -> list[str]:
    """The class subfolders of an image folder, in the order its source labels them (sorted, hidden ones
    and empty ones left out; ganstudio/data/sources.py), or [] when it has fewer than two."""
    try:
        folders = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())
        classes = [p.name for p in folders if any(True for _ in p.iterdir())]
    except OSError:
        return []
    return classes if len(classes) >= 2 else []


def check_interpolation(steps: int, mode: str, rows: int) -> None:
    check_count("interpolation steps", steps, 2, MAX_STEPS)
    check_count("interpolation rows", rows, 1, MAX_ROWS)
    if mode not in MODES:
        raise ExportError(f"interpolation mode must be one of {', '.join(MODES)}, got {mode!r}")


def check_output_file(path: Path, suffixes: tuple[str, ...], what: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ExportError(f"the {what} file {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ExportError(f"the {what} file {path} is an existing folder; give a file name")
    _check_folder(path.parent)
    return path


def check_output_folder(folder: Path) -> Path:
    """A folder to fill: created if missing, but the folder holding it must exist."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file, not a folder")
    _check_folder(folder.parent)
    return folder


def _check_folder(folder: Path) -> None:
    if folder.is_dir():
        # root passes any permission check; a write that still fails is reported when saving
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(f"cannot write into {folder}: permission denied; choose another folder")
        return
    blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ExportError(f"cannot write into {folder}: {blocker} is a file, not a folder")
    raise ExportError(f"the output folder {folder} does not exist; create it or choose another")


def report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
