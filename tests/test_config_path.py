"""One configuration path (issue 22): every entry point's options are a dataclass whose fields give the flags,
the API keywords, one `validate()` and the recorded metadata, so a new option is two edits (a field and the
code that uses it). Each test adds a field to a copy of a configuration and sees it arrive everywhere."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bonelift.bench import anatomy
from bonelift.cli import main
from bonelift.config import (
    EvaluateConfig,
    LiftConfig,
    LifterOptions,
    LiveConfig,
    TrainConfig,
    VideoTrainConfig,
    add_arguments,
    config_from_dict,
    from_args,
    opt,
)
from bonelift.errors import OptionError
from tests.pipeline.pipeline_fixtures import save_tiny_checkpoint, walking_poses

NEW = "new_option"


def _with_new_field(cls: type) -> type:
    """A copy of the configuration `cls` with one more option: a whole number of 0 or more, default 1."""
    return dataclasses.make_dataclass(f"Extended{cls.__name__}", [(NEW, int, opt(1, "a new option", min=0))],
                                      bases=(cls,))


def _parse(defaults: Any, argv: list[str], **kwargs: Any) -> Any:
    parser = argparse.ArgumentParser()
    add_arguments(parser, defaults, **kwargs)
    return from_args(defaults, parser.parse_args(argv))


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bonelift: error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])


@pytest.fixture
def keypoints(tmp_path: Path) -> Path:
    """A walking person's 2D (H36M-17 pixels of a 640x480 image), 12 frames."""
    poses = walking_poses(12) + np.array([0.0, 0.0, 5.0])
    kp = 1000.0 * poses[..., :2] / poses[..., 2:] + np.array([320.0, 240.0])
    path = tmp_path / "walk.npz"
    np.savez(path, keypoints=kp, confidence=np.full(kp.shape[:2], 0.8), width=640, height=480, fps=25.0,
             layout="h36m17")
    return path


