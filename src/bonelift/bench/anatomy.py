"""`bonelift bench anatomy`: method 4's experiments on Human3.6M under one training budget.

1. Table 3 ablation (Protocol 1 on S9/S11): baseline; + geometry loss; + illegal-angle loss;
   + symmetry loss; + TP-Net online; + TP-Net bidirectional (and skeleton fitting, optional step 4).
2. Table 6 structural validity (symmetry L1, bone-length std per limb, illegal-angle %).
3. Weak supervision: S1 with 3D vs S1 with 3D + S5-S8 2D-only with the anatomical losses.
4. TP-Net latency per frame through the streaming API on CPU (`streaming.latency_ms`, the median).

Every single-frame model trains with the same epochs, stride and batch; anatomical losses switch on
after the same warm start. The last checkpoint of each run is scored (no model selection on the test
subjects). Rows scored under the same budget are reused (`bench.common`), so an interrupted benchmark
continues where it stopped.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bonelift import checkpoints
from bonelift.bench.common import add_common_arguments, header_lines, metrics_row, write_suite
from bonelift.config import TPNetTrainConfig, TrainConfig, add_arguments, from_args, opt
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, load_split
from bonelift.evaluation import predict_split, refine_sequence, score
from bonelift.fitting import fit_skeleton, subject_bone_lengths
from bonelift.models import ModelConfig, TPNetConfig
from bonelift.reports import input_label
from bonelift.runtime import resolve_device
from bonelift.streaming import tpnet_latency_ms
from bonelift.training import train, train_tpnet
from bonelift.validity import markdown_validity, validity

# Loss weights of the benchmark. The paper's lambdas (0.03, 0.03, 0.05) weight losses in its own
# units (heatmap pixels); these are set so that each term is a tenth or so of the normalised 3D loss
# for ~20 mm errors (geometry and angle are unit-free, symmetry is in m^2, reprojection in m^2).
DEFAULT_WEIGHTS = {"geometry": 0.1, "angle": 0.1, "symmetry": 10.0, "reprojection": 100.0}


@dataclass
class AnatomyBench:
    """The benchmark's budget (one flag per field)."""

    data_root: str = opt("", "Human3.6M folder (default: <shared data>/h36m)", flag="--data")
    epochs: int = opt(10, "epochs per single-frame model")
    stride: int = opt(4, "train on every N-th frame")
    batch_size: int = opt(256, "batch size")
    hidden: int = opt(1024, "hidden width of the lifters")
    warmup_fraction: float = opt(
        0.6, "share of epochs on 3D only before the losses switch on (paper: 240k of 400k iterations)"
    )
    weights: dict[str, float] = opt(
        help=f"override a loss weight NAME=WEIGHT of {DEFAULT_WEIGHTS}",
        factory=lambda: dict(DEFAULT_WEIGHTS),
        flag="--loss",
    )
    weak_3d_subjects: tuple[str, ...] = opt(("S1",), "3D-labelled subjects of the weak-supervision rows")
    weak_2d_subjects: tuple[str, ...] = opt(("S5", "S6", "S7", "S8"), "2D-only subjects of the weak-supervision rows")
    tpnet_epochs: int = opt(3, "TP-Net epochs")
    tpnet_sample_stride: int = opt(20, "TP-Net trains on every N-th frame of the training predictions")
    tpnet_hidden: int = opt(4096, "TP-Net hidden width")
    seed: int = opt(0, "random seed")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")

    @property
    def warmup_epochs(self) -> int:
        return int(round(self.warmup_fraction * self.epochs))

    def lifter(
        self, out: Path, weights: dict[str, float], train_subjects: tuple[str, ...], weak_subjects: tuple[str, ...] = ()
    ) -> TrainConfig:
        return TrainConfig(
            model=ModelConfig(hidden=self.hidden),
            data_root=self.data_root,
            keypoints="gt",
            train_subjects=train_subjects,
            stride=self.stride,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            out_dir=str(out),
            losses=dict(weights),
            warmup_epochs=self.warmup_epochs if weights else 0,
            weak_subjects=weak_subjects,
        )


