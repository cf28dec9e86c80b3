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

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift import io
from bonelift.errors import DataError
from bonelift.io import Columns, Numbers, Omit, Part, Text, loads_json, read_npz_arrays, write_table
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
    """`poses` as the single-person arrays, and `people` (default: just `poses`) stacked along a person axis.

    Stored without compression (`io.write_npz`: each member made as the one before is written): deflating took 1.6
    of a 10-minute clip's 3.6 export CPU seconds, to save 1.3-1.8x on lifted float32 data (2.9x on the synthetic
    walker of `scripts/bench_exports.py`)."""
    everyone = _everyone(poses, people)

    def stacked(field: str, dtype: type) -> np.ndarray:
        return np.stack([getattr(p, field) for p in everyone]).astype(dtype)

    def members() -> Iterator[tuple[str, np.ndarray]]:
        yield "joints", poses.joints.astype(np.float32)
        yield "keypoints_2d", poses.keypoints_2d.astype(np.float32)
        yield "joints_all", stacked("joints", np.float32)
        yield "keypoints_2d_all", stacked("keypoints_2d", np.float32)
        yield "confidence_all", stacked("confidence", np.float32)
        yield "status_all", stacked("status", np.int8)
        yield "person_ids", np.array([p.person for p in everyone], dtype=np.int64)
        yield "person", np.int64(poses.person)
        yield "confidence", poses.confidence.astype(np.float32)
        yield "status", poses.status.astype(np.int8)
        yield "joint_names", np.array(H36M17.joints)
        yield "parents", np.array(H36M17.parents)
        yield "fps", np.float64(poses.fps)
        yield "width", np.int64(poses.width)
        yield "height", np.int64(poses.height)
        yield "layout", np.array(H36M17.name)
        yield "units", np.array(UNITS)
        yield "source", np.array(poses.source)
        yield "trajectory", poses.trajectory.astype(np.float32)
        yield "trajectory_all", stacked("trajectory", np.float32)
        yield "trajectory_units", np.array(TRAJECTORY_UNITS)
        yield from ((f"lifter_{k}", np.array(v)) for k, v in (poses.lifter or {}).items())
        yield from ((f"camera_{k}", np.array(v)) for k, v in (poses.camera or {}).items())
        if poses.config is not None:
            yield "config", np.array(json.dumps(poses.config))
        if poses.world is not None:
            info = poses.world.info()
            yield "world_from_camera", np.array(info.pop("from_camera"))
            yield "floor_height", np.float64(info.pop("floor_height"))
            yield from ((f"world_{k}", np.array(v)) for k, v in info.items())
            yield "world_units", np.array(WORLD_UNITS)
            main = poses.joints_world.astype(np.float32)  # one world transform per person
            world = [main if p is poses else p.joints_world.astype(np.float32) for p in everyone]
            yield "joints_world", main
            yield "trajectory_world", np.ascontiguousarray(main[:, 0])
            yield "joints_world_all", np.stack(world)
            yield "trajectory_world_all", np.stack([w[:, 0] for w in world])

    io.write_npz(path, members())


def _not_whole(a: np.ndarray) -> np.ndarray:
    """(T,) frames of `a` (T, ...) that are not wholly finite (such a field is written `null`)."""
    return ~np.isfinite(a.reshape(len(a), -1)).all(1)


def _array_seps(count: int, group: int) -> list[str]:
    """JSON separators after each of `count` numbers: a flat list (`group` 0) or lists of `group` in a list."""
    if not group:
        return [","] * (count - 1) + ["]"]
    return ["],[" if (c + 1) % group == 0 else "," for c in range(count - 1)] + ["]]"]


def _person_parts(poses: Poses3D) -> list[Part]:
    """The JSON fields of one person after `"frame"` or `"person"` (status, joints, keypoints_2d, confidence,
    trajectory; with a world frame joints_world and trajectory_world).

    A joint missing inside a frame is `null` per number; a trajectory or world pose not wholly known is `null`."""
    t = poses.num_frames
    names = sorted(STATUS_NAMES)
    parts: list[Part] = [
        Text([f'"status":"{STATUS_NAMES[c]}","joints":[[' for c in names], np.searchsorted(names, poses.status)),
        Numbers(poses.joints.reshape(t, -1), 5, _array_seps(3 * H36M17.num_joints, 3), "null"),
        Text([',"keypoints_2d":[[']),
        Numbers(poses.keypoints_2d.reshape(t, -1), 2, _array_seps(2 * H36M17.num_joints, 2), "null"),
        Text([',"confidence":[']),
        Numbers(poses.confidence, 3, _array_seps(H36M17.num_joints, 0), "null")]
    fields = [("trajectory", poses.trajectory, 0)]
    if poses.world is not None:
        world = poses.joints_world
        fields += [("joints_world", world.reshape(t, -1), 3), ("trajectory_world", world[:, 0], 0)]
    for key, values, group in fields:
        null = _not_whole(values)
        parts += [Text([f',"{key}":' + ("[[" if group else "["), f',"{key}":null'], null.astype(np.int8)),
                  Omit(Numbers(values, 5, _array_seps(values.shape[1], group), "null"), null)]
    return parts


