"""Live lifting, frame in -> 3D out: a causal video lifter fed one detector frame at a time.

`LiveLifter.push(keypoints_px, confidence, width, height)` converts the detector layout to Human3.6M-17
and normalises the screen exactly as offline `lift` does for video lifters (`skeletons.convert`,
`cameras.normalize_screen`), then runs `streaming.StreamingLifter` (which also applies a model's own clip
framing, `geometry.RunningReframe`): memory is bounded by the receptive field, and the poses equal offline
causal lifting of the same frames, frame by frame.
A frame without a complete person (any NaN joint, or `None`) ends the current run like a MISSING frame
offline: it returns None and the next posed frame starts a new run (padded by its first frame). A bad frame
(image size not whole pixels from 1 to `keypoint_io.MAX_SIDE`, keypoints not numeric (J, 2) pixels within
`keypoint_io.MAX_COORD` and within `keypoint_io.MAX_OUTSIDE` image sizes of the image, confidences not (J,) numbers)
raises a DataError after ending the run the same way:
the frames after it are lifted as after a missing frame, never from a poisoned state.
With `fusion` (default) each frame is fitted to its 2D with the network's pose and the detector's own 3D (`world`,
MediaPipe's world landmarks, when pushed) as priors and the running skeleton (`fusion.RunningFusion`): the causal
form of offline `lift`'s fusion, equal to it frame by frame. Without it, `skeleton` gives each pose the running
symmetric skeleton of the frames so far (`fitting.fit_clip_skeleton(causal=True)`). Both keep their running
lengths across such gaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bonelift.cameras import assumed_intrinsics, normalize_screen, root_trajectory
from bonelift.config import LiveConfig, configure
from bonelift.errors import DataError
from bonelift.fitting import fit_skeleton, symmetric_lengths
from bonelift.fusion import RunningFusion
from bonelift.geometry import bone_lengths
from bonelift.pipeline.keypoint_io import MAX_COORD, check_inside, check_size
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
        self.fusion = RunningFusion(H36M17, priors=2) if o.fusion else None  # the network's pose, the detector's 3D

    def push(self, keypoints_px: np.ndarray | None, confidence: np.ndarray | None, width: int,
             height: int, world: np.ndarray | None = None) -> np.ndarray | None:
        """(J, 2) pixels in `layout` (and confidences (J,), None: all 1; `world` (J, 3): the detector's own metric
        3D in the camera's axes, or None) -> (17, 3) root-relative metres or None.

        The pose is the pushed frame's (causal: no delay); None for a frame without a complete person.
        """
        self.root = None
        if keypoints_px is None:
            self.stream.reset()
            return None
        try:
            kp, conf, width, height = self._check_frame(keypoints_px, confidence, width, height)
        except DataError:
            self.stream.reset()  # a bad frame ends the run like a missing one and leaves no trace in the state
            raise
        kp, conf = convert(kp, self.layout, H36M17, conf)
        if not np.isfinite(kp).all():
            self.stream.reset()
            return None
        pose = self.stream.push(normalize_screen(kp, width, height), conf)
        if pose is None:
            return None
        f, c = assumed_intrinsics(width, height, self.focal)
        if self.fusion is not None:
            joints = self.fusion.push(kp, conf, [pose, self._world(world)], f, c)
            pose = joints - joints[H36M17.root]
        elif self.skeleton:
            total, n = self._lengths
            self._lengths = (total + bone_lengths(pose, H36M17), n + 1)
            pose = fit_skeleton(pose, symmetric_lengths(self._lengths[0] / self._lengths[1], H36M17), H36M17)
        self.root = root_trajectory(pose[None], kp[None], conf[None], f, c)[0]
        return pose

    def _world(self, world: np.ndarray | None) -> np.ndarray | None:
        """The detector's 3D as a root-relative H36M17 prior, None when absent or incomplete."""
        if world is None:
            return None
        w = np.asarray(world, np.float64)
        if w.shape != (self.layout.num_joints, 3):
            raise DataError(None, f"world has shape {w.shape}, expected ({self.layout.num_joints}, 3) for layout "
                                  f"{self.layout.name}")
        w = convert(w, self.layout, H36M17)[0]
        return w - w[H36M17.root] if np.isfinite(w).all() and np.abs(w).max() < 100.0 else None

    def _check_frame(self, keypoints_px, confidence, width, height) -> tuple[np.ndarray, np.ndarray, int, int]:
        """The frame as (J, 2) pixels, (J,) confidences in [0, 1] and the image size, or a DataError saying what is
        wrong: checked before anything reaches the stream, so a bad frame cannot leave NaN or inf in its state."""
        w, h = check_size((width, height), None, "width and height")
        try:
            kp = np.asarray(keypoints_px)
        except (TypeError, ValueError) as exc:  # ragged nested lists
            raise DataError(None, f"keypoints are not a (J, 2) array of pixels ({exc})") from None
        if kp.dtype.kind not in "iuf":
            raise DataError(None, f"keypoints must be numbers (pixels), got an array of {kp.dtype}")
        kp = kp.astype(np.float64)[..., :2]
        if kp.shape != (self.layout.num_joints, 2):
            raise DataError(None, f"keypoints have shape {kp.shape}, expected ({self.layout.num_joints}, 2) "
                                  f"for layout {self.layout.name}")
        finite = kp[np.isfinite(kp)]  # NaN / inf joints are joints not found (no complete person), as in files
        if finite.size and np.abs(finite).max() > MAX_COORD:
            raise DataError(None, f"keypoint coordinates reach {np.abs(finite).max():.3g}, not pixel positions "
                                  f"(at most {MAX_COORD:.0e})")
        check_inside(kp, w, h, None)
        if confidence is None:
            return kp, np.ones(len(kp)), w, h
        try:
            conf = np.asarray(confidence)
        except (TypeError, ValueError) as exc:
            raise DataError(None, f"confidence is not an array of {len(kp)} numbers ({exc})") from None
        if conf.dtype.kind not in "iuf" or conf.shape != (len(kp),):
            raise DataError(None, f"confidence must be {len(kp)} numbers (shape ({len(kp)},)), got an array of "
                                  f"{conf.dtype} with shape {conf.shape}")
        return kp, np.clip(np.nan_to_num(conf.astype(np.float64)), 0.0, 1.0), w, h

    def reset(self) -> None:
        """Start a new stream (another clip, or another person)."""
        self.stream.reset()
        self.root = None
        self._lengths = (np.zeros(len(H36M17.bones)), 0)
        if self.fusion is not None:
            self.fusion.reset()


__all__ = ["LiveLifter"]
