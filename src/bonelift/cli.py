"""Command line: `bonelift train | evaluate | ...`; each command calls the Python API of the same name.

Training flags are generated from the configuration dataclasses (`bonelift.config`), so the CLI and
the Python API take the same options.
"""

from __future__ import annotations

import argparse
import sys
import typing
import warnings
from pathlib import Path

from bonelift.errors import BoneliftError


def _add_train(sub: argparse._SubParsersAction) -> None:
    from bonelift.config import ImageTrainConfig, TrainConfig, VideoTrainConfig, add_arguments

    p = sub.add_parser("train", help="train a single-frame lifting network on Human3.6M or HumanEva")
    add_arguments(p, TrainConfig())
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run in OUT")
    p.add_argument("--override", action="store_true", help="with --resume: continue under options that differ from "
                                                           "the run's (recorded in config.json)")
    p = sub.add_parser("train-video", help="train a temporal lifter (VideoPose3D `tcn` or method 5 `bone`)")
    add_arguments(p, VideoTrainConfig(), skip=("model.name",))
    p.add_argument("--model", dest="model.name", default=VideoTrainConfig().model.name, choices=["tcn", "bone"],
                   help="video network")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run in OUT")
    p.add_argument("--override", action="store_true", help="with --resume: continue under options that differ from "
                                                           "the run's (recorded in config.json)")
    p = sub.add_parser("train-image", help="train method 3's image CNN on ImageSet files (person crops)")
    add_arguments(p, ImageTrainConfig(), skip=ImageTrainConfig.KEYPOINT_ONLY)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run in OUT")
    p.add_argument("--override", action="store_true", help="with --resume: continue under options that differ from "
                                                           "the run's (recorded in config.json)")


def _cmd_train(args: argparse.Namespace) -> None:
    from bonelift.config import ImageTrainConfig, TrainConfig, VideoTrainConfig, from_args

    if args.command == "train":
        from bonelift.training import train

        train(from_args(TrainConfig(), args), resume=args.resume, overwrite=args.overwrite, override=args.override)
    elif args.command == "train-image":
        from bonelift.training import train_image

        train_image(from_args(ImageTrainConfig(), args), resume=args.resume, overwrite=args.overwrite,
                    override=args.override)
    else:
        from bonelift.training import train_video

        train_video(from_args(VideoTrainConfig(), args), resume=args.resume, overwrite=args.overwrite,
                    override=args.override)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from bonelift.config import EvaluateConfig, add_arguments

    p = sub.add_parser("evaluate", help="evaluate a checkpoint under Protocols 1 and 2")
    p.add_argument("checkpoint")
    add_arguments(p, EvaluateConfig())


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from bonelift.config import EvaluateConfig, from_args
    from bonelift.evaluate import evaluate

    results, paths = evaluate(args.checkpoint, from_args(EvaluateConfig(), args))
    print(Path(paths[1]).read_text())
    print(f"wrote {paths[0]} and {paths[1]}")


def _add_lift(sub: argparse._SubParsersAction) -> None:
    from bonelift.config import LiftConfig, add_arguments
    from bonelift.pipeline.lift import DEFAULT_OUT

    for name, helptext in (("lift", "video, image folder or 2D keypoint file -> 3D joints, BVH, pictures (offline)"),
                           ("demo", "run `lift` on the bundled demo clip")):
        p = sub.add_parser(name, help=helptext)
        if name == "lift":
            p.add_argument("input", nargs="?", default=None,
                           help="video, image folder, or keypoint file (.json/.npz/.csv); default: the demo clip")
        p.add_argument("-o", "--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
        add_arguments(p, LiftConfig())


def _cmd_lift(args: argparse.Namespace) -> None:
    from bonelift.config import LiftConfig, from_args
    from bonelift.pipeline import lift

    config = from_args(LiftConfig(), args)
    try:  # options are checked by `LiftConfig.validate`, so the API and the command line refuse the same values
        summary = lift(getattr(args, "input", None), args.out, config)
    except KeyboardInterrupt:
        print("bonelift: interrupted (no outputs written)", file=sys.stderr)
        raise SystemExit(130) from None
    print(summary)


def _add_live(sub: argparse._SubParsersAction) -> None:
    from bonelift.config import LiveCommandConfig, add_arguments

    p = sub.add_parser("live", help="camera, stream or video -> 3D joints frame by frame (window, UDP JSON lines)")
    p.add_argument("source", help="camera index (0, 1, ...), stream URL (rtsp://...) or video file")
    add_arguments(p, LiveCommandConfig(), skip=("layout",))


def _cmd_live(args: argparse.Namespace) -> None:
    from bonelift.config import LiveCommandConfig, from_args
    from bonelift.pipeline.live_stream import live

    print(live(args.source, from_args(LiveCommandConfig(), args)))  # ends with the stream, q / Esc or Ctrl-C


def _add_opensim(sub: argparse._SubParsersAction) -> None:
    from bonelift.config import OpenSimConfig, add_arguments

    p = sub.add_parser("opensim", help="OpenSim 4.6 inverse kinematics on a lift's TRC markers (model fitted per "
                                       "person) -> OUT/opensim/")
    p.add_argument("out", help="output folder of `bonelift lift` (holding poses3d.trc)")
    add_arguments(p, OpenSimConfig())


def _cmd_opensim(args: argparse.Namespace) -> None:
    from bonelift.config import OpenSimConfig, from_args
    from bonelift.osim import opensim

    for fit in opensim(args.out, from_args(OpenSimConfig(), args)):
        print(fit)


def _add_validity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validity", help="structural validity of a prediction file (method 4, Table 6)")
    p.add_argument("predictions", help="npz with one (T, J, 3) array per sequence")
    p.add_argument("--layout", default=None, help="joint layout (default: from the file or the joint count)")
    p.add_argument("--unit", default="m", choices=["m", "mm"])
    p.add_argument("--out", default=None, help="also write <out>.json and <out>.md")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from bonelift.bench import SUITES

    p = sub.add_parser("bench", help="train and score a suite of models under one budget, write a report")
    suites = p.add_subparsers(dest="suite", required=True)
    for module in SUITES.values():
        module.add_parser(suites)


def _cmd_bench(args: argparse.Namespace, argv: list[str]) -> None:
    from bonelift.bench import SUITES
    from bonelift.bench.common import check_common_arguments, command_line

    check_common_arguments(args)
    report = SUITES[args.suite].main(args, command_line(argv))
    print(report.read_text())
    print(f"wrote {report} and {report.with_suffix('.json')}")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="strip a checkpoint to deployable weights (float16 by default)")
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--full-precision", action="store_true", help="keep float32 weights")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _cmd_models() -> None:
    """Every network on one line, then its `--option`s indented, one per line: type, default, what it does."""
    from bonelift.models import MODELS

    width = max(map(len, MODELS))
    for name, spec in MODELS.items():
        print(f"{name:<{width}}  {spec.kind:<12}  {spec.summary}")
        for line in spec.options.describe():
            print(f"    --option {line}")


