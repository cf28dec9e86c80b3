"""What every benchmark suite shares: the run header, the cached-row rule, results rows, the report writer.

- One flag vocabulary: `--out` (folder of the rows' run folders), `--report` (Markdown file; the suite's
  JSON is written beside it), `--eval-stride` (per-epoch monitoring), `--test-stride` (final scoring:
  frame pairs (t, t+1) of every N-th test frame, `evaluation.scored_frames`), `--seeds N`, `--resume`.
- One cached-row rule: a row's run folder holds `bench_row.json` with the row and the budget it was
  trained under; the row is reused when that budget equals the requested one (`budget_of`: the run
  configuration without the fields that do not change a result), so rows can be trained by separate
  or parallel invocations and collected by a final one.
- One results format: `docs/results/<suite>.json` = {suite, command, machine, date, budget, rows}, one
  row per trained model and seed with `model`, `input`, `seed` and metrics in snake_case with their unit.
  Rows of earlier invocations of the same suite (another 2D input, say) are kept; a re-scored row
  replaces its namesake. The Markdown table beside it is rendered from all rows. A suite with parts under
  separate budgets adds `parts` = {part: {command, machine, date, budget}} (`write_suite`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bonelift.config import RunConfig
from bonelift.datasets.virtual import ViewConfig
from bonelift.errors import DataError, OptionError
from bonelift.io import load_json, writable_dir, writable_file, write_json, write_text
from bonelift.models import build_model
from bonelift.runtime import machine

ROW_FILE = "bench_row.json"
ROW_KEY = ("model", "variant", "input", "seed")  # what makes a row unique within a suite
# Fields added after rows were stored, with the value every earlier run had: left out of a budget at that
# value, so earlier rows stay reusable (method 3's optimiser and staircase schedule).
# The video runs' training views likewise (real cameras, 2D as loaded, until issue 17).
ADDED_FIELDS: dict[str, object] = {"optimizer": "adam", "momentum": 0.9, "lr_step_epochs": 0,
                                   "views": dataclasses.asdict(ViewConfig()), "precise_bn": 0,
                                   "actions": (), "precision": "fp32", "flip_mode": "coin", "lr_final_as_epochs": 0,
                                   "optimizer_impl": "default", "kernels": "reference"}
ADDED_MODEL_FIELDS: dict[str, object] = {"reframe": False}  # the same inside the model configuration


def add_common_arguments(p: argparse.ArgumentParser, out: str, report: str, test_stride: int = 1) -> None:
    """The flags every suite has, spelt alike."""
    p.add_argument(
        "--out", "--runs", dest="bench_out", default=out, help=f"folder of the rows' run folders (default: {out})"
    )
    p.add_argument(
        "--report",
        "--doc",
        dest="report",
        default=report,
        help=f"Markdown report; the suite's JSON is written beside it (default: {report})",
    )
    p.add_argument(
        "--test-stride",
        type=int,
        default=test_stride,
        help="score frame pairs (t, t+1) of every N-th test frame t (protocol: 1)",
    )
    p.add_argument("--seeds", type=int, default=1, help="train every row with seeds --seed .. --seed + N - 1")
    p.add_argument(
        "--resume", action="store_true", help="continue unfinished rows; rows scored under the same budget are reused"
    )


def command_line(argv: Iterable[str]) -> str:
    return "bonelift " + shlex.join(list(argv))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parameter_count(model: Any) -> int:
    """Parameters of the network a model configuration builds (shapes only: built on the meta device)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(model).parameters())


def matched_width(model: Any, width: str, target: int, step: int = 8) -> int:
    """The value of `model`'s width field `width` (a multiple of `step`) whose parameter count is closest to
    `target`: a capacity control's width. Parameters grow about quadratically in the width, so one square-root
    scaling guesses it and the neighbours decide."""
    own = getattr(model, width)
    guess = max(step, round(own * (target / parameter_count(model)) ** 0.5 / step) * step)
    widths = [w for w in range(guess - 4 * step, guess + 5 * step, step) if w > 0]
    return min(widths, key=lambda w: abs(parameter_count(dataclasses.replace(model, **{width: w})) - target))


def budget_of(config: RunConfig) -> dict[str, Any]:
    """A run's configuration as JSON types, without the fields that do not change its result."""
    d = json.loads(json.dumps(config.to_dict()))
    for key in ("device", "out_dir", "data_root"):
        d.pop(key, None)
    for key in ("confidence", "input_layout", "output_layout"):  # resolved from the data when training starts
        d.get("model", {}).pop(key, None)
    return canonical_budget(d)


_ADDED_JSON = json.loads(json.dumps(ADDED_FIELDS))  # as budgets hold them: tuples are lists after a JSON trip
_ADDED_MODEL_JSON = json.loads(json.dumps(ADDED_MODEL_FIELDS))


