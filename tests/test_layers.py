"""The package's shape: one-way imports, one model registry, one configuration path with generated flags."""

from __future__ import annotations

import argparse
import ast
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from bonelift.cli import main
from bonelift.config import _HIDDEN, TrainConfig, VideoTrainConfig, add_arguments, from_args
from bonelift.errors import BoneliftError
from bonelift.models import MODELS, ModelConfig, build_model

SRC = Path(__file__).resolve().parents[1] / "src" / "bonelift"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """bonelift modules imported anywhere in a file, imports inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bonelift"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("bonelift"))
    return out


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    # a package's __init__ re-exports its own modules: edges into the package from inside it are not cycles
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_lower_layers_never_import_higher_ones() -> None:
    order = [
        "bonelift.skeletons",
        "bonelift.metrics",
        "bonelift.datasets",
        "bonelift.models",
        "bonelift.config",
        "bonelift.checkpoints",
        "bonelift.evaluation",
        "bonelift.training",
        "bonelift.bench",
        "bonelift.cli",
    ]
    for path in SRC.rglob("*.py"):
        me = _module(path)
        mine = next((i for i, p in enumerate(order) if me == p or me.startswith(p + ".")), None)
        if mine is None:
            continue
        for imported in _imports(path):
            theirs = next((i for i, p in enumerate(order) if imported == p or imported.startswith(p + ".")), None)
            assert theirs is None or theirs <= mine, f"{me} imports {imported}, a higher layer"


def test_models_lists_every_network(capsys) -> None:
    assert main(["models"]) == 0
    listed = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
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


def test_a_config_field_reaches_every_training_command(tmp_path) -> None:
    """Weight decay was added as one field and one use: train, train-video and the benches all have it."""
    from bonelift.bench import SUITES

    for command in (["train"], ["train-video"], ["bench", "single-frame"], ["bench", "video"]):
        with pytest.raises(SystemExit):
            main([*command, "--weight-decay", "not-a-number"])  # argparse knows the flag and checks its type
    assert "anatomy" in SUITES
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig())
    assert from_args(TrainConfig(), parser.parse_args(["--weight-decay", "1e-4"])).weight_decay == 1e-4