def write_json(poses: Poses3D, path: Path, people: list[Poses3D] | None = None) -> None:
    """Per frame the fields of `poses`; with more than one person also `people`: each present person with its id.

    The header is `json.dumps`; the frames (the last key), millions of numbers in a long clip, are laid out as
    whole arrays (`io.Numbers`) and written a chunk of frames at a time."""
    everyone = _everyone(poses, people)
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
    }
    if poses.world is not None:
        doc["world"] = {**poses.world.info(), "units": WORLD_UNITS}
    t = poses.num_frames
    main = _person_parts(poses)
    parts: list[Part] = [Text(['{"frame":']), Numbers(np.arange(t)[:, None], 0, [","]), *main]
    if len(everyone) > 1 or poses.person != 0:
        doc["person"] = poses.person
        doc["person_ids"] = [p.person for p in everyone]
        parts.append(Text([',"people":[']))
        before = np.zeros(t, bool)  # someone is listed before this person in the frame: a comma first
        for p in everyone:
            absent = p.status == MISSING
            fields = main if p is poses else _person_parts(p)  # the main person's text laid out once
            parts += [Omit(part, absent) for part in [Text([f'{{"person":{p.person},', f',{{"person":{p.person},'],
                                                           before.astype(np.int8)), *fields, Text(["}"])]]
            before = before | ~absent
        parts.append(Text(["]"]))
    parts.append(Text(["},", "}"], (np.arange(t) == t - 1).astype(np.int8)))  # frames separated by commas
    head = json.dumps(doc, separators=(",", ":")).encode()
    with path.open("wb") as fh:
        fh.write(head[:-1] + b',"frames":[')  # `frames` as the last key
        write_table(fh, parts, t)
        fh.write(b"]}")


def pose_parts(joints: np.ndarray, places: int, last: str) -> list[Part]:
    """(T, J, 3) as one JSON array text per frame, `[[x,y,z],...]`, or `null` where the pose is not wholly known;
    `last` after each (row `T - 1` gets none): the parts of `io.write_table`."""
    t, j, k = joints.shape
    null = _not_whole(joints)
    flat = joints.reshape(t, -1)
    return [
        Text(["[[", "null"], null.astype(np.int8)),
        Omit(Numbers(flat, places, _array_seps(j * k, k), "null"), null),
        Text([last, ""], (np.arange(t) == t - 1).astype(np.int8)),
    ]


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
    t, n = poses.num_frames, len(everyone)
    world = [p.joints_world if poses.world is not None else None for p in everyone]  # one world transform each

    def rows(make: Callable[[Poses3D, np.ndarray | None, slice], np.ndarray], columns: int) -> Columns:
        """Rows ordered frame by frame, each frame's people in turn (the (T, P) order flattened), made per chunk."""
        def chunk(a: int, b: int) -> np.ndarray:
            frames = slice(a // n, -(-b // n))
            block = np.stack([make(p, w, frames) for p, w in zip(everyone, world)], 1).reshape(-1, columns)
            return block[a - frames.start * n:b - frames.start * n]
        return Columns(t * n, columns, chunk)

    def lead(p: Poses3D, w: np.ndarray | None, f: slice) -> np.ndarray:  # frame, time[, person]
        frame = np.arange(t)[f]
        return np.stack([frame, frame / p.fps] + ([np.full(len(frame), p.person)] if multi else []), 1)

    def values(p: Poses3D, w: np.ndarray | None, f: slice) -> np.ndarray:  # joints and confidence, trajectory[, world]
        cols = [np.concatenate([p.joints[f], p.confidence[f][..., None]], -1).reshape(-1, 4 * H36M17.num_joints),
                p.trajectory[f]]
        if w is not None:
            cols += [w[f].reshape(-1, 3 * H36M17.num_joints), w[f][:, 0]]
        return np.concatenate(cols, 1)

    width = len(header) - (4 if multi else 3)
    names = sorted(STATUS_NAMES)
    codes = np.searchsorted(names, np.stack([p.status for p in everyone], 1).reshape(-1))
    places = [5, 5, 5, 3] * H36M17.num_joints + [5] * (width - 4 * H36M17.num_joints)
    parts = [Numbers(rows(lead, 3 if multi else 2), [0, 4, 0][:3 if multi else 2], [","] * (2 if multi else 1) + [""],
                     ""),
             Text([f",{STATUS_NAMES[c]}," for c in names], codes),
             Numbers(rows(values, width), places, [","] * (width - 1) + ["\r\n"], "")]
    with path.open("wb") as fh:
        fh.write((",".join(header) + "\r\n").encode())
        write_table(fh, parts, t * n)


def read_npz(path: str | Path) -> Poses3D:
    """Load a `poses3d.npz` written by `write_npz` (used by tests and for re-rendering)."""
    z = read_npz_arrays(path)
    try:
        traj = z["trajectory"].astype(np.float64) if "trajectory" in z else None
        lifter = {k[len("lifter_"):]: z[k].item() for k in z if k.startswith("lifter_")} or None
        camera = {k[len("camera_"):]: z[k].tolist() for k in z if k.startswith("camera_")} or None
        config = loads_json(str(z["config"]), path) if "config" in z else None
        return Poses3D(
            z["joints"].astype(np.float64),
            z["keypoints_2d"].astype(np.float64),
            z["confidence"].astype(np.float64),
            z["status"],
            float(z["fps"]),
            int(z["width"]),
            int(z["height"]),
            str(z["source"]),
            int(z["person"]) if "person" in z else 0,
            traj,
            lifter,
            camera,
            config,
        )
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
