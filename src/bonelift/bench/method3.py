"""`bonelift bench method3`: method 3's Table 2 ablation (Park et al., ECCVW 2016), in two parts (`--parts`).

- `sh` (default): four rows of the `method3` lifter on Stacked Hourglass 2D input, each trained for every
  seed under one budget whose defaults are the paper's (Sec. 4: SGD, lr 0.01 halved every 4 epochs,
  momentum 0.9, weight decay 0.001, batch 128, 28 epochs, dropout 0.3; lambda_2D 0.1 -> 0.01 after
  epoch 16 and lambda_3D 0.5 are model options): `regression` (2D loss on the shared layers, one root),
  `multiroot` (six roots), `cls2d` (2D probabilities fused into the 3D part), `cls2d+multiroot` (both), and
  the loss-scale controls `regression-x6` (one root, lambda_3D x6: eq. 6 sums six roots' 3D losses, so
  `multiroot` also sends the shared layers ~6x the 3D gradient; this row separates that from the roots; it also
  multiplies the one output layer's step by 6) and `regression-g6` (one root, the 3D gradient x6 below the
  output layer only: option `grad_3d_shared`).
  The paper's rows are image CNNs; these lift 2D detections, so only the ordering of the rows is comparable.
- `image`: the paper's image CNN (`method3-image`) trained from scratch on ImageSet files (`--train-images`,
  `--test-images`) under the same schedule flags: `image-regression` (one root, no fusion, the 2D loss on the
  shared conv layers), each component alone (`image-multiroot`, `image-cls2d`), both (`image-cls2d+multiroot`)
  and the loss-scale control `image-regression-x6`; `input` is the ImageSet's source (render or video), and
  the rows add the 2D part's grid accuracy.
- With `--actions A[,B]` (the paper's protocol: one network per action) the `sh` rows are trained and tested
  on those actions only, named `<row>@<actions>` and kept as the part `sh-per-action`, whose table sets each
  beside the all-actions network of the same row on the same actions.

Both parts write the one suite document `docs/results/method3.json` (each part keeps its own header under
the rule of `bench.common.write_suite`, so running one part keeps the other's rows) and its Markdown.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bonelift.bench.common import (
    add_common_arguments,
    check_report,
    group_rows,
    header_lines,
    mean_sd,
    metrics_row,
    row_for,
    run_start,
    suite_budget,
    table,
    write_suite,
)
from bonelift.bench.single_frame import SET_PER_ROW, Entry, run_bench, select_entries
from bonelift.config import ImageTrainConfig, TrainConfig, add_arguments, field_dests, from_args
from bonelift.datasets import ACTION_ABBREVIATIONS, CANONICAL_ACTIONS
from bonelift.errors import BoneliftError
from bonelift.evaluation import evaluate_image_model
from bonelift.models import ModelConfig
from bonelift.models.method3 import HeadOptions
from bonelift.models.multiroot import ROOT_NAMES
from bonelift.training import load_image_split, train_image
from bonelift.training.images import ImageSplits

SUITE = "method3"
ENTRIES = (
    Entry("regression", "method3", "M3 regression (2D loss, one root)"),
    Entry("multiroot", "method3", "M3 multi-reg", {"multi_root": True}),
    Entry("cls2d", "method3", "M3 2D-cls", {"cls2d": True}),
    Entry("cls2d+multiroot", "method3", "M3 multi-reg + 2D-cls", {"cls2d": True, "multi_root": True}),
    Entry("regression-x6", "method3", "M3 regression, 3D loss x6 (one root, six roots' 3D gradient)"),
    Entry("regression-g6", "method3", "M3 regression, 3D gradient x6 into the shared layers (one root)"),
)
IMAGE_MODEL = "method3-image"
PER_ACTION = "sh-per-action"  # the suite part of 2D-input rows trained on some actions only
IMAGE_ENTRIES = (
    Entry("image-regression", IMAGE_MODEL, "M3 image CNN, regression (2D loss, one root)"),
    Entry("image-multiroot", IMAGE_MODEL, "M3 image CNN, multi-reg", {"multi_root": True}),
    Entry("image-cls2d", IMAGE_MODEL, "M3 image CNN, 2D-cls", {"cls2d": True}),
    Entry("image-cls2d+multiroot", IMAGE_MODEL, "M3 image CNN, multi-reg + 2D-cls",
          {"cls2d": True, "multi_root": True}),
    Entry("image-regression-x6", IMAGE_MODEL, "M3 image CNN, regression, 3D loss x6 (one root, six roots' 3D "
                                              "gradient)"),
)
# The loss-scale controls of multi-reg: eq. 6 sums the 3D loss over the roots, so six roots send the shared layers
# ~6x one root's 3D gradient; these rows keep one root and weight its 3D loss (lambda_3D) by the number of roots.
LOSS_SCALED = frozenset({"regression-x6", "image-regression-x6"})
# The same factor on the 3D gradient into the layers below the output layer only (`grad_3d_shared`): six roots'
# output layers each take one root's step, so the x6 loss also multiplies the one output layer's step by 6.
GRAD_SCALED = frozenset({"regression-g6"})
PARTS = ("sh", "image")
# Flags of the image part of its own (the others it shares with the 2D-input part: `shared_flags`).
IMAGE_FLAGS = ("train_images", "test_images", "color_aug", "model.image_size", "model.grid",
               "model.conv_width", "model.fc_width")
# Table 1 of the paper, "Our method" (video frames, one network per action), Protocol 1 mm.
PUBLISHED_TABLE1 = {
    "Directions": 100.34, "Discussion": 116.19, "Eating": 89.96, "Greeting": 116.49, "Phoning": 115.34,
    "Photo": 149.55, "Posing": 117.57, "Purchases": 106.94, "Sitting": 137.21, "SittingDown": 190.82,
    "Smoking": 105.78, "Waiting": 125.12, "WalkDog": 131.90, "Walking": 62.64, "WalkTogether": 96.18,
    "average": 117.34,
}
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


def image_defaults() -> ImageTrainConfig:
    """The image part's budget: `ImageTrainConfig`'s defaults, which are the paper's (Sec. 4)."""
    return ImageTrainConfig(out_dir="")


