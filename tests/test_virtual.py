"""Virtual cameras and detector-like 2D (issue 17's training data), on synthetic Human3.6M."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bonelift.datasets import load_split
from bonelift.datasets.virtual import (
    ViewConfig,
    detector_like,
    elevation_group,
    look_at,
    synthesize,
    virtual_camera,
)
from bonelift.errors import BoneliftError
from bonelift.geometry import bone_lengths
from bonelift.skeletons import H36M17
from tests.conftest import REST_POSE, make_h36m


@pytest.fixture
def seqs(tmp_path: Path):
    make_h36m(tmp_path / "h36m", ["S1"], frames=60)
    return load_split("h36m", str(tmp_path / "h36m"), "gt", ("S1",))


def test_look_at_is_a_rotation_that_centres_the_target() -> None:
    centre, target = np.array([3.0, -2.0, 2.5]), np.array([0.0, 0.5, 1.0])
    rot = look_at(centre, target, roll_deg=12.0)
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(rot), 1.0)
    cam = rot @ (target - centre)
    assert np.allclose(cam[:2], 0.0, atol=1e-12) and cam[2] > 0
    # Without roll, world up projects upwards in the image (camera y points down).
    up = look_at(centre, target) @ np.array([0.0, 0.0, 1.0])
    assert up[1] < 0


@pytest.mark.parametrize("group", ["below", "level", "above"])
def test_virtual_cameras_frame_the_person_from_the_asked_elevation(group: str) -> None:
    from bonelift.datasets.virtual import ELEVATIONS

    rng = np.random.default_rng(1)
    target = REST_POSE[0]
    inside = []
    for _ in range(50):
        cam = virtual_camera(target, rng, ELEVATIONS[group])
        assert elevation_group(cam, target) == group
        px = cam.project(cam.world_to_camera(REST_POSE))
        assert (cam.world_to_camera(REST_POSE)[:, 2] > 0).all()
        inside.append(((px >= 0) & (px < [cam.width, cam.height])).all())
    assert np.mean(inside) >= 0.85


def test_detector_like_derives_joints_as_the_pipeline_does_with_bounded_noise() -> None:
    rng = np.random.default_rng(2)
    n = 300
    pixels = np.tile(REST_POSE[:, [0, 2]] * [400, -400] + [500, 900], (n, 1, 1))
    out, conf = detector_like(pixels, 1000, 1000, rng, noise=0.01)
    ix = H36M17.index
    hips, sh = [ix("LHip"), ix("RHip")], [ix("LShoulder"), ix("RShoulder")]
    assert np.allclose(out[:, ix("Spine")], out[:, hips + sh].mean(1), atol=1e-3)
    assert np.allclose(out[:, ix("Thorax")], out[:, sh].mean(1), atol=1e-3)
    assert np.allclose(conf[:, ix("Spine")], conf[:, hips + sh].min(1))
    assert ((conf >= 0) & (conf <= 1)).all()
    height = 400 * (REST_POSE[10, 2] - REST_POSE[3, 2])
    err = np.linalg.norm(out - pixels, axis=-1)[:, [ix("LElbow"), ix("RKnee")]]
    assert 0.001 * height < np.median(err) < 0.06 * height
    # Joints outside the frame get a low score.
    off = pixels.copy()
    off[:, ix("LWrist")] = [-50.0, 500.0]
    _, c = detector_like(off, 1000, 1000, np.random.default_rng(3))
    assert c[:, ix("LWrist")].max() <= 0.3


def test_synthesize_keeps_the_3d_pose_and_projects_it_through_the_new_cameras(seqs) -> None:
    views = ViewConfig(cameras="both", virtual_views=3, detector="mediapipe", detector_noise=0.0)
    out = synthesize(seqs, views, seed=0)
    takes = {(s.subject, s.take) for s in seqs}
    assert len(out) == len(seqs) + 3 * len(takes)
    virtual = [s for s in out if s.camera.id.startswith("virtual-")]
    assert len(virtual) == 3 * len(takes)
    for s in virtual:
        assert s.confidence is not None and s.confidence.shape == s.keypoints.shape[:2]
        src = next(q for q in seqs if (q.subject, q.take) == (s.subject, s.take))
        assert np.allclose(bone_lengths(s.poses_3d, H36M17), bone_lengths(src.poses_3d, H36M17), atol=1e-4)
        # With zero noise only the per-clip landmark offsets and derived joints differ from the projection.
        px = s.camera.project(s.poses_3d.astype(np.float64))
        limbs = [H36M17.index(j) for j in ("LKnee", "RWrist", "LElbow", "RFoot")]
        ok = s.confidence[:, limbs] > 0.6
        assert np.allclose(s.keypoints[:, limbs][ok], px[:, limbs][ok], atol=0.5)
    again = synthesize(seqs, views, seed=0)
    assert all(np.array_equal(a.keypoints, b.keypoints) for a, b in zip(out, again))


def test_view_config_refuses_virtual_cameras_without_detector_like_2d() -> None:
    with pytest.raises(BoneliftError, match="--detector mediapipe"):
        ViewConfig(cameras="virtual").check()


def test_video_training_on_virtual_views_feeds_confidences(tmp_path: Path) -> None:
    from bonelift.config import VideoTrainConfig
    from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS
    from bonelift.models import VideoModelConfig
    from bonelift.training import train_video

    root = tmp_path / "h36m"
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=12)
    model = VideoModelConfig(name="bone", receptive_field=9, channels=16, dropout=0.0, confidence=True,
                             options={"length_frames": 5})
    cfg = VideoTrainConfig(model=model, views=ViewConfig(cameras="both", virtual_views=2, detector="mediapipe"),
                           data_root=str(root), epochs=1, batch_size=64, stride=4, eval_stride=1, precise_bn=2,
                           out_dir=str(tmp_path / "run"), device="cpu")
    cfg.validate()
    trainer = train_video(cfg, progress=False)
    assert trainer.model.config.confidence and trainer.model.direction[0].score is not None
    assert any(s.camera.id.startswith("virtual-") for s in trainer.data.seqs)
    assert np.isfinite(trainer.history[-1]["p1_mm"])
    with pytest.raises(BoneliftError, match="--keypoints gt"):
        VideoTrainConfig(keypoints="sh", views=cfg.views).validate()


def test_framing_camera_keeps_a_walking_take_in_front_and_in_frame() -> None:
    from bonelift.datasets.virtual import framing_camera

    walk = REST_POSE[None] + np.linspace(-2.5, 2.5, 60)[:, None, None] * np.array([1.0, 0.3, 0.0])
    target = walk[:, 0].mean(0)
    for seed in range(20):
        cam = framing_camera(walk, target, np.random.default_rng(seed))
        pts = cam.world_to_camera(walk)
        px = cam.project(pts)
        assert (pts[..., 2] > 0.5).all()
        assert (((px >= 0) & (px < [cam.width, cam.height])).all(-1).mean(-1) >= 0.8).all()


def test_elevation_groups_draw_below_level_and_above_alike(h36m_root) -> None:
    """--elevation-groups: a third of the virtual cameras from each elevation group (default: uniform in degrees)."""
    from collections import Counter

    from bonelift.datasets import load_h36m
    from bonelift.datasets.virtual import ViewConfig, synthesize

    seqs = [s for s in load_h36m(h36m_root, "gt", ["S1"]) if s.camera.id == "54138969"]
    cfg = ViewConfig(cameras="virtual", virtual_views=60, detector="mediapipe", elevation_groups=True)
    counts = Counter(s.camera.id.split("-")[1] for s in synthesize(seqs, cfg, seed=0))
    total = sum(counts.values())
    assert set(counts) == {"below", "level", "above"}
    assert all(0.22 < n / total < 0.45 for n in counts.values()), counts
