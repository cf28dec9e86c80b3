"""World frame: camera pitch, roll and floor from the lifted poses of a synthetic walker."""

from __future__ import annotations

import numpy as np
import pytest

from bonelift.world import estimate_world, rotation_from_up
from tests.walker import ANKLE, film, walk


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("treadmill", [False, True])
@pytest.mark.parametrize(("pitch", "roll"), [(15.0, 5.0), (-5.0, -8.0), (30.0, 0.0)])
def test_tilted_camera_recovered(treadmill: bool, pitch: float, roll: float) -> None:
    world = walk(treadmill=treadmill)
    joints, traj, up = film(world, pitch, roll, noise=0.01)
    w = estimate_world([(joints, traj)], 30.0)
    assert _angle(w.up, up) < 1.5
    assert abs(w.pitch_deg - pitch) < 1.5 and abs(w.roll_deg - roll) < 1.5
    assert abs(w.camera_height - 1.5) < 0.03
    feet = w.to_world(joints + traj[:, None])[:, [3, 6], 1]
    planted = world[:, [3, 6], 1] < ANKLE + 1e-9
    assert abs(np.median(feet[planted]) - ANKLE) < 0.02  # ankles at their height, soles on y = 0
    assert abs(w.ankle_height - ANKLE) < 0.01


def test_world_axes() -> None:
    """y is up, +z the view direction on the floor, right-handed; a level camera gives the flip of y."""
    rot = rotation_from_up(np.array([0.0, -1.0, 0.0]))
    assert np.allclose(rot, np.diag([-1.0, -1.0, 1.0]))
    rot = rotation_from_up(np.array([0.1, -0.9, -0.3]))
    assert np.allclose(rot @ rot.T, np.eye(3)) and np.isclose(np.linalg.det(rot), 1.0)
    assert rot[0, 2] == pytest.approx(0.0) and rot[2, 2] > 0  # x is across the view, z points along it


def test_missing_frames_and_standing() -> None:
    """NaN frames are skipped; a person standing still (no contact spread) falls back on the body's vertical."""
    world = walk(frames=90)
    world[:] = world[:1]
    for hip, knee, foot in ((1, 2, 3), (4, 5, 6)):  # legs straight below the hips
        world[:, [knee, foot]] = world[:, [hip]] * [1, 0, 1] + world[:, [knee, foot]] * [0, 1, 0]
    joints, traj, up = film(world, 10.0, 3.0)
    joints[10:20] = np.nan
    traj[10:20] = np.nan
    w = estimate_world([(joints, traj)], 30.0)
    assert _angle(w.up, up) < 1.0
    assert estimate_world([(joints[10:20], traj[10:20])], 30.0) is None


def test_people_on_two_levels_share_the_vertical() -> None:
    """Two walkers on parallel levels 1.2 m apart (a stage, a box): the up direction is not tilted between them,
    and the floor is the lower level."""
    low, high = walk(), walk(heading_deg=-60.0)
    high[..., 1] += 1.2
    high[..., 2] += 3.0
    joints_low, traj_low, up = film(low, 12.0, -4.0, noise=0.01)
    joints_high, traj_high, _ = film(high, 12.0, -4.0, noise=0.01)
    w = estimate_world([(joints_high, traj_high), (joints_low, traj_low)], 30.0)
    assert _angle(w.up, up) < 1.5
    assert abs(w.camera_height - 1.5) < 0.05


def test_scene_vertical_fixes_the_up_direction() -> None:
    """A given scene vertical sets the up direction; the contacts only place the floor."""
    world = walk()
    joints, traj, up = film(world, 20.0, 6.0, noise=0.01)
    tilted = up + np.array([0.0, 0.0, 0.05])
    w = estimate_world([(joints, traj)], 30.0, scene_up=tilted)
    assert _angle(w.up, tilted) < 1e-6 and w.cue == "scene" and w.info()["up_cue"] == "scene"
    assert estimate_world([(joints, traj)], 30.0).cue == "body"


def test_camera_height_places_the_floor() -> None:
    """A known camera height replaces the contact estimate: the floor lies that far below the camera along the
    estimated up, and planted ankles stand at their height above it; a wrong height moves them by the error."""
    world = walk()
    joints, traj, up = film(world, 15.0, 5.0, height=2.2, noise=0.005)
    w = estimate_world([(joints, traj)], 30.0, camera_height=2.2)
    assert w.camera_height == 2.2 and w.floor_height == -2.2 and _angle(w.up, up) < 1.5
    planted = world[:, [3, 6], 1] < ANKLE + 1e-9
    feet = w.to_world(joints + traj[:, None])[:, [3, 6], 1]
    assert abs(np.median(feet[planted]) - ANKLE) < 0.02
    off = estimate_world([(joints, traj)], 30.0, camera_height=2.5)
    assert np.median(off.to_world(joints + traj[:, None])[:, [3, 6], 1][planted]) == pytest.approx(ANKLE + 0.3,
                                                                                                    abs=0.02)
