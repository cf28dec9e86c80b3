"""The lifted result and its plain-data exports: npz (arrays), JSON (nested lists) and CSV (one row per frame).

All three carry the same content, so a user picks the format their tool reads: joints in metres in
the camera frame (x right, y down, z forward), root-relative (pelvis at the origin), Human3.6M-17
order, plus the 2D keypoints they were lifted from, per-joint confidence and per-frame status, the
root trajectory (the pelvis position in the camera frame, metres: joints + trajectory are the joints
in the camera frame; `cameras.root_trajectory` under the camera in `camera`) and the lifter that
produced them (npz `lifter_*`, JSON `lifter`), and the run's options (`LiftConfig` as a dict: npz `config`, a JSON
text; JSON `config`).

Several people: the main person (person 0, the longest track) fills the single-person fields
exactly as for a one-person video; the npz adds every person (`joints_all` (P, T, 17, 3), NaN
where a person is absent, `person_ids`), and when more than one person was tracked the JSON adds a
`people` list per frame and the CSV a `person` column (one row per frame and person).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.errors import DataError
from bonelift.io import loads_json, read_npz_arrays
from bonelift.pipeline.track import MISSING, STATUS_NAMES
from bonelift.skeletons import H36M17
from bonelift.world import WorldFrame

UNITS = "metres, camera frame (x right, y down, z forward), root-relative"
TRAJECTORY_UNITS = "metres, camera frame (x right, y down, z forward): the pelvis; joints + trajectory = camera frame"
WORLD_UNITS = "metres, world frame (y up, floor at y = 0, z the camera's view on the floor, x = y cross z), absolute"


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
    person: int = 0  # identity: 0 is the main person (longest track), then by track length
    trajectory: np.ndarray | None = None  # (T, 3) pelvis in the camera frame, metres; NaN where missing
    lifter: dict | None = None  # `Lifter.info()`: file, model, kind, causal, receptive_field, confidence
    camera: dict | None = None  # focal (px), principal_point (px), focal_assumed (bool)
    config: dict | None = None  # the run's `LiftConfig` as a plain dict (`lift` writes it; None: not recorded)
    world: WorldFrame | None = None  # the clip's world frame (`bonelift.world`), None when not estimated

    def __post_init__(self) -> None:
        if self.trajectory is None:
            self.trajectory = np.full((len(self.joints), 3), np.nan)

    @property
    def num_frames(self) -> int:
        return len(self.joints)

    @property
    def joints_world(self) -> np.ndarray:
        """(T, 17, 3) absolute joints in the world frame (NaN without a world frame or a trajectory)."""
        if self.world is None:
            return np.full(self.joints.shape, np.nan)
        return self.world.to_world(self.joints + self.trajectory[:, None])

    @property
    def trajectory_world(self) -> np.ndarray:
        """(T, 3) the pelvis in the world frame."""
        return self.joints_world[:, 0]


def _everyone(poses: Poses3D, people: list[Poses3D] | None) -> list[Poses3D]:
    return list(people) if people else [poses]


def write_npz(poses: Poses3D, path: Path, people: list[Poses3D] | None = None) -> None:
    """`poses` as the single-person arrays, and `people` (default: just `poses`) stacked along a person axis."""
    everyone = _everyone(poses, people)
    np.savez_compressed(
        path, joints=poses.joints.astype(np.float32), keypoints_2d=poses.keypoints_2d.astype(np.float32),
        joints_all=np.stack([p.joints for p in everyone]).astype(np.float32),
        keypoints_2d_all=np.stack([p.keypoints_2d for p in everyone]).astype(np.float32),
        confidence_all=np.stack([p.confidence for p in everyone]).astype(np.float32),
        status_all=np.stack([p.status for p in everyone]).astype(np.int8),
        person_ids=np.array([p.person for p in everyone], dtype=np.int64), person=np.int64(poses.person),
        confidence=poses.confidence.astype(np.float32), status=poses.status.astype(np.int8),
        joint_names=np.array(H36M17.joints), parents=np.array(H36M17.parents), fps=np.float64(poses.fps),
        width=np.int64(poses.width), height=np.int64(poses.height), layout=np.array(H36M17.name),
        units=np.array(UNITS), source=np.array(poses.source),
        trajectory=poses.trajectory.astype(np.float32),
        trajectory_all=np.stack([p.trajectory for p in everyone]).astype(np.float32),
        trajectory_units=np.array(TRAJECTORY_UNITS),
        **{f"lifter_{k}": np.array(v) for k, v in (poses.lifter or {}).items()},
        **{f"camera_{k}": np.array(v) for k, v in (poses.camera or {}).items()},
        **({"config": np.array(json.dumps(poses.config))} if poses.config is not None else {}),
        **_world_arrays(poses, everyone),
    )


def _world_arrays(poses: Poses3D, everyone: list[Poses3D]) -> dict[str, np.ndarray]:
    """npz `world_from_camera`, `floor_height`, `world_*` and the joints and trajectories in the world frame."""
    if poses.world is None:
        return {}
    info = poses.world.info()
    return {"world_from_camera": np.array(info.pop("from_camera")), "floor_height": np.float64(info.pop("floor_height")),
            **{f"world_{k}": np.array(v) for k, v in info.items()}, "world_units": np.array(WORLD_UNITS),
            "joints_world": poses.joints_world.astype(np.float32),
            "trajectory_world": poses.trajectory_world.astype(np.float32),
            "joints_world_all": np.stack([p.joints_world for p in everyone]).astype(np.float32),
            "trajectory_world_all": np.stack([p.trajectory_world for p in everyone]).astype(np.float32)}


def _nested(a: np.ndarray, digits: int) -> list:
    """Rounded nested lists with NaN written as null (JSON has no NaN)."""
    rounded = np.round(a.astype(np.float64), digits).astype(object)
    rounded[~np.isfinite(a)] = None
    return rounded.tolist()


def _frame_doc(poses: Poses3D, t: int, world: np.ndarray | None = None) -> dict:
    """One frame of one person; `world` (T, 17, 3): its joints in the world frame, when there is one."""
    extra = {} if world is None else {
        "joints_world": None if not np.isfinite(world[t]).all() else _nested(world[t], 5),
        "trajectory_world": None if not np.isfinite(world[t, 0]).all() else _nested(world[t, 0], 5)}
    return {
        "status": STATUS_NAMES[int(poses.status[t])],
        "joints": _nested(poses.joints[t], 5),
        "keypoints_2d": _nested(poses.keypoints_2d[t], 2),
        "confidence": _nested(poses.confidence[t], 3),
        "trajectory": None if not np.isfinite(poses.trajectory[t]).all() else _nested(poses.trajectory[t], 5),
        **extra,
    }


def write_json(poses: Poses3D, path: Path, people: list[Poses3D] | None = None) -> None:
    """Per frame the fields of `poses`; with more than one person also `people`: each present person with its id."""
    everyone = _everyone(poses, people)
    world = None if poses.world is None else poses.joints_world
    doc = {
        "layout": H36M17.name,
        "joint_names": list(H36M17.joints),
        "parents": list(H36M17.parents),
        "units": UNITS,
        "trajectory_units": TRAJECTORY_UNITS,
        "lifter": poses.lifter,
        "camera": poses.camera,
        "config": poses.config,
        "fps": poses.fps,
        "width": poses.width,
        "height": poses.height,
        "source": poses.source,
        "frames": [{"frame": t, **_frame_doc(poses, t, world)} for t in range(poses.num_frames)],
    }
    if poses.world is not None:
        doc["world"] = {**poses.world.info(), "units": WORLD_UNITS}
    if len(everyone) > 1 or poses.person != 0:
        doc["person"] = poses.person
        doc["person_ids"] = [p.person for p in everyone]
        for t, frame in enumerate(doc["frames"]):
            frame["people"] = [{"person": p.person, **_frame_doc(p, t, None if p.world is None else p.joints_world)}
                               for p in everyone if p.status[t] != MISSING]
    path.write_text(json.dumps(doc, separators=(",", ":")))


def write_csv(poses: Poses3D, path: Path, people: list[Poses3D] | None = None) -> None:
    """One row per frame; with more than one person a `person` column and a row per frame and person."""
    everyone = _everyone(poses, people)
    multi = len(everyone) > 1 or poses.person != 0
    header = ["frame", "time_s"] + (["person"] if multi else []) + ["status"]
    for name in H36M17.joints:
        header += [f"{name}_x", f"{name}_y", f"{name}_z", f"{name}_conf"]
    header += ["trajectory_x", "trajectory_y", "trajectory_z"]
    if poses.world is not None:
        header += [f"{name}_world_{a}" for name in H36M17.joints for a in "xyz"]
        header += ["trajectory_world_x", "trajectory_world_y", "trajectory_world_z"]
    worlds = {id(p): p.joints_world.reshape(p.num_frames, -1) for p in everyone} if poses.world is not None else {}
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for t in range(poses.num_frames):
            for p in everyone:
                row: list = [t, f"{t / p.fps:.4f}"] + ([p.person] if multi else []) + [STATUS_NAMES[int(p.status[t])]]
                for j in range(H36M17.num_joints):
                    row += ["" if not np.isfinite(v) else f"{v:.5f}" for v in p.joints[t, j]]
                    row.append(f"{p.confidence[t, j]:.3f}")
                row += ["" if not np.isfinite(v) else f"{v:.5f}" for v in p.trajectory[t]]
                if worlds:
                    w = worlds[id(p)][t]
                    row += ["" if not np.isfinite(v) else f"{v:.5f}" for v in np.concatenate([w, w[:3]])]
                out.writerow(row)


def read_npz(path: str | Path) -> Poses3D:
    """Load a `poses3d.npz` written by `write_npz` (used by tests and for re-rendering)."""
    z = read_npz_arrays(path)
    try:
        traj = z["trajectory"].astype(np.float64) if "trajectory" in z else None
        lifter = {k[len("lifter_"):]: z[k].item() for k in z if k.startswith("lifter_")} or None
        camera = {k[len("camera_"):]: z[k].tolist() for k in z if k.startswith("camera_")} or None
        config = loads_json(str(z["config"]), path) if "config" in z else None
        return Poses3D(z["joints"].astype(np.float64), z["keypoints_2d"].astype(np.float64), z["confidence"].astype(np.float64),
                       z["status"], float(z["fps"]), int(z["width"]), int(z["height"]), str(z["source"]),
                       int(z["person"]) if "person" in z else 0, traj, lifter, camera, config)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(path, f"not a bonelift poses3d.npz ({type(exc).__name__}: {exc})") from None


def read_people_npz(path: str | Path) -> list[Poses3D]:
    """Every person of a `poses3d.npz`, in the order of its `person_ids`."""
    main = read_npz(path)
    z = read_npz_arrays(path)
    if "joints_all" not in z:
        return [main]
    trajs = z["trajectory_all"].astype(np.float64) if "trajectory_all" in z else [None] * len(z["person_ids"])
    return [Poses3D(z["joints_all"][k].astype(np.float64), z["keypoints_2d_all"][k].astype(np.float64),
                    z["confidence_all"][k].astype(np.float64), z["status_all"][k], main.fps, main.width,
                    main.height, main.source, int(pid), trajs[k], main.lifter, main.camera, main.config)
            for k, pid in enumerate(z["person_ids"])]
