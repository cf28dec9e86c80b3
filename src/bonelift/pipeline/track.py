"""The 2D track every input becomes: keypoints in pixels, per-joint confidence, per-frame status.

Videos, image folders and keypoint files all end up as a `Track2D`, so gap filling, lifting and
export see one shape of data whatever the source was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bonelift.cameras import MAX_FPS, MIN_FPS
from bonelift.errors import DataError
from bonelift.skeletons import Layout

# Per-frame status codes kept in every output, so users can tell measured poses from filled ones.
DETECTED, INTERPOLATED, MISSING = 0, 1, 2
STATUS_NAMES = {DETECTED: "detected", INTERPOLATED: "interpolated", MISSING: "missing"}


def check_fps(fps: float, source: str | None, what: str = "fps") -> float:
    """`fps` as a float from MIN_FPS to MAX_FPS, or a DataError naming `source` and `what`."""
    try:
        ok = not isinstance(fps, (bool, str)) and MIN_FPS <= float(fps) <= MAX_FPS
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(source, f"{what} must be a number of frames per second from {MIN_FPS:g} to {MAX_FPS:g}, "
                                f"got {fps!r}")
    return float(fps)


@dataclass
class Track2D:
    """One person's 2D keypoints over time.

    keypoints: (T, J, 2) pixels, NaN where the person was not found; confidence: (T, J) in [0, 1]
    (MediaPipe visibility, or the score column of a keypoint file), 0 where not found; world: (T, J, 3) the
    detector's own metric 3D in the camera's axes (MediaPipe's `pose_world_landmarks`), NaN where it has
    none, or None for a source without it (keypoint files): the 2D-only path.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    layout: Layout
    width: int
    height: int
    fps: float
    source: str
    status: np.ndarray = field(default=None)  # (T,) int8 of DETECTED / INTERPOLATED / MISSING
    world: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            found = np.isfinite(self.keypoints).all(axis=(1, 2))
            self.status = np.where(found, DETECTED, MISSING).astype(np.int8)

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)

    @property
    def detected(self) -> np.ndarray:
        return self.status == DETECTED