def add_parser(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser("anatomy", help="method 4: Table 3, Table 6, weak supervision, TP-Net")
    add_arguments(p, AnatomyBench())
    add_common_arguments(p, "runs/bench_anatomy", "docs/results/anatomy_h36m.md")


def _lifter(config: TrainConfig, resume: bool):
    """The trained lifter of `config.out_dir`: reused when complete under the same budget, else (re)trained."""
    last = Path(config.out_dir) / "last.pt"
    if last.is_file():
        model, saved, ckpt = checkpoints.rebuild(last, resolve_device(config.device))
        if ckpt["epoch"] >= config.epochs and saved.losses == config.losses and saved.stride == config.stride:
            return model
    return train(config, resume=resume and last.is_file()).model.eval()


def run(
    bench: AnatomyBench, out: str | Path, report: str | Path, command: str, test_stride: int = 1, resume: bool = False
) -> dict[str, Any]:
    """Train and score every row, write `<report>.json` and `<report>` (Markdown); returns the suite document."""
    out = Path(out)
    device = resolve_device(bench.device)
    test_seqs = load_split("h36m", bench.data_root, "gt", TEST_SUBJECTS)
    w = bench.weights
    variants = [
        ("Baseline", "baseline", {}),
        ("+ Geometry loss", "geometry", {"geometry": w["geometry"]}),
        ("+ Illegal angle loss", "angle", {"geometry": w["geometry"], "angle": w["angle"]}),
        ("+ Symmetry loss", "symmetry", {k: w[k] for k in ("geometry", "angle", "symmetry")}),
    ]
    rows: list[dict[str, Any]] = []
    preds: dict[str, list[np.ndarray]] = {}
    frames: list[np.ndarray] = []

    def add_row(label: str, variant: str, model: str, res: dict[str, Any], **extra: Any) -> None:
        rows.append(
            {
                "model": model,
                "variant": variant,
                "label": label,
                "input": "gt",
                "seed": bench.seed,
                **metrics_row(res),
                **extra,
            }
        )

    sap = None
    for label, slug, weights in variants:
        config = bench.lifter(out / slug, weights, TRAIN_SUBJECTS)
        sap = _lifter(config, resume)
        preds[label], frames = predict_split(sap, test_seqs, test_stride, device, progress=False)
        add_row(label, slug, "baseline", score(preds[label], test_seqs, frames), losses=weights)

    train_seqs = load_split("h36m", bench.data_root, "gt", TRAIN_SUBJECTS)
    train_preds, _ = predict_split(sap, train_seqs, 1, device, progress=False)
    train_gts = [q.root_relative for q in train_seqs]
    del train_seqs
    for label, slug, tp in (
        ("+ TP-Net online", "tpnet_online", TPNetConfig.online(hidden=bench.tpnet_hidden)),
        ("+ TP-Net bidirectional", "tpnet_bidirectional", TPNetConfig.bidirectional(hidden=bench.tpnet_hidden)),
    ):
        config = TPNetTrainConfig(
            model=tp,
            stride=bench.tpnet_sample_stride,
            epochs=bench.tpnet_epochs,
            seed=bench.seed,
            device=bench.device,
            out_dir=str(out / slug),
        )
        last = out / slug / "last.pt"
        if last.is_file() and checkpoints.load(last)["epoch"] >= config.epochs:
            net = checkpoints.rebuild(last, device)[0]
        else:
            net = train_tpnet(config, train_preds, train_gts, resume=resume and last.is_file())
        preds[label] = [refine_sequence(net, p) for p in preds["+ Symmetry loss"]]
        extra: dict[str, Any] = {}
        if slug == "tpnet_online":
            extra["latency_ms"] = tpnet_latency_ms(checkpoints.rebuild(last, "cpu")[0])
        add_row(label, slug, "tpnet", score(preds[label], test_seqs, frames), **extra)
    del train_preds, train_gts

    # Step 4 (optional): fit the subject's bone lengths, here measured on its ground truth.
    fitted = [
        fit_skeleton(p, subject_bone_lengths(q.root_relative, q.layout_3d), q.layout_3d)
        for p, q in zip(preds["+ TP-Net bidirectional"], test_seqs)
    ]
    add_row(
        "+ skeleton fitting (subject's true bone lengths)",
        "skeleton_fitting",
        "tpnet",
        score(fitted, test_seqs, frames),
    )

    layout = test_seqs[0].layout_3d
    for label, source in (
        ("Baseline", "Baseline"),
        ("With losses", "+ Symmetry loss"),
        ("TP-Net online", "+ TP-Net online"),
        ("TP-Net bidirectional", "+ TP-Net bidirectional"),
    ):
        row = next(r for r in rows if r["label"] == source)
        row["validity"] = {"name": label, **validity(preds[source], layout)}
    del preds

    for label, slug, weights, weak_subjects in (
        ("S1 3D only", "weak_s1_only", {}, ()),
        (
            f"S1 3D + {'/'.join(bench.weak_2d_subjects)} 2D-only, anatomical losses",
            "weak_s1_plus_2d",
            dict(w),
            bench.weak_2d_subjects,
        ),
    ):
        config = bench.lifter(out / slug, weights, bench.weak_3d_subjects, weak_subjects)
        weak_preds, weak_frames = predict_split(_lifter(config, resume), test_seqs, test_stride, device, progress=False)
        add_row(
            label,
            slug,
            "baseline",
            score(weak_preds, test_seqs, weak_frames),
            losses=weights,
            train_subjects=list(bench.weak_3d_subjects),
            weak_subjects=list(weak_subjects),
        )

    budget = {**asdict(bench), "test_stride": test_stride}
    return write_suite(report, "anatomy_h36m", command, bench.device, budget, rows, render)


def main(args: argparse.Namespace, command: str) -> Path:
    bench = from_args(AnatomyBench(), args)  # --loss NAME=WEIGHT overrides one of DEFAULT_WEIGHTS
    run(bench, args.bench_out, args.report, command, args.test_stride, args.resume)
    return Path(args.report)


def render(doc: dict[str, Any]) -> str:
    b = doc["budget"]
    gt = input_label("gt")  # the benchmark trains and tests on ground-truth 2D
    budget_text = (
        f"per single-frame model {b['epochs']} epochs, training stride {b['stride']}, batch {b['batch_size']}, "
        f"hidden {b['hidden']}; anatomical losses on after {round(b['warmup_fraction'] * b['epochs'])} warm-up "
        f"epochs; weights {b['weights']}. TP-Net: {b['tpnet_epochs']} epochs on every "
        f"{b['tpnet_sample_stride']}-th frame of the training predictions, hidden {b['tpnet_hidden']}. Scored on "
        f"every {b['test_stride']}-th test frame (pairs); last checkpoints."
    )
    lines = [
        "## Method 4: structure and motion losses, TP-Net (Human3.6M, GT 2D, S9/S11)",
        "",
        *header_lines(doc, budget_text),
        "### Table 3: ablation (Protocol 1, MPJPE mm, mean over actions)",
        "",
        "| Method | 2D input | seed | P1 | P2 | MPJVE |",
        "|---|---|---|---|---|---|",
    ]
    weak = [r for r in doc["rows"] if "weak_" in r["variant"]]
    for r in doc["rows"]:
        if r not in weak:
            lines.append(
                f"| {r['label']} | {gt} | {r['seed']} | {r['p1_mm']:.1f} | {r['p2_mm']:.1f} | "
                f"{r.get('mpjve_mm', float('nan')):.2f} |"
            )
    validity_cols = {
        f"{r['validity']['name']} ({gt}, seed {r['seed']})": r["validity"] for r in doc["rows"] if "validity" in r
    }
    if validity_cols:
        lines += ["", "### Table 6: structural validity (S9/S11 predictions)", "", markdown_validity(validity_cols)]
    lines += [
        "### Weak supervision (Protocol 1 on S9/S11)",
        "",
        "| Training data | 2D input | seed | P1 | P2 |",
        "|---|---|---|---|---|",
    ]
    for r in weak:
        lines.append(f"| {r['label']} | {gt} | {r['seed']} | {r['p1_mm']:.1f} | {r['p2_mm']:.1f} |")
    for r in doc["rows"]:
        if "latency_ms" in r:
            stat = r.get("latency_statistic", "median")
            lines += [
                "",
                f"TP-Net online latency per frame (streaming `push`, {stat}, CPU, seed {r['seed']}): "
                f"{r['latency_ms']:.2f} ms (paper: < 1 ms on a GPU).",
                "",
            ]
    return "\n".join(lines)


__all__ = ["DEFAULT_WEIGHTS", "AnatomyBench", "add_parser", "main", "run"]
