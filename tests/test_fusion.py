"""Anatomical fusion (issue 26): a synthetic clip with known 3D, its 2D, and two corrupted 3D estimates."""

from __future__ import annotations

import numpy as np
import pytest

from bonelift.fusion import FusionSettings, RunningFusion, fuse_clip
from bonelift.geometry import bone_lengths, bone_vectors, joints_from_bones
from bonelift.metrics import mpjpe
from bonelift.skeletons import H36M17
from tests.conftest import random_poses

FOCAL, PRINCIPAL = 1000.0, np.array([500.0, 500.0])


def _clip(frames: int = 60, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) camera-frame metres: a person 4 m in front of the camera (y down, z forward)."""
    world = random_poses(frames, np.random.default_rng(seed)).astype(np.float64)
    world -= world[:1, :1]
    cam = np.stack([world[..., 0], -world[..., 2] + 0.9, world[..., 1] + 4.0], -1)
    return cam


def _project(cam: np.ndarray) -> np.ndarray:
    return FOCAL * cam[..., :2] / cam[..., 2:] + PRINCIPAL


def _corrupt(rel: np.ndarray, rng: np.random.Generator, degrees: float, flip: bool) -> np.ndarray:
    """Each bone turned by a random rotation (temporally correlated, sd `degrees`), lengths scaled by 0.9-1.1,
    and with `flip` the lower legs' depth mirrored on a third of the frames (MediaPipe's typical error)."""
    bones = bone_vectors(rel, H36M17)
    t, b = bones.shape[:2]
    axis = rng.normal(size=(b, 3))
    drift = np.cumsum(rng.normal(size=(t, b)), 0)
    drift = drift / drift.std(0, keepdims=True).clip(1e-9)
    angle = np.radians(degrees) * drift
    k = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    v = bones
    cos, sin = np.cos(angle)[..., None], np.sin(angle)[..., None]
    v = v * cos + np.cross(k, v) * sin + k * (k * v).sum(-1, keepdims=True) * (1 - cos)  # Rodrigues
    v = v * rng.uniform(0.9, 1.1, size=(1, b, 1))
    if flip:
        legs = [H36M17.child_bone[H36M17.index(n)] for n in ("LFoot", "RFoot")]
        rows = slice(t // 3, 2 * t // 3)
        for leg in legs:
            v[rows, leg, 2] *= -1
    return joints_from_bones(v, H36M17)


def test_fusion_recovers_the_truth_better_than_either_input():
    rng = np.random.default_rng(1)
    cam = _clip()
    rel = cam - cam[:, :1]
    pixels = _project(cam) + rng.normal(0, 2.0, cam.shape[:2] + (2,))
    detector_3d = _corrupt(rel, rng, 12.0, flip=True)
    lifter = _corrupt(rel, rng, 12.0, flip=False)
    fused = fuse_clip(pixels, None, [lifter, detector_3d], H36M17, FOCAL, PRINCIPAL)
    fused_rel = fused - fused[:, :1]
    err = {name: mpjpe(p, rel).mean() for name, p in (("fused", fused_rel), ("detector", detector_3d),
                                                           ("lifter", lifter))}
    assert err["fused"] < 0.75 * min(err["detector"], err["lifter"]), err
    # one skeleton for the clip, mirrored bones equal
    lengths = bone_lengths(fused, H36M17)
    assert np.allclose(lengths, lengths[:1], atol=1e-6)
    for left, right in H36M17.mirrored_bones:
        assert np.allclose(lengths[:, left], lengths[:, right], atol=1e-6)
    # the root lands where the camera saw it
    assert np.abs(fused[:, 0] - cam[:, 0]).mean() < 0.25


def test_a_clip_in_several_chunks_fits_as_in_one(monkeypatch):
    """A clip of one chunk reuses its factorised normal equations for the frames' step; in several chunks each
    chunk's system is built again (bounded memory): both are the same Gauss-Newton step."""
    import bonelift.fusion as fusion

    rng = np.random.default_rng(4)
    cam = _clip(40, seed=5)
    rel = cam - cam[:, :1]
    pixels = _project(cam) + rng.normal(0, 2.0, cam.shape[:2] + (2,))
    priors = [_corrupt(rel, rng, 10.0, flip=False), _corrupt(rel, rng, 10.0, flip=True)]
    whole = fuse_clip(pixels, None, priors, H36M17, FOCAL, PRINCIPAL)
    monkeypatch.setattr(fusion, "CHUNK", 7)
    chunked = fuse_clip(pixels, None, priors, H36M17, FOCAL, PRINCIPAL)
    np.testing.assert_allclose(chunked, whole, atol=1e-9)


