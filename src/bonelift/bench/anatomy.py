"""`bonelift bench anatomy`: method 4's experiments on Human3.6M under one training budget per row.

1. Table 3, the weak-supervision ablation (Protocol 1 and 2, MPJVE on S9/S11, >= 2 seeds per row), in the
   paper's design: the data are identical in every row (S1 3D and S5-S8 2D-only samples in every minibatch,
   one forward pass), only the losses change: `s1-3d` (no weak loss: the 2D-only samples share the batch
   statistics only); `s1-3d+weak-2d-reproj` (the 2D term only, the paper's "without L_g" row);
   `s1-3d+weak-2d-geometry` (+ geometry loss); `s1-3d+weak-2d-angle` (+ illegal-angle loss); `s1-3d+weak-2d`
   (+ symmetry loss in its later stage: the full method). Seeds are paired: a seed's rows share the
   initialisation, data order and every random draw (`training.anatomy`), so the Markdown gives each row's
   paired P1 difference to `s1-3d` (mean ± sd over seeds; "not resolved" inside 2 sd). The weak terms are blind
   to the predicted global scale (`losses.weak_losses`). The structure losses supervise the 2D-only stream only
   (`TrainConfig.losses_on` "weak"); `--record-all` adds `s1-3d+weak-2d-losses-on-all`, the full method with
   the losses on the 3D batch too; `--rows` trains a subset (e.g. `s1-3d,s1-3d+weak-2d`).
2. TP-Net online and bidirectional on the full method's predictions, windows at the paper's 40 ms step
   (`--tpnet-frame-step` 2 at 50 Hz); each row records its single-frame input's P1 and its gain over it; the
   online net's streaming latency is `streaming.tpnet_latency_ms` (the project's one latency statistic, CPU).
   `tpnet-single-frame`, the control, is the same network and training on a window of one pose: its gain is
   what a refiner learns from the 3D it trains on, so the online row's gain over it is what the time window adds.
   TP-Net trains on predictions the lifter was not fitted on (`--tpnet-train-on 2d-only`, the default): the
   full lifter's predictions for the 2D-only subjects S5-S8, against their 3D, which supervises TP-Net only
   (the lifter never sees it). Trained on the lifter's own 3D subject (`3d`, S1, the earlier design), TP-Net
   learns to undo the errors of fitted predictions, smaller and differently distributed than on test data.
3. Table 6, structural validity: `ground-truth`, `s1-3d` (baseline), `s1-3d+weak-2d` (with losses),
   TP-Net online and bidirectional: symmetry, bone-length std, the range-of-motion `illegal_pct` that
   real poses pass, and eq. 1's bent-backwards statistic.

Schedule of every lifter (method 4, Sec. 4.3, in epochs): 3D only for `warmup_fraction` of them, then
the weak losses, then from `symmetry_fraction` the symmetry stage at `symmetry_lr_factor` times the
learning rate; every row has the same schedule (the lr drop too), so rows differ only in their losses.
`--row-epochs VARIANT=N` changes one row's epochs (its stages scale with it). Deviations: the lifter is
the 2D-to-3D baseline (GT 2D input), not the paper's image network; S5-S8 stand in for MPII as 2D-only
data (their 3D is dropped at load time for the lifter) and the 2D term is a reprojection residual instead of
the heatmap loss. Results go to `docs/results/anatomy_h36m_v2.{json,md}`; `anatomy_h36m.{json,md}` keeps the
rows of the earlier design (separate forward passes, metric weak terms, no 2D-only data in `s1-3d`, TP-Net on
S1) as the record. The last checkpoint of
each run is scored (no model selection on the test subjects). A lifter whose run folder holds a
complete run under the same budget is reused, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from bonelift import checkpoints
from bonelift.bench.common import (
    add_common_arguments,
    budget_of,
    check_report,
    group_rows,
    header_lines,
    mean_sd,
    metrics_row,
    paired_difference,
    table,
    write_suite,
)
from bonelift.config import Options, TPNetTrainConfig, TrainConfig, add_arguments, from_args, opt
from bonelift.datasets import TEST_SUBJECTS, PoseSequence, load_split
from bonelift.errors import OptionError
from bonelift.evaluation import predict_split, refine_sequence, score, scored_frames
from bonelift.models import TPNetConfig
from bonelift.reports import input_label
from bonelift.runtime import resolve_device
from bonelift.streaming import tpnet_latency_ms
from bonelift.training import train, train_tpnet
from bonelift.validity import markdown_validity, validity

# Loss weights of the benchmark. The paper's lambdas (0.03, 0.03, 0.05) weight losses in its own
# units (heatmap pixels); these are set so that each term is a tenth or so of the normalised 3D loss
# for ~20 mm errors (geometry and angle are unit-free, symmetry is in m^2 at the canonical skeleton's
# scale, reprojection in normalised image units squared: 100 m^-2 before the scale fix, times Z^2 ~ 5^2 m^2).
DEFAULT_WEIGHTS = {"geometry": 0.1, "angle": 0.1, "symmetry": 10.0, "reprojection": 2500.0}

TPNET_ROWS = "tpnet"  # `--rows` name of the TP-Net rows (online and bidirectional)
# Table 3 rows: variant, label, the loss terms on, where the structure losses act. Every row has the 2D-only data.
VARIANTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("s1-3d", "S1 3D, S5-S8 2D-only in the minibatch, no weak loss", (), "weak"),
    ("s1-3d+weak-2d-reproj", "+ 2D-only S5-S8, 2D term only", ("reprojection",), "weak"),
    ("s1-3d+weak-2d-geometry", "+ geometry loss", ("reprojection", "geometry"), "weak"),
    ("s1-3d+weak-2d-angle", "+ illegal-angle loss", ("reprojection", "geometry", "angle"), "weak"),
    ("s1-3d+weak-2d", "+ symmetry loss, staged (full method)", ("reprojection", "geometry", "angle", "symmetry"),
     "weak"),
)
RECORD_ALL = (
    "s1-3d+weak-2d-losses-on-all",
    "full method, structure losses on the 3D batch too (bonelift before December 2026)",
    ("reprojection", "geometry", "angle", "symmetry"),
    "all",
)
FULL = "s1-3d+weak-2d"
BASE = "s1-3d"  # the row every paired difference is taken against
TPNET_SOURCES = ("2d-only", "3d")
TABLE6 = (("ground-truth", "Ground truth"), ("s1-3d", "Baseline"), (FULL, "With losses"),
          ("tpnet-online", "TP-Net online"), ("tpnet-bidirectional", "TP-Net bidirectional"))
# TP-Net rows: variant, label, window configuration. The single-frame control trains the same network on the same
# predictions and 3D with a window of one pose, so what it gains is learning from that 3D, and the online row's
# gain over it is what time adds.
TPNET_KINDS = (("tpnet-online", "+ TP-Net online", TPNetConfig.online),
               ("tpnet-bidirectional", "+ TP-Net bidirectional", TPNetConfig.bidirectional),
               ("tpnet-single-frame", "control: the same refiner on the frame's own pose (window 1)",
                TPNetConfig.single_frame))


# Fields of the lifters' run configuration that each row sets (or the bench fixes): no flag of their own.
PER_ROW = ("model.name", "dataset", "keypoints", "train_subjects", "test_subjects", "actions", "losses",
           "warmup_epochs", "weak_subjects", "losses_on", "symmetry_epoch", "out_dir")


@dataclass
class AnatomyBench(Options):
    """The benchmark's budget: `train`, the lifters' run configuration (every `bonelift train` flag but the
    `PER_ROW` fields, e.g. `--lr`, `--weight-decay`, `--flip`, `--hidden`), and the bench's own fields."""

    train: TrainConfig = field(default_factory=TrainConfig)
    row_epochs: dict[str, int] = opt(help="epochs of one row VARIANT=N (default: --epochs)", factory=dict)
    warmup_fraction: float = opt(
        0.4, "share of epochs on 3D only before the weak losses switch on (paper: 240k iterations, then 160k)",
        min=0,
    )
    symmetry_fraction: float = opt(0.8, "share of epochs before the symmetry stage (paper's fourth stage)", min=0)
    weights: dict[str, float] = opt(
        help=f"override a loss weight NAME=WEIGHT of {DEFAULT_WEIGHTS}",
        factory=lambda: dict(DEFAULT_WEIGHTS),
        flag="--loss",
    )
    weak_3d_subjects: tuple[str, ...] = opt(("S1",), "3D-labelled subjects")
    weak_2d_subjects: tuple[str, ...] = opt(("S5", "S6", "S7", "S8"), "2D-only subjects")
    record_all: bool = opt(False, "also train the full method with the losses on the 3D batch too (bonelift "
                                  "before December 2026)")
    tpnet_epochs: int = opt(3, "TP-Net epochs", min=1)
    tpnet_sample_stride: int = opt(20, "TP-Net trains on every N-th frame of the training predictions", min=1)
    tpnet_hidden: int = opt(4096, "TP-Net hidden width", min=1)
    tpnet_frame_step: int = opt(2, "frames between TP-Net's window poses (paper: 40 ms = 2 frames at 50 Hz)", min=1)
    tpnet_train_on: str = opt(
        "2d-only", "subjects whose lifter predictions TP-Net trains on: 2d-only (predictions the lifter was not "
        "fitted on; their 3D supervises TP-Net only) or 3d (the lifter's own 3D subjects)", choices=TPNET_SOURCES,
    )
    rows: tuple[str, ...] = opt((), "comma-separated Table 3 rows to train, and `tpnet` for the TP-Net rows "
                                    f"(default: all; TP-Net needs {FULL})")

    def validate(self) -> None:
        """Also check the lifters' shared run configuration and the row names."""
        super().validate()
        self.train.validate()
        known = [v[0] for v in (*VARIANTS, RECORD_ALL)] + [TPNET_ROWS]
        unknown = [r for r in self.rows if r not in known]
        if unknown:
            raise OptionError(f"--rows: unknown row(s) {', '.join(unknown)} (known: {', '.join(known)})")

    def variants(self) -> tuple[tuple, ...]:
        """The Table 3 rows this run trains: `--rows`, else every row (and with `--record-all` the record row)."""
        every = VARIANTS + ((RECORD_ALL,) if self.record_all or RECORD_ALL[0] in self.rows else ())
        return tuple(v for v in every if not self.rows or v[0] in self.rows)

    @property
    def with_tpnet(self) -> bool:
        """TP-Net trains on the full method's predictions: with every row, or when `--rows` names `tpnet`."""
        return any(v[0] == FULL for v in self.variants()) and (not self.rows or TPNET_ROWS in self.rows)

    def lifter(self, out: Path, variant: tuple, seed: int) -> TrainConfig:
        """The run configuration of one Table 3 row and seed: `train` with the row's losses and schedule."""
        slug, _, terms, losses_on = variant
        epochs = int(self.row_epochs.get(slug, self.train.epochs))
        warmup = int(round(self.warmup_fraction * epochs))
        return replace(
            self.train,
            keypoints="gt",
            train_subjects=self.weak_3d_subjects,
            epochs=epochs,
            seed=seed,
            out_dir=str(out),
            losses={k: self.weights[k] for k in terms},
            warmup_epochs=warmup,
            weak_subjects=self.weak_2d_subjects,
            losses_on=losses_on,
            symmetry_epoch=max(warmup, int(round(self.symmetry_fraction * epochs))),
        )

    def tpnet(self, out: Path, make: Callable[..., TPNetConfig], seed: int) -> TPNetTrainConfig:
        """TP-Net's run for one window kind (`TPNET_KINDS`)."""
        return TPNetTrainConfig(
            model=make(hidden=self.tpnet_hidden, frame_step=self.tpnet_frame_step),
            stride=self.tpnet_sample_stride,
            epochs=self.tpnet_epochs,
            seed=seed,
            device=self.train.device,
            out_dir=str(out),
        )

    def budget(self) -> dict[str, Any]:
        """The suite's budget header: the lifters' shared run configuration and the bench's own fields."""
        shared = {k: v for k, v in budget_of(self.train).items() if k not in PER_ROW}
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("train", "rows")}
        return {**shared, **json.loads(json.dumps(own))}


