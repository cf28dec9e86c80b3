"""MediaPipe-33 -> Human3.6M-17 mapping used by the video pipeline, and the gap filling after it."""

from __future__ import annotations

import numpy as np
import pytest

from bonelift.pipeline.gaps import fill_gaps
from bonelift.pipeline.lift import _to_h36m
from bonelift.pipeline.track import DETECTED, INTERPOLATED, MISSING, Track2D
from bonelift.skeletons import H36M17, MEDIAPIPE33


def _mp_track(frames: int = 4) -> Track2D:
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 500, (frames, 33, 2))
    conf = rng.uniform(0.2, 1.0, (frames, 33))
    return Track2D(kp, conf, MEDIAPIPE33, 640, 360, 30.0, "synthetic")


def test_mediapipe_to_h36m_derived_joints() -> None:
    track = _mp_track()
    out = _to_h36m(track)
    mp = {n: track.keypoints[:, MEDIAPIPE33.index(n)] for n in MEDIAPIPE33.joints}
    h = {n: out.keypoints[:, H36M17.index(n)] for n in H36M17.joints}
    np.testing.assert_allclose(h["Hip"], (mp["LHip"] + mp["RHip"]) / 2)
    np.testing.assert_allclose(h["Thorax"], (mp["LShoulder"] + mp["RShoulder"]) / 2)
    np.testing.assert_allclose(h["Spine"], (h["Hip"] + h["Thorax"]) / 2)
    np.testing.assert_allclose(h["Neck/Nose"], mp["Nose"])
    ear_centre = (mp["LEar"] + mp["REar"]) / 2
    np.testing.assert_allclose(h["Head"], ear_centre + 0.5 * (ear_centre - h["Thorax"]))
    for name in ("LShoulder", "RElbow", "LWrist", "RHip", "LKnee", "RFoot"):
        np.testing.assert_allclose(h[name], mp[name])
    # a derived joint is only as confident as its least confident source
    c = {n: track.confidence[:, MEDIAPIPE33.index(n)] for n in MEDIAPIPE33.joints}
    np.testing.assert_allclose(out.confidence[:, H36M17.index("Hip")], np.minimum(c["LHip"], c["RHip"]))
    np.testing.assert_allclose(out.confidence[:, H36M17.index("LWrist")], c["LWrist"])


def test_mapping_keeps_missing_frames_missing() -> None:
    track = _mp_track(5)
    track.keypoints[2] = np.nan
    track.status[2] = MISSING
    out = _to_h36m(track)
    assert np.isnan(out.keypoints[2]).all() and np.isfinite(out.keypoints[[0, 1, 3, 4]]).all()
    assert list(out.status) == [DETECTED, DETECTED, MISSING, DETECTED, DETECTED]


def _line_track(status: list[int]) -> Track2D:
    t = len(status)
    kp = np.repeat(np.arange(t, dtype=float)[:, None, None], 17, axis=1).repeat(2, axis=2) * 10.0
    kp[:, :, 1] += np.arange(17)[None]
    conf = np.full((t, 17), 0.9)
    missing = np.array(status) == MISSING
    kp[missing] = np.nan
    conf[missing] = 0.0
    return Track2D(kp, conf, H36M17, 640, 360, 30.0, "synthetic")


def test_fill_gaps_interpolates_short_gaps_and_flags_them() -> None:
    d, m = DETECTED, MISSING
    track = _line_track([d, d, m, m, d, m, d, d])
    filled = fill_gaps(track, max_gap=2)
    truth = _line_track([d] * 8).keypoints
    np.testing.assert_allclose(filled.keypoints, truth)  # linear motion is recovered exactly
    assert list(filled.status) == [d, d, INTERPOLATED, INTERPOLATED, d, INTERPOLATED, d, d]
    assert (filled.confidence[[2, 3, 5]] == 0).all() and (filled.confidence[[0, 1, 4, 6, 7]] == 0.9).all()
    assert np.isnan(track.keypoints[2]).all()  # input untouched


@pytest.mark.parametrize("max_gap", [0, 1, 2])
def test_fill_gaps_leaves_long_gaps_and_edges_missing(max_gap: int) -> None:
    d, m = DETECTED, MISSING
    track = _line_track([m, d, m, m, m, d, m])
    filled = fill_gaps(track, max_gap=max_gap)
    assert list(filled.status) == [m, d, m, m, m, d, m]
    assert np.isnan(filled.keypoints[[0, 2, 3, 4, 6]]).all()
    assert filled.num_frames == 7


def test_fill_gaps_per_joint_like_openpose_misses() -> None:
    d = DETECTED
    track = _line_track([d] * 6)
    truth = track.keypoints.copy()
    track.keypoints[2:4, 9] = np.nan  # the nose missed for two frames
    track.keypoints[1:5, 3] = np.nan  # a foot missed for four
    track.status = np.where(np.isfinite(track.keypoints).all(axis=(1, 2)), DETECTED, MISSING).astype(np.int8)
    filled = fill_gaps(track, max_gap=2)
    np.testing.assert_allclose(filled.keypoints[[0, 5]], truth[[0, 5]])
    assert list(filled.status) == [d, MISSING, MISSING, MISSING, MISSING, d]  # the foot gap is too long
    filled = fill_gaps(track, max_gap=4)
    np.testing.assert_allclose(filled.keypoints, truth)
    assert list(filled.status) == [d, INTERPOLATED, INTERPOLATED, INTERPOLATED, INTERPOLATED, d]
    assert filled.confidence[2, 9] == 0 and filled.confidence[2, 0] == 0.9  # only filled joints lose confidence


def test_reframing_matches_training_size_and_keeps_motion():

    from bonelift.models import ModelConfig, build_model
    from bonelift.pipeline.lift import frame_like_training
    from bonelift.skeletons import H36M17

    rng = np.random.default_rng(0)
    model = build_model(ModelConfig(hidden=8))
    train = rng.normal(0, 0.05, (200, 17, 2)) + np.linspace(-0.3, 0.3, 17)[None, :, None] * np.array([0.2, 1.0])
    model.normalizer.fit(train.astype(np.float32), rng.normal(size=(200, 16, 3)).astype(np.float32))
    mean = model.normalizer.in_mean.view(-1, 2).numpy()
    head, feet = H36M17.index("Head"), H36M17.indices(["LFoot", "RFoot"])
    ref = np.linalg.norm(mean[head] - mean[feet].mean(0))
    clip = train[:50] * 0.3 + np.array([0.5, 0.2])  # the same people, small and off-centre
    out = frame_like_training(model, clip)
    height = np.median(np.linalg.norm(out[:, head] - out[:, feet].mean(1), axis=-1))
    assert height == pytest.approx(ref, rel=1e-6)
    np.testing.assert_allclose(np.median(out[:, 0], axis=0), mean[0], atol=1e-9)
    # one similarity for the clip: frame-to-frame differences only scale
    scale = ref / np.median(np.linalg.norm(clip[:, head] - clip[:, feet].mean(1), axis=-1))
    np.testing.assert_allclose(np.diff(out, axis=0), np.diff(clip, axis=0) * scale, atol=1e-9)
