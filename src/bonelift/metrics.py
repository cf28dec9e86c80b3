"""Evaluation metrics for 3D pose, each named for the protocol it implements.

All functions take NumPy arrays of poses (N, J, 3) (or sequences (T, J, 3)) in any consistent unit
and return errors in that unit; bonelift evaluates in metres and reports millimetres.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from bonelift.geometry import bend_components, bone_lengths, grid_cells, range_of_motion_violations
from bonelift.skeletons import Layout


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, J) Euclidean distance per joint."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol 1 (MPJPE): mean joint error per frame, (N,), after root alignment done by the caller."""
    return joint_errors(pred, gt).mean(axis=-1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each predicted pose to its ground truth by the best similarity (rotation, scale, translation).

    Reflections are excluded (the rotation has determinant +1), as in the standard Protocol 2 code.
    """
    mu_p = pred.mean(axis=-2, keepdims=True)
    mu_g = gt.mean(axis=-2, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p0**2).sum(axis=(-2, -1), keepdims=True))
    norm_g = np.sqrt((g0**2).sum(axis=(-2, -1), keepdims=True))
    p0, g0 = p0 / np.maximum(norm_p, 1e-12), g0 / np.maximum(norm_g, 1e-12)
    h = np.swapaxes(p0, -1, -2) @ g0  # (N, 3, 3)
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    s[..., -1] *= d
    vt[..., -1, :] *= d[..., None]
    rot = np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)  # maps p0 rows onto g0: p0 @ rot.T
    scale = s.sum(axis=-1)[..., None, None] * norm_g / np.maximum(norm_p, 1e-12)
    return scale * (pred - mu_p) @ np.swapaxes(rot, -1, -2) + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol 2 (P-MPJPE): MPJPE per frame after per-frame similarity Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """N-MPJPE: MPJPE per frame after the least-squares scale of the prediction (Rhodin et al.)."""
    num = (pred * gt).sum(axis=(-2, -1), keepdims=True)
    den = (pred * pred).sum(axis=(-2, -1), keepdims=True)
    return mpjpe(num / np.maximum(den, 1e-12) * pred, gt)


def mpjve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJVE: mean per-joint velocity error of a sequence (T, J, 3), per frame pair (T-1,)."""
    return joint_errors(np.diff(pred, axis=0), np.diff(gt, axis=0)).mean(axis=-1)


def pck(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.150) -> float:
    """3DPCK: fraction of joints within `threshold` (150 mm in metres by default)."""
    return float((joint_errors(pred, gt) <= threshold).mean())


def auc(pred: np.ndarray, gt: np.ndarray, max_threshold: float = 0.150, steps: int = 31) -> float:
    """Area under the 3DPCK curve for thresholds 0..150 mm (31 steps of 5 mm), as in MPI-INF-3DHP."""
    err = joint_errors(pred, gt).ravel()
    return float(np.mean([(err <= t).mean() for t in np.linspace(0, max_threshold, steps)]))


def grid_accuracy(cells: np.ndarray, joints2d: np.ndarray, grid: int, within: int = 0) -> float:
    """Method 3's 2D part: percentage of joints whose arg-max cell is the cell containing the true joint.

    `cells` (N, J) are arg-max indices over the N_g² classes (row-major), `joints2d` (N, J, 2) the true
    joints in the crop's frame ((0, 0) top-left, (1, 1) bottom-right); `within` = 1 also counts the eight
    neighbouring cells (an error of at most one cell along each axis).
    """
    cells = np.asarray(cells)
    true = grid_cells(joints2d, grid)
    if cells.shape != true.shape:
        raise ValueError(f"cells shape {cells.shape} does not match joints {np.shape(joints2d)}")
    if cells.size == 0:
        return float("nan")
    hit = (np.abs(cells // grid - true // grid) <= within) & (np.abs(cells % grid - true % grid) <= within)
    return float(hit.mean() * 100)


def group_mean(values: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """Mean of per-frame values within each group label (e.g. per action)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    groups = np.asarray(groups)
    for g in np.unique(groups):
        sel = groups == g
        sums[str(g)] = float(values[sel].sum())
        counts[str(g)] = int(sel.sum())
    return {g: sums[g] / counts[g] for g in sorted(sums)}


def average_over_groups(per_group: dict[str, float]) -> float:
    """Average of per-group means: the papers' 'Avg' column gives each action equal weight."""
    return float(np.mean(list(per_group.values())))


def bone_length_rmse(pred: np.ndarray, gt: np.ndarray, layout: Layout) -> dict[str, float]:
    """RMSE of each limb's length against ground truth (method 1, Table 2), plus their average."""
    lp, lg = bone_lengths(pred, layout), bone_lengths(gt, layout)
    bone_index = layout.bone_index
    out = {}
    for name, parent, child in layout.limbs:
        b = bone_index[(parent, child)]
        out[name] = float(np.sqrt(np.mean((lp[..., b] - lg[..., b]) ** 2)))
    out["average"] = float(np.mean(list(out.values())))
    return out


def per_joint_errors(pred: np.ndarray, gt: np.ndarray, layout: Layout) -> dict[str, float]:
    """Mean error of each joint over all frames."""
    err = joint_errors(pred, gt).mean(axis=0)
    return {name: float(e) for name, e in zip(layout.joints, err)}


def hard_joint_errors(pred: np.ndarray, gt: np.ndarray, layout: Layout) -> dict[str, float]:
    """Mean error of each hard joint (elbows, wrists, knees, feet) and their average."""
    err = joint_errors(pred, gt).mean(axis=0)
    out = {layout.joints[j]: float(err[j]) for j in layout.hard_joints}
    out["average"] = float(np.mean([err[j] for j in layout.hard_joints]))
    return out


def _limb_length_table(pred: np.ndarray, layout: Layout) -> tuple[np.ndarray, list[tuple[str, int]]]:
    lengths = bone_lengths(pred, layout)
    bone_index = layout.bone_index
    return lengths, [(name, bone_index[(p, c)]) for name, p, c in layout.limbs]


def symmetry_error(pred: np.ndarray, layout: Layout) -> dict[str, float]:
    """Mean |left - right| length difference per limb pair (method 4, Table 6 'symmetry')."""
    lengths, limbs = _limb_length_table(pred, layout)
    by_name = dict(limbs)
    out = {}
    for name, b in limbs:
        if name.startswith("left "):
            mirror = by_name["right " + name[5:]]
            out[name[5:]] = float(np.abs(lengths[..., b] - lengths[..., mirror]).mean())
    out["average"] = float(np.mean(list(out.values())))
    return out


def bone_length_std(sequences: Sequence[np.ndarray], layout: Layout) -> dict[str, float]:
    """Std of each limb's length across the frames of a sequence, averaged over sequences."""
    per_seq = []
    for seq in sequences:
        lengths, limbs = _limb_length_table(seq, layout)
        per_seq.append([lengths[:, b].std() for _, b in limbs])
    stds = np.mean(per_seq, axis=0)
    _, limbs = _limb_length_table(sequences[0][:1], layout)
    out = {name: float(s) for (name, _), s in zip(limbs, stds)}
    out["average"] = float(stds.mean())
    return out


_LIMBS = ("right elbow", "left elbow", "right knee", "left knee")


def illegal_angle_percentage(pred: np.ndarray, layout: Layout) -> dict[str, float]:
    """Percentage of frames with each elbow/knee bent backwards by eq. 1's test (the angle loss's own statistic).

    Not a validity measure of real poses: it flags 3-8 % of Human3.6M ground-truth elbows (the bend
    direction of an elbow depends on the humerus's rotation); see `range_of_motion_percentage`.
    """
    comp = bend_components(pred, layout)
    out = {n: float((comp[..., i] < 0).mean() * 100) for i, n in enumerate(_LIMBS)}
    out["any"] = float((comp < 0).any(axis=-1).mean() * 100)
    return out


def range_of_motion_percentage(pred: np.ndarray, layout: Layout) -> dict[str, float]:
    """Percentage of frames with each elbow/knee outside its normal range of motion.

    Limits: `geometry.ELBOW_MAX_FLEXION_DEG` and `geometry.KNEE_FLEXION_RANGE_DEG` (sources cited there).

    The validity measure real poses pass (Human3.6M S9/S11 ground truth: 0.06 % of frames, elbows
    flexed a degree or two past 150), standing in for the pose-conditioned joint-angle limits of
    Akhter & Black behind the paper's "0.8 % illegal" (not available offline).
    """
    bad = range_of_motion_violations(pred, layout)
    out = {n: float(bad[..., i].mean() * 100) for i, n in enumerate(_LIMBS)}
    out["any"] = float(bad.any(axis=-1).mean() * 100)
    return out
