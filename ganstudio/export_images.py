"""The images an export makes: a run's generator loaded for export, then grids, single images and latent
walks drawn from it, and the progress GIF of a run's sample grids (found through its sample index).

No Qt here. Images come from ``seeded_noise(n, z_dim, seed)``, so the same seed and count give the same
pictures in a grid, as single files, from the CLI and from the studio. A class-conditional generator (cgan)
draws ``n`` images for each chosen class (default: every class) from that same noise, so a column of a grid
holds one latent vector under every class. Whole files go through ``atomic_write``: an interrupted export
leaves the previous file, never half a PNG. Every function takes an optional ``progress(done, total)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from ganstudio.config import RunConfig
from ganstudio.engine import checkpoint
from ganstudio.engine.inference import checkpoint_path, generate, load_generator, num_classes, seeded_noise
from ganstudio.engine.rundir import read_sample_index
from ganstudio.engine.sample_index import SAMPLES, SampleRecord
from ganstudio.export_checks import (
    MAX_GRID, MAX_IMAGES, MAX_ROWS, ExportError, Progress, check_count, check_fps, check_interpolation,
    check_output_file, check_output_folder, check_scale, class_names, report,
)
from ganstudio.fileio import atomic_write
from ganstudio.grids import grid_image

_BATCH = 64             # images per forward pass: small enough to report progress and cancel often
_LABEL_HEIGHT = 14      # px strip under each progress-GIF frame holding "step N"
_LABEL_PAD = 4          # px around a grid's class-name column

__all__ = [  # class_names lives in export_checks (no torch): the studio labels grid rows before torch loads
    "checkpoint_step", "choose_classes", "class_names", "classes_phrase", "enlarge", "export_grid",
    "export_interpolation", "export_progress_gif", "export_singles", "interpolate", "label_rows", "load_for_export",
    "sample_files", "sample_grids",
]


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
    if which == "best" and run_dir.is_dir():
        raise ExportError(f"the run {run_dir} has no checkpoints/best.pt: it is written when an evaluation "
                          f"(eval.every, or Evaluate now) scores better than every one before; export last instead")
    if which == "last" and run_dir.is_dir():
        raise ExportError(f"the run {run_dir} has no checkpoints/last.pt yet: train it until it saves one "
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


def classes_phrase(classes: Sequence[int] | None) -> str:
    """" for each of 3 classes", " of class 4" or "": what follows "a grid of 8 images" in messages."""
    if not classes:
        return ""
    return f" of class {classes[0]}" if len(classes) == 1 else f" for each of {len(classes)} classes"


def export_grid(g: nn.Module, z_dim: int, out: Path, n: int, seed: int, progress: Progress | None = None,
                classes: Sequence[int] | None = None, names: Sequence[str] | None = None) -> Path:
    """One PNG of ``n`` images from ``seed``, laid out like the run's sample grids; for a conditional G one
    row per class (default every class) of ``n`` images, column j the same latent vector in every row.
    ``names`` (a conditional G's class names, by class number) adds a column naming each row's class."""
    out = check_output_file(out, (".png",), "grid")
    chosen = choose_classes(g, classes)
    check_count("number of images", n * len(chosen or [0]), 1, MAX_GRID)
    z, labels = _latents(seeded_noise(n, z_dim, seed), chosen)
    images = _generate(g, z, labels, progress)
    grid = grid_image(images, None if chosen is None else n)
    if chosen is not None and names:
        grid = label_rows(grid, [names[k] if k < len(names) else f"class {k}" for k in chosen], images.shape[1])
    return _save(out, grid, "PNG")


def label_rows(grid: Image.Image, names: Sequence[str], cell_h: int) -> Image.Image:
    """``grid`` with a black column on its left naming each of its rows (``cell_h`` px images, grids.PAD
    apart): the grid's own pixels stay as they were, to the right of the names."""
    from ganstudio.grids import PAD

    font = ImageFont.load_default(size=max(9, min(14, cell_h - 2)))
    draw = ImageDraw.Draw(grid)
    width = max(round(draw.textlength(name, font=font)) for name in names) + 2 * _LABEL_PAD
    labelled = Image.new(grid.mode, (grid.width + width, grid.height))
    labelled.paste(grid, (width, 0))
    draw = ImageDraw.Draw(labelled)
    for row, name in enumerate(names):
        middle = PAD + row * (cell_h + PAD) + cell_h / 2
        draw.text((width - _LABEL_PAD, middle), name, fill="white", font=font, anchor="rm")
    return labelled


def export_singles(g: nn.Module, z_dim: int, folder: Path, n: int, seed: int,
                   progress: Progress | None = None, classes: Sequence[int] | None = None) -> list[Path]:
    """``n`` PNGs at the model's resolution, ``folder/sample_00000.png`` …; ``folder`` is created.
    A conditional G writes ``n`` per chosen class: ``folder/class3_00000.png`` …"""
    folder = check_output_folder(folder)
    chosen = choose_classes(g, classes)
    check_count("number of images", n * len(chosen or [0]), 1, MAX_IMAGES)
    _mkdir(folder)
    z, labels = _latents(seeded_noise(n, z_dim, seed), chosen)
    names = [f"sample_{j:05d}.png" for j in range(n)] if chosen is None else \
        [f"class{k}_{j:05d}.png" for k in chosen for j in range(n)]
    paths = []
    for start in range(0, len(z), _BATCH):  # generate and write in batches: memory stays flat for any n
        batch_labels = None if labels is None else labels[start:start + _BATCH]
        for image in generate(g, z[start:start + _BATCH], batch_labels):
            paths.append(_save(folder / names[len(paths)], _pil(image), "PNG"))
            report(progress, len(paths), len(z))
    return paths


def export_interpolation(g: nn.Module, z_dim: int, out: Path, seed_a: int, seed_b: int, steps: int = 10,
                         mode: str = "linear", rows: int = 1, progress: Progress | None = None,
                         fps: float = 8, classes: Sequence[int] | None = None, scale: int = 1) -> Path:
    """A walk through latent space from ``seed_a`` to ``seed_b`` in ``steps`` images.

    ``.png``: a strip, one row per pair of latents (row i goes from ``seeded_noise(rows, z_dim, seed_a)[i]``
    to the same row of ``seed_b``). ``.gif``: an animation a→b→a, each frame the ``rows`` images at one t.
    A conditional G walks the same pairs once per chosen class (default every class), each walk at one
    class: ``rows`` rows for the first class, then for the next. ``scale``: a GIF's frames enlarged that many
    times (nearest neighbour: every pixel becomes a ``scale`` x ``scale`` block, nothing is smoothed).
    """
    out = check_output_file(out, (".png", ".gif"), "interpolation")
    chosen = choose_classes(g, classes)
    check_interpolation(steps, mode, rows)
    if chosen and rows * len(chosen) > MAX_ROWS:
        raise ExportError(f"{rows} interpolation rows for each of {len(chosen)} classes make {rows * len(chosen)} "
                          f"rows, more than {MAX_ROWS}; choose fewer rows or classes")
    if out.suffix.lower() == ".gif":
        check_fps(fps)
        check_scale(scale)
    walk = interpolate(seeded_noise(rows, z_dim, seed_a), seeded_noise(rows, z_dim, seed_b), steps, mode)
    z, labels = _latents(walk.reshape(rows * steps, z_dim), chosen)  # class-major: each class walks every row
    flat = _generate(g, z, labels, progress)  # (classes * rows * steps, H, W, C), row by row
    if out.suffix.lower() == ".png":
        return _save(out, grid_image(flat, steps), "PNG")
    images = flat.reshape(-1, steps, *flat.shape[1:])
    order = list(range(steps)) + list(range(steps - 2, 0, -1))  # ping-pong without repeating the ends
    frames = [grid_image(np.ascontiguousarray(images[:, j])) for j in order]
    check_scale(scale, frames[0].width, frames[0].height)
    return _save_gif(out, [enlarge(frame, scale) for frame in frames], fps)


def enlarge(image: Image.Image, scale: int) -> Image.Image:
    """``image`` ``scale`` times larger, each pixel a block of ``scale`` x ``scale`` (nearest neighbour)."""
    if scale == 1:
        return image
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


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
def export_progress_gif(samples_dir: Path, out: Path, fps: float = 8, progress: Progress | None = None,
                        scale: int = 1) -> int:
    """An animated GIF of the run's sample grids in step order, each frame labelled with its step.

    ``samples_dir`` may also be the run folder. ``scale``: the grids enlarged that many times (nearest
    neighbour), the step label staying readable at its usual size. Returns the number of frames.
    """
    out = check_output_file(out, (".gif",), "progress GIF")
    check_fps(fps)
    check_scale(scale)
    grids = sample_grids(samples_dir)
    if not grids:
        raise ExportError(f"{Path(samples_dir)} holds no sample grids to animate: "
                          f"train the run until it writes one (train.sample_every)")
    check_scale(scale, max(r.geometry().width for r in grids), max(r.geometry().height for r in grids))
    _save_gif(out, _labelled_frames(grids, progress, scale), fps)
    return len(grids)


def sample_grids(samples_dir: str | Path) -> list[SampleRecord]:
    """The sample grids (not reconstructions) of a run's samples/ folder (or the run folder), by step."""
    return [r for r in read_sample_index(samples_dir) if r.kind == SAMPLES]


def sample_files(samples_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the sample grids of a run's samples/ folder (or the run folder), by step."""
    return [(r.step, r.path) for r in sample_grids(samples_dir)]


def _labelled_frames(grids: list[SampleRecord], progress: Progress | None, scale: int = 1
                     ) -> Iterator[Image.Image]:
    """Frames on one canvas (the largest grid, its size from the index, times ``scale``), read lazily so
    PIL encodes while we read."""
    width = max(r.geometry().width for r in grids) * scale
    height = max(r.geometry().height for r in grids) * scale
    mode = "RGB" if any(r.channels != 1 for r in grids) else "L"
    font = ImageFont.load_default(size=11)
    for i, record in enumerate(grids):
        frame = Image.new(mode, (width, height + _LABEL_HEIGHT))
        with Image.open(record.path) as grid:
            frame.paste(enlarge(grid.convert(mode), scale), (0, 0))
        ImageDraw.Draw(frame).text((3, height + 1), f"step {record.step}", fill="white", font=font)
        report(progress, i + 1, len(grids))
        yield frame


# --- writing -------------------------------------------------------------------------------------
def _generate(g: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, progress: Progress | None) -> np.ndarray:
    parts = []
    for start in range(0, len(z), _BATCH):
        parts.append(generate(g, z[start:start + _BATCH], None if labels is None else labels[start:start + _BATCH]))
        report(progress, min(start + _BATCH, len(z)), len(z))
    return np.concatenate(parts)


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


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
