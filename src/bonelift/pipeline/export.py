"""The lifted result and its plain-data exports: npz (arrays), JSON (nested lists) and CSV (one row per frame).

All three carry the same content, so a user picks the format their tool reads: joints in metres in
the camera frame (x right, y down, z forward), root-relative (pelvis at the origin), Human3.6M-17
order, plus the 2D keypoints they were lifted from, per-joint confidence and per-frame status.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.pipeline.track import STATUS_NAMES
from bonelift.skeletons import H36M17


@dataclass
class Poses3D:
    """Lifted poses of one person: joints (T, 17, 3) metres (NaN on missing frames), keypoints_2d
    (T, 17, 2) pixels, confidence (T, 17), status (T,) codes of `track.STATUS_NAMES`."""

    joints: np.ndarray
    keypoints_2d: np.ndarray
    confidence: np.ndarray
    status: np.ndarray
    fps: float
    width: int
    height: int
    source: str

    @property
    def num_frames(self) -> int:
        return len(self.joints)


def write_npz(poses: Poses3D, path: Path) -> None:
    np.savez_compressed(
        path, joints=poses.joints.astype(np.float32), keypoints_2d=poses.keypoints_2d.astype(np.float32),
        confidence=poses.confidence.astype(np.float32), status=poses.status.astype(np.int8),
        joint_names=np.array(H36M17.joints), parents=np.array(H36M17.parents), fps=np.float64(poses.fps),
        width=np.int64(poses.width), height=np.int64(poses.height), layout=np.array(H36M17.name),
        units=np.array("metres, camera frame (x right, y down, z forward), root-relative"),
        source=np.array(poses.source),
    )


def _nested(a: np.ndarray, digits: int) -> list:
    """Rounded nested lists with NaN written as null (JSON has no NaN)."""
    rounded = np.round(a.astype(np.float64), digits).astype(object)
    rounded[~np.isfinite(a)] = None
    return rounded.tolist()


def write_json(poses: Poses3D, path: Path) -> None:
    doc = {
        "layout": H36M17.name,
        "joint_names": list(H36M17.joints),
        "parents": list(H36M17.parents),
        "units": "metres, camera frame (x right, y down, z forward), root-relative",
        "fps": poses.fps,
        "width": poses.width,
        "height": poses.height,
        "source": poses.source,
        "frames": [
            {
                "frame": t,
                "status": STATUS_NAMES[int(poses.status[t])],
                "joints": _nested(poses.joints[t], 5),
                "keypoints_2d": _nested(poses.keypoints_2d[t], 2),
                "confidence": _nested(poses.confidence[t], 3),
            }
            for t in range(poses.num_frames)
        ],
    }
    path.write_text(json.dumps(doc, separators=(",", ":")))


def write_csv(poses: Poses3D, path: Path) -> None:
    header = ["frame", "time_s", "status"]
    for name in H36M17.joints:
        header += [f"{name}_x", f"{name}_y", f"{name}_z", f"{name}_conf"]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for t in range(poses.num_frames):
            row: list = [t, f"{t / poses.fps:.4f}", STATUS_NAMES[int(poses.status[t])]]
            for j in range(H36M17.num_joints):
                row += ["" if not np.isfinite(v) else f"{v:.5f}" for v in poses.joints[t, j]]
                row.append(f"{poses.confidence[t, j]:.3f}")
            out.writerow(row)


def read_npz(path: str | Path) -> Poses3D:
    """Load a `poses3d.npz` written by `write_npz` (used by tests and for re-rendering)."""
    with np.load(path, allow_pickle=False) as z:
        return Poses3D(z["joints"].astype(np.float64), z["keypoints_2d"].astype(np.float64), z["confidence"].astype(np.float64),
                       z["status"], float(z["fps"]), int(z["width"]), int(z["height"]), str(z["source"]))