def test_a_new_lift_option_reaches_the_flag_the_api_validation_and_the_outputs(
    tmp_path: Path, keypoints: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bonelift.pipeline import lift

    extended = _with_new_field(LiftConfig)
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt")
    # The API: a keyword named like the field, checked by the one validate(), recorded in both output files.
    lift(keypoints, tmp_path / "api", extended(), new_option=3, model=ckpt, pictures=False, progress=False)
    assert json.loads((tmp_path / "api" / "poses3d.json").read_text())["config"][NEW] == 3
    with np.load(tmp_path / "api" / "poses3d.npz") as z:
        assert json.loads(str(z["config"]))[NEW] == 3
    with pytest.raises(OptionError, match=r"^new_option \(--new-option\) must be 0 or more, got -1$"):
        lift(keypoints, tmp_path / "bad", extended(), new_option=-1, model=ckpt)
    with pytest.raises(OptionError, match="unknown option 'bogus' of LiftConfig"):
        lift(keypoints, tmp_path / "bad", bogus=1)
    assert not (tmp_path / "bad").exists()
    # The command line: `bonelift lift` builds its flags and its configuration from the class.
    monkeypatch.setattr("bonelift.config.LiftConfig", extended)
    argv = ["lift", str(keypoints), "-o", str(tmp_path / "cli"), "--model", str(ckpt), "--no-pictures", "--quiet"]
    assert main([*argv, "--new-option", "5"]) == 0
    saved = json.loads((tmp_path / "cli" / "poses3d.json").read_text())["config"]
    assert saved[NEW] == 5 and saved["model"] == str(ckpt) and saved["progress"] is False
    capsys.readouterr()
    assert main([*argv, "--new-option", "-2"]) == 2
    _one_line_error(capsys, "new_option (--new-option) must be 0 or more, got -2")


def test_lift_flags_keep_their_spellings_and_defaults_live_once() -> None:
    config = _parse(LiftConfig(), ["--size", "640x480", "--no-reframe", "--quiet", "--no-pictures", "--focal", "900",
                                   "--max-side", "0", "--person", "1", "--lifter", "single-frame"])
    assert config == LiftConfig(image_size=(640, 480), reframe=False, progress=False, pictures=False, focal=900.0,
                                max_side=0, person=1, lifter="single-frame")
    assert _parse(LiftConfig(), []) == LiftConfig()
    with pytest.raises(OptionError, match="--size expects WIDTHxHEIGHT, got '640'"):
        _parse(LiftConfig(), ["--size", "640"])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"max_side": -1}, "max_side (--max-side) must be 0 or more, got -1"),
    ({"max_people": 0}, "max_people (--max-people) must be greater than 0, got 0"),
    ({"focal": float("inf")}, "focal (--focal) must be from 1 to 1e+06, got inf"),
    ({"fps": 0.0}, "fps (--fps) must be from 0.001 to 100000, got 0.0"),
    ({"person": -1}, "person (--person) must be 0 or more, got -1"),
    ({"person": 2, "max_people": 2}, "person (--person) must be below max_people (--max-people) 2, got 2"),
    ({"causal": "yes"}, "causal (--causal) must be True or False, got 'yes'"),
    ({"pictures": 1}, "pictures (--no-pictures) must be True or False, got 1"),
    ({"max_frames": 2.5}, "max_frames (--max-frames) must be a whole number, got 2.5"),
    ({"lifter": "tcn"}, "lifter (--lifter) must be one of video, single-frame, got 'tcn'"),
    ({"image_size": (640, 0)}, "image_size (--size WIDTHxHEIGHT) must be two whole numbers"),
])
def test_lift_options_are_one_line_option_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError) as info:
        dataclasses.replace(LiftConfig(), **overrides).validate()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_live_lifter_shares_lifts_field_definitions_and_checks() -> None:
    from bonelift.pipeline import LiveLifter

    assert issubclass(LiftConfig, LifterOptions) and issubclass(LiveConfig, LifterOptions)
    for bad in ({"focal": -3.0}, {"device": 3}):
        with pytest.raises(OptionError) as live:
            LiveLifter(**bad)  # refused before any checkpoint is looked for
        with pytest.raises(OptionError) as offline:
            dataclasses.replace(LiftConfig(), **bad).validate()
        assert str(live.value) == str(offline.value)
    with pytest.raises(OptionError, match="unknown option 'layuot' of LiveConfig"):
        LiveLifter(layuot="coco17")


def test_evaluate_options_come_from_evaluate_config(capsys: pytest.CaptureFixture[str]) -> None:
    from bonelift.evaluate import evaluate

    config = _parse(EvaluateConfig(), ["--data", "d", "--keypoints", "sh", "--stride", "50", "--out", "p", "--quiet"])
    assert config == EvaluateConfig(data_root="d", keypoints="sh", stride=50, out_prefix="p", progress=False)
    with pytest.raises(OptionError, match=r"stride \(--stride\) must be 1 or more, got 0"):
        evaluate("absent.pt", stride=0)  # options first: the checkpoint is not even opened
    with pytest.raises(OptionError, match="unknown option 'strides' of EvaluateConfig"):
        evaluate("absent.pt", strides=2)
    assert main(["evaluate", "absent.pt", "--stride", "0"]) == 2
    _one_line_error(capsys, "stride (--stride) must be 1 or more, got 0")


