"""Data-parallel training (torchrun, gloo) equals one process at the same global batch (issue 23 item 7)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.models import MODELS
from tests import ddp_worker

REPO = Path(__file__).parents[1]


def test_two_processes_equal_one_at_the_same_global_batch(h36m_root, tmp_path, monkeypatch):
    """Each process trains on every other sample of one seeded permutation, so the two processes' batches b
    together are the one-process batch b, and DDP's averaged gradient is its gradient: weights and per-epoch
    scores agree to float tolerance (the summation order differs). Batch-norm-free network, dropout 0: see
    `tests/ddp_worker.py`."""
    if not torch.distributed.is_available() or importlib.util.find_spec("torch.distributed.run") is None:
        pytest.skip("torchrun is not available")
    result = tmp_path / "two.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tests.ddp_worker", str(h36m_root), str(tmp_path / "two"), "8", str(result)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.setitem(MODELS, ddp_worker.NO_BN, ddp_worker.SPEC)
    one = ddp_worker.run(str(h36m_root), str(tmp_path / "one"), 16)
    two = dict(np.load(result))
    assert sorted(two) == sorted(one)
    assert len(one["p1_mm"]) == 2 and np.isfinite(one["p1_mm"]).all()
    np.testing.assert_allclose(two["p1_mm"], one["p1_mm"], rtol=0, atol=1e-3)
    for name, w in one.items():
        np.testing.assert_allclose(two[name], w, rtol=1e-4, atol=1e-6, err_msg=name)
    assert one["p1_mm"][0] != one["p1_mm"][1]  # the second epoch trained: equal weights are not untouched ones
