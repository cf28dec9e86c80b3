"""A synthetic walker in a y-up world frame (metres) and cameras that film it: fixtures of the world-frame,
joint-angle and export tests."""

from __future__ import annotations

import numpy as np

from bonelift.skeletons import H36M17

ANKLE = 0.07  # the walker's ankle height above the floor while a foot is planted


def walk(frames: int = 240, fps: float = 30.0, treadmill: bool = False, heading_deg: float = 30.0,
         start: tuple[float, float] = (-1.0, 4.0)) -> np.ndarray:
    """(T, 17, 3) H36M17 joints, y up, floor at y = 0: 1.2 m/s along `heading_deg` (0 = +z), a 1 s gait cycle,
    60 % stance; on a treadmill the pelvis stays and each planted foot slides back with the belt."""
    t = np.arange(frames) / fps
    period, speed = 1.0, 1.2
    h = np.radians(heading_deg)
    fwd, left = np.array([np.sin(h), 0.0, np.cos(h)]), np.array([np.cos(h), 0.0, -np.sin(h)])
    walked = speed * t
    pelvis_along = np.zeros_like(t) if treadmill else walked
    base = np.array([start[0], 0.0, start[1]])
    out = np.zeros((frames, 17, 3))
    j = {n: H36M17.index(n) for n in H36M17.joints}
    for side, offset, sign in (("R", 0.0, -1.0), ("L", 0.5, 1.0)):
        phase = t / period + offset
        k, u = np.floor(phase), phase - np.floor(phase)
        plant = speed * period * (k - offset + 0.3)  # where cycle k's foot lands, in walked metres
        stance = u < 0.6
        s = np.clip((u - 0.6) / 0.4, 0, 1)
        ramp = s - np.sin(2 * np.pi * s) / (2 * np.pi)
        along = np.where(stance, plant, plant + speed * period * ramp)
        lift = np.where(stance, 0.0, 0.12 * np.sin(np.pi * s))
        if treadmill:
            along = along - walked
        foot = base + along[:, None] * fwd + sign * 0.1 * left + (ANKLE + lift)[:, None] * np.array([0, 1.0, 0])
        hip = base + pelvis_along[:, None] * fwd + sign * 0.12 * left + np.array([0, 0.93, 0])
        knee = (foot + hip) / 2 + 0.06 * fwd
        out[:, j[f"{side}Foot"]], out[:, j[f"{side}Hip"]], out[:, j[f"{side}Knee"]] = foot, hip, knee
    pelvis = (out[:, j["LHip"]] + out[:, j["RHip"]]) / 2
    up = np.array([0, 1.0, 0])
    out[:, j["Hip"]] = pelvis
    out[:, j["Spine"]] = pelvis + 0.25 * up
    out[:, j["Thorax"]] = pelvis + 0.5 * up
    out[:, j["Neck/Nose"]] = pelvis + 0.6 * up + 0.08 * fwd
    out[:, j["Head"]] = pelvis + 0.72 * up
    for side, sign in (("R", -1.0), ("L", 1.0)):
        swing = 0.15 * np.sin(2 * np.pi * t / period + (0 if side == "R" else np.pi))[:, None] * fwd
        shoulder = out[:, j["Thorax"]] + sign * 0.18 * left
        out[:, j[f"{side}Shoulder"]] = shoulder
        out[:, j[f"{side}Elbow"]] = shoulder - 0.28 * up + swing
        out[:, j[f"{side}Wrist"]] = shoulder - 0.52 * up + 1.6 * swing + 0.1 * fwd
    return out


def camera_rotation(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """World (y up, z forward) -> camera (x right, y down, z forward) for a camera looking along +z, pitched
    down by `pitch_deg` and rolled by `roll_deg` about its viewing axis."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    level = np.diag([-1.0, -1.0, 1.0])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ level


def film(world: np.ndarray, pitch_deg: float, roll_deg: float, height: float = 1.5, noise: float = 0.0,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(root-relative camera-frame joints, camera-frame pelvis trajectory, true up in camera coordinates)."""
    rot = camera_rotation(pitch_deg, roll_deg)
    cam = (world - np.array([0.0, height, 0.0])) @ rot.T
    cam = cam + np.random.default_rng(seed).normal(0, noise, cam.shape)
    return cam - cam[:, :1], cam[:, 0], rot @ np.array([0.0, 1.0, 0.0])


def filmed_people(frames: int, people: int = 1, fps: float = 60.0) -> list:
    """`people` walkers side by side (1 m apart), each seen by a camera 1.6 m up, pitched 10 degrees, as the
    camera-frame `Poses3D` of a lift with the clip's world frame: the export benchmark's and tests' long clip."""
    from bonelift.pipeline.export import Poses3D
    from bonelift.pipeline.track import DETECTED
    from bonelift.world import estimate_world

    pitch = np.radians(10.0)
    c, s = np.cos(pitch), np.sin(pitch)
    cam_from_world = np.array([[1, 0, 0], [0, -c, s], [0, -s, -c]]) @ np.diag([1.0, 1.0, -1.0])
    out = []
    for k in range(people):
        world = np.tile(walk(600, fps=fps, start=(-1.0 + k, 4.0)), (-(-frames // 600), 1, 1))[:frames]
        cam = (world - np.array([0.0, 1.6, 0.0])) @ cam_from_world.T
        root = cam[:, 0].copy()
        kp = cam[..., :2] / cam[..., 2:] * 1000 + np.array([960.0, 540.0])
        status = np.full(frames, DETECTED, np.int8)
        out.append(Poses3D(cam - root[:, None], kp, np.ones((frames, 17)), status, fps, 1920, 1080, "synthetic",
                           k, root))
    frame = estimate_world([(p.joints, p.trajectory) for p in out], fps)
    for p in out:
        p.world = frame
    return out
