"""Exports from a trained generator or a run folder: what to export (an ``ExportPlan``) and running it.

No Qt here: the CLI calls these functions directly and the studio's export dialog calls ``run_plan``
from a worker thread. Every function takes an optional ``progress(done, total)`` callback; raising from
it (``ExportCancelled``) stops the export between two images, which is how the dialog cancels.

The images themselves are drawn in ``export_images.py``, and the limits and checks of what may be asked
are in ``export_checks.py``; their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganstudio.export_checks import (
    CHECKPOINTS, DEFAULT_IMAGES, DEFAULT_PER_CLASS, MAX_GRID, MAX_IMAGES, MAX_ROWS, MAX_SCALE, MAX_STEPS, MODES,
    ExportCancelled, ExportError, Progress, check_count, check_fps, check_interpolation, check_output_file,
    check_output_folder, check_scale,
)
from ganstudio.export_images import (
    checkpoint_step, choose_classes, class_names, classes_phrase, export_grid, export_interpolation,
    export_progress_gif, export_singles, interpolate, load_for_export, sample_files, sample_grids,
)

__all__ = [
    "CHECKPOINTS", "DEFAULT_IMAGES", "DEFAULT_PER_CLASS", "MAX_GRID", "MAX_IMAGES", "MAX_ROWS", "MAX_SCALE",
    "MAX_STEPS", "MODES", "ExportCancelled", "ExportError", "ExportPlan", "Progress", "Written", "check_output_file",
    "checkpoint_step", "choose_classes", "class_names", "classes_phrase", "export_grid", "export_interpolation",
    "export_progress_gif", "export_singles", "interpolate", "load_for_export", "run_plan", "sample_files",
    "sample_grids",
]


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
    torchscript: Path | None = None  # the generator itself, for other programs (model_export.py)
    onnx: Path | None = None
    scale: int = 1  # GIFs (progress, interpolation) enlarged this many times, nearest neighbour
    row_names: bool = False  # a cgan grid: a column naming each row's class

    @classmethod
    def in_folder(cls, run_dir: Path, folder: Path, *, grid: bool = False, singles: bool = False,
                  gif: bool = False, interpolation: str | None = None, torchscript: bool = False,
                  onnx: bool = False, **params) -> ExportPlan:
        """Outputs named after their settings inside ``folder``, so a second export with another seed
        does not overwrite the first. ``interpolation`` is None, "png" or "gif"; the generator files are
        named after the checkpoint they come from (``generator_best.onnx``)."""
        folder, n, seed = Path(folder), params.get("n") or DEFAULT_IMAGES, params.get("seed", cls.seed)
        a, b = params.get("seeds", cls.seeds)
        mode = params.get("mode", cls.mode)
        chosen = params.get("classes")
        tag = "_class" + "_".join(map(str, chosen)) if chosen else ""
        model = f"generator_{Path(params.get('checkpoint', cls.checkpoint)).stem}"
        return cls(
            run_dir=Path(run_dir), **params,
            grid=folder / f"grid_n{n}_seed{seed}{tag}.png" if grid else None,
            singles=folder / f"singles_n{n}_seed{seed}{tag}" if singles else None,
            gif=folder / "progress.gif" if gif else None,
            interpolation=folder / f"interpolation_{a}-{b}_{mode}{tag}.{interpolation}" if interpolation else None,
            torchscript=folder / f"{model}.pt" if torchscript else None,
            onnx=folder / f"{model}.onnx" if onnx else None,
        )

    def outputs(self) -> list[Path]:
        return [p for p in (self.grid, self.singles, self.gif, self.interpolation, self.torchscript, self.onnx)
                if p is not None]

    def check(self) -> None:
        """Every problem that can be found without generating anything (counts, folders), as ExportError."""
        if not self.outputs():
            raise ExportError("nothing to export: choose a grid, single images, a progress GIF, an interpolation "
                              "or the generator (TorchScript, ONNX)")
        if self.grid:
            check_output_file(self.grid, (".png",), "grid")
            check_count("number of images", self.n or 1, 1, MAX_GRID)  # per class for a cgan: checked again with G
        if self.singles:
            check_output_folder(self.singles)
            check_count("number of images", self.n or 1, 1, MAX_IMAGES)
        if self.gif:
            check_output_file(self.gif, (".gif",), "progress GIF")
            check_fps(self.fps)
            check_scale(self.scale)
        if self.interpolation:
            check_output_file(self.interpolation, (".png", ".gif"), "interpolation")
            check_interpolation(self.steps, self.mode, self.rows)
            if self.interpolation.suffix.lower() == ".gif":
                check_fps(self.fps)
                check_scale(self.scale)
        if self.torchscript or self.onnx:
            from ganstudio.model_export import check_model_outputs

            check_model_outputs(self.torchscript, self.onnx)  # names, folders, the onnx extra


def run_plan(plan: ExportPlan, progress: Progress | None = None) -> list[Written]:
    """Make every export in ``plan``; progress runs over all of them (each gets an equal share)."""
    plan.check()
    images = plan.grid or plan.singles or plan.interpolation
    needs_g = images or plan.torchscript or plan.onnx
    config, g = load_for_export(plan.run_dir, plan.checkpoint) if needs_g else (None, None)
    z_dim = config.model.z_dim if config else 0
    classes = choose_classes(g, plan.classes, config.model.family) if images else None
    n = plan.n or (DEFAULT_PER_CLASS if classes else DEFAULT_IMAGES)
    each = classes_phrase(classes)
    names = class_names(config) if plan.row_names and classes else None
    jobs: list[Callable[[Progress | None], Written]] = []
    if plan.grid:
        jobs.append(lambda p: Written(f"a grid of {n} images{each}",
                                      export_grid(g, z_dim, plan.grid, n, plan.seed, p, classes, names)))
    if plan.singles:
        jobs.append(lambda p: Written(
            f"{len(export_singles(g, z_dim, plan.singles, n, plan.seed, p, classes))} images", plan.singles))
    if plan.gif:
        jobs.append(lambda p: Written(
            f"a progress GIF of {export_progress_gif(plan.run_dir, plan.gif, plan.fps, p, plan.scale)} frames",
            plan.gif))
    if plan.interpolation:
        a, b = plan.seeds
        jobs.append(lambda p: Written(
            f"a {plan.mode} interpolation between seeds {a} and {b}{each}",
            export_interpolation(g, z_dim, plan.interpolation, a, b, plan.steps, plan.mode, plan.rows, p, plan.fps,
                                 classes, plan.scale)))
    for out, kind in ((plan.torchscript, "torchscript"), (plan.onnx, "onnx")):
        if out is not None:
            jobs.append(lambda p, out=out, kind=kind: _model_job(g, out, kind, p))
    return [job(_share(progress, i, len(jobs))) for i, job in enumerate(jobs)]


def _model_job(g, out: Path, kind: str, progress: Progress | None) -> Written:
    """The generator as a TorchScript or ONNX file (one step of progress: the export cannot report inside)."""
    from ganstudio import model_export

    if progress is not None:
        progress(0, 1)  # a cancel asked for before this job stops it here
    done = (model_export.export_torchscript if kind == "torchscript" else model_export.export_onnx)(g, out)
    if progress is not None:
        progress(1, 1)
    return Written(f"the generator as {done.format} ({', '.join(done.inputs)} -> images), matching the live "
                   f"model within {done.max_abs_diff:.1e}", done.path)


_UNITS = 1000  # progress units per job in run_plan: fine enough for a smooth bar, integers for Qt


def _share(progress: Progress | None, index: int, count: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(index * _UNITS + _UNITS * done // max(total, 1), count * _UNITS)
