"""Joint angles of a synthetic skeleton built from known angles."""

from __future__ import annotations

import numpy as np

from bonelift.biomech import ANGLE_NAMES, joint_angles
from bonelift.skeletons import H36M17

J = {n: H36M17.index(n) for n in H36M17.joints}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    k, a = _unit(axis), np.radians(deg)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * cross + (1 - np.cos(a)) * cross @ cross


def _bend(d: np.ndarray, towards: np.ndarray, deg: float) -> np.ndarray:
    """`d` turned by `deg` towards the part of `towards` orthogonal to it."""
    d = _unit(d)
    b = _unit(towards - (towards @ d) * d)
    return np.cos(np.radians(deg)) * d + np.sin(np.radians(deg)) * b


def build(a: dict[str, float], yaw: float, pelvis_tilt: float) -> np.ndarray:
    """(17, 3) joints (y up) with the angles `a` (degrees, ANGLE_NAMES), facing `yaw`, the pelvis tilted."""
    up = np.array([0.0, 1.0, 0.0])
    ahead = _rot(up, yaw) @ np.array([1.0, 0, 0])
    right = np.cross(ahead, up)
    tilt = _rot(right, -pelvis_tilt)  # pelvis tipped forward about its lateral axis
    F, U, L = tilt @ ahead, tilt @ up, -right
    x = np.zeros((17, 3))
    x[J["Hip"]] = [0.3, 0.9, 2.0]
    x[J["Spine"]] = x[J["Hip"]] + 0.25 * U
    lf, lr = np.tan(np.radians(a["trunk_lean_forward"])), np.tan(np.radians(a["trunk_lean_right"]))
    trunk = 0.5 * _unit(up + lf * ahead + lr * right)
    x[J["Thorax"]] = x[J["Hip"]] + trunk
    x[J["Neck/Nose"]], x[J["Head"]] = x[J["Thorax"]] + 0.1 * _unit(trunk), x[J["Thorax"]] + 0.25 * _unit(trunk)
    for s, side, medial in (("r", "R", L), ("l", "L", -L)):
        x[J[f"{side}Hip"]] = x[J["Hip"]] - 0.12 * medial
        th, ad = np.radians(a[f"hip_flexion_{s}"]), np.radians(a[f"hip_adduction_{s}"])
        d = np.sin(th) * np.cos(ad) * F - np.cos(th) * np.cos(ad) * U + np.sin(ad) * medial
        x[J[f"{side}Knee"]] = x[J[f"{side}Hip"]] + 0.45 * d
        x[J[f"{side}Foot"]] = x[J[f"{side}Knee"]] + 0.43 * _bend(d, -F, a[f"knee_flexion_{s}"])
        x[J[f"{side}Shoulder"]] = x[J["Thorax"]] - 0.18 * medial
        arm = _bend(-trunk, -medial + 0.3 * F, a[f"shoulder_elevation_{s}"])
        x[J[f"{side}Elbow"]] = x[J[f"{side}Shoulder"]] + 0.28 * arm
        x[J[f"{side}Wrist"]] = x[J[f"{side}Elbow"]] + 0.25 * _bend(arm, F + up, a[f"elbow_flexion_{s}"])
    return x


def test_known_angles() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = {"hip_flexion_r": rng.uniform(-20, 90), "hip_adduction_r": rng.uniform(-30, 20),
             "hip_flexion_l": rng.uniform(-20, 90), "hip_adduction_l": rng.uniform(-30, 20),
             "knee_flexion_r": rng.uniform(0, 120), "knee_flexion_l": rng.uniform(0, 120),
             "shoulder_elevation_r": rng.uniform(5, 150), "shoulder_elevation_l": rng.uniform(5, 150),
             "elbow_flexion_r": rng.uniform(0, 140), "elbow_flexion_l": rng.uniform(0, 140),
             "trunk_lean_forward": rng.uniform(-20, 40), "trunk_lean_right": rng.uniform(-20, 20)}
        got = joint_angles(build(a, rng.uniform(-180, 180), rng.uniform(-15, 15)))
        want = np.array([a[n] for n in ANGLE_NAMES])
        assert np.abs(got - want).max() < 1e-6, dict(zip(ANGLE_NAMES, np.round(got - want, 3)))


def test_shapes_and_nan() -> None:
    x = np.stack([build(dict.fromkeys(ANGLE_NAMES, 10.0), 0, 0)] * 4)
    x[2, 5] = np.nan
    got = joint_angles(x)
    assert got.shape == (4, len(ANGLE_NAMES)) and np.isnan(got[2]).any() and np.isfinite(got[[0, 1, 3]]).all()
