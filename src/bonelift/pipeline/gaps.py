"""Filling short detection gaps by linear interpolation, and flagging them.

A detector drops the odd frame (motion blur, occlusion); interpolating a few frames gives a
continuous track for the BVH and the viewer. Longer gaps, and frames before the first or after the
last detection, are left missing (NaN) rather than invented.
"""

from __future__ import annotations

import numpy as np

from bonelift.pipeline.track import DETECTED, INTERPOLATED, MISSING, Track2D


def fill_gaps(track: Track2D, max_gap: int) -> Track2D:
    """Interpolate, joint by joint, runs of at most `max_gap` missing frames between two observed ones.

    Works per joint because keypoint files can miss single joints (OpenPose writes (0, 0, 0));
    MediaPipe misses whole frames, which is the same thing for every joint. A frame that needed any
    filling gets status INTERPOLATED and confidence 0 on the filled joints (nothing was measured
    there); a frame with a joint still missing afterwards becomes MISSING as a whole. Returns a new
    track; the input is not modified.
    """
    kp = track.keypoints.copy()
    conf = track.confidence.copy()
    seen = np.isfinite(kp).all(axis=-1)
    filled = np.zeros(len(kp), dtype=bool)
    for j in range(kp.shape[1]):
        found = np.flatnonzero(seen[:, j])
        for a, b in zip(found[:-1], found[1:]):
            gap = b - a - 1
            if gap == 0 or gap > max_gap:
                continue
            w = (np.arange(1, gap + 1) / (gap + 1))[:, None]
            kp[a + 1 : b, j] = (1 - w) * kp[a, j] + w * kp[b, j]
            conf[a + 1 : b, j] = 0.0
            filled[a + 1 : b] = True
    complete = np.isfinite(kp).all(axis=(1, 2))
    status = np.where(complete, np.where(filled, INTERPOLATED, DETECTED), MISSING).astype(np.int8)
    kp[~complete] = np.nan
    conf[~complete] = 0.0
    return Track2D(kp, conf, track.layout, track.width, track.height, track.fps, track.source, status, track.world)
