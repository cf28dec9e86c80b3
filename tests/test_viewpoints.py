"""The controlled half of `bench wild`: camera groups, lifters as the pipeline runs them, cross-dataset rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bonelift.bench.viewpoints import humaneva_inputs, humaneva_rows, lift_split, viewpoint_groups, viewpoint_rows
from bonelift.datasets import PoseSequence, load_split
from bonelift.datasets.virtual import ELEVATIONS, elevation_group
from bonelift.skeletons import H36M17, HUMANEVA15, convert
from tests.conftest import make_h36m


def _oracle(seqs: list[PoseSequence]):
    """A LiftFn that knows the answer for sequences of `seqs` (looked up by their 2D)."""
    table = {s.keypoints.tobytes(): s.root_relative for s in seqs}

    def lift(kp, conf, width, height, fps):
        return table[np.asarray(kp, np.float32).tobytes()]

    return lift


@pytest.fixture
def test_seqs(tmp_path: Path) -> list[PoseSequence]:
    make_h36m(tmp_path / "h36m", ["S9"], frames=30)
    return load_split("h36m", str(tmp_path / "h36m"), "gt", ("S9",))


def test_viewpoint_groups_cover_each_elevation_and_score_an_exact_lifter_as_zero(test_seqs) -> None:
    groups = viewpoint_groups(test_seqs)
    assert set(groups) == {"h36m"} | {f"{e}-{s}" for e in ELEVATIONS for s in ("landscape", "portrait")}
    for name, seqs in groups.items():
        if name == "h36m":
            continue
        el, shape = name.split("-")
        for s in seqs:
            q = next(q for q in test_seqs if q.take == s.take)
            world = q.camera.camera_to_world(q.poses_3d[:, 0].astype(np.float64)).mean(0)
            assert elevation_group(s.camera, world) == el and s.camera.id.split("-")[2] == shape
    flat = [s for seqs in groups.values() for s in seqs]
    rows = viewpoint_rows({"oracle": _oracle(flat)}, groups, stride=5)
    assert len(rows) == len(groups)
    assert all(r["p1_mm"] < 1e-3 and r["input"] == "gt" and r["views"] in groups for r in rows)
    preds, frames = lift_split(_oracle(flat), groups["h36m"], stride=5)
    assert all(len(p) == len(f) for p, f in zip(preds, frames))


def test_humaneva_inputs_derive_the_neck_and_rows_score_on_humaneva_joints(test_seqs) -> None:
    # HumanEva-like sequences: the Human3.6M fixture's joints in HumanEva's 15-joint order.
    he = [PoseSequence(s.subject, s.action, s.take, s.camera, convert(s.keypoints, H36M17, HUMANEVA15)[0],
                       HUMANEVA15, convert(s.poses_3d, H36M17, HUMANEVA15)[0], HUMANEVA15) for s in test_seqs]
    inputs = humaneva_inputs(he)
    assert inputs[0].layout == H36M17 and inputs[0].layout_3d == HUMANEVA15
    neck = inputs[0].keypoints[:, H36M17.index("Neck/Nose")]
    thorax, head = he[0].keypoints[:, HUMANEVA15.index("Thorax")], he[0].keypoints[:, HUMANEVA15.index("Head")]
    assert np.allclose(neck, 0.55 * thorax + 0.45 * head, atol=1e-3)
    exact = {s.keypoints.tobytes(): r.root_relative for s, r in zip(inputs, test_seqs)}
    rows = humaneva_rows({"oracle": lambda kp, c, w, h, fps: exact[kp.tobytes()]}, inputs)
    assert rows[0]["p2_mm"] < 1e-3 and rows[0]["dataset"] == "humaneva" and rows[0]["p2_per_action_mm"]


def test_bench_wild_writes_the_suite_with_a_row_per_lifter_and_group(tmp_path: Path) -> None:
    import json

    from bonelift.bench import wild
    from bonelift.errors import OptionError

    make_h36m(tmp_path / "h36m", ["S9", "S11"], frames=20)
    zeros = {"zero": lambda kp, conf, w, h, fps: np.zeros(kp.shape[:2] + (3,), np.float32)}
    doc = wild.run(zeros, ("views",), tmp_path / "wild.md", "bonelift bench wild", tmp_path / "cache",
                   data_root=str(tmp_path), test_stride=5, progress=False)
    saved = json.loads((tmp_path / "wild.json").read_text())
    assert saved["suite"] == "wild" and len(saved["rows"]) == len(doc["rows"]) == 7
    groups = {"views/h36m"} | {f"views/{e}-{s}" for e in ELEVATIONS for s in ("landscape", "portrait")}
    assert {r["variant"] for r in saved["rows"]} == groups
    assert all(r["model"] == "zero" and r["p1_mm"] > 0 for r in saved["rows"])
    assert "Human3.6M S9/S11 from virtual cameras" in (tmp_path / "wild.md").read_text()
    with pytest.raises(OptionError, match="unknown part"):
        wild.run(zeros, ("film",), tmp_path / "w.md", "x", tmp_path / "cache")
    with pytest.raises(OptionError, match="NAME=CHECKPOINT"):
        wild.lifters_of(["no-equals-sign"])
