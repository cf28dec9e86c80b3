"""Session fixtures of the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_fixtures import save_tiny_checkpoint, save_tiny_video_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def video_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny video lifters with confidences: `tcn`, `bone` (centred, RF 9) and `tcn_causal`, `bone_causal`."""
    folder = tmp_path_factory.mktemp("video_ckpt")
    out = {}
    for name in ("tcn", "bone"):
        for causal in (False, True):
            key = f"{name}_causal" if causal else name
            out[key] = save_tiny_video_checkpoint(folder / f"{key}.pt", name, causal)
    return out
