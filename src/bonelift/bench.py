"""`bonelift bench single-frame`: train and score the structure-aware lifters under one budget.

Every model of methods 1-3 is trained by `bonelift.training.train` into its own run directory
with identical options (epochs, stride, batch, learning rate, seed), evaluated on every test frame
(stride 1) with its final-epoch weights, and reported as one Markdown section beside the
published numbers. `--dataset humaneva` runs method 2's Table 5 (basic vs ASN, GT 2D input).
A bench interrupted part-way is continued with `--resume`: finished, scored runs are reused as they are.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bonelift import metrics
from bonelift.datasets import ACTION_ABBREVIATIONS, CANONICAL_ACTIONS, PoseSequence
from bonelift.errors import atomic_path
from bonelift.evaluation import MM, predict_sequences, score
from bonelift.models import ModelConfig
from bonelift.skeletons import LIMBS


@dataclass(frozen=True)
class Entry:
    """One benchmarked network: run-directory key, registry name, options, table label."""

    key: str
    model: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)


H36M_SUITE = (
    Entry("basic", "baseline", "basic (Martinez et al.)"),
    Entry("hsn-single", "hsn-single", "M1 HSN single-channel"),
    Entry("hsn-dual-nores", "hsn-dual-nores", "M1 HSN dual, no residual"),
    Entry("hsn-dual", "hsn-dual", "M1 HSN dual"),
    Entry("basic-ref", "basic-ref", "M2 basic+ref"),
    Entry("basic-ref-amstar", "basic-ref-amstar", "M2 basic+ref+AM*"),
    Entry("basic-ref-am", "basic-ref-am", "M2 basic+ref+AM"),
    Entry("asn", "asn", "M2 ASN (AM+REM)"),
    Entry("basic-multiroot", "baseline", "M3 basic + multi-root", {"multi_root": True}),
)
HUMANEVA_SUITE = (H36M_SUITE[0], H36M_SUITE[7])

# Published Protocol-1 averages on Human3.6M with Stacked Hourglass 2D (mm), per bench key.
PUBLISHED_P1: dict[str, str] = {
    "basic": "67.50 (M1 Tab. 1) / 67.48 (M2 Tab. 2)",
    "hsn-single": "66.78 (M1 Tab. 1)",
    "hsn-dual-nores": "68.66 (M1 Tab. 1)",
    "hsn-dual": "66.55 (M1 Tab. 1)",
    "basic-ref": "68.66 (M2 Tab. 2)",
    "basic-ref-amstar": "66.78 (M2 Tab. 2)",
    "basic-ref-am": "66.15 (M2 Tab. 2)",
    "asn": "65.51 (M2 Tab. 2)",
    "basic-multiroot": "– (M3 is an image CNN)",
}

# Published per-action P1 rows, in the papers' column order, average last.
_PAPER_ACTION_ORDER = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting",
    "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether",
)
_PUBLISHED_ACTIONS_RAW = {
    "Martinez et al. as cited by M1 Tab. 1": (
        53.30, 60.80, 62.90, 62.70, 86.40, 57.80, 58.70, 81.90,
        99.80, 69.10, 82.40, 63.90, 50.90, 67.10, 54.80, 67.50,
    ),
    "M1 Tab. 1 w dual / wo res": (
        54.00, 61.28, 64.35, 63.62, 87.32, 58.74, 60.62, 83.72,
        100.92, 69.49, 84.97, 64.83, 51.75, 67.92, 56.37, 68.66,
    ),
    "M1 Tab. 1 wo dual": (
        52.57, 60.39, 61.88, 62.25, 86.37, 56.99, 57.74, 80.98,
        98.42, 68.60, 81.42, 63.40, 49.77, 66.79, 54.12, 66.78,
    ),
    "M1 Tab. 1 w dual": (
        52.83, 59.90, 61.58, 61.95, 85.47, 57.03, 58.00, 81.29,
        98.29, 68.27, 81.32, 63.29, 49.42, 65.83, 53.79, 66.55,
    ),
    "Martinez et al. as cited by M2 Tab. 1": (
        52.99, 60.55, 62.08, 62.72, 86.10, 57.96, 58.89, 81.70,
        99.59, 69.17, 83.49, 64.04, 50.72, 67.49, 54.63, 67.48,
    ),
    "M2 Tab. 1 ours (ASN)": (
        51.77, 59.38, 59.55, 60.33, 84.15, 56.22, 57.36, 79.73,
        97.68, 67.07, 80.44, 62.53, 48.76, 65.25, 52.48, 65.51,
    ),
}
PUBLISHED_ACTIONS: dict[str, dict[str, float]] = {
    row: {**dict(zip(_PAPER_ACTION_ORDER, vals[:-1])), "average": vals[-1]} for row, vals in _PUBLISHED_ACTIONS_RAW.items()
}

# Published bone-length RMSE (mm), limbs in `LIMBS` order, then the average.
_LIMB_NAMES = tuple(name for name, _, _ in LIMBS)
_PUBLISHED_BONES_RAW = {
    "M1 Tab. 2 / M2 Tab. 3 basic": (16.90, 28.29, 16.45, 29.99, 17.21, 27.15, 16.62, 26.98, 22.45),
    "M1 Tab. 2 single": (15.33, 21.93, 14.45, 23.75, 16.20, 24.45, 15.86, 23.64, 19.45),
    "M1 Tab. 2 dual": (14.69, 20.37, 14.22, 21.28, 15.80, 24.43, 15.34, 23.65, 18.72),
    "M2 Tab. 3 ours (ASN)": (14.19, 20.64, 13.66, 21.27, 16.06, 23.40, 16.38, 22.70, 18.53),
}
PUBLISHED_BONES: dict[str, dict[str, float]] = {
    row: {**dict(zip(_LIMB_NAMES, vals[:-1])), "average": vals[-1]} for row, vals in _PUBLISHED_BONES_RAW.items()
}

# Method 2 Table 5 (HumanEva-I, GT 2D, mm, after rigid alignment as the compared works report).
HUMANEVA_GROUPS = tuple(f"{s} {a}" for s in ("S1", "S2", "S3") for a in ("Walking", "Jog"))
PUBLISHED_HUMANEVA = {
    "M2 Tab. 5 basic_gt (Martinez et al.)": {"S1 Walking": 17.58, "S1 Jog": 26.18, "S3 Walking": 30.40, "S3 Jog": 20.93},
    "M2 Tab. 5 ours_gt (ASN)": {"S1 Walking": 16.39, "S1 Jog": 22.78, "S3 Walking": 26.84, "S3 Jog": 17.96},
}


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    """`bonelift bench single-frame` and its options (all budget options explicit)."""
    from bonelift.training import TrainConfig

    d = TrainConfig()
    p = bench_sub.add_parser("single-frame", help="methods 1-3 single-frame networks under one training budget")
    p.add_argument("--dataset", default="h36m", choices=["h36m", "humaneva"],
                   help="h36m: all models on SH 2D; humaneva: basic vs ASN on GT 2D (method 2, Table 5)")
    p.add_argument("--data", default=None, help="data folder (default: <shared data>/<dataset>)")
    p.add_argument("--keypoints", default=None, help="2D input (default: sh for h36m, gt for humaneva)")
    p.add_argument("--models", default=None, help="comma-separated subset of bench keys (default: the whole suite)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--stride", type=int, default=d.stride, help="train on every N-th frame")
    p.add_argument("--eval-stride", type=int, default=d.eval_stride, help="per-epoch monitoring only")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-decay", type=float, default=d.lr_decay)
    p.add_argument("--lr-decay-samples", type=int, default=d.lr_decay_samples)
    p.add_argument("--hidden", type=int, default=d.model.hidden)
    p.add_argument("--blocks", type=int, default=d.model.blocks)
    p.add_argument("--dropout", type=float, default=d.model.dropout)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--runs", default="runs/bench_single_frame", help="parent of the per-model run directories")
    p.add_argument("--report", default=None, help="Markdown output (default: docs/bench_single_frame[_humaneva].md)")
    p.add_argument("--resume", action="store_true", help="continue unfinished runs; finished, scored ones are reused")


def _suite(args: argparse.Namespace) -> tuple[Entry, ...]:
    from bonelift.errors import BoneliftError

    suite = HUMANEVA_SUITE if args.dataset == "humaneva" else H36M_SUITE
    if not args.models:
        return suite
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = sorted(set(keys) - {e.key for e in suite})
    if unknown:
        raise BoneliftError(f"unknown bench models {unknown} (known: {', '.join(e.key for e in suite)})")
    return tuple(e for e in suite if e.key in keys)


def _train_config(args: argparse.Namespace, entry: Entry):
    from bonelift.datasets import default_data_root
    from bonelift.datasets.humaneva import HUMANEVA_TEST_SUBJECTS, HUMANEVA_TRAIN_SUBJECTS
    from bonelift.training import TrainConfig

    model = ModelConfig(name=entry.model, hidden=args.hidden, blocks=args.blocks, dropout=args.dropout, options=dict(entry.options))
    config = TrainConfig(
        model=model, data_root=str(args.data or default_data_root() / args.dataset), dataset=args.dataset,
        keypoints=args.keypoints or ("gt" if args.dataset == "humaneva" else "sh"), stride=args.stride,
        eval_stride=args.eval_stride, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
        lr_decay_samples=args.lr_decay_samples, seed=args.seed, device=args.device, out_dir=str(Path(args.runs) / entry.key),
    )
    if args.dataset == "humaneva":
        config.train_subjects, config.test_subjects = HUMANEVA_TRAIN_SUBJECTS, HUMANEVA_TEST_SUBJECTS
    return config


def subject_action_errors(preds: list[np.ndarray], seqs: list[PoseSequence]) -> dict[str, dict[str, float]]:
    """P1 and P2 (mm) per "S<n> <action>" group, averaged over that group's frames (HumanEva tables)."""
    pred, gt = np.concatenate(preds), np.concatenate([s.root_relative for s in seqs])
    groups = np.concatenate([np.full(len(p), f"{s.subject.split('/')[-1]} {s.action}") for p, s in zip(preds, seqs)])
    return {
        "p1": metrics.group_mean(metrics.mpjpe(pred, gt) * MM, groups),
        "p2": metrics.group_mean(metrics.p_mpjpe(pred, gt) * MM, groups),
    }


