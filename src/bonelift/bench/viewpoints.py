"""The controlled half of `bench wild` (issue 17): lifters as the pipeline runs them, scored on Human3.6M
S9/S11 seen from virtual cameras grouped by elevation and frame shape (2D made detector-like from the
ground truth), and across datasets on HumanEva-I (trained on Human3.6M only).

A lifter here is a `LiftFn`: pixel keypoints in Human3.6M-17 order, their confidences, the frame size
and the frames wanted -> root-relative metres in the camera frame, exactly what `bonelift lift` feeds
and gets, so the shipped single-frame lifter (with its reframing) and the video lifters compare on
the same footing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bonelift.bench.common import metrics_row
from bonelift.datasets import PoseSequence
from bonelift.datasets.virtual import ELEVATIONS, ViewConfig, detector_like_3d, synthesize
from bonelift.evaluation import score, scored_frames, subject_action_errors
from bonelift.pipeline.lifters import LiftFn
from bonelift.skeletons import H36M17, HUMANEVA15, convert

SHAPES = ("landscape", "portrait")


# Simulated detector 3D for fusing lifters (`--detector-3d`): `virtual.detector_like_3d` noise levels.
DETECTOR_3D = {"none": None, "mild": {"degrees": 12.0, "flips": 1 / 150},
               "strong": {"degrees": 18.0, "flips": 1 / 75, "scale_sd": 0.12}}


def lift_split(fn: LiftFn, seqs: list[PoseSequence], stride: int = 1, fps: float = 50.0,
               detector_3d: str = "none", seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Predictions of `fn` (each whole sequence lifted, as the pipeline does) for the `scored_frames` of
    every sequence (H36M17 2D), and those frames. A fusing `fn` also gets MediaPipe-like 3D made from the ground
    truth at the `detector_3d` level (`DETECTOR_3D`; "none": the 2D-only path), the same for every lifter."""
    frames = [scored_frames(len(s), stride) for s in seqs]
    if not getattr(fn, "takes_world", False):
        preds = [fn(s.keypoints, s.confidence, s.camera.width, s.camera.height, fps)[f] for s, f in zip(seqs, frames)]
        return preds, frames
    # A fusing lifter gets the camera's focal length (the benchmark's cameras are calibrated) and fits only the
    # scored frames (the lifter itself still sees every frame); no detector 3D here: the 2D-only path.
    noise = DETECTOR_3D[detector_3d]
    preds = []
    for k, (s, f) in enumerate(zip(seqs, frames)):
        world = None
        if noise is not None:
            world = detector_like_3d(s.root_relative.astype(np.float64), np.random.default_rng([seed, k]), **noise)
        preds.append(fn(s.keypoints, s.confidence, s.camera.width, s.camera.height, fps, world=world,
                        focal=float(np.mean(s.camera.f)), frames=f)[f])
    return preds, frames


def viewpoint_groups(test_seqs: list[PoseSequence], seed: int = 1234, noise: float = 0.01,
                     shapes: tuple[str, ...] = SHAPES) -> dict[str, list[PoseSequence]]:
    """Test sequences by camera group: "h36m" (the four real cameras) and "<elevation>-<shape>" (one
    virtual camera per take each), all with detector-like 2D of the same noise; deterministic."""
    views = ViewConfig(cameras="h36m", detector="mediapipe", detector_noise=noise)
    groups = {"h36m": synthesize(test_seqs, views, seed)}
    for i, el in enumerate(ELEVATIONS):
        for j, shape in enumerate(shapes):
            virt = ViewConfig(cameras="virtual", virtual_views=1, detector="mediapipe", detector_noise=noise)
            groups[f"{el}-{shape}"] = synthesize(test_seqs, virt, seed + 10 * i + j + 1, ELEVATIONS[el], shape)
    return groups


def viewpoint_rows(lifters: dict[str, LiftFn], groups: dict[str, list[PoseSequence]], stride: int = 10,
                   progress: Callable[[str], None] | None = None, detector_3d: str = "none") -> list[dict[str, Any]]:
    """One row per lifter and camera group: P1, P2, MPJVE, bone-length std (mm), and P1 relative to "h36m"."""
    rows = []
    for name, fn in lifters.items():
        base = None
        for group, seqs in groups.items():
            if progress:
                progress(f"{name} on {group}")
            preds, frames = lift_split(fn, seqs, stride, detector_3d=detector_3d)
            row = metrics_row(score(preds, seqs, frames))
            base = row["p1_mm"] if group == "h36m" else base
            fused_3d = detector_3d != "none" and getattr(fn, "takes_world", False)
            rows.append({"model": name, "input": f"gt+sim3d-{detector_3d}" if fused_3d else "gt",
                         "two_d": "detector-like", "views": group, "seed": 0, **row,
                         "p1_vs_h36m": row["p1_mm"] / base if base else None})
    return rows


def humaneva_inputs(seqs: list[PoseSequence]) -> list[PoseSequence]:
    """HumanEva-I sequences with their 2D in Human3.6M-17 order (neck/nose derived), 3D kept in HumanEva's."""
    out = []
    for s in seqs:
        kp, _ = convert(s.keypoints, HUMANEVA15, H36M17)
        out.append(PoseSequence(s.subject, s.action, s.take, s.camera, kp.astype(np.float32), H36M17,
                                s.poses_3d, s.layout_3d))
    return out


def humaneva_rows(lifters: dict[str, LiftFn], seqs: list[PoseSequence], stride: int = 1) -> list[dict[str, Any]]:
    """Cross-dataset rows: P2 (and P1) per "S<n> <action>" and averaged, on HumanEva's 15 joints (mm; 60 Hz)."""
    rows = []
    for name, fn in lifters.items():
        preds, frames = lift_split(fn, seqs, stride, fps=60.0)
        preds = [convert(p, H36M17, HUMANEVA15)[0] for p in preds]
        per = subject_action_errors(preds, seqs, frames)
        rows.append(
            {
                "model": name,
                "input": "gt",
                "dataset": "humaneva",
                "seed": 0,
                **metrics_row(score(preds, seqs, frames)),
                "p2_per_action_mm": per["p2"],
                "p1_per_action_mm": per["p1"],
            }
        )
    return rows
