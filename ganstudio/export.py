"""Exports from a trained generator or a run folder: grids, single images, a progress GIF, latent walks.

No Qt here: the CLI calls these functions directly and the studio's export dialog calls ``run_plan``
from a worker thread. Every function takes an optional ``progress(done, total)`` callback; raising from
it (``ExportCancelled``) stops the export between two images, which is how the dialog cancels.

Images come from ``seeded_noise(n, z_dim, seed)``, so the same seed and count give the same pictures
in a grid, as single files, from the CLI and from the studio. A class-conditional generator (cgan) draws
``n`` images for each chosen class (default: every class) from that same noise, so a column of a grid
holds one latent vector under every class. Whole files go through ``atomic_write``: an interrupted export
leaves the previous file, never half a PNG.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from torchvision.utils import make_grid

from ganstudio.config import RunConfig
from ganstudio.engine import checkpoint
from ganstudio.engine.inference import checkpoint_path, generate, load_generator, num_classes, seeded_noise
from ganstudio.engine.rundir import grid_image
from ganstudio.fileio import atomic_write

Progress = Callable[[int, int], None]

MAX_IMAGES = 100_000    # singles; past this a typo in -n fills the disk
MAX_GRID = 4096         # a 64x64 grid of 64 px images is already a 4k x 4k PNG
MAX_STEPS = 1000        # interpolation columns / GIF frames
MAX_ROWS = 64
DEFAULT_IMAGES = 64     # a grid or singles when no count is given
DEFAULT_PER_CLASS = 8   # the same for a conditional G, per class: a grid 8 wide, one row per class
MODES = ("linear", "slerp")
_BATCH = 64             # images per forward pass: small enough to report progress and cancel often
_LABEL_HEIGHT = 14      # px strip under each progress-GIF frame holding "step N"


class ExportError(RuntimeError):
    """An export that cannot be done as asked; the message says what to change."""


class ExportCancelled(ExportError):
    """Raised from a progress callback to stop an export between two images."""


# --- loading -------------------------------------------------------------------------------------
def load_for_export(run_dir: str | Path, which: str = "last") -> tuple[RunConfig, nn.Module]:
    """(config, G in eval mode on the CPU) from a run folder's checkpoint ``which`` (or a .pt file)."""
    _checkpoint_file(run_dir, which)
    try:
        return load_generator(run_dir, which)
    except checkpoint.CheckpointError as err:
        raise ExportError(str(err)) from err


def checkpoint_step(run_dir: str | Path, which: str = "last") -> int:
    """The training step a checkpoint was saved at (reads the whole file: call it once, not per frame)."""
    path = _checkpoint_file(run_dir, which)
    try:
        return int(checkpoint.load(path)["step"])
    except checkpoint.CheckpointError as err:
        raise ExportError(str(err)) from err