def test_causal_fusion_equals_running_fusion_frame_by_frame():
    rng = np.random.default_rng(2)
    cam = _clip(20, seed=3)
    rel = cam - cam[:, :1]
    pixels = _project(cam) + rng.normal(0, 2.0, cam.shape[:2] + (2,))
    lifter = _corrupt(rel, rng, 10.0, flip=False)
    detector_3d = _corrupt(rel, rng, 10.0, flip=True)
    detector_3d[5:8] = np.nan  # the detector's 3D missing on some frames
    pixels[12] = np.nan  # and one frame without a person
    settings = FusionSettings(steps=5)
    offline = fuse_clip(pixels, None, [lifter, detector_3d], H36M17, FOCAL, PRINCIPAL, causal=True, settings=settings)
    live = RunningFusion(H36M17, 2, settings)
    for t in range(len(cam)):
        pose = live.push(pixels[t], None, [lifter[t], detector_3d[t]], FOCAL, PRINCIPAL)
        if t == 12:
            assert pose is None and np.isnan(offline[t]).all()
        else:
            np.testing.assert_allclose(pose, offline[t], atol=1e-6)


def test_two_d_only_path_and_empty_input():
    """With the lifter as the only prior (a keypoint file has no detector 3D) the 2D still corrects it."""
    rng = np.random.default_rng(4)
    cam = _clip(20)
    rel = cam - cam[:, :1]
    lifter = _corrupt(rel, rng, 12.0, flip=False)
    fused = fuse_clip(_project(cam), None, [lifter], H36M17, FOCAL, PRINCIPAL, settings=FusionSettings(steps=5))
    assert mpjpe(fused - fused[:, :1], rel).mean() < 0.8 * mpjpe(lifter, rel).mean()
    nothing = fuse_clip(np.full((3, 17, 2), np.nan), None, [rel[:3]], H36M17, FOCAL, PRINCIPAL)
    assert np.isnan(nothing).all()


@pytest.mark.parametrize("causal", [False, True])
def test_fusion_keeps_frames_without_priors_empty(causal):
    cam = _clip(8)
    rel = cam - cam[:, :1]
    prior = rel.copy()
    prior[2] = np.nan
    out = fuse_clip(_project(cam), None, [prior], H36M17, FOCAL, PRINCIPAL, causal=causal,
                    settings=FusionSettings(steps=5))
    assert np.isnan(out[2]).all() and np.isfinite(np.delete(out, 2, 0)).all()


def test_mediapipe_like_3d_is_root_relative_noisy_and_deterministic():
    from bonelift.datasets.virtual import detector_like_3d
    from bonelift.metrics import p_mpjpe

    cam = _clip(200)
    rel = cam - cam[:, :1]
    a = detector_like_3d(rel, np.random.default_rng(0))
    b = detector_like_3d(rel, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == rel.shape and np.allclose(a[:, 0], 0.0)
    err = p_mpjpe(a, rel).mean()
    assert 0.02 < err < 0.12  # tens of millimetres, as MediaPipe's own 3D against a reference
    fused = fuse_clip(_project(cam), None, [a], H36M17, FOCAL, PRINCIPAL)
    assert p_mpjpe(fused - fused[:, :1], rel).mean() < err
