"""`bonelift bench training-speed`: the same short training of the single-frame `baseline` and the video `tcn`
in fp32 and in bf16 (`--precision`, `torch.autocast`), same seed and data order, on Human3.6M GT 2D.

Why: issue 23 asks whether bf16 matrix units make training fast enough to afford longer budgets without
changing accuracy. Each row reports training throughput (samples per second of the training epochs alone,
monitoring excluded), the final P1 and the training seconds until the monitored P1 first reached the fp32
row's final monitored P1 (time to accuracy; none when it never did). The machine line of the header says
which CPU or GPU the speed belongs to.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from bonelift.bench.common import (
    add_common_arguments,
    budget_of,
    check_report,
    group_rows,
    header_lines,
    mean_sd,
    row_for,
    table,
    write_suite,
)
from bonelift.config import RunConfig, TrainConfig, VideoTrainConfig, add_arguments, configure, from_args
from bonelift.datasets import run_split
from bonelift.errors import OptionError
from bonelift.evaluation import evaluate_model
from bonelift.models import ModelConfig
from bonelift.training import train, train_video

SUITE = "training_speed"
MODELS = ("baseline", "tcn")
VARIANTS = ("fp32", "bf16")


# The run options both rows take from the generated flags: every field of a training run except those set per row
# (precision, run folder), the fixed input (Human3.6M GT 2D) and those whose default differs between the two kinds.
PER_KIND = ("precision", "out_dir", "dataset", "keypoints", "lr_decay", "flip")
SHARED = tuple(f.name for f in fields(RunConfig) if f.name not in PER_KIND)
DEFAULTS = TrainConfig(epochs=2, stride=200, batch_size=256, eval_stride=50, device="cpu")


def add_parser(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser("training-speed", help="fp32 vs bf16 training throughput and P1 (baseline, tcn)")
    add_arguments(p, DEFAULTS, only=SHARED)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated ({', '.join(MODELS)})")
    p.add_argument("--video-stride", type=int, default=400, help="tcn: one training window per N-th frame "
                                                                  "(--stride is the baseline's)")
    add_common_arguments(p, "runs/bench_training_speed", "docs/results/training_speed.md", test_stride=10)


def configs(args: argparse.Namespace) -> dict[str, RunConfig]:
    """The fp32 configuration of each model (a bf16 row differs only in `precision`)."""
    video = from_args(VideoTrainConfig(out_dir=""), args)
    return {
        "baseline": from_args(replace(DEFAULTS, model=ModelConfig(name="baseline"), out_dir=""), args),
        "tcn": configure(VideoTrainConfig, video, {"stride": args.video_stride}),
    }


def _train_row(model: str, cfg: RunConfig, splits: Any, test_stride: int, progress: bool) -> dict[str, Any]:
    """Train one row, time its training epochs and score its final weights."""
    if progress:
        print(f"[bench training-speed] {model} {cfg.precision} seed {cfg.seed}", file=sys.stderr)
    trainer = (train if model == "baseline" else train_video)(cfg, progress=progress, splits=splits, overwrite=True)
    flip = getattr(cfg, "test_flip", False)
    res = evaluate_model(trainer.model, splits[1], test_stride, trainer.device, progress=False, test_flip=flip)
    train_s = sum(h["train_seconds"] for h in trainer.history)
    steps_per_epoch = max(1, trainer.num_samples() // cfg.batch_size)
    elapsed, curve = 0.0, []
    for h in trainer.history:
        elapsed += h["train_seconds"]
        curve.append([round(elapsed, 3), h["p1_mm"]])
    return {
        "model": model,
        "variant": cfg.precision,
        "input": "gt",
        "precision": cfg.precision,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "samples_per_s": steps_per_epoch * cfg.batch_size * cfg.epochs / train_s,
        "train_seconds": train_s,
        "p1_mm": res["p1"]["average"],
        "p2_mm": res["p2"]["average"],
        "monitor_curve": curve,  # [cumulative training seconds, monitored P1 mm] after each epoch
    }


def _time_to_accuracy(rows: list[dict[str, Any]]) -> None:
    """Add `seconds_to_fp32_p1`: training seconds until the monitored P1 first reached the final monitored P1
    of the fp32 row of the same model and seed (None when it never did)."""
    final = {(r["model"], r["seed"]): r["monitor_curve"][-1][1] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        target = final.get((r["model"], r["seed"]))
        hits = [s for s, p1 in r["monitor_curve"] if target is not None and p1 <= target + 1e-9]
        r["seconds_to_fp32_p1"] = hits[0] if hits else None


def main(args: argparse.Namespace, command: str) -> Path:
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise OptionError(f"--models must name some of {', '.join(MODELS)}, got {args.models!r}")
    bases = {m: c for m, c in configs(args).items() if m in models}
    budget = {**{m: budget_of(c) for m, c in bases.items()}, "seeds": args.seeds, "test_stride": args.test_stride}
    check_report(args.report, SUITE, budget)  # before any training
    splits = None
    rows: list[dict[str, Any]] = []
    for model, base in bases.items():
        for seed in range(base.seed, base.seed + args.seeds):
            for variant in VARIANTS:
                run_dir = Path(args.bench_out) / model / variant / f"seed{seed}"
                cfg = replace(base, seed=seed, precision=variant, out_dir=str(run_dir))

                def compute(model: str = model, cfg: RunConfig = cfg) -> dict[str, Any]:
                    nonlocal splits
                    splits = splits or (run_split(cfg, cfg.train_subjects), run_split(cfg))
                    return _train_row(model, cfg, splits, args.test_stride, progress=True)

                rows.append(row_for(run_dir, cfg, args.test_stride, compute))
    _time_to_accuracy(rows)
    write_suite(args.report, SUITE, command, args.device, budget, rows, render)
    return Path(args.report)


def render(doc: dict[str, Any]) -> str:
    b = doc["budget"]
    parts = [f"{m}: {c['epochs']} epoch(s), every {c['stride']}-th training frame, batch {c['batch_size']}, "
             f"lr {c['lr']}" for m, c in b.items() if isinstance(c, dict)]
    budget_text = ("; ".join(parts) + f"; Human3.6M GT 2D, {b['seeds']} seed(s); final P1 on frame pairs of every "
                   f"{b['test_stride']}-th test frame. Throughput: samples per second of the training epochs "
                   "(monitoring excluded). Time to accuracy: training seconds until the monitored P1 reached the "
                   "fp32 row's final monitored P1.")
    lines = ["## Training speed: fp32 vs bf16 (torch.autocast)", "", *header_lines(doc, budget_text)]
    body = []
    groups = group_rows(doc["rows"], ("model", "variant"))
    for (model, variant), rs in groups.items():
        fp32 = groups.get((model, "fp32"), [])
        speed = [r["samples_per_s"] for r in rs]
        ref = [r["samples_per_s"] for r in fp32]
        ratio = (sum(speed) / len(speed)) / (sum(ref) / len(ref)) if ref else math.nan
        tta = [r["seconds_to_fp32_p1"] for r in rs]
        body.append([model, variant, str(rs[0]["batch_size"]), mean_sd(speed), f"{ratio:.2f}x",
                     mean_sd([r["p1_mm"] for r in rs]),
                     mean_sd([t for t in tta if t is not None]) if any(t is not None for t in tta) else "never"])
    lines += table(["Model", "Precision", "Batch", "Samples/s", "vs fp32", "P1 (mm)", "Time to fp32 P1 (s)"], body)
    return "\n".join(lines)


__all__ = ["add_parser", "main"]
