import numpy as np
import pytest

from bonelift.errors import DataError
from bonelift.geometry import bone_lengths, bone_vectors, joints_from_bones
from bonelift.skeletons import (
    COCO17,
    H36M16,
    H36M17,
    HUMANEVA15,
    LAYOUTS,
    MEDIAPIPE33,
    MPII16,
    conversion_matrix,
    convert,
    get_layout,
)
from tests.conftest import REST_POSE


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_layouts_are_trees_with_mirrored_pairs(layout):
    assert layout.parents.count(-1) == 1
    assert len(layout.bones) == layout.num_joints - 1
    assert len(layout.left) == len(layout.right) > 0
    for l_, r in zip(layout.left, layout.right):
        assert layout.joints[l_][1:] == layout.joints[r][1:]
    perm = layout.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(layout.num_joints))


def test_hard_joints_and_limbs():
    assert [H36M17.joints[j] for j in H36M17.hard_joints] == [
        "LElbow", "LWrist", "RElbow", "RWrist", "LKnee", "LFoot", "RKnee", "RFoot"]
    assert len(H36M17.limbs) == len(MPII16.limbs) == len(HUMANEVA15.limbs) == 8
    assert HUMANEVA15.left == (2, 3, 4, 8, 9, 10) and HUMANEVA15.right == (5, 6, 7, 11, 12, 13)


def test_mpii_to_h36m16_is_a_permutation():
    pts = np.random.default_rng(0).normal(size=(5, 16, 2))
    out, _ = convert(pts, MPII16, H36M16)
    for j, name in enumerate(H36M16.joints):
        np.testing.assert_array_equal(out[:, j], pts[:, MPII16.index(name)])
    assert "Neck/Nose" not in H36M16.joints
    assert H36M16.joints[H36M16.parents[H36M16.index("Head")]] == "Thorax"


def test_mpii_cannot_become_h36m17():
    with pytest.raises(DataError, match="Neck/Nose"):
        conversion_matrix(MPII16, H36M17)


@pytest.mark.parametrize("src", [COCO17, MEDIAPIPE33])
def test_detector_layouts_to_h36m17(src):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(3, src.num_joints, 2))
    conf = rng.uniform(size=(3, src.num_joints))
    out, c = convert(pts, src, H36M17, conf)
    i = src.index
    np.testing.assert_allclose(out[:, H36M17.index("Hip")], (pts[:, i("LHip")] + pts[:, i("RHip")]) / 2)
    np.testing.assert_allclose(out[:, H36M17.index("Thorax")], (pts[:, i("LShoulder")] + pts[:, i("RShoulder")]) / 2)
    np.testing.assert_allclose(out[:, H36M17.index("LWrist")], pts[:, i("LWrist")])
    np.testing.assert_allclose(c[:, H36M17.index("Hip")], np.minimum(conf[:, i("LHip")], conf[:, i("RHip")]))
    # derived joints are affine combinations: weights sum to one, so translation commutes
    np.testing.assert_allclose(conversion_matrix(src, H36M17).sum(1), 1)


def test_unknown_layout_and_joint_count():
    with pytest.raises(DataError, match="unknown joint layout"):
        get_layout("openpose25", "file.json")
    with pytest.raises(DataError, match="15 joints"):
        convert(np.zeros((2, 15, 2)), COCO17, H36M17)


def test_bones_round_trip():
    pose = REST_POSE + np.random.default_rng(2).normal(0, 0.05, (4, 17, 3))
    root = pose[:, H36M17.root]
    back = joints_from_bones(bone_vectors(pose, H36M17), H36M17, root)
    np.testing.assert_allclose(back, pose, atol=1e-12)
    assert bone_lengths(pose, H36M17).shape == (4, 16)
