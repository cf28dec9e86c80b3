"""Evaluation under the standard protocols and the papers' tables (per action, hard joints, limbs).

Protocol 1 is MPJPE after root alignment, Protocol 2 after per-frame similarity Procrustes; both
are averaged per action and the 'average' column is the mean over actions, as the papers report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bonelift import metrics
from bonelift.datasets import ACTION_ABBREVIATIONS, CANONICAL_ACTIONS, PoseSequence
from bonelift.errors import atomic_path
from bonelift.models import LiftingModel

MM = 1000.0


def input_label(keypoints: str) -> str:
    """How reports name a 2D input source on every row: "GT 2D", "SH 2D"."""
    return f"{keypoints.upper()} 2D"


@torch.no_grad()
def predict_sequences(
    model: LiftingModel, sequences: list[PoseSequence], stride: int = 1, device: str | torch.device = "cpu",
    batch_size: int = 8192, progress: bool = True,
) -> list[np.ndarray]:
    """Root-relative 3D predictions (T, J, 3) in metres for every `stride`-th frame of each sequence."""
    model.eval()
    out = []
    for seq in tqdm(sequences, desc="predict", disable=not progress, leave=False):
        x = torch.from_numpy(seq.screen[::stride])
        parts = [model.predict(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        out.append(torch.cat(parts).numpy())
    return out


def scored_frames(length: int, stride: int) -> np.ndarray:
    """Frames scored in a sequence of `length` when only every `stride`-th is affordable: pairs
    (t, t + 1) for every stride-th t, so velocity errors (MPJVE) still compare consecutive frames."""
    if stride <= 1:
        return np.arange(length)
    starts = np.arange(0, max(length - 1, 1), stride)
    return np.unique(np.concatenate([starts, np.minimum(starts + 1, length - 1)]))


def score(preds: list[np.ndarray], sequences: list[PoseSequence], stride: int = 1,
          frames: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Every bonelift metric for predictions aligned with `sequences`; distances in millimetres.

    Predictions are of every `stride`-th frame, or of the given `frames` of each sequence; MPJVE
    only uses predictions of consecutive frames.
    """
    layout = sequences[0].layout_3d
    if frames is None:
        frames = [np.arange(0, len(s), stride) for s in sequences]
    gts = [s.root_relative[f] for s, f in zip(sequences, frames)]
    pred, gt = np.concatenate(preds), np.concatenate(gts)
    actions = np.concatenate([np.full(len(p), s.action) for p, s in zip(preds, sequences)])
    p1 = metrics.mpjpe(pred, gt) * MM
    p2 = metrics.p_mpjpe(pred, gt) * MM
    per_action_p1 = metrics.group_mean(p1, actions)
    per_action_p2 = metrics.group_mean(p2, actions)
    velocity = [metrics.mpjve(p, g)[np.diff(f) == 1] for p, g, f in zip(preds, gts, frames) if len(p) > 1]
    velocity = np.concatenate(velocity) * MM if velocity else np.zeros(0)
    scale_mm = lambda d: {k: v * MM for k, v in d.items()}  # noqa: E731
    return {
        "frames": int(len(pred)),
        "sequences": len(sequences),
        "p1": {**per_action_p1, "average": metrics.average_over_groups(per_action_p1), "frame_average": float(p1.mean())},
        "p2": {**per_action_p2, "average": metrics.average_over_groups(per_action_p2), "frame_average": float(p2.mean())},
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
    }


