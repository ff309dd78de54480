"""Export options the studio's dialog offers: enlarged GIFs, named class rows, the generator files in a plan,
the best checkpoint, and class names that need no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganstudio.cli import main
from ganstudio.config import RunConfig
from ganstudio.engine import checkpoint
from ganstudio.engine.inference import generate, seeded_noise
from ganstudio.export import (
    MAX_SCALE, ExportError, ExportPlan, checkpoint_step, class_names, export_grid, export_interpolation,
    export_progress_gif, load_for_export, run_plan,
)
from ganstudio.grids import grid_image

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\..*` is deprecated:FutureWarning")
Z = 8


@pytest.fixture(scope="module")
def g(trained_run):
    return load_for_export(trained_run)[1]


def _frames(path) -> list[np.ndarray]:
    frames = []
    with Image.open(path) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


def _blocks(image: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement by k: every pixel a k x k block."""
    return image.repeat(k, axis=0).repeat(k, axis=1)


# --- enlarged GIFs ---------------------------------------------------------------------------------
def test_a_scaled_progress_gif_is_each_grid_in_blocks_with_its_label_below(trained_run, tmp_path):
    export_progress_gif(trained_run, tmp_path / "x1.gif")
    export_progress_gif(trained_run, tmp_path / "x3.gif", scale=3)
    small, large = _frames(tmp_path / "x1.gif"), _frames(tmp_path / "x3.gif")
    assert len(small) == len(large) == 4
    h, w = small[0].shape[0] - 14, small[0].shape[1]  # 14 px: the "step N" strip, kept at its own size
    assert large[0].shape[:2] == (3 * h + 14, 3 * w)
    for a, b in zip(small, large):
        assert np.array_equal(b[:3 * h], _blocks(a[:h], 3))  # sharp pixels: no smoothing anywhere


def test_a_scaled_interpolation_gif_enlarges_every_frame(g, tmp_path):
    export_interpolation(g, Z, tmp_path / "x1.gif", 0, 1, steps=4)
    export_interpolation(g, Z, tmp_path / "x2.gif", 0, 1, steps=4, scale=2)
    small, large = _frames(tmp_path / "x1.gif"), _frames(tmp_path / "x2.gif")
    assert len(small) == len(large) == 6  # 0 1 2 3 2 1
    assert all(np.array_equal(b, _blocks(a, 2)) for a, b in zip(small, large))


@pytest.mark.parametrize("scale, message", [(0, "GIF scale must be between 1"), (MAX_SCALE + 1, "GIF scale"),
                                            (300, "GIF scale")])
def test_bad_scales_are_export_errors(trained_run, tmp_path, scale, message):
    with pytest.raises(ExportError, match=message):
        export_progress_gif(trained_run, tmp_path / "p.gif", scale=scale)
    assert not (tmp_path / "p.gif").exists()


def test_a_scale_that_makes_huge_frames_names_the_largest_that_fits(tmp_path):
    from ganstudio.engine.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.create()
    run.write_grid(0, np.zeros((100, 64, 64, 1), dtype=np.uint8))  # 10 x 10 cells of 66 px: 662 px a side
    with pytest.raises(ExportError, match=r"10592 x 10592 px frames, more than 8192 px a side; choose a scale of "
                                          r"at most 12"):
        export_progress_gif(run.path, tmp_path / "p.gif", scale=16)
    assert not (tmp_path / "p.gif").exists()


