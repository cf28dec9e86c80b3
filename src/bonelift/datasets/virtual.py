"""Human3.6M seen from cameras it never had, with 2D that looks like a detector's (issue 17's training data).

Two things stop a lifter trained on Human3.6M's own 2D from working on ordinary footage:

- *viewpoint*: the four Human3.6M cameras stand level with the chest, 4-6 m away, landscape 1000 px.
  `virtual_camera` places a pinhole camera anywhere around a take (azimuth all round, elevation from
  below the hips to high above, distance set by how large the person appears, focal length from a
  field of view, roll, portrait / landscape / square frames) looking at the take's mean pelvis.
- *detector*: MediaPipe / COCO landmarks are not Human3.6M joints. The pipeline derives pelvis,
  spine, thorax and head from hip, shoulder, nose and ear landmarks (`skeletons._DERIVED`);
  `detector_like` re-derives those joints from the projected ones the same way, moves the landmarks
  a detector places differently by a random amount per clip (hip width and height, head top), adds
  temporally correlated noise (larger at wrists and feet), occlusion episodes with low confidence and
  larger errors, and low confidence for joints outside the frame. The confidences it returns play
  the role of MediaPipe's visibility scores (method 5's visibility branch, Sec. 3.5).

`synthesize` turns a split's sequences (3D in the camera frame of real cameras) into sequences of
virtual cameras (and, optionally, the real ones), every one with detector-like 2D and confidences.
No real MediaPipe output on Human3.6M exists here, so the corruption's sizes are assumptions, chosen
to cover what MediaPipe gives on the Pose2Sim footage (a few per cent of body height); see
docs/results.md for how the lifter trained on them does on real footage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bonelift.cameras import Camera
from bonelift.datasets.common import PoseSequence
from bonelift.errors import BoneliftError
from bonelift.geometry import bone_vectors, joints_from_bones, person_height
from bonelift.skeletons import H36M17, Layout, rederive

FRAME_SHAPES = {"landscape": (1920, 1080), "portrait": (1080, 1920), "square": (1000, 1000)}
# Elevation of the camera above the take's mean pelvis, degrees: the groups of the novel-viewpoint test.
ELEVATIONS = {"below": (-30.0, -8.0), "level": (-8.0, 15.0), "above": (15.0, 65.0)}
FULL_ELEVATION = (ELEVATIONS["below"][0], ELEVATIONS["above"][1])
_LIMB_ENDS = ("LWrist", "RWrist", "LFoot", "RFoot", "LElbow", "RElbow", "LKnee", "RKnee")


@dataclass
class ViewConfig:
    """Which cameras and which 2D a video lifter trains on (saved with the run's configuration)."""

    cameras: str = field(default="h36m", metadata={
        "help": "training cameras: h36m (the four real ones), virtual (random virtual cameras) or both",
        "choices": ("h36m", "virtual", "both")})
    virtual_views: int = field(default=4, metadata={"help": "virtual cameras per training take"})
    detector: str = field(default="none", metadata={
        "help": "2D realism: none (the 2D source as loaded) or mediapipe (detector-like 2D from the 3D, "
                "with confidences)", "choices": ("none", "mediapipe")})
    detector_noise: float = field(default=0.01, metadata={
        "help": "typical 2D noise of --detector mediapipe, as a fraction of the person's height in the image"})
    elevation_groups: bool = field(default=False, metadata={
        "help": "draw each virtual camera's elevation group (below the hips, level, above: ELEVATIONS) with equal "
                "probability, then uniformly inside it (off: uniformly over -30..65 degrees, 23 %% from below)"})

    @property
    def active(self) -> bool:
        return self.cameras != "h36m" or self.detector != "none"

    def check(self) -> None:
        if self.cameras not in ("h36m", "virtual", "both") or self.detector not in ("none", "mediapipe"):
            raise BoneliftError(f"--cameras must be h36m, virtual or both and --detector none or mediapipe, got "
                                f"{self.cameras!r} / {self.detector!r}")
        if self.virtual_views < 1 or not 0 <= self.detector_noise < 0.5:
            raise BoneliftError("--virtual-views must be >= 1 and --detector-noise in [0, 0.5)")
        if self.cameras != "h36m" and self.detector == "none":
            raise BoneliftError("virtual cameras have no detections: use --detector mediapipe with them")


def look_at(centre: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World -> camera rotation (x right, y down, z forward) of a camera at `centre` looking at `target`,
    world z up, rolled about its optical axis."""
    fwd = target - centre
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(fwd, right)
    r = np.radians(roll_deg)
    roll = np.array([[np.cos(r), -np.sin(r), 0.0], [np.sin(r), np.cos(r), 0.0], [0.0, 0.0, 1.0]])
    return roll @ np.stack([right, down, fwd])


def virtual_camera(
    target: np.ndarray, rng: np.random.Generator, elevation: tuple[float, float] = FULL_ELEVATION,
    shape: str | None = None, name: str = "virtual", zoom_out: float = 1.0,
) -> Camera:
    """A random pinhole camera looking at world point `target` (metres, z up); `shape` a `FRAME_SHAPES` key.

    The distance follows from the person's apparent height (30-80 % of the frame's vertical side for a
    1.75 m person) and the focal length from a field of view of 50-80 degrees across the longer side;
    `zoom_out` multiplies that distance (`framing_camera` uses it for takes that move about).
    """
    shape = shape or str(rng.choice(list(FRAME_SHAPES)))
    width, height = FRAME_SHAPES[shape]
    focal = max(width, height) / 2 / np.tan(np.radians(rng.uniform(50.0, 80.0)) / 2)
    distance = max(1.5, focal * 1.75 / (rng.uniform(0.3, 0.8) * height)) * zoom_out
    az, el = np.radians(rng.uniform(0.0, 360.0)), np.radians(rng.uniform(*elevation))
    aim = target + np.array([0.0, 0.0, rng.uniform(-0.15, 0.15)])
    centre = target + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    rot = look_at(centre, aim, rng.normal(0.0, 5.0))
    c = np.array([width / 2, height / 2]) + rng.normal(0.0, 0.01 * width, 2)
    return Camera(name, rot, centre, np.array([focal, focal]), c, np.zeros(3), np.zeros(2), width, height)


def detector_like_3d(rel: np.ndarray, rng: np.random.Generator, degrees: float = 12.0, flips: float = 1 / 150,
                     scale_sd: float = 0.08, jitter: float = 0.01, layout: Layout = H36M17) -> np.ndarray:
    """Root-relative camera-frame poses (T, J, 3) metres -> a MediaPipe-like own 3D (`pose_world_landmarks`).

    The error model (issue 26; what is known of MediaPipe's world landmarks and what the Pose2Sim man shows):
    every bone turned by a random rotation that drifts over time (AR(1), correlation 0.95 per frame, sd
    `degrees`) about a fixed random axis; depth flips of the forearms and lower legs (episodes of 5-40 frames
    starting at `flips` per frame and limb: the bone's depth component mirrored, the classic monocular
    ambiguity); one body-size error per clip (sd `scale_sd`) and joint jitter (sd `jitter` metres).
    """
    rel = np.asarray(rel, np.float64)
    n = len(rel)
    bones = bone_vectors(rel, layout)
    nb = bones.shape[1]
    axis = rng.normal(size=(nb, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    rho = 0.95
    angle = np.empty((n, nb))
    angle[0] = rng.normal(size=nb)
    for t in range(1, n):
        angle[t] = rho * angle[t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=nb)
    angle = np.radians(degrees) * angle[..., None]
    cos, sin = np.cos(angle), np.sin(angle)
    bones = bones * cos + np.cross(axis, bones) * sin + axis * (axis * bones).sum(-1, keepdims=True) * (1 - cos)
    for name in _LIMB_ENDS[:4]:  # the bones ending at the wrists and ankles
        b = layout.child_bone[layout.index(name)]
        for _ in range(rng.poisson(flips * n)):
            start = int(rng.integers(n))
            bones[start : start + int(rng.integers(5, 40)), b, 2] *= -1.0
    out = joints_from_bones(bones * rng.normal(1.0, scale_sd), layout) + rng.normal(0.0, jitter, rel.shape)
    return out - out[:, layout.root : layout.root + 1]


def detector_like(
    pixels: np.ndarray, width: int, height: int, rng: np.random.Generator, noise: float = 0.01,
    layout: Layout = H36M17,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 17, 2) projected Human3.6M joints (pixels) -> detector-like 2D (T, 17, 2) and confidences (T, 17)."""
    if layout != H36M17:
        raise BoneliftError(f"detector-like 2D is defined for h36m17 joints, not {layout.name}")
    ix = layout.index
    out = pixels.astype(np.float64).copy()
    n = len(out)
    size = max(float(np.median(person_height(out, layout))), 1.0)
    # Landmarks a detector places differently, moved once per clip.
    hips = [ix("LHip"), ix("RHip")]
    mid = out[:, hips].mean(1, keepdims=True)
    torso = out[:, [ix("LShoulder"), ix("RShoulder")]].mean(1, keepdims=True) - mid
    out[:, hips] = mid + (out[:, hips] - mid) * rng.uniform(0.85, 1.35) + torso * rng.uniform(-0.1, 0.05)
    neck = out[:, ix("Neck/Nose")]
    out[:, ix("Head")] = neck + (out[:, ix("Head")] - neck) * rng.uniform(0.7, 1.3)
    # Correlated per-joint noise (AR(1) over frames), larger at the limb ends.
    rho = rng.uniform(0.3, 0.9)
    sigma = noise * size * rng.uniform(0.4, 1.6) * np.ones(layout.num_joints)
    sigma[[ix(j) for j in _LIMB_ENDS[:4]]] *= 1.5
    eps = rng.normal(size=out.shape) * sigma[:, None] * np.sqrt(1 - rho**2)
    drift = np.empty_like(eps)
    drift[0] = eps[0] / np.sqrt(1 - rho**2)
    for t in range(1, n):
        drift[t] = rho * drift[t - 1] + eps[t]
    out += drift
    conf = rng.uniform(0.75, 1.0, out.shape[:2])
    # Occlusion episodes: a limb joint badly placed for a while, with a low score.
    for _ in range(rng.poisson(max(n, 1) / 150)):
        j = ix(str(rng.choice(_LIMB_ENDS)))
        s = int(rng.integers(n))
        e = min(n, s + int(rng.integers(5, 60)))
        out[s:e, j] += rng.normal(0.0, 0.06 * size, 2) + rng.normal(0.0, 3 * noise * size, (e - s, 2))
        conf[s:e, j] = rng.uniform(0.05, 0.5)
    outside = (out[..., 0] < 0) | (out[..., 0] >= width) | (out[..., 1] < 0) | (out[..., 1] >= height)
    conf[outside] = np.minimum(conf[outside], rng.uniform(0.0, 0.3, int(outside.sum())))
    out, conf = rederive(out, conf, layout)  # the joints the pipeline derives from detector landmarks, likewise
    return out.astype(np.float32), conf.astype(np.float32)


def synthesize(
    seqs: list[PoseSequence], config: ViewConfig, seed: int, elevation: tuple[float, float] = FULL_ELEVATION,
    shape: str | None = None,
) -> list[PoseSequence]:
    """The sequences `config` asks for, from `seqs` (3D in real cameras' frames, Human3.6M-17 3D).

    Virtual cameras are drawn per take (subject, take) from the first camera's world-frame 3D; each is
    named `virtual-<elevation group>-<frame shape>-<k>`. Deterministic for a given `seed`.
    """
    config.check()
    if seqs and seqs[0].layout_3d != H36M17:
        raise BoneliftError(f"virtual views and detector-like 2D need h36m17 3D, got {seqs[0].layout_3d.name}")
    rng = np.random.default_rng(seed)
    out: list[PoseSequence] = []
    if config.cameras in ("h36m", "both"):
        for s in seqs:
            if config.detector == "none":
                out.append(s)
                continue
            pixels = s.camera.project(s.poses_3d.astype(np.float64))
            kp, conf = detector_like(pixels, s.camera.width, s.camera.height, rng, config.detector_noise)
            out.append(replace(s, keypoints=kp, confidence=conf, layout=H36M17))
    if config.cameras in ("virtual", "both"):
        seen: set[tuple[str, str]] = set()
        for s in seqs:
            if (s.subject, s.take) in seen:
                continue
            seen.add((s.subject, s.take))
            world = s.camera.camera_to_world(s.poses_3d.astype(np.float64))
            target = world[:, s.layout_3d.root].mean(0)
            for k in range(config.virtual_views):
                span = elevation
                if config.elevation_groups and elevation == FULL_ELEVATION:
                    span = list(ELEVATIONS.values())[rng.integers(len(ELEVATIONS))]
                cam = framing_camera(world, target, rng, span, shape)
                cam = replace(cam, id=f"virtual-{elevation_group(cam, target)}-{shape_of(cam)}-{k}")
                cam_pts = cam.world_to_camera(world)
                kp, conf = detector_like(cam.project(cam_pts), cam.width, cam.height, rng, config.detector_noise)
                out.append(replace(s, camera=cam, keypoints=kp, confidence=conf, layout=H36M17,
                                   poses_3d=cam_pts.astype(np.float32)))
    return out


def framing_camera(world: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                   elevation: tuple[float, float] = FULL_ELEVATION, shape: str | None = None) -> Camera:
    """A `virtual_camera` that keeps a whole take (T, J, 3 world metres) in front of it and in its frame.

    Human3.6M subjects walk several metres; a camera framed on the mean pelvis would lose them or have
    them pass beside it (joints projected thousands of pixels away). The camera is moved back (x1.2 a
    try) until every frame has at least 80 % of its joints inside the image and all of them 0.5 m or
    more in front of the lens.
    """
    state = rng.bit_generator.state
    zoom = 1.0
    for _ in range(30):
        rng.bit_generator.state = state  # the same draw (direction, lens, frame), only further away
        cam = virtual_camera(target, rng, elevation, shape, zoom_out=zoom)
        pts = cam.world_to_camera(world)
        px = cam.project(pts)
        inside = ((px >= 0) & (px < [cam.width, cam.height])).all(-1).mean(-1)
        if (pts[..., 2] > 0.5).all() and (inside >= 0.8).all():
            return cam
        zoom *= 1.2
    return cam


def elevation_group(camera: Camera, target: np.ndarray) -> str:
    """`ELEVATIONS` key of a camera's elevation above `target`."""
    d = camera.T - target
    el = np.degrees(np.arctan2(d[2], np.linalg.norm(d[:2])))
    return next((k for k, (lo, hi) in ELEVATIONS.items() if lo <= el < hi), "above" if el > 0 else "below")


def shape_of(camera: Camera) -> str:
    return next((k for k, wh in FRAME_SHAPES.items() if wh == (camera.width, camera.height)), "other")
