"""Anatomical fusion at test time (issue 26): one skeleton per clip, per-frame bone directions and root position,
fitted to the image evidence and to every 3D estimate at hand.

What each source is good at, and the term that uses it:
- the detector's 2D (pixels, visibility): exact image positions, so the pose's shape and orientation across the
  image plane; a confidence-weighted, robust reprojection error under a pinhole camera (`reprojection`);
- a 3D prior per frame (bonelift's lifter, MediaPipe's `pose_world_landmarks`, or both): which way each bone
  points in depth, which 2D alone cannot say; the squared distance between the fitted unit bone directions and
  each prior's (`direction`, a Gaussian on the direction with sd `direction_sigma`);
- anatomy: method 5's decomposition (bone lengths belong to the person, so one set per clip, each mirrored pair
  equal as method 4's symmetry loss asks), method 4's illegal-angle penalty on elbows and knees (eq. 1 with
  `geometry.bend_components`), and, offline, smooth joint trajectories (a Gaussian on joint acceleration with sd
  `accel_sigma` metres per second squared).

The unknowns are per-clip log-length offsets (offline only), per-frame bone direction vectors and the root's
camera-frame position; joints are rebuilt along the kinematic tree (`geometry.joints_from_bones`), so every pose
has the clip's bone lengths by construction. Scale comes from the priors' lengths (the 2D fixes the shape only up
to depth x size). The solver is Adam over all frames at once (PyTorch, vectorised); the loss is a plain sum over
frames, so without the temporal term (`causal`) every frame's solution depends on that frame and the running
lengths alone: the causal fit of a clip equals fitting its frames one at a time, as a live stream does.

Each term is the negative log-likelihood of an assumed noise model, so the defaults are physical sizes, not
weights tuned to one clip: 2D noise 1.5 % of the person's height in the image, prior directions about 17 degrees
off, joint accelerations of about 20 m/s^2, clip lengths within 10 % of the priors' median.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from bonelift.cameras import root_trajectory
from bonelift.fitting import clip_bone_lengths, symmetric_lengths
from bonelift.geometry import bend_components, bone_directions, bone_lengths, joints_from_bones, person_height
from bonelift.skeletons import Layout


@dataclass(frozen=True)
class FusionSettings:
    """Noise model of the fit (each an sd of its term's Gaussian) and the solver's budget."""

    pixel_sigma: float = 0.015  # 2D noise, as a fraction of the person's height in the image
    direction_sigma: float = 0.3  # distance between a prior's unit bone direction and the truth (~17 degrees)
    length_sigma: float = 0.1  # log-sd of the clip's bone lengths about the priors' median (offline only)
    accel_sigma: float = 20.0  # joint acceleration, m/s^2 (offline only)
    angle_weight: float = 1.0  # method 4's illegal-angle penalty per frame
    iterations: int = 200
    solver: str = "adam"
    ray_init: bool = True  # start from the 2D rays (`_ray_directions`) rather than the priors' mean directions
    lr: float = 0.03


def _soft_l1(s: torch.Tensor) -> torch.Tensor:
    """Robust cost of a squared normalised residual: quadratic near 0, linear far out (a wrong 2D joint)."""
    return 2.0 * (torch.sqrt(1.0 + s) - 1.0)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def fuse_clip(
    keypoints: np.ndarray, confidence: np.ndarray | None, priors: list[np.ndarray], layout: Layout, focal: float,
    principal: np.ndarray, fps: float = 30.0, causal: bool = False, settings: FusionSettings | None = None,
) -> np.ndarray:
    """(T, J, 3) camera-frame joints (metres) of one person's clip; NaN on frames without 2D or without any prior.

    keypoints (T, J, 2) pixels and confidence (T, J) in `layout`; priors: root-relative 3D estimates (T, J, 3) in
    the camera's axes (NaN frames: that prior has nothing there). Centred (offline): clip lengths are the median
    of the priors' symmetric lengths times fitted offsets, and trajectories are smoothed. `causal`: the lengths
    are the running mean up to each frame (as `fitting.fit_clip_skeleton(causal=True)`) and frames are fitted
    independently, so live and offline agree frame by frame.
    """
    s = settings or FusionSettings()
    kp = np.asarray(keypoints, np.float64)
    conf = np.ones(kp.shape[:2]) if confidence is None else np.nan_to_num(np.asarray(confidence, np.float64))
    stack = np.stack([np.asarray(p, np.float64) for p in priors])  # (P, T, J, 3)
    has_prior = np.isfinite(stack).all((2, 3))  # (P, T)
    ok = np.isfinite(kp).all((1, 2)) & has_prior.any(0)
    out = np.full(kp.shape[:2] + (3,), np.nan)
    if not ok.any():
        return out
    rows = np.flatnonzero(ok)
    stack, has_prior = stack[:, rows], has_prior[:, rows]
    lengths = np.stack([clip_bone_lengths(p, layout, causal) for p in stack])  # (P, T, B), NaN: no prior yet
    out[rows] = _solve(kp[rows], conf[rows], stack, _base_lengths(lengths, has_prior), layout, focal, principal,
                       rows if not causal else None, fps, s)
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
        return _solve(kp[None], conf[None], stack[:, None], base, self.layout, focal, principal, None, 30.0,
                      self.settings)[0]

    def reset(self) -> None:
        self.total[:] = 0.0
        self.count[:] = 0.0


def _solve(kp: np.ndarray, conf: np.ndarray, stack: np.ndarray, base_len: np.ndarray, layout: Layout, focal: float,
           principal: np.ndarray, rows: np.ndarray | None, fps: float, s: FusionSettings) -> np.ndarray:
    """The fit itself (module docstring) on frames that all have 2D and a prior; `rows` (their frame numbers)
    switches on the clip terms (length offsets and smoothness across consecutive frames), None fits each frame
    alone."""
    has_prior = np.isfinite(stack).all((2, 3))
    dirs = np.where(has_prior[..., None, None], bone_directions(np.nan_to_num(stack), layout)[0], 0.0)
    init_dirs = dirs.sum(0)
    init_dirs /= np.maximum(np.linalg.norm(init_dirs, axis=-1, keepdims=True), 1e-9)
    init_rel = joints_from_bones(init_dirs * base_len[..., None], layout)
    root0 = root_trajectory(init_rel, kp, conf, focal, principal)
    root0 = np.where(np.isfinite(root0), root0, np.array([0.0, 0.0, 4.0]))
    root0[:, 2] = np.maximum(root0[:, 2], 0.5)
    if s.ray_init:
        init_dirs = _ray_directions(kp, conf, init_dirs, base_len, root0, layout, focal, principal)

    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731 - float32: fast enough
    kp_t, conf_t = t(kp), t(conf).clamp(0.0, 1.0)
    height = t(np.maximum(person_height(kp, layout), 1.0))[:, None]  # per frame, so causal frames stay independent
    prior_dirs, prior_w = t(dirs), t(has_prior.astype(np.float64))
    base = t(base_len)
    principal_t = t(np.asarray(principal, np.float64))
    d_param = t(init_dirs).clone().requires_grad_(True)
    r_param = t(root0).clone().requires_grad_(True)
    params = [{"params": [d_param], "lr": s.lr}, {"params": [r_param], "lr": s.lr}]
    sym_t = torch.as_tensor(_symmetric_index(len(layout.bones), layout.mirrored_bones))
    offset = accel_ok = None
    if rows is not None:
        offset = torch.zeros(int(sym_t.max()) + 1, requires_grad=True)
        params.append({"params": [offset], "lr": s.lr})
        consecutive = t((np.diff(rows) == 1).astype(np.float64))  # acceleration only across unbroken frames
        accel_ok = consecutive[1:] * consecutive[:-1] if len(rows) > 2 else None
    optimiser = torch.optim.Adam(params)
    dt = 1.0 / max(float(fps), 1e-3)
    paths = t(_path_matrix(layout))

    def pose() -> torch.Tensor:
        scale = base if offset is None else base * torch.exp(offset[sym_t])
        rel = paths @ (_unit(d_param) * scale[..., None])
        return rel + r_param[:, None, :]

    def energy() -> torch.Tensor:
        joints = pose()
        depth = joints[..., 2:3].clamp_min(0.05)
        err = focal * joints[..., :2] / depth + principal_t - kp_t
        res = (err[..., 0] ** 2 + err[..., 1] ** 2) / (s.pixel_sigma * height) ** 2  # not .sum(-1): slow on CPU
        total = (conf_t * _soft_l1(res)).sum() / 2
        unit = _unit(d_param)
        total = total + (prior_w[..., None, None] * (unit[None] - prior_dirs) ** 2).sum() / (2 * s.direction_sigma**2)
        if s.angle_weight:
            e = bend_components(joints, layout, normalized=True).clamp(max=0.0)
            total = total + s.angle_weight * (-e * torch.exp(-e)).sum()
        if offset is not None:
            total = total + (offset**2).sum() / (2 * s.length_sigma**2)
            if accel_ok is not None and s.accel_sigma > 0:
                acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
                total = total + (accel_ok[:, None, None] * acc**2).sum() / (2 * (s.accel_sigma * dt * dt) ** 2)
        return total

    with torch.enable_grad():  # callers may run under no_grad (the lifters do)
        if s.solver == "lbfgs" and rows is not None:
            lbfgs = torch.optim.LBFGS([q for g in params for q in g["params"]], lr=1.0, max_iter=s.iterations,
                                      history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                      tolerance_change=1e-12)

            def closure() -> torch.Tensor:
                lbfgs.zero_grad()
                e = energy()
                e.backward()
                return e

            lbfgs.step(closure)
        else:
            for k in range(s.iterations):
                for group in optimiser.param_groups:  # cosine decay: large first steps, a settled end
                    group["lr"] = s.lr * 0.5 * (1.0 + math.cos(math.pi * k / s.iterations))
                optimiser.zero_grad()
                energy().backward()
                optimiser.step()
    with torch.no_grad():
        return pose().double().numpy()


def _ray_directions(kp: np.ndarray, conf: np.ndarray, prior: np.ndarray, lengths: np.ndarray, root: np.ndarray,
                    layout: Layout, focal: float, principal: np.ndarray, min_conf: float = 0.3) -> np.ndarray:
    """(T, B, 3) bone directions that put each joint on its pixel's ray, walking out from the root (Taylor's
    construction): of the two points at bone length from the parent on that ray, the one whose direction is
    nearer the prior's; where the ray passes further than a bone length, the nearest point; joints with
    confidence under `min_conf` keep the prior's direction. A close start for the solver (frame by frame)."""
    rays = np.concatenate([(kp - principal) / focal, np.ones(kp.shape[:2] + (1,))], -1)
    joints = np.zeros(kp.shape[:2] + (3,))
    joints[:, layout.root] = root
    out = prior.copy()
    for b, (parent, child) in enumerate(layout.bones):  # parents come before their children in every layout
        r, p, length = rays[:, child], joints[:, parent], lengths[:, b]
        a, half_b = (r * r).sum(-1), -(r * p).sum(-1)
        disc = half_b**2 - a * ((p * p).sum(-1) - length**2)
        root_disc = np.sqrt(np.maximum(disc, 0.0))
        options = np.stack([(-half_b + root_disc) / a, (-half_b - root_disc) / a], -1)  # (T, 2) depths along r
        cand = options[..., None] * r[:, None] - p[:, None]
        cand /= np.maximum(np.linalg.norm(cand, axis=-1, keepdims=True), 1e-9)
        pick = np.argmax((cand * prior[:, None, b]).sum(-1), axis=-1)
        d = np.take_along_axis(cand, pick[:, None, None], 1)[:, 0]
        d = np.where((conf[:, child] >= min_conf)[:, None], d, prior[:, b])
        out[:, b] = d
        joints[:, child] = p + length[:, None] * d
    return out


def _path_matrix(layout: Layout) -> np.ndarray:
    """(J, B) 1 where bone b lies on the path from the root to joint j: joints = paths @ bones in one product
    (the tree walk of `geometry.joints_from_bones` as a matrix, which the solver evaluates hundreds of times)."""
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
