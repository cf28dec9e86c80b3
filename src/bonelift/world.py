"""A gravity-aligned world frame with a floor, estimated from lifted camera-frame poses of one clip.

A monocular lift lives in the camera frame (x right, y down, z forward): a camera that looks down or is
rolled gives a leaning person and no floor. The camera's pitch and roll and the floor plane follow from
the poses themselves, with two cues:

- **foot contacts**: in each frame the lower ankle, when its height barely changes (a planted foot; its
  horizontal speed is not used, so a treadmill's belt is no obstacle), lies on the floor; over a clip
  such points span a plane whose normal is the up direction;
- **the body's vertical**: in standing frames (legs straight) the line ankles -> pelvis -> thorax is
  close to vertical.

The contact plane decides wherever its points spread out (a person walking about); the body cue holds
the directions the contacts do not span (a treadmill, standing still): the up direction is the
smallest eigenvector of the contacts' scatter (each person's about their own mean: people may stand on
parallel levels) plus a penalty on leaving the body's vertical, refined twice with the contacts re-chosen
along the new up. A third cue, from the pixels rather than the person,
outranks both when the caller has it: the scene's vertical lines (`pipeline.scene`, the vanishing point of
door frames and walls, about a degree off the calibration on the Pose2Sim views against 8-16 degrees for the
body cues of a lunging man); the contacts then only place the floor. The floor is the lowest person's
median contact ankle height minus the ankle's height above the sole (`ANKLE_HEIGHT_RATIO` of the stature).

World frame: metres, y up, the floor at y = 0, +z the camera's viewing direction projected on the
floor, x = y cross z (right-handed: x points to the camera's left), the origin on the floor below the
camera. A camera-frame point p maps to `world_from_camera @ p - (0, floor_height, 0)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bonelift.geometry import rotate
from bonelift.skeletons import H36M17

# Ankle (lateral malleolus) height over stature: 0.039 (Winter, "Biomechanics and Motor Control of Human
# Movement", 4th ed., Fig. 4.1 segment proportions). Stature = ankle-to-head-top chain length / (1 - 0.039).
ANKLE_HEIGHT_RATIO = 0.039
CONTACT_SPEED = 0.1  # m/s: the lower ankle, rising or sinking slower than this, counts as planted
SPEED_SPAN_S = 0.2  # seconds over which an ankle's speed is measured
BODY_WEIGHT_M2 = 0.01  # m^2: penalty weight on leaving the body's vertical (about (10 cm)^2 of contact spread)
MIN_LEVEL_CONTACTS = 5  # contacts a person needs before their level can be the floor
STRAIGHT_KNEE_DEG = 20.0  # frames whose knees both bend less than this are "standing" for the body cue
_CAMERA_UP = np.array([0.0, -1.0, 0.0])
_CAMERA_FORWARD = np.array([0.0, 0.0, 1.0])
_J = {name: H36M17.index(name) for name in H36M17.joints}
_FEET = [_J["LFoot"], _J["RFoot"]]
_STATURE_CHAIN = [("RFoot", "RKnee"), ("RKnee", "RHip"), ("Hip", "Spine"), ("Spine", "Thorax"),
                  ("Thorax", "Neck/Nose"), ("Neck/Nose", "Head")]


@dataclass(frozen=True)
class WorldFrame:
    """The clip's world frame: rotation camera -> world, the floor's height in the rotated camera frame."""

    world_from_camera: np.ndarray  # (3, 3) rotation: rows are the world x, y (up), z axes in camera coordinates
    floor_height: float  # metres: the floor's y in the rotated, camera-centred frame (= minus the camera height)
    ankle_height: float  # metres: the ankles' height above the floor while planted (from the stature)
    contacts: int  # number of foot-contact points the estimate used (0: body cue only)
    cue: str = "body"  # what set the up direction: "body" (contacts + the body's vertical) or "scene" (lines)

    @property
    def up(self) -> np.ndarray:
        """(3,) the world's up direction in camera coordinates."""
        return self.world_from_camera[1]

    @property
    def camera_height(self) -> float:
        return -self.floor_height

    @property
    def pitch_deg(self) -> float:
        """How far the camera looks below the horizon (degrees; negative: above)."""
        return float(np.degrees(np.arcsin(np.clip(-self.up[2], -1.0, 1.0))))

    @property
    def roll_deg(self) -> float:
        """Angle of the world's up from the image's up direction, positive towards the image's +x (right)."""
        return float(np.degrees(np.arctan2(self.up[0], -self.up[1])))

    def to_world(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points -> world frame (NaN stays NaN)."""
        out = rotate(np.asarray(points_cam, np.float64), self.world_from_camera)
        out[..., 1] -= self.floor_height
        return out

    def info(self) -> dict:
        """Plain values for the exports (npz `world_*`, JSON `world`)."""
        return {"from_camera": self.world_from_camera.tolist(), "floor_height": self.floor_height,
                "camera_height": self.camera_height, "camera_pitch_deg": self.pitch_deg,
                "camera_roll_deg": self.roll_deg, "ankle_height": self.ankle_height, "contacts": self.contacts,
                "up_cue": self.cue}


def rotation_from_up(up: np.ndarray) -> np.ndarray:
    """(3, 3) world_from_camera for a unit up direction in camera coordinates (+z: the view projected on the floor)."""
    y = up / np.linalg.norm(up)
    z = _CAMERA_FORWARD - (_CAMERA_FORWARD @ y) * y
    if np.linalg.norm(z) < 1e-6:  # looking straight up or down: the image's up projected instead
        z = _CAMERA_UP - (_CAMERA_UP @ y) * y
    z = z / np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z])


def stature(joints: np.ndarray) -> float:
    """A person's standing height (metres) from (T, 17, 3) joints: median ankle-to-head-top chain, plus the ankle."""
    chain = sum(np.linalg.norm(joints[:, _J[b]] - joints[:, _J[a]], axis=-1) for a, b in _STATURE_CHAIN)
    chain = chain[np.isfinite(chain)]
    return float(np.median(chain)) / (1.0 - ANKLE_HEIGHT_RATIO) if len(chain) else 1.7


def _body_up(joints: np.ndarray) -> np.ndarray | None:
    """Mean unit direction ankles -> thorax over the frames with straight knees (all frames if none are)."""
    thigh_r, shank_r = joints[:, _J["RKnee"]] - joints[:, _J["RHip"]], joints[:, _J["RFoot"]] - joints[:, _J["RKnee"]]
    thigh_l, shank_l = joints[:, _J["LKnee"]] - joints[:, _J["LHip"]], joints[:, _J["LFoot"]] - joints[:, _J["LKnee"]]

    def bend(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    axis = joints[:, _J["Thorax"]] - joints[:, _FEET].mean(1)
    ok = np.isfinite(axis).all(-1)
    if not ok.any():
        return None
    straight = ok & (bend(thigh_r, shank_r) < STRAIGHT_KNEE_DEG) & (bend(thigh_l, shank_l) < STRAIGHT_KNEE_DEG)
    use = straight if straight.sum() >= max(3, 0.1 * ok.sum()) else ok
    unit = axis[use] / np.linalg.norm(axis[use], axis=-1, keepdims=True)
    mean = unit.mean(0)
    return mean / np.linalg.norm(mean)


def _contacts(feet: np.ndarray, fps: float, up: np.ndarray) -> np.ndarray:
    """(N, 3) planted ankle points: per frame the lower ankle along `up`, when its vertical speed is below
    `CONTACT_SPEED`."""
    k = max(1, round(fps * SPEED_SPAN_S / 2))  # central difference over about SPEED_SPAN_S: jitter averages out
    height = feet @ up
    speed = np.full(feet.shape[:2], np.inf)
    if len(feet) > 2 * k:
        speed[k:-k] = np.abs(height[2 * k:] - height[:-2 * k]) * fps / (2 * k)
    lower = np.argmin(np.where(np.isfinite(height), height, np.inf), axis=1)
    pick = feet[np.arange(len(feet)), lower]
    slow = speed[np.arange(len(feet)), lower] < CONTACT_SPEED
    return pick[slow & np.isfinite(pick).all(-1)]


def _body_prior(people: list[np.ndarray]) -> np.ndarray | None:
    """(3,) the mean body vertical of every person's (T, 17, 3) joints (camera coordinates), None without a
    complete pose."""
    body = [b for b in (_body_up(j) for j in people) if b is not None]
    if not body:
        return None
    prior = np.mean(body, axis=0)
    return prior / np.linalg.norm(prior)


def estimate_world(
    people: list[tuple[np.ndarray, np.ndarray]], fps: float, camera_height: float | None = None, *,
    scene_up: np.ndarray | None = None,
) -> WorldFrame | None:
    """The world frame of a clip from each person's (root-relative joints (T, 17, 3), trajectory (T, 3)), metres.

    Every person's contacts and vertical count (one camera, one floor); the stature (ankle height) is the
    first person's. `scene_up` (the scene's vertical, camera coordinates) fixes the up direction when given. A
    known `camera_height` (metres) puts the floor that far below the camera along the up direction, instead of
    at the contacts. None when no frame has a complete pose with a trajectory.
    """
    absolute = [np.asarray(j, np.float64) + np.asarray(t, np.float64)[:, None] for j, t in people]
    absolute = [a for a in absolute if np.isfinite(a).all(axis=(1, 2)).any()]
    if not absolute:
        return None
    prior = _body_prior(absolute)
    if scene_up is not None:
        up = np.asarray(scene_up, np.float64) / np.linalg.norm(scene_up)
        points = np.concatenate([_contacts(a[:, _FEET], fps, up) for a in absolute])
    else:
        up = prior
        for _ in range(3):
            each = [_contacts(a[:, _FEET], fps, up) for a in absolute]
            points = np.concatenate(each)
            # each person's contacts about their own mean: people on different levels (a stage, a box, stairs)
            # stand on parallel planes, and pooling them about one mean would tilt the normal between them
            scatter = sum(((q - q.mean(0)).T @ (q - q.mean(0)) for q in each if len(q) >= 3), np.zeros((3, 3)))
            scatter /= max(len(points), 1)
            # minimise n' S n + w |n - (n.prior) prior|^2: the plane's normal, held to the body's vertical
            cost = scatter + BODY_WEIGHT_M2 * (np.eye(3) - np.outer(prior, prior))
            n = np.linalg.eigh(cost)[1][:, 0]
            up = n if n @ prior > 0 else -n
    finite = absolute[0][np.isfinite(absolute[0]).all(axis=(1, 2))]
    ankle = ANKLE_HEIGHT_RATIO * stature(finite)
    each = [_contacts(a[:, _FEET], fps, up) for a in absolute]
    levels = [float(np.median(q @ up)) for q in each if len(q) >= MIN_LEVEL_CONTACTS]
    if camera_height is not None:
        sole = -float(camera_height)
    elif levels:  # the lowest surface anybody stands on (one person may stand on a box or a stage)
        sole = min(levels) - ankle
    elif len(points):
        sole = float(np.median(points @ up)) - ankle
    else:  # no planted foot: the lowest ankles of the clip stand on the floor
        sole = float(np.nanpercentile(np.concatenate([a[:, _FEET] for a in absolute]) @ up, 5.0)) - ankle
    rot = rotation_from_up(up)
    return WorldFrame(rot, sole, ankle, len(points), "body" if scene_up is None else "scene")
