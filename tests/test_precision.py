"""Training precision (`--precision`, issue 23) and a data-parallel run under torchrun on synthetic data."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch

from bonelift.checkpoints import load
from bonelift.cli import main
from bonelift.config import TrainConfig
from bonelift.models import ModelConfig
from bonelift.training import train


def _config(root, out, **kw) -> TrainConfig:
    return TrainConfig(model=ModelConfig(hidden=16), data_root=str(root), stride=2, eval_stride=4, epochs=1,
                       batch_size=32, out_dir=str(out), device="cpu", **kw)


def test_bf16_trains_one_epoch(h36m_root, tmp_path):
    trainer = train(_config(h36m_root, tmp_path / "bf16", precision="bf16",
                            train_subjects=("S1",), test_subjects=("S9",)), progress=False)
    assert len(trainer.history) == 1 and math.isfinite(trainer.history[0]["loss"])
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # weights and optimiser stay fp32
    losses = trainer.losses(torch.arange(8))
    assert losses["total"].dtype == torch.float32


@pytest.mark.slow
def test_torchrun_two_processes_train(h36m_root, tmp_path):
    """Two gloo processes train one run data-parallel (rank 0 writes it) to finite scores.

    Not compared with one process at twice the batch: every network here has batch norm, whose statistics
    DDP keeps per process (SyncBatchNorm needs a GPU), so the two runs differ beyond float tolerance; the
    comparison is `tests/test_ddp.py`, on the baseline without batch norm."""
    if not torch.distributed.is_available() or importlib.util.find_spec("torch.distributed.run") is None:
        pytest.skip("torchrun is not available")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "bonelift.cli", "train",
           "--data", str(h36m_root), "--train-subjects", "S1", "--test-subjects", "S9", "--hidden", "16",
           "--stride", "2", "--eval-stride", "4", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    history = load(out / "last.pt")["history"]
    assert len(history) == 1 and math.isfinite(history[0]["p1_mm"])


def test_bench_training_speed_writes_rows(h36m_root, tmp_path):
    report = tmp_path / "training_speed.md"
    assert main(["bench", "training-speed", "--data", str(h36m_root), "--models", "baseline", "--train-subjects", "S1",
                 "--test-subjects", "S9", "--epochs", "1", "--stride", "8", "--batch-size", "16", "--eval-stride", "8",
                 "--test-stride", "8", "--out", str(tmp_path / "runs"), "--report", str(report)]) == 0
    rows = json.loads(report.with_suffix(".json").read_text())["rows"]
    assert [(r["model"], r["precision"]) for r in rows] == [("baseline", "fp32"), ("baseline", "bf16")]
    assert all(r["samples_per_s"] > 0 and math.isfinite(r["p1_mm"]) for r in rows)
    assert "bf16" in report.read_text()
