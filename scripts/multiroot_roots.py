"""Each root of a multi-root lifter scored on its own: whether eq. 7's average or the network behind it costs accuracy.

A multi-root checkpoint (`baseline` with the `multi_root` option, method 3's head) predicts every joint relative to
each of its six roots; the network's output is their zero-mean average (eq. 7). This scores each root's prediction
alone (re-centred on its own pelvis) and the average: Protocol 1 and 2 in mm, mean over actions as the benches score.

Run: `PYTHONPATH=src python scripts/multiroot_roots.py RUN/last.pt [RUN/last.pt ...] [--stride 5]`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bonelift import checkpoints, metrics
from bonelift.datasets.splits import load_split
from bonelift.evaluation import scored_frames
from bonelift.models.multiroot import ROOT_NAMES, MultiRootBaseline, combine_roots


@torch.no_grad()
def root_predictions(model: MultiRootBaseline, screen: np.ndarray) -> np.ndarray:
    """(T, J, 2) screen keypoints -> (R + 1, T, J, 3) metres: each root's pelvis-relative pose, then eq. 7's."""
    head = model.net.head
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32))
    raw, _ = model.net(model.normalizer.norm_in(x))
    rel = head.relative(raw, model.normalizer)  # (T, R, J, 3), each root at zero
    each = rel - rel[:, :, head.pelvis : head.pelvis + 1]
    return torch.cat([each, combine_roots(rel, head.pelvis)[:, None]], 1).permute(1, 0, 2, 3).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--stride", type=int, default=5, help="score every N-th test frame (the benches' --test-stride)")
    a = ap.parse_args()
    names = ["/".join(n) for n in ROOT_NAMES] + ["eq. 7 average"]
    print("| checkpoint | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for path in a.checkpoints:
        model, trained, _ = checkpoints.rebuild(path, "cpu")
        if not isinstance(model, MultiRootBaseline):
            raise SystemExit(f"{path}: not a multi-root lifter (`baseline` with the multi_root option)")
        model.eval()
        seqs = load_split(trained.dataset, "", trained.keypoints, trained.test_subjects)
        frames = [scored_frames(len(s), a.stride) for s in seqs]
        preds = [root_predictions(model, s.screen[f]) for s, f in zip(seqs, frames)]
        gt = np.concatenate([s.root_relative[f] for s, f in zip(seqs, frames)])
        actions = np.concatenate([np.full(len(f), s.action) for s, f in zip(seqs, frames)])
        cells = []
        for k in range(len(names)):
            pred = np.concatenate([p[k] for p in preds])
            p1, p2 = (metrics.average_over_groups(metrics.group_mean(err * 1000, actions))
                      for err in (metrics.mpjpe(pred, gt), metrics.p_mpjpe(pred, gt)))
            cells.append(f"{p1:.2f} / {p2:.2f}")
        print(f"| {path} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
