"""`lift()` with video lifters: whole-clip inference per posed run, --causal, bundled weights, lifter metadata."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pipeline_fixtures import walking_poses

from bonelift.cameras import normalize_screen
from bonelift.checkpoints import rebuild
from bonelift.cli import main
from bonelift.errors import DataError, OptionError
from bonelift.fitting import fit_clip_skeleton
from bonelift.geometry import mirror
from bonelift.pipeline import lift, lifters
from bonelift.pipeline.export import read_npz
from bonelift.pipeline.track import MISSING
from bonelift.skeletons import H36M17

FPS = 25.0
torch.set_num_threads(1)


def _keypoint_file(path: Path, frames: int = 40, drop: tuple[int, ...] = (5, *range(15, 25))) -> Path:
    """A walking person 5 m in front of a 1000 px camera in a 640x480 image, confidences varying per joint;
    frame 5 is a short gap (filled), frames 15-24 a long one (missing)."""
    poses = walking_poses(frames) + np.array([0.3, 0.1, 5.0])
    kp = 1000.0 * poses[..., :2] / poses[..., 2:] + np.array([320.0, 240.0])
    kp[list(drop)] = np.nan
    conf = np.random.default_rng(0).uniform(0.3, 1.0, kp.shape[:2])
    np.savez(path, keypoints=kp, confidence=conf, width=640, height=480, fps=FPS, layout="h36m17")
    return path


def _offline(ckpt: Path, poses, skeleton: bool = True) -> np.ndarray:
    """The model's own `infer` on each posed run of the exported 2D (screen coordinates, no reframing; centred
    models averaged with the un-mirrored `infer` of the mirrored run), then (by default, as `lift` does) one
    symmetric skeleton for the track (causal models: the running one)."""
    model = rebuild(ckpt)[0]
    out = np.full(poses.joints.shape, np.nan)
    screen = normalize_screen(poses.keypoints_2d, poses.width, poses.height)
    for a, b in lifters.posed_runs(poses.status):
        x = torch.as_tensor(screen[a:b], dtype=torch.float32)
        c = torch.as_tensor(poses.confidence[a:b], dtype=torch.float32)
        pred = model.infer(x, c).numpy()
        if not model.config.causal:
            flip = H36M17.flip_permutation
            mirrored = model.infer(mirror(x, H36M17), c[:, flip]).numpy()
            pred = (pred + mirror(mirrored, H36M17)) / 2
        out[a:b] = pred
    return fit_clip_skeleton(out, H36M17, causal=bool(model.config.causal)) if skeleton else out


@pytest.mark.parametrize("key", ["tcn", "bone", "tcn_causal", "bone_causal"])
def test_video_lifter_lifts_each_posed_run_like_infer(tmp_path: Path, video_checkpoints: dict, key: str) -> None:
    ckpt = video_checkpoints[key]
    causal = key.endswith("causal")
    summary = lift(_keypoint_file(tmp_path / "walk.npz"), tmp_path / "out", model=ckpt, causal=causal,
                   pictures=False, progress=False, fusion=False)
    poses = read_npz(tmp_path / "out" / "poses3d.npz")
    assert (summary.detected, summary.interpolated, summary.missing) == (29, 1, 10)
    assert (poses.status[15:25] == MISSING).all() and np.isnan(poses.joints[15:25]).all()
    assert np.isfinite(poses.joints[poses.status != MISSING]).all()
    assert lifters.posed_runs(poses.status) == [(0, 15), (25, 40)]
    np.testing.assert_allclose(poses.joints, _offline(ckpt, poses), atol=1e-4)
    lift(_keypoint_file(tmp_path / "walk.npz"), tmp_path / "raw", model=ckpt, causal=causal, skeleton=False,
         pictures=False, progress=False, fusion=False)
    np.testing.assert_allclose(read_npz(tmp_path / "raw" / "poses3d.npz").joints, _offline(ckpt, poses, False),
                               atol=1e-4)
    name, _, _ = key.partition("_")
    expected = {"file": ckpt.name, "model": name, "kind": "video", "causal": causal, "receptive_field": 9,
                "confidence": True, "skeleton": True, "fusion": False}
    assert poses.lifter == expected
    doc = json.loads((tmp_path / "out" / "poses3d.json").read_text())
    assert doc["lifter"] == expected
    assert f"lifter: {ckpt.name} ({name}, {'causal' if causal else 'centred'} video, 9 frames)" in str(summary)
    # By default video lifters fuse; a keypoint file has no detector 3D, and the outputs say so.
    fused = lift(_keypoint_file(tmp_path / "walk.npz"), tmp_path / "fused", model=ckpt, causal=causal,
                 pictures=False, progress=False)
    info = read_npz(tmp_path / "fused" / "poses3d.npz").lifter
    assert info["fusion"] and info["fusion_inputs"] == "lifter" and not info["skeleton"]
    assert "+ fusion (2D-only path: lifter only)" in str(fused)


def test_trajectory_in_every_export(tmp_path: Path, video_checkpoints: dict) -> None:
    # the camera-frame trajectory in every export (without the world frame, the BVH is in the camera's axes too)
    lift(_keypoint_file(tmp_path / "walk.npz"), tmp_path / "out", model=video_checkpoints["tcn"], focal=1000.0,
         pictures=False, progress=False, world=False, biomech=False)
    out = tmp_path / "out"
    poses = read_npz(out / "poses3d.npz")
    assert poses.camera == {"focal": 1000.0, "principal_point": [320.0, 240.0], "focal_assumed": False}
    posed = poses.status != MISSING
    assert np.isfinite(poses.trajectory[posed]).all() and np.isnan(poses.trajectory[~posed]).all()
    doc = json.loads((out / "poses3d.json").read_text())
    assert doc["camera"]["focal"] == 1000.0 and "camera frame" in doc["trajectory_units"]
    assert doc["frames"][16]["trajectory"] is None
    np.testing.assert_allclose(doc["frames"][3]["trajectory"], poses.trajectory[3], atol=1e-5)
    with (out / "poses3d.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[3]["trajectory_z"]) == pytest.approx(poses.trajectory[3, 2], abs=1e-5)
    assert rows[16]["trajectory_z"] == ""
    motion = (out / "poses3d.bvh").read_text().split("MOTION")[1].splitlines()[3:]
    root_cm = np.array([[float(v) for v in line.split()[:3]] for line in motion])
    np.testing.assert_allclose(root_cm[3], poses.trajectory[3] * [100, -100, -100], atol=1e-3)  # Y-up, cm
    np.testing.assert_allclose(root_cm[16], root_cm[14], atol=1e-6)  # missing frames hold the nearest pose


def test_causal_needs_a_causal_video_checkpoint(tmp_path: Path, video_checkpoints: dict, tiny_checkpoint: Path,
                                                 capsys) -> None:
    kp = _keypoint_file(tmp_path / "walk.npz")
    with pytest.raises(DataError, match=r"tcn\.pt: holds a centred \(non-causal\) video lifter"):
        lift(kp, tmp_path / "o", model=video_checkpoints["tcn"], causal=True, progress=False)
    with pytest.raises(DataError, match=r"tiny\.pt: holds a single-frame lifter; a causal video lifter is needed"):
        lift(kp, tmp_path / "o", model=tiny_checkpoint, causal=True, progress=False)
    with pytest.raises(OptionError, match="causal"):
        lift(kp, tmp_path / "o", lifter="single-frame", causal=True, progress=False)
    assert main(["lift", str(kp), "-o", str(tmp_path / "o"), "--model", str(video_checkpoints["bone"]), "--causal",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bone.pt: holds a centred" in err
    assert not (tmp_path / "o").exists()


def test_bundled_lifter_choice_and_fallback(tmp_path: Path, video_checkpoints: dict, tiny_checkpoint: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    kp = _keypoint_file(tmp_path / "walk.npz")
    monkeypatch.setattr(lifters, "DEFAULT_WEIGHTS", tiny_checkpoint)
    monkeypatch.setattr(lifters, "VIDEO_WEIGHTS", video_checkpoints["tcn"])
    monkeypatch.setattr(lifters, "CAUSAL_VIDEO_WEIGHTS", video_checkpoints["bone_causal"])
    runs = {"default": {}, "causal": {"causal": True}, "single": {"lifter": "single-frame"}}
    for label, options in runs.items():
        lift(kp, tmp_path / label, pictures=False, progress=False, **options)
    assert read_npz(tmp_path / "default" / "poses3d.npz").lifter["file"] == "tcn.pt"
    assert read_npz(tmp_path / "causal" / "poses3d.npz").lifter["file"] == "bone_causal.pt"
    assert read_npz(tmp_path / "single" / "poses3d.npz").lifter["kind"] == "single-frame"
    with pytest.raises(OptionError, match="lifter \\(--lifter\\) is single-frame, but .*tcn.pt holds a video"):
        lift(kp, tmp_path / "x", model=video_checkpoints["tcn"], lifter="single-frame", progress=False)
    with pytest.raises(OptionError, match="reframe .*tcn.pt \\(tcn\\) has none"):
        lift(kp, tmp_path / "x", model=video_checkpoints["tcn"], reframe=True, progress=False)
    # No video weights installed: the default is the single-frame lifter, an explicit --lifter video fails.
    monkeypatch.setattr(lifters, "VIDEO_WEIGHTS", tmp_path / "absent.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lift(kp, tmp_path / "fallback", pictures=False, progress=False)
    assert read_npz(tmp_path / "fallback" / "poses3d.npz").lifter["model"] == "baseline"
    with pytest.raises(DataError, match="absent.pt: the bundled video lifter is not installed"):
        lift(kp, tmp_path / "x", lifter="video", progress=False)
    capsys.readouterr()
    assert main(["lift", str(kp), "-o", str(tmp_path / "cli"), "--no-pictures", "--quiet", "--focal", "900"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "lifter: tiny.pt (baseline, single-frame)" in captured.out
    assert read_npz(tmp_path / "cli" / "poses3d.npz").camera["focal"] == 900.0
    assert main(["lift", str(kp), "-o", str(tmp_path / "cli2"), "--model", str(video_checkpoints["tcn"]),
                 "--lifter", "video", "--no-reframe", "--no-pictures", "--quiet"]) == 0
    assert main(["lift", str(kp), "-o", str(tmp_path / "x"), "--focal", "-3", "--quiet"]) == 2
    assert "focal (--focal) must be from 1 to 1e+06" in capsys.readouterr().err
