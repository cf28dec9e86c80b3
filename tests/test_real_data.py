"""Checks on the real benchmark files; skipped with a visible reason when ../shared/data is absent."""

import numpy as np
import pytest

from bonelift.datasets import load_h36m, load_humaneva
from bonelift.metrics import illegal_angle_percentage
from bonelift.skeletons import H36M16, H36M17, MPII16, convert
from tests.conftest import real_data_or_skip

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def s11():
    root = real_data_or_skip("h36m")
    return load_h36m(root, "gt", subjects=["S11"]), load_h36m(root, "sh", subjects=["S11"])


@pytest.mark.slow
def test_sh_detections_land_near_projected_ground_truth(s11):
    gt, sh = s11
    by_key = {(s.take, s.camera.id): s for s in gt}
    errs = []
    for s in sh[:12]:
        g = by_key[(s.take, s.camera.id)]
        det, _ = convert(s.keypoints, MPII16, H36M16)
        ref, _ = convert(g.keypoints, H36M17, H36M16)
        errs.append(np.linalg.norm(det - ref, axis=-1).mean(0))
    per_joint = np.median(errs, axis=0)
    limbs = [H36M16.index(n) for n in ("RKnee", "LKnee", "RElbow", "LElbow", "RWrist", "LWrist", "RFoot", "LFoot")]
    assert per_joint[limbs].max() < 20  # pixels; the data README says 7-15 px for most joints


@pytest.mark.slow
def test_known_gap_and_ground_truth_legality(s11):
    gt, sh = s11
    assert not any(s.take == "Directions" and s.camera.id == "54138969" for s in sh)
    assert len(gt) == len(sh) + 1
    poses = np.concatenate([s.poses_3d[::10] for s in gt])
    ill = illegal_angle_percentage(poses, H36M17)
    assert ill["right knee"] < 1 and ill["left knee"] < 1


def test_humaneva_validation_split():
    root = real_data_or_skip("humaneva")
    seqs = load_humaneva(root, "Validate")
    assert {s.action for s in seqs} == {"Walking", "Jog"}
    assert {s.subject for s in seqs} == {"Validate/S1", "Validate/S2", "Validate/S3"}
