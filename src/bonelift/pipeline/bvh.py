"""BVH export of lifted Human3.6M-17 poses: hierarchy, offsets from median bone lengths, rotations from positions.

Coordinates: BVH files are conventionally Y-up, so camera-frame points (x right, y down, z forward)
are written as (x, -y, -z) (a 180-degree turn about x; right-handed, the subject's left is +x in the
rest pose) in centimetres. The root's translation channels carry the root trajectory (the pelvis in
the camera frame, `cameras.root_trajectory`) in the same axes and units, so the skeleton moves through
the scene as the camera saw it; without a trajectory they are 0 (poses root-relative).

Hierarchy: the 17 Human3.6M joints with their Human3.6M parents, plus four zero-length joints
(RPelvis, LPelvis at the hip centre; LCollar, RCollar at the thorax) like the coincident anchor
joints of the 32-joint Human3.6M mocap skeleton. They let each hip and shoulder swing on its own:
a joint with three children and one rotation could not follow three independently predicted bone
directions. "Neck/Nose" is written as "Neck" (a slash is not a safe BVH token).

Rotations: the pelvis and thorax get a full orientation from their primary bone (to spine / to neck)
and the left-right axis (hips / shoulders); every other joint takes the smallest rotation that turns
its rest bone onto the predicted bone in its parent's frame. With offsets set to the median bone
lengths, forward kinematics then reproduces the predicted bone *directions* exactly, i.e. the
predicted skeleton refitted to its median bone lengths (`bonelift.fitting.fit_skeleton`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.fitting import fit_skeleton, subject_bone_lengths
from bonelift.geometry import rotate
from bonelift.io import Columns, Numbers, write_table
from bonelift.pipeline.track import check_fps
from bonelift.skeletons import H36M17
from bonelift.world import WorldFrame

CM_PER_M = 100.0
_FLIP = np.array([1.0, -1.0, -1.0])  # camera frame (y down, z forward) <-> BVH frame (y up)
_UP, _DOWN, _LEFT, _RIGHT = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)


@dataclass(frozen=True)
class _Joint:
    name: str
    parent: int  # index into BVH_JOINTS, -1 for the root
    h36m: int | None  # index into H36M17, None for the zero-length helpers
    rest: tuple[float, float, float]  # rest direction of the bone that ends at this joint (BVH frame)
    aim: str | None  # H36M joint this joint's rotation points its bone at (None: leaf)


def _build() -> tuple[_Joint, ...]:
    spec = [  # (bvh name, bvh parent, H36M name or None, rest dir, aim child); depth-first order
        ("Hip", None, "Hip", (0.0, 0.0, 0.0), "Spine"),
        ("RPelvis", "Hip", None, (0.0, 0.0, 0.0), "RHip"),
        ("RHip", "RPelvis", "RHip", _RIGHT, "RKnee"),
        ("RKnee", "RHip", "RKnee", _DOWN, "RFoot"),
        ("RFoot", "RKnee", "RFoot", _DOWN, None),
        ("LPelvis", "Hip", None, (0.0, 0.0, 0.0), "LHip"),
        ("LHip", "LPelvis", "LHip", _LEFT, "LKnee"),
        ("LKnee", "LHip", "LKnee", _DOWN, "LFoot"),
        ("LFoot", "LKnee", "LFoot", _DOWN, None),
        ("Spine", "Hip", "Spine", _UP, "Thorax"),
        ("Thorax", "Spine", "Thorax", _UP, "Neck/Nose"),
        ("Neck", "Thorax", "Neck/Nose", _UP, "Head"),
        ("Head", "Neck", "Head", _UP, None),
        ("LCollar", "Thorax", None, (0.0, 0.0, 0.0), "LShoulder"),
        ("LShoulder", "LCollar", "LShoulder", _LEFT, "LElbow"),
        ("LElbow", "LShoulder", "LElbow", _LEFT, "LWrist"),
        ("LWrist", "LElbow", "LWrist", _LEFT, None),
        ("RCollar", "Thorax", None, (0.0, 0.0, 0.0), "RShoulder"),
        ("RShoulder", "RCollar", "RShoulder", _RIGHT, "RElbow"),
        ("RElbow", "RShoulder", "RElbow", _RIGHT, "RWrist"),
        ("RWrist", "RElbow", "RWrist", _RIGHT, None),
    ]
    names = [s[0] for s in spec]
    return tuple(
        _Joint(n, -1 if p is None else names.index(p), None if h is None else H36M17.index(h), r, a)
        for n, p, h, r, a in spec
    )


BVH_JOINTS = _build()
_REST_DIR = {j.h36m: np.array(j.rest) for j in BVH_JOINTS if j.h36m is not None}
# Joints whose orientation also uses a left-right axis: (joint, left H36M joint, right H36M joint).
_TWIST = {"Hip": ("LHip", "RHip"), "Thorax": ("LShoulder", "RShoulder")}


def _hold_missing(joints: np.ndarray) -> np.ndarray:
    """Replace frames without a pose by the nearest frame with one (BVH has no way to say 'missing')."""
    ok = np.flatnonzero(np.isfinite(joints).all(axis=(1, 2)))
    nearest = ok[np.clip(np.searchsorted(ok, np.arange(len(joints))), 0, len(ok) - 1)]
    prev = ok[np.clip(np.searchsorted(ok, np.arange(len(joints))) - 1, 0, len(ok) - 1)]
    t = np.arange(len(joints))
    pick = np.where(np.abs(prev - t) <= np.abs(nearest - t), prev, nearest)
    return joints[pick]


# The rotation solve works on component-major arrays: a vector is (3, T), a matrix (3, 3, T), so every operation
# is a handful of whole-array products over the frames (numpy's stacked 3x3 products cost several times more).


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray, fallback: tuple[float, float, float]) -> np.ndarray:
    """(3, T) unit vectors along v, `fallback` where v is (nearly) zero."""
    n = np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), np.array(fallback)[:, None])


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3, T) matrix products a @ b."""
    return a[:, 0, None] * b[None, 0] + a[:, 1, None] * b[None, 1] + a[:, 2, None] * b[None, 2]


