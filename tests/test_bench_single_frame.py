"""`bonelift bench single-frame`: suite selection, one budget, seeds, results JSON, row reuse, report rendering."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bonelift.bench import single_frame
from bonelift.bench.common import budget_of, metrics_row
from bonelift.cameras import Camera
from bonelift.cli import main
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, PoseSequence, load_split
from bonelift.errors import BoneliftError, DataError
from bonelift.evaluation import score, subject_action_errors
from bonelift.skeletons import H36M17, HUMANEVA15
from tests.conftest import make_h36m


def _camera() -> Camera:
    z = np.zeros
    return Camera("c0", np.eye(3), z(3), np.array([1000.0, 1000.0]), np.array([500.0, 500.0]), z(3), z(2), 1000, 1000)


def _seq(subject: str, action: str, poses: np.ndarray, layout=H36M17) -> PoseSequence:
    kps = np.zeros(poses.shape[:2] + (2,), np.float32)
    return PoseSequence(subject, action, action, _camera(), kps, layout, poses.astype(np.float32), layout)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    single_frame.add_parser(parser.add_subparsers())
    return parser.parse_args(["single-frame", *argv])


def test_suite_selection_and_dataset_defaults() -> None:
    assert [e.key for e in single_frame.suite_entries("h36m", "basic,asn")] == ["basic", "asn"]
    with pytest.raises(BoneliftError, match="unknown bench models"):
        single_frame.suite_entries("h36m", "basic,nope")
    base = single_frame.base_config(_args("--epochs", "3", "--stride", "7"))
    assert (base.epochs, base.stride, base.batch_size, base.keypoints, base.model.hidden) == (3, 7, 256, "sh", 1024)
    he = single_frame.base_config(_args("--dataset", "humaneva"))
    assert he.keypoints == "gt" and he.train_subjects[0] == "Train/S1" and he.test_subjects[0] == "Validate/S1"


def test_table_rows_are_generated_under_both_readings_and_both_initialisations() -> None:
    suite = {e.key: e for e in single_frame.suite_entries("h36m", None)}
    refining = [e for e in single_frame.TABLE_ROWS if single_frame.has_refinement(e.model)]
    assert [e.key for e in refining] == ["hsn-single", "hsn-dual-nores", "hsn-dual", "basic-ref", "basic-ref-amstar",
                                         "basic-ref-am", "asn"]
    for row in single_frame.TABLE_ROWS:
        assert suite[row.key] == row  # the default reading keeps the row's name and options
        assert suite[f"{row.key}-pytorch-init"].options == {**row.options, "init": "pytorch"}
        for key in (f"{row.key}-abs", f"{row.key}-abs-pytorch-init"):
            assert (key in suite) == (row in refining)
    assert suite["hsn-dual-nores-abs-pytorch-init"].options == {"refine": "absolute", "init": "pytorch"}
    assert suite["asn-abs"].label == "M2 ASN (AM+REM), absolute refinement head"
    assert len(suite) == 2 * len(single_frame.TABLE_ROWS) + 2 * len(refining) + 2 + 1  # + width controls, v0
    assert [e.key for e in single_frame.HUMANEVA_SUITE] == ["basic", "asn"]


@pytest.mark.parametrize("hidden", [1024, 256])
@pytest.mark.parametrize("key, target", [("basic-cap-asn", "asn"), ("basic-cap-asn", "basic-ref"),
                                         ("basic-cap-hsn-dual", "hsn-dual")])
def test_capacity_controls_match_their_networks_parameter_count_within_two_percent(key, target, hidden) -> None:
    suite = {e.key: e for e in single_frame.suite_entries("h36m", None)}
    model = replace(single_frame.base_config(_args(*_argv("unused"))).model, hidden=hidden)
    control, network, basic = (single_frame.parameter_count(single_frame.row_model(model, suite[k]))
                               for k in (key, target, "basic"))
    assert abs(control / network - 1) < 0.02 and network > 1.2 * basic


def test_committed_rows_keep_their_names_and_options() -> None:
    """Every row of the committed results is still a suite entry with the options it was trained with, so a
    rerun reuses (or reproduces) it rather than training another network under its name."""
    saved = json.loads((Path(__file__).parents[1] / "docs/results/single_frame_h36m.json").read_text())
    suite = {e.key: e for e in single_frame.suite_entries("h36m", None)}
    current = [r for r in saved["rows"] if not r["variant"].startswith("v0/")]  # v0/: an earlier build's rows
    assert current
    for r in current:
        assert (suite[r["variant"]].model, suite[r["variant"]].options) == (r["model"], r["options"])


def test_humaneva_subjects_must_name_split() -> None:
    with pytest.raises(BoneliftError, match="Train/S<n>"):
        load_split("humaneva", "/nonexistent", "gt", ("S1",))


def test_subject_action_errors_groups_by_subject_and_action() -> None:
    rng = np.random.default_rng(0)
    gt = [rng.normal(size=(n, 15, 3)) for n in (4, 6, 5)]
    seqs = [
        _seq("Validate/S1", "Walking", gt[0], HUMANEVA15),
        _seq("Validate/S1", "Jog", gt[1], HUMANEVA15),
        _seq("Validate/S3", "Walking", gt[2], HUMANEVA15),
    ]
    preds = [s.root_relative + np.array([0.01, 0.0, 0.0]) * (i + 1) for i, s in enumerate(seqs)]
    out = subject_action_errors(preds, seqs)
    assert set(out["p1"]) == {"S1 Walking", "S1 Jog", "S3 Walking"}
    assert out["p1"]["S1 Jog"] == pytest.approx(20.0)  # every joint shifted by 2 cm
    assert out["p1"]["S3 Walking"] == pytest.approx(30.0)
    assert out["p2"]["S1 Jog"] == pytest.approx(0.0, abs=1e-3)  # a translation is removed by Procrustes


def test_report_names_models_inputs_seeds_and_published_numbers() -> None:
    rng = np.random.default_rng(1)
    seqs = [_seq("S9", a, rng.normal(size=(5, 17, 3))) for a in ("Walking", "Eating")]
    rows = []
    for seed in (0, 1):
        preds = [s.root_relative + rng.normal(scale=0.02, size=s.root_relative.shape) for s in seqs]
        for entry in (*single_frame.H36M_SUITE[:2], single_frame.suite_entries("h36m", "asn-abs-pytorch-init")[0]):
            rows.append(
                {
                    "model": entry.model,
                    "variant": entry.key,
                    "label": entry.label,
                    "options": entry.options,
                    "input": "sh",
                    "seed": seed,
                    **metrics_row(score(preds, seqs)),
                    "train_seconds": 120.0,
                }
            )
    budget = {**budget_of(single_frame.base_config(_args("--epochs", "2"))), "seeds": 2, "test_stride": 1}
    doc = {
        "command": "bonelift bench single-frame --epochs 2",
        "machine": "m",
        "date": "d",
        "budget": budget,
        "rows": rows,
    }
    text = single_frame.render(doc)
    assert "`bonelift bench single-frame --epochs 2`" in text
    assert "| basic (Martinez et al.) | `baseline` | SH |" in text and "M1 HSN single-channel (SH)" in text
    assert "| `asn` +refine=absolute +init=pytorch | SH |" in text
    p1 = [r["p1_mm"] for r in rows if r["variant"] == "basic"]
    assert f"{np.mean(p1):.2f} ± {np.std(p1, ddof=1):.2f} (2)" in text
    for published in ("66.55", "65.51", "68.66", "22.45", "18.72", "18.53"):
        assert published in text
    assert "right lower leg" in text
    # paired differences of the rows present (identical predictions here: zero, and not resolved)
    assert "| `hsn-single` - `basic` | M1: single-channel refinement | +0.00 ± 0.00 (2) not resolved |" in text
    assert "`hsn-dual` - `basic`" not in text


def test_cli_rejects_unknown_bench_model(capsys) -> None:
    assert main(["bench", "single-frame", "--models", "nope"]) == 2
    assert "unknown bench models" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_trains_every_seed_writes_results_json_and_reuses_scored_rows(tmp_path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=12)
    args = _args(*_argv(str(root)), "--eval-stride", "5")
    base = single_frame.base_config(args)
    entries = single_frame.suite_entries("h36m", "basic,asn")
    report = tmp_path / "results" / "single_frame_h36m.md"
    doc = single_frame.run_bench(base, entries, tmp_path / "runs", report, "bonelift bench single-frame", seeds=2)
    saved = json.loads(report.with_suffix(".json").read_text())
    assert saved["suite"] == "single_frame_h36m" and {"command", "machine", "date", "budget"} <= set(saved)
    assert [(r["model"], r["input"], r["seed"]) for r in saved["rows"]] == [
        ("baseline", "gt", 0),
        ("baseline", "gt", 1),
        ("asn", "gt", 0),
        ("asn", "gt", 1),
    ]
    assert all(np.isfinite(r["p1_mm"]) and np.isfinite(r["p2_mm"]) for r in saved["rows"])
    assert {r["hidden"] for r in saved["rows"]} == {base.model.hidden}
    assert saved["rows"][0]["p1_mm"] != saved["rows"][1]["p1_mm"]  # two seeds, two models

    def no_data(config):
        raise AssertionError("a scored row was trained again")

    again = single_frame.run_bench(base, entries, tmp_path / "runs", report, "again", seeds=2, data=no_data)
    assert [r["p1_mm"] for r in again["rows"]] == [r["p1_mm"] for r in doc["rows"]]
    # a changed budget is not the same row: it needs training (and refuses to clobber the old run) ...
    changed = single_frame.base_config(_args(*_argv(args.data_root), "--eval-stride", "5", "--lr", "0.002"))
    with pytest.raises(BoneliftError, match="holds a run already"):
        single_frame.run_bench(changed, entries[:1], tmp_path / "runs", tmp_path / "other.md", "changed")
    # ... nor may its rows go under the old results file's header (checked before any training)
    before = report.with_suffix(".json").read_text()
    with pytest.raises(DataError, match=r"single_frame_h36m\.json: holds rows measured under another budget "
                                        r"\(lr: 0\.001 there, 0\.002 here\); refusing to rewrite it"):
        single_frame.run_bench(changed, entries[:1], tmp_path / "runs2", report, "changed", seeds=2, data=no_data)
    assert report.with_suffix(".json").read_text() == before
    # another seed joins the same table (rows paired by seed); the header then covers seeds 0..2
    third = replace(base, seed=2)
    extended = single_frame.run_bench(third, entries, tmp_path / "runs", report, "third seed", seeds=1)
    assert sorted(r["seed"] for r in extended["rows"]) == sorted([0, 1, 2] * len(entries))
    assert (extended["budget"]["seed"], extended["budget"]["seeds"]) == (0, 3)
    assert [r["p1_mm"] for r in extended["rows"] if r["seed"] < 2] == [r["p1_mm"] for r in doc["rows"]]
    with pytest.raises(DataError, match=r"holds seeds 0\.\.2; seeds 4\.\.4 would leave a gap"):
        single_frame.run_bench(replace(base, seed=4), entries, tmp_path / "runs", report, "gap", data=no_data)


def test_resume_restarts_a_row_stopped_before_its_first_checkpoint(tmp_path) -> None:
    """A bench killed while a row was starting leaves a run folder without weights: --resume trains that row anew
    (nothing to continue); without it the folder is refused, not replaced."""
    root = tmp_path / "h36m"
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=12)
    base = single_frame.base_config(_args(*_argv(str(root)), "--eval-stride", "5"))
    entries = single_frame.suite_entries("h36m", "basic")
    cut = tmp_path / "runs" / "basic" / "seed0"
    cut.mkdir(parents=True)
    (cut / "config.json").write_text("{}")
    with pytest.raises(BoneliftError, match="holds a run already"):
        single_frame.run_bench(base, entries, tmp_path / "runs", tmp_path / "r.md", "cut")
    doc = single_frame.run_bench(base, entries, tmp_path / "runs", tmp_path / "r.md", "cut", resume=True)
    assert len(doc["rows"]) == 1 and np.isfinite(doc["rows"][0]["p1_mm"]) and (cut / "last.pt").is_file()


def test_a_capacity_control_trains_at_its_own_width(tmp_path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=12)
    base = single_frame.base_config(_args(*_argv(str(root)), "--eval-stride", "5"))
    entries = single_frame.suite_entries("h36m", "basic-cap-asn")
    doc = single_frame.run_bench(base, entries, tmp_path / "runs", tmp_path / "r.md", "bonelift bench single-frame")
    (row,) = doc["rows"]
    assert row["variant"] == "basic-cap-asn" and row["hidden"] > base.model.hidden
    assert f"| `baseline` width {row['hidden']} |" in (tmp_path / "r.md").read_text()
    assert row["parameters"] == single_frame.parameter_count(replace(base.model, name="baseline", hidden=row["hidden"]))
    assert doc["budget"]["model"]["hidden"] == base.model.hidden  # the suite's width; the row says its own


@pytest.mark.parametrize("flag", [["--seeds", "0"], ["--seeds", "-2"], ["--test-stride", "0"]])
def test_bench_refuses_seeds_and_strides_below_one(tmp_path, capsys, flag) -> None:
    report = tmp_path / "single_frame_h36m.md"
    rc = main(["bench", "single-frame", "--data", str(tmp_path / "absent"), "--report", str(report), *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"{flag[0]} must be a whole number greater than 0" in err[0]
    assert not list(tmp_path.iterdir())


def _argv(data: str) -> list[str]:
    """The tiny budget of the synthetic bench runs."""
    return [
        "--data",
        data,
        "--keypoints",
        "gt",
        "--epochs",
        "1",
        "--stride",
        "2",
        "--hidden",
        "16",
        "--batch-size",
        "64",
    ]


def test_every_table_step_is_compared_under_every_reading_with_rows_the_suite_trains() -> None:
    """Each Table 1/2 step appears under the other readings, with the reading's suffix only where a network has a
    refinement head (the basic network is the same row under every refinement reading)."""
    from bonelift.bench.single_frame import COMPARISONS, H36M_SUITE, TABLE_STEPS

    keys = {e.key for e in H36M_SUITE}
    pairs = {(a, b) for a, b, *_ in COMPARISONS}
    assert all(a in keys and b in keys for a, b in pairs), sorted(p for p in pairs if not set(p) <= keys)
    assert {("hsn-single-abs", "basic"), ("hsn-single-pytorch-init", "basic-pytorch-init"),
            ("asn-abs-pytorch-init", "basic-ref-am-abs-pytorch-init"), ("basic-ref-am-abs", "hsn-single-abs")} <= pairs
    assert not any("amstar-" in a or "amstar-" in b for a, b in pairs)  # AM* is HSN single: trained once
    assert len(pairs) == len(COMPARISONS) and len([p for p in COMPARISONS if p[0].startswith("hsn-single")]) == 7
    assert len(TABLE_STEPS) * 4 <= len(COMPARISONS)
