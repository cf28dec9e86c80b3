"""Method 5's pose taken apart: which of directions, lengths and the learned fusion holds its accuracy back.

A `bone` checkpoint (method 5) predicts unit bone directions (the direction network, a local window) and one set
of bone lengths per video (the length network pooled by attention); a learned layer fuses them into joints. This
scores, on the checkpoint's test split (no test-time flip, every `--stride`-th frame pair):

- `fused`: the network's own output;
- `eq1`: eq. 1 itself (joints = sum of D_b L_b along the root path) on the same predicted directions and lengths;
- `eq1 D x gt L`: predicted directions with the ground-truth lengths of the video (its mean bone lengths);
- `eq1 gt D x L`: ground-truth directions with the predicted lengths;
- `length net`: the length network's own per-frame 3D joints (a single-frame lifter, eq. 5's output);

plus the mean angle between predicted and true directions per bone and sub-network, and the length errors.
Protocol 1 and 2 in mm, mean over actions as the benches score. A TCN checkpoint gets the same table from its
joints' own decomposition (`eq1`: its directions with its lengths averaged over the video, as method 5 pools
them): the control for which part method 5 predicts worse.

Run: `PYTHONPATH=src python scripts/bone_parts.py RUN/last.pt [RUN/last.pt ...] [--stride 5]`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bonelift import checkpoints, geometry, metrics
from bonelift.datasets.splits import load_split
from bonelift.evaluation import scored_frames
from bonelift.models.base import with_root
from bonelift.models.bone_video import BoneVideoLifter
from bonelift.models.tcn import TemporalConvLifter
from bonelift.skeletons import Layout

PARTS = ("fused", "eq1", "eq1 D x gt L", "eq1 gt D x L", "length net")


def _decomposed(dirs: torch.Tensor, pooled: torch.Tensor, every: list[torch.Tensor], gt: np.ndarray,
                lay: Layout) -> dict[str, np.ndarray]:
    """Eq. 1 on predicted directions (F, B, 3) and one set of lengths (1, B), crossed with the truth of `gt`
    (F, J, 3); the angle of each of `every`'s directions to the true ones, and the length error per bone."""
    y_dir, y_len = geometry.bone_directions(torch.from_numpy(gt.astype(np.float32)), lay)
    true_len = y_len.mean(0, keepdim=True)  # a video's lengths: its frames' mean
    n = len(dirs)
    out = {
        "eq1": geometry.joints_from_directions(dirs, pooled.expand(n, -1), lay),
        "eq1 D x gt L": geometry.joints_from_directions(dirs, true_len.expand(n, -1), lay),
        "eq1 gt D x L": geometry.joints_from_directions(y_dir, pooled.expand(n, -1), lay),
        # (sub-networks, frames, bones)
        "angle": torch.stack([torch.rad2deg(torch.acos((d * y_dir).sum(-1).clamp(-1, 1))) for d in every]),
        "len_err": (pooled - true_len).abs().expand(n, -1),
    }
    return {k: v.numpy() for k, v in out.items()}


@torch.no_grad()
def parts(model: BoneVideoLifter, screen: np.ndarray, gt: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Every variant's joints (len(frames), J, 3) for one video, with the direction and length errors."""
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32))
    f = torch.from_numpy(frames)
    lengths = model.video_lengths(x)  # (1, bones): one set per video
    win = geometry.pad_edges(x, *model.config.pad).unfold(0, model.config.receptive_field, 1)[f].permute(0, 3, 1, 2)
    every = model.directions(win)
    own, _ = model.length(x[f].flatten(1))
    return {
        "fused": model.fuse(every[-1], lengths.expand(len(f), -1)).numpy(),
        "length net": with_root(own.unflatten(-1, (-1, 3)), model.layout).numpy(),
        **_decomposed(every[-1], lengths, every, gt, model.layout),
    }


@torch.no_grad()
def tcn_parts(
    model: TemporalConvLifter, screen: np.ndarray, gt: np.ndarray, frames: np.ndarray
) -> dict[str, np.ndarray]:
    """The same table for a TCN, from its joints' own decomposition (its lengths averaged over the video, as
    method 5 pools them); it has no length network."""
    lay = model.config.out_layout
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32))
    joints = model.infer(x, frames=torch.from_numpy(frames))
    dirs, lengths = geometry.bone_directions(joints, lay)
    return {"fused": joints.numpy(), **_decomposed(dirs, lengths.mean(0, keepdim=True), [dirs], gt, lay)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--stride", type=int, default=5,
                    help="score every N-th test frame pair (the benches' --test-stride)")
    a = ap.parse_args()
    print("| checkpoint | " + " | ".join(PARTS) + " |")
    print("|---" * (len(PARTS) + 1) + "|")
    for path in a.checkpoints:
        model, trained, _ = checkpoints.rebuild(path, "cpu")
        if not isinstance(model, (BoneVideoLifter, TemporalConvLifter)):
            raise SystemExit(f"{path}: not a method 5 (`bone`) or TCN checkpoint")
        split = parts if isinstance(model, BoneVideoLifter) else tcn_parts
        seqs = load_split(trained.dataset, "", trained.keypoints, trained.test_subjects)
        frames = [scored_frames(len(s), a.stride) for s in seqs]
        got = [split(model, s.screen, s.root_relative[f], f) for s, f in zip(seqs, frames)]
        gt = np.concatenate([s.root_relative[f] for s, f in zip(seqs, frames)])
        actions = np.concatenate([np.full(len(f), s.action) for s, f in zip(seqs, frames)])
        cells = []
        for k in PARTS:
            if k not in got[0]:  # a TCN has no length network
                cells.append("–")
                continue
            pred = np.concatenate([g[k] for g in got])
            p1, p2 = (metrics.average_over_groups(metrics.group_mean(err * 1000, actions))
                      for err in (metrics.mpjpe(pred, gt), metrics.p_mpjpe(pred, gt)))
            cells.append(f"{p1:.2f} / {p2:.2f}")
        print(f"| {path} | " + " | ".join(cells) + " |")
        lay = model.config.out_layout
        names = [f"{lay.joints[i]}-{lay.joints[j]}" for i, j in lay.bones]
        angle = np.concatenate([g["angle"] for g in got], axis=1).mean(1)
        len_err = np.concatenate([g["len_err"] for g in got]).mean(0) * 1000
        print("per bone: mean direction error of each sub-network, bottom first (deg) / mean |length error| (mm)")
        print(", ".join(f"{n} {'/'.join(f'{a:.1f}' for a in d)}/{e:.0f}" for n, d, e in zip(names, angle.T, len_err)))
        print("all bones: " + " / ".join(f"{a:.2f} deg" for a in angle.mean(1)) + f", {len_err.mean():.1f} mm")
        have = [k for k in PARTS if k in got[0]]
        per_joint = {k: metrics.joint_errors(np.concatenate([g[k] for g in got]), gt).mean(0) * 1000 for k in have}
        print("per joint P1 (mm), " + " | ".join(have))
        for j, n in enumerate(lay.joints):
            print(f"  {n}: " + " ".join(f"{per_joint[k][j]:.1f}" for k in have))


if __name__ == "__main__":
    main()
