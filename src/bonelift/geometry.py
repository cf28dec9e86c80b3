"""Skeleton geometry shared by metrics, losses and models: bones, lengths, joint-angle legality.

Functions take NumPy arrays or torch tensors of shape (..., J, 3) and return the same kind, so a
metric and the loss that optimises it use one definition.
"""

from __future__ import annotations

import numpy as np

from bonelift.skeletons import Layout


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def rotate(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(..., 3) `points @ rotation.T`: each point turned by the (3, 3) `rotation`.

    The transposed matrix is copied to C order first: numpy multiplies a stack of points by a transposed view in
    a slow loop outside BLAS (22 ms vs 1.7 ms for a 10-minute clip's joints)."""
    return points @ np.ascontiguousarray(rotation.T)


def bone_vectors(pose, layout: Layout):
    """(..., B, 3) child minus parent for every bone of `layout`, in `layout.bones` order."""
    parents, children = layout.bone_ends
    if _is_numpy(pose):
        return np.take(pose, children, axis=-2) - np.take(pose, parents, axis=-2)
    return pose[..., children, :] - pose[..., parents, :]


def bone_lengths(pose, layout: Layout):
    """(..., B) lengths of `bone_vectors`."""
    v = bone_vectors(pose, layout)
    return np.linalg.norm(v, axis=-1) if _is_numpy(v) else v.norm(dim=-1)


def joints_from_bones(bones, layout: Layout, root=None):
    """Rebuild joints from bone vectors by walking the tree from the root (inverse of `bone_vectors`)."""
    child_to_bone = layout.child_bone
    shape = bones.shape[:-2] + (layout.num_joints, 3)
    if _is_numpy(bones):
        joints = [None] * layout.num_joints
        joints[layout.root] = np.zeros(shape[:-2] + (3,), bones.dtype) if root is None else root
    else:
        import torch

        joints = [None] * layout.num_joints
        joints[layout.root] = bones.new_zeros(shape[:-2] + (3,)) if root is None else root
    for j in _topological_order(layout):
        if j != layout.root:
            joints[j] = joints[layout.parents[j]] + bones[..., child_to_bone[j], :]
    if _is_numpy(bones):
        return np.stack(joints, axis=-2)
    return torch.stack(joints, dim=-2)


def _topological_order(layout: Layout) -> list[int]:
    order, seen = [], set()

    def visit(j: int) -> None:
        if j in seen:
            return
        if layout.parents[j] >= 0:
            visit(layout.parents[j])
        seen.add(j)
        order.append(j)

    for j in range(layout.num_joints):
        visit(j)
    return order


# Joint triples for the illegal-angle test of method 4 (eq. 1): (base, proximal, middle, distal, sign).
# The collar bone (or pelvis-hip bone) and the upper limb span a plane with normal n = v_base × v_upper;
# a legal bend has sign * (n · v_lower) >= 0. The sign flips between left and right limbs and between
# arms and legs (right-hand rule); the signs below are those for which Human3.6M ground truth in
# camera coordinates (x right, y down, z forward) is legal.
ANGLE_TRIPLES = (
    ("Thorax", "RShoulder", "RElbow", "RWrist", 1.0),
    ("Thorax", "LShoulder", "LElbow", "LWrist", -1.0),
    ("Hip", "RHip", "RKnee", "RFoot", -1.0),
    ("Hip", "LHip", "LKnee", "LFoot", 1.0),
)


def bend_components(pose, layout: Layout, normalized: bool = True):
    """(..., 4) signed components sign * n · v_lower for right elbow, left elbow, right knee, left knee.

    Negative values are illegal bends (elbow or knee bent backwards). With `normalized` the
    components are divided by the product of the three bone lengths, so they are scale-free;
    without it they are the raw triple products of the paper's loss.
    """
    # All four limbs at once (one gather per role): the fit in `fusion` evaluates this hundreds of times.
    b, p, m, d = ([layout.index(t[k]) for t in ANGLE_TRIPLES] for k in range(4))
    sign = [t[4] for t in ANGLE_TRIPLES]
    v_base = pose[..., p, :] - pose[..., b, :]
    v_up = pose[..., m, :] - pose[..., p, :]
    v_low = pose[..., d, :] - pose[..., m, :]
    if _is_numpy(pose):
        dot = (np.cross(v_base, v_up) * v_low).sum(-1)
        if not normalized:
            return np.asarray(sign) * dot
        scale = np.linalg.norm(v_base, axis=-1) * np.linalg.norm(v_up, axis=-1) * np.linalg.norm(v_low, axis=-1)
        return np.asarray(sign) * dot / np.maximum(scale, 1e-9)
    import torch

    signs = torch.tensor(sign, dtype=pose.dtype, device=pose.device)
    dot = (torch.linalg.cross(v_base, v_up, dim=-1) * v_low).sum(-1)
    if not normalized:
        return signs * dot
    scale = v_base.norm(dim=-1) * v_up.norm(dim=-1) * v_low.norm(dim=-1)
    return signs * dot / scale.clamp_min(1e-9)


# Normal range of motion of the elbows and knees (degrees of flexion, 0 = straight, negative =
# hyperextension), from the biomechanics literature:
# - elbow: flexion 0-150 (AAOS, Greene & Heckman, "The Clinical Measurement of Joint Motion", 1994;
#   Soucie et al. 2011, "Range of motion measurements: reference values and a database for comparison
#   studies", Haemophilia 17(3):500-507, mean ~145-150 with a few degrees of hyperextension). Which way
#   the forearm bends is set by the humerus's axial rotation, which joint centres do not show (eq. 1's
#   plane normal calls 3-8 % of Human3.6M ground-truth elbows backward), so only the flexion
#   magnitude is tested and elbow hyperextension (<= ~10) cannot be told from flexion;
# - knee: hyperextension up to 10 (AAOS; Soucie et al.: a few degrees), flexion up to 160: AAOS and
#   Soucie et al. give ~135-143 for active flexion, deep squatting and kneeling reach ~155-160
#   (Hemmerich et al. 2006, "Hip, knee, and ankle kinematics of high range of motion activities of
#   daily living", J. Orthop. Res. 24(4):770-781); the knee's bend direction is eq. 1's.
ELBOW_MAX_FLEXION_DEG = 150.0
KNEE_FLEXION_RANGE_DEG = (-10.0, 160.0)


def flexion_angles(pose, layout: Layout) -> np.ndarray:
    """(..., 4) signed flexion in degrees of right elbow, left elbow, right knee, left knee.

    The flexion is the angle between the upper and the lower limb (0 = straight); its sign is that
    of eq. 1's bend component (`bend_components`), negative for a bend backwards. NumPy only: it is
    a validity measure, not a loss.
    """
    pose = np.asarray(pose, np.float64)
    comp = bend_components(pose, layout, normalized=True)
    outs = []
    for _, prox, mid, dist, _ in ANGLE_TRIPLES:
        p, m, d = (layout.index(n) for n in (prox, mid, dist))
        up, low = pose[..., m, :] - pose[..., p, :], pose[..., d, :] - pose[..., m, :]
        cos = (up * low).sum(-1) / np.maximum(np.linalg.norm(up, axis=-1) * np.linalg.norm(low, axis=-1), 1e-12)
        outs.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    angle = np.stack(outs, axis=-1)
    return np.where(comp < 0, -angle, angle)


def range_of_motion_violations(pose, layout: Layout) -> np.ndarray:
    """(..., 4) bool: elbow flexion above `ELBOW_MAX_FLEXION_DEG`, knee outside `KNEE_FLEXION_RANGE_DEG`."""
    f = flexion_angles(pose, layout)
    lo, hi = KNEE_FLEXION_RANGE_DEG
    return np.concatenate([np.abs(f[..., :2]) > ELBOW_MAX_FLEXION_DEG, (f[..., 2:] < lo) | (f[..., 2:] > hi)], -1)


def bone_directions(pose, layout: Layout, eps: float = 1e-8):
    """(unit directions (..., B, 3), lengths (..., B)): the decomposition of method 5, eq. 1.

    A zero-length bone gets a zero direction (its length carries the information).
    """
    v = bone_vectors(pose, layout)
    if _is_numpy(v):
        length = np.linalg.norm(v, axis=-1)
        return v / np.maximum(length, eps)[..., None], length
    length = v.norm(dim=-1)
    return v / length.clamp_min(eps)[..., None], length


def joints_from_directions(directions, lengths, layout: Layout, root=None):
    """Joints from bone directions and lengths (method 5, eq. 1: J_k = sum over the root path of D_b L_b)."""
    return joints_from_bones(directions * lengths[..., None], layout, root)


def non_bone_pairs(layout: Layout) -> list[tuple[int, int]]:
    """Joint pairs (k1 < k2) not directly connected by a bone: the set P of method 5's joint shift loss (eq. 2)."""
    bones = {tuple(sorted(b)) for b in layout.bones}
    n = layout.num_joints
    return [(a, b) for a in range(n) for b in range(a + 1, n) if (a, b) not in bones]


def mirror(points, layout: Layout):
    """Horizontal mirror image of (..., J, D) points: x negated, left and right joints swapped.

    The one flip rule of flip augmentation and test-time flipping, for 2D screen and 3D camera points.
    """
    out = points[..., layout.flip_permutation, :]  # advanced indexing copies, for NumPy and torch alike
    out[..., 0] *= -1
    return out


def edge_indices(length: int, offsets: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(len(centers), W) frame indices of each centre's window, clipped to the sequence.

    The one padding rule of every temporal model (VideoPose3D's): a window past a sequence end
    repeats the first or last frame.
    """
    return np.clip(np.asarray(centers)[:, None] + np.asarray(offsets)[None, :], 0, length - 1)


def pad_edges(x, left: int, right: int):
    """Frames (dim 0) with the first repeated `left` times before and the last `right` times after."""
    idx = edge_indices(len(x), np.arange(-left, len(x) + right), np.zeros(1, np.int64))[0]
    if _is_numpy(x):
        return x[idx]
    import torch

    return x[torch.from_numpy(idx).to(x.device)]


# ----- method 3 (Park et al., ECCVW 2016): the 2D classification grid and the 3D target normalisation

def _norm(x, axis: int = -1, keepdims: bool = False):
    if _is_numpy(x):
        return np.linalg.norm(x, axis=axis, keepdims=keepdims)
    return x.norm(dim=axis, keepdim=keepdims)


def person_crop(points, margin: float = 1.2):
    """(..., 3) square crop (centre x, centre y, side) around (..., J, 2) points' bounding box, enlarged by `margin`.

    Method 3 classifies joints on a grid over the person's image crop; on 2D input the crop is the
    box of the detected joints, so the 2D branch can be trained on where the true joints lie inside it.
    """
    if _is_numpy(points):
        lo, hi = points.min(-2), points.max(-2)
        side = (hi - lo).max(-1) * margin
    else:
        lo, hi = points.amin(-2), points.amax(-2)
        side = (hi - lo).amax(-1) * margin
    centre = (lo + hi) / 2
    if _is_numpy(points):
        return np.concatenate([centre, np.maximum(side, 1e-6)[..., None]], -1)
    import torch

    return torch.cat([centre, side.clamp_min(1e-6)[..., None]], -1)


def to_crop(points, crop):
    """(..., J, 2) points in the crop's normalised frame: (0, 0) its top-left, (1, 1) its bottom-right corner."""
    centre, side = crop[..., None, :2], crop[..., None, 2:3]
    return (points - centre) / side + 0.5


def grid_centres(grid: int) -> np.ndarray:
    """(grid², 2) centres (x, y) of the cells of a grid x grid partition of the unit square, row by row."""
    c = (np.arange(grid) + 0.5) / grid
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], -1)


def grid_cells(points: np.ndarray, grid: int) -> np.ndarray:
    """(..., J) index (row-major, as `grid_centres`) of the grid cell containing each crop-normalised point.

    Points outside the crop count in the nearest border cell, as `soft_grid_labels` labels them.
    """
    col_row = np.clip(np.floor(np.asarray(points) * grid), 0, grid - 1).astype(np.int64)
    return col_row[..., 1] * grid + col_row[..., 0]


def soft_grid_labels(points, grid: int = 16, eps: float = 1e-9):
    """(..., J, grid²) soft class labels of crop-normalised points (method 3, eqs. 1-2).

    A cell gets weight 1 / d(point, cell centre) when that distance is below the cell width w_g,
    normalised to sum 1: the 1-4 cells nearest the joint (one-hot exactly at a cell centre, where
    the distance vanishes). Points outside the crop are clamped onto its border first (a joint the
    crop misses is labelled at the nearest border cells), so every row sums to 1.
    """
    width = 1.0 / grid
    if _is_numpy(points):
        centres = grid_centres(grid).astype(points.dtype)
        p = np.clip(points, 0.0, 1.0)
    else:
        import torch

        centres = torch.as_tensor(grid_centres(grid), dtype=points.dtype, device=points.device)
        p = points.clamp(0.0, 1.0)
    d = _norm(p[..., None, :] - centres, axis=-1)  # (..., J, grid²)
    at_centre = d < eps * width
    inv = 1.0 / np.maximum(d, eps * width) if _is_numpy(d) else 1.0 / d.clamp_min(eps * width)
    w = inv * (d < width)
    w = w * ~at_centre.any(-1, keepdims=True) if _is_numpy(d) else w * ~at_centre.any(-1, keepdim=True)
    w = w + at_centre  # exactly at a centre: one-hot
    return w / w.sum(-1, keepdims=True) if _is_numpy(w) else w / w.sum(-1, keepdim=True)


def unit_frobenius(pose, eps: float = 1e-9):
    """(zero-mean pose scaled to Frobenius norm 1, its scale (...)): method 3's 3D target normalisation (Sec. 4).

    Removing position and size leaves the shape, which the paper argues is less ambiguous to learn.
    """
    centred = pose - pose.mean(-2, keepdims=True) if _is_numpy(pose) else pose - pose.mean(-2, keepdim=True)
    scale = _norm(centred.reshape(centred.shape[:-2] + (-1,)), axis=-1)
    scale = np.maximum(scale, eps) if _is_numpy(scale) else scale.clamp_min(eps)
    return centred / scale[..., None, None], scale


# Bones of the torso (by joint names) whose training-set mean length sets the test-time scale (method 3, Sec. 4):
# the pelvis-hip, spine and collar bones; limbs vary too much in a prediction, the head is not torso.
TORSO_BONES = (("Hip", "RHip"), ("Hip", "LHip"), ("Hip", "Spine"), ("Spine", "Thorax"), ("Thorax", "LShoulder"),
               ("Thorax", "RShoulder"))


def torso_bone_indices(layout: Layout) -> list[int]:
    """Indices into `layout.bones` of the `TORSO_BONES` the layout has (a layout without a spine uses the rest)."""
    index = {(layout.joints[p], layout.joints[c]): b for b, (p, c) in enumerate(layout.bones)}
    return [index[bone] for bone in TORSO_BONES if bone in index]


def torso_scale(pose, mean_lengths, layout: Layout):
    """(...) factor that makes the summed torso bone lengths of `pose` equal the sums of `mean_lengths` (B,).

    Undoes `unit_frobenius` at test time when the true size is unknown: the training set's average
    torso (`mean_lengths` = mean of every bone over training poses) stands in for the person's.
    """
    bones = torso_bone_indices(layout)
    have = bone_lengths(pose, layout)[..., bones].sum(-1)
    want = mean_lengths[..., bones].sum(-1)
    return want / (np.maximum(have, 1e-9) if _is_numpy(have) else have.clamp_min(1e-9))


def person_height(points, layout: Layout):
    """(..., J, C) joints -> (...,) head-to-mean-ankle length: the person's size in the image (or in 3D)."""
    x = np.asarray(points)
    feet = [layout.index("LFoot"), layout.index("RFoot")]
    return np.linalg.norm(x[..., layout.index("Head"), :] - x[..., feet, :].mean(-2), axis=-1)


# Person height (head to mean ankle) a reframed clip is scaled to, in screen units ([-1, 1] across the
# frame width): about what a Human3.6M subject measures in its own cameras.
REFRAME_HEIGHT = 0.8


def reframe_clip(screen: np.ndarray, layout: Layout, causal: bool = False,
                 height: float = REFRAME_HEIGHT) -> np.ndarray:
    """(T, J, 2) screen keypoints of one clip -> the same clip centred on the person and scaled to `height`.

    Why: how large a person appears depends on the camera (distance, focal length, portrait or
    landscape frame), not on their pose; a video lifter trained on many cameras learns faster and
    transfers better when that nuisance is removed. One similarity per clip keeps the motion itself:
    offset = the mean root position and scale = `height` / the mean head-to-ankle length over the
    clip's frames; `causal` uses the means over frames <= t instead (cumulative sums), so a live
    stream gets the same result frame by frame. Frames with non-finite joints are left out of the means.
    """
    x = np.asarray(screen, np.float64)
    h = person_height(x, layout)
    root = x[:, layout.root]
    ok = np.isfinite(h) & np.isfinite(root).all(-1) & (h > 0)
    w = ok.astype(np.float64)
    h, root = np.where(ok, h, 0.0), np.where(ok[:, None], root, 0.0)
    if causal:
        n = np.maximum(np.cumsum(w), 1.0)
        mean_h, mean_root = np.cumsum(h) / n, np.cumsum(root, axis=0) / n[:, None]
    else:
        n = max(w.sum(), 1.0)
        mean_h, mean_root = np.full(len(x), h.sum() / n), np.broadcast_to(root.sum(0) / n, root.shape)
    scale = np.where(mean_h > 0, height / np.where(mean_h > 0, mean_h, 1.0), 1.0)
    return ((x - mean_root[:, None]) * scale[:, None, None]).astype(np.asarray(screen).dtype)


class RunningReframe:
    """`reframe_clip(..., causal=True)` one frame at a time: running sums of the person's height and root."""

    def __init__(self, layout: Layout, height: float = REFRAME_HEIGHT) -> None:
        self.layout, self.height = layout, height
        self.n, self.h, self.root = 0.0, 0.0, np.zeros(2)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(J, 2) screen keypoints of the newest frame -> reframed with the means over the frames so far."""
        x = np.asarray(frame, np.float64)
        h = float(person_height(x, self.layout))
        root = x[self.layout.root]
        if np.isfinite(h) and h > 0 and np.isfinite(root).all():
            self.n, self.h, self.root = self.n + 1.0, self.h + h, self.root + root
        n = max(self.n, 1.0)
        mean_h = self.h / n
        scale = self.height / mean_h if mean_h > 0 else 1.0
        return ((x - self.root / n) * scale).astype(np.asarray(frame).dtype)