def canonical_budget(budget: dict[str, Any]) -> dict[str, Any]:
    """`budget` (JSON types) without the fields added later at the value every earlier run had, in it and in the
    run budgets it holds (a suite of several recipes keeps one per recipe), so budgets written before or after a
    field was added compare equal."""
    d = {k: canonical_budget(v) if isinstance(v, dict) and "model" in v else v for k, v in budget.items()}
    for key, old in _ADDED_JSON.items():
        if key in d and d[key] == old:
            d.pop(key)
    if isinstance(d.get("model"), dict):
        d["model"] = {k: v for k, v in d["model"].items() if not (k in _ADDED_MODEL_JSON and v == _ADDED_MODEL_JSON[k])}
    return d


def run_start(run_dir: str | Path, resume: bool) -> dict[str, bool]:
    """`resume`/`overwrite` for training a bench row into `run_dir`: with the bench's --resume, a run with a
    checkpoint continues and one stopped before its first checkpoint (nothing to continue) starts again; without
    it, an existing run is refused (by the trainer) rather than replaced."""
    has_checkpoint = (Path(run_dir) / "last.pt").is_file()
    return {"resume": resume and has_checkpoint, "overwrite": resume and not has_checkpoint}


def cached_row(run_dir: str | Path, budget: dict[str, Any], test_stride: int) -> dict[str, Any] | None:
    """The row scored earlier in `run_dir` under exactly this budget and test stride, else None."""
    path = Path(run_dir) / ROW_FILE
    if not path.is_file():
        return None
    saved = load_json(path)
    if (
        canonical_budget(saved.get("budget", {})) == canonical_budget(budget)
        and saved.get("test_stride") == test_stride
    ):
        return saved["row"]
    return None


def store_row(run_dir: str | Path, budget: dict[str, Any], test_stride: int, row: dict[str, Any]) -> None:
    write_json(Path(run_dir) / ROW_FILE, {"budget": budget, "test_stride": test_stride, "row": row})


def row_for(run_dir: str | Path, config: Any, test_stride: int, compute: Callable[[], dict[str, Any]]
            ) -> dict[str, Any]:
    """The one caching rule of every suite: the row scored earlier in `run_dir` under `config`'s budget and this
    test stride, else `compute()` (train and score), stored for the next run."""
    budget = budget_of(config)
    row = cached_row(run_dir, budget, test_stride)
    if row is None:
        row = compute()
        store_row(run_dir, budget, test_stride, row)
    return row


def suite_budget(base: Any, seeds: int, test_stride: int) -> dict[str, Any]:
    """A suite's budget header: the shared run configuration (network name `*`: rows set their own), seeds, stride."""
    shared = dataclasses.replace(base, model=dataclasses.replace(base.model, name="*"))
    return {**budget_of(shared), "seeds": seeds, "test_stride": test_stride}


def metrics_row(results: dict[str, Any]) -> dict[str, Any]:
    """The schema's metric columns (mm, %) from an `evaluation.score` result.

    `illegal_pct` is the share of frames with an elbow or knee outside its normal range of motion
    (`metrics.range_of_motion_percentage`, a measure real poses pass); `eq1_illegal_pct` is eq. 1's
    bent-backwards test, the angle loss's own statistic (rows measured before December 2026 had that as `illegal_pct`).
    """
    return {
        "p1_mm": results["p1"]["average"],
        "p2_mm": results["p2"]["average"],
        "n_mpjpe_mm": results["n_mpjpe"],
        "mpjve_mm": results["mpjve"],
        "hard_joints_mm": results["hard_joints"]["average"],
        "bone_rmse_mm": results["bone_rmse"]["average"],
        "bone_std_mm": results["bone_std"]["average"],
        "symmetry_mm": results["symmetry"]["average"],
        "illegal_pct": results["range_of_motion_pct"]["any"],
        "eq1_illegal_pct": results["illegal_angles_pct"]["any"],
        "frames": results["frames"],
        "p1_per_action_mm": {k: v for k, v in results["p1"].items() if k not in ("average", "frame_average")},
        "hard_joints_per_joint_mm": {k: v for k, v in results["hard_joints"].items() if k != "average"},
        "bone_rmse_per_limb_mm": {k: v for k, v in results["bone_rmse"].items() if k != "average"},
    }


