import numpy as np
import pytest

from bonelift.cameras import H36M_CAMERA_IDS
from bonelift.datasets import flatten_frames, load_h36m, load_humaneva
from bonelift.skeletons import H36M17, MPII16
from tests.conftest import make_h36m


@pytest.mark.parametrize("fmt", ["npz17", "videopose", "archive"])
def test_every_h36m_format_gives_the_same_sequences(tmp_path, fmt):
    data = make_h36m(tmp_path / fmt, ["S1", "S9"], fmt=fmt)
    gt = load_h36m(tmp_path / fmt, "gt", subjects=["S9"])
    assert len(gt) == 3 * 4
    seq = next(s for s in gt if s.take == "Directions 1" and s.camera.id == "58860488")
    assert seq.action == "Directions" and seq.subject == "S9" and seq.layout == H36M17
    world = data["world"]["S9"]["Directions 1"]
    np.testing.assert_allclose(seq.camera.camera_to_world(seq.poses_3d), world, atol=1e-5)
    np.testing.assert_allclose(seq.root_relative[:, 0], 0)
    # ground-truth 2D is the distorted projection of the camera-frame joints
    np.testing.assert_allclose(seq.keypoints, seq.camera.project(seq.poses_3d.astype(np.float64)), atol=1e-3)
    sh = load_h36m(tmp_path / fmt, "sh", subjects=["S9"])
    seq_sh = next(s for s in sh if s.take == "Directions 1" and s.camera.id == "58860488")
    assert seq_sh.layout == MPII16
    np.testing.assert_allclose(seq_sh.keypoints, data["detections"]["S9"]["Directions 1"]["58860488"], atol=1e-4)


def test_detections_shorter_than_3d_are_aligned_and_missing_cameras_skipped(tmp_path):
    root = tmp_path / "h"
    make_h36m(root, ["S9"], frames=30)
    det = np.load(root / "data_2d_h36m_sh_pt_mpii_16j.npz", allow_pickle=True)["positions_2d"].item()
    det["S9"]["Walking"]["54138969"] = det["S9"]["Walking"]["54138969"][:25]
    del det["S9"]["Photo_1"]["60457274"]
    np.savez(root / "data_2d_h36m_sh_pt_mpii_16j.npz", positions_2d=np.array(det, dtype=object))
    seqs = load_h36m(root, "sh", subjects=["S9"])
    assert len(seqs) == 11
    walk = next(s for s in seqs if s.take == "Walking" and s.camera.id == "54138969")
    assert len(walk.keypoints) == len(walk.poses_3d) == 25


def test_flatten_frames(h36m_root):
    seqs = load_h36m(h36m_root, "gt", subjects=["S1"])
    frames = flatten_frames(seqs, stride=4)
    n = sum(len(range(0, len(s), 4)) for s in seqs)
    assert frames["inputs"].shape == (n, 17, 2) and frames["targets"].shape == (n, 17, 3)
    assert set(frames["camera"]) == set(H36M_CAMERA_IDS)
    assert np.abs(frames["inputs"]).max() < 1.5  # screen coordinates


def test_humaneva_loader_calibrates_cameras(tmp_path):
    from bonelift.cameras import Camera
    from tests.conftest import random_poses

    rng = np.random.default_rng(0)
    cams = [Camera(f"c{i}", np.eye(3), np.array([0.2 * i, 0.1, -4.0]), np.array([800.0, 800]), np.array([320.0, 240]),
                   np.zeros(3), np.zeros(2), 640, 480) for i in range(3)]
    to15 = [H36M17.index(n) for n in ("Hip", "Thorax", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
                                       "LHip", "LKnee", "LFoot", "RHip", "RKnee", "RFoot", "Head")]
    p3d, p2d = {}, {}
    for split in ("Train", "Validate"):
        for s in ("S1", "S2", "S3"):
            key = f"{split}/{s}"
            p3d[key], p2d[key] = {}, {}
            for take in ("Walking 1 chunk0", "Jog 1 chunk0", "Box 1 chunk0"):
                world = random_poses(20, rng)[:, to15][..., [0, 2, 1]] * np.array([1, -1, 1])  # y-up world
                p3d[key][take] = world
                p2d[key][take] = [c.project(c.world_to_camera(world.astype(np.float64)), distort=False) for c in cams]
    np.savez(tmp_path / "data_3d_humaneva15.npz", positions_3d=np.array(p3d, dtype=object))
    np.savez(tmp_path / "data_2d_humaneva15_gt.npz", positions_2d=np.array(p2d, dtype=object),
             metadata={"layout_name": "humaneva15", "num_joints": 15})
    seqs = load_humaneva(tmp_path, "Validate")
    assert len(seqs) == 3 * 2 * 3
    assert {s.action for s in seqs} == {"Walking", "Jog"}
    s = seqs[0]
    np.testing.assert_allclose(s.camera.project(s.poses_3d.astype(np.float64), distort=False), s.keypoints, atol=1e-3)
    assert (s.poses_3d[..., 2] > 0).all()


def test_actions_filter_keeps_one_action_and_names_the_known_ones(tmp_path):
    from bonelift.config import TrainConfig
    from bonelift.datasets import run_split
    from bonelift.errors import BoneliftError

    make_h36m(tmp_path / "h", ["S1", "S9"])
    cfg = TrainConfig(data_root=str(tmp_path / "h"), test_subjects=("S9",), actions=("Walking",))
    seqs = run_split(cfg)
    assert seqs and {s.action for s in seqs} == {"Walking"} and {s.subject for s in seqs} == {"S9"}
    with pytest.raises(BoneliftError, match="known: Directions, Photo, Walking"):
        run_split(TrainConfig(data_root=str(tmp_path / "h"), test_subjects=("S9",), actions=("Jumping",)))
