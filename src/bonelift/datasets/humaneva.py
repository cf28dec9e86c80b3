"""HumanEva-I from its VideoPose3D npz files (15 joints, three colour cameras).

The files hold world-frame 3D and ground-truth 2D projections but no camera parameters, so each
(subject, camera) pair is calibrated from those correspondences by a direct linear transform;
the reprojection error of that fit is checked so a bad file cannot pass unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bonelift.cameras import calibrate_dlt
from bonelift.datasets.common import PoseSequence, load_pickled_npz
from bonelift.errors import DataError, check_array
from bonelift.skeletons import HUMANEVA15

HUMANEVA_ACTIONS = ("Walking", "Jog", "Box", "Gestures", "ThrowCatch")
HUMANEVA_IMAGE_SIZE = (640, 480)
# The usual protocol: train on the Train chunks, test on the Validate chunks of S1-S3.
HUMANEVA_TRAIN_SUBJECTS = ("Train/S1", "Train/S2", "Train/S3")
HUMANEVA_TEST_SUBJECTS = ("Validate/S1", "Validate/S2", "Validate/S3")
_MAX_CALIBRATION_ERROR_PX = 2.0


def humaneva_action(take: str, source: Path | None = None) -> str:
    """"Walking 1 chunk0" -> "Walking"."""
    base = re.sub(r"\s+\d+(\s+chunk\d+)?$", "", take.strip())
    if base not in HUMANEVA_ACTIONS:
        raise DataError(source, f"unknown HumanEva action {take!r} (expected one of {', '.join(HUMANEVA_ACTIONS)})")
    return base


def load_humaneva(
    root: str | Path,
    split: str = "Train",
    subjects: Iterable[str] = ("S1", "S2", "S3"),
    actions: Iterable[str] = ("Walking", "Jog"),
) -> list[PoseSequence]:
    """Sequences of `split` ("Train" or "Validate") for the given subjects and actions, GT 2D input."""
    root = Path(root)
    p3d, p2d = root / "data_3d_humaneva15.npz", root / "data_2d_humaneva15_gt.npz"
    poses = load_pickled_npz(p3d, "positions_3d")["value"]
    kps = load_pickled_npz(p2d, "positions_2d")["value"]
    actions = tuple(actions)
    cameras = _calibrate(poses, kps, p2d)
    sequences = []
    for subject in subjects:
        key = f"{split}/{subject}"
        if key not in poses:
            raise DataError(p3d, f"no sequences for {key}")
        for take in sorted(poses[key]):
            action = humaneva_action(take, p3d)
            if action not in actions or take not in kps.get(key, {}):
                continue
            world = check_array(np.asarray(poses[key][take], np.float64), p3d, f"{key}/{take}", (None, 15, 3))
            for c, kp in enumerate(kps[key][take]):
                kp = check_array(np.asarray(kp, np.float32), p2d, f"{key}/{take}/camera {c}", (None, 15, 2))
                cam = cameras[(subject, c)]
                n = min(len(kp), len(world))
                cam_pose = cam.world_to_camera(world[:n]).astype(np.float32)
                sequences.append(PoseSequence(key, action, take, cam, kp[:n], HUMANEVA15, cam_pose, HUMANEVA15))
    if not sequences:
        raise DataError(root, f"no HumanEva sequences for {split} {list(subjects)} {list(actions)}")
    return sequences


def _calibrate(poses: dict, kps: dict, source: Path) -> dict:
    """One camera per (subject, camera index), fitted on every frame of that subject in both splits."""
    pairs: dict[tuple[str, int], tuple[list, list]] = {}
    for key, takes in kps.items():
        subject = key.split("/")[-1]
        for take, per_cam in takes.items():
            if take not in poses.get(key, {}):
                continue
            world = np.asarray(poses[key][take], np.float64)
            for c, kp in enumerate(per_cam):
                n = min(len(kp), len(world))
                pts, pix = pairs.setdefault((subject, c), ([], []))
                pts.append(world[:n:5].reshape(-1, 3))
                pix.append(np.asarray(kp[:n:5], np.float64).reshape(-1, 2))
    cameras = {}
    for (subject, c), (pts, pix) in pairs.items():
        X, u = np.concatenate(pts), np.concatenate(pix)
        cam = calibrate_dlt(X, u, f"{subject}-C{c + 1}", *HUMANEVA_IMAGE_SIZE)
        err = np.linalg.norm(cam.project(cam.world_to_camera(X), distort=False) - u, axis=-1)
        if not np.isfinite(err).all() or np.median(err) > _MAX_CALIBRATION_ERROR_PX:
            raise DataError(
                source,
                f"2D of {subject} camera {c + 1} is not a projection of the 3D (median error {np.median(err):.1f} px)",
            )
        cameras[(subject, c)] = cam
    return cameras
