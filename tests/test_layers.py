"""The package's shape: one model registry, one configuration path with generated flags (one-way imports:
test_layering.py)."""

from __future__ import annotations

import argparse
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from bonelift.cli import main
from bonelift.config import _HIDDEN, TrainConfig, VideoTrainConfig, add_arguments, from_args
from bonelift.errors import BoneliftError
from bonelift.models import MODELS, ModelConfig, build_model

SRC = Path(__file__).resolve().parents[1] / "src" / "bonelift"


def test_models_lists_every_network(capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split()[1] for line in lines if not line.startswith(" ")}
    assert set(listed) == set(MODELS)
    assert listed["tcn"] == "video" and listed["bone"] == "video" and listed["tpnet"] == "tpnet"
    assert listed["asn"] == "single-frame" and listed["hsn-dual"] == "single-frame"


def test_unknown_option_is_an_error_before_any_data_is_read(tmp_path, capsys) -> None:
    code = main(
        ["train", "--option", "multi_rot=true", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown option(s) multi_rot for model 'baseline'" in err and "known: multi_root" in err
    assert not (tmp_path / "r").exists()
    with pytest.raises(BoneliftError, match="unknown option"):
        build_model(ModelConfig(name="asn", options={"fusion": "plain"}))
    assert main(["train-video", "--model", "tcn", "--option", "length_frames=5", "--out", str(tmp_path / "v")]) == 2


@pytest.mark.parametrize("defaults", [TrainConfig(), VideoTrainConfig()])
def test_generated_flags_cover_the_configuration(defaults) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, defaults)
    assert from_args(defaults, parser.parse_args([])) == defaults
    flags = {a.dest for a in parser._actions}
    for f in fields(defaults):
        value = getattr(defaults, f.name)
        if is_dataclass(value):  # nested concerns (the model, the training views) have a flag per field
            assert all(f"{f.name}.{g.name}" in flags or g.name in _HIDDEN for g in fields(value)), f.name
        else:
            assert f.name in flags, f"no flag for {f.name}"


def test_flags_reach_the_configuration_and_nested_model() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig())
    args = parser.parse_args(
        [
            "--model",
            "asn",
            "--hidden",
            "64",
            "--no-max-norm",
            "--option",
            "multi_root=true",
            "--loss",
            "angle=0.5",
            "--weak-subjects",
            "S5,S6",
            "--out",
            "x",
            "--init",
            "a.pt",
        ]
    )
    cfg = from_args(TrainConfig(), args)
    assert (cfg.model.name, cfg.model.hidden, cfg.model.max_norm, cfg.model.options) == (
        "asn",
        64,
        False,
        {"multi_root": True},
    )
    assert cfg.losses == {"angle": 0.5} and cfg.weak_subjects == ("S5", "S6") and cfg.out_dir == "x"
    assert cfg.init_from == "a.pt"
    video = argparse.ArgumentParser()
    add_arguments(video, VideoTrainConfig())
    off = from_args(VideoTrainConfig(), video.parse_args(["--no-flip"]))
    assert off.flip is False and off.test_flip is False  # --no-flip turns off training and test-time flipping
    test_only = from_args(VideoTrainConfig(), video.parse_args(["--no-test-flip"]))
    assert test_only.flip is True and test_only.test_flip is False
    he = from_args(TrainConfig(), parser.parse_args(["--dataset", "humaneva"]))
    assert he.train_subjects[0] == "Train/S1"


def _training_commands() -> list:
    from bonelift.bench import SUITES

    suites = [["bench", s] for s in SUITES if s != "wild"]  # wild scores lifters, trains none
    return [["train"], ["train-video"], ["train-image"], *suites]


@pytest.mark.parametrize("command", _training_commands())
def test_a_config_field_reaches_every_training_command(command, monkeypatch) -> None:
    """Weight decay was added as one field and one use: every command that trains parses it into its run."""
    import bonelift.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "_cmd_train", lambda args: seen.update(vars(args)))
    monkeypatch.setattr(cli, "_cmd_bench", lambda args, argv: seen.update(vars(args)))
    assert main([*command, "--weight-decay", "0.5"]) == 0
    # bench anatomy nests its runs' TrainConfig under `train`
    assert seen.get("weight_decay", seen.get("train.weight_decay")) == 0.5
    with pytest.raises(SystemExit):
        main([*command, "--weight-decay", "not-a-number"])  # argparse checks its type
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig())
    assert from_args(TrainConfig(), parser.parse_args(["--weight-decay", "1e-4"])).weight_decay == 1e-4
