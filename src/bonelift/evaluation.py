"""Prediction and scoring under the standard protocols, for every kind of network (pure: no files, no CLI):
lifters on `PoseSequence`s and method 3's image CNN on an `ImageSet`.

Protocol 1 is MPJPE after root alignment, Protocol 2 after per-frame similarity Procrustes; both are
averaged per action and the 'average' column is the mean over actions, as the papers report. One
rule decides which test frames are scored when not all are affordable (`scored_frames`), for
single-frame and video models alike, so velocity errors always compare consecutive frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bonelift import metrics
from bonelift.datasets import PoseSequence
from bonelift.datasets.image_prep import centre_offsets, crop_batch, resize_images, resized_side
from bonelift.datasets.images import ImageSet
from bonelift.geometry import edge_indices, mirror, reframe_clip
from bonelift.models import LiftingModel, TPNet
from bonelift.models.method3 import Method3ImageNet
from bonelift.skeletons import MM, Layout


def scored_frames(length: int, stride: int) -> np.ndarray:
    """Frames scored in a sequence of `length` when only every `stride`-th is affordable: pairs
    (t, t + 1) for every stride-th t, so velocity errors (MPJVE) still compare consecutive frames."""
    if stride <= 1:
        return np.arange(length)
    starts = np.arange(0, max(length - 1, 1), stride)
    return np.unique(np.concatenate([starts, np.minimum(starts + 1, length - 1)]))


@torch.no_grad()
def predict_single_frame(
    model: LiftingModel,
    screen: np.ndarray,
    frames: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8192,
) -> np.ndarray:
    """(T, J, 2) screen keypoints -> (len(frames), J_out, 3) root-relative metres, each frame lifted alone."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(screen if frames is None else screen[frames], dtype=np.float32))
    parts = [model.predict(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.config.out_layout.num_joints, 3), np.float32)


@torch.no_grad()
def predict_video(
    model: nn.Module,
    screen: np.ndarray,
    conf: np.ndarray | None = None,
    test_flip: bool = True,
    device: str | torch.device = "cpu",
    seed: int = 0,
    frames: np.ndarray | None = None,
) -> np.ndarray:
    """(T, J, 2) screen keypoints of one video -> (T, J_out, 3) root-relative metres (or only `frames`).

    With `test_flip` the prediction is averaged with the un-mirrored prediction of the mirrored input
    (VideoPose3D's test-time augmentation); both passes draw the same bone-length frames.
    """
    model.eval()
    mc = model.config
    if getattr(mc, "reframe", False):  # the clip centred and scaled as in training
        screen = reframe_clip(np.asarray(screen, np.float32), mc.in_layout, mc.causal)
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32)).to(device)
    c = torch.from_numpy(conf.astype(np.float32)).to(device) if conf is not None and mc.confidence else None
    f = torch.from_numpy(frames) if frames is not None else None
    pred = model.infer(x, c, generator=torch.Generator().manual_seed(seed), frames=f)
    if test_flip:
        cf = c[:, mc.in_layout.flip_permutation] if c is not None else None
        mirrored = model.infer(mirror(x, mc.in_layout), cf, generator=torch.Generator().manual_seed(seed), frames=f)
        pred = 0.5 * (pred + mirror(mirrored, mc.out_layout))
    return pred.cpu().numpy()


