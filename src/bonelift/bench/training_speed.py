"""`bonelift bench training-speed`: the same short training of the single-frame `baseline` and the video `tcn`
under several recipes (`--variants`), same seed and data order, on Human3.6M GT 2D.

Why: issue 23 asks for the fastest training recipe that keeps accuracy. A variant names its precision (fp32, or
bf16 under `torch.autocast`) and optionally its batch size, learning rate and optimiser kernel, e.g.
`fp32-b1024-lr2e-3-fused`; the first variant is the reference. Each row reports training throughput (samples per
second of the training epochs alone, monitoring excluded), the final P1 and the training seconds until the
monitored P1 first reached the reference row's final monitored P1 (time to accuracy; none when it never did).
Rows of one seed share the initial weights and the order of the training samples (paired seeds), and every row
trains the same epochs, so a faster recipe finishes sooner. Bare precisions (`fp32,bf16`, the default) are the
suite's precision part; variants that change the recipe are its `recipe` part, under their own header, named
in full (`fp32-b256-lr1e-3`). The machine line of each header says which CPU or GPU the speed belongs to.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from bonelift.bench.common import (
    add_common_arguments,
    budget_of,
    check_report,
    group_rows,
    header_lines,
    mean_sd,
    paired_difference,
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
PRECISIONS = ("fp32", "bf16")
RECIPE = "recipe"  # the suite part of variants that change more than the precision
IMPLS = ("foreach", "fused")  # optimiser kernels a variant may name (`optimizer_impl`; "default" is left out)
# A trailing `-reference` trains with the reference kernels (`kernels`: torch's dropout, rescaled max-norm weights).
VARIANT = re.compile(rf"({'|'.join(PRECISIONS)})(?:-b(\d+))?(?:-lr([0-9.eE+-]+?))?(?:-({'|'.join(IMPLS)}))?"
                     r"(-reference)?")
GRAMMAR = "PRECISION[-bBATCH][-lrLR][-foreach|-fused][-reference]"


# The run options every row takes from the generated flags: every field of a training run except those set per row
# (precision, run folder), the fixed input (Human3.6M GT 2D) and those whose default differs between the two kinds.
# A variant may override batch size, learning rate and optimiser kernel.
PER_KIND = ("precision", "out_dir", "dataset", "keypoints", "lr_decay", "flip")
SHARED = tuple(f.name for f in fields(RunConfig) if f.name not in PER_KIND)
DEFAULTS = TrainConfig(epochs=2, stride=200, batch_size=256, eval_stride=50, device="cpu")


def add_parser(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser("training-speed", help="training recipes (fp32/bf16, batch, lr, optimiser kernel): "
                                                  "throughput, P1 and time to the reference's P1 (baseline, tcn)")
    add_arguments(p, DEFAULTS, only=SHARED)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated ({', '.join(MODELS)})")
    p.add_argument("--variants", default=",".join(PRECISIONS),
                   help=f"comma-separated recipes {GRAMMAR}, e.g. "
                        "fp32-reference,fp32-b1024-lr2e-3; the first is the reference; unnamed parts take the "
                        "flags' values; -reference: the reference training kernels (--kernels)")
    p.add_argument("--video-stride", type=int, default=400, help="tcn: one training window per N-th frame "
                                                                  "(--stride is the baseline's)")
    add_common_arguments(p, "runs/bench_training_speed", "docs/results/training_speed.md", test_stride=10)


def configs(args: argparse.Namespace) -> dict[str, RunConfig]:
    """The suite's configuration of each model (a variant changes precision, batch, learning rate, kernel)."""
    video = from_args(VideoTrainConfig(out_dir=""), args)
    return {
        "baseline": from_args(replace(DEFAULTS, model=ModelConfig(name="baseline"), out_dir=""), args),
        "tcn": configure(VideoTrainConfig, video, {"stride": args.video_stride}),
    }


@dataclass(frozen=True)
class Variant:
    """One recipe of `--variants`: what it changes in the suite's configuration (None: the flag's value)."""

    precision: str
    batch_size: int | None = None
    lr: float | None = None
    optimizer_impl: str | None = None
    kernels: str | None = None

    @property
    def changes(self) -> dict[str, Any]:
        """The run options this recipe sets beyond the precision."""
        return {f.name: getattr(self, f.name) for f in fields(self)[1:] if getattr(self, f.name) is not None}

    @property
    def bare(self) -> bool:
        """Only the precision named: a row of the suite's precision part."""
        return not self.changes

    def apply(self, base: RunConfig) -> RunConfig:
        return replace(base, precision=self.precision, **self.changes)