def add_parser(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser("anatomy", help="method 4: Table 3 weak-supervision ablation, Table 6, TP-Net")
    add_arguments(p, AnatomyBench(), skip=tuple(f"train.{k}" for k in PER_ROW))
    add_common_arguments(p, "runs/bench_anatomy_v2", "docs/results/anatomy_h36m_v2.md")
    p.set_defaults(seeds=2)


def _complete(out_dir: str | Path, config: Any) -> bool:
    """Whether `out_dir` holds a finished run trained under exactly `config`'s budget."""
    last = Path(out_dir) / "last.pt"
    if not last.is_file():
        return False
    ckpt = checkpoints.load(last)
    saved = checkpoints.config_of(ckpt, last)
    return ckpt["epoch"] >= config.epochs and budget_of(saved) == budget_of(config)


def _lifter(config: TrainConfig, resume: bool, splits: tuple[list[PoseSequence], list[PoseSequence]]):
    """The trained lifter of `config.out_dir`: reused when complete under the same budget, else (re)trained."""
    last = Path(config.out_dir) / "last.pt"
    if _complete(config.out_dir, config):
        return checkpoints.rebuild(last, resolve_device(config.device))[0]
    return train(config, resume=resume and last.is_file(), progress=False, splits=splits, overwrite=True).model.eval()


def run(
    bench: AnatomyBench,
    out: str | Path,
    report: str | Path,
    command: str,
    test_stride: int = 1,
    resume: bool = False,
    seeds: int = 2,
) -> dict[str, Any]:
    """Train and score every row and seed, write `<report>.json` and `<report>` (Markdown); returns the document."""
    out = Path(out)
    check_report(report, "anatomy_h36m", _budget(bench, seeds, test_stride))  # before any training
    device = resolve_device(bench.train.device)
    test_seqs = load_split("h36m", bench.train.data_root, "gt", TEST_SUBJECTS)
    train_seqs = load_split("h36m", bench.train.data_root, "gt", bench.weak_3d_subjects)
    variants = bench.variants()
    with_tpnet = bench.with_tpnet
    # TP-Net's training sequences: the 2D-only subjects (with the 3D the lifter never saw), or the lifter's own.
    tpnet_seqs = train_seqs
    if with_tpnet and bench.tpnet_train_on == "2d-only":
        tpnet_seqs = load_split("h36m", bench.train.data_root, "gt", bench.weak_2d_subjects)
    frames = [scored_frames(len(s), test_stride) for s in test_seqs]
    layout = test_seqs[0].layout_3d
    rows: list[dict[str, Any]] = []

    def add_row(variant: str, label: str, model: str, seed: int, preds: list[np.ndarray], **extra: Any) -> dict:
        row = {"model": model, "variant": variant, "label": label, "input": "gt", "seed": seed,
               **metrics_row(score(preds, test_seqs, frames)), **extra}
        if variant in dict(TABLE6):
            row["validity"] = {"name": dict(TABLE6)[variant], **validity(preds, layout)}
        rows.append(row)
        return row

    gt_preds = [s.root_relative[f] for s, f in zip(test_seqs, frames)]
    add_row("ground-truth", "Ground truth", "ground-truth", bench.train.seed, gt_preds)
    for seed in range(bench.train.seed, bench.train.seed + seeds):
        full_model = None
        for variant in variants:
            config = bench.lifter(out / variant[0] / f"seed{seed}", variant, seed)
            model = _lifter(config, resume, (train_seqs, test_seqs))
            preds = predict_split(model, test_seqs, test_stride, device, progress=False)[0]  # the `frames`
            add_row(variant[0], variant[1], "baseline", seed, preds, losses=config.losses,
                    losses_on=config.losses_on, epochs=config.epochs, train_subjects=list(config.train_subjects),
                    weak_subjects=list(config.weak_subjects))
            if variant[0] == FULL:
                full_model, full_p1 = model, rows[-1]["p1_mm"]
        if not with_tpnet:
            continue
        # TP-Net on the full method's predictions of every frame (its windows need the full frame rate).
        full_test = predict_split(full_model, test_seqs, 1, device, progress=False)[0]
        train_preds = predict_split(full_model, tpnet_seqs, 1, device, progress=False)[0]
        train_gts = [q.root_relative for q in tpnet_seqs]
        # TP-Nets fitted on other data live in their own folders: a folder is reused when its budget matches.
        data = "" if bench.tpnet_train_on == "2d-only" else f"-train-on-{bench.tpnet_train_on}"
        for slug, label, make in TPNET_KINDS:
            config = bench.tpnet(out / f"{slug}{data}" / f"seed{seed}", make, seed)
            if _complete(config.out_dir, config):
                net = checkpoints.rebuild(Path(config.out_dir) / "last.pt", device)[0]
            else:
                net = train_tpnet(config, train_preds, train_gts, progress=False, overwrite=True)
            refined = [refine_sequence(net, p, f) for p, f in zip(full_test, frames)]
            extra: dict[str, Any] = {"frame_step": net.config.frame_step, "window": net.config.window}
            if slug == "tpnet-online":
                extra["latency_ms"] = tpnet_latency_ms(copy.deepcopy(net).cpu())
                extra["latency_statistic"] = "median"
            row = add_row(slug, label, "tpnet", seed, refined, input_variant=FULL, input_p1_mm=full_p1,
                          tpnet_subjects=sorted({q.subject for q in tpnet_seqs}), **extra)
            row["gain_p1_mm"] = full_p1 - row["p1_mm"]

    return write_suite(report, "anatomy_h36m", command, bench.train.device, _budget(bench, seeds, test_stride), rows,
                       render)


def _budget(bench: AnatomyBench, seeds: int, test_stride: int) -> dict[str, Any]:
    return {**bench.budget(), "test_stride": test_stride, "seeds": seeds}


def main(args: argparse.Namespace, command: str) -> Path:
    bench = from_args(AnatomyBench(), args)  # --loss NAME=WEIGHT overrides one of DEFAULT_WEIGHTS
    run(bench, args.bench_out, args.report, command, args.test_stride, args.resume, args.seeds)
    return Path(args.report)


def _mean_validity(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed mean of validity reports (same keys)."""
    out: dict[str, Any] = {}
    for key, value in items[0].items():
        if isinstance(value, dict):
            out[key] = {k: float(np.mean([v[key][k] for v in items])) for k in value}
        elif isinstance(value, int | float):
            out[key] = float(np.mean([v[key] for v in items]))
        else:
            out[key] = value
    return out


def render(doc: dict[str, Any]) -> str:
    b = doc["budget"]
    gt = input_label("gt")  # the benchmark trains and tests on ground-truth 2D
    known = {v[0] for v in (*VARIANTS, RECORD_ALL)} | {v for v, _ in TABLE6} | {v[0] for v in TPNET_KINDS}
    rows = [r for r in doc["rows"] if r.get("variant") in known]  # rows of the pre-#14 bench stay in the JSON only
    budget_text = (
        f"per lifter {b.get('epochs')} epochs (row overrides {b.get('row_epochs') or 'none'}), training stride "
        f"{b.get('stride')}, batch {b.get('batch_size')}, hidden {b.get('hidden', b.get('model', {}).get('hidden'))}; "
        f"weak losses from "
        f"{b.get('warmup_fraction')} of the epochs, symmetry stage from {b.get('symmetry_fraction')} at lr x "
        f"{b.get('symmetry_lr_factor')}; weights {b.get('weights')}; 3D {b.get('weak_3d_subjects')}, 2D-only "
        f"{b.get('weak_2d_subjects')}. TP-Net: {b.get('tpnet_epochs')} epochs on every "
        f"{b.get('tpnet_sample_stride')}-th training prediction, hidden {b.get('tpnet_hidden')}, frame step "
        f"{b.get('tpnet_frame_step')}. Scored on every {b.get('test_stride')}-th test frame (pairs); last "
        f"checkpoints; {b.get('seeds')} seed(s) per row (mean ± sd (n))."
    )
    lines = [
        "## Method 4: structure and motion losses, TP-Net (Human3.6M, GT 2D, S9/S11)",
        "",
        *header_lines(doc, budget_text),
        "### Table 3: weak-supervision ablation (S9/S11, mm, mean over actions)",
        "",
    ]
    body = []
    groups = group_rows([r for r in rows if r["model"] != "ground-truth"])
    base = groups.get((BASE, "gt"), [])
    for (variant, _), group in groups.items():
        body.append([
            variant, group[0].get("label", ""), gt,
            mean_sd([r["p1_mm"] for r in group]),
            "–" if variant == BASE else paired_difference(group, base, "p1_mm"),
            mean_sd([r["p2_mm"] for r in group]), mean_sd([r.get("n_mpjpe_mm") for r in group]),
            mean_sd([r.get("mpjve_mm") for r in group]),
            mean_sd([r.get("gain_p1_mm") for r in group]) if "gain_p1_mm" in group[0] else "–",
            mean_sd([r.get("illegal_pct") for r in group]), mean_sd([r.get("eq1_illegal_pct") for r in group]),
        ])
    lines += table(["Row", "Method", "2D input", "P1", f"P1 - {BASE} (paired)", "P2", "N-MPJPE", "MPJVE",
                    "TP-Net gain P1", "illegal % (ROM)", "eq. 1 backward %"], body)
    lines += [f"`P1 - {BASE} (paired)`: per seed the row's P1 minus `{BASE}`'s of the same seed (same initialisation "
              "and data order), mean ± sd (pairs); \"not resolved\" when the mean is within 2 sd of zero. "
              "`N-MPJPE`: P1 after the best global scale (what P1 adds to it is the predicted size).", ""]
    lines += ["`illegal %`: frames with an elbow flexed past 150° or a knee outside -10..160° (normal range of "
              "motion; sources cited beside `geometry.ELBOW_MAX_FLEXION_DEG`); `eq. 1 backward %`: the angle "
              "loss's own test.", ""]
    by_variant = group_rows([r for r in rows if "validity" in r], ("variant",))
    cols = {f"{name} ({gt})": _mean_validity([r["validity"] for r in by_variant[(v,)]])
            for v, name in TABLE6 if (v,) in by_variant}
    if cols:
        lines += ["### Table 6: structural validity (S9/S11, seed mean)", "", markdown_validity(cols)]
    lat = [r["latency_ms"] for r in rows if "latency_ms" in r]
    if lat:
        lines += [f"TP-Net online latency per frame (streaming `push`, median, CPU): {mean_sd(lat)} ms "
                  "(paper: < 1 ms on a GPU).", ""]
    return "\n".join(lines)


__all__ = ["DEFAULT_WEIGHTS", "VARIANTS", "AnatomyBench", "add_parser", "main", "run"]
