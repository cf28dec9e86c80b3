"""Frame-by-frame lifting of a live stream, with memory bounded by the model's window, and its latency.

`StreamingLifter` runs a video lifter (`tcn`, `bone`) one frame at a time; `TPNetStream` refines a
single-frame model's poses one frame at a time. `latency_ms` is the one latency statistic of the
project: the median wall time of one `push` after a warm-up, in milliseconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bonelift.errors import BoneliftError, DataError
from bonelift.geometry import RunningReframe
from bonelift.models import TPNet
from bonelift.models.bone_video import BoneVideoLifter
from bonelift.models.tcn import VideoModelConfig

# Largest normalised screen coordinate a frame may have: pixels up to a million in an image one pixel wide. Beyond
# it a frame is not keypoints, and float32 arithmetic on it would overflow into the stream's running state.
MAX_SCREEN = 1e7


class StreamingLifter:
    """Frame-by-frame lifting of a live stream with memory bounded by the receptive field.

    `push(keypoints, confidence)` takes one frame's screen keypoints (J, 2) (and its confidences (J,)
    when the model was built for them) and returns the pose (J_out, 3) of
    the newest frame whose window is complete: the pushed frame for causal models, the frame
    `RF // 2` pushes ago otherwise (None until then); `flush()` returns the poses of those last
    frames at the end of the stream (windows end-padded by repeating the last frame, as offline).
    The stream start is padded by repeating the first frame, as in offline inference.

    Method 5's bone lengths are pooled over every frame pushed so far with the model's running
    softmax (`causal_pool`, constant memory). For a causal model that is exactly offline causal
    inference, frame by frame; a centred model's offline lengths use the whole video, which a
    stream cannot know, so its streamed poses use the frames up to the newest pushed one instead.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.model = model.eval()
        self.config: VideoModelConfig = model.config
        self.device = torch.device(device)
        self.buffer: deque[torch.Tensor] = deque(maxlen=self.config.receptive_field)
        self.conf_buffer: deque[torch.Tensor] = deque(maxlen=self.config.receptive_field)
        self.seen = 0
        self.pending = 0  # pushed frames whose pose has not been returned yet
        self.is_bone = isinstance(model, BoneVideoLifter)
        trunk = model.direction[0] if self.is_bone else model.backbone
        self.takes_confidence = trunk.score is not None  # the visibility-score branch reads confidences
        self.state: tuple[torch.Tensor, ...] | None = None
        self.lengths: torch.Tensor | None = None
        self.reframe = RunningReframe(self.config.in_layout) if getattr(self.config, "reframe", False) else None

    @torch.no_grad()
    def push(self, keypoints: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray | None:
        """One frame's screen keypoints (J, 2) and, for a model built for them, its confidences (J,).

        A frame that is not finite numeric (J, 2) screen coordinates within `MAX_SCREEN` (or whose confidences are
        missing or misshapen) raises a DataError after `reset()`: the stream starts anew with the next frame
        instead of carrying NaN or inf in its buffer, bone-length pool or running framing.
        """
        try:
            keypoints, confidence = self._check_frame(keypoints, confidence)
        except DataError:
            self.reset()
            raise
        if self.reframe is not None:  # the model's clip framing, with the means over the frames pushed so far
            keypoints = self.reframe(keypoints)
        x = torch.as_tensor(keypoints, device=self.device)
        if self.takes_confidence:
            c = torch.as_tensor(confidence, device=self.device)
        if not self.buffer:
            for _ in range(self.config.pad[0]):
                self.buffer.append(x)
                if self.takes_confidence:
                    self.conf_buffer.append(c)
        self.buffer.append(x)
        if self.takes_confidence:
            self.conf_buffer.append(c)
        self.seen += 1
        self.pending += 1
        if self.is_bone:
            att, lengths = self.model.frame_estimates(x[None])
            pooled, self.state = self.model.causal_pool(att, lengths, self.state)
            self.lengths = pooled
        if len(self.buffer) < self.config.receptive_field:
            return None
        return self._emit()

    def _check_frame(self, keypoints, confidence) -> tuple[np.ndarray, np.ndarray | None]:
        """(J, 2) float32 screen keypoints and (J,) float32 confidences (None for a model without them)."""
        joints = self.config.in_layout.num_joints
        try:
            x, c = np.asarray(keypoints), None if confidence is None else np.asarray(confidence)
        except (TypeError, ValueError) as exc:
            raise DataError(None, f"a frame must be a ({joints}, 2) array of screen coordinates ({exc})") from None
        if x.dtype.kind not in "iuf" or x.shape != (joints, 2):
            raise DataError(None, f"a frame must be a ({joints}, 2) array of screen coordinates, got an array of "
                                  f"{x.dtype} with shape {x.shape}")
        x = x.astype(np.float32)
        if not (np.isfinite(x).all() and np.abs(x).max() <= MAX_SCREEN):
            raise DataError(None, f"frame coordinates must be finite and within +-{MAX_SCREEN:.0e} (normalised "
                                  "screen units)")
        if not self.takes_confidence:
            return x, None
        if c is None:
            raise DataError(None, "this lifter was trained with keypoint confidences; pass them to push()")
        if c.dtype.kind not in "iuf" or c.shape != (joints,) or not np.isfinite(c).all():
            raise DataError(None, f"confidence must be {joints} finite numbers, got an array of {c.dtype} with "
                                  f"shape {c.shape}")
        return x, c.astype(np.float32)

    @torch.no_grad()
    def _emit(self) -> np.ndarray:
        self.pending -= 1
        window = torch.stack(list(self.buffer))[None]
        conf = torch.stack(list(self.conf_buffer))[None] if self.takes_confidence else None
        if self.is_bone:
            pose = self.model.fuse(self.model.directions(window, conf)[-1], self.lengths)
        else:
            pose = self.model(window, conf)["pose"][:, 0]
        return pose[0].cpu().numpy()

    @torch.no_grad()
    def flush(self) -> list[np.ndarray]:
        """Poses of the frames still waiting for future context (windows end-padded), in order; resets the stream."""
        out = []
        while self.pending > 0 and self.buffer:
            self.buffer.append(self.buffer[-1])
            if self.takes_confidence:
                self.conf_buffer.append(self.conf_buffer[-1])
            if len(self.buffer) == self.buffer.maxlen:
                out.append(self._emit())
        self.reset()
        return out

    def reset(self) -> None:
        """Forget the stream (a new clip starts with the next push, padded by its first frame)."""
        self.buffer.clear()
        self.conf_buffer.clear()
        self.seen = self.pending = 0
        self.state = self.lengths = None
        self.reframe = RunningReframe(self.config.in_layout) if self.reframe is not None else None


class TPNetStream:
    """Frame-by-frame refinement with memory bounded by the window: `push(pose)` per new prediction.

    Online models return the refined pose of the pushed frame. Bidirectional models answer with a
    lag of `future * frame_step` frames (None until then) and `flush()` returns the last ones at the
    end of the stream. The buffer holds the window's whole span (`past * frame_step` frames before the
    refined one), of which every `frame_step`-th pose enters the network. Results equal
    `refine_sequence` on the whole sequence.
    """

    def __init__(self, model: TPNet) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.buffer: deque[torch.Tensor] = deque(maxlen=model.config.span)
        self.pending = 0

    @torch.no_grad()
    def _emit(self) -> np.ndarray:
        self.pending -= 1
        window = list(self.buffer)[:: self.model.config.frame_step]
        return self.model(torch.stack(window)[None].to(self.device))[0].cpu().numpy()

    def push(self, pose: np.ndarray) -> np.ndarray | None:
        p = torch.as_tensor(np.asarray(pose, np.float32))
        if not self.buffer:
            self.buffer.extend([p] * (self.model.config.past * self.model.config.frame_step))
        self.buffer.append(p)
        self.pending += 1
        return self._emit() if len(self.buffer) == self.buffer.maxlen else None

    def flush(self) -> list[np.ndarray]:
        """Refined poses of the frames still waiting for future context (end-padded), in order."""
        out = []
        while self.pending > 0:
            self.buffer.append(self.buffer[-1])
            if len(self.buffer) == self.buffer.maxlen:
                out.append(self._emit())
        self.buffer.clear()
        return out


def latency_ms(push: Callable[[Any], object], frames: Sequence[Any], warmup: int = 20) -> float:
    """Median wall time in milliseconds of `push(frame)` over `frames`, not counting the first `warmup` pushes
    (a frame is whatever `push` takes: screen keypoints, or a tuple a wrapper unpacks)."""
    times = []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        push(frame)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    if not times:
        raise BoneliftError(f"latency needs more than {warmup} frames, got {len(frames)}")
    return float(np.median(times) * 1000)


def streaming_latency_ms(
    model: nn.Module, screen: np.ndarray, frames: int = 300, confidence: np.ndarray | None = None
) -> float:
    """`latency_ms` of a video lifter's `StreamingLifter` on the first `frames` frames of `screen` (J, 2 each)
    (and `confidence` (T, J), for a model that takes them; ones when missing), the warm-up covering the receptive
    field (the pushes that only fill the buffer)."""
    clip = screen[:frames]
    stream = StreamingLifter(model)
    warmup = min(model.config.receptive_field, len(clip) - 1)
    if not stream.takes_confidence:
        return latency_ms(stream.push, clip, warmup=warmup)
    conf = np.ones(clip.shape[:2], np.float32) if confidence is None else confidence[:frames]
    return latency_ms(lambda t: stream.push(clip[t], conf[t]), range(len(clip)), warmup=warmup)


def tpnet_latency_ms(model: TPNet, frames: int = 200, warmup: int = 20) -> float:
    """`latency_ms` of `TPNetStream.push` on the model's device (a constant pose: the cost does not depend on it)."""
    stream = TPNetStream(model)
    pose = np.zeros((model.config.joints, 3), np.float32)
    return latency_ms(stream.push, [pose] * (warmup + frames), warmup=warmup)
