"""Typed per-network options: the registry parses `--option KEY=VALUE` into each model file's dataclass."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from bonelift.cli import main
from bonelift.errors import OptionError
from bonelift.models import MODELS, ModelConfig, NetworkOptions, VideoModelConfig, build_model, check_options


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_declares_typed_documented_options(name) -> None:
    options = MODELS[name].options
    assert issubclass(options, NetworkOptions)
    for f in fields(options):
        assert f.metadata.get("help"), f"{name}: option {f.name} has no help text"
    assert check_options(name, {}) == options()  # no options: every default


@pytest.mark.parametrize(
    ("name", "key", "value", "allowed"),
    [
        ("baseline", "multi_root", "no", "true or false"),  # was truthy: built a multi-root model
        ("bone", "lsc", "flase", "true or false"),
        ("method3", "lambda_2d_epoch", 1.5, "an integer"),
        ("method3", "grid", True, "an integer"),
        ("method3", "lambda_3d", "half", "a number"),
        ("hsn-dual", "refine", "resid", "one of residual, absolute"),
        ("bone", "aug", "yes", "true or false or one of auto"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_option_network_and_allowed(name, key, value, allowed) -> None:
    with pytest.raises(OptionError) as err:
        check_options(name, {key: value})
    message = str(err.value)
    assert "\n" not in message and key in message and repr(name) in message and allowed in message


def test_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(OptionError, match=r"unknown option\(s\) fusion for model 'asn' \(known: multi_root, refine"):
        build_model(ModelConfig(name="asn", options={"fusion": "plain"}))


def test_values_are_coerced_only_where_lossless() -> None:
    assert check_options("method3", {"lambda_3d": 1}).lambda_3d == 1.0  # an int is a number
    assert isinstance(check_options("method3", {"lambda_3d": 1}).lambda_3d, float)
    assert check_options("bone", {"aug": True}).aug is True and check_options("bone", {}).aug == "auto"


@pytest.mark.parametrize("argv", [["--option", "multi_root=no"], ["--option", "init=xavier"],
                                  ["--model", "hsn-dual", "--option", "fusion_at=1"]])
def test_the_command_line_refuses_before_any_data_is_read(tmp_path, capsys, argv) -> None:
    code = main(["train", *argv, "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "option" in err[0]
    assert not (tmp_path / "r").exists()
    assert main(["train-video", "--model", "bone", "--option", "lsc=flase", "--out", str(tmp_path / "v")]) == 2


def test_models_lists_every_option_with_type_and_default(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "--option multi_root=false  (bool)" in out and "--option lambda_2d_epoch=16  (int)" in out
    assert "--option fusion=product  (product|concat|analytic|fc)" in out
    for name, spec in MODELS.items():
        for f in fields(spec.options):
            assert f"--option {f.name}=" in out, (name, f.name)


def test_typed_options_build_the_same_network_as_before() -> None:
    """An option given by its default builds the network its absence builds (same parameters, same output)."""
    torch.manual_seed(0)
    plain = build_model(VideoModelConfig(name="bone", receptive_field=9, channels=16))
    torch.manual_seed(0)
    spelt = build_model(VideoModelConfig(name="bone", receptive_field=9, channels=16,
                                         options={"fusion": "product", "gamma": 10, "lsc": True}))
    assert spelt.opt == plain.opt and spelt.opt.gamma == 10.0
    for (k, a), (_, b) in zip(plain.state_dict().items(), spelt.state_dict().items()):
        assert torch.equal(a, b), k
    assert build_model(VideoModelConfig(name="bone", receptive_field=9, channels=16,
                                        options={"fusion": "fc"})).opt.fusion == "concat"