@torch.no_grad()
def refine_sequence(
    model: TPNet,
    poses: np.ndarray,
    centers: np.ndarray | None = None,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """TP-Net: refined poses (len(centers), J, 3) of one sequence of predictions (T, J, 3) at `centers` (all)."""
    model.eval()
    device = device or next(model.parameters()).device
    centers = np.arange(len(poses)) if centers is None else np.asarray(centers)
    idx = edge_indices(len(poses), model.config.offsets, centers)
    src = torch.from_numpy(np.asarray(poses, np.float32))
    out = [model(src[idx[i : i + batch_size]].to(device)).cpu() for i in range(0, len(idx), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0,) + poses.shape[1:], np.float32)


def predict_split(
    model: nn.Module,
    sequences: list[PoseSequence],
    stride: int = 1,
    device: str | torch.device = "cpu",
    progress: bool = True,
    test_flip: bool = True,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Predictions of any lifter for the `scored_frames` of every sequence, and those frames."""
    frames = [scored_frames(len(s), stride) for s in sequences]
    preds = []
    for i, (seq, f) in enumerate(zip(tqdm(sequences, desc="predict", disable=not progress, leave=False), frames)):
        if isinstance(model, LiftingModel):
            preds.append(predict_single_frame(model, seq.screen, f, device))
        else:
            preds.append(predict_video(model, seq.screen, seq.confidence, test_flip, device, seed=i, frames=f))
    return preds, frames


def score(
    preds: list[np.ndarray], sequences: list[PoseSequence], frames: list[np.ndarray] | None = None
) -> dict[str, Any]:
    """Every bonelift metric for predictions of the given `frames` of each sequence (default: all); mm.

    MPJVE only uses predictions of consecutive frames.
    """
    if frames is None:
        frames = [np.arange(len(s)) for s in sequences]
    gts = [s.root_relative[f] for s, f in zip(sequences, frames)]
    return score_poses(preds, gts, [s.action for s in sequences], frames, sequences[0].layout_3d)


def score_poses(
    preds: list[np.ndarray], gts: list[np.ndarray], actions: list[str], frames: list[np.ndarray], layout: Layout
) -> dict[str, Any]:
    """`score` on arrays: per clip (one take of one camera) root-relative predictions and ground truth (T, J, 3)
    in metres, its action and its frame indices (consecutive ones give MPJVE); errors in mm."""
    pred, gt = np.concatenate(preds), np.concatenate(gts)
    frame_actions = np.concatenate([np.full(len(p), a) for p, a in zip(preds, actions)])
    p1 = metrics.mpjpe(pred, gt) * MM
    p2 = metrics.p_mpjpe(pred, gt) * MM
    per_action_p1 = metrics.group_mean(p1, frame_actions)
    per_action_p2 = metrics.group_mean(p2, frame_actions)
    velocity = [metrics.mpjve(p, g)[np.diff(f) == 1] for p, g, f in zip(preds, gts, frames) if len(p) > 1]
    velocity = np.concatenate(velocity) * MM if velocity else np.zeros(0)
    scale_mm = lambda d: {k: v * MM for k, v in d.items()}  # noqa: E731
    return {
        "frames": int(len(pred)),
        "sequences": len(preds),
        "p1": {
            **per_action_p1,
            "average": metrics.average_over_groups(per_action_p1),
            "frame_average": float(p1.mean()),
        },
        "p2": {
            **per_action_p2,
            "average": metrics.average_over_groups(per_action_p2),
            "frame_average": float(p2.mean()),
        },
        "n_mpjpe": float(metrics.n_mpjpe(pred, gt).mean() * MM),
        "mpjve": float(velocity.mean()) if len(velocity) else float("nan"),
        "pck150": metrics.pck(pred, gt) * 100,
        "auc": metrics.auc(pred, gt) * 100,
        "per_joint": scale_mm(metrics.per_joint_errors(pred, gt, layout)),
        "hard_joints": scale_mm(metrics.hard_joint_errors(pred, gt, layout)),
        "bone_rmse": scale_mm(metrics.bone_length_rmse(pred, gt, layout)),
        "symmetry": scale_mm(metrics.symmetry_error(pred, layout)),
        "bone_std": scale_mm(metrics.bone_length_std(preds, layout)),
        "illegal_angles_pct": metrics.illegal_angle_percentage(pred, layout),
        "range_of_motion_pct": metrics.range_of_motion_percentage(pred, layout),
    }


def subject_action_errors(
    preds: list[np.ndarray], seqs: list[PoseSequence], frames: list[np.ndarray] | None = None
) -> dict[str, dict[str, float]]:
    """P1 and P2 (mm) per "S<n> <action>" group, averaged over that group's frames (HumanEva tables)."""
    frames = frames or [np.arange(len(s)) for s in seqs]
    pred, gt = np.concatenate(preds), np.concatenate([s.root_relative[f] for s, f in zip(seqs, frames)])
    groups = np.concatenate([np.full(len(p), f"{s.subject.split('/')[-1]} {s.action}") for p, s in zip(preds, seqs)])
    return {
        "p1": metrics.group_mean(metrics.mpjpe(pred, gt) * MM, groups),
        "p2": metrics.group_mean(metrics.p_mpjpe(pred, gt) * MM, groups),
    }


def evaluate_model(
    model: nn.Module,
    sequences: list[PoseSequence],
    stride: int = 1,
    device: str | torch.device = "cpu",
    progress: bool = True,
    test_flip: bool = True,
) -> dict[str, Any]:
    """Predict and score `sequences` in one call (any lifter)."""
    preds, frames = predict_split(model, sequences, stride, device, progress, test_flip)
    return score(preds, sequences, frames)


@torch.no_grad()
def predict_images(
    model: Method3ImageNet,
    images: ImageSet,
    rows: np.ndarray | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses (N, J, 3) metres, arg-max grid cells (N, J) and the true joints (N, J, 2) in the network's crop frame
    for the samples `rows` (default: all), each image resized to the 250/225 ratio and centre-cropped (Sec. 4)."""
    model.eval()
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    side = model.config.image_size
    resized = resized_side(side)
    poses, cells, joints = [], [], []
    for i in tqdm(range(0, len(rows), batch_size), desc="predict", disable=not progress, leave=False):
        sel = rows[i : i + batch_size]
        batch = torch.from_numpy(resize_images(images.images[sel], resized)).to(device)
        crops, j2d = crop_batch(batch, torch.from_numpy(images.joints2d[sel]), centre_offsets(len(sel), resized, side),
                                side)
        out = model(crops)
        poses.append(out["pose"].float().cpu().numpy())
        cells.append(out["logits2d"].argmax(-1).cpu().numpy())
        joints.append(j2d.numpy())
    n_joints = images.layout.num_joints
    if not poses:
        return np.zeros((0, n_joints, 3), np.float32), np.zeros((0, n_joints), np.int64), np.zeros((0, n_joints, 2))
    return np.concatenate(poses), np.concatenate(cells), np.concatenate(joints)


def evaluate_image_model(
    model: Method3ImageNet,
    images: ImageSet,
    stride: int = 1,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every `stride`-th sample of `images` and score it like the lifters (`score_poses`, the samples
    grouped into clips by subject, action and camera in frame order), plus the 2D part's grid accuracy:
    `grid_acc_pct` (arg-max cell = the true joint's) and `grid_acc1_pct` (within one cell)."""
    rows = np.arange(0, len(images), max(1, stride))
    poses, cells, joints = predict_images(model, images, rows, batch_size, device, progress)
    clip_of = [(images.subject[r], images.action[r], images.camera[r]) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: (clip_of[i], images.frame[rows[i]]))
    clips: dict[tuple, list[int]] = {}
    for i in order:
        clips.setdefault(clip_of[i], []).append(i)
    members = list(clips.values())
    results = score_poses(
        [poses[m] for m in members],
        [images.poses[rows[m]] for m in members],
        [key[1] for key in clips],
        [images.frame[rows[m]] for m in members],
        images.layout,
    )
    grid = model.config.grid
    results["grid_acc_pct"] = metrics.grid_accuracy(cells, joints, grid)
    results["grid_acc1_pct"] = metrics.grid_accuracy(cells, joints, grid, within=1)
    return results