def _checkpoint_file(run_dir: str | Path, which: str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ExportError(f"run folder {run_dir} does not exist")
    path = checkpoint_path(run_dir, which)
    if path.is_file():
        return path
    if which in ("last", "best") and run_dir.is_dir():
        raise ExportError(f"the run {run_dir} has no checkpoints/{which}.pt yet: train it until it saves one "
                          f"(every train.checkpoint_every steps, and when training stops)")
    raise ExportError(f"checkpoint {path} does not exist")


# --- images from a generator ---------------------------------------------------------------------
def choose_classes(g: nn.Module, classes: Sequence[int] | None, family: str | None = None) -> list[int] | None:
    """The classes to draw for ``g``: None for an unconditional G; ``classes`` checked, or every class,
    for a conditional one. ExportError when classes are given to an unconditional G or are out of range."""
    count = num_classes(g)
    if not count:
        if classes:
            kind = f" (model.family = {family!r})" if family else ""
            raise ExportError(f"a class was chosen, but this run's generator is not class-conditional{kind}: "
                              f"only a cgan run takes a class")
        return None
    if not classes:
        return list(range(count))
    for k in classes:
        if not 0 <= k < count:
            raise ExportError(f"class {k} is out of range: this run's generator has {count} classes, 0 to {count - 1}")
    return list(classes)


def class_names(config: RunConfig) -> list[str]:
    """A conditional run's class names for pickers: the dataset's where ganstudio knows them, else numbers."""
    known: list[str] = []
    if config.data.source in ("bundled", "torchvision:FashionMNIST"):
        from ganstudio.data.sources import FASHION_MNIST_CLASSES

        known = FASHION_MNIST_CLASSES
    return [known[k] if k < len(known) else f"class {k}" for k in range(config.model.num_classes)]


def classes_phrase(classes: Sequence[int] | None) -> str:
    """" for each of 3 classes", " of class 4" or "": what follows "a grid of 8 images" in messages."""
    if not classes:
        return ""
    return f" of class {classes[0]}" if len(classes) == 1 else f" for each of {len(classes)} classes"


def export_grid(g: nn.Module, z_dim: int, out: Path, n: int, seed: int, progress: Progress | None = None,
                classes: Sequence[int] | None = None) -> Path:
    """One PNG of ``n`` images from ``seed``, laid out like the run's sample grids; for a conditional G one
    row per class (default every class) of ``n`` images, column j the same latent vector in every row."""
    out = check_output_file(out, (".png",), "grid")
    chosen = choose_classes(g, classes)
    _check_count("number of images", n * len(chosen or [0]), 1, MAX_GRID)
    z, labels = _latents(seeded_noise(n, z_dim, seed), chosen)
    images = _generate(g, z, labels, progress)
    return _save(out, grid_image(images) if chosen is None else _tile(images, ncol=n), "PNG")


def export_singles(g: nn.Module, z_dim: int, folder: Path, n: int, seed: int,
                   progress: Progress | None = None, classes: Sequence[int] | None = None) -> list[Path]:
    """``n`` PNGs at the model's resolution, ``folder/sample_00000.png`` …; ``folder`` is created.
    A conditional G writes ``n`` per chosen class: ``folder/class3_00000.png`` …"""
    folder = _check_output_folder(folder)
    chosen = choose_classes(g, classes)
    _check_count("number of images", n * len(chosen or [0]), 1, MAX_IMAGES)
    _mkdir(folder)
    z, labels = _latents(seeded_noise(n, z_dim, seed), chosen)
    names = [f"sample_{j:05d}.png" for j in range(n)] if chosen is None else \
        [f"class{k}_{j:05d}.png" for k in chosen for j in range(n)]
    paths = []
    for start in range(0, len(z), _BATCH):  # generate and write in batches: memory stays flat for any n
        batch_labels = None if labels is None else labels[start:start + _BATCH]
        for image in generate(g, z[start:start + _BATCH], batch_labels):
            paths.append(_save(folder / names[len(paths)], _pil(image), "PNG"))
            _report(progress, len(paths), len(z))
    return paths


def export_interpolation(g: nn.Module, z_dim: int, out: Path, seed_a: int, seed_b: int, steps: int = 10,
                         mode: str = "linear", rows: int = 1, progress: Progress | None = None,
                         fps: float = 8, classes: Sequence[int] | None = None) -> Path:
    """A walk through latent space from ``seed_a`` to ``seed_b`` in ``steps`` images.

    ``.png``: a strip, one row per pair of latents (row i goes from ``seeded_noise(rows, z_dim, seed_a)[i]``
    to the same row of ``seed_b``). ``.gif``: an animation a→b→a, each frame the ``rows`` images at one t.
    A conditional G walks the same pairs once per chosen class (default every class), each walk at one
    class: ``rows`` rows for the first class, then for the next.
    """
    out = check_output_file(out, (".png", ".gif"), "interpolation")
    chosen = choose_classes(g, classes)
    _check_interpolation(steps, mode, rows)
    if chosen and rows * len(chosen) > MAX_ROWS:
        raise ExportError(f"{rows} interpolation rows for each of {len(chosen)} classes make {rows * len(chosen)} "
                          f"rows, more than {MAX_ROWS}; choose fewer rows or classes")
    if out.suffix.lower() == ".gif":
        _check_fps(fps)
    walk = interpolate(seeded_noise(rows, z_dim, seed_a), seeded_noise(rows, z_dim, seed_b), steps, mode)
    z, labels = _latents(walk.reshape(rows * steps, z_dim), chosen)  # class-major: each class walks every row
    flat = _generate(g, z, labels, progress)  # (classes * rows * steps, H, W, C), row by row
    if out.suffix.lower() == ".png":
        return _save(out, _tile(flat, ncol=steps), "PNG")
    images = flat.reshape(-1, steps, *flat.shape[1:])
    order = list(range(steps)) + list(range(steps - 2, 0, -1))  # ping-pong without repeating the ends
    frames = [grid_image(np.ascontiguousarray(images[:, j])) for j in order]
    return _save_gif(out, frames, fps)


def _latents(z: torch.Tensor, classes: list[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``z`` as it is (unconditional), or repeated once per class with the matching labels, class-major."""
    if classes is None:
        return z, None
    labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(len(z))
    return z.repeat(len(classes), 1), labels


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """(rows, z_dim) endpoints -> (rows, steps, z_dim); the first and last columns are exactly z_a and z_b.

    slerp follows the great circle (White 2016, "Sampling generative networks"): Gaussian latents live
    near a sphere, and the straight line between two of them passes through the improbable middle.
    """
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype)[None, :, None]  # (1, steps, 1)
    a, b = z_a[:, None, :], z_b[:, None, :]
    linear = a * (1 - t) + b * t
    if mode == "linear":
        return linear
    cos = torch.nn.functional.cosine_similarity(z_a, z_b, dim=1).clamp(-1, 1)
    omega = torch.acos(cos)[:, None, None]                   # angle between the two, (rows, 1, 1)
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6                              # no unique great circle: fall back to a line
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    arc = torch.sin((1 - t) * omega) / safe * a + torch.sin(t * omega) / safe * b
    return torch.where(parallel, linear, arc)


# --- a run folder's history ----------------------------------------------------------------------
def export_progress_gif(samples_dir: Path, out: Path, fps: float = 8, progress: Progress | None = None) -> int:
    """An animated GIF of ``samples/step_*.png`` in step order, each frame labelled with its step.

    ``samples_dir`` may also be the run folder. Returns the number of frames.
    """
    out = check_output_file(out, (".gif",), "progress GIF")
    _check_fps(fps)
    samples = sample_files(samples_dir)
    if not samples:
        raise ExportError(f"{Path(samples_dir)} holds no sample grids (step_*.png) to animate: "
                          f"train the run until it writes one (train.sample_every)")
    frames = _labelled_frames(samples, progress)
    _save_gif(out, frames, fps)
    return len(samples)


def sample_files(samples_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the sample grids in a run's samples/ folder (or the run folder), by step."""
    folder = Path(samples_dir)
    if (folder / "samples").is_dir():
        folder = folder / "samples"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.png") if (m := re.fullmatch(r"step_(\d+)\.png", p.name))]
    return sorted(found)  # by number: step_1000000 (7 digits) sorts after step_999999


def _labelled_frames(samples: list[tuple[int, Path]], progress: Progress | None) -> Iterator[Image.Image]:
    """Frames on one canvas size (the largest grid), read lazily so PIL encodes while we read."""
    sizes = []
    for _, path in samples:
        with Image.open(path) as im:
            sizes.append((im.size, im.mode))
    width, height = max(s[0][0] for s in sizes), max(s[0][1] for s in sizes)
    mode = "RGB" if any(m not in ("L", "1") for _, m in sizes) else "L"
    font = ImageFont.load_default(size=11)
    for i, (step, path) in enumerate(samples):
        frame = Image.new(mode, (width, height + _LABEL_HEIGHT))
        with Image.open(path) as grid:
            frame.paste(grid.convert(mode), (0, 0))
        ImageDraw.Draw(frame).text((3, height + 1), f"step {step}", fill="white", font=font)
        _report(progress, i + 1, len(samples))
        yield frame


# --- one plan, several exports (what the CLI and the dialog both run) ----------------------------
@dataclass(frozen=True)
class Written:
    what: str   # "a grid of 64 images", for the person reading the CLI output or the dialog
    path: Path  # a file, or the folder of single images


@dataclass
class ExportPlan:
    """The exports to make from one run; a ``None`` output is skipped."""

    run_dir: Path
    checkpoint: str = "last"
    grid: Path | None = None
    singles: Path | None = None
    gif: Path | None = None
    interpolation: Path | None = None
    n: int | None = None  # images (a cgan: per class); None = DEFAULT_IMAGES, or DEFAULT_PER_CLASS for a cgan
    seed: int = 0
    fps: float = 8.0
    seeds: tuple[int, int] = (0, 1)
    steps: int = 10
    mode: str = "linear"
    rows: int = 1
    classes: tuple[int, ...] | None = None  # a cgan's classes to draw (None = every class)

    @classmethod
    def in_folder(cls, run_dir: Path, folder: Path, *, grid: bool = False, singles: bool = False,
                  gif: bool = False, interpolation: str | None = None, **params) -> ExportPlan:
        """Outputs named after their settings inside ``folder``, so a second export with another seed
        does not overwrite the first. ``interpolation`` is None, "png" or "gif"."""
        folder, n, seed = Path(folder), params.get("n") or DEFAULT_IMAGES, params.get("seed", cls.seed)
        a, b = params.get("seeds", cls.seeds)
        mode = params.get("mode", cls.mode)
        chosen = params.get("classes")
        tag = "_class" + "_".join(map(str, chosen)) if chosen else ""
        return cls(
            run_dir=Path(run_dir), **params,
            grid=folder / f"grid_n{n}_seed{seed}{tag}.png" if grid else None,
            singles=folder / f"singles_n{n}_seed{seed}{tag}" if singles else None,
            gif=folder / "progress.gif" if gif else None,
            interpolation=folder / f"interpolation_{a}-{b}_{mode}{tag}.{interpolation}" if interpolation else None,
        )

    def outputs(self) -> list[Path]:
        return [p for p in (self.grid, self.singles, self.gif, self.interpolation) if p is not None]

    def check(self) -> None:
        """Every problem that can be found without generating anything (counts, folders), as ExportError."""
        if not self.outputs():
            raise ExportError("nothing to export: choose a grid, single images, a progress GIF or an interpolation")
        if self.grid:
            check_output_file(self.grid, (".png",), "grid")
            _check_count("number of images", self.n or 1, 1, MAX_GRID)  # per class for a cgan: checked again with G
        if self.singles:
            _check_output_folder(self.singles)
            _check_count("number of images", self.n or 1, 1, MAX_IMAGES)
        if self.gif:
            check_output_file(self.gif, (".gif",), "progress GIF")
            _check_fps(self.fps)
        if self.interpolation:
            check_output_file(self.interpolation, (".png", ".gif"), "interpolation")
            _check_interpolation(self.steps, self.mode, self.rows)
            if self.interpolation.suffix.lower() == ".gif":
                _check_fps(self.fps)


def run_plan(plan: ExportPlan, progress: Progress | None = None) -> list[Written]:
    """Make every export in ``plan``; progress runs over all of them (each gets an equal share)."""
    plan.check()
    needs_g = plan.grid or plan.singles or plan.interpolation
    config, g = load_for_export(plan.run_dir, plan.checkpoint) if needs_g else (None, None)
    z_dim = config.model.z_dim if config else 0
    classes = choose_classes(g, plan.classes, config.model.family) if needs_g else None
    n = plan.n or (DEFAULT_PER_CLASS if classes else DEFAULT_IMAGES)
    each = classes_phrase(classes)
    jobs: list[Callable[[Progress | None], Written]] = []
    if plan.grid:
        jobs.append(lambda p: Written(f"a grid of {n} images{each}",
                                      export_grid(g, z_dim, plan.grid, n, plan.seed, p, classes)))
    if plan.singles:
        jobs.append(lambda p: Written(
            f"{len(export_singles(g, z_dim, plan.singles, n, plan.seed, p, classes))} images", plan.singles))
    if plan.gif:
        jobs.append(lambda p: Written(f"a progress GIF of {export_progress_gif(plan.run_dir, plan.gif, plan.fps, p)}"
                                      " frames", plan.gif))
    if plan.interpolation:
        a, b = plan.seeds
        jobs.append(lambda p: Written(
            f"a {plan.mode} interpolation between seeds {a} and {b}{each}",
            export_interpolation(g, z_dim, plan.interpolation, a, b, plan.steps, plan.mode, plan.rows, p, plan.fps,
                                 classes)))
    return [job(_share(progress, i, len(jobs))) for i, job in enumerate(jobs)]


_UNITS = 1000  # progress units per job in run_plan: fine enough for a smooth bar, integers for Qt


def _share(progress: Progress | None, index: int, count: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(index * _UNITS + _UNITS * done // max(total, 1), count * _UNITS)


# --- checks --------------------------------------------------------------------------------------
def _check_count(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ExportError(f"{name} must be between {low} and {high}, got {value}")


def _check_fps(fps: float) -> None:
    if not 0.1 <= fps <= 50:  # GIF delays are in 1/100 s and viewers slow anything under 2/100 s
        raise ExportError(f"frames per second must be between 0.1 and 50, got {fps}")


def _check_interpolation(steps: int, mode: str, rows: int) -> None:
    _check_count("interpolation steps", steps, 2, MAX_STEPS)
    _check_count("interpolation rows", rows, 1, MAX_ROWS)
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


def _check_output_folder(folder: Path) -> Path:
    """A folder to fill: created if missing, but the folder holding it must exist."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file, not a folder")
    _check_folder(folder.parent)
    return folder


def _check_folder(folder: Path) -> None:
    if folder.is_dir():
        # root passes any permission check; a write that still fails is reported by _save
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(f"cannot write into {folder}: permission denied; choose another folder")
        return
    blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ExportError(f"cannot write into {folder}: {blocker} is a file, not a folder")
    raise ExportError(f"the output folder {folder} does not exist; create it or choose another")


# --- writing -------------------------------------------------------------------------------------
def _generate(g: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, progress: Progress | None) -> np.ndarray:
    parts = []
    for start in range(0, len(z), _BATCH):
        parts.append(generate(g, z[start:start + _BATCH], None if labels is None else labels[start:start + _BATCH]))
        _report(progress, min(start + _BATCH, len(z)), len(z))
    return np.concatenate(parts)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _tile(images: np.ndarray, ncol: int, padding: int = 2) -> Image.Image:
    """uint8 (N, H, W, C) -> one image with ``ncol`` per row (grid_image picks the count itself)."""
    grid = make_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=ncol, padding=padding, pad_value=0)
    return _pil(grid.permute(1, 2, 0).numpy())


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create the folder {folder}: {err.strerror or err}") from err


def _save(path: Path, image: Image.Image, fmt: str, **options) -> Path:
    try:
        atomic_write(path, lambda f: image.save(f, format=fmt, **options))
    except OSError as err:
        raise ExportError(f"could not write {path}: {err.strerror or err}") from err
    return path


def _save_gif(out: Path, frames, fps: float) -> Path:
    """An endless GIF. ``frames`` may be an iterator (read while encoding); PIL merges identical
    consecutive frames into one longer frame."""
    frames = iter(frames)
    first = next(frames)
    return _save(out, first, "GIF", save_all=True, append_images=frames, duration=round(1000 / fps), loop=0)
