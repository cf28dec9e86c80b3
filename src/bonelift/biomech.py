"""Joint angles of Human3.6M-17 joints in a y-up world frame, as biomechanics reports them (degrees).

Segment frames come from the joint centres alone (no markers on the bones), so every angle is one a
joint centre can show:

- pelvis frame: lateral axis L = LHip - RHip (to the subject's left), up U = pelvis -> spine made
  orthogonal to L, forward F = L x U;
- **hip flexion** = atan2(d.F, -d.U) of the thigh d = knee - hip in the pelvis frame (0 = thigh along
  -U, positive forward); **hip adduction** = asin(d.M / |d|) with M the medial direction (-L for the
  right hip, +L for the left), positive towards the midline (OpenSim's sign);
- **knee flexion**, **elbow flexion** = the angle between the proximal and distal segment (0 = straight;
  `geometry.flexion_angles`); a knee bent backwards is negative, an elbow is always positive (which way
  a forearm bends depends on the upper arm's axial rotation, which joint centres do not show);
- **shoulder elevation** = the angle between the upper arm and the trunk's downward axis (thorax -> pelvis):
  0 = arm hanging along the trunk, 90 = horizontal in any plane (thoracohumeral elevation);
- **trunk lean** = the trunk axis (pelvis -> thorax) against the world vertical: forward (positive when the
  thorax is ahead of the pelvis along F made horizontal) and lateral (positive towards the subject's right).

Ankle flexion needs a foot segment (heel, toe), which Human3.6M-17 does not have (its "Foot" is the
ankle), so it is not among the angles.
"""

from __future__ import annotations

import numpy as np

from bonelift.geometry import flexion_angles
from bonelift.skeletons import H36M17

ANGLE_NAMES = (
    "hip_flexion_r", "hip_adduction_r", "hip_flexion_l", "hip_adduction_l", "knee_flexion_r", "knee_flexion_l",
    "shoulder_elevation_r", "shoulder_elevation_l", "elbow_flexion_r", "elbow_flexion_l",
    "trunk_lean_forward", "trunk_lean_right",
)
_J = {name: H36M17.index(name) for name in H36M17.joints}
_UP = np.array([0.0, 1.0, 0.0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1)


def pelvis_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forward, up, left) unit axes (..., 3) of the pelvis from (..., 17, 3) joints."""
    left = _unit(joints[..., _J["LHip"], :] - joints[..., _J["RHip"], :])
    up = joints[..., _J["Spine"], :] - joints[..., _J["Hip"], :]
    up = _unit(up - _dot(up, left)[..., None] * left)
    return np.cross(left, up), up, left


def _elevation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(_dot(_unit(a), _unit(b)), -1.0, 1.0)))


def joint_angles(joints: np.ndarray) -> np.ndarray:
    """(..., len(ANGLE_NAMES)) degrees from (..., 17, 3) joints in a y-up frame (NaN where a joint is NaN)."""
    x = np.asarray(joints, np.float64)
    fwd, up, left = pelvis_frame(x)
    out = []
    for side, medial in (("R", left), ("L", -left)):
        d = x[..., _J[f"{side}Knee"], :] - x[..., _J[f"{side}Hip"], :]
        out.append(np.degrees(np.arctan2(_dot(d, fwd), -_dot(d, up))))
        out.append(np.degrees(np.arcsin(np.clip(_dot(_unit(d), medial), -1.0, 1.0))))
    flex = flexion_angles(x, H36M17)  # right elbow, left elbow, right knee, left knee
    out += [flex[..., 2], flex[..., 3]]
    trunk = x[..., _J["Thorax"], :] - x[..., _J["Hip"], :]
    for side in ("R", "L"):
        out.append(_elevation(x[..., _J[f"{side}Elbow"], :] - x[..., _J[f"{side}Shoulder"], :], -trunk))
    out += [np.abs(flex[..., 0]), np.abs(flex[..., 1])]
    ahead = _unit(fwd - _dot(fwd, _UP)[..., None] * _UP)
    right = np.cross(ahead, _UP)
    height = _dot(trunk, _UP)
    out.append(np.degrees(np.arctan2(_dot(trunk, ahead), height)))
    out.append(np.degrees(np.arctan2(_dot(trunk, right), height)))
    return np.stack(out, axis=-1)
