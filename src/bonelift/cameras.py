"""Camera geometry: world <-> camera transforms, Human3.6M projection with distortion, screen normalisation.

Conventions: positions in metres; a camera maps a world point P to camera coordinates
R @ (P - T); image coordinates are pixels with the origin at the top-left corner. The functions
accept NumPy arrays or torch tensors of shape (..., 3) / (..., 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.errors import DataError, require_file
from bonelift.geometry import rotate
from bonelift.io import load_json
from bonelift.skeletons import MM

# Frame rates a recording can have: a frame every 1000 s (time lapse) to 100,000 per second (high-speed). Outside
# them a BVH frame time is 0 or hundreds of digits long, and gap and tracking windows are nonsense.
MIN_FPS, MAX_FPS = 1e-3, 1e5
# Focal lengths, in pixels, a camera can have: below 1 pixel or above a million (a telescope on a 4K sensor is
# ~1e5) the root depth is 0 or overflows and the trajectory turns to NaN.
MIN_FOCAL, MAX_FOCAL = 1.0, 1e6

# Image sizes used for screen-coordinate normalisation of the four Human3.6M cameras.
H36M_IMAGE_SIZE = {
    "54138969": (1000, 1002),
    "55011271": (1000, 1000),
    "58860488": (1000, 1000),
    "60457274": (1000, 1002),
}
H36M_CAMERA_IDS = tuple(H36M_IMAGE_SIZE)


DISTORTION_MODELS = ("h36m", "opencv")


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with radial (k1..k3) and tangential (p1, p2) distortion on normalised coordinates.

    `distortion` names the formula: "h36m" (Human3.6M's, the default) or "opencv" (OpenCV's, which
    calibrations such as Qualisys's use). Both order k and p alike but weight the tangential terms
    differently, so a calibration must be projected with the formula it was estimated with.
    """

    id: str
    R: np.ndarray  # (3, 3) world -> camera rotation
    T: np.ndarray  # (3,) camera centre in world coordinates, metres
    f: np.ndarray  # (2,) focal lengths, pixels
    c: np.ndarray  # (2,) principal point, pixels
    k: np.ndarray  # (3,) radial distortion
    p: np.ndarray  # (2,) tangential distortion
    width: int
    height: int
    distortion: str = "h36m"

    def __post_init__(self) -> None:
        if self.distortion not in DISTORTION_MODELS:
            raise ValueError(f"camera {self.id}: distortion {self.distortion!r} is not one of {DISTORTION_MODELS}")

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return rotate(np.asarray(points) - self.T, self.R)

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) @ self.R + self.T

    def project(self, points_cam, distort: bool = True):
        """Pixel coordinates of camera-frame points (NumPy or torch), with lens distortion by default."""
        return project(points_cam, self.f, self.c, self.k if distort else None, self.p if distort else None,
                       self.distortion)

    def image_coords(self, pixels: np.ndarray) -> np.ndarray:
        """Undistorted normalised image coordinates (x/z, y/z) of pixels: the rays perspective needs."""
        return undistort((np.asarray(pixels, np.float64) - self.c) / self.f, self.k, self.p, model=self.distortion)

    def back_project(self, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Camera-frame points at the given depths (z) whose distorted projection is `pixels`."""
        xy = self.image_coords(pixels)
        d = np.asarray(depth)[..., None]
        return np.concatenate([xy * d, d], axis=-1)

    def normalize(self, pixels):
        return normalize_screen(pixels, self.width, self.height)

    def ideal_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """`pixels` as an undistorted pinhole camera with square pixels would see them: focal f[0] (x's), principal
        point c. Lifting, fusion and the root trajectory assume such a camera (one focal length, no lens)."""
        return self.image_coords(pixels) * self.f[0] + self.c


INTRINSICS_FIELDS = ("fx", "fy", "cx", "cy", "distortion", "width", "height")


def read_intrinsics(path: str | Path) -> Camera:
    """A calibration file (JSON: `fx`, `fy`, `cx`, `cy` in pixels; optional `distortion` [k1, k2, p1, p2(, k3)] in
    OpenCV's model and order; optional `width`, `height` of the calibrated image) as a `Camera` at the origin
    (width and height 0 when the file gives none). Any bad field is one DataError naming the file and the field."""
    path = require_file(path, "intrinsics file")
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise DataError(path, "intrinsics must be a JSON object with fx, fy, cx, cy (docs/pipeline.md)")
    unknown = sorted(set(doc) - set(INTRINSICS_FIELDS))
    if unknown:
        raise DataError(path, f"unknown intrinsics field {unknown[0]!r} (fields: {', '.join(INTRINSICS_FIELDS)})")

    def number(key: str, low: float = -np.inf, high: float = np.inf) -> float:
        v = doc.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
            raise DataError(path, f"{key} must be a number from {low:g} to {high:g}, got {v!r}")
        return float(v)

    f = [number(key, MIN_FOCAL, MAX_FOCAL) for key in ("fx", "fy")]
    c = [number(key, -MAX_FOCAL, MAX_FOCAL) for key in ("cx", "cy")]
    coeffs = doc.get("distortion", [0.0] * 5)
    if not isinstance(coeffs, list) or len(coeffs) not in (4, 5) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1e3 for v in coeffs):
        raise DataError(path, f"distortion must be 4 or 5 numbers [k1, k2, p1, p2(, k3)], got {coeffs!r}")
    k1, k2, p1, p2, k3 = [float(v) for v in coeffs] + [0.0] * (5 - len(coeffs))
    size = [int(number(key, 1, 1e5)) if key in doc else 0 for key in ("width", "height")]
    if (size[0] == 0) != (size[1] == 0) or any(key in doc and doc[key] != int(doc[key]) for key in ("width", "height")):
        raise DataError(path, f"width and height must both be whole numbers of pixels, got {doc.get('width')!r} x "
                              f"{doc.get('height')!r}")
    return Camera(str(path), np.eye(3), np.zeros(3), np.array(f), np.array(c), np.array([k1, k2, k3]),
                  np.array([p1, p2]), size[0], size[1], "opencv")


def _distort(xy, k, p, model: str = "h36m"):
    """Apply the Human3.6M (or OpenCV) distortion to normalised image coordinates (x/z, y/z)."""
    x, y = xy[..., 0:1], xy[..., 1:2]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    if model == "opencv":  # x' = x radial + 2 p1 x y + p2 (r2 + 2 x^2), y' likewise with p1 and p2 swapped
        return xy * radial + 2 * x * y * _stack_like(xy, p[0], p[1]) + (r2 + 2 * xy * xy) * _stack_like(xy, p[1], p[0])
    tan = p[0] * y + p[1] * x
    return xy * (radial + tan) + r2 * _stack_like(xy, p[1], p[0])


def _stack_like(ref, a, b):
    if isinstance(ref, np.ndarray):
        return np.array([a, b], dtype=ref.dtype)
    import torch

    return torch.stack([torch.as_tensor(a), torch.as_tensor(b)]).to(ref)


def project(points_cam, f, c, k=None, p=None, model: str = "h36m"):
    """Perspective projection to pixels; distortion (formula `model`) applied when k and p are given."""
    xy = points_cam[..., :2] / points_cam[..., 2:3]
    if k is not None and p is not None:
        xy = _distort(xy, k, p, model)
    return xy * f + c


def undistort(xy_distorted: np.ndarray, k: np.ndarray, p: np.ndarray, iterations: int = 20,
              model: str = "h36m") -> np.ndarray:
    """Invert `_distort` by fixed-point iteration (converges for the mild Human3.6M lenses)."""
    xy = xy_distorted.copy()
    for _ in range(iterations):
        xy = xy + (xy_distorted - _distort(xy, k, p, model))
    return xy


def normalize_screen(pixels, width: int, height: int):
    """Map pixels to [-1, 1] along x keeping the aspect ratio (the VideoPose3D convention)."""
    return pixels / width * 2 - _stack_like(pixels, 1.0, height / width)


def unnormalize_screen(screen, width: int, height: int):
    return (screen + _stack_like(screen, 1.0, height / width)) * width / 2


def load_h36m_cameras(path: str | Path) -> dict[str, dict[str, Camera]]:
    """Read Human3.6M `cameras.h5` into {subject: {camera_id: Camera}}, translations in metres.

    The file stores the rotation transposed: the world -> camera rotation is `R.T`.
    """
    import h5py

    path = require_file(path, "camera file")
    cams: dict[str, dict[str, Camera]] = {}
    try:
        with h5py.File(path, "r") as fh:
            for group in fh:
                if not group.startswith("subject"):
                    continue
                subject = "S" + group[len("subject"):]
                cams[subject] = {}
                for cam_key in fh[group]:
                    g = fh[group][cam_key]
                    cam_id = "".join(chr(int(v)) for v in np.asarray(g["Name"]).ravel())
                    width, height = H36M_IMAGE_SIZE.get(cam_id, (1000, 1000))
                    cams[subject][cam_id] = Camera(
                        id=cam_id,
                        R=np.asarray(g["R"], dtype=np.float64).T,
                        T=np.asarray(g["T"], dtype=np.float64).ravel() / MM,
                        f=np.asarray(g["f"], dtype=np.float64).ravel(),
                        c=np.asarray(g["c"], dtype=np.float64).ravel(),
                        k=np.asarray(g["k"], dtype=np.float64).ravel(),
                        p=np.asarray(g["p"], dtype=np.float64).ravel(),
                        width=width,
                        height=height,
                    )
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(path, f"cannot read Human3.6M cameras ({exc})") from exc
    if not cams:
        raise DataError(path, "no 'subject*' groups: not a Human3.6M cameras.h5 file")
    return cams


def calibrate_dlt(points_world: np.ndarray, pixels: np.ndarray, cam_id: str, width: int, height: int) -> Camera:
    """Recover an undistorted pinhole camera from 3D-2D correspondences (direct linear transform).

    Used for HumanEva-I, whose VideoPose3D files carry ground-truth 2D projections but no cameras.
    """
    X = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    u = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    n = len(X)
    Xh = np.concatenate([X, np.ones((n, 1))], axis=1)
    A = np.zeros((2 * n, 12))
    A[0::2, 0:4] = Xh
    A[0::2, 8:12] = -u[:, :1] * Xh
    A[1::2, 4:8] = Xh
    A[1::2, 8:12] = -u[:, 1:] * Xh
    P = np.linalg.svd(A, full_matrices=False)[2][-1].reshape(3, 4)
    M = P[:, :3]
    # RQ decomposition of M into an upper-triangular K and a rotation R.
    q, r = np.linalg.qr(np.flipud(M).T)
    K = np.flipud(np.fliplr(r.T))
    R = np.flipud(q.T)
    signs = np.diag(np.sign(np.diag(K)))
    K, R = K @ signs, signs @ R
    if np.linalg.det(R) < 0:
        R, P = -R, -P
    K = K / K[2, 2]
    centre = -np.linalg.solve(P[:, :3], P[:, 3])
    zero3, zero2 = np.zeros(3), np.zeros(2)
    return Camera(cam_id, R, centre, np.array([K[0, 0], K[1, 1]]), K[:2, 2].copy(), zero3, zero2, width, height)


# Assumed focal length of in-the-wild footage, as a fraction of the image's longer side: a horizontal
# field of view of 2 atan(0.5 / 0.8) = 64 degrees along that side, between a phone's main camera
# (about 26 mm equivalent: 67 degrees, narrower once video stabilisation crops) and common webcams
# (60-70 degrees). A wrong focal length scales the recovered depth by the same factor.
DEFAULT_FOCAL_FACTOR = 0.8


def assumed_intrinsics(width: int, height: int, focal: float | None = None,
                       principal: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(focal length px, principal point (2,) px) of a camera: those given, else what is assumed when nobody
    calibrated it (principal point at the image centre, focal DEFAULT_FOCAL_FACTOR x the longer side)."""
    f = float(focal) if focal is not None else DEFAULT_FOCAL_FACTOR * max(width, height)
    c = np.asarray(principal, np.float64) if principal is not None else np.array([width / 2.0, height / 2.0])
    return f, c


def root_trajectory(
    joints: np.ndarray, pixels: np.ndarray, confidence: np.ndarray | None, focal: float | np.ndarray,
    principal: np.ndarray, iterations: int = 2,
) -> np.ndarray:
    """(T, 3) camera-frame translation t per frame that places root-relative `joints` (T, J, 3) metres where
    their `pixels` (T, J, 2) are, under a pinhole camera (focal px, scalar or (fx, fy); principal point (2,)).

    Why linear: u = fx (X + tx) / (Z + tz) + cx is fx tx - (u - cx) tz = (u - cx) Z - fx X, linear in t,
    so each frame is one weighted 3x3 least-squares solve. That residual is the reprojection error times
    the joint's depth; the next `iterations` - 1 solves divide each row by the depth just found, so the
    result minimises the confidence-weighted reprojection error itself. Weights are the confidences (a
    frame whose confidences are all 0, e.g. filled by interpolation, weighs its joints equally); joints
    with NaN are left out and frames with fewer than two usable joints are NaN.
    """
    X = np.asarray(joints, np.float64)
    uv = np.asarray(pixels, np.float64) - np.asarray(principal, np.float64)
    f = np.broadcast_to(np.asarray(focal, np.float64), (2,))
    w = np.ones(X.shape[:2]) if confidence is None else np.clip(np.asarray(confidence, np.float64), 0.0, None)
    ok = np.isfinite(X).all(-1) & np.isfinite(uv).all(-1) & np.isfinite(w)
    w = np.where(ok, w, 0.0)
    w = np.where((w.sum(1, keepdims=True) > 0), w, ok.astype(np.float64))
    X, uv = np.where(ok[..., None], X, 0.0), np.where(ok[..., None], uv, 0.0)
    out = np.full((len(X), 3), np.nan)
    good = ok.sum(1) >= 2
    if not good.any():
        return out
    X, uv, w = X[good], uv[good], w[good]
    rows = np.zeros(X.shape[:2] + (2, 3))  # per joint: the x and y equations' coefficients of (tx, ty, tz)
    rows[..., 0, 0], rows[..., 1, 1] = f[0], f[1]
    rows[..., :, 2] = -uv
    rhs = uv * X[..., 2:3] - f * X[..., :2]
    scale = np.ones(X.shape[:2])
    for _ in range(max(1, iterations)):
        ww = w / scale**2
        A = np.einsum("tj,tjki,tjkl->til", ww, rows, rows)
        b = np.einsum("tj,tjki,tjk->ti", ww, rows, rhs)
        t = _solve3(A, b)
        depth = X[..., 2] + t[:, None, 2]
        scale = np.where(np.abs(depth) > 1e-6, np.abs(depth), 1.0)
    out[good] = t
    return out


def _solve3(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of (N, 3, 3) systems; singular ones (all joints on one ray) by least squares."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(a, v, rcond=None)[0] for a, v in zip(A, b)])


def triangulate(cameras: list[Camera], pixels: np.ndarray, weights: np.ndarray | None = None,
                min_views: int = 2) -> np.ndarray:
    """World points (..., 3) from their pixels in several views by weighted linear triangulation (DLT).

    pixels: (V, ..., 2), one entry per camera, NaN where a view misses the point; weights (V, ...),
    e.g. detector confidences (default 1). Each view adds two rows x P3 - P1, y P3 - P2 of the
    undistorted, normalised ray scaled by its weight, so unsure views pull less; points seen by fewer
    than `min_views` views with weight > 0 are NaN.
    """
    pixels = np.asarray(pixels, np.float64)
    if len(cameras) != len(pixels):
        raise ValueError(f"{len(cameras)} cameras but pixels for {len(pixels)} views")
    shape = pixels.shape[1:-1]
    w = np.ones(pixels.shape[:-1]) if weights is None else np.asarray(weights, np.float64)
    w = np.where(np.isfinite(pixels).all(-1) & np.isfinite(w), np.maximum(w, 0.0), 0.0)
    rows = []
    for cam, pix, wv in zip(cameras, pixels, w):
        xy = cam.image_coords(np.nan_to_num(pix.reshape(-1, 2)))
        proj = np.concatenate([cam.R, -(cam.R @ cam.T)[:, None]], axis=1)  # (3, 4) normalised camera matrix
        wv = wv.reshape(-1, 1)
        rows.append(wv * (xy[:, 0:1] * proj[2] - proj[0]))
        rows.append(wv * (xy[:, 1:2] * proj[2] - proj[1]))
    a = np.stack(rows, axis=1)  # (N, 2V, 4)
    h = np.linalg.svd(a)[2][:, -1]  # (N, 4) homogeneous solutions
    with np.errstate(invalid="ignore", divide="ignore"):
        out = h[:, :3] / h[:, 3:]
    out[(w.reshape(len(cameras), -1) > 0).sum(0) < min_views] = np.nan
    return out.reshape(shape + (3,))


def reprojection_errors(cameras: list[Camera], points_world: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """(V, ...) pixel distance between each view's pixels and the projection of the world points (NaN: missing)."""
    return np.stack([np.linalg.norm(cam.project(cam.world_to_camera(points_world)) - pix, axis=-1)
                     for cam, pix in zip(cameras, np.asarray(pixels, np.float64))])
