"""Skeleton fitting (method 4, Sec. 5, step 4): impose known bone lengths on predicted poses while
keeping every predicted bone direction, walking the kinematic tree from the root outwards."""

from __future__ import annotations

import numpy as np

from bonelift.geometry import bone_lengths, bone_vectors, joints_from_bones
from bonelift.skeletons import Layout


def subject_bone_lengths(poses: np.ndarray, layout: Layout) -> np.ndarray:
    """(B,) a subject's bone lengths: the median over its frames (N, J, 3), robust to mocap glitches."""
    return np.median(bone_lengths(np.asarray(poses, np.float64), layout), axis=0)


def fit_skeleton(pose, lengths, layout: Layout):
    """Rescale each bone of `pose` (..., J, 3) to `lengths` (B,) or (..., B) along its predicted direction.

    The root stays where it is; each child is placed at its parent plus the rescaled bone vector, so
    errors in a parent's length do not distort the child's direction. Works on NumPy or torch.
    """
    bones = bone_vectors(pose, layout)
    if isinstance(bones, np.ndarray):
        norm = np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-12)
        lengths = np.asarray(lengths, bones.dtype)
    else:
        import torch

        norm = bones.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        lengths = torch.as_tensor(lengths, dtype=bones.dtype, device=bones.device)
    fitted = bones / norm * lengths[..., None]
    return joints_from_bones(fitted, layout, root=pose[..., layout.root, :])