def _min_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3, T) smallest rotations taking unit vectors a onto unit vectors b (3, T): Rodrigues' formula in the form
    c I + [v]x + v v^T / (1 + c), v = a x b, c = a . b (no trigonometry; a half turn about an axis perpendicular
    to a where b is opposite a)."""
    v = _cross(a, b)
    c = np.clip(a[0] * b[0] + a[1] * b[1] + a[2] * b[2], -1.0, 1.0)
    opposite = (np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) < 1e-9) & (c < 0)
    rot = v[:, None] * (v / np.where(opposite, 1.0, 1.0 + c))[None, :]
    rot[[0, 1, 2], [0, 1, 2]] += c
    rot[0, 1] -= v[2]
    rot[0, 2] += v[1]
    rot[1, 0] += v[2]
    rot[1, 2] -= v[0]
    rot[2, 0] -= v[1]
    rot[2, 1] += v[0]
    if opposite.any():  # any axis perpendicular to a works: 2 k k^T - I
        ax = a[:, opposite]
        perp = _cross(ax, np.array([0.0, 0.0, 1.0])[:, None])
        perp = np.where(np.sqrt((perp * perp).sum(0)) < 1e-6, _cross(ax, np.array([1.0, 0.0, 0.0])[:, None]), perp)
        k = _unit(perp, (1.0, 0.0, 0.0))
        rot[:, :, opposite] = 2 * k[:, None] * k[None, :] - np.eye(3)[:, :, None]
    return rot


def _frame(primary: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """(3, 3, T) rotations whose y axis is `primary` and x axis the part of `lateral` orthogonal to it."""
    y = primary
    x = _unit(lateral - (lateral * y).sum(0) * y, (1.0, 0.0, 0.0))
    x = _unit(x - (x * y).sum(0) * y, (0.0, 0.0, 1.0))
    return np.stack([x, y, _cross(x, y)], axis=1)


def solve_rotations(fitted_bvh: np.ndarray) -> np.ndarray:
    """(T, len(BVH_JOINTS), 3, 3) local rotations from (T, 17, 3) joints in the BVH frame."""
    t = len(fitted_bvh)
    pts = np.ascontiguousarray(fitted_bvh.transpose(1, 2, 0))  # (17, 3, T)
    eye = np.broadcast_to(np.eye(3)[:, :, None], (3, 3, t))
    glob: list[np.ndarray] = []  # per joint (3, 3, T)
    local = np.empty((len(BVH_JOINTS), 3, 3, t))
    for i, j in enumerate(BVH_JOINTS):
        parent = eye if j.parent < 0 else glob[j.parent]
        start = pts[j.h36m if j.h36m is not None else H36M17.parents[H36M17.index(j.aim)]]
        if j.aim is None:  # a leaf turns with its parent
            glob.append(parent)
            local[i] = eye
            continue
        aim = H36M17.index(j.aim)
        target = _unit(pts[aim] - start, tuple(_REST_DIR[aim]))
        if j.name in _TWIST:
            left, right = (H36M17.index(n) for n in _TWIST[j.name])
            glob.append(_frame(target, pts[left] - pts[right]))
            # The rest frame has its bone along +y and its left-right axis along +x: identity.
            local[i] = _mul(parent.transpose(1, 0, 2), glob[-1])
        else:  # the smallest turn in the parent's frame is the local rotation itself
            local[i] = _min_arc(np.broadcast_to(_REST_DIR[aim][:, None], (3, t)), (parent * target[:, None]).sum(0))
            glob.append(_mul(parent, local[i]))
    return local.transpose(3, 0, 1, 2)


ROTATION_CHUNK = 4096  # frames whose rotations are solved at a time: (frames, 21, 3, 3) matrices twice, ~12 MB


def euler_zxy(rot: np.ndarray) -> np.ndarray:
    """(..., 3) angles in degrees (z, x, y) with rot = Rz @ Rx @ Ry: the BVH channel order
    "Zrotation Xrotation Yrotation".

    Near gimbal lock (x = +-90 degrees) y is set to 0 and z takes the whole turn, which gives the same matrix.
    """
    x = np.arcsin(np.clip(rot[..., 2, 1], -1.0, 1.0))
    locked = np.abs(rot[..., 2, 1]) > 1 - 1e-9
    z = np.where(locked, np.arctan2(rot[..., 1, 0], rot[..., 0, 0]), np.arctan2(-rot[..., 0, 1], rot[..., 1, 1]))
    y = np.where(locked, 0.0, np.arctan2(-rot[..., 2, 0], rot[..., 2, 2]))
    return np.degrees(np.stack([z, x, y], axis=-1))


def offsets(lengths_cm: np.ndarray) -> np.ndarray:
    """(len(BVH_JOINTS), 3) rest offsets: median bone length along each bone's rest direction."""
    bone_of = H36M17.child_bone
    out = np.zeros((len(BVH_JOINTS), 3))
    for i, j in enumerate(BVH_JOINTS):
        if j.h36m is not None and j.parent >= 0:
            out[i] = np.array(j.rest) * lengths_cm[bone_of[j.h36m]]
    return out