def run_bench(args: argparse.Namespace, argv: list[str]) -> Path:
    """Train (or resume) and score every suite model, then write the report atomically."""
    from bonelift.training import load_split, train

    results: list[dict[str, Any]] = []
    splits = None
    for entry in _suite(args):
        config = _train_config(args, entry)
        cached = Path(config.out_dir) / "bench_eval.json"
        if args.resume and cached.is_file():  # finished and scored by an earlier (or parallel) bench run
            res = json.loads(cached.read_text())
            if res.get("epochs") == config.epochs:
                print(f"{entry.label}: P1 {res['p1']['average']:.2f} mm (scored earlier)", flush=True)
                results.append(res)
                continue
        if splits is None:  # same data for every model: load it once
            splits = (load_split(config, config.train_subjects), load_split(config, config.test_subjects))
        resume = args.resume and (Path(config.out_dir) / "last.pt").is_file()
        trainer = train(config, resume=resume, splits=splits)
        t0 = time.time()
        preds = predict_sequences(trainer.model, trainer.test_seqs, stride=1, device=trainer.device, progress=False)
        res = score(preds, trainer.test_seqs)
        if args.dataset == "humaneva":
            res["groups"] = subject_action_errors(preds, trainer.test_seqs)
        res.update(
            key=entry.key, label=entry.label, model=entry.model, options=entry.options, keypoints=config.keypoints,
            epochs=trainer.epoch, train_seconds=float(sum(r["train_seconds"] for r in trainer.history)),
            eval_seconds=time.time() - t0, run_dir=config.out_dir,
        )
        with atomic_path(Path(config.out_dir) / "bench_eval.json") as tmp:
            tmp.write_text(json.dumps(res, indent=2))
        print(f"{entry.label}: P1 {res['p1']['average']:.2f} mm, P2 {res['p2']['average']:.2f} mm", flush=True)
        results.append(res)
    report = Path(args.report or f"docs/bench_single_frame{'_humaneva' if args.dataset == 'humaneva' else ''}.md")
    text = render_report(results, args, argv)
    report.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(report) as tmp:
        tmp.write_text(text)
    return report