def parse_variants(raw: str) -> list[Variant]:
    """`--variants` as recipes, the reference first; a malformed name is an OptionError."""
    names = [v.strip() for v in raw.split(",") if v.strip()]
    out = []
    for name in names:
        m = VARIANT.fullmatch(name)
        try:
            lr = float(m.group(3)) if m and m.group(3) else None
        except ValueError:
            m = None
        if m is None:
            raise OptionError(f"--variants: {name!r} is not {GRAMMAR} with "
                              f"PRECISION one of {', '.join(PRECISIONS)} (e.g. fp32-b1024-lr2e-3)")
        out.append(Variant(m.group(1), int(m.group(2)) if m.group(2) else None, lr, m.group(4),
                           "reference" if m.group(5) else None))
    if not out:
        raise OptionError("--variants names no recipe")
    return out


def variant_name(cfg: RunConfig, recipe: bool) -> str:
    """A row's name: its precision, and in the recipe part its batch, learning rate, non-default optimiser kernel
    and reference kernels too (full names, so a recipe row never shares its name with a precision-part row)."""
    if not recipe:
        return cfg.precision
    mantissa, _, exponent = f"{cfg.lr:.6e}".partition("e")
    lr = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"  # 0.002 -> 2e-3
    impl = "" if cfg.optimizer_impl == "default" else f"-{cfg.optimizer_impl}"
    kernels = "-reference" if cfg.kernels == "reference" else ""
    return f"{cfg.precision}-b{cfg.batch_size}-lr{lr}{impl}{kernels}"


def _train_row(model: str, variant: str, cfg: RunConfig, splits: Any, test_stride: int,
               progress: bool) -> dict[str, Any]:
    """Train one row, time its training epochs and score its final weights."""
    if progress:
        print(f"[bench training-speed] {model} {variant} seed {cfg.seed}", file=sys.stderr)
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
        "variant": variant,
        "input": "gt",
        "precision": cfg.precision,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "optimizer_impl": cfg.optimizer_impl,
        "kernels": cfg.kernels,
        "seed": cfg.seed,
        "samples_per_s": steps_per_epoch * cfg.batch_size * cfg.epochs / train_s,
        "train_seconds": train_s,
        "p1_mm": res["p1"]["average"],
        "p2_mm": res["p2"]["average"],
        "monitor_curve": curve,  # [cumulative training seconds, monitored P1 mm] after each epoch
    }


def _time_to_accuracy(rows: list[dict[str, Any]], reference: dict[str, str]) -> None:
    """Add `reference` (the reference variant of the row's model) and `seconds_to_reference_p1`: training seconds
    until the monitored P1 first reached the final monitored P1 of the reference row of the same model and seed
    (None when it never did)."""
    final = {(r["model"], r["seed"]): r["monitor_curve"][-1][1] for r in rows if r["variant"] == reference[r["model"]]}
    for r in rows:
        target = final.get((r["model"], r["seed"]))
        hits = [s for s, p1 in r["monitor_curve"] if target is not None and p1 <= target + 1e-9]
        r["reference"] = reference[r["model"]]
        r["seconds_to_reference_p1"] = hits[0] if hits else None


def main(args: argparse.Namespace, command: str) -> Path:
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise OptionError(f"--models must name some of {', '.join(MODELS)}, got {args.models!r}")
    variants = parse_variants(args.variants)
    recipe = not all(v.bare for v in variants)
    part = RECIPE if recipe else None
    bases = {m: c for m, c in configs(args).items() if m in models}
    plan = []
    for model, base in bases.items():
        for v in variants:
            cfg = v.apply(base)
            cfg.validate()  # a variant's batch or learning rate out of range: before any training
            plan.append((model, variant_name(cfg, recipe), cfg))
    reference = {model: next(name for m, name, _ in plan if m == model) for model in bases}
    if len({(m, name) for m, name, _ in plan}) < len(plan):
        raise OptionError(f"--variants {args.variants!r} names one recipe twice (with the flags' values filled in)")
    budget = {**{m: budget_of(c) for m, c in bases.items()}, "seeds": args.seeds, "test_stride": args.test_stride}
    check_report(args.report, SUITE, budget, part)  # before any training
    splits = None
    rows: list[dict[str, Any]] = []
    for model, base in bases.items():
        for seed in range(base.seed, base.seed + args.seeds):
            for name, variant_cfg in ((n, c) for m, n, c in plan if m == model):
                run_dir = Path(args.bench_out) / model / name / f"seed{seed}"
                cfg = replace(variant_cfg, seed=seed, out_dir=str(run_dir))

                def compute(model: str = model, name: str = name, cfg: RunConfig = cfg) -> dict[str, Any]:
                    nonlocal splits
                    splits = splits or (run_split(cfg, cfg.train_subjects), run_split(cfg))
                    return _train_row(model, name, cfg, splits, args.test_stride, progress=True)

                rows.append(row_for(run_dir, cfg, args.test_stride, compute))
    _time_to_accuracy(rows, reference)
    write_suite(args.report, SUITE, command, args.device, budget, rows, render, part)
    return Path(args.report)