def _add_images(sub: argparse._SubParsersAction) -> None:
    from bonelift.datasets.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS
    from bonelift.datasets.images import DEFAULT_STRIDE

    p = sub.add_parser("images", help="person crops with 2D/3D ground truth for method 3's image network (npz)")
    sources = p.add_subparsers(dest="source", required=True)
    for name, helptext in (("render", "draw the crops from Human3.6M's real poses and cameras (no video needed)"),
                           ("video", "crop the frames of the Human3.6M video archive (S*/Videos/*.mp4)")):
        q = sources.add_parser(name, help=helptext)
        q.add_argument("--out", required=True, help="the image set (.npz) to write")
        q.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
        q.add_argument("--data", default=None, help="Human3.6M 3D poses and cameras.h5 (default: <shared data>/h36m)")
        if name == "video":
            q.add_argument("--archive", required=True, help="video archive root, holding S*/Videos/<take>.<camera>.mp4")
        q.add_argument("--subjects", default=",".join(TRAIN_SUBJECTS + TEST_SUBJECTS), help="comma-separated subjects")
        q.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                       help=f"every N-th frame (default {DEFAULT_STRIDE})")
        q.add_argument("--size", type=int, default=250, help="crop side in pixels (default 250, the paper's)")
        if name == "render":
            q.add_argument("--seed", type=int, default=0, help="backgrounds, clothing and build (default 0)")
        q.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_images(args: argparse.Namespace) -> None:
    from bonelift.datasets.image_sets import write_image_set

    images = write_image_set(args.source, args.out, data=args.data, archive=getattr(args, "archive", None),
                             subjects=tuple(s.strip() for s in args.subjects.split(",")), stride=args.stride,
                             size=args.size, seed=getattr(args, "seed", 0), overwrite=args.overwrite,
                             progress=not args.quiet)
    print(f"wrote {args.out}: {len(images)} crops of {images.size}x{images.size} ({images.source})")


class _Parser(argparse.ArgumentParser):
    """Argument errors (a flag's value of the wrong type, an unknown flag) as one line, like every other bad
    option (`bonelift: error: ...`, exit status 2); subcommands inherit it."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"bonelift: error: {message} (see `{self.prog} --help`)\n")


def _notice(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line `bonelift: warning: ...` (no source line): the CLI's notices are for people."""
    print(f"bonelift: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _notice
        return _main(argv)


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="bonelift", description="anatomy-aware 3D human pose estimation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_validity(sub)
    _add_export(sub)
    _add_bench(sub)
    sub.add_parser("models", help="list every network (single-frame, video, TP-Net) with its options")
    _add_lift(sub)
    _add_live(sub)
    _add_images(sub)
    _add_opensim(sub)
    args = parser.parse_args(argv)
    try:
        if args.command in ("train", "train-video", "train-image"):
            _cmd_train(args)
        elif args.command == "evaluate":
            _cmd_evaluate(args)
        elif args.command in ("lift", "demo"):
            _cmd_lift(args)
        elif args.command == "live":
            _cmd_live(args)
        elif args.command == "validity":
            from bonelift.validity import validity_file

            print(validity_file(args.predictions, args.layout, args.unit, args.out)[1])
        elif args.command == "export":
            from bonelift.checkpoints import export

            out = export(args.checkpoint, args.out, half=not args.full_precision, overwrite=args.overwrite)
            print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        elif args.command == "bench":
            _cmd_bench(args, argv)
        elif args.command == "models":
            _cmd_models()
        elif args.command == "images":
            _cmd_images(args)
        elif args.command == "opensim":
            _cmd_opensim(args)
    except BoneliftError as exc:
        print(f"bonelift: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
