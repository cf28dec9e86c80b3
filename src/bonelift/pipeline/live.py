"""Live lifting, frame in -> 3D out: a causal video lifter fed one detector frame at a time.

`LiveLifter.push(keypoints_px, confidence, width, height)` converts the detector layout to Human3.6M-17
and normalises the screen exactly as offline `lift` does for video lifters (`skeletons.convert`,
`cameras.normalize_screen`), then runs `streaming.StreamingLifter` (which also applies a model's own clip
framing, `geometry.RunningReframe`): memory is bounded by the receptive field, and the poses equal offline
causal lifting of the same frames, frame by frame.
A frame without a complete person (any NaN joint, or `None`) ends the current run like a MISSING frame
offline: it returns None and the next posed frame starts a new run (padded by its first frame).
With `skeleton` (default) each pose gets the running symmetric skeleton of the frames so far, the causal
form of offline `lift`'s per-clip skeleton (`fitting.fit_clip_skeleton(causal=True)`), kept across such gaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bonelift.cameras import assumed_intrinsics, normalize_screen, root_trajectory
from bonelift.config import LiveConfig, configure
from bonelift.errors import DataError
from bonelift.fitting import fit_skeleton, symmetric_lengths
from bonelift.geometry import bone_lengths
from bonelift.pipeline.lifters import CAUSAL_VIDEO_WEIGHTS, Lifter, check_skeleton, load_lifter
from bonelift.runtime import resolve_device
from bonelift.skeletons import H36M17, Layout, convert, get_layout
from bonelift.streaming import StreamingLifter


class LiveLifter:
    """Frame-by-frame 3D from a causal video checkpoint.

    `config` (default: `LiveConfig()`) with keyword overrides named like its fields, checked by the same
    field definitions as `lift` (`model`: None, the bundled causal weights; `layout`: the joint layout of the
    pushed keypoints, "mediapipe33", "coco17", "h36m17", ...; `focal`: focal length in pixels for `root`,
    None: `cameras.DEFAULT_FOCAL_FACTOR` x the longer side; `skeleton`: the running per-person skeleton, see
    above; `device`). `LiveLifter("causal.pt", layout="h36m17")` names the model first, as before.
    After each push, `root` is the pelvis position in the camera frame (metres; `cameras.root_trajectory`
    of that frame), None when no pose was returned.
    """

    def __init__(self, model: str | Path | None = None, config: LiveConfig | None = None, **overrides: Any) -> None:
        if model is not None:
            overrides["model"] = model
        self.config = o = configure(LiveConfig, config, overrides)
        path = Path(o.model) if o.model is not None else CAUSAL_VIDEO_WEIGHTS
        if o.model is None and not path.is_file():
            raise DataError(path, "the bundled causal video lifter is not installed; pass a causal video checkpoint")
        device = resolve_device(str(o.device))  # the same device names as `lift` ("auto": CUDA when present)
        self.lifter: Lifter = load_lifter(path, device, need="causal")
        self.layout = o.layout if isinstance(o.layout, Layout) else get_layout(o.layout)
        self.focal = o.focal
        self.stream = StreamingLifter(self.lifter.model, device)
        self.root: np.ndarray | None = None
        self.skeleton = check_skeleton(self.lifter, o.skeleton)
        self._lengths: tuple[np.ndarray, int] = (np.zeros(len(H36M17.bones)), 0)  # running sum, posed frames

    def push(self, keypoints_px: np.ndarray | None, confidence: np.ndarray | None, width: int,
             height: int) -> np.ndarray | None:
        """(J, 2) pixels in `layout` (and confidences (J,), None: all 1) -> (17, 3) root-relative metres or None.

        The pose is the pushed frame's (causal: no delay); None for a frame without a complete person.
        """
        self.root = None
        if keypoints_px is None:
            self.stream.reset()
            return None
        kp = np.asarray(keypoints_px, np.float64)[..., :2]
        if kp.shape != (self.layout.num_joints, 2):
            raise DataError(None, f"keypoints have shape {kp.shape}, expected ({self.layout.num_joints}, 2) "
                                  f"for layout {self.layout.name}")
        conf = np.ones(len(kp)) if confidence is None else np.asarray(confidence, np.float64)
        conf = np.clip(np.nan_to_num(conf), 0.0, 1.0)
        kp, conf = convert(kp, self.layout, H36M17, conf)
        if not np.isfinite(kp).all():
            self.stream.reset()
            return None
        pose = self.stream.push(normalize_screen(kp, width, height), conf)
        if pose is None:
            return None
        if self.skeleton:
            total, n = self._lengths
            self._lengths = (total + bone_lengths(pose, H36M17), n + 1)
            pose = fit_skeleton(pose, symmetric_lengths(self._lengths[0] / self._lengths[1], H36M17), H36M17)
        f, c = assumed_intrinsics(width, height, self.focal)
        self.root = root_trajectory(pose[None], kp[None], conf[None], f, c)[0]
        return pose

    def reset(self) -> None:
        """Start a new stream (another clip, or another person)."""
        self.stream.reset()
        self.root = None
        self._lengths = (np.zeros(len(H36M17.bones)), 0)


__all__ = ["LiveLifter"]