def _captured_training(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    seen: list[Any] = []
    monkeypatch.setattr(f"bonelift.training.{name}", lambda config, **kwargs: seen.append(config))
    return seen


@pytest.mark.parametrize(("command", "trainer", "cls"), [("train-video", "train_video", VideoTrainConfig),
                                                         ("train", "train", TrainConfig)])
def test_cli_and_api_training_defaults_are_equal(monkeypatch: pytest.MonkeyPatch, command: str, trainer: str,
                                                 cls: type) -> None:
    seen = _captured_training(monkeypatch, trainer)
    assert main([command]) == 0
    api = cls()
    for f in dataclasses.fields(cls):
        assert getattr(seen[0], f.name) == getattr(api, f.name), f.name
    assert seen[0] == api


def test_a_new_train_video_option_reaches_the_flag_validation_and_the_checkpoint_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extended = _with_new_field(VideoTrainConfig)
    monkeypatch.setattr("bonelift.config.VideoTrainConfig", extended)
    seen = _captured_training(monkeypatch, "train_video")
    assert main(["train-video", "--new-option", "4", "--epochs", "2"]) == 0
    config = seen[0]
    assert isinstance(config, extended) and config.new_option == 4 and config.epochs == 2
    saved = json.loads(json.dumps(config.to_dict()))  # what a checkpoint stores
    assert saved[NEW] == 4 and config_from_dict(extended, saved) == config
    assert config_from_dict(extended, {k: v for k, v in saved.items() if k != NEW}).new_option == 1
    assert main(["train-video", "--new-option", "-1"]) == 2
    _one_line_error(capsys, "new_option (--new-option) must be 0 or more, got -1")
    assert main(["train-video", "--epochs", "0"]) == 2
    _one_line_error(capsys, "epochs (--epochs) must be 1 or more, got 0")


def _anatomy_bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]) -> anatomy.AnatomyBench:
    """The bench `bonelift bench anatomy ARGV` would run (the run itself replaced by a stub)."""
    seen: list[anatomy.AnatomyBench] = []

    def run(bench: anatomy.AnatomyBench, out: Any, report: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(bench)
        Path(report).write_text("stub report\n")

    monkeypatch.setattr(anatomy, "run", run)
    assert main(["bench", "anatomy", "--report", str(tmp_path / "a.md"), *argv]) == 0
    return seen[0]


def test_bench_anatomy_takes_every_training_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bench = _anatomy_bench(monkeypatch, tmp_path, ["--weight-decay", "0.5", "--lr", "5e-4", "--flip",
                                                   "--hidden", "64", "--loss", "angle=0.2", "--epochs", "6"])
    for variant in anatomy.VARIANTS:
        config = bench.lifter(tmp_path / variant[0], variant, seed=1)
        assert (config.weight_decay, config.lr, config.flip, config.model.hidden) == (0.5, 5e-4, True, 64)
        assert config.epochs == 6 and config.seed == 1 and config.train_subjects == ("S1",)
        if variant[2] and "angle" in variant[2]:
            assert config.losses["angle"] == 0.2
        config.validate()
    budget = bench.budget()
    assert budget["weight_decay"] == 0.5 and budget["flip"] is True and "losses" not in budget


def test_bench_anatomy_defaults_build_the_runs_of_before(tmp_path: Path) -> None:
    """Runs trained before the flags were generated stay reusable: the same run configuration per row (since issue
    23's Table 3 design every row, `s1-3d` too, holds the 2D-only subjects; only the losses differ)."""
    from bonelift.bench.common import budget_of
    from bonelift.models import ModelConfig

    bench = anatomy.AnatomyBench()
    for variant in anatomy.VARIANTS:
        slug, _, terms, losses_on = variant
        before = TrainConfig(
            model=ModelConfig(hidden=1024), data_root="", keypoints="gt", train_subjects=("S1",), stride=4,
            eval_stride=10, epochs=10, batch_size=256, seed=0, device="auto", out_dir=str(tmp_path),
            losses={k: anatomy.DEFAULT_WEIGHTS[k] for k in terms or ()}, warmup_epochs=4,
            weak_subjects=("S5", "S6", "S7", "S8"), losses_on=losses_on, symmetry_epoch=8,
            symmetry_lr_factor=0.1,
        )
        assert budget_of(bench.lifter(tmp_path, variant, 0)) == budget_of(before)


def test_a_new_bench_option_reaches_the_flag_validation_and_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extended = _with_new_field(anatomy.AnatomyBench)
    monkeypatch.setattr(anatomy, "AnatomyBench", extended)
    bench = _anatomy_bench(monkeypatch, tmp_path, ["--new-option", "7"])
    assert bench.new_option == 7 and bench.budget()[NEW] == 7
    assert main(["bench", "anatomy", "--new-option", "-7"]) == 2
    _one_line_error(capsys, "new_option (--new-option) must be 0 or more, got -7")
    assert main(["bench", "anatomy", "--tpnet-epochs", "0"]) == 2
    _one_line_error(capsys, "tpnet_epochs (--tpnet-epochs) must be 1 or more, got 0")


def test_bench_method3_image_part_shares_the_schedule_flags(tmp_path: Path) -> None:
    """The image part takes every flag both run configurations have (no hand-kept list), the same ones as when
    the list was written by hand, so cached image rows keep their budget."""
    from bonelift.bench import method3

    written_by_hand = {"epochs", "batch_size", "lr", "lr_decay", "lr_step_epochs", "weight_decay", "optimizer",
                       "momentum", "seed", "device", "eval_stride", "model.dropout", "model.options", "actions",
                       "precision", "optimizer_impl", "kernels"}  # added since (issue 23); budgets leave out defaults
    assert set(method3.shared_flags()) == written_by_hand
    parser = argparse.ArgumentParser()
    method3.add_parser(parser.add_subparsers(dest="suite"))
    args = parser.parse_args(["method3", "--parts", "image", "--train-images", str(tmp_path / "x.npz"),
                              "--lr", "0.02", "--weight-decay", "0.5", "--option", "cls2d=true", "--stride", "9"])
    image = method3.image_config(args)
    assert (image.lr, image.weight_decay, image.model.options, image.stride) == (0.02, 0.5, {"cls2d": True}, 1)
    assert image.keypoints == "gt" and not image.flip  # the 2D-input part's --keypoints default (sh) stays there


def test_a_flag_value_of_the_wrong_type_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lift", "x.mp4", "--max-side", "big"])
    assert info.value.code == 2
    _one_line_error(capsys, "argument --max-side: invalid int value: 'big'", "bonelift lift --help")


@pytest.mark.parametrize(("field", "value", "default", "bad"), [
    ("precision", "bf16", "fp32", "fp16"),  # issue 23: bf16 autocast
    ("optimizer_impl", "fused", "default", "apex"),  # issue 23: the optimiser kernel
])
def test_choice_flags_are_generated_and_checked(field: str, value: str, default: str, bad: str) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig())
    flag = "--" + field.replace("_", "-")
    assert getattr(from_args(TrainConfig(), parser.parse_args([flag, value])), field) == value
    assert getattr(from_args(TrainConfig(), parser.parse_args([])), field) == default
    with pytest.raises(OptionError, match=field):
        TrainConfig(**{field: bad}).validate()


def test_budgets_written_before_and_after_a_field_was_added_compare_equal(tmp_path: Path) -> None:
    """A results header written before `actions` existed, or with its default (`[]` after a JSON trip), accepts
    today's budget, also where a suite keeps one run budget per recipe; a real difference is still refused."""
    from bonelift.bench.common import budget_of, check_report
    from bonelift.errors import DataError

    run = budget_of(TrainConfig())
    assert "actions" not in run  # at the value every earlier run had: left out
    now = {**run, "seeds": 3, "test_stride": 5}
    report = tmp_path / "r.md"
    for header, budget in [(now, now), ({**now, "actions": []}, now),
                           ({"baseline": {**run, "actions": []}, "seeds": 3}, {"baseline": run, "seeds": 3})]:
        report.with_suffix(".json").write_text(json.dumps({"suite": "s", "budget": header, "rows": []}))
        check_report(report, "s", budget)
    report.with_suffix(".json").write_text(json.dumps({"suite": "s", "budget": {**now, "actions": ["Walking"]}}))
    with pytest.raises(DataError, match=r"actions: \['Walking'\] there, None here"):
        check_report(report, "s", now)
