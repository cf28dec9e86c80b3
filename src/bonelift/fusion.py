"""Anatomical fusion at test time (issue 26): one skeleton per clip, per-frame bone directions and root position,
fitted to the image evidence and to every 3D estimate at hand.

What each source is good at, and the term that uses it:
- the detector's 2D (pixels, visibility): exact image positions, so the pose's shape and orientation across the
  image plane; a confidence-weighted, robust (soft-L1) reprojection error under a pinhole camera with sd
  `pixel_sigma` x the person's height in the image;
- a 3D prior per frame (bonelift's lifter, MediaPipe's `pose_world_landmarks`, or both): which way each bone
  points in depth, which 2D alone cannot say; the squared distance between the fitted unit bone directions and
  each prior's, sd `direction_sigma`;
- anatomy: method 5's decomposition (bone lengths belong to the person: one set per clip, each mirrored pair equal
  as method 4's symmetry loss asks). Offline, the clip's lengths are fitted too (log-offsets from the priors'
  median with sd `length_sigma`): the priors' lengths follow their own joint definitions (Human3.6M's hips, or
  MediaPipe's), the 2D says what this person's are.

Unknowns: per frame, every bone's unit direction (2 tangent coordinates each) and the root's camera-frame position;
offline, one log-length offset per bone pair. Scale comes from the priors' lengths (the 2D fixes shape only up to
depth x size). Solver: damped Gauss-Newton with iteratively re-weighted robust residuals (`steps` rounds). Each
round is one joint step: (offline) the few length offsets, with every frame's (2B + 3)-square block eliminated by a
Schur complement, then each frame's step given them; frames are gathered `CHUNK` at a time, so memory beyond the
result does not grow with the clip. Without the offsets (`causal`, whose lengths are the running mean of the
priors' lengths up to each frame) a frame's solution depends on that frame alone, so the causal fit of a clip
equals fitting its frames one at a time, as a live stream does (`RunningFusion`).

Measured and left out (docs/results.md, section 9): joint-acceleration smoothness (on the rendered tuning clip it
lowered MPJVE 11.6 -> 10.1 mm but raised P-MPJPE 46.5 -> 48.0; `--filter` smooths when wanted) and method 4's
illegal-angle penalty (no change at all: 48.0 both ways, as the 2D and the priors rarely bend a knee backwards).
The defaults are physical sizes, fixed before scoring on the man: 2D noise 1.5 % of the person's height, prior
directions about 17 degrees off, lengths within 10 %.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bonelift.cameras import root_trajectory
from bonelift.fitting import clip_bone_lengths, symmetric_lengths
from bonelift.geometry import bone_directions, bone_lengths, person_height
from bonelift.skeletons import Layout

CHUNK = 512  # frames whose normal equations are built at a time (about 50 KB a frame)


@dataclass(frozen=True)
class FusionSettings:
    """Noise model of the fit (each an sd of its term's Gaussian) and the solver's budget."""

    pixel_sigma: float = 0.015  # 2D noise, as a fraction of the person's height in the image
    direction_sigma: float = 0.3  # distance between a prior's unit bone direction and the truth (~17 degrees)
    length_sigma: float = 0.1  # log-sd of the clip's bone lengths about the priors' median (offline only)
    steps: int = 6  # Gauss-Newton rounds (5 and 20 differ by < 1 mm on the tuning clip)
    damping: float = 0.1  # Levenberg-Marquardt: each diagonal entry of the normal matrix times 1 + damping


def fuse_clip(
    keypoints: np.ndarray, confidence: np.ndarray | None, priors: list[np.ndarray], layout: Layout, focal: float,
    principal: np.ndarray, causal: bool = False, settings: FusionSettings | None = None,
) -> np.ndarray:
    """(T, J, 3) camera-frame joints (metres) of one person's clip; NaN on frames without 2D or without any prior.

    keypoints (T, J, 2) pixels and confidence (T, J) in `layout`; priors: root-relative 3D estimates (T, J, 3) in
    the camera's axes (NaN frames: that prior has nothing there). Offline: the clip's lengths start at the median
    of the priors' symmetric lengths and are fitted. `causal`: the lengths are the running mean up to each frame
    (as `fitting.fit_clip_skeleton(causal=True)`) and stay fixed, so every frame is fitted alone.
    """
    s = settings or FusionSettings()
    kp = np.asarray(keypoints, np.float64)
    conf = np.ones(kp.shape[:2]) if confidence is None else np.nan_to_num(np.asarray(confidence, np.float64))
    priors = [np.asarray(p, np.float64) for p in priors]
    has_prior = np.stack([np.isfinite(p).all((1, 2)) for p in priors])  # (P, T)
    out = np.full(kp.shape[:2] + (3,), np.nan)
    rows = np.flatnonzero(np.isfinite(kp).all((1, 2)) & has_prior.any(0))
    if not len(rows):
        return out
    has_prior = has_prior[:, rows]
    lengths = np.stack([clip_bone_lengths(p, layout, causal, rows) for p in priors])  # (P, T, B), NaN: none yet
    _solve(kp, conf, priors, rows, _base_lengths(lengths, has_prior), layout, focal, principal, not causal, s, out)
    return out


def _base_lengths(lengths: np.ndarray, has_prior: np.ndarray) -> np.ndarray:
    """(T, B) the priors' lengths (P, T, B) averaged over the priors present at each frame (others' where none)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a prior with no frame yet: NaN, left out
        present = np.nanmean(np.where(has_prior[..., None], lengths, np.nan), axis=0)
        return np.where(np.isfinite(present), present, np.nanmean(lengths, axis=0))