def _machine(device: str) -> str:
    from bonelift.training import resolve_device

    dev = resolve_device(device)
    accel = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU only, {torch.get_num_threads()} torch threads"
    host = f"{platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'}, {accel})"
    return f"{host}, Python {platform.python_version()}, torch {torch.__version__}"


def _fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _row(label: str, values: dict[str, float], keys: list[str] | tuple[str, ...], digits: int = 1) -> list[str]:
    """A table row: label, one cell per key, then the 'average' entry with two decimals."""
    return [label, *(_fmt(values.get(k), digits) for k in keys), _fmt(values.get("average"), 2)]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows), ""]


def render_report(results: list[dict[str, Any]], args: argparse.Namespace, argv: list[str]) -> str:
    """The Markdown section: setup, then the papers' tables with our rows beside the published ones."""
    humaneva = args.dataset == "humaneva"
    kp = results[0]["keypoints"].upper() if results else "?"
    title = "HumanEva-I, GT 2D (method 2, Table 5)" if humaneva else f"Human3.6M, {kp} 2D (methods 1-3)"
    lines = [f"## Single-frame structure-aware networks: {title}", ""]
    lines += [
        f"Command: `{shlex.join(['bonelift', *argv])}`  ",
        f"Machine: {_machine(args.device)}  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Budget (identical for every model): {args.epochs} epochs, training stride {args.stride}, batch {args.batch_size}, "
        f"lr {args.lr:g} decayed x{args.lr_decay:g} per {args.lr_decay_samples} samples, hidden {args.hidden}, "
        f"{args.blocks} residual modules, dropout {args.dropout:g}, seed {args.seed}. Final-epoch weights, scored on every "
        f"test frame (stride 1) of the sequences present"
        + (" (Validate chunks of S1-S3, Walking and Jog)." if humaneva else " (S9, S11; see data README for the known gaps)."),
        "",
    ]
    if humaneva:
        return "\n".join(lines + _humaneva_tables(results))
    lines += ["### Average errors (mm)", ""]
    rows = [
        [r["label"], f"`{r['model']}`" + (" +multi_root" if r["options"].get("multi_root") else ""), r["keypoints"].upper(),
         _fmt(r["p1"]["average"], 2), _fmt(r["p2"]["average"], 2), _fmt(r["hard_joints"]["average"]),
         _fmt(r["bone_rmse"]["average"], 2), PUBLISHED_P1.get(r["key"], "–"), f"{r['train_seconds'] / 60:.0f} min"]
        for r in results
    ]
    lines += _table(["Model", "name", "2D", "P1", "P2", "hard joints", "bone RMSE", "published P1", "train time"], rows)
    lines += ["Published bone-length RMSE averages: basic 22.45, M1 single 19.45, M1 dual 18.72 (M1 Tab. 2), "
              "M2 ASN 18.53 (M2 Tab. 3).", ""]

    actions = [a for a in CANONICAL_ACTIONS if any(a in r["p1"] for r in results)]
    lines += ["### Protocol 1 per action (mm)", ""]
    rows = [_row(f"{r['label']} ({r['keypoints'].upper()})", r["p1"], actions) for r in results]
    rows += [_row(f"*{name}* (SH)", vals, actions) for name, vals in PUBLISHED_ACTIONS.items()]
    lines += _table(["Model", *(ACTION_ABBREVIATIONS[a] for a in actions), "Avg"], rows)

    hard = [k for k in results[0]["hard_joints"] if k != "average"] if results else []
    lines += ["### Hard-joint errors, Protocol 1 (mm; the papers show these only as bar charts, Fig. 5)", ""]
    rows = [_row(f"{r['label']} ({r['keypoints'].upper()})", r["hard_joints"], hard) for r in results]
    lines += _table(["Model", *hard, "Avg"], rows)

    lines += ["### Bone-length RMSE (mm)", ""]
    rows = [_row(f"{r['label']} ({r['keypoints'].upper()})", r["bone_rmse"], _LIMB_NAMES, 2) for r in results]
    rows += [_row(f"*{name}* (SH)", vals, _LIMB_NAMES, 2) for name, vals in PUBLISHED_BONES.items()]
    lines += _table(["Model", *_LIMB_NAMES, "Avg"], rows)
    return "\n".join(lines)