def write_bvh(
    joints: np.ndarray, fps: float, path: Path, trajectory: np.ndarray | None = None, world: WorldFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Write (T, 17, 3) camera-frame metres (NaN frames allowed) as BVH; returns (fitted joints, bone lengths m).

    The fitted joints (root-relative, camera frame, metres, missing frames held) plus `trajectory` (T, 3)
    metres (the root's translation; NaN frames held like the poses) are what the file reproduces. With a
    `world` frame the file is in it (y up, floor at 0, root translation = the trajectory in the world frame);
    without, in the camera frame turned Y-up.
    """
    frame_time = 1.0 / check_fps(fps, str(path))  # before any work: 0 or 300 digits are not a frame time
    to_bvh = np.diag(_FLIP) if world is None else world.world_from_camera
    held = _hold_missing(joints)
    root = np.zeros((len(joints), 3))
    if trajectory is not None and np.isfinite(trajectory).all(-1).any():
        traj = _hold_missing(np.asarray(trajectory, np.float64)[:, None])[:, 0]
        root = (rotate(traj, to_bvh) if world is None else world.to_world(traj)) * CM_PER_M
    lengths = subject_bone_lengths(joints[np.isfinite(joints).all(axis=(1, 2))], H36M17)
    fitted = np.empty(held.shape)
    euler = np.empty((len(held), len(BVH_JOINTS), 3))
    for a in range(0, len(held), ROTATION_CHUNK):  # a chunk of frames at a time: bounded memory, cache-sized arrays
        part = held[a:a + ROTATION_CHUNK]
        fitted[a:a + ROTATION_CHUNK] = fit_skeleton(part - part[:, :1], lengths, H36M17)
        turned = rotate(fitted[a:a + ROTATION_CHUNK], to_bvh) * CM_PER_M
        euler[a:a + ROTATION_CHUNK] = euler_zxy(solve_rotations(turned))
    offs = offsets(lengths * CM_PER_M)
    children = {i: [k for k, j in enumerate(BVH_JOINTS) if j.parent == i] for i in range(len(BVH_JOINTS))}
    lines = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        pad = "  " * depth
        j = BVH_JOINTS[i]
        lines.append(f"{pad}{'ROOT' if j.parent < 0 else 'JOINT'} {j.name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offs[i, 0]:.6f} {offs[i, 1]:.6f} {offs[i, 2]:.6f}")
        if j.parent < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for k in children[i]:
            emit(k, depth + 1)
        if not children[i]:
            end = np.array(j.rest) * 0.1 * max(float(np.linalg.norm(offs[i])), 1.0)
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {frame_time:.8f}"]
    channels = 3 + euler[0].size if len(euler) else 3
    motion = Columns(len(joints), channels, lambda a, b: np.concatenate([root[a:b], euler[a:b].reshape(b - a, -1)], 1))
    with path.open("wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode())
        write_table(fh, [Numbers(motion, 6, [" "] * (channels - 1) + ["\n"], "nan")], len(joints))
    return fitted, lengths
