"""Session fixtures of the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_fixtures import save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