def check_common_arguments(args: argparse.Namespace) -> None:
    """Refuse suite flags that would write a results file about nothing (`--seeds 0`), score nothing, or write
    where nothing can be written (before any training)."""
    for flag, value in (("--seeds", args.seeds), ("--test-stride", args.test_stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"{flag} must be a whole number greater than 0, got {value!r}")
    writable_file(args.report, "report (--report)")
    writable_dir(args.bench_out, "runs folder (--out)")


def _old_suite(js: Path, suite: str) -> dict[str, Any]:
    if not js.is_file():
        return {}
    loaded = load_json(js)
    return loaded if isinstance(loaded, dict) and loaded.get("suite") == suite else {}


SEED_FIELDS = ("seed", "seeds")  # which seeds a suite ran: not part of a row's budget


def _part_header(old: dict[str, Any], part: str | None) -> dict[str, Any]:
    """The header of `part` (None: the default part, at the top level) in a suite document, or {}."""
    return old.get("parts", {}).get(part, {}) if part is not None else old


def _seeds(budget: dict[str, Any] | None) -> range | None:
    """The seeds a header's budget covers, None where it does not say."""
    if not budget or not all(isinstance(budget.get(k), int) for k in SEED_FIELDS):
        return None
    return range(budget["seed"], budget["seed"] + budget["seeds"])


def check_report(report: str | Path, suite: str, budget: dict[str, Any], part: str | None = None) -> None:
    """Refuse (before any training) to merge rows into a results file whose header says another budget: its rows
    were measured under that one, and a new header over them would misdescribe them."""
    js = Path(report).with_suffix(".json")
    header = _part_header(_old_suite(js, suite), part)
    if "budget" not in header:
        return
    # Which seeds ran is not part of a row's budget: another seed's rows join the same table (paired by seed).
    before, now = ({k: v for k, v in canonical_budget(json.loads(json.dumps(b))).items() if k not in SEED_FIELDS}
                   for b in (header["budget"], budget))
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        diff = ", ".join(f"{k}: {before.get(k)!r} there, {now.get(k)!r} here" for k in changed)
        raise DataError(js, f"holds rows measured under another budget ({diff}); refusing to rewrite it: pass "
                            "another --report, or delete it to start the suite anew")
    held, new = _seeds(header["budget"]), _seeds(budget)
    if held is not None and new is not None and (new.start > held.stop or held.start > new.stop):
        raise DataError(js, f"holds seeds {held.start}..{held.stop - 1}; seeds {new.start}..{new.stop - 1} would "
                            "leave a gap its header cannot describe: run the seeds between too, or pass another "
                            "--report")


def seed_range(before: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, int]:
    """`seed`/`seeds` of a header covering the seeds of an earlier run and of this one (`--seed 2 --seeds 1` after
    `--seeds 2` makes 0..2); this run's alone where the earlier header is missing or lacks them."""
    held, new = _seeds(before), _seeds(now)
    if held is None or new is None:
        return {k: now[k] for k in SEED_FIELDS if k in now}
    low, high = min(held.start, new.start), max(held.stop, new.stop)
    return {"seed": low, "seeds": high - low}


def _key(row: dict[str, Any]) -> tuple:
    return tuple(row.get(k) for k in ROW_KEY)


def write_suite(
    report: str | Path,
    suite: str,
    command: str,
    device: str,
    budget: dict[str, Any],
    rows: list[dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    part: str | None = None,
) -> dict[str, Any]:
    """Merge `rows` into `<report>.json` (same suite), then write the Markdown `render(document)` beside it.

    A suite made of parts trained under different budgets (method 3: 2D input and images) keeps one header
    (command, machine, date, budget) per part: the default part's at the top level, a named `part`'s under
    `parts[part]`; writing one part keeps the other parts' headers and rows. A file holding only named parts
    carries the first one's header at the top level too, so every results file has the schema's header.
    """
    report = Path(report)
    js = report.with_suffix(".json")
    check_report(report, suite, budget, part)
    old = _old_suite(js, suite)
    new_keys = {_key(r) for r in rows}
    kept = [r for r in old.get("rows", []) if _key(r) not in new_keys]
    header = {"command": command, "machine": machine(device), "date": now(),
              "budget": {**budget, **seed_range(_part_header(old, part).get("budget"), budget)}}
    doc: dict[str, Any] = {"suite": suite}
    if part is None:
        doc.update(header)
    else:  # the top level keeps the default part's header; a file of named parts only repeats the first one's
        doc.update({k: old[k] for k in header if k in old} or header)
    parts = {**old.get("parts", {}), **({part: header} if part is not None else {})}
    if parts:
        doc["parts"] = parts
    doc["rows"] = kept + rows
    write_json(js, doc)
    write_text(report, render(doc))
    return doc


def mean_sd(values: list[float]) -> str:
    """ "m ± sd (n)" of finite values, or the value alone for one seed."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f} ({len(v)})"


def paired_difference(rows: list[dict[str, Any]], base: list[dict[str, Any]], key: str) -> str:
    """ "d ± sd (n)" of `key` minus the `base` row of the same seed (paired seeds: same data order and init), with
    "not resolved" when the mean is within 2 sd of zero (or only one pair); "–" without pairs."""
    by_seed = {r["seed"]: r.get(key) for r in base}
    d = np.asarray([r[key] - by_seed[r["seed"]] for r in rows
                    if by_seed.get(r["seed"]) is not None and r.get(key) is not None], float)
    if len(d) == 0:
        return "–"
    sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    text = f"{d.mean():+.2f} ± {sd:.2f} ({len(d)})" if len(d) > 1 else f"{d.mean():+.2f} (1)"
    return text + (" not resolved" if not abs(d.mean()) > 2 * sd else "")


def group_rows(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("variant", "input")) -> dict[tuple, list[dict]]:
    """Rows grouped by `keys` (seeds of one model together), in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def header_lines(doc: dict[str, Any], budget_text: str) -> list[str]:
    """Command, machine, date and budget of a suite document (and its note, when it has one)."""
    note = doc["budget"].get("note")
    return [
        f"Command: `{doc['command']}`  ",
        f"Machine: {doc['machine']}  ",
        f"Date: {doc['date']}  ",
        f"Budget: {budget_text}" + (f"  \nNote: {note}." if note else ""),
        "",
    ]
