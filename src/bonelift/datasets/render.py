"""Person crops drawn from real Human3.6M poses and cameras: the `render` ImageSet source.

Where the video archive is absent, method 3's image path (crops -> CNN -> 2D grid classes and 3D) still
needs images whose content is the pose. Each frame's real 3D joints go through their real camera (with
distortion) and are drawn directly into the person crop, at its resolution, never a full frame: limbs as
tapered capsules shaded light-to-dark across their width so they read as round, the torso as a filled
polygon (the hull of a chest-deep box around shoulders and hips, so it has a silhouette in profile too),
the head as a shaded ellipse, hands and feet (feet point along the body's forward direction, a cue for
which way the person faces). Parts are painted far to near (painter's algorithm on camera depth), so a
forearm in front of the torso covers it and one behind is hidden. Backgrounds (gradients, smooth noise,
random shapes), clothing colours (the same on the left and the right: no colour tells the sides apart),
skin tone, build and light direction are drawn per sample; a sample's look depends only on the seed
and its index, so a set is reproducible.

These renders are a functional check of the image path (cropping, labels, the network's input and
training loop), not a substitute for real images: scores on them are not comparable with the paper's
Human3.6M numbers, which come from video frames of real people with real clothing and scenes.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
from tqdm import tqdm

from bonelift.cameras import Camera
from bonelift.datasets.common import PoseSequence
from bonelift.datasets.images import (
    CROP_MARGIN,
    DEFAULT_STRIDE,
    ImageSet,
    _cv2,
    check_crop_options,
    crop_geometry,
    empty_images,
    sequences_layout,
)
from bonelift.errors import DataError
from bonelift.skeletons import H36M17, Layout

# Joint names the body model hangs its parts on (Human3.6M's 17-joint skeleton has them all).
REQUIRED_JOINTS = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose",
                   "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")

# Capsule radii in metres (proximal, distal) at build 1: about an adult's limb half-widths.
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = (0.058, 0.047), (0.047, 0.034), (0.092, 0.064), (0.064, 0.045)
_FOOT, _NECK, _HAND = (0.045, 0.035), 0.05, 0.045
_HEAD_AXES = (0.115, 0.09)  # semi-axes along the neck-to-head direction and across it
_CHEST_DEPTH = 0.11  # half the front-to-back thickness of the torso box
_FOOT_LENGTH = 0.14

# Shading: each part is drawn as nested copies, outermost darkest; inner ones shrink by `t` and shift
# toward the light, which leaves a bright band off-centre like light on a cylinder.
_LAYER_T = np.array([1.0, 0.8, 0.58, 0.34])
_LAYER_SHADE = np.array([0.5, 0.68, 0.84, 1.0])
_SHIFT = 4  # fractional bits of OpenCV's sub-pixel drawing
_ONE = float(1 << _SHIFT)


@dataclass(frozen=True)
class Appearance:
    """One sample's look: colours (RGB, 0-255), sleeves, build and light; `random` draws one."""

    skin: tuple[float, float, float]
    top: tuple[float, float, float]
    bottom: tuple[float, float, float]
    shoes: tuple[float, float, float]
    long_sleeves: bool = True
    build: float = 1.0  # scales every radius: thinner or stockier people
    limbs: float = 1.0  # extra factor on arm and leg radii
    light: tuple[float, float] = (-0.6, -0.8)  # unit direction toward the light in the crop (x right, y down)
    brightness: float = 1.0

    @staticmethod
    def random(rng: np.random.Generator) -> Appearance:
        """Skin from light to dark, saturated or muted clothes, build within about +-15 %."""
        tone = rng.uniform()
        skin = np.array([255, 224, 196]) * (1 - tone) + np.array([92, 58, 40]) * tone + rng.normal(0, 8, 3)

        def cloth() -> tuple[float, float, float]:
            rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.9) ** 1.5, rng.uniform(0.15, 0.95))
            return tuple(float(v * 255) for v in rgb)

        angle = rng.uniform(0, 2 * np.pi)
        return Appearance(
            skin=tuple(float(v) for v in np.clip(skin, 0, 255)), top=cloth(), bottom=cloth(),
            shoes=tuple(float(v) for v in rng.uniform(10, 110) * np.ones(3) + rng.normal(0, 10, 3)),
            long_sleeves=bool(rng.uniform() < 0.6), build=float(rng.uniform(0.85, 1.15)),
            limbs=float(rng.uniform(0.9, 1.1)), light=(float(np.cos(angle)), float(np.sin(angle))),
            brightness=float(rng.uniform(0.75, 1.2)),
        )


