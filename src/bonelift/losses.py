"""Every training loss: the pose losses of the lifters (MPJPE, method 1's masked error) and the
anatomical losses of method 4 (Dabral et al., "Learning 3D Human Pose from Structure and Motion",
ECCV 2018, Sec. 4.1) and the geometric loss of Zhou et al. (ICCV 2017) it builds on.

All losses take metric-space poses (B, J, 3) in metres (root-relative, camera frame) as torch
tensors and return a scalar averaged over the batch, so they apply to any lifting network's output
after `LiftingModel.to_metric`. They share their geometry with the metrics in `bonelift.metrics`
(`bend_components`, `Layout.limbs`), so what is optimised is what is reported.
"""

from __future__ import annotations

import numpy as np
import torch

from bonelift.geometry import bend_components, bone_lengths
from bonelift.skeletons import Layout

# Zhou et al.'s bone groups whose length ratios to the canonical skeleton should agree (their
# skeleton reference: legs, arms, pelvis-hip bones, collar bones), by (parent, child) joint names.
GEOMETRY_GROUPS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("RHip", "RKnee"), ("RKnee", "RFoot"), ("LHip", "LKnee"), ("LKnee", "LFoot")),
    (("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("LShoulder", "LElbow"), ("LElbow", "LWrist")),
    (("Hip", "RHip"), ("Hip", "LHip")),
    (("Thorax", "RShoulder"), ("Thorax", "LShoulder")),
)

LOSS_NAMES = ("geometry", "angle", "symmetry", "reprojection")


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint Euclidean error in metres, the training loss of VideoPose3D and method 5."""
    return (pred - target).norm(dim=-1).mean()


def soft_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Method 3 eq. 3 summed over joints (as eq. 5 does), mean over the batch: -sum_i p̂_j(g_i) log p_j(g_i).

    `logits` and `labels` are (B, J, C) over the C = N_g² grid cells; the softmax is taken here, in log space
    for stability, so the network's 2D head outputs raw scores.
    """
    return -(labels * torch.log_softmax(logits, dim=-1)).sum((-2, -1)).mean()


def multi_root_sq_error(relative: torch.Tensor, pose: torch.Tensor, roots: torch.Tensor,
                        others: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Method 3 eq. 6 (3D part), sum over roots r and joints j != r of ||R_j - (J_j - J_r)||², mean over the batch.

    `relative` (B, R, J-1, 3) are the predictions of each root's layer for the joints `others[r]`,
    `pose` (B, J, 3) the (normalised) ground truth, `roots` (R,) and `others` (R, J-1) joint indices;
    `scale` (R, J-1, 3), when given, divides every error (the squared error of standardised output units).
    """
    error = relative - (pose[:, others] - pose[:, roots][:, :, None])
    if scale is not None:
        error = error / scale
    return (error**2).sum((-3, -2, -1)).mean()


def masked_sq_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of q_i * squared error, divided by the number of all output units (method 1 Eq. 2-4).

    Dividing by all units (not only the masked ones) keeps the papers' relative weight between
    the all-joint term L1 and the hard-joint terms, which are sums over the same joints.
    """
    return ((pred - target) ** 2 * mask).sum() / target.numel()


def illegal_angle_loss(pose: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Eq. 1: sum over elbows and knees of -E exp(-E) with E = min(sign * n · v_lower, 0).

    `bend_components` already folds the right-hand-rule signs of eq. 1 into each component (negative
    = bent backwards), so every limb uses the form of the right elbow's term. Deviation: the
    components are normalised by the three bone lengths (the sine-like, unit-free measure of the
    metric) instead of the raw triple product, whose size in metres (~1e-3) would make the
    exponential a no-op and the weight depend on the unit.
    """
    e = bend_components(pose, layout, normalized=True).clamp(max=0.0)
    return (-e * torch.exp(-e)).sum(-1).mean()


def _limb_pairs(layout: Layout) -> list[tuple[int, int]]:
    """(left bone, right bone) indices into `layout.bones` for the limb pairs of `Layout.limbs`."""
    bone_index = layout.bone_index
    by_name = {name: bone_index[(p, c)] for name, p, c in layout.limbs}
    return [(b, by_name["right " + name[5:]]) for name, b in by_name.items() if name.startswith("left ")]


def symmetry_loss(pose: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Eq. 2: sum over left/right limb pairs (upper/lower arms and legs) of the squared length difference.

    The paper's set B is the right-side bones except torso and head, i.e. the four limbs of
    `Layout.limbs`, the same pairs `metrics.symmetry_error` reports. The squared norm keeps the loss
    smooth at the symmetric optimum.
    """
    lengths = bone_lengths(pose, layout)
    pairs = _limb_pairs(layout)
    left = lengths[..., [lb for lb, _ in pairs]]
    right = lengths[..., [rb for _, rb in pairs]]
    return ((left - right) ** 2).sum(-1).mean()


def geometry_groups(layout: Layout) -> list[list[int]]:
    """Zhou et al.'s bone groups as indices into `layout.bones` (groups missing in the layout dropped)."""
    bone_index = {(layout.joints[p], layout.joints[c]): b for b, (p, c) in enumerate(layout.bones)}
    groups = [[bone_index[bone] for bone in group if bone in bone_index] for group in GEOMETRY_GROUPS]
    return [g for g in groups if len(g) > 1]


def canonical_bone_lengths(poses: np.ndarray, layout: Layout) -> np.ndarray:
    """(B,) mean length of every bone over training poses (N, J, 3): Zhou et al.'s canonical skeleton."""
    return bone_lengths(np.asarray(poses, np.float64), layout).mean(axis=0)


def geometry_loss(pose: torch.Tensor, layout: Layout, canonical: torch.Tensor) -> torch.Tensor:
    """Zhou et al.'s geometric loss: per group, the variance of the ratios l_e / canonical_e, summed.

    L_geo = sum_i 1/|R_i| sum_{e in R_i} (l_e / l̄_e - r̄_i)^2 with r̄_i the mean ratio of group R_i.
    """
    ratios = bone_lengths(pose, layout) / canonical.to(pose.dtype)
    total = pose.new_zeros(())
    for group in geometry_groups(layout):
        r = ratios[..., group]
        total = total + ((r - r.mean(-1, keepdim=True)) ** 2).mean(-1).mean()
    return total


def weak_pose(
    pose: torch.Tensor, rays: torch.Tensor, layout: Layout, min_depth: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine the given 2D joints with the predicted depths, as Zhou et al.'s L_g(P̃^z, P̂^xy), in perspective.

    `rays` (B, J, 2) are the 2D joints as undistorted normalised image coordinates u_j = (pixel - c) / f
    (`Camera.image_coords`). A joint at depth Z + z_j (Z the root's distance, z_j the predicted
    root-relative depth) lies at x_j = u_j (Z + z_j) - u_root Z, root-relative. Z is the least-squares
    fit of these x, y to the predicted x, y (closed form, clamped to `min_depth` metres). Z is not detached: it
    scales with the prediction, and a detached Z made the gradients of the terms below pull the body smaller
    (by 2 L per unit of log-scale for the reprojection term) even where their values were scale-free; at the
    fit's optimum the metric residual passes no gradient through Z anyway. The pose of a ground-truth 3D pose is
    that pose, so the structure losses and the reprojection term vanish where the ground truth's do
    (the weak-perspective version, scaled 2D, erred by ~20 mm per joint at the Human3.6M cameras).
    Deviation: the paper's L_g uses heatmap-space 2D; a lifter needs the camera to place the 2D in
    metres, so 2D-only data must come with intrinsics (Human3.6M's are known).
    Returns the pose (B, J, 3) and the reprojection residual (B, J, 2) (xy_pred - xy) / Z in normalised image
    units, the lifter's counterpart of the paper's 2D heatmap loss on 2D-only data. Z scales with the pose
    (scaling the prediction by s scales Z, the weak pose and the metric residual by s), so dividing by it makes
    the residual blind to the predicted global scale; the metric residual rewarded a smaller body by s².
    """
    r = layout.root
    z = pose[..., 2] - pose[..., r : r + 1, 2]  # root-relative predicted depth
    a = rays - rays[..., r : r + 1, :]  # d x_j / d Z
    b = rays * z[..., None]  # x_j at Z = 0
    xy = pose[..., :2] - pose[..., r : r + 1, :2]
    depth = ((a * (xy - b)).sum((-2, -1)) / (a * a).sum((-2, -1)).clamp_min(1e-12)).clamp_min(min_depth)
    xy_weak = a * depth[..., None, None] + b
    return torch.cat([xy_weak, z[..., None]], dim=-1), (xy - xy_weak) / depth[..., None, None]


def canonical_scale(pose: torch.Tensor, layout: Layout, canonical: torch.Tensor) -> torch.Tensor:
    """`pose` (B, J, 3) rescaled per sample to the canonical skeleton's total bone length (Zhou et al.'s fixed scale).

    The factor is not detached: the rescaled pose is then a function of the pose's shape alone, so a loss on it
    passes no gradient along the global scale (a detached factor would still pull a pose of any size smaller).
    """
    total = bone_lengths(pose, layout).sum(-1).clamp_min(1e-6)
    return pose * (canonical.to(pose.dtype).sum() / total)[..., None, None]


def weak_losses(
    pose: torch.Tensor, rays: torch.Tensor, layout: Layout, weights: dict[str, float], canonical: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Every weak term named in `weights` on 2D-only samples (unweighted), invariant to the predicted global scale.

    Reading of Zhou et al. (ICCV 2017), whose framework method 4 builds on: a 2D-only sample never teaches scale
    (their depth is in image units and test poses are rescaled to a fixed total bone length); only 3D samples
    do. So the structure losses (eq. 3) see the weak pose rescaled to the canonical skeleton's total bone length
    (`canonical_scale`) and the reprojection term is in image units (`weak_pose`): shrinking the prediction by s
    changes none of them, where the metric forms fell by s² and taught the lifter a smaller body.
    """
    pose_w, residual = weak_pose(pose, rays, layout)
    terms = anatomical_losses(canonical_scale(pose_w, layout, canonical), layout, weights, canonical)
    if weights.get("reprojection", 0.0):
        terms["reprojection"] = (residual**2).sum(-1).mean()
    return terms


def anatomical_losses(
    pose: torch.Tensor, layout: Layout, weights: dict[str, float], canonical: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Eq. 3: the weighted terms named in `weights` ("geometry", "angle", "symmetry"), unweighted values."""
    out: dict[str, torch.Tensor] = {}
    if weights.get("geometry", 0.0):
        if canonical is None:
            raise ValueError("the geometry loss needs canonical bone lengths")
        out["geometry"] = geometry_loss(pose, layout, canonical)
    if weights.get("angle", 0.0):
        out["angle"] = illegal_angle_loss(pose, layout)
    if weights.get("symmetry", 0.0):
        out["symmetry"] = symmetry_loss(pose, layout)
    return out
