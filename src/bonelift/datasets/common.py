"""The sequence record every loader produces, safe npz reading, and frame flattening for training."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.cameras import Camera
from bonelift.errors import DataError, require_file
from bonelift.skeletons import Layout


@dataclass
class PoseSequence:
    """One subject, one take, one camera: 2D keypoints in pixels and 3D joints in the camera frame."""

    subject: str
    action: str  # canonical action name, e.g. "Walking"
    take: str  # name as stored in the 3D file, e.g. "Walking 1"
    camera: Camera
    keypoints: np.ndarray  # (T, J, 2) pixels, joints of `layout`
    layout: Layout
    poses_3d: np.ndarray  # (T, J3, 3) metres, camera frame, absolute (not root-relative)
    layout_3d: Layout
    confidence: np.ndarray | None = None  # (T, J) in [0, 1] when the detector gives it

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def screen(self) -> np.ndarray:
        """Keypoints in screen coordinates ([-1, 1] along x), the network input space."""
        return self.camera.normalize(self.keypoints).astype(np.float32)

    @property
    def root_relative(self) -> np.ndarray:
        """3D joints relative to the root joint (pelvis), the regression target."""
        return self.poses_3d - self.poses_3d[:, self.layout_3d.root : self.layout_3d.root + 1]


def default_data_root() -> Path:
    """`../shared/data` next to the checkout or the working directory, where the benchmark files live."""
    env = os.environ.get("BONELIFT_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data"


def load_pickled_npz(path: str | Path, key: str) -> dict:
    """Read a dict stored as a pickled object array under `key` in an npz file (VideoPose3D style).

    Only use on files you trust: the format is pickle-based by design.
    """
    path = require_file(path, "data file")
    try:
        with np.load(path, allow_pickle=True) as data:
            if key not in data.files:
                raise DataError(path, f"no key {key!r} (found {data.files})")
            obj = data[key]
            value = obj.item() if obj.dtype == object and obj.shape == () else obj
            metadata = data["metadata"].item() if "metadata" in data.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(path, f"cannot read npz ({type(exc).__name__}: {exc}); file truncated or corrupt?") from exc
    if not isinstance(value, dict):
        raise DataError(path, f"{key!r} is not a dict of sequences")
    return {"value": value, "metadata": metadata}


def flatten_frames(
    sequences: Sequence[PoseSequence], stride: int = 1
) -> dict[str, np.ndarray]:
    """Stack every `stride`-th frame of all sequences into arrays for single-frame models.

    Returns `inputs` (N, J, 2) screen coordinates, `confidence` (N, J) (ones when absent),
    `targets` (N, J3, 3) root-relative metres, and per-frame `subject`, `action`, `camera`, `sequence`
    (index into `sequences`) labels used for per-action evaluation.
    """
    if not sequences:
        raise DataError(None, "no sequences to flatten")
    cols: dict[str, list] = {k: [] for k in ("inputs", "confidence", "targets", "subject", "action", "camera", "sequence")}
    for i, seq in enumerate(sequences):
        sl = slice(None, None, stride)
        n = len(range(len(seq))[sl])
        cols["inputs"].append(seq.screen[sl])
        conf = seq.confidence if seq.confidence is not None else np.ones(seq.keypoints.shape[:2], np.float32)
        cols["confidence"].append(conf[sl].astype(np.float32))
        cols["targets"].append(seq.root_relative[sl].astype(np.float32))
        cols["subject"].append(np.full(n, seq.subject))
        cols["action"].append(np.full(n, seq.action))
        cols["camera"].append(np.full(n, seq.camera.id))
        cols["sequence"].append(np.full(n, i))
    return {k: np.concatenate(v) for k, v in cols.items()}