def render(doc: dict[str, Any]) -> str:
    """The precision part (bare variants) and the recipe part, each under its own header."""
    sections = []
    for part, header in ((None, doc), (RECIPE, doc.get("parts", {}).get(RECIPE))):
        rows = [r for r in doc["rows"] if (r["variant"] in PRECISIONS) == (part is None)]
        if rows and header and "budget" in header:
            sections.append(_render_part(part, header, rows))
    return "\n".join(sections)


def _render_part(part: str | None, header: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    b = header["budget"]
    parts = [f"{m}: {c['epochs']} epoch(s), every {c['stride']}-th training frame, batch {c['batch_size']}, "
             f"lr {c['lr']}" for m, c in b.items() if isinstance(c, dict)]
    per_row = " (a row's own batch, learning rate, optimiser and training kernels are in its columns)" if part else ""
    budget_text = ("; ".join(parts) + f"{per_row}; Human3.6M GT 2D, {b['seeds']} seed(s), paired (same initial "
                   "weights and sample order in every row of a seed); final P1 on frame pairs of every "
                   f"{b['test_stride']}-th test frame. Throughput: samples per second of the training epochs "
                   "(monitoring excluded). Time to accuracy: training seconds until the monitored P1 (after each "
                   "epoch) reached the reference row's final monitored P1. Paired difference: mean ± sd over seeds "
                   "of (row - reference row of the same seed), 'not resolved' when within 2 sd of zero.")
    title = "Training recipes: batch, learning rate, optimiser, kernels" if part else "Training speed: fp32 vs bf16 " \
                                                                                   "(torch.autocast)"
    lines = [f"## {title}", "", *header_lines(header, budget_text)]
    body = []
    groups = group_rows(rows, ("model", "variant"))
    for (model, variant), rs in groups.items():
        # Rows written before the recipe axis had fp32 as reference and named its time `seconds_to_fp32_p1`.
        ref_name = rs[0].get("reference", "fp32")
        ref = groups.get((model, ref_name), [])
        ratio = _ratio([r["samples_per_s"] for r in rs], [r["samples_per_s"] for r in ref])
        tta = [r.get("seconds_to_reference_p1", r.get("seconds_to_fp32_p1")) for r in rs]
        ref_tta = [r.get("seconds_to_reference_p1", r.get("seconds_to_fp32_p1")) for r in ref]
        reached = [t for t in tta if t is not None]
        body.append([model, variant, rs[0]["precision"], str(rs[0]["batch_size"]),
                     f"{rs[0].get('lr', b[model]['lr']):g}", rs[0].get("optimizer_impl", "default"),
                     rs[0].get("kernels", "reference"),  # rows before the kernels option trained with these
                     mean_sd([r["samples_per_s"] for r in rs]), f"{ratio:.2f}x", mean_sd([r["p1_mm"] for r in rs]),
                     paired_difference(rs, ref, "p1_mm") if variant != ref_name else "reference",
                     mean_sd(reached) + (f" ({len(tta) - len(reached)} never)" if len(reached) < len(tta) else "")
                     if reached else "never",
                     f"{_ratio(ref_tta, tta):.2f}x" if len(reached) == len(tta) else "–"])
    lines += table(["Model", "Variant", "Precision", "Batch", "LR", "Optimiser", "Kernels", "Samples/s", "vs reference",
                    "P1 (mm)", "P1 - reference (paired)", "Time to reference P1 (s)", "vs reference (time)"], body)
    return "\n".join(lines)


def _ratio(values: list[float | None], base: list[float | None]) -> float:
    """Mean of `values` over mean of `base` (NaN when either has none)."""
    v, w = [x for x in values if x is not None], [x for x in base if x is not None]
    return (sum(v) / len(v)) / (sum(w) / len(w)) if v and w and sum(w) else math.nan


__all__ = ["add_parser", "main"]
