"""Skeleton fitting (method 4, Sec. 5, step 4): impose known bone lengths on predicted poses while
keeping every predicted bone direction, walking the kinematic tree from the root outwards.

`fit_clip_skeleton` applies it to a lifted clip whose true lengths are unknown: one skeleton per clip
(method 5's decomposition: the bone lengths belong to the person, not the frame), each bone's length the
clip's median of its predictions, mirrored bones given their mean (method 4's symmetry prior). The causal
form uses the running mean of the frames so far, so a live stream needs no future frames.
"""

from __future__ import annotations

import numpy as np

from bonelift.geometry import bone_lengths, bone_vectors, joints_from_bones
from bonelift.skeletons import Layout

CHUNK = 4096  # frames fitted at a time by the clip functions


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


def clip_bone_lengths(poses: np.ndarray, layout: Layout, causal: bool = False,
                      frames: np.ndarray | None = None) -> np.ndarray:
    """(T, B) the lengths `fit_clip_skeleton` imposes on (T, J, 3) poses of one person (NaN frames skipped).

    Centred: every frame gets each bone's median over the clip's posed frames. Causal: frame t gets the
    mean over the posed frames up to t (NaN before the first one). Then each mirrored pair
    (`Layout.mirrored_bones`) gets the mean of its two lengths. `frames`: only these frames of `poses`, read
    chunk by chunk (no copy of the clip).
    """
    poses = np.asarray(poses)
    index = np.arange(len(poses)) if frames is None else np.asarray(frames)
    lengths = np.concatenate([bone_lengths(poses[index[s : s + CHUNK]].astype(np.float64), layout)
                              for s in range(0, max(len(index), 1), CHUNK)])
    posed = np.isfinite(lengths).all(-1)
    out = np.full(lengths.shape, np.nan)
    if posed.any():
        if causal:
            total = np.cumsum(np.where(posed[:, None], lengths, 0.0), axis=0)
            count = np.cumsum(posed)[:, None]
            out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            out[:] = np.median(lengths[posed], axis=0)
    return symmetric_lengths(out, layout)


def symmetric_lengths(lengths: np.ndarray, layout: Layout) -> np.ndarray:
    """(..., B) lengths with each mirrored bone pair (`Layout.mirrored_bones`) set to the pair's mean."""
    out = np.array(lengths, np.float64)
    for left, right in layout.mirrored_bones:
        out[..., left] = out[..., right] = (out[..., left] + out[..., right]) / 2
    return out


def fit_clip_skeleton(poses: np.ndarray, layout: Layout, causal: bool = False) -> np.ndarray:
    """(T, J, 3) poses of one person with one symmetric skeleton for the clip (`clip_bone_lengths`), each
    predicted bone direction kept; frames without a pose stay NaN. Works in chunks of frames, so a long clip
    needs little memory beyond its result."""
    lengths = clip_bone_lengths(poses, layout, causal)
    out = np.empty(np.shape(poses), np.float64)
    for s in range(0, len(out), CHUNK):
        out[s : s + CHUNK] = fit_skeleton(np.asarray(poses[s : s + CHUNK], np.float64), lengths[s : s + CHUNK], layout)
    return out
