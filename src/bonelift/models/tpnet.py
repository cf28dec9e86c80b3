"""TP-Net (method 4, Sec. 4.2): a fully connected network over a window of a single-frame model's
predicted poses that outputs the refined pose of one frame.

Online: the current prediction and the 19 before it (N = 20, no future frame). Bidirectional
("semi-online"): 10 predictions on either side of the frame and the frame itself. The poses of the
window are flattened and concatenated, passed through `layers` ReLU layers of `hidden` = 4096
units, and trained with an L2 loss against ground truth on the training sequences' predictions.
Deviation: the network outputs a correction added to the frame's own prediction (same function
class, but the untrained net starts at the identity, which trains faster on a CPU budget).
Windows that run past a sequence's ends repeat its first or last pose (`geometry.edge_indices`).

Time step: the paper counts "5 time-steps (or 200 ms time-window)", i.e. 40 ms per step (25 fps), so
the window's poses are `frame_step` frames apart: 2 at Human3.6M's 50 Hz (the default of new runs).
Checkpoints saved before the field existed used every frame and load with `frame_step` 1
(`compat.LEGACY_FIELDS`).
Training is in `training.tpnet`, batch refinement in `evaluation`, streaming in `streaming`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bonelift.models.base import zscore_stats


@dataclass
class TPNetConfig:
    """Window (`past` frames before, `future` after the refined frame) and network size."""

    past: int = 19
    future: int = 0
    hidden: int = 4096
    layers: int = 2
    joints: int = 17
    root: int = 0  # root joint, kept at the origin
    frame_step: int = field(
        default=2,
        metadata={"help": "frames between the window's poses (paper: 40 ms steps; 2 at 50 Hz)", "min": 1},
    )
    name: str = "tpnet"  # registry name, so every network configuration names its network

    @classmethod
    def online(cls, **kw: Any) -> TPNetConfig:
        return cls(past=19, future=0, **kw)

    @classmethod
    def bidirectional(cls, **kw: Any) -> TPNetConfig:
        return cls(past=10, future=10, **kw)

    @classmethod
    def single_frame(cls, **kw: Any) -> TPNetConfig:
        """The frame's own pose only: the same refiner without time, a control for what the window adds."""
        return cls(past=0, future=0, **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def window(self) -> int:
        """Poses the network sees."""
        return self.past + 1 + self.future

    @property
    def span(self) -> int:
        """Frames the window covers: a stream keeps this many."""
        return (self.past + self.future) * self.frame_step + 1

    @property
    def offsets(self) -> np.ndarray:
        """Frame offsets of the window's poses from the refined frame."""
        return np.arange(-self.past, self.future + 1) * self.frame_step


class TPNet(nn.Module):
    """(B, window, J, 3) root-relative metres -> (B, J, 3) refined pose of the window's frame `past`."""

    def __init__(self, config: TPNetConfig) -> None:
        super().__init__()
        self.config = config
        dim = 3 * config.joints
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        layers: list[nn.Module] = []
        width = config.window * dim
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.ReLU()]
            width = config.hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def fit_normalizer(self, poses: np.ndarray) -> None:
        """Z-score statistics of poses (N, J, 3), so every coordinate enters the network at unit scale."""
        mean, std = zscore_stats(poses)
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x = (window.flatten(-2) - self.mean) / self.std  # (B, W, 3J)
        delta = self.net(x.flatten(-2)) * self.std
        out = (window[:, self.config.past].flatten(-2) + delta).unflatten(-1, (-1, 3))
        out[..., self.config.root, :] = 0.0
        return out