class RunningFusion:
    """The causal fit frame by frame, for a live stream: equal to `fuse_clip(..., causal=True)` over the frames
    pushed so far. Memory: one running sum of bone lengths per prior."""

    def __init__(self, layout: Layout, priors: int, settings: FusionSettings | None = None) -> None:
        self.layout, self.settings = layout, settings or FusionSettings()
        self.total = np.zeros((priors, len(layout.bones)))
        self.count = np.zeros(priors)

    def push(self, keypoints: np.ndarray, confidence: np.ndarray | None, priors: list[np.ndarray | None],
             focal: float, principal: np.ndarray) -> np.ndarray | None:
        """(J, 3) camera-frame joints of one frame ((J, 2) pixels; priors (J, 3) or None each); None without a
        complete 2D pose or without any prior (such a frame does not count towards the running lengths)."""
        kp = np.asarray(keypoints, np.float64)
        stack = np.stack([np.full(kp.shape[:1] + (3,), np.nan) if p is None else np.asarray(p, np.float64)
                          for p in priors])
        has = np.isfinite(stack).all((1, 2))
        if not (np.isfinite(kp).all() and has.any()):
            return None
        lengths = symmetric_lengths(bone_lengths(np.nan_to_num(stack), self.layout), self.layout)
        self.total[has] += lengths[has]
        self.count[has] += 1
        with np.errstate(all="ignore"):
            running = (self.total / self.count[:, None])[:, None]  # (P, 1, B), NaN for a prior never seen
        conf = np.ones(len(kp)) if confidence is None else np.nan_to_num(np.asarray(confidence, np.float64))
        base = _base_lengths(running, has[:, None])
        out = np.full((1,) + kp.shape[:1] + (3,), np.nan)
        _solve(kp[None], conf[None], list(stack[:, None]), np.zeros(1, int), base, self.layout, focal, principal,
               False, self.settings, out)
        return out[0]

    def reset(self) -> None:
        self.total[:] = 0.0
        self.count[:] = 0.0