def render_crop(
    pose: np.ndarray,
    camera: Camera,
    size: int,
    rng: np.random.Generator,
    layout: Layout = H36M17,
    margin: float = CROP_MARGIN,
    appearance: Appearance | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(image (size, size, 3) uint8 RGB, joints2d (J, 2) crop coordinates) of one camera-frame pose (J, 3) in metres.

    The crop is `crop_geometry`'s box around the projected joints; the body is drawn on a random
    background with `appearance` (random when None), then lightly blurred and noised like a camera.
    """
    cv2 = _cv2()
    pose = np.asarray(pose, np.float64)
    _, affine, joints2d = crop_geometry(camera.project(pose), size, margin)
    body = _Body(pose, camera, affine, layout)
    look = appearance or Appearance.random(rng)
    image = _background(size, rng)
    for _, steps in sorted(body.parts(look), key=lambda part: -part[0]):  # painter's algorithm: far to near
        for draw in steps:
            draw(image)
    if rng.uniform() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    # Sensor noise, uniform in +-amplitude grey levels: integers are ~7x cheaper to draw than normals at 250 px.
    amplitude = int(rng.integers(0, 11))
    noisy = image.astype(np.int16) + rng.integers(-amplitude, amplitude + 1, image.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8), joints2d


def render_image_set(
    sequences: Sequence[PoseSequence],
    size: int = 250,
    stride: int = DEFAULT_STRIDE,
    seed: int = 0,
    margin: float = CROP_MARGIN,
    progress: bool = False,
) -> ImageSet:
    """Render every `stride`-th frame of `sequences` (their 3D and cameras; the 2D source is unused).

    Sample i (in sequence order) uses the generator seeded with (seed, i), so the same seed and
    sequences give the same images however the work is split.
    """
    check_crop_options(stride, size)
    layout = sequences_layout(sequences, None)
    joint_indices(layout)
    rows = [(s, t) for s, seq in enumerate(sequences) for t in range(0, len(seq), stride)]
    n = len(rows)
    images = empty_images(n, size)
    joints2d = np.empty((n, layout.num_joints, 2), np.float32)
    poses = np.empty((n, layout.num_joints, 3), np.float32)
    relative = [seq.root_relative for seq in sequences]
    for i, (s, t) in enumerate(tqdm(rows, desc="render crops", unit="crop", disable=not progress, leave=False)):
        seq = sequences[s]
        images[i], joints2d[i] = render_crop(seq.poses_3d[t], seq.camera, size, np.random.default_rng((seed, i)),
                                             layout, margin)
        poses[i] = relative[s][t]
    which = np.array([s for s, _ in rows], np.int64)
    return ImageSet(
        images=images, joints2d=joints2d, poses=poses, layout=layout,
        subject=np.array([seq.subject for seq in sequences])[which],
        action=np.array([seq.action for seq in sequences])[which],
        camera=np.array([seq.camera.id for seq in sequences])[which],
        frame=np.array([t for _, t in rows], np.int64), source="render",
    )


# ----- drawing


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _fixed(p: np.ndarray) -> np.ndarray:
    """Raster coordinates as OpenCV's fixed-point integers (`_SHIFT` fractional bits)."""
    return np.round(np.asarray(p) * _ONE).astype(np.int32)


def _point(p: np.ndarray) -> tuple[int, int]:
    """One raster point as the fixed-point (x, y) tuple OpenCV's drawing functions take."""
    x, y = _fixed(p).tolist()
    return x, y


def _shade(colour: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    return tuple(min(255.0, c * factor) for c in colour)


def _shades(colour: tuple[float, float, float], layers: int = len(_LAYER_T)) -> list[list[float]]:
    """The colour of each shading layer, outermost first."""
    return np.minimum(np.multiply.outer(_LAYER_SHADE[:layers], colour), 255.0).tolist()


def _capsule(image: np.ndarray, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
             colour: tuple[float, float, float], light: np.ndarray) -> None:
    """A tapered capsule p0 -> p1 (raster px, radii r0, r1), shaded across its width."""
    cv2 = _cv2()
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    normal = np.array([-axis[1], axis[0]]) / length if length > 1e-6 else np.array([0.0, 1.0])
    toward = normal * float(normal @ light)  # the light's component across the limb
    # All layers at once (the per-call Python cost, not the rasterising, is what limits the speed).
    shift = np.multiply.outer((1 - _LAYER_T) * 0.25 * (r0 + r1), toward)  # (L, 2)
    a, b = p0 + shift, p1 + shift
    ra, rb = (r0 * _LAYER_T)[:, None], (r1 * _LAYER_T)[:, None]
    quads = _fixed(np.stack([a + normal * ra, b + normal * rb, b - normal * rb, a - normal * ra], 1))
    ends = _fixed(np.stack([a, b], 1)).tolist()
    radii = np.maximum((np.concatenate([ra, rb], 1) * _ONE).astype(int), 1).tolist()
    for quad, (ca, cb), (rad_a, rad_b), c in zip(quads, ends, radii, _shades(colour)):
        cv2.fillConvexPoly(image, quad, c, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, ca, rad_a, c, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, cb, rad_b, c, -1, cv2.LINE_AA, _SHIFT)


def _ellipse(image: np.ndarray, centre: np.ndarray, axes: tuple[float, float], angle: float,
             colour: tuple[float, float, float], light: np.ndarray) -> None:
    """A filled ellipse (semi-axes in raster px, `angle` in degrees) shaded toward the light."""
    cv2 = _cv2()
    centres = _fixed(centre + np.multiply.outer((1 - _LAYER_T) * 0.5 * min(axes), light)).tolist()
    sizes = np.maximum((np.multiply.outer(_LAYER_T, axes) * _ONE).astype(int), 1).tolist()
    for c, size, shade in zip(centres, sizes, _shades(colour)):
        cv2.ellipse(image, c, size, angle, 0, 360, shade, -1, cv2.LINE_AA, _SHIFT)


def _polygon(image: np.ndarray, hull: np.ndarray, colour: tuple[float, float, float], light: np.ndarray) -> None:
    """A convex polygon (raster px) shaded like the capsules: shrunk copies toward its centre and the light."""
    cv2 = _cv2()
    centre = hull.mean(0)
    extent = float(np.abs(hull - centre).max())
    layers = 3  # the torso is broad: a fourth, innermost band would look like a stripe
    for t, shade in zip(_LAYER_T[:layers], _shades(colour, layers)):
        pts = centre + (hull - centre) * t + light * (1 - t) * 0.3 * extent
        cv2.fillConvexPoly(image, _fixed(pts), shade, cv2.LINE_AA, _SHIFT)


def joint_indices(layout: Layout) -> dict[str, int]:
    """{name: index} of the `REQUIRED_JOINTS` in `layout`; a layout lacking some is a DataError naming them."""
    absent = [name for name in REQUIRED_JOINTS if name not in layout.joints]
    if absent:
        raise DataError(None, f"the renderer needs the joints {', '.join(absent)}, which layout {layout.name} lacks")
    return {name: layout.index(name) for name in REQUIRED_JOINTS}


Part = tuple[float, list[Callable[[np.ndarray], None]]]  # (camera depth, drawing steps painted in order)


class _Body:
    """One pose seen through the crop: joints' raster positions, perspective scale and the body's own axes."""

    def __init__(self, pose: np.ndarray, camera: Camera, affine: np.ndarray, layout: Layout) -> None:
        self.pose, self.camera, self.affine, self.j = pose, camera, affine, joint_indices(layout)
        self.points = self.raster(pose)
        self.ppm = self.pixels_per_metre(pose[:, 2])
        self.right = _unit(self["RHip"] - self["LHip"] + self["RShoulder"] - self["LShoulder"])
        self.up = _unit(self["Thorax"] - self["Hip"])
        self.forward = _unit(np.cross(self.up, self.right))  # camera axes are right-handed: up x right = front

    def __getitem__(self, name: str) -> np.ndarray:
        return self.pose[self.j[name]]

    def raster(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop raster positions of (..., 3) camera-frame points (projected with distortion)."""
        return self.camera.project(points) @ self.affine[:, :2].T + self.affine[:, 2]

    def pixels_per_metre(self, depth):
        """Raster pixels a metre spans at `depth` (perspective; distortion is negligible for widths)."""
        return float(np.mean(self.camera.f)) / np.maximum(depth, 1e-3) * self.affine[0, 0]

    def depth(self, *names: str) -> float:
        return float(np.mean([self[n][2] for n in names]))

    def capsule(self, a: str, b: str, radii: tuple[float, float], colour, light) -> Callable[[np.ndarray], None]:
        """A limb between joints `a` and `b`, its radii in metres."""
        ia, ib = self.j[a], self.j[b]
        return partial(_capsule, p0=self.points[ia], p1=self.points[ib], r0=radii[0] * self.ppm[ia],
                       r1=radii[1] * self.ppm[ib], colour=colour, light=light)

    def parts(self, look: Appearance) -> list[Part]:
        """Every body part; the caller paints them far to near."""
        light = np.asarray(look.light, np.float64)
        skin, top, bottom, shoes = (_shade(c, look.brightness) for c in (look.skin, look.top, look.bottom, look.shoes))
        limb = look.build * look.limbs
        scaled = {name: (r0 * limb, r1 * limb) for name, (r0, r1) in
                  (("upper arm", _UPPER_ARM), ("forearm", _FOREARM), ("thigh", _THIGH), ("shin", _SHIN))}
        parts: list[Part] = []
        for side in "LR":
            shoulder, elbow, wrist = side + "Shoulder", side + "Elbow", side + "Wrist"
            hip, knee, ankle = side + "Hip", side + "Knee", side + "Foot"
            upper_arm = self.capsule(shoulder, elbow, scaled["upper arm"], top, light)
            parts.append((self.depth(shoulder, elbow), [upper_arm]))
            hand3 = self[wrist] + _unit(self[wrist] - self[elbow]) * 0.06
            r = _HAND * limb * self.pixels_per_metre(hand3[2])
            hand = partial(_ellipse, centre=self.raster(hand3), axes=(r, 0.8 * r), angle=0.0, colour=skin, light=light)
            forearm = self.capsule(elbow, wrist, scaled["forearm"], top if look.long_sleeves else skin, light)
            parts.append((self.depth(elbow, wrist), [forearm, hand]))
            parts.append((self.depth(hip, knee), [self.capsule(hip, knee, scaled["thigh"], bottom, light)]))
            toe3 = self[ankle] + self.forward * _FOOT_LENGTH - self.up * 0.04
            foot = partial(_capsule, p0=self.points[self.j[ankle]], p1=self.raster(toe3),
                           r0=_FOOT[0] * limb * self.ppm[self.j[ankle]],
                           r1=_FOOT[1] * limb * self.pixels_per_metre(toe3[2]), colour=shoes, light=light)
            parts.append((self.depth(knee, ankle), [self.capsule(knee, ankle, scaled["shin"], bottom, light), foot]))
        parts.append(self._torso(look, top, light))
        parts.append(self._head(look, skin, light))
        return parts

    def _torso(self, look: Appearance, colour, light: np.ndarray) -> Part:
        """The outline of a chest-deep box around the shoulders (raised to their top) and the hips (widened):
        a broad polygon seen from the front, a narrower one in profile."""
        corners = []
        for name, out, lift in (("LShoulder", -0.03, 0.04), ("RShoulder", 0.03, 0.04), ("LHip", -0.05, 0.0),
                                ("RHip", 0.05, 0.0)):
            centre = self[name] + self.right * out * look.build + self.up * lift
            for sign in (1.0, -1.0):
                corners.append(centre + sign * self.forward * _CHEST_DEPTH * look.build)
        hull = _hull(self.raster(np.array(corners)))
        return self.depth("LShoulder", "RShoulder", "LHip", "RHip"), [partial(_polygon, hull=hull, colour=colour,
                                                                              light=light)]

    def _head(self, look: Appearance, colour, light: np.ndarray) -> Part:
        """Neck and head: an ellipse around the midpoint of the nose and head joints, long along thorax -> head."""
        centre3 = (self["Neck/Nose"] + self["Head"]) / 2
        centre = self.raster(centre3)
        thorax, top = self.points[self.j["Thorax"]], self.points[self.j["Head"]]
        axis = top - thorax
        # The long axis shortens toward the short one as the thorax -> head direction turns toward the camera.
        seen = float(np.linalg.norm(axis)) / max(float(np.linalg.norm(self["Head"] - self["Thorax"]))
                                                 * self.ppm[self.j["Head"]], 1e-9)
        ppm = self.pixels_per_metre(centre3[2]) * look.build
        long, short = _HEAD_AXES
        axes = (ppm * (short + (long - short) * min(seen, 1.0)), ppm * short)
        neck_r = _NECK * look.build * self.ppm[self.j["Thorax"]]
        neck = partial(_capsule, p0=thorax, p1=(thorax + centre) / 2, r0=neck_r, r1=neck_r, colour=colour, light=light)
        head = partial(_ellipse, centre=centre, axes=axes, angle=float(np.degrees(np.arctan2(axis[1], axis[0]))),
                       colour=colour, light=light)
        return float(centre3[2]), [neck, head]


def _hull(points: np.ndarray) -> np.ndarray:
    """(K, 2) convex hull of 2D points in order (float, for sub-pixel drawing)."""
    return _cv2().convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


# ----- backgrounds


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, :, None], c[:, None, None]  # x (1, S, 1), y (S, 1, 1) in [0, 1]


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random scene stand-in: a linear or radial gradient or smooth noise, then a few flat shapes."""
    cv2 = _cv2()
    kind = rng.integers(3)
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    x, y = _grid(size)
    if kind == 0:
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle) + 0.5, 0, 1)
        image = c0 + t * (c1 - c0)
    elif kind == 1:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.clip(np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * rng.uniform(0.7, 1.6), 0, 1)
        image = c0 + t * (c1 - c0)
    else:
        cells = int(rng.integers(2, 9))
        coarse = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 7))):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        a, b = rng.uniform(-0.2, 1.2, (2, 2)) * size
        shape = rng.integers(3)
        if shape == 0:
            cv2.rectangle(image, _point(a), _point(b), colour, -1, cv2.LINE_AA, _SHIFT)
        elif shape == 1:
            radius = int(rng.uniform(0.03, 0.3) * size * _ONE)
            cv2.circle(image, _point(a), radius, colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            width = max(1, int(rng.uniform(0.005, 0.04) * size))
            cv2.line(image, _point(a), _point(b), colour, width, cv2.LINE_AA, _SHIFT)
    return image