def test_cli_export_scale(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--gif", str(tmp_path / "p.gif"), "--scale", "2"]) == 0
    with Image.open(tmp_path / "p.gif") as gif, Image.open(sorted((trained_run / "samples").glob("*.png"))[0]) as s:
        assert gif.size == (2 * s.width, 2 * s.height + 14)


# --- class names -------------------------------------------------------------------------------------
def _cgan_config(**data) -> RunConfig:
    return RunConfig.model_validate({"data": data, "model": {"family": "cgan", "num_classes": 4}})


def test_class_names_come_from_the_data_source(tmp_path):
    assert class_names(_cgan_config(source="bundled")) == ["T-shirt/top", "Trouser", "Pullover", "Dress"]
    assert class_names(_cgan_config(source="torchvision:CIFAR10"))[:2] == ["airplane", "automobile"]
    for name in ("dogs", "cats", ".hidden", "empty"):
        (tmp_path / name).mkdir()
    (tmp_path / "cats" / "a.png").write_bytes(b"x")
    (tmp_path / "dogs" / "b.png").write_bytes(b"x")
    (tmp_path / ".hidden" / "c.png").write_bytes(b"x")
    # sorted, hidden and empty folders left out, as the folder source labels them; numbers past the names
    assert class_names(_cgan_config(source="folder", path=str(tmp_path))) == ["cats", "dogs", "class 2", "class 3"]


def test_class_names_need_no_torch():
    code = ("import sys; from ganstudio.export_checks import class_names; from ganstudio.config import RunConfig; "
            "c = RunConfig.model_validate({'model': {'family': 'cgan', 'num_classes': 2}}); "
            "print(class_names(c), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['T-shirt/top', 'Trouser'] False"


def test_a_named_grid_keeps_its_images_right_of_the_names(cgan_run, tmp_path):
    _, cgan = load_for_export(cgan_run)
    plain = export_grid(cgan, Z, tmp_path / "plain.png", 3, seed=1, classes=[1, 3])
    named = export_grid(cgan, Z, tmp_path / "named.png", 3, seed=1, classes=[1, 3], names=class_names(
        RunConfig.load(cgan_run / "config.toml")))
    with Image.open(plain) as a, Image.open(named) as b:
        a, b = np.asarray(a), np.asarray(b)
    left = b.shape[1] - a.shape[1]
    assert b.shape[0] == a.shape[0] and left > 20  # a column as wide as "Trouser"
    assert np.array_equal(b[:, left:], a)
    assert b[:, :left].max() > 0  # the names are drawn (white on black)
    # each name sits beside its own row: ink in the top row's band and in the bottom one's, none on the padding
    ink = b[:, :left].max(axis=(1, 2)) > 0
    assert ink[2:30].any() and ink[32:60].any() and not ink[:1].any()


def test_run_plan_names_rows_only_when_asked(cgan_run, tmp_path):
    base = dict(run_dir=cgan_run, n=2, classes=(0, 1))
    (plain,) = run_plan(ExportPlan(grid=tmp_path / "a.png", **base))
    (named,) = run_plan(ExportPlan(grid=tmp_path / "b.png", row_names=True, **base))
    with Image.open(plain.path) as a, Image.open(named.path) as b:
        assert b.width > a.width and b.height == a.height


# --- the generator in a plan, and which checkpoint ----------------------------------------------------
def test_a_plan_writes_the_generator_files_beside_the_images(trained_run, g, tmp_path):
    plan = ExportPlan.in_folder(trained_run, tmp_path, grid=True, torchscript=True, onnx=True, n=4)
    assert [p.name for p in plan.outputs()] == ["grid_n4_seed0.png", "generator_last.pt", "generator_last.onnx"]
    seen = []
    written = run_plan(plan, lambda done, total: seen.append((done, total)))
    assert [w.path for w in written] == plan.outputs() and seen[-1] == (3000, 3000)
    assert "TorchScript" in written[1].what and "ONNX" in written[2].what
    loaded = torch.jit.load(str(tmp_path / "generator_last.pt"))
    z = seeded_noise(3, Z, 5)
    with torch.no_grad():
        assert torch.allclose(loaded(z), g(z), atol=1e-4)


def test_a_plan_refuses_a_wrong_generator_name_before_any_image(trained_run, tmp_path):
    plan = ExportPlan(trained_run, grid=tmp_path / "g.png", torchscript=tmp_path / "g.onnx")
    with pytest.raises(ExportError, match="must end in .pt"):
        run_plan(plan)
    assert not (tmp_path / "g.png").exists()


def _best_copy(run, tmp_path):
    """A copy of ``run`` whose checkpoints/best.pt holds other G weights (its own step, 6: a checkpoint checks
    that its step matches its state)."""
    copy = shutil.copytree(run, tmp_path / "run")
    payload = checkpoint.load(copy / "checkpoints" / "last.pt")
    for key in ("g", "g_ema"):
        for name, tensor in payload["state"].get(key, {}).items():
            if tensor.is_floating_point() and name.endswith("weight"):
                tensor.mul_(-1)
    checkpoint.save(copy / "checkpoints" / "best.pt", {k: v for k, v in payload.items() if not k.startswith(
        ("format", "ganstudio_version"))})
    return copy


def test_the_best_checkpoint_is_exported_when_chosen(trained_run, tmp_path):
    with pytest.raises(ExportError, match="no checkpoints/best.pt: it is written when an evaluation"):
        run_plan(ExportPlan(trained_run, checkpoint="best", grid=tmp_path / "x.png"))
    run = _best_copy(trained_run, tmp_path)
    assert checkpoint_step(run, "best") == 6
    plan = ExportPlan.in_folder(run, tmp_path, grid=True, torchscript=True, n=4, checkpoint="best")
    assert plan.torchscript.name == "generator_best.pt"
    run_plan(plan)
    best_g = load_for_export(run, "best")[1]
    with Image.open(plan.grid) as grid:
        assert np.array_equal(np.asarray(grid), np.asarray(grid_image(generate(best_g, seeded_noise(4, Z, 0)))))
        last = grid_image(generate(load_for_export(run, "last")[1], seeded_noise(4, Z, 0)))
        assert not np.array_equal(np.asarray(grid), np.asarray(last))
