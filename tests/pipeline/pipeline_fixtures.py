"""Helpers of the pipeline tests: synthetic people and a tiny random lifter checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bonelift.checkpoints import save_model
from bonelift.config import TrainConfig, VideoTrainConfig
from bonelift.models import VIDEO, ModelConfig, VideoModelConfig, build_model
from bonelift.skeletons import H36M17

# A standing person in camera coordinates (metres, x right, y down, z forward), pelvis at the origin.
STANDING = np.array([
    [0.0, 0.0, 0.0], [-0.13, 0.0, 0.0], [-0.14, 0.45, 0.02], [-0.15, 0.88, 0.05],
    [0.13, 0.0, 0.0], [0.14, 0.45, 0.02], [0.15, 0.88, 0.05], [0.0, -0.24, 0.0],
    [0.0, -0.49, 0.0], [0.0, -0.6, -0.08], [0.0, -0.7, 0.0], [0.17, -0.47, 0.0],
    [0.22, -0.2, 0.0], [0.25, 0.05, -0.05], [-0.17, -0.47, 0.0], [-0.22, -0.2, 0.0], [-0.25, 0.05, -0.05],
])


def walking_poses(frames: int, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) root-relative poses that swing arms and legs a little, plus noise."""
    rng = np.random.default_rng(seed)
    poses = np.repeat(STANDING[None], frames, axis=0)
    phase = np.sin(np.linspace(0, 2 * np.pi, frames))[:, None]
    for name, sign in (("RKnee", 1), ("RFoot", 1), ("LKnee", -1), ("LFoot", -1), ("LWrist", 1), ("RWrist", -1)):
        poses[:, H36M17.index(name), 2] += 0.2 * sign * phase[:, 0]
    return poses + rng.normal(0, 0.005, poses.shape) * (np.arange(17) > 0)[None, :, None]


def save_tiny_checkpoint(path: Path, hidden: int = 32) -> Path:
    """A randomly initialised bonelift checkpoint whose output mean is a standing person."""
    torch.manual_seed(0)
    config = TrainConfig(model=ModelConfig(hidden=hidden, blocks=1, dropout=0.0))
    model = build_model(config.model)
    model.normalizer.out_mean.copy_(torch.from_numpy(STANDING[1:].ravel()))
    model.normalizer.out_std.fill_(0.03)
    return save_model(path, model, config)


def save_tiny_video_checkpoint(path: Path, name: str = "tcn", causal: bool = False, receptive_field: int = 9) -> Path:
    """A randomly initialised video lifter (`tcn` or method 5 `bone`) that takes keypoint confidences."""
    torch.manual_seed(1)
    config = VideoTrainConfig(model=VideoModelConfig(name=name, receptive_field=receptive_field, channels=16,
                                                     dropout=0.0, causal=causal, confidence=True))
    return save_model(path, build_model(config.model), config, VIDEO)


def write_demo_frames(folder: Path, count: int = 3) -> Path:
    """The first `count` frames of the bundled demo clip as PNG files in `folder` (an image-folder input)."""
    import cv2

    from bonelift.pipeline import DEMO_CLIP

    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    for i in range(count):
        ok, img = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    cap.release()
    return folder