def add_parser(suites: argparse._SubParsersAction) -> None:
    """`bonelift bench method3` and its options (every budget option explicit)."""
    p = suites.add_parser(SUITE, help="method 3 Table 2 ablation (2D classification x multi-root): on SH 2D and/or "
                                      "as the image CNN on ImageSet files")
    # --option applies to every row (e.g. lambda_2d_epoch=2 for a shortened schedule); rows add their switches.
    add_arguments(p, defaults(), skip=tuple(k for k in SET_PER_ROW if k != "model.options"))
    add_arguments(p, image_defaults(), only=IMAGE_FLAGS)
    p.add_argument("--parts", default="sh", help="comma-separated parts to run: sh (the lifter on Stacked Hourglass "
                                                 "2D), image (the CNN on --train-images / --test-images)")
    p.add_argument("--models", default=None, help="comma-separated subset of "
                   + ", ".join(e.key for e in ENTRIES + IMAGE_ENTRIES))
    add_common_arguments(p, "runs/bench_method3", "docs/results/method3.md")


def entries(models: str | None, part: str = "sh", actions: tuple[str, ...] = ()) -> tuple[Entry, ...]:
    """The rows of `part` named in `models` (all when empty); a name no part has is an error. Rows trained on
    some `actions` only (the paper's one network per action) are named `<row>@<actions>`, beside the others."""
    chosen = select_entries(ENTRIES + IMAGE_ENTRIES, models, "method3 rows")
    own = ENTRIES if part == "sh" else IMAGE_ENTRIES
    rows = tuple(e for e in chosen if e in own)
    if actions:
        tag = "+".join(actions)
        rows = tuple(replace(e, key=f"{e.key}@{tag}", label=f"{e.label}, {tag} only") for e in rows)
    return rows


def row_options(entry: Entry, shared: dict[str, Any]) -> dict[str, Any]:
    """A row's network options: the suite's `--option`s, then the row's own; a loss-scaled row's lambda_3D is the
    others' (the suite's, else the network's default) times the number of roots of multi-reg, a gradient-scaled
    row's `grad_3d_shared` that number."""
    options = {**shared, **entry.options}
    if entry.key.partition("@")[0] in LOSS_SCALED:
        options["lambda_3d"] = len(ROOT_NAMES) * float(shared.get("lambda_3d", HeadOptions.lambda_3d))
    if entry.key.partition("@")[0] in GRAD_SCALED:
        options["grad_3d_shared"] = float(len(ROOT_NAMES))
    return options