def _solve(kp: np.ndarray, conf: np.ndarray, priors: list[np.ndarray], rows: np.ndarray, lengths: np.ndarray,
           layout: Layout, focal: float, principal: np.ndarray, fit_lengths: bool, s: FusionSettings,
           out: np.ndarray) -> None:
    """The fit (module docstring) of frames `rows` (which all have 2D and a prior) into out[rows] (camera-frame
    joints); `lengths` (len(rows), B). Frame data is gathered chunk by chunk, so memory beyond the result stays
    bounded by `CHUNK` whatever the clip's length."""
    chunks = [slice(a, a + CHUNK) for a in range(0, len(rows), CHUNK)]

    def inputs(c: slice) -> tuple[np.ndarray, ...]:
        """A chunk's pixels, confidences, person heights and prior stack (P, n, J, 3)."""
        r = rows[c]
        height = np.maximum(person_height(kp[r], layout), 1.0)[:, None, None]
        return kp[r], np.clip(conf[r], 0.0, 1.0), s.pixel_sigma * height, np.stack([p[r] for p in priors])

    paths = _path_matrix(layout)
    dirs = np.empty(lengths.shape + (3,))
    root = np.empty((len(rows), 3))
    for c in chunks:  # start: the priors' mean directions, the root where that pose reprojects best
        pix, weight, _, stack = inputs(c)
        mean = _prior_directions(stack, layout).sum(0)
        dirs[c] = mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-9)
        root[c] = root_trajectory(np.einsum("jb,tbc->tjc", paths, dirs[c] * lengths[c, ..., None]), pix, weight,
                                  focal, principal)
    root = np.where(np.isfinite(root), root, np.array([0.0, 0.0, 4.0]))
    root[:, 2] = np.maximum(root[:, 2], 0.5)
    groups = _symmetric_index(len(layout.bones), layout.mirrored_bones)
    offsets = np.zeros(int(groups.max()) + 1)
    nb = len(layout.bones)

    def system(c: slice) -> tuple[np.ndarray, ...]:
        pix, weight, scale, stack = inputs(c)
        return _frame_system(dirs[c], root[c], offsets, groups, paths, layout, focal, principal, s, pix, weight,
                             scale, _prior_directions(stack, layout), lengths[c])

    for _ in range(s.steps):
        length_step = np.zeros_like(offsets)
        solved = None  # A^-1 [g, C] of a clip in one chunk: the frames' step below reuses it (no second solve)
        if fit_lengths:  # the offsets' step with every frame's block eliminated (Schur complement), summed by chunk
            reduced = np.eye(len(offsets)) / s.length_sigma**2
            rhs = offsets / s.length_sigma**2
            for c in chunks:
                normal, grad, cross, jac_len, wl, res = system(c)
                solved = np.linalg.solve(normal, np.concatenate([grad[..., None], cross], -1))
                reduced += np.einsum("tkg,tkh->gh", wl, jac_len) - np.einsum("tpg,tph->gh", cross, solved[..., 1:])
                rhs += np.einsum("tkg,tk->g", wl, res) - np.einsum("tpg,tp->g", cross, solved[..., 0])
            reduced[np.diag_indices_from(reduced)] *= 1.0 + s.damping
            length_step = -np.linalg.solve(reduced, rhs)
        for c in chunks:  # each frame's step, given the offsets' step: A^-1 (g + C dl)
            if solved is not None and len(chunks) == 1:
                step = -(solved[..., 0] + solved[..., 1:] @ length_step)
            else:  # several chunks: building a chunk's system again costs less memory than keeping every chunk's
                normal, grad, cross, *_ = system(c)
                step = -np.linalg.solve(normal, (grad + cross @ length_step)[..., None])[..., 0]
            moved = dirs[c] + np.einsum("tbcd,tbd->tbc", _tangents(dirs[c]), step[:, : 2 * nb].reshape(-1, nb, 2))
            dirs[c] = moved / np.linalg.norm(moved, axis=-1, keepdims=True)
            root[c] = root[c] + step[:, 2 * nb :]
            root[c, 2] = np.maximum(root[c, 2], 0.5)
        offsets = offsets + length_step
    for c in chunks:
        bones = dirs[c] * (lengths[c] * np.exp(offsets[groups]))[..., None]
        out[rows[c]] = np.einsum("jb,tbc->tjc", paths, bones) + root[c, None]


def _prior_directions(stack: np.ndarray, layout: Layout) -> np.ndarray:
    """(P, T, B, 3) each prior's unit bone directions, 0 where the prior has no pose."""
    has = np.isfinite(stack).all((2, 3))
    return np.where(has[..., None, None], bone_directions(np.nan_to_num(stack), layout)[0], 0.0)


