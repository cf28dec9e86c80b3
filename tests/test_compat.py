"""Every migration of earlier files lives in `bonelift.compat`, and each still does what it did."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from bonelift import checkpoints, compat
from bonelift.config import TPNetTrainConfig, TrainConfig
from bonelift.errors import BoneliftError
from bonelift.models import VideoModelConfig, build_model

SRC = Path(__file__).resolve().parents[1] / "src" / "bonelift"


def test_configurations_saved_before_a_field_get_what_it_meant() -> None:
    old = TrainConfig().to_dict()
    del old["losses_on"]
    assert TrainConfig.from_dict(old).losses_on == "all" and TrainConfig().losses_on == "weak"
    tp = TPNetTrainConfig().to_dict()
    del tp["model"]["frame_step"]
    assert TPNetTrainConfig.from_dict(tp).model.frame_step == 1 and TPNetTrainConfig().model.frame_step == 2
    assert compat.legacy_fields(TrainConfig) == {"kernels": "reference", "losses_on": "all"}
    del old["kernels"]
    assert TrainConfig.from_dict(old).kernels == "reference" and TrainConfig().kernels == "fast"


def test_tpnet_v1_files_become_current_checkpoints() -> None:
    old = {"format": compat.TPNET_V1, "config": {"hidden": 8}, "model": {}}
    new = compat.upgrade_checkpoint(old, checkpoints.FORMAT, "tpnet")
    assert new == {"format": checkpoints.FORMAT, "kind": "tpnet", "train_config": {"model": {"hidden": 8}},
                   "model": {}}
    current = {"format": checkpoints.FORMAT}
    assert compat.upgrade_checkpoint(current, checkpoints.FORMAT, "tpnet") is current


def test_old_bone_design_is_refused() -> None:
    model = build_model(VideoModelConfig(name="bone", receptive_field=9, channels=8))
    with pytest.raises(BoneliftError, match="predates the authors' design"):
        model.load_state_dict({**model.state_dict(), "direction.1.expand.weight": torch.zeros(1)})


@pytest.mark.parametrize("path", sorted(str(p) for p in [*SRC.parent.parent.glob("checkpoints/*.pt"),
                                                          *SRC.glob("weights/*.pt")]))
def test_committed_checkpoints_still_load(path) -> None:
    model, config, _ = checkpoints.rebuild(path, kind=checkpoints.kind_of(checkpoints.load(path)))
    assert config.model.options == {} and not model.training


def test_no_other_module_migrates_files() -> None:
    """The migrations' names appear only in compat (and where they are called)."""
    for path in SRC.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                assert "legacy" not in node.name, f"{path}: {node.name} belongs in compat"
            assert not (isinstance(node, ast.Constant) and node.value in ("bonelift-tpnet-v1", "legacy")), path
            assert not (isinstance(node, ast.keyword) and node.arg == "legacy"), f"{path}: legacy field metadata"
