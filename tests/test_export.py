"""Exports (ganstudio/export.py) and the `ganstudio export` command, on one tiny run trained once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganstudio.cli import main
from ganstudio.engine.inference import generate, seeded_noise
from ganstudio.grids import grid_image
from ganstudio.export import (
    ExportCancelled, ExportError, ExportPlan, checkpoint_step, export_grid, export_interpolation,
    export_progress_gif, export_singles, interpolate, load_for_export, run_plan, sample_files,
)

Z = 8  # the tiny run's z_dim


@pytest.fixture(scope="module")
def run(trained_run):
    """The shared 6-step tiny run (tests/conftest.py); z_dim is Z."""
    return trained_run


@pytest.fixture(scope="module")
def g(run):
    config, generator = load_for_export(run)
    assert config.model.z_dim == Z
    return generator


def _tile(strip: Image.Image, row: int, col: int) -> np.ndarray:
    """One 28 px image out of a padded (2 px) strip or grid, first channel."""
    x, y = 2 + 30 * col, 2 + 30 * row
    return np.asarray(strip)[y:y + 28, x:x + 28, 0]


def test_grid_has_the_sample_grid_layout(g, tmp_path):
    out = export_grid(g, Z, tmp_path / "grid.png", n=10, seed=3)
    expected = grid_image(generate(g, seeded_noise(10, Z, 3)))
    with Image.open(out) as grid:
        assert grid.size == (4 * 30 + 2, 3 * 30 + 2)  # ceil(sqrt(10)) = 4 per row, 2 px padding
        assert np.array_equal(np.asarray(grid), np.asarray(expected))


def test_singles_are_the_grid_images_at_model_resolution(g, tmp_path):
    seen = []
    paths = export_singles(g, Z, tmp_path / "singles", n=5, seed=3, progress=lambda d, t: seen.append((d, t)))
    assert [p.name for p in paths] == [f"sample_{i:05d}.png" for i in range(5)]
    expected = generate(g, seeded_noise(5, Z, 3))
    for path, image in zip(paths, expected):
        with Image.open(path) as single:
            assert single.size == (28, 28) and single.mode == "L"
            assert np.array_equal(np.asarray(single), image[..., 0])
    assert seen[-1] == (5, 5)


def test_progress_gif_has_one_frame_per_sample_in_step_order(run, tmp_path):
    samples = sorted((run / "samples").glob("step_*.png"))
    assert len(samples) == 4
    assert export_progress_gif(run / "samples", tmp_path / "progress.gif", fps=5) == 4
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 200 and gif.info["loop"] == 0
        with Image.open(samples[0]) as first:
            assert gif.size == (first.width, first.height + 14)  # the "step N" label strip
    assert export_progress_gif(run, tmp_path / "from_run.gif") == 4  # the run folder works too


def test_progress_gif_takes_grids_and_steps_from_the_sample_index(tmp_path):
    from ganstudio.engine.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.create()
    grey = np.full((16, 28, 28, 1), 120, dtype=np.uint8)
    for step in (0, 5, 10):
        run.write_grid(step, grey)
        run.write_reconstructions(step, grey[:8])  # not frames of the progress GIF
    wide = run.write_grid(5, np.full((30, 28, 28, 1), 80, dtype=np.uint8), columns=10)  # a resume rewrote step 5
    assert sample_files(run.path) == [(0, run.sample_path(0)), (5, wide), (10, run.sample_path(10))]
    assert export_progress_gif(run.path, tmp_path / "p.gif") == 3
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (10 * 30 + 2, 4 * 30 + 2 + 14)  # the largest grids, and a label
        gif.seek(1)
        assert np.asarray(gif.convert("L"))[3, 3] == 80  # step 5's grid as the index's last row names it


def test_sample_files_sort_by_step_number_not_name(tmp_path):
    for step in (10, 1_000_000, 2):
        Image.new("L", (4, 4)).save(tmp_path / f"step_{step:06d}.png")
    (tmp_path / "step_notes.png").write_bytes(b"")
    assert [s for s, _ in sample_files(tmp_path)] == [2, 10, 1_000_000]


def test_progress_gif_without_samples_says_so(tmp_path):
    (tmp_path / "samples").mkdir()
    with pytest.raises(ExportError, match="no sample grids"):
        export_progress_gif(tmp_path, tmp_path / "p.gif")
    assert not (tmp_path / "p.gif").exists()


def test_interpolation_strip_is_rows_by_steps(g, tmp_path):
    out = export_interpolation(g, Z, tmp_path / "walk.png", seed_a=1, seed_b=2, steps=10, rows=3)
    with Image.open(out) as strip:
        assert strip.size == (10 * 30 + 2, 3 * 30 + 2)


def test_interpolation_gif_goes_there_and_back(g, tmp_path):
    out = export_interpolation(g, Z, tmp_path / "walk.gif", seed_a=1, seed_b=50, steps=6, rows=2, fps=10)
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * 6 - 2  # 0..5 then 4..1: the ends are not repeated
        assert gif.size == (2 * 30 + 2, 30 + 2)  # two images per frame, side by side


@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_interpolation_ends_are_the_seeded_latents(g, tmp_path, mode):
    z_a, z_b = seeded_noise(1, Z, 4), seeded_noise(1, Z, 9)
    z = interpolate(z_a, z_b, 7, mode)
    assert z.shape == (1, 7, Z)
    assert torch.equal(z[:, 0], z_a) and torch.equal(z[:, -1], z_b)
    out = export_interpolation(g, Z, tmp_path / "walk.png", seed_a=4, seed_b=9, steps=7, mode=mode)
    ends = generate(g, torch.cat([z_a, z_b]))[..., 0]
    with Image.open(out) as strip:
        assert np.abs(_tile(strip, 0, 0).astype(int) - ends[0]).max() <= 1
        assert np.abs(_tile(strip, 0, 6).astype(int) - ends[1]).max() <= 1


def test_slerp_keeps_the_radius_that_a_straight_line_cuts_through():
    z_a, z_b = seeded_noise(1, 512, 0), seeded_noise(1, 512, 1)
    middle = lambda mode: interpolate(z_a, z_b, 3, mode)[0, 1].norm().item()  # noqa: E731
    radius = z_a.norm().item()
    assert middle("slerp") == pytest.approx(radius, rel=0.05)
    assert middle("linear") < 0.8 * radius  # two near-orthogonal Gaussians: the midpoint is ~0.71 r


def test_slerp_of_equal_latents_is_constant_not_nan():
    z = seeded_noise(2, Z, 5)
    walk = interpolate(z, z.clone(), 5, "slerp")
    assert torch.isfinite(walk).all() and torch.allclose(walk, z[:, None].expand_as(walk))


def test_output_under_a_file_is_an_export_error(g, run, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")  # root ignores chmod, but nobody can create a folder inside a file
    for call in (lambda: export_grid(g, Z, blocker / "grid.png", 4, 0),
                 lambda: export_singles(g, Z, blocker / "singles", 4, 0),
                 lambda: export_progress_gif(run, blocker / "sub" / "p.gif"),
                 lambda: export_interpolation(g, Z, blocker / "walk.gif", 0, 1)):
        with pytest.raises(ExportError, match="is a file, not a folder"):
            call()
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_singles(g, Z, blocker, 4, 0)  # the singles folder itself is the file


def test_missing_folder_and_wrong_names_are_export_errors(g, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_grid(g, Z, tmp_path / "missing" / "grid.png", 4, 0)
    with pytest.raises(ExportError, match=r"must end in \.png"):
        export_grid(g, Z, tmp_path / "grid.jpg", 4, 0)
    with pytest.raises(ExportError, match=r"\.png or \.gif"):
        export_interpolation(g, Z, tmp_path / "walk.mp4", 0, 1)
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ExportError, match="existing folder"):
        export_grid(g, Z, tmp_path / "taken.png", 4, 0)


@pytest.mark.parametrize("call, message", [
    (lambda g, p: export_grid(g, Z, p / "g.png", 0, 0), "number of images must be between 1"),
    (lambda g, p: export_singles(g, Z, p / "s", -3, 0), "number of images must be between 1"),
    (lambda g, p: export_interpolation(g, Z, p / "w.png", 0, 1, steps=1), "interpolation steps"),
    (lambda g, p: export_interpolation(g, Z, p / "w.png", 0, 1, rows=0), "interpolation rows"),
    (lambda g, p: export_interpolation(g, Z, p / "w.png", 0, 1, mode="cubic"), "one of linear, slerp"),
    (lambda g, p: export_interpolation(g, Z, p / "w.gif", 0, 1, fps=0), "frames per second"),
])
def test_bad_counts_are_export_errors(g, tmp_path, call, message):
    with pytest.raises(ExportError, match=message):
        call(g, tmp_path)
    assert list(tmp_path.iterdir()) == []  # checked before anything is written


def test_loading_without_a_checkpoint_says_what_to_do(run, tmp_path):
    assert checkpoint_step(run) == 6
    with pytest.raises(ExportError, match="no checkpoints/last.pt yet: train it"):
        load_for_export(tmp_path)
    with pytest.raises(ExportError, match="does not exist"):
        load_for_export(tmp_path / "nowhere")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="not a checkpoint"):
        load_for_export(tmp_path)


def test_run_plan_writes_everything_with_one_progress(run, tmp_path):
    plan = ExportPlan.in_folder(run, tmp_path, grid=True, singles=True, gif=True, interpolation="gif",
                                n=6, seed=2, seeds=(3, 8), steps=4, mode="slerp")
    seen = []
    written = run_plan(plan, lambda done, total: seen.append((done, total)))
    assert [w.path.name for w in written] == ["grid_n6_seed2.png", "singles_n6_seed2", "progress.gif",
                                              "interpolation_3-8_slerp.gif"]
    assert all(w.path.exists() for w in written)
    assert len(list((tmp_path / "singles_n6_seed2").iterdir())) == 6
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (4000, 4000) and {t for _, t in seen} == {4000}


def test_cancelling_from_progress_stops_and_leaves_no_half_file(run, tmp_path):
    def cancel(done, total):
        raise ExportCancelled("export cancelled")

    plan = ExportPlan(run_dir=run, grid=tmp_path / "grid.png", n=200)
    with pytest.raises(ExportCancelled):
        run_plan(plan, cancel)
    assert list(tmp_path.iterdir()) == []


def test_plan_with_nothing_to_do_is_an_error(run):
    with pytest.raises(ExportError, match="nothing to export"):
        ExportPlan(run_dir=run).check()


# --- the CLI -------------------------------------------------------------------------------------
def test_cli_export_writes_every_kind(run, tmp_path, capsys):
    args = ["export", str(run), "-n", "5", "--seed", "1", "--grid", str(tmp_path / "grid.png"),
            "--singles", str(tmp_path / "singles"), "--gif", str(tmp_path / "progress.gif"),
            "--interpolate", str(tmp_path / "walk.gif"), "--seeds", "2", "30", "--steps", "4", "--slerp"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"wrote a grid of 5 images to {tmp_path / 'grid.png'}",
                   f"wrote 5 images to {tmp_path / 'singles'}",
                   f"wrote a progress GIF of 4 frames to {tmp_path / 'progress.gif'}",
                   f"wrote a slerp interpolation between seeds 2 and 30 to {tmp_path / 'walk.gif'}"]
    assert len(list((tmp_path / "singles").glob("sample_*.png"))) == 5
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 6


def test_cli_export_strip(run, tmp_path):
    assert main(["export", str(run), "--interpolate", str(tmp_path / "walk.png"), "--steps", "5",
                 "--rows", "2"]) == 0
    with Image.open(tmp_path / "walk.png") as strip:
        assert strip.size == (5 * 30 + 2, 2 * 30 + 2)


def test_cli_export_without_an_output_is_a_usage_error(run, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(run)])
    assert exit_.value.code == 2
    assert "give at least one of --grid" in capsys.readouterr().err


def test_cli_export_error_is_one_line(run, tmp_path, capsys):
    assert main(["export", str(run), "--grid", str(tmp_path / "missing" / "g.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ganstudio export: error: the output folder") and err.count("\n") == 1
    assert main(["export", str(tmp_path), "--grid", str(tmp_path / "g.png")]) == 1
    assert "no checkpoints/last.pt yet" in capsys.readouterr().err


def test_cli_export_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ganstudio export" in out and "--interpolate" in out


# --- conditional generators and the autoencoder families -------------------------------------------
def _rows_are_classes(path, g, classes, n, seed):
    """Row r of the grid at ``path`` is seeded_noise(n, Z, seed) drawn as class classes[r]."""
    z = seeded_noise(n, Z, seed)
    with Image.open(path) as grid:
        assert grid.size == (n * 30 + 2, len(classes) * 30 + 2)
        for row, k in enumerate(classes):
            expected = generate(g, z, torch.full((n,), k))[..., 0]
            for col in range(n):
                assert np.array_equal(_tile(grid, row, col), expected[col])


def test_conditional_grid_has_one_row_per_chosen_class(cgan_run, tmp_path):
    _, g = load_for_export(cgan_run)
    out = export_grid(g, Z, tmp_path / "grid.png", n=4, seed=2, classes=[7, 1, 3])
    _rows_are_classes(out, g, [7, 1, 3], 4, 2)
    out = export_grid(g, Z, tmp_path / "all.png", n=3, seed=2)  # default: every class, in order
    _rows_are_classes(out, g, list(range(10)), 3, 2)


def test_class_choices_are_checked(cgan_run, g, tmp_path):
    from ganstudio.export import choose_classes

    _, cg = load_for_export(cgan_run)
    with pytest.raises(ExportError, match=r"class 10 is out of range: this run's generator has 10 classes, 0 to 9"):
        export_grid(cg, Z, tmp_path / "grid.png", 4, 0, classes=[3, 10])
    with pytest.raises(ExportError, match="not class-conditional .model.family = 'gan'.: only a cgan run takes"):
        choose_classes(g, [1], "gan")
    assert choose_classes(g, None) is None and choose_classes(cg, ()) == list(range(10))
    with pytest.raises(ExportError, match="number of images must be between 1 and 4096, got 4100"):
        export_grid(cg, Z, tmp_path / "grid.png", 410, 0)  # 410 per class x 10 classes
    assert list(tmp_path.iterdir()) == []


def test_conditional_singles_are_named_by_class(cgan_run, tmp_path):
    _, g = load_for_export(cgan_run)
    paths = export_singles(g, Z, tmp_path / "singles", n=2, seed=1, classes=[4, 0])
    assert [p.name for p in paths] == ["class4_00000.png", "class4_00001.png", "class0_00000.png", "class0_00001.png"]
    expected = generate(g, seeded_noise(2, Z, 1), torch.tensor([0, 0]))
    with Image.open(paths[3]) as single:
        assert np.array_equal(np.asarray(single), expected[1, ..., 0])


def test_conditional_interpolation_walks_each_class_with_the_seeds_at_its_ends(cgan_run, tmp_path):
    _, g = load_for_export(cgan_run)
    out = export_interpolation(g, Z, tmp_path / "walk.png", seed_a=4, seed_b=9, steps=5, rows=2, classes=[6, 2])
    walk = interpolate(seeded_noise(2, Z, 4), seeded_noise(2, Z, 9), 5)
    with Image.open(out) as strip:
        assert strip.size == (5 * 30 + 2, 4 * 30 + 2)  # 2 rows for each of 2 classes
        for row, (k, pair) in enumerate([(6, 0), (6, 1), (2, 0), (2, 1)]):
            expected = generate(g, walk[pair], torch.full((5,), k))[..., 0]  # one class all along the walk
            for col in range(5):
                assert np.array_equal(_tile(strip, row, col), expected[col])
        ends = generate(g, torch.cat([seeded_noise(2, Z, 4)[:1], seeded_noise(2, Z, 9)[:1]]), torch.tensor([2, 2]))
        assert np.array_equal(_tile(strip, 2, 0), ends[0, ..., 0])
        assert np.array_equal(_tile(strip, 2, 4), ends[1, ..., 0])
    with pytest.raises(ExportError, match="7 interpolation rows for each of 10 classes make 70 rows, more than 64"):
        export_interpolation(g, Z, tmp_path / "big.png", 0, 1, rows=7)


@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_a_vae_decoder_interpolates_from_the_cli_too(vae_run, tmp_path, mode):
    _, decoder = load_for_export(vae_run)
    args = ["export", str(vae_run), "--interpolate", str(tmp_path / "walk.png"), "--seeds", "3", "8", "--steps", "4"]
    assert main(args + (["--slerp"] if mode == "slerp" else [])) == 0
    ends = generate(decoder, torch.cat([seeded_noise(1, Z, 3), seeded_noise(1, Z, 8)]))[..., 0]
    with Image.open(tmp_path / "walk.png") as strip:
        assert np.array_equal(_tile(strip, 0, 0), ends[0]) and np.array_equal(_tile(strip, 0, 3), ends[1])


def test_plan_names_and_describes_class_exports(cgan_run, tmp_path, capsys):
    plan = ExportPlan.in_folder(cgan_run, tmp_path, grid=True, interpolation="png", n=3, classes=(2, 5))
    assert plan.grid.name == "grid_n3_seed0_class2_5.png"
    assert plan.interpolation.name == "interpolation_0-1_linear_class2_5.png"
    written = run_plan(plan)
    assert [w.what for w in written] == ["a grid of 3 images for each of 2 classes",
                                         "a linear interpolation between seeds 0 and 1 for each of 2 classes"]
    assert main(["export", str(cgan_run), "--grid", str(tmp_path / "g.png"), "--class", "4"]) == 0
    assert capsys.readouterr().out == f"wrote a grid of 8 images of class 4 to {tmp_path / 'g.png'}\n"


# --- `ganstudio sample --class` --------------------------------------------------------------------
def test_cli_sample_rows_are_the_chosen_classes(cgan_run, tmp_path, capsys):
    _, g = load_for_export(cgan_run)
    assert main(["sample", str(cgan_run), "-n", "3", "--seed", "5", "--class", "8,2", "--class", "0",
                 "-o", str(tmp_path / "grid.png")]) == 0
    assert capsys.readouterr().out == f"wrote a grid of 3 images for each of 3 classes to {tmp_path / 'grid.png'}\n"
    _rows_are_classes(tmp_path / "grid.png", g, [8, 2, 0], 3, 5)
    assert main(["sample", str(cgan_run), "-o", str(tmp_path / "all.png")]) == 0  # default: 8 of every class
    with Image.open(tmp_path / "all.png") as grid:
        assert grid.size == (8 * 30 + 2, 10 * 30 + 2)
    assert main(["sample", str(cgan_run), "-n", "2", "--class", "3", "-o", str(tmp_path / "singles")]) == 0
    assert sorted(p.name for p in (tmp_path / "singles").iterdir()) == ["class3_00000.png", "class3_00001.png"]


def test_cli_sample_refuses_bad_classes(cgan_run, run, tmp_path, capsys):
    assert main(["sample", str(cgan_run), "--class", "12", "-o", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err
    assert err == ("ganstudio sample: error: class 12 is out of range: this run's generator has 10 classes, "
                   "0 to 9\n")
    assert main(["sample", str(run), "--class", "1", "-o", str(tmp_path / "g.png")]) == 1
    assert "not class-conditional (model.family = 'gan')" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["sample", str(cgan_run), "--class", "three", "-o", str(tmp_path / "g.png")])
    assert exit_.value.code == 2 and "expected class numbers like 3 or 3,5" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
