"""`bonelift bench anatomy`: method 4's experiments on Human3.6M under one training budget.

1. Table 3 ablation (Protocol 1 on S9/S11): baseline; + geometry loss; + illegal-angle loss;
   + symmetry loss; + TP-Net online; + TP-Net bidirectional (and skeleton fitting, optional step 4).
2. Table 6 structural validity (symmetry L1, bone-length std per limb, illegal-angle %).
3. Weak supervision: S1 with 3D vs S1 with 3D + S5-S8 2D-only with the anatomical losses.
4. TP-Net latency per frame through the streaming API on CPU.

Every single-frame model trains with the same epochs, stride and batch; anatomical losses switch on
after the same warm start. The last checkpoint of each run is scored (no model selection on the
test subjects). Runs found complete in the output folder are reused, so an interrupted benchmark
continues where it stopped. The Markdown section is written atomically.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, default_data_root
from bonelift.errors import atomic_path
from bonelift.evaluation import input_label, predict_sequences, score
from bonelift.fitting import fit_skeleton, subject_bone_lengths
from bonelift.models import LiftingModel, ModelConfig
from bonelift.models.tpnet import TPNetConfig, latency_ms, load_tpnet, refine_sequence, save_tpnet, train_tpnet
from bonelift.validity import markdown_validity, validity

# Loss weights of the benchmark. The paper's lambdas (0.03, 0.03, 0.05) weight losses in its own
# units (heatmap pixels); these are set so that each term is a tenth or so of the normalised 3D loss
# for ~20 mm errors (geometry and angle are unit-free, symmetry is in m^2, reprojection in m^2).
DEFAULT_WEIGHTS = {"geometry": 0.1, "angle": 0.1, "symmetry": 10.0, "reprojection": 100.0}


@dataclass
class AnatomyBench:
    data_root: str = ""
    epochs: int = 10
    stride: int = 4
    eval_stride: int = 1
    batch_size: int = 256
    hidden: int = 1024
    warmup_fraction: float = 0.6  # paper: 240k iterations on 3D only, then 160k with weak losses
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    weak_3d_subjects: tuple[str, ...] = ("S1",)
    weak_2d_subjects: tuple[str, ...] = ("S5", "S6", "S7", "S8")
    tpnet_epochs: int = 3
    tpnet_sample_stride: int = 20
    tpnet_hidden: int = 4096
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs/bench_anatomy"
    doc: str = "docs/bench_anatomy.md"

    @property
    def warmup_epochs(self) -> int:
        return int(round(self.warmup_fraction * self.epochs))


def _train(bench: AnatomyBench, slug: str, weights: dict[str, float], train_subjects: tuple[str, ...],
           weak_subjects: tuple[str, ...] = ()) -> LiftingModel:
    from bonelift.training import TrainConfig, model_from_checkpoint, resolve_device, train

    out = Path(bench.out_dir) / slug
    config = TrainConfig(
        model=ModelConfig(hidden=bench.hidden), data_root=bench.data_root, keypoints="gt", train_subjects=train_subjects,
        stride=bench.stride, epochs=bench.epochs, batch_size=bench.batch_size, seed=bench.seed, device=bench.device,
        out_dir=str(out), losses=dict(weights), warmup_epochs=bench.warmup_epochs if weights else 0,
        weak_subjects=weak_subjects,
    )
    last = out / "last.pt"
    if last.is_file():
        model, ckpt = model_from_checkpoint(last, resolve_device(bench.device))
        if ckpt["epoch"] >= bench.epochs:
            return model
    return train(config, resume=last.is_file()).model.eval()


def _every(preds: list[np.ndarray], stride: int) -> list[np.ndarray]:
    return [p[::stride] for p in preds]


def run(bench: AnatomyBench, command: str) -> dict[str, Any]:
    """Run everything, write `bench.doc` (Markdown) and `<out_dir>/results.json`; returns the results."""
    from bonelift.training import TrainConfig, load_split, resolve_device

    device = resolve_device(bench.device)
    data_cfg = TrainConfig(data_root=bench.data_root, keypoints="gt")
    test_seqs = load_split(data_cfg, TEST_SUBJECTS)
    s = bench.eval_stride
    w = bench.weights
    variants = [
        ("Baseline", "baseline", {}),
        ("+ Geometry loss", "geometry", {"geometry": w["geometry"]}),
        ("+ Illegal angle loss", "angle", {"geometry": w["geometry"], "angle": w["angle"]}),
        ("+ Symmetry loss", "symmetry", {k: w[k] for k in ("geometry", "angle", "symmetry")}),
    ]
    table: dict[str, dict[str, Any]] = {}
    full_preds: dict[str, list[np.ndarray]] = {}
    sap = None
    for label, slug, weights in variants:
        model = _train(bench, slug, weights, TRAIN_SUBJECTS)
        full_preds[label] = predict_sequences(model, test_seqs, 1, device, progress=False)
        table[label] = score(_every(full_preds[label], s), test_seqs, s)
        sap = model

    train_seqs = load_split(data_cfg, TRAIN_SUBJECTS)
    train_preds = predict_sequences(sap, train_seqs, 1, device, progress=False)
    train_gts = [q.root_relative for q in train_seqs]
    del train_seqs
    tpnets = {}
    for label, slug, tp_cfg in (
        ("+ TP-Net online", "tpnet_online", TPNetConfig.online(hidden=bench.tpnet_hidden)),
        ("+ TP-Net bidirectional", "tpnet_bidirectional", TPNetConfig.bidirectional(hidden=bench.tpnet_hidden)),
    ):
        path = Path(bench.out_dir) / f"{slug}.pt"
        if path.is_file():
            tp = load_tpnet(path, device)
        else:
            tp = train_tpnet(train_preds, train_gts, tp_cfg, epochs=bench.tpnet_epochs, sample_stride=bench.tpnet_sample_stride,
                             seed=bench.seed, device=device)
            save_tpnet(tp, path)
        tpnets[label] = tp
        refined = [refine_sequence(tp, p, np.arange(0, len(p), s)) for p in full_preds["+ Symmetry loss"]]
        full_preds[label] = refined
        table[label] = score(refined, test_seqs, s)
    del train_preds, train_gts

    # Step 4 (optional): fit the subject's bone lengths, here measured on its ground truth.
    fitted = []
    for p, q in zip(full_preds["+ TP-Net bidirectional"], test_seqs):
        fitted.append(fit_skeleton(p, subject_bone_lengths(q.root_relative, q.layout_3d), q.layout_3d))
    table["+ skeleton fitting (subject's true bone lengths)"] = score(fitted, test_seqs, s)

    layout = test_seqs[0].layout_3d
    validity_rows = {
        "Baseline": validity(_every(full_preds["Baseline"], s), layout),
        "With losses": validity(_every(full_preds["+ Symmetry loss"], s), layout),
        "TP-Net online": validity(full_preds["+ TP-Net online"], layout),
        "TP-Net bidirectional": validity(full_preds["+ TP-Net bidirectional"], layout),
    }
    del full_preds

    weak = {}
    for label, slug, weights, weak_subjects in (
        ("S1 3D only", "weak_s1_only", {}, ()),
        (f"S1 3D + {'/'.join(bench.weak_2d_subjects)} 2D-only, anatomical losses", "weak_s1_plus_2d", dict(w),
         bench.weak_2d_subjects),
    ):
        model = _train(bench, slug, weights, bench.weak_3d_subjects, weak_subjects)
        weak[label] = score(predict_sequences(model, test_seqs, s, device, progress=False), test_seqs, s)

    cpu_tp = load_tpnet(Path(bench.out_dir) / "tpnet_online.pt", "cpu")
    latency = {"online_ms": latency_ms(cpu_tp), "threads": torch.get_num_threads()}

    results = {"config": asdict(bench), "command": command, "table3": table, "validity": validity_rows, "weak": weak,
               "tpnet_latency": latency}
    with atomic_path(Path(bench.out_dir) / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2, default=str))
    with atomic_path(bench.doc) as tmp:
        tmp.write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    t3 = results["table3"]
    gt = input_label("gt")  # the benchmark trains and tests on ground-truth 2D
    lines = [
        "## Method 4: structure and motion losses, TP-Net (Human3.6M, GT 2D, S9/S11)", "",
        f"Command: `{results['command']}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
        f"date {datetime.date.today().isoformat()}.  ",
        f"Budget per single-frame model: {cfg['epochs']} epochs, training stride {cfg['stride']}, batch {cfg['batch_size']}, "
        f"hidden {cfg['hidden']}; anatomical losses on after {round(cfg['warmup_fraction'] * cfg['epochs'])} warm-up epochs; "
        f"weights {cfg['weights']}. TP-Net: {cfg['tpnet_epochs']} epochs on every {cfg['tpnet_sample_stride']}-th frame of the "
        f"training predictions, hidden {cfg['tpnet_hidden']}. Scored on every {cfg['eval_stride']}-th test frame; last checkpoints.", "",
        "### Table 3: ablation (Protocol 1, MPJPE mm, mean over actions)", "",
        "| Method | 2D input | P1 | P2 | MPJVE |", "|---|---|---|---|---|",
    ]
    for name, res in t3.items():
        lines.append(f"| {name} | {gt} | {res['p1']['average']:.1f} | {res['p2']['average']:.1f} | {res['mpjve']:.2f} |")
    validity_cols = {f"{name} ({gt})": rows for name, rows in results["validity"].items()}
    lines += ["", "### Table 6: structural validity (S9/S11 predictions)", "", markdown_validity(validity_cols)]
    lines += ["### Weak supervision (Protocol 1 on S9/S11)", "", "| Training data | 2D input | P1 | P2 |", "|---|---|---|---|"]
    for name, res in results["weak"].items():
        lines.append(f"| {name} | {gt} | {res['p1']['average']:.1f} | {res['p2']['average']:.1f} |")
    (a, ra), (b, rb) = results["weak"].items()
    diff = rb["p1"]["average"] - ra["p1"]["average"]
    lines += ["", f"Difference (second minus first): {diff:+.1f} mm P1.", ""]
    lat = results["tpnet_latency"]
    lines += [f"TP-Net online latency per frame (streaming `push`, CPU, {lat['threads']} thread(s)): {lat['online_ms']:.2f} ms "
              "(paper: < 1 ms on a GPU).", ""]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = AnatomyBench()
    p.add_argument("--data", default=None, help="Human3.6M folder (default: shared/data/h36m)")
    for name in ("epochs", "stride", "eval_stride", "batch_size", "hidden", "tpnet_epochs", "tpnet_sample_stride",
                 "tpnet_hidden", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--warmup-fraction", type=float, default=d.warmup_fraction)
    p.add_argument("--loss", action="append", default=[], metavar="NAME=WEIGHT", help=f"override a weight of {DEFAULT_WEIGHTS}")
    p.add_argument("--device", default=d.device)
    p.add_argument("--out", default=d.out_dir)
    p.add_argument("--doc", default=d.doc)


def main(args: argparse.Namespace, parse_weights) -> None:
    weights = dict(DEFAULT_WEIGHTS)
    weights.update(parse_weights(args.loss))
    bench = AnatomyBench(
        data_root=str(args.data or default_data_root() / "h36m"), epochs=args.epochs, stride=args.stride,
        eval_stride=args.eval_stride, batch_size=args.batch_size, hidden=args.hidden, warmup_fraction=args.warmup_fraction,
        weights=weights, tpnet_epochs=args.tpnet_epochs, tpnet_sample_stride=args.tpnet_sample_stride,
        tpnet_hidden=args.tpnet_hidden, seed=args.seed, device=args.device, out_dir=args.out, doc=args.doc,
    )
    command = "bonelift " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results = run(bench, command)
    print(markdown(results))
    print(f"wrote {bench.doc}")