def _frame_system(dirs: np.ndarray, root: np.ndarray, offsets: np.ndarray, groups: np.ndarray, paths: np.ndarray,
                  layout: Layout, focal: float, principal: np.ndarray, s: FusionSettings, kp: np.ndarray,
                  weight: np.ndarray, scale: np.ndarray, prior_dirs: np.ndarray,
                  lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per frame the damped normal matrix (T, 2B + 3, 2B + 3) and gradient of the frame's unknowns (2 tangent
    coordinates per bone, the root), their coupling to the clip's length offsets (T, 2B + 3, G), and the offsets'
    weighted Jacobian rows (T, 2J, G) twice (plain, robust-weighted) with the residuals (T, 2J)."""
    n, nb = len(kp), len(layout.bones)
    bones = dirs * (lengths * np.exp(offsets[groups]))[..., None]
    joints = np.einsum("jb,tbc->tjc", paths, bones) + root[:, None]
    res, pi, robust = _reprojection(joints, kp, weight, scale, focal, principal)
    basis = _tangents(dirs)  # (T, B, 3, 2)
    # d residual / d (tangent step of bone b): the projection's Jacobian times the bone's length times its tangent
    # basis, for every joint below the bone (paths); matrix products, not einsum: several times faster here
    moved = pi[:, :, None] @ (basis * np.linalg.norm(bones, axis=-1)[..., None, None])[:, None]  # (T, J, B, 2, 2)
    jac_bone = (moved * paths[None, :, :, None, None]).transpose(0, 1, 3, 2, 4).reshape(n, -1, 2 * nb)
    jac = np.concatenate([jac_bone, pi.reshape(n, -1, 3)], -1)  # (T, 2J, 2B + 3)
    w2 = np.repeat(robust, 2, axis=1)[..., None]
    wj = jac * w2
    normal = wj.transpose(0, 2, 1) @ jac
    grad = (wj.transpose(0, 2, 1) @ res.reshape(n, -1, 1))[..., 0]
    has_prior = (prior_dirs != 0).any((2, 3))  # (P, T): `_prior_directions` leaves 0 where a prior has no pose
    prior_count = has_prior.sum(0)[:, None] / s.direction_sigma**2  # (T, 1): each prior adds E^T E = I
    gap = (dirs[None] - prior_dirs) * has_prior[..., None, None]  # (P, T, B, 3)
    grad[:, : 2 * nb] += np.einsum("tbcd,ptbc->tbd", basis, gap).reshape(n, -1) / s.direction_sigma**2
    diag = np.arange(2 * nb + 3)
    normal[:, diag[: 2 * nb], diag[: 2 * nb]] += prior_count
    normal[:, diag, diag] *= 1.0 + s.damping
    normal += 1e-9 * np.eye(2 * nb + 3)
    # d joint / d log-length of bone b = the bone itself, for every joint below it
    member = np.eye(len(offsets))[groups]  # (B, G)
    along = (pi @ bones.transpose(0, 2, 1)[:, None]) * paths[None, :, None, :]  # (T, J, 2, B)
    jac_len = (along @ member).reshape(n, -1, len(offsets))  # (T, 2J, G)
    return normal, grad, wj.transpose(0, 2, 1) @ jac_len, jac_len, jac_len * w2, res.reshape(n, -1)


def _reprojection(joints: np.ndarray, kp: np.ndarray, weight: np.ndarray, scale: np.ndarray, focal: float,
                  principal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised residuals (T, J, 2), their Jacobian per joint position (T, J, 2, 3), and IRLS weights (T, J) of
    the soft-L1 cost 2 (sqrt(1 + r^2) - 1) times the confidence."""
    z = np.maximum(joints[..., 2], 0.05)
    res = (focal * joints[..., :2] / z[..., None] + principal - kp) / scale
    pi = np.zeros(joints.shape[:2] + (2, 3))
    pi[..., 0, 0] = pi[..., 1, 1] = focal / z
    pi[..., :, 2] = -focal * joints[..., :2] / z[..., None] ** 2
    pi /= scale[..., None]
    return res, pi, weight / np.sqrt(1.0 + (res**2).sum(-1))


def _tangents(u: np.ndarray) -> np.ndarray:
    """(..., 3, 2) an orthonormal basis of the plane perpendicular to each unit vector u (..., 3)."""
    a = np.where((np.abs(u[..., :1]) < 0.9), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    e1 = np.cross(a, u)
    e1 /= np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-12)
    return np.stack([e1, np.cross(u, e1)], -1)


def _path_matrix(layout: Layout) -> np.ndarray:
    """(J, B) 1 where bone b lies on the path from the root to joint j: joints = paths @ bones in one product."""
    out = np.zeros((layout.num_joints, len(layout.bones)))
    for j in range(layout.num_joints):
        k = j
        while layout.parents[k] >= 0:
            out[j, layout.child_bone[k]] = 1.0
            k = layout.parents[k]
    return out


def _symmetric_index(bones: int, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(B,) index of each bone's shared length offset: mirrored bones share one."""
    index = np.arange(bones)
    for left, right in pairs:
        index[right] = index[left]
    _, compact = np.unique(index, return_inverse=True)
    return compact


__all__ = ["FusionSettings", "RunningFusion", "fuse_clip"]
