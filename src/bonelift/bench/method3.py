"""`bonelift bench method3`: method 3's Table 2 ablation (Park et al., ECCVW 2016) on Stacked Hourglass 2D input.

Four rows of the `method3` lifter, each trained for every seed under one budget whose defaults are the
paper's (Sec. 4: SGD, lr 0.01 halved every 4 epochs, momentum 0.9, weight decay 0.001, batch 128,
28 epochs, dropout 0.3; lambda_2D 0.1 -> 0.01 after epoch 16 and lambda_3D 0.5 are model options):
`regression` (2D loss on the shared layers, one root), `multiroot` (six roots), `cls2d` (2D probabilities
fused into the 3D part), `cls2d+multiroot` (both). The paper's rows are image CNNs; ours lift 2D
detections, so only the ordering of the rows is comparable. Rows go to `docs/results/method3.json`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from bonelift.bench.common import add_common_arguments, group_rows, header_lines, mean_sd, table
from bonelift.bench.single_frame import SET_PER_ROW, Entry, run_bench, select_entries
from bonelift.config import TrainConfig, add_arguments, from_args
from bonelift.models import ModelConfig

SUITE = "method3"
ENTRIES = (
    Entry("regression", "method3", "M3 regression (2D loss, one root)"),
    Entry("multiroot", "method3", "M3 multi-reg", {"multi_root": True}),
    Entry("cls2d", "method3", "M3 2D-cls", {"cls2d": True}),
    Entry("cls2d+multiroot", "method3", "M3 multi-reg + 2D-cls", {"cls2d": True, "multi_root": True}),
)
# Table 2 of the paper (image input, Protocol 1 mm, one network per action) for the rows above.
TABLE2_ACTIONS = ("Discussion", "Eating", "Greeting", "Phoning", "Photo", "Walking")
PUBLISHED_TABLE2 = {
    "regression": (125.45, 95.21, 120.69, 119.66, 153.76, 72.55),
    "multiroot": (122.71, 94.67, 119.70, 119.25, 153.54, 71.19),
    "cls2d": (118.19, 91.39, 118.19, 115.84, 149.97, 64.27),
    "cls2d+multiroot": (116.19, 89.96, 116.49, 115.34, 149.55, 62.64),
}


def defaults() -> TrainConfig:
    """The paper's training budget (Sec. 4) as flag defaults; SH input; no max-norm (the paper has none)."""
    return TrainConfig(
        keypoints="sh", epochs=28, batch_size=128, lr=0.01, optimizer="sgd", momentum=0.9, weight_decay=0.001,
        lr_decay=0.5, lr_step_epochs=4, model=ModelConfig(name="method3", dropout=0.3, max_norm=False),
    )


def add_parser(suites: argparse._SubParsersAction) -> None:
    """`bonelift bench method3` and its options (every budget option explicit)."""
    p = suites.add_parser(SUITE, help="method 3 Table 2 ablation (2D classification x multi-root) on SH 2D")
    # --option applies to every row (e.g. lambda_2d_epoch=2 for a shortened schedule); rows add their switches.
    add_arguments(p, defaults(), skip=tuple(k for k in SET_PER_ROW if k != "model.options"))
    p.add_argument("--models", default=None, help="comma-separated subset of " + ", ".join(e.key for e in ENTRIES))
    add_common_arguments(p, "runs/bench_method3", "docs/results/method3.md")


def entries(models: str | None) -> tuple[Entry, ...]:
    return select_entries(ENTRIES, models, "method3 rows")


def main(args: argparse.Namespace, command: str) -> Path:
    base = from_args(defaults(), args)
    shared = dict(base.model.options)
    base = replace(base, model=replace(base.model, name="method3", options={}))
    rows = tuple(replace(e, options={**shared, **e.options}) for e in entries(args.models))
    run_bench(base, rows, args.bench_out, args.report, command, args.seeds, args.test_stride,
              args.resume, suite=SUITE, render_doc=render)
    return Path(args.report)


def render(doc: dict[str, Any]) -> str:
    """Setup, our rows (mean ± sd over seeds) and Table 2's actions beside the published image-CNN numbers."""
    b = doc["budget"]
    budget_text = (
        f"{b['epochs']} epochs, stride {b['stride']}, batch {b['batch_size']}, {b.get('optimizer', 'adam')} lr "
        f"{b['lr']:g} x{b['lr_decay']:g} every {b.get('lr_step_epochs', 0)} epochs, weight decay "
        f"{b['weight_decay']:g}, hidden {b['model']['hidden']}, {b['model']['blocks']} residual modules, dropout "
        f"{b['model']['dropout']:g}; {b['seeds']} seed(s) from seed {b['seed']}; final-epoch weights."
    )
    lines = ["## Method 3, Table 2 ablation on 2D input", "", *header_lines(doc, budget_text)]
    groups = group_rows(doc["rows"])
    rows = [
        [rs[0]["label"], rs[0]["input"].upper(), mean_sd([r["p1_mm"] for r in rs]), mean_sd([r["p2_mm"] for r in rs]),
         mean_sd([r["hard_joints_mm"] for r in rs]), mean_sd([r["bone_rmse_mm"] for r in rs])]
        for rs in groups.values()
    ]
    lines += ["### Average errors (mm)", "", *table(["Model", "2D", "P1", "P2", "hard joints", "bone RMSE"], rows)]
    lines += ["### Protocol 1 on Table 2's actions (mm; published: image CNN, one network per action)", ""]
    rows = []
    for rs in groups.values():
        per = [mean_sd([r["p1_per_action_mm"].get(a) for r in rs]) for a in TABLE2_ACTIONS]
        rows.append([f"{rs[0]['label']} ({rs[0]['input'].upper()})", *per])
    for key, vals in PUBLISHED_TABLE2.items():
        rows.append([f"*published {key}* (image)", *(f"{v:.2f}" for v in vals)])
    lines += table(["Model", *TABLE2_ACTIONS], rows)
    return "\n".join(lines)
