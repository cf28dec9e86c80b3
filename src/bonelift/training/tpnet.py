"""Training of TP-Net (method 4, Sec. 4.2) on a single-frame model's predictions, through the one loop.

Every `stride`-th frame of the training predictions is a target; its window of `past` + 1 + `future`
predictions is `model.frame_step` frames apart (the paper's 40 ms step), clipped at the sequence ends
like `geometry.edge_indices`. Adam, as
in the paper, with an exponential decay to lr / 10 over the run; the loss is the squared error in the
normaliser's units, so every coordinate counts alike.
"""

from __future__ import annotations

import numpy as np
import torch

from bonelift.config import TPNetTrainConfig
from bonelift.errors import DataError
from bonelift.models import TPNET, TPNet, build_model
from bonelift.training.loop import Run


class TPNetTrainer(Run):
    """Fits TP-Net on predictions (T, J, 3) per sequence against their ground truth."""

    kind = TPNET

    def __init__(
        self,
        config: TPNetTrainConfig,
        preds: list[np.ndarray],
        gts: list[np.ndarray],
        resume: bool = False,
        progress: bool = True,
        overwrite: bool = False,
        override: bool = False,
    ) -> None:
        if not preds or len(preds) != len(gts) or any(len(p) != len(g) for p, g in zip(preds, gts)):
            raise DataError(None, "TP-Net needs one ground-truth sequence per predicted sequence, of equal length")
        config = self.begin(config, resume, progress, overwrite, override=override)
        config.model.joints = preds[0].shape[1]
        self.model: TPNet = build_model(config.model)
        all_pred = np.concatenate(preds).astype(np.float32)
        self.model.fit_normalizer(all_pred)
        self.model.to(self.device)
        starts = np.cumsum([0] + [len(p) for p in preds[:-1]])
        parts = [(s + np.arange(0, len(p), config.stride), s, s + len(p) - 1) for s, p in zip(starts, preds)]
        self.centers = np.concatenate([c for c, _, _ in parts])
        self.first = np.concatenate([np.full(len(c), f) for c, f, _ in parts])
        self.last = np.concatenate([np.full(len(c), e) for c, _, e in parts])
        self.src = torch.from_numpy(all_pred)
        self.tgt = torch.from_numpy(np.concatenate(gts).astype(np.float32))
        self.optimizer = self.make_optimizer()
        steps = max(1, config.epochs * max(1, len(self.centers) // config.batch_size))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 0.1 ** (step / steps))
        self.start(resume)

    def num_samples(self) -> int:
        return len(self.centers)

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        sel = rows.numpy()
        offsets = self.model.config.offsets
        idx = np.clip(self.centers[sel, None] + offsets[None], self.first[sel, None], self.last[sel, None])
        window = self.src[idx].to(self.device)
        target = self.tgt[self.centers[sel]].to(self.device)
        loss = (((self.model(window) - target) / self.model.std.unflatten(-1, (-1, 3))) ** 2).mean()
        return {"total": loss}


def train_tpnet(
    config: TPNetTrainConfig,
    preds: list[np.ndarray],
    gts: list[np.ndarray],
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    override: bool = False,
) -> TPNet:
    """Fit TP-Net and return it in eval mode (checkpointed in `config.out_dir` unless that is empty)."""
    trainer = TPNetTrainer(config, preds, gts, resume=resume, progress=progress, overwrite=overwrite, override=override)
    trainer.fit()
    return trainer.model.eval()
