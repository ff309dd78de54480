"""``ganstudio``: the studio window, and the headless commands: train, sample, export, presets, eval, control (a
running run) and queue."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganstudio import __version__
from ganstudio.queue.command import add_queue_parser
from ganstudio.train_command import add_train_arguments
from ganstudio.train_launch import add_launch_arguments

EXIT_ERROR, EXIT_USAGE = 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc N` starts the same command N times
    if args.command is None:
        from ganstudio.gui.app import run_studio  # Qt is imported only for the window

        return run_studio()
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C in a command without its own handlers (train has them)
        print(f"ganstudio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one readable line unless --debug
        if args.debug:
            raise
        from ganstudio.config import ConfigError

        print(f"ganstudio {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganstudio", description="Train and inspect GANs. With no command, "
                                     "opens the studio window.")
    parser.add_argument("--version", action="version", version=f"ganstudio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train a model headless", description="Train headless; Ctrl-C saves "
                           "a checkpoint and exits. Prints the run folder at the end.")
    add_train_arguments(train)
    add_launch_arguments(train)
    train.set_defaults(func=cmd_train)
    add_queue_parser(sub)  # `queue add` takes train's arguments

    sample = sub.add_parser("sample", help="generate images from a trained run",
                            description="OUT ending in .png writes one grid; otherwise a folder of N PNG files. "
                                        "A class-conditional (cgan) run draws N images per class, one grid row "
                                        "per class, the same noise in every row.")
    _add_run_arguments(sample)
    sample.add_argument("-n", type=int, default=None,
                        help="how many images (default 64; a cgan: per class, default 8)")
    sample.add_argument("-o", "--out", type=Path, required=True, help="grid .png or output folder")
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    _add_class_argument(sample)
    sample.set_defaults(func=cmd_sample)

    _add_export_parser(sub)
    _add_eval_parser(sub)
    _add_control_parser(sub)

    presets = sub.add_parser("presets", help="list the bundled presets")
    presets.set_defaults(func=cmd_presets)
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """DIR and --checkpoint: which run and which of its checkpoints (sample, export, eval)."""
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="a run folder (or a checkpoint file)")
    parser.add_argument("--checkpoint", default="last", help="last, best or a checkpoint path (default last)")


def _add_class_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class", dest="classes", type=_class_list, action="append", metavar="K",
                        help="a cgan run's class to draw, repeatable or a comma list: --class 3 --class 5, "
                             "--class 3,5 (default: every class, one row each)")


def _class_list(text: str) -> list[int]:
    try:
        classes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class numbers like 3 or 3,5, got {text!r}") from None
    if not classes:
        raise argparse.ArgumentTypeError("expected at least one class number")
    return classes


def _chosen_classes(args: argparse.Namespace) -> tuple[int, ...] | None:
    return tuple(k for group in args.classes for k in group) if args.classes else None


def _add_export_parser(sub) -> None:
    export = sub.add_parser(
        "export", help="write grids, single images, a progress GIF or a latent interpolation",
        description="Write exports from a run folder. Give at least one of --grid, --singles, --gif, "
                    "--interpolate, --torchscript, --onnx. The folder that holds each output must exist.")
    _add_run_arguments(export)
    outputs = export.add_argument_group("outputs (at least one)")
    outputs.add_argument("--grid", type=Path, metavar="OUT.png", help="one grid PNG of N images")
    outputs.add_argument("--singles", type=Path, metavar="FOLDER", help="N PNGs, FOLDER/sample_00000.png ...")
    outputs.add_argument("--gif", type=Path, metavar="OUT.gif", help="an animated GIF of the run's samples/")
    outputs.add_argument("--interpolate", type=Path, metavar="OUT",
                         help="a latent interpolation: OUT.png a strip, OUT.gif an animation a->b->a")
    outputs.add_argument("--torchscript", type=Path, metavar="OUT.pt",
                         help="the generator as TorchScript: (z[, labels]) -> images in [-1, 1], any batch size")
    outputs.add_argument("--onnx", type=Path, metavar="OUT.onnx",
                         help="the generator as ONNX (needs pip install 'ganstudio[onnx]')")
    images = export.add_argument_group("images")
    images.add_argument("-n", type=int, help="how many images for --grid/--singles (default 64; a cgan: "
                        "per class, default 8)")
    images.add_argument("--seed", type=int, default=0, help="noise seed for --grid/--singles (default 0)")
    images.add_argument("--fps", type=float, default=8.0, help="GIF frames per second (default 8)")
    images.add_argument("--scale", type=int, default=1, metavar="K",
                        help="enlarge GIFs (--gif, --interpolate OUT.gif) K times, nearest neighbour (default 1)")
    _add_class_argument(images)
    walk = export.add_argument_group("interpolation")
    walk.add_argument("--seeds", type=int, nargs=2, default=(0, 1), metavar=("A", "B"),
                      help="noise seeds of the two ends (default 0 1)")
    walk.add_argument("--steps", type=int, default=10, help="images from A to B, ends included (default 10)")
    walk.add_argument("--rows", type=int, default=1, help="pairs of latents, one row each (default 1)")
    walk.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    export.set_defaults(func=cmd_export, usage_error=export.error)


def _add_eval_parser(sub) -> None:
    evaluate = sub.add_parser(
        "eval", help="measure a trained generator: FID, KID, IS, precision/recall",
        description="Score generated images against the run's real data with eval.metrics, print a table, "
                    "optionally write JSON and a nearest-neighbour sheet (memorisation check).")
    _add_run_arguments(evaluate)
    evaluate.add_argument("-n", type=int, help="generated (and real) images (default: the run's eval.num_samples)")
    evaluate.add_argument("--metrics", help="comma-separated subset of fid,kid,is,pr,dc (default: the run's)")
    evaluate.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    evaluate.add_argument("--neighbours", type=Path, metavar="OUT.png",
                          help="8 generated images, each beside its 3 nearest training images")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    evaluate.set_defaults(func=cmd_eval)


def _add_control_parser(sub) -> None:
    control = sub.add_parser(
        "control", help="steer a run another process is writing (pause, resume, step, stop, set ...)",
        description="Append a command to RUN_DIR/commands.jsonl; the process writing the run reads it within "
                    "a moment (a headless ganstudio train, a queued job, the studio). Works over a shared folder.")
    control.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder")
    control.add_argument("action", metavar="COMMAND",
                         help="pause, resume, step, step-d, step-g, stop, sample, evaluate, checkpoint, or set")
    control.add_argument("setting", nargs="?", metavar="KEY=VALUE", help="for set: a live field, e.g. optim.lr_g=1e-4")
    control.set_defaults(func=cmd_control)


def cmd_control(args: argparse.Namespace) -> int:
    from ganstudio.engine.commands import control_run

    sent = control_run(args.run_dir, args.action, args.setting)
    what = f" {sent['key']}={sent['value']!r}" if sent["command"] == "set" else ""
    print(f"sent {sent['command']}{what} to {args.run_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from ganstudio.engine import resolve_device
    from ganstudio.engine.inference import checkpoint_path, eval_images, load_generator
    from ganstudio.fileio import atomic_write, atomic_write_bytes
    from ganstudio.metrics.evaluate import Evaluator, neighbour_sheet

    device = resolve_device(args.device)
    path = checkpoint_path(args.run_dir, args.checkpoint)
    config, g = load_generator(args.run_dir, args.checkpoint, device)
    changes = ({"eval.num_samples": args.n} if args.n else {}) | \
        ({"eval.metrics": args.metrics.split(",")} if args.metrics else {})
    config = config.with_changes(changes, "the command line")
    evaluator = Evaluator(config.data, config.eval, device)
    fake = eval_images(g, config, config.eval.num_samples)
    report = evaluator.evaluate(fake)
    step = _checkpoint_step(path)
    print(f"{path} (step {step}), {report.num_samples} generated vs {report.num_samples} real images, "
          f"features: {report.extractor}")
    for line in _metric_table(report.metrics, report.num_samples):
        print(line)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        result = {"run": str(args.run_dir), "checkpoint": str(path), "step": step, "extractor": report.extractor,
                  "num_samples": report.num_samples, "metrics": report.metrics, "warnings": report.warnings}
        atomic_write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
        print(f"wrote {args.json}")
    if args.neighbours:
        from PIL import Image

        _, indices = evaluator.neighbours(fake[:8], k=3)
        sheet = neighbour_sheet(fake[:8], evaluator.real_images(), indices)
        image = Image.fromarray(sheet[..., 0] if sheet.shape[-1] == 1 else sheet)
        # atomic: a full disk leaves no 0-byte PNG behind, and the error names the file
        atomic_write(args.neighbours, lambda f: image.save(f, format="PNG"))
        print(f"wrote {args.neighbours}: generated images (left) beside their nearest training images")
    return 0


def _checkpoint_step(path: Path) -> int:
    from ganstudio.engine import checkpoint

    return int(checkpoint.load(path)["step"])


def _metric_table(metrics: dict[str, float], n: int) -> list[str]:
    """One line per figure: name@N, value, ± its std where there is one."""
    lines = []
    for key, value in metrics.items():
        if key.endswith("_std"):
            continue
        std = metrics.get(f"{key}_std")
        spread = f" ± {std:.4g}" if std is not None else ""
        lines.append(f"  {key.upper() if key in ('fid', 'kid', 'is') else key:<10} @{n:<6} {value:10.4g}{spread}")
    return lines


def cmd_train(args: argparse.Namespace) -> int:
    from ganstudio.train_command import cmd_train as train  # its signals, lock and progress bar

    return train(args)


def cmd_sample(args: argparse.Namespace) -> int:
    from ganstudio.export import (
        DEFAULT_IMAGES, DEFAULT_PER_CLASS, choose_classes, classes_phrase, export_grid, export_singles, load_for_export,
    )

    config, g = load_for_export(args.run_dir, args.checkpoint)
    classes = choose_classes(g, _chosen_classes(args), config.model.family)
    n = args.n if args.n is not None else (DEFAULT_PER_CLASS if classes else DEFAULT_IMAGES)
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    each, z_dim = classes_phrase(classes), config.model.z_dim
    if args.out.suffix.lower() == ".png":
        export_grid(g, z_dim, args.out, n, args.seed, classes=classes)
        print(f"wrote a grid of {n} images{each} to {args.out}")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = export_singles(g, z_dim, args.out, n, args.seed, classes=classes)
    print(f"wrote {len(paths)} images{each} to {args.out}/")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ganstudio.export import ExportPlan, run_plan

    plan = ExportPlan(run_dir=args.run_dir, checkpoint=args.checkpoint, grid=args.grid, singles=args.singles,
                      gif=args.gif, interpolation=args.interpolate, n=args.n, seed=args.seed, fps=args.fps,
                      seeds=tuple(args.seeds), steps=args.steps, rows=args.rows,
                      mode="slerp" if args.slerp else "linear", classes=_chosen_classes(args), scale=args.scale)
    models = args.torchscript is not None or args.onnx is not None
    if not plan.outputs() and not models:
        args.usage_error("nothing to export: give at least one of --grid, --singles, --gif, --interpolate, "
                         "--torchscript, --onnx")
    if models:
        from ganstudio.model_export import check_model_outputs

        check_model_outputs(args.torchscript, args.onnx)  # names, folders, the onnx extra: before any image
    for written in run_plan(plan) if plan.outputs() else []:
        print(f"wrote {written.what} to {written.path}")
    if models:
        from ganstudio.model_export import CHECK_BATCHES, export_run

        for done in export_run(args.run_dir, args.checkpoint, torchscript=args.torchscript, onnx=args.onnx):
            batches = " and ".join(map(str, CHECK_BATCHES))
            print(f"wrote the generator as {done.format} ({', '.join(done.inputs)} -> images) to {done.path}; "
                  f"it matches the live model within {done.max_abs_diff:.1e} at batch sizes {batches}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from ganstudio.config import preset_description, preset_names

    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
