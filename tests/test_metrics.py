import numpy as np
import pytest

from bonelift import metrics
from bonelift.skeletons import H36M17
from tests.conftest import REST_POSE, random_poses


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_p_mpjpe_is_zero_for_similarity_transform():
    gt = random_poses(5, np.random.default_rng(0))
    pred = 1.7 * gt @ _rotation(np.array([1.0, 2.0, 3.0]), 0.8).T + np.array([0.3, -1.0, 2.0])
    assert metrics.mpjpe(pred, gt).mean() > 0.1
    np.testing.assert_allclose(metrics.p_mpjpe(pred, gt), 0, atol=1e-6)


def test_p_mpjpe_known_case():
    # A cross stretched 2x along x: by symmetry the best rotation is the identity and the best scale
    # is sum(p.g) / sum(p.p) = 6 / 10, so the aligned joints miss by 0.2, 0.2, 0.4, 0.4.
    gt = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    pred = gt * np.array([2.0, 1, 1])
    np.testing.assert_allclose(metrics.procrustes_align(pred, gt)[0], 0.6 * pred[0], atol=1e-12)
    assert metrics.p_mpjpe(pred, gt)[0] == pytest.approx(0.3)
    # a reflection is not a rotation: P2 of a mirrored asymmetric shape stays > 0
    shape = REST_POSE[None].astype(np.float64)
    assert metrics.p_mpjpe(shape * np.array([-1, 1, 1]), shape)[0] > 0.01


def test_mpjpe_and_n_mpjpe():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4, 0], [0, 0, 0]]])
    assert metrics.mpjpe(pred, gt)[0] == pytest.approx(2.5)
    gt2 = random_poses(3, np.random.default_rng(1))
    np.testing.assert_allclose(metrics.n_mpjpe(2.0 * gt2, gt2), 0, atol=1e-6)


def test_mpjve_zero_for_constant_offset():
    seq = random_poses(10, np.random.default_rng(2))
    np.testing.assert_allclose(metrics.mpjve(seq + 0.1, seq), 0, atol=1e-6)


def test_pck_auc_and_group_average():
    gt = np.zeros((4, 1, 3))
    pred = np.array([0.0, 0.1, 0.2, 0.3])[:, None, None] * np.array([1.0, 0, 0])
    assert metrics.pck(pred, gt) == pytest.approx(0.5)
    assert 0 < metrics.auc(pred, gt) < 1
    per = metrics.group_mean(np.array([1.0, 3.0, 10.0]), ["a", "a", "b"])
    assert per == {"a": 2.0, "b": 10.0}
    assert metrics.average_over_groups(per) == 6.0


def test_bone_metrics():
    gt = random_poses(6, np.random.default_rng(3))
    rmse = metrics.bone_length_rmse(gt, gt, H36M17)
    assert set(rmse) == {"left upper arm", "left lower arm", "right upper arm", "right lower arm",
                         "left upper leg", "left lower leg", "right upper leg", "right lower leg", "average"}
    assert rmse["average"] == pytest.approx(0, abs=1e-6)
    longer = gt.copy()
    longer[:, H36M17.index("LWrist")] += longer[:, H36M17.index("LWrist")] - longer[:, H36M17.index("LElbow")]
    assert metrics.bone_length_rmse(longer, gt, H36M17)["left lower arm"] > 0.1
    hard = metrics.hard_joint_errors(longer, gt, H36M17)
    assert hard["LWrist"] > 0.1 and hard["RWrist"] == 0
    assert metrics.bone_length_std([np.repeat(gt[:1], 5, 0)], H36M17)["average"] == pytest.approx(0, abs=1e-7)
    sym = metrics.symmetry_error(REST_POSE[None], H36M17)
    assert sym["average"] == pytest.approx(0, abs=1e-9)


def _reverse_bend(pose: np.ndarray, base: str, prox: str, mid: str, dist: str) -> np.ndarray:
    """Mirror the lower limb through the plane of the collar (or pelvis) bone and the upper limb."""
    b, p, m, d = (H36M17.index(n) for n in (base, prox, mid, dist))
    out = pose.copy()
    n = np.cross(pose[..., p, :] - pose[..., b, :], pose[..., m, :] - pose[..., p, :])
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    low = pose[..., d, :] - pose[..., m, :]
    out[..., d, :] = pose[..., m, :] + low - 2 * (low * n).sum(-1, keepdims=True) * n
    return out


@pytest.mark.parametrize(
    "limb, joints",
    [
        ("right elbow", ("Thorax", "RShoulder", "RElbow", "RWrist")),
        ("left elbow", ("Thorax", "LShoulder", "LElbow", "LWrist")),
        ("right knee", ("Hip", "RHip", "RKnee", "RFoot")),
        ("left knee", ("Hip", "LHip", "LKnee", "LFoot")),
    ],
)
def test_illegal_angles_detect_reversed_limbs(limb, joints):
    pose = REST_POSE[None].astype(np.float64)
    assert metrics.illegal_angle_percentage(pose, H36M17)["any"] == 0
    bad = metrics.illegal_angle_percentage(_reverse_bend(pose, *joints), H36M17)
    assert bad[limb] == 100
    assert bad["any"] == 100
    assert sum(v for k, v in bad.items() if k not in (limb, "any")) == 0


def test_scored_frame_pairs_keep_mpjve_consecutive():
    from types import SimpleNamespace

    from bonelift.evaluation import score, scored_frames
    from bonelift.skeletons import H36M17

    assert scored_frames(11, 5).tolist() == [0, 1, 5, 6]
    assert scored_frames(4, 1).tolist() == [0, 1, 2, 3]
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(11, 17, 3)) * 0.2
    gt -= gt[:, :1]
    seq = SimpleNamespace(action="Walking", layout_3d=H36M17, root_relative=gt)  # what scoring reads of a sequence
    frames = scored_frames(11, 5)
    pred = gt[frames] + rng.normal(size=(len(frames), 17, 3)) * 0.01
    res = score([pred], [seq], frames=[frames])
    expected = np.mean([metrics.mpjve(pred[i : i + 2], gt[frames[i : i + 2]]).mean() for i in (0, 2)]) * 1000
    assert res["frames"] == 4 and abs(res["mpjve"] - expected) < 1e-6