def evaluate_sequences(
    model: LiftingModel, sequences: list[PoseSequence], stride: int = 1, device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Predict and score `sequences` in one call."""
    return score(predict_sequences(model, sequences, stride, device, progress=progress), sequences, stride)


def _row(values: dict[str, float], keys: list[str]) -> str:
    return " | ".join(f"{values[k]:.1f}" if k in values else "–" for k in keys)


def markdown_report(results: dict[str, Any], title: str) -> str:
    """The papers' tables for one model: per-action P1/P2, hard joints, limb lengths, validity.

    Every row names the model and its 2D input, so a row copied out of the table keeps its meaning.
    """
    who = f"{results.get('model', 'model')} ({input_label(str(results.get('keypoints', '?')))})"
    actions = [a for a in CANONICAL_ACTIONS if a in results["p1"]]
    short = [ACTION_ABBREVIATIONS.get(a, a) for a in actions]
    lines = [f"### {title}", ""]
    lines += ["| Model, protocol | " + " | ".join(short) + " | Avg |", "|---" * (len(actions) + 2) + "|"]
    for proto, label in (("p1", "P1 (MPJPE)"), ("p2", "P2 (P-MPJPE)")):
        lines.append(f"| {who} {label} | " + _row(results[proto], actions) + f" | **{results[proto]['average']:.1f}** |")
    lines += ["", f"{who}: {results['frames']} frames in {results['sequences']} sequences; frame-averaged P1 "
              f"{results['p1']['frame_average']:.1f} mm; N-MPJPE {results['n_mpjpe']:.1f} mm; MPJVE {results['mpjve']:.2f} mm; "
              f"PCK@150 {results['pck150']:.1f} %; AUC {results['auc']:.1f}.", ""]
    hard = [k for k in results["hard_joints"] if k != "average"]
    lines += ["| Hard joints (mm) | " + " | ".join(hard) + " | Avg |", "|---" * (len(hard) + 2) + "|"]
    lines.append(f"| {who} MPJPE | " + _row(results["hard_joints"], hard) + f" | {results['hard_joints']['average']:.1f} |")
    limbs = [k for k in results["bone_rmse"] if k != "average"]
    lines += ["", "| Limbs (mm) | " + " | ".join(limbs) + " | Avg |", "|---" * (len(limbs) + 2) + "|"]
    lines.append(f"| {who} bone-length RMSE | " + _row(results["bone_rmse"], limbs) + f" | {results['bone_rmse']['average']:.1f} |")
    lines.append(f"| {who} bone-length std over frames | " + _row(results["bone_std"], limbs)
                 + f" | {results['bone_std']['average']:.1f} |")
    ill = results["illegal_angles_pct"]
    sym = results["symmetry"]
    lines += ["", f"{who}: left/right asymmetry (mm): " + ", ".join(f"{k} {v:.1f}" for k, v in sym.items())
              + ". Illegal bends (% frames): " + ", ".join(f"{k} {v:.2f}" for k, v in ill.items()) + ".", ""]
    return "\n".join(lines)


def write_report(results: dict[str, Any], out_prefix: str | Path, title: str) -> tuple[Path, Path]:
    """Write `<prefix>.json` and `<prefix>.md` atomically; returns both paths."""
    prefix = Path(out_prefix)
    js, md = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    with atomic_path(md) as tmp:
        tmp.write_text(markdown_report(results, title))
    return js, md


def evaluate(
    checkpoint: str | Path, data_root: str | None = None, keypoints: str | None = None, stride: int = 1,
    out_prefix: str | Path | None = None, device: str = "auto", progress: bool = True,
) -> tuple[dict[str, Any], tuple[Path, Path]]:
    """Python API of `bonelift evaluate`: score a checkpoint on its test split and write JSON + Markdown."""
    from bonelift.training import load_checkpoint, model_from_checkpoint, resolve_device, test_split_for

    if load_checkpoint(checkpoint).get("kind") == "video":  # temporal lifters (bonelift.temporal)
        from bonelift.temporal import evaluate_video

        return evaluate_video(checkpoint, data_root, keypoints, stride, out_prefix, device, progress)
    dev = resolve_device(device)
    model, ckpt = model_from_checkpoint(checkpoint, dev)
    from bonelift.training import TrainConfig

    config = TrainConfig.from_dict(ckpt["train_config"])
    seqs = test_split_for(config, data_root, keypoints)
    results = evaluate_sequences(model, seqs, stride=stride, device=dev, progress=progress)
    results["checkpoint"] = str(checkpoint)
    results["model"] = config.model.name
    results["keypoints"] = config.keypoints
    prefix = out_prefix or Path(checkpoint).with_name(Path(checkpoint).stem + "_eval")
    title = f"{config.model.name}, {input_label(config.keypoints)} input, {config.dataset} {'/'.join(config.test_subjects)}"
    return results, write_report(results, prefix, title)
