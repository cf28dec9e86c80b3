"""`bonelift bench single-frame`: the structure-aware single-frame lifters (methods 1-3) under one budget.

Every model of methods 1-3 is trained into its own run folder with identical options (epochs, stride,
batch, learning rate) for each of `--seeds` seeds, scored on every test frame with its final-epoch
weights, and reported beside the published numbers (mean ± sd over seeds). `--dataset humaneva` runs
method 2's Table 5 (basic vs ASN, GT 2D input). Rows scored under the same budget are reused.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from bonelift.bench.common import (
    add_common_arguments,
    check_report,
    group_rows,
    header_lines,
    matched_width,
    mean_sd,
    metrics_row,
    paired_difference,
    parameter_count,
    row_for,
    run_start,
    suite_budget,
    table,
    write_suite,
)
from bonelift.config import ModelConfig, TrainConfig, add_arguments, from_args
from bonelift.datasets import ACTION_ABBREVIATIONS, CANONICAL_ACTIONS, PoseSequence, run_split
from bonelift.errors import BoneliftError
from bonelift.evaluation import predict_split, score, subject_action_errors
from bonelift.models import model_spec
from bonelift.reports import input_key
from bonelift.skeletons import LIMBS
from bonelift.training import train

Splits = tuple[list[PoseSequence], list[PoseSequence]]
# Fields a suite sets per row (or that would change what is compared); every other training option is a flag.
SET_PER_ROW = (
    "train_subjects",
    "test_subjects",
    "out_dir",
    "model.name",
    "model.options",
    "init_from",
    "weak_subjects",
    "losses",
    "warmup_epochs",
)


@dataclass(frozen=True)
class Entry:
    """One benchmarked network: run-directory key, registry name, options, table label."""

    key: str
    model: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    capacity_of: str = ""  # a capacity control: the hidden width that gives this suite row's parameter count


# The rows of method 1's Table 1 and method 2's Table 2 (and method 3's head on the basic network).
TABLE_ROWS = (
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
# Capacity controls: the basic network widened to a refinement network's parameter count, so that network's gain over
# `basic` is not just more parameters (at hidden 1024: width 1152 for ASN, whose 5.45M basic-ref and AM share within
# 0.1 %; width 1272 for HSN dual's 6.56M; each within 1 %).
CAPACITY_ROWS = (
    Entry("basic-cap-asn", "baseline", "basic widened to ASN's parameter count", capacity_of="asn"),
    Entry("basic-cap-hsn-dual", "baseline", "basic widened to HSN dual's parameter count", capacity_of="hsn-dual"),
)
# The two readings of the papers that they leave open, as (row-name suffix, label suffix, options); the first of
# each is the default. Refinement: residual as method 1's text says, or absolute as both papers' equations
# write it (with "absolute", `hsn-dual-nores` has no connection from the basic network but its 3D input, method
# 1's "wo res" row). Initialisation: Kaiming as both papers state, or PyTorch's default; under Martinez et al.'s
# max-norm (weight matrix rescaled to Frobenius norm <= 1) Kaiming starts a 1024-wide layer at norm ~45, PyTorch's
# default at ~18.5, so each Adam step moves the effective weights ~45x (~18.5x) less than without max-norm.
READINGS = (("", "", {}), ("-abs", ", absolute refinement head", {"refine": "absolute"}))
INITIALISATIONS = (("", "", {}), ("-pytorch-init", ", PyTorch default initialisation", {"init": "pytorch"}))


def has_refinement(model: str) -> bool:
    """Whether registry network `model` has a refinement head (an option `refine`) that the readings switch."""
    return "refine" in {f.name for f in fields(model_spec(model).options)}


def reading_entries(rows: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """Every row under every (refinement reading, initialisation), grouped by that pair, then in row order; the
    refinement reading only for networks that have one. The rows under the defaults keep their own names and options, so
    runs scored before these were generated are reused."""
    out = []
    for (r_key, r_label, r_opts), (i_key, i_label, i_opts) in product(READINGS, INITIALISATIONS):
        for e in rows:
            if r_opts and not has_refinement(e.model):
                continue
            out.append(Entry(e.key + r_key + i_key, e.model, e.label + r_label + i_label,
                             {**e.options, **r_opts, **i_opts}))
    return tuple(out)


H36M_SUITE = (
    *reading_entries(TABLE_ROWS),
    *CAPACITY_ROWS,
    # For the record: method 1 as bonelift built it before the fixes (fusion after the 1st layer, absolute, PyTorch).
    Entry("hsn-dual-v0", "hsn-dual", "M1 HSN dual as built before (fusion after 1st layer, absolute, PyTorch init)",
          {"fusion_at": "first", "refine": "absolute", "init": "pytorch"}),
)
HUMANEVA_SUITE = tuple(e for e in H36M_SUITE if e.key in ("basic", "asn"))

# The steps of method 1's Table 1 and method 2's Table 2: (row, minus row, what the difference isolates, the paper's
# P1 difference). Each is also compared under the papers' other readings (`reading_steps`).
TABLE_STEPS = (
    ("hsn-single", "basic", "M1: single-channel refinement", "-0.72 (M1 Tab. 1)"),
    ("hsn-dual", "hsn-single", "M1: dual channel", "-0.23 (M1 Tab. 1)"),
    ("hsn-dual", "basic", "M1: HSN dual", "-0.95 (M1 Tab. 1)"),
    ("hsn-dual", "hsn-dual-nores", "M1: residual fusion", "-2.11 (M1 Tab. 1)"),
    ("basic-ref", "basic", "M2: refinement", "+1.18 (M2 Tab. 2)"),
    ("basic-ref-amstar", "basic-ref", "M2: 2D features by a plain connection (AM*)", "-1.88 (M2 Tab. 2)"),
    ("basic-ref-am", "basic-ref-amstar", "M2: attention module over the plain connection", "-0.63 (M2 Tab. 2)"),
    ("basic-ref-am", "basic-ref", "M2: attention module", "-2.51 (M2 Tab. 2)"),
    ("asn", "basic-ref-am", "M2: random enhancement module", "-0.64 (M2 Tab. 2)"),
    ("asn", "basic", "M2: ASN", "-1.97 (M2 Tab. 2)"),
)


# Rows that are one network under two names (Table 2's AM*, the basic network's last layer joined to the
# refinement, is method 1's single channel; 2.0c of docs/results.md: the same P1 seed for seed): under the other
# readings only the first name is trained.
SAME_NETWORK = {"basic-ref-amstar": "hsn-single"}


def reading_steps(steps: tuple[tuple[str, str, str, str], ...]) -> tuple[tuple[str, str, str, str], ...]:
    """`steps` under every other (refinement reading, initialisation): both rows of a step take the pair's row-name
    suffixes (the reading's only where the network has a refinement head), so a step whose sign changes with a
    reading shows it."""
    models = {e.key: e.model for e in TABLE_ROWS}

    def name(key: str, reading: str, init: str) -> str:
        key = SAME_NETWORK.get(key, key)
        return key + (reading if has_refinement(models[key]) else "") + init

    return tuple((name(a, r_key, i_key), name(b, r_key, i_key), what + r_label + i_label, paper)
                 for (r_key, r_label, _), (i_key, i_label, _) in product(READINGS, INITIALISATIONS) if r_key or i_key
                 for a, b, what, paper in steps)


# The paired comparisons the tables stand on: (row, minus row, what the difference isolates, the paper's P1
# difference); a comparison is shown when both rows share seeds.
COMPARISONS = (
    *TABLE_STEPS,
    ("hsn-dual", "hsn-dual-nores-abs", "M1: residual fusion, the paper's 'wo res' (no basic-network link)",
     "-2.11 (M1 Tab. 1)"),
    ("hsn-dual", "basic-cap-hsn-dual", "M1: HSN dual vs basic of its parameter count", ""),
    ("asn-abs", "asn", "M2: ASN, absolute minus residual head", ""),
    ("asn", "basic-cap-asn", "M2: ASN vs basic of its parameter count", ""),
    ("basic-cap-asn", "basic", "width: basic at ASN's parameter count", ""),
    ("basic-cap-hsn-dual", "basic", "width: basic at HSN dual's parameter count", ""),
    ("basic-multiroot", "basic", "M3: multi-root head on the basic network", ""),
    ("basic-pytorch-init", "basic", "initialisation: PyTorch default minus Kaiming", ""),
    ("hsn-dual-pytorch-init", "hsn-dual", "initialisation: PyTorch default minus Kaiming", ""),
    ("asn-pytorch-init", "asn", "initialisation: PyTorch default minus Kaiming", ""),
    *reading_steps(TABLE_STEPS),
)

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
    "Directions",
    "Discussion",
    "Eating",
    "Greeting",
    "Phoning",
    "Posing",
    "Purchases",
    "Sitting",
    "SittingDown",
    "Smoking",
    "Photo",
    "Waiting",
    "Walking",
    "WalkDog",
    "WalkTogether",
)
_PUBLISHED_ACTIONS_RAW = {
    "Martinez et al. as cited by M1 Tab. 1": (
        53.30,
        60.80,
        62.90,
        62.70,
        86.40,
        57.80,
        58.70,
        81.90,
        99.80,
        69.10,
        82.40,
        63.90,
        50.90,
        67.10,
        54.80,
        67.50,
    ),
    "M1 Tab. 1 w dual / wo res": (
        54.00,
        61.28,
        64.35,
        63.62,
        87.32,
        58.74,
        60.62,
        83.72,
        100.92,
        69.49,
        84.97,
        64.83,
        51.75,
        67.92,
        56.37,
        68.66,
    ),
    "M1 Tab. 1 wo dual": (
        52.57,
        60.39,
        61.88,
        62.25,
        86.37,
        56.99,
        57.74,
        80.98,
        98.42,
        68.60,
        81.42,
        63.40,
        49.77,
        66.79,
        54.12,
        66.78,
    ),
    "M1 Tab. 1 w dual": (
        52.83,
        59.90,
        61.58,
        61.95,
        85.47,
        57.03,
        58.00,
        81.29,
        98.29,
        68.27,
        81.32,
        63.29,
        49.42,
        65.83,
        53.79,
        66.55,
    ),
    "Martinez et al. as cited by M2 Tab. 1": (
        52.99,
        60.55,
        62.08,
        62.72,
        86.10,
        57.96,
        58.89,
        81.70,
        99.59,
        69.17,
        83.49,
        64.04,
        50.72,
        67.49,
        54.63,
        67.48,
    ),
    "M2 Tab. 1 ours (ASN)": (
        51.77,
        59.38,
        59.55,
        60.33,
        84.15,
        56.22,
        57.36,
        79.73,
        97.68,
        67.07,
        80.44,
        62.53,
        48.76,
        65.25,
        52.48,
        65.51,
    ),
}
PUBLISHED_ACTIONS: dict[str, dict[str, float]] = {
    row: {**dict(zip(_PAPER_ACTION_ORDER, vals[:-1])), "average": vals[-1]}
    for row, vals in _PUBLISHED_ACTIONS_RAW.items()
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
    "M2 Tab. 5 basic_gt (Martinez et al.)": {
        "S1 Walking": 17.58,
        "S1 Jog": 26.18,
        "S3 Walking": 30.40,
        "S3 Jog": 20.93,
    },
    "M2 Tab. 5 ours_gt (ASN)": {"S1 Walking": 16.39, "S1 Jog": 22.78, "S3 Walking": 26.84, "S3 Jog": 17.96},
}


def add_parser(suites: argparse._SubParsersAction) -> None:
    """`bonelift bench single-frame` and its options (every budget option explicit)."""
    p = suites.add_parser("single-frame", help="methods 1-3 single-frame networks under one training budget")
    add_arguments(p, TrainConfig(keypoints=""), skip=SET_PER_ROW)
    p.add_argument("--models", default=None, help="comma-separated subset of bench keys (default: the whole suite)")
    add_common_arguments(p, "runs/bench_single_frame", "docs/results/single_frame_<dataset>.md")


def select_entries(suite: tuple[Entry, ...], models: str | None, what: str = "bench models") -> tuple[Entry, ...]:
    """The entries of `suite` named in the comma-separated `models` (all when empty), in suite order."""
    if not models:
        return suite
    keys = [k.strip() for k in models.split(",") if k.strip()]
    unknown = sorted(set(keys) - {e.key for e in suite})
    if unknown:
        raise BoneliftError(f"unknown {what} {unknown} (known: {', '.join(e.key for e in suite)})")
    return tuple(e for e in suite if e.key in keys)


def suite_entries(dataset: str, models: str | None) -> tuple[Entry, ...]:
    return select_entries(HUMANEVA_SUITE if dataset == "humaneva" else H36M_SUITE, models)


def base_config(args: argparse.Namespace) -> TrainConfig:
    config = from_args(TrainConfig(keypoints=""), args)
    return replace(config, keypoints=config.keypoints or ("gt" if config.dataset == "humaneva" else "sh"))


def run_bench(
    base: TrainConfig,
    entries: tuple[Entry, ...],
    out: str | Path,
    report: str | Path,
    command: str,
    seeds: int = 1,
    test_stride: int = 1,
    resume: bool = False,
    data: Callable[[TrainConfig], Splits] | None = None,
    suite: str | None = None,
    render_doc: Callable[[dict[str, Any]], str] | None = None,
    part: str | None = None,
) -> dict[str, Any]:
    """Train (or reuse) and score every entry for every seed, then write the suite's JSON and Markdown.

    `data` loads the (train, test) split of a configuration (default: the configured dataset); it is
    called once, and only when some row still needs training. `suite` / `render_doc` name another suite
    built from the same rows (default: single_frame_<dataset> and its tables); `part` names the suite part
    the rows belong to (`write_suite`).
    """
    suite = suite or f"single_frame_{base.dataset}"
    budget = suite_budget(base, seeds, test_stride)
    check_report(report, suite, budget, part)  # before any training
    load = data or (lambda c: (run_split(c, c.train_subjects), run_split(c)))
    splits: Splits | None = None

    def compute(entry: Entry, config: TrainConfig) -> dict[str, Any]:
        """Train one row's network for one seed and score it."""
        nonlocal splits
        if splits is None:  # same data for every model: load it once
            splits = load(config)
        trainer = train(config, splits=splits, **run_start(config.out_dir, resume))
        t0 = time.time()
        preds, frames = predict_split(trainer.model, trainer.test_seqs, test_stride, trainer.device, progress=False)
        res = score(preds, trainer.test_seqs, frames)
        row = {
            "model": entry.model,
            "variant": entry.key,
            "label": entry.label,
            "options": entry.options,
            "input": input_key(config.keypoints),
            "seed": config.seed,
            "hidden": config.model.hidden,
            "parameters": sum(p.numel() for p in trainer.model.parameters()),  # confidence input resolved
            **metrics_row(res),
            "epochs": trainer.epoch,
            "train_seconds": float(sum(r["train_seconds"] for r in trainer.history)),
            "eval_seconds": time.time() - t0,
        }
        if config.dataset == "humaneva":
            row["groups_mm"] = subject_action_errors(preds, trainer.test_seqs, frames)
        return row

    rows = []
    for entry in entries:
        model = row_model(base.model, entry)
        for seed in range(base.seed, base.seed + seeds):
            run_dir = Path(out) / entry.key / f"seed{seed}"
            config = replace(
                base,
                seed=seed,
                out_dir=str(run_dir),
                model=model,
            )
            row = row_for(run_dir, config, test_stride, partial(compute, entry, config))
            print(f"{entry.label}, seed {seed}: P1 {row['p1_mm']:.2f} mm, P2 {row['p2_mm']:.2f} mm", flush=True)
            rows.append(row)
    return write_suite(report, suite, command, base.device, budget, rows, render_doc or render, part=part)


def row_model(model: ModelConfig, entry: Entry) -> ModelConfig:
    """The network of `entry` under the suite's `model` settings; a capacity control's width is the one whose
    parameter count is closest to its target row's (`bench.common.matched_width`)."""
    own = replace(model, name=entry.model, options=dict(entry.options))
    if not entry.capacity_of:
        return own
    target = next(e for e in H36M_SUITE if e.key == entry.capacity_of)
    return replace(own, hidden=matched_width(own, "hidden", parameter_count(row_model(model, target))))


def main(args: argparse.Namespace, command: str) -> Path:
    base = base_config(args)
    report = args.report.replace("<dataset>", base.dataset)
    run_bench(
        base,
        suite_entries(base.dataset, args.models),
        args.bench_out,
        report,
        command,
        args.seeds,
        args.test_stride,
        args.resume,
    )
    return Path(report)


def _options_text(options: dict[str, Any]) -> str:
    """A row's network options as the table's name column shows them (` +multi_root +refine=absolute`)."""
    return "".join(f" +{k}" if v is True else f" +{k}={v}" for k, v in options.items())


def _fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _mean(rows: list[dict[str, Any]], key: str, sub: str | None = None) -> float | None:
    vals = [(r[key] if sub is None else r[key].get(sub)) for r in rows]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def _row(label: str, values: dict[str, float], keys: list[str] | tuple[str, ...], digits: int = 1) -> list[str]:
    """A table row: label, one cell per key, then the 'average' entry with two decimals."""
    return [label, *(_fmt(values.get(k), digits) for k in keys), _fmt(values.get("average"), 2)]


def render(doc: dict[str, Any]) -> str:
    """The Markdown section: setup, then the papers' tables with our rows (mean over seeds) beside the published."""
    b = doc["budget"]
    humaneva = b.get("dataset") == "humaneva"
    groups = group_rows(doc["rows"])
    inputs = sorted({r["input"].upper() for r in doc["rows"]})
    title = "HumanEva-I, GT 2D (method 2, Table 5)" if humaneva else f"Human3.6M, {'/'.join(inputs)} 2D (methods 1-3)"
    budget_text = (
        f"identical for every model: {b['epochs']} epochs, training stride {b['stride']}, batch {b['batch_size']}, "
        f"lr {b['lr']:g} decayed x{b['lr_decay']:g} per {b['lr_decay_samples']} samples, hidden "
        f"{b['model']['hidden']}, {b['model']['blocks']} residual modules, dropout {b['model']['dropout']:g}; "
        f"{b['seeds']} seed(s) per model from seed {b['seed']}; final-epoch weights, scored on "
        + ("every test frame" if b["test_stride"] == 1 else f"frame pairs of every {b['test_stride']}-th test frame")
        + " of the sequences present. Cells with several seeds: mean ± sd (n)."
    )
    lines = [f"## Single-frame structure-aware networks: {title}", "", *header_lines(doc, budget_text)]
    if humaneva:
        return "\n".join(lines + _humaneva_tables(groups))
    lines += ["### Average errors (mm)", ""]
    rows = [
        [
            rs[0]["label"],
            f"`{rs[0]['model']}`"
            + _options_text(rs[0]["options"])
            + (
                f" width {rs[0]['hidden']}" if rs[0].get("hidden", b["model"]["hidden"]) != b["model"]["hidden"] else ""
            ),
            rs[0]["input"].upper(),
            mean_sd([r["p1_mm"] for r in rs]),
            mean_sd([r["p2_mm"] for r in rs]),
            mean_sd([r["hard_joints_mm"] for r in rs]),
            mean_sd([r["bone_rmse_mm"] for r in rs]),
            PUBLISHED_P1.get(rs[0]["variant"], "–"),
            f"{_mean(rs, 'train_seconds') / 60:.0f} min",
        ]
        for rs in groups.values()
    ]
    lines += table(["Model", "name", "2D", "P1", "P2", "hard joints", "bone RMSE", "published P1", "train time"], rows)
    by_key = {rs[0]["variant"]: rs for rs in groups.values()}
    paired = [[f"`{a}` - `{b}`", what, paired_difference(by_key[a], by_key[b], "p1_mm"),
               paired_difference(by_key[a], by_key[b], "p2_mm"), paper]
              for a, b, what, paper in COMPARISONS
              if a in by_key and b in by_key and {r["seed"] for r in by_key[a]} & {r["seed"] for r in by_key[b]}]
    if paired:
        lines += ["### Paired differences (mm; same seeds: initial weights and sample order; 'not resolved' inside "
                  "2 sd)", ""]
        lines += table(["rows", "what it isolates", "P1", "P2", "paper P1"], paired)
    lines += [
        "Published bone-length RMSE averages: basic 22.45, M1 single 19.45, M1 dual 18.72 (M1 Tab. 2), "
        "M2 ASN 18.53 (M2 Tab. 3).",
        "",
    ]

    def means(rs: list[dict[str, Any]], key: str, average: str) -> dict[str, float]:
        """Per-column means over seeds of the dict column `key`, with the mean of column `average`."""
        return {**{k: _mean(rs, key, k) for k in {k for r in rs for k in r[key]}}, "average": _mean(rs, average)}

    actions = [a for a in CANONICAL_ACTIONS if any(a in r["p1_per_action_mm"] for r in doc["rows"])]
    lines += ["### Protocol 1 per action (mm, mean over seeds)", ""]
    rows = [
        _row(f"{rs[0]['label']} ({rs[0]['input'].upper()})", means(rs, "p1_per_action_mm", "p1_mm"), actions)
        for rs in groups.values()
    ]
    rows += [_row(f"*{name}* (SH)", vals, actions) for name, vals in PUBLISHED_ACTIONS.items()]
    lines += table(["Model", *(ACTION_ABBREVIATIONS[a] for a in actions), "Avg"], rows)

    hard = list(doc["rows"][0]["hard_joints_per_joint_mm"]) if doc["rows"] else []
    lines += ["### Hard-joint errors, Protocol 1 (mm; the papers show these only as bar charts, Fig. 5)", ""]
    rows = [
        _row(
            f"{rs[0]['label']} ({rs[0]['input'].upper()})",
            means(rs, "hard_joints_per_joint_mm", "hard_joints_mm"),
            hard,
        )
        for rs in groups.values()
    ]
    lines += table(["Model", *hard, "Avg"], rows)

    lines += ["### Bone-length RMSE (mm)", ""]
    rows = [
        _row(
            f"{rs[0]['label']} ({rs[0]['input'].upper()})",
            means(rs, "bone_rmse_per_limb_mm", "bone_rmse_mm"),
            _LIMB_NAMES,
            2,
        )
        for rs in groups.values()
    ]
    rows += [_row(f"*{name}* (SH)", vals, _LIMB_NAMES, 2) for name, vals in PUBLISHED_BONES.items()]
    lines += table(["Model", *_LIMB_NAMES, "Avg"], rows)
    return "\n".join(lines)


def _humaneva_tables(groups: dict[tuple, list[dict[str, Any]]]) -> list[str]:
    lines = []
    for proto, label in (("p2", "P2 (after rigid alignment, the protocol of Table 5)"), ("p1", "P1 (root-aligned)")):
        lines += [f"### {label}, mm", ""]
        rows = [
            [
                f"{rs[0]['label']} ({rs[0]['input'].upper()})",
                *(mean_sd([r["groups_mm"][proto].get(g) for r in rs]) for g in HUMANEVA_GROUPS),
            ]
            for rs in groups.values()
        ]
        if proto == "p2":
            rows += [
                [f"*{name}* (GT)", *(_fmt(vals.get(g), 2) for g in HUMANEVA_GROUPS)]
                for name, vals in PUBLISHED_HUMANEVA.items()
            ]
        lines += table(["Model", *HUMANEVA_GROUPS], rows)
    lines += ["### Hard joints and bone lengths (all test frames, mm)", ""]
    rows = [
        [
            f"{rs[0]['label']} ({rs[0]['input'].upper()})",
            mean_sd([r["p1_mm"] for r in rs]),
            mean_sd([r["p2_mm"] for r in rs]),
            mean_sd([r["hard_joints_mm"] for r in rs]),
            mean_sd([r["bone_rmse_mm"] for r in rs]),
            f"{_mean(rs, 'train_seconds') / 60:.0f} min",
        ]
        for rs in groups.values()
    ]
    lines += table(["Model", "P1 (action avg)", "P2 (action avg)", "hard joints", "bone RMSE", "train time"], rows)
    return lines
