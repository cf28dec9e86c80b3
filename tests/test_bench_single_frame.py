"""`bonelift bench single-frame`: suite selection, HumanEva grouping, report rendering, split naming."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from bonelift import bench
from bonelift.cameras import Camera
from bonelift.cli import main
from bonelift.datasets import PoseSequence
from bonelift.errors import BoneliftError
from bonelift.evaluation import score
from bonelift.skeletons import H36M17, HUMANEVA15
from bonelift.training import TrainConfig, load_split


def _camera() -> Camera:
    z = np.zeros
    return Camera("c0", np.eye(3), z(3), np.array([1000.0, 1000.0]), np.array([500.0, 500.0]), z(3), z(2), 1000, 1000)


def _seq(subject: str, action: str, poses: np.ndarray, layout=H36M17) -> PoseSequence:
    kps = np.zeros(poses.shape[:2] + (2,), np.float32)
    return PoseSequence(subject, action, action, _camera(), kps, layout, poses.astype(np.float32), layout)


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["single-frame", *sum(([f"--{k}", str(v)] for k, v in kw.items()), [])])


def test_suite_selection_and_budget_is_shared() -> None:
    args = _args(epochs=3, stride=7, models="basic,asn")
    suite = bench._suite(args)
    assert [e.key for e in suite] == ["basic", "asn"]
    configs = [bench._train_config(args, e) for e in bench._suite(_args(epochs=3, stride=7))]
    assert len(configs) == 9 and len({c.out_dir for c in configs}) == 9
    assert {(c.epochs, c.stride, c.batch_size, c.seed, c.keypoints, c.model.hidden) for c in configs} == {(3, 7, 256, 0, "sh", 1024)}
    assert [c.model.options for c in configs].count({"multi_root": True}) == 1
    with pytest.raises(BoneliftError, match="unknown bench models"):
        bench._suite(_args(models="basic,nope"))
    he = bench._train_config(_args(dataset="humaneva"), bench.HUMANEVA_SUITE[1])
    assert he.keypoints == "gt" and he.train_subjects[0] == "Train/S1" and he.test_subjects[0] == "Validate/S1"


def test_humaneva_subjects_must_name_split() -> None:
    config = TrainConfig(dataset="humaneva", data_root="/nonexistent", train_subjects=("S1",))
    with pytest.raises(BoneliftError, match="Train/S<n>"):
        load_split(config, config.train_subjects)


def test_subject_action_errors_groups_by_subject_and_action() -> None:
    rng = np.random.default_rng(0)
    gt = [rng.normal(size=(n, 15, 3)) for n in (4, 6, 5)]
    seqs = [_seq("Validate/S1", "Walking", gt[0], HUMANEVA15), _seq("Validate/S1", "Jog", gt[1], HUMANEVA15),
            _seq("Validate/S3", "Walking", gt[2], HUMANEVA15)]
    preds = [s.root_relative + np.array([0.01, 0.0, 0.0]) * (i + 1) for i, s in enumerate(seqs)]
    out = bench.subject_action_errors(preds, seqs)
    assert set(out["p1"]) == {"S1 Walking", "S1 Jog", "S3 Walking"}
    assert out["p1"]["S1 Jog"] == pytest.approx(20.0)  # every joint shifted by 2 cm
    assert out["p1"]["S3 Walking"] == pytest.approx(30.0)
    assert out["p2"]["S1 Jog"] == pytest.approx(0.0, abs=1e-3)  # a translation is removed by Procrustes


def test_report_names_models_inputs_and_published_numbers(tmp_path) -> None:
    rng = np.random.default_rng(1)
    seqs = [_seq("S9", a, rng.normal(size=(5, 17, 3))) for a in ("Walking", "Eating")]
    preds = [s.root_relative + rng.normal(scale=0.02, size=s.root_relative.shape) for s in seqs]
    results = []
    for entry in bench.H36M_SUITE[:2]:
        res = score(preds, seqs)
        res.update(key=entry.key, label=entry.label, model=entry.model, options=entry.options, keypoints="sh",
                   train_seconds=120.0)
        results.append(res)
    text = bench.render_report(results, _args(epochs=2), ["bench", "single-frame", "--epochs", "2"])
    assert "`bonelift bench single-frame --epochs 2`" in text
    assert "| basic (Martinez et al.) | `baseline` | SH |" in text
    assert "M1 HSN single-channel (SH)" in text
    for published in ("66.55", "65.51", "68.66", "22.45", "18.72", "18.53"):
        assert published in text
    assert f"{results[0]['bone_rmse']['average']:.2f}" in text and "right lower leg" in text


def test_cli_rejects_unknown_bench_model(capsys) -> None:
    assert main(["bench", "single-frame", "--models", "nope"]) == 2
    assert "unknown bench models" in capsys.readouterr().err


def test_resume_reuses_scored_runs_without_training(tmp_path, monkeypatch) -> None:
    import json

    import bonelift.training

    args = _args(epochs=2, models="basic,asn", runs=tmp_path / "runs", report=tmp_path / "r.md")
    args.resume = True
    poses = np.zeros((4, 17, 3))
    for entry in bench._suite(args):
        config = bench._train_config(args, entry)
        res = score([poses + 0.01], [_seq("S9", "Walking", poses)])
        res.update(key=entry.key, label=entry.label, model=entry.model, options=entry.options, keypoints="sh", epochs=2,
                   train_seconds=60.0, eval_seconds=1.0, run_dir=config.out_dir)
        (tmp_path / "runs" / entry.key).mkdir(parents=True)
        (tmp_path / "runs" / entry.key / "bench_eval.json").write_text(json.dumps(res))

    def no_training(*a, **k):
        raise AssertionError("a scored run was trained again")

    monkeypatch.setattr(bonelift.training, "train", no_training)
    monkeypatch.setattr(bonelift.training, "load_split", no_training)
    report = bench.run_bench(args, ["bonelift", "bench", "single-frame"])
    assert "M2 ASN" in report.read_text()