def parts_of(raw: str) -> tuple[str, ...]:
    parts = tuple(x.strip() for x in raw.split(",") if x.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise BoneliftError(f"--parts takes a comma-separated subset of {', '.join(PARTS)}, got {raw!r}")
    return parts


def shared_flags() -> tuple[str, ...]:
    """The 2D-input part's flags the image part takes too (one budget vocabulary): every field both run
    configurations have, but those each row sets, the 2D-keypoint options and the stride (frames there,
    images here). A new `RunConfig` field is shared without an edit here."""
    image = set(field_dests(ImageTrainConfig)) - set(ImageTrainConfig.KEYPOINT_ONLY) - {"stride"}
    per_row = set(SET_PER_ROW) - {"model.options"}  # --option applies to every row of both parts
    return tuple(d for d in field_dests(TrainConfig) if d in image and d not in per_row)


def image_config(args: argparse.Namespace) -> ImageTrainConfig:
    """The image part's budget from the suite's flags: its own and the schedule flags it shares with the sh part."""
    wanted = set(IMAGE_FLAGS + shared_flags())
    return from_args(image_defaults(), argparse.Namespace(**{k: v for k, v in vars(args).items() if k in wanted}))


def main(args: argparse.Namespace, command: str) -> Path:
    parts = parts_of(args.parts)
    if "sh" in parts:
        base = from_args(defaults(), args)
        shared = dict(base.model.options)
        base = replace(base, model=replace(base.model, name="method3", options={}))
        rows = tuple(replace(e, options=row_options(e, shared)) for e in entries(args.models, "sh", base.actions))
        run_bench(base, rows, args.bench_out, args.report, command, args.seeds, args.test_stride,
                  args.resume, suite=SUITE, render_doc=render, part=PER_ACTION if base.actions else None)
    if "image" in parts:
        image_base = image_config(args)
        run_image_bench(image_base, entries(args.models, "image", image_base.actions), args.bench_out, args.report,
                        command, args.seeds, args.test_stride, args.resume)
    return Path(args.report)


def run_image_bench(
    base: ImageTrainConfig,
    rows_to_run: tuple[Entry, ...],
    out: str | Path,
    report: str | Path,
    command: str,
    seeds: int = 1,
    test_stride: int = 1,
    resume: bool = False,
    data: ImageSplits | None = None,
) -> dict[str, Any]:
    """Train (or reuse, under the cached-row rule) and score the image rows for every seed, then merge them
    into the suite document as its `image` part. `data` (train, test) skips loading the ImageSet files."""
    check_report(report, SUITE, suite_budget(base, seeds, test_stride), part="image")  # before any training
    shared = dict(base.model.options)

    def compute(entry: Entry, config: ImageTrainConfig) -> dict[str, Any]:
        """Train one image row for one seed and score it."""
        nonlocal data
        if data is None:  # the same crops for every row: load them once
            data = load_image_split(config)
        trainer = train_image(config, data=data, **run_start(config.out_dir, resume))
        t0 = time.time()
        res = evaluate_image_model(trainer.model, trainer.test_set, stride=test_stride, device=trainer.device,
                                   progress=False)
        return {
            "model": entry.key,  # the row's name (the image-regression / image-cls2d+multiroot)
            "network": entry.model,
            "variant": entry.key,
            "label": entry.label,
            "options": config.model.options,
            "input": trainer.test_set.source,
            "seed": config.seed,
            **metrics_row(res),
            "grid_acc_pct": res["grid_acc_pct"],
            "grid_acc1_pct": res["grid_acc1_pct"],
            "epochs": trainer.epoch,
            "train_seconds": float(sum(r["train_seconds"] for r in trainer.history)),
            "eval_seconds": time.time() - t0,
        }

    rows = []
    for entry in rows_to_run:
        for seed in range(base.seed, base.seed + seeds):
            run_dir = Path(out) / entry.key / f"seed{seed}"
            config = replace(base, seed=seed, out_dir=str(run_dir),
                             model=replace(base.model, name=entry.model, options=row_options(entry, shared)))
            row = row_for(run_dir, config, test_stride, partial(compute, entry, config))
            print(f"{entry.label}, seed {seed}: P1 {row['p1_mm']:.2f} mm, P2 {row['p2_mm']:.2f} mm, "
                  f"grid accuracy {row['grid_acc_pct']:.1f} %", flush=True)
            rows.append(row)
    return write_suite(report, SUITE, command, base.device, suite_budget(base, seeds, test_stride), rows, render,
                       part="image")


def render(doc: dict[str, Any]) -> str:
    """The suite's Markdown: the 2D-input part, its per-action models and the image part, each under its own
    header."""
    image_rows = [r for r in doc["rows"] if r.get("network") == IMAGE_MODEL]
    sh_rows = [r for r in doc["rows"] if r.get("network") != IMAGE_MODEL and "@" not in r["variant"]]
    per_action = [r for r in doc["rows"] if r.get("network") != IMAGE_MODEL and "@" in r["variant"]]
    sections = []
    if sh_rows and "budget" in doc:
        sections.append(render_sh({**doc, "rows": sh_rows}))
    if per_action and PER_ACTION in doc.get("parts", {}):
        sections.append(render_per_action(doc["parts"][PER_ACTION], per_action, sh_rows))
    if image_rows and "image" in doc.get("parts", {}):
        sections.append(render_images(doc["parts"]["image"], image_rows))
    return "\n".join(sections)


def render_sh(doc: dict[str, Any]) -> str:
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


def render_per_action(part: dict[str, Any], rows: list[dict[str, Any]], all_rows: list[dict[str, Any]]) -> str:
    """Networks trained on some actions only (the paper's protocol) beside the all-actions network of the
    same row on those actions."""
    b = part["budget"]
    budget_text = (
        f"{b['epochs']} epochs, stride {b['stride']}, batch {b['batch_size']}, {b.get('optimizer', 'adam')} lr "
        f"{b['lr']:g} x{b['lr_decay']:g} every {b.get('lr_step_epochs', 0)} epochs, hidden {b['model']['hidden']}; "
        f"trained and tested on {', '.join(b['actions'])} only; {b['seeds']} seed(s) from seed {b['seed']}."
    )
    lines = ["## Method 3 on 2D input, one network per action (the paper's protocol)", "",
             *header_lines(part, budget_text)]
    everything = group_rows(all_rows)
    table_rows = []
    for rs in group_rows(rows).values():
        key, _, tag = rs[0]["variant"].partition("@")
        actions = tag.split("+")
        whole = everything.get((key, rs[0]["input"]), [])
        table_rows.append([rs[0]["label"], rs[0]["input"].upper(), mean_sd([r["p1_mm"] for r in rs]),
                           mean_sd([r["p2_mm"] for r in rs]),
                           mean_sd([np.mean([r["p1_per_action_mm"][a] for a in actions]) for r in whole])])
    lines += table(["Model", "2D", "P1", "P2", "P1 of the all-actions network on the same actions"], table_rows)
    return "\n".join(lines)


def render_images(part: dict[str, Any], image_rows: list[dict[str, Any]]) -> str:
    """The image part: its setup, averages with the grid accuracy, and P1 per action beside Table 1."""
    b = part["budget"]
    m = b["model"]
    budget_text = (
        f"{b['epochs']} epochs, batch {b['batch_size']}, {b['optimizer']} lr {b['lr']:g} x{b['lr_decay']:g} every "
        f"{b['lr_step_epochs']} epochs, weight decay {b['weight_decay']:g}; {m['image_size']} px crops (random in "
        f"training, centre at test) of the crops resized to 250/225 of that, PCA colour noise {b['color_aug']:g}; "
        f"grid {m['grid']}x{m['grid']}, conv width x{m['conv_width']:g}, fc width {m['fc_width']}, dropout "
        f"{m['dropout']:g}; train `{Path(b['train_images']).name}` {','.join(b['train_subjects'])}, test "
        f"`{Path(b['test_images'] or b['train_images']).name}` {','.join(b['test_subjects'])}, actions "
        f"{','.join(b.get('actions', [])) or 'all'} (one network for all of them); {b['seeds']} seed(s) from seed "
        f"{b['seed']}; final-epoch weights."
    )
    lines = ["## Method 3, the image CNN on ImageSets", "", *header_lines(part, budget_text)]
    if any(r["input"] == "render" for r in image_rows):
        lines += ["Rows with input RENDER are trained and scored on crops rendered from Human3.6M poses: they are a "
                  "functional check of the image path (crops, colour noise, 2D grid part, fusion, scale recovery), "
                  "not comparable with the paper's 117.3 mm (Table 1: real video frames, one network per action).",
                  ""]
    groups = group_rows(image_rows)
    rows = [
        [rs[0]["label"], rs[0]["input"].upper(), mean_sd([r["p1_mm"] for r in rs]), mean_sd([r["p2_mm"] for r in rs]),
         mean_sd([r["grid_acc_pct"] for r in rs]), mean_sd([r["grid_acc1_pct"] for r in rs]),
         f"{sum(r['train_seconds'] for r in rs) / len(rs) / 60:.0f} min"]
        for rs in groups.values()
    ]
    lines += ["### Average errors (mm) and 2D grid accuracy (% of joints)", ""]
    lines += table(["Model", "input", "P1", "P2", "grid acc", "grid acc ±1 cell", "train time"], rows)
    actions = [a for a in CANONICAL_ACTIONS if any(a in r["p1_per_action_mm"] for r in image_rows)]
    lines += ["### Protocol 1 per action (mm; published: Table 1, video frames, one network per action)", ""]
    rows = [[f"{rs[0]['label']} ({rs[0]['input'].upper()})",
             *(mean_sd([r["p1_per_action_mm"].get(a) for r in rs]) for a in actions),
             mean_sd([r["p1_mm"] for r in rs])] for rs in groups.values()]
    rows.append(["*published, Table 1*", *(f"{PUBLISHED_TABLE1[a]:.2f}" for a in actions),
                 f"{PUBLISHED_TABLE1['average']:.2f}"])
    lines += table(["Model", *(ACTION_ABBREVIATIONS[a] for a in actions), "Avg"], rows)
    return "\n".join(lines)
