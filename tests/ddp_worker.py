"""One tiny single-frame training run, in one process or under `torchrun` (tests/test_ddp.py compares the two).

The network is Martinez et al.'s baseline with its batch norm layers removed: DDP keeps batch-norm statistics per
process and SyncBatchNorm refuses CPU tensors (torch 2.13), so with batch norm a 2-process run cannot equal one
process at the same global batch. Dropout is 0 for the same reason (each process would draw its own masks).
Run as `python -m tests.ddp_worker DATA OUT BATCH RESULT.npz` (optionally under torchrun); rank 0 writes the final
weights and the per-epoch P1 to RESULT.npz.
"""

from __future__ import annotations

import sys

import numpy as np
from torch import nn

from bonelift.config import TrainConfig
from bonelift.models import MODELS, SINGLE_FRAME, ModelConfig, ModelSpec
from bonelift.models.baseline import Baseline
from bonelift.models.multiroot import BaselineOptions
from bonelift.training import train

NO_BN = "baseline-no-bn"


def baseline_without_batch_norm(config: ModelConfig) -> Baseline:
    model = Baseline(config)
    for block in model.modules():
        for name, child in block.named_children():
            if isinstance(child, nn.BatchNorm1d):
                setattr(block, name, nn.Identity())
    return model


SPEC = ModelSpec(baseline_without_batch_norm, SINGLE_FRAME, "test only: baseline without batch norm", BaselineOptions)


def config(data: str, out: str, batch_size: int) -> TrainConfig:
    """Two epochs of S1 (every frame) at `batch_size` per process; the learning rate decays within the run."""
    return TrainConfig(model=ModelConfig(name=NO_BN, hidden=32, dropout=0.0), data_root=data, keypoints="gt",
                       train_subjects=("S1",), test_subjects=("S9",), stride=1, eval_stride=4, epochs=2,
                       batch_size=batch_size, lr_decay_samples=200, device="cpu", out_dir=out)


def run(data: str, out: str, batch_size: int) -> dict[str, np.ndarray] | None:
    """Train; on rank 0 the final weights (by parameter name) and the per-epoch P1 (`p1_mm`)."""
    trainer = train(config(data, out, batch_size), progress=False)
    if trainer.rank != 0:
        return None
    weights = {k: v.detach().numpy().copy() for k, v in trainer.model.state_dict().items()}
    return {**weights, "p1_mm": np.array([h["p1_mm"] for h in trainer.history])}


if __name__ == "__main__":
    MODELS[NO_BN] = SPEC
    data_root, out_dir, batch, result = sys.argv[1:5]
    saved = run(data_root, out_dir, int(batch))
    if saved is not None:
        np.savez(result, **saved)
