"""Command line: `bonelift train | evaluate | ...`; each command calls the Python API of the same name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bonelift.errors import BoneliftError


def _parse_options(items: list[str]) -> dict:
    """`key=value` pairs; values parsed as int, float, bool or left as strings."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BoneliftError(f"--option expects key=value, got {item!r}")
        value: object = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


def _add_train(sub: argparse._SubParsersAction) -> None:
    from bonelift.datasets import default_data_root
    from bonelift.training import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a lifting network on Human3.6M or HumanEva")
    p.add_argument("--model", default=d.model.name, help="network name (see `bonelift models`)")
    p.add_argument("--data", default=None, help=f"data folder (default: {default_data_root()}/<dataset>)")
    p.add_argument("--dataset", default=d.dataset, choices=["h36m", "humaneva"])
    p.add_argument("--keypoints", default=d.keypoints, help="2D input: gt, sh, or a detection npz")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-decay", type=float, default=d.lr_decay)
    p.add_argument("--lr-decay-samples", type=int, default=d.lr_decay_samples)
    p.add_argument("--stride", type=int, default=d.stride, help="train on every N-th frame")
    p.add_argument("--eval-stride", type=int, default=d.eval_stride)
    p.add_argument("--hidden", type=int, default=d.model.hidden)
    p.add_argument("--blocks", type=int, default=d.model.blocks)
    p.add_argument("--dropout", type=float, default=d.model.dropout)
    p.add_argument("--no-max-norm", action="store_true")
    p.add_argument("--noise-px", type=float, default=d.noise_px, help="Gaussian 2D noise (px at 1000 px width)")
    p.add_argument("--flip", action="store_true", help="horizontal flip augmentation")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model-specific switch")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--out", default=d.out_dir, help="run directory (checkpoints, logs)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", default="", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--train-subjects", default=None, help="comma-separated 3D-labelled subjects (default: S1,S5,S6,S7,S8)")
    p.add_argument("--weak-subjects", default="", help="comma-separated 2D-only subjects (weak supervision, method 4)")
    p.add_argument("--loss", action="append", default=[], metavar="NAME=WEIGHT",
                   help="anatomical loss weight: geometry, angle, symmetry, reprojection (weak samples)")
    p.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs, help="3D-only epochs before --loss terms switch on")


def _cmd_train(args: argparse.Namespace) -> None:
    from bonelift.datasets import default_data_root
    from bonelift.models import ModelConfig
    from bonelift.training import TrainConfig, train

    model = ModelConfig(
        name=args.model, hidden=args.hidden, blocks=args.blocks, dropout=args.dropout,
        max_norm=not args.no_max_norm, options=_parse_options(args.option),
    )
    config = TrainConfig(
        model=model, data_root=str(args.data or default_data_root() / args.dataset), dataset=args.dataset,
        keypoints=args.keypoints, stride=args.stride, eval_stride=args.eval_stride, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay, lr_decay_samples=args.lr_decay_samples,
        noise_px=args.noise_px, flip=args.flip, seed=args.seed, device=args.device, out_dir=args.out,
        init_from=args.init,
        losses=_parse_options(args.loss), warmup_epochs=args.warmup_epochs,
        weak_subjects=tuple(x for x in args.weak_subjects.split(",") if x),
    )
    if args.train_subjects:
        config.train_subjects = tuple(args.train_subjects.split(","))
    if args.dataset == "humaneva":
        from bonelift.datasets.humaneva import HUMANEVA_TEST_SUBJECTS, HUMANEVA_TRAIN_SUBJECTS

        config.train_subjects, config.test_subjects = HUMANEVA_TRAIN_SUBJECTS, HUMANEVA_TEST_SUBJECTS
    train(config, resume=args.resume)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint under Protocols 1 and 2")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="data folder (default: the one used for training)")
    p.add_argument("--keypoints", default=None, help="2D input (default: the one used for training)")
    p.add_argument("--stride", type=int, default=1, help="evaluate every N-th frame (protocol: 1)")
    p.add_argument("--out", default=None, help="report prefix (default: next to the checkpoint)")
    p.add_argument("--device", default="auto")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from bonelift.evaluation import evaluate

    results, paths = evaluate(args.checkpoint, data_root=args.data, keypoints=args.keypoints, stride=args.stride,
                              out_prefix=args.out, device=args.device)
    print(Path(paths[1]).read_text())
    print(f"wrote {paths[0]} and {paths[1]}")


