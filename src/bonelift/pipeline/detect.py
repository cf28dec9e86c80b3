"""Offline 2D detection with MediaPipe Pose (BlazePose, 33 landmarks), one person per frame.

`mediapipe==0.10.21` ships the pose-landmark models inside its wheel, and `model_complexity=1`
(BlazePose "full") is the one that runs without downloading anything, so it is fixed here.
MediaPipe runs in tracking mode (the person detector only re-runs when tracking is lost), which
is what makes video detection fast. Landmarks come back normalised to the image, so downscaling a
frame before detection changes neither their scale nor the pixel coordinates we return.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from bonelift.errors import DataError
from bonelift.pipeline.frames import FrameSource
from bonelift.pipeline.track import Track2D
from bonelift.skeletons import MEDIAPIPE33

MODEL_COMPLEXITY = 1


def _mediapipe_pose():
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise DataError(None, "video detection needs MediaPipe: pip install 'bonelift[video]' (mediapipe==0.10.21)") from exc
    return mp.solutions.pose


def detect(
    source: FrameSource,
    max_side: int | None = 640,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
    progress: bool = True,
) -> tuple[Track2D, float]:
    """Run MediaPipe Pose over `source`; returns the MEDIAPIPE33 track and the seconds spent.

    A frame where MediaPipe finds nobody gets NaN keypoints (status MISSING); visibility is kept
    as the per-joint confidence.
    """
    pose_mod = _mediapipe_pose()
    total = source.num_frames if max_frames is None else min(source.num_frames, max_frames)
    points: list[np.ndarray] = []
    confs: list[np.ndarray] = []
    nan = np.full((MEDIAPIPE33.num_joints, 2), np.nan)
    zero = np.zeros(MEDIAPIPE33.num_joints)
    start = time.perf_counter()
    with pose_mod.Pose(
        static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=True,
        min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
    ) as pose:
        bar = tqdm(source.frames(max_side), total=total, desc="detect 2D", unit="frame", disable=not progress)
        for i, rgb in enumerate(bar):
            if max_frames is not None and i >= max_frames:
                break
            result = pose.process(rgb)
            if result.pose_landmarks is None:
                points.append(nan)
                confs.append(zero)
                continue
            lm = result.pose_landmarks.landmark
            xy = np.array([[p.x * source.width, p.y * source.height] for p in lm])
            points.append(xy)
            confs.append(np.clip([p.visibility for p in lm], 0.0, 1.0))
        bar.close()
    seconds = time.perf_counter() - start
    if not points:
        raise DataError(source.path, "no frames could be read")
    track = Track2D(np.stack(points), np.stack(confs), MEDIAPIPE33, source.width, source.height, source.fps, str(source.path))
    if not track.detected.any():
        raise DataError(source.path, f"no person found in any of its {track.num_frames} frames")
    return track, seconds
