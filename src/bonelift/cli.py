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
    )
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


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from bonelift import bench

    p = sub.add_parser("bench", help="train and score a suite of models under one budget, write a report")
    suites = p.add_subparsers(dest="suite", required=True)
    bench.add_parser(suites)


def _cmd_bench(args: argparse.Namespace, argv: list[str] | None) -> None:
    if args.suite == "single-frame":
        from bonelift.bench import main_single_frame

        main_single_frame(args, argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bonelift", description="anatomy-aware 3D human pose estimation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_bench(sub)
    sub.add_parser("models", help="list the network names")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _cmd_train(args)
        elif args.command == "evaluate":
            _cmd_evaluate(args)
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