def _add_lift(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (("lift", "video, image folder or 2D keypoint file -> 3D joints, BVH, pictures (offline)"),
                           ("demo", "run `lift` on the bundled demo clip")):
        p = sub.add_parser(name, help=helptext)
        if name == "lift":
            p.add_argument("input", nargs="?", default=None,
                           help="video, image folder, or keypoint file (.json/.npz/.csv); default: the demo clip")
        p.add_argument("-o", "--out", default="bonelift_out", help="output folder (default: bonelift_out)")
        p.add_argument("--model", default=None, help="lifter checkpoint (default: the shipped weights)")
        p.add_argument("--device", default="auto")
        p.add_argument("--max-side", type=int, default=640, help="downscale frames to this longer side before detection (0: off)")
        p.add_argument("--max-gap", type=int, default=None, help="longest detection gap (frames) to interpolate")
        p.add_argument("--max-frames", type=int, default=None, help="only the first N frames")
        p.add_argument("--layout", default=None, help="joint layout of a keypoint file (coco17, mediapipe33, h36m17)")
        p.add_argument("--size", default=None, metavar="WxH", help="image size of a keypoint file")
        p.add_argument("--fps", type=float, default=None, help="frame rate (image folders, keypoint files)")
        p.add_argument("--workers", type=int, default=None, help="detection processes (default: 2 on Linux with 2+ cores)")
        p.add_argument("--no-pictures", action="store_true", help="skip the MP4/GIF rendering")
        p.add_argument("--no-reframe", action="store_true",
                       help="lift the 2D as it is, without scaling the clip like the training data")
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_lift(args: argparse.Namespace) -> None:
    from bonelift.pipeline import lift

    size = None
    if args.size:
        w, sep, h = args.size.lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit():
            raise BoneliftError(f"--size expects WIDTHxHEIGHT, got {args.size!r}")
        size = (int(w), int(h))
    try:  # options are checked by `lift` itself, so the API and the command line refuse the same values
        summary = lift(getattr(args, "input", None), args.out, model=args.model, device=args.device,
                       max_side=args.max_side, max_gap=args.max_gap, max_frames=args.max_frames, layout=args.layout,
                       image_size=size, fps=args.fps, pictures=not args.no_pictures, progress=not args.quiet,
                       workers=args.workers, reframe=not args.no_reframe)
    except KeyboardInterrupt:
        print("bonelift: interrupted (no outputs written)", file=sys.stderr)
        raise SystemExit(130) from None
    print(summary)


def _add_validity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validity", help="structural validity of a prediction file (method 4, Table 6)")
    p.add_argument("predictions", help="npz with one (T, J, 3) array per sequence")
    p.add_argument("--layout", default=None, help="joint layout (default: from the file or the joint count)")
    p.add_argument("--unit", default="m", choices=["m", "mm"])
    p.add_argument("--out", default=None, help="also write <out>.json and <out>.md")


def _add_video(sub: argparse._SubParsersAction, suites: argparse._SubParsersAction) -> None:
    """`train-video` and the `bench video` suite share their options."""
    from bonelift.temporal import VideoTrainConfig

    d = VideoTrainConfig()
    for name, parent, help_ in (("train-video", sub, "train a temporal lifter (VideoPose3D `tcn` or method 5 `bone`)"),
                                ("video", suites, "TCN vs method 5 (+ablation, causal) under one budget -> Markdown")):
        p = parent.add_parser(name, help=help_)
        if name == "train-video":
            p.add_argument("--model", default=d.model.name, choices=["tcn", "bone"])
            p.add_argument("--causal", action="store_true", help="past and current frames only")
            p.add_argument("--out", default=d.out_dir, help="run directory (checkpoints, logs)")
            p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
        else:
            p.add_argument("--rows", default="tcn,bone,tcn-causal,bone-causal",
                           help="comma-separated rows, or 'all' (tcn, af, ml, boneatt, aug, jsl, bone, tcn-causal, bone-causal)")
            p.add_argument("--out", default="runs/bench_video", help="folder for the rows' run directories")
            p.add_argument("--report", default="docs/bench_video.md", help="Markdown report (JSON beside it)")
            p.add_argument("--test-stride", type=int, default=1, help="score frame pairs (t, t+1) of every N-th test frame t (protocol: 1)")
        p.add_argument("--data", default=None, help="Human3.6M folder (default: <shared data>/h36m)")
        p.add_argument("--keypoints", default=d.keypoints, help="2D input: gt or sh")
        p.add_argument("--receptive-field", type=int, default=d.model.receptive_field, help="27, 81 or 243 frames")
        p.add_argument("--channels", type=int, default=d.model.channels)
        p.add_argument("--dropout", type=float, default=d.model.dropout)
        p.add_argument("--epochs", type=int, default=d.epochs)
        p.add_argument("--batch-size", type=int, default=d.batch_size)
        p.add_argument("--lr", type=float, default=d.lr)
        p.add_argument("--lr-decay", type=float, default=d.lr_decay, help="per epoch")
        p.add_argument("--stride", type=int, default=d.stride, help="train on the window of every N-th frame")
        p.add_argument("--eval-stride", type=int, default=d.eval_stride, help="per-epoch monitoring")
        p.add_argument("--no-flip", action="store_true", help="no flip augmentation (train or test)")
        p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method 5 switch (see models/bone_video.py)")
        p.add_argument("--seed", type=int, default=d.seed)
        p.add_argument("--device", default=d.device)


def _video_config(args: argparse.Namespace, name: str, causal: bool, out: str):
    from bonelift.datasets import default_data_root
    from bonelift.models.tcn import VideoModelConfig
    from bonelift.temporal import VideoTrainConfig

    model = VideoModelConfig(name=name, receptive_field=args.receptive_field, channels=args.channels, dropout=args.dropout,
                             causal=causal, confidence=True, options=_parse_options(args.option))
    return VideoTrainConfig(
        model=model, data_root=str(args.data or default_data_root() / "h36m"), keypoints=args.keypoints, stride=args.stride,
        eval_stride=args.eval_stride, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
        flip=not args.no_flip, test_flip=not args.no_flip, seed=args.seed, device=args.device, out_dir=out,
    )


def _cmd_video(args: argparse.Namespace, argv: list[str]) -> None:
    if args.command == "train-video":
        from bonelift.temporal import train_video

        train_video(_video_config(args, args.model, args.causal, args.out), resume=args.resume)
        return
    from bonelift.bench_video import ROWS, command_line, run_benchmark

    rows = list(ROWS) if args.rows == "all" else [r.strip() for r in args.rows.split(",") if r.strip()]
    base = _video_config(args, "tcn", False, args.out)
    run_benchmark(base, rows, Path(args.report), command_line(argv), eval_stride=args.test_stride)
    print(Path(args.report).read_text())


def _add_bench(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    from bonelift import bench, bench_anatomy

    p = sub.add_parser("bench", help="train and score a suite of models under one budget, write a report")
    suites = p.add_subparsers(dest="suite", required=True)
    bench.add_parser(suites)
    bench_anatomy.add_arguments(suites.add_parser("anatomy", help="method 4: Table 3, Table 6, weak supervision, TP-Net"))
    return suites


def _cmd_bench(args: argparse.Namespace, argv: list[str] | None) -> None:
    if args.suite == "single-frame":
        from bonelift.bench import main_single_frame

        main_single_frame(args, argv)
    elif args.suite == "anatomy":
        from bonelift import bench_anatomy

        bench_anatomy.main(args, _parse_options)
    elif args.suite == "video":
        _cmd_video(args, sys.argv[1:] if argv is None else argv)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="strip a checkpoint to deployable weights (float16 by default)")
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--full-precision", action="store_true", help="keep float32 weights")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bonelift", description="anatomy-aware 3D human pose estimation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_validity(sub)
    _add_export(sub)
    _add_video(sub, _add_bench(sub))
    sub.add_parser("models", help="list the network names")
    _add_lift(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _cmd_train(args)
        elif args.command == "evaluate":
            _cmd_evaluate(args)
        elif args.command in ("lift", "demo"):
            _cmd_lift(args)
        elif args.command == "validity":
            from bonelift.validity import validity_file

            print(validity_file(args.predictions, args.layout, args.unit, args.out)[1])
        elif args.command == "export":
            from bonelift.training import export_checkpoint

            out = export_checkpoint(args.checkpoint, args.out, half=not args.full_precision)
            print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        elif args.command == "train-video":
            _cmd_video(args, sys.argv[1:] if argv is None else argv)
        elif args.command == "bench":
            _cmd_bench(args, argv)
        elif args.command == "models":
            from bonelift.models import MODELS

            print("\n".join(sorted(MODELS)))
    except BoneliftError as exc:
        print(f"bonelift: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
