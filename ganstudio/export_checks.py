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