def _humaneva_tables(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for proto, label in (("p2", "P2 (after rigid alignment, the protocol of Table 5)"), ("p1", "P1 (root-aligned)")):
        lines += [f"### {label}, mm", ""]
        rows = [[f"{r['label']} ({r['keypoints'].upper()})", *(_fmt(r["groups"][proto].get(g), 2) for g in HUMANEVA_GROUPS)]
                for r in results]
        if proto == "p2":
            rows += [[f"*{name}* (GT)", *(_fmt(vals.get(g), 2) for g in HUMANEVA_GROUPS)] for name, vals in PUBLISHED_HUMANEVA.items()]
        lines += _table(["Model", *HUMANEVA_GROUPS], rows)
    lines += ["### Hard joints and bone lengths (all test frames, mm)", ""]
    rows = [[f"{r['label']} ({r['keypoints'].upper()})", _fmt(r["p1"]["average"], 2), _fmt(r["p2"]["average"], 2),
             _fmt(r["hard_joints"]["average"]), _fmt(r["bone_rmse"]["average"], 2), f"{r['train_seconds'] / 60:.0f} min"] for r in results]
    lines += _table(["Model", "P1 (action avg)", "P2 (action avg)", "hard joints", "bone RMSE", "train time"], rows)
    return lines


def main_single_frame(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    report = run_bench(args, list(sys.argv[1:] if argv is None else argv))
    print(f"wrote {report}")
