"""TP-Net (method 4, Sec. 4.2): a fully connected network over a window of a single-frame model's
predicted poses that outputs the refined pose of one frame.

Online: the current prediction and the 19 before it (N = 20, no future frame). Bidirectional
("semi-online"): 10 predictions on either side of the frame and the frame itself. The poses of the
window are flattened and concatenated, passed through `layers` ReLU layers of `hidden` = 4096
units, and trained with an L2 loss against ground truth on the training sequences' predictions.
Deviation: the network outputs a correction added to the frame's own prediction (same function
class, but the untrained net starts at the identity, which trains faster on a CPU budget).
Windows that run past a sequence's ends repeat its first or last pose, in batch and in streaming.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bonelift.errors import DataError, atomic_path

TPNET_FORMAT = "bonelift-tpnet-v1"


@dataclass
class TPNetConfig:
    """Window (`past` frames before, `future` after the refined frame) and network size."""

    past: int = 19
    future: int = 0
    hidden: int = 4096
    layers: int = 2
    joints: int = 17
    root: int = 0  # root joint, kept at the origin

    @classmethod
    def online(cls, **kw: Any) -> TPNetConfig:
        return cls(past=19, future=0, **kw)

    @classmethod
    def bidirectional(cls, **kw: Any) -> TPNetConfig:
        return cls(past=10, future=10, **kw)

    @property
    def window(self) -> int:
        return self.past + 1 + self.future

    @property
    def offsets(self) -> np.ndarray:
        return np.arange(-self.past, self.future + 1)


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
        flat = poses.reshape(len(poses), -1).astype(np.float64)
        self.mean.copy_(torch.from_numpy(flat.mean(0)))
        self.std.copy_(torch.from_numpy(np.maximum(flat.std(0), 1e-6)))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x = (window.flatten(-2) - self.mean) / self.std  # (B, W, 3J)
        delta = self.net(x.flatten(-2)) * self.std
        out = (window[:, self.config.past].flatten(-2) + delta).unflatten(-1, (-1, 3))
        out[..., self.config.root, :] = 0.0
        return out


def window_indices(length: int, offsets: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(len(centers), W) frame indices of each centre's window, clipped to the sequence (edge padding)."""
    return np.clip(centers[:, None] + offsets[None, :], 0, length - 1)


@torch.no_grad()
def refine_sequence(model: TPNet, poses: np.ndarray, centers: np.ndarray | None = None, batch_size: int = 2048,
                    device: str | torch.device | None = None) -> np.ndarray:
    """Refined poses (len(centers), J, 3) of one sequence of predictions (T, J, 3) at `centers` (default: all)."""
    model.eval()
    device = device or next(model.parameters()).device
    centers = np.arange(len(poses)) if centers is None else np.asarray(centers)
    idx = window_indices(len(poses), model.config.offsets, centers)
    src = torch.from_numpy(np.asarray(poses, np.float32))
    out = [model(src[idx[i : i + batch_size]].to(device)).cpu() for i in range(0, len(idx), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0,) + poses.shape[1:], np.float32)


class TPNetStream:
    """Frame-by-frame refinement with memory bounded by the window: `push(pose)` per new prediction.

    Online models return the refined pose of the pushed frame. Bidirectional models answer with a
    lag of `future` frames (None until then) and `flush()` returns the last ones at the end of the
    stream. Results equal `refine_sequence` on the whole sequence.
    """

    def __init__(self, model: TPNet) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.buffer: deque[torch.Tensor] = deque(maxlen=model.config.window)
        self.pending = 0

    @torch.no_grad()
    def _emit(self) -> np.ndarray:
        self.pending -= 1
        return self.model(torch.stack(list(self.buffer))[None].to(self.device))[0].cpu().numpy()

    def push(self, pose: np.ndarray) -> np.ndarray | None:
        p = torch.as_tensor(np.asarray(pose, np.float32))
        if not self.buffer:
            self.buffer.extend([p] * self.model.config.past)
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


def train_tpnet(
    preds: list[np.ndarray], gts: list[np.ndarray], config: TPNetConfig, epochs: int = 30, lr: float = 3e-4,
    batch_size: int = 256, sample_stride: int = 1, seed: int = 0, device: str | torch.device = "cpu",
    progress: bool = True,
) -> TPNet:
    """Fit TP-Net on a single-frame model's predictions (T, J, 3) per sequence against ground truth.

    Every `sample_stride`-th frame is a training target (its window uses the full frame rate).
    Adam, as in the paper (30 epochs there), with an exponential decay to lr/10 over the run.
    """
    if not preds or len(preds) != len(gts) or any(len(p) != len(g) for p, g in zip(preds, gts)):
        raise DataError(None, "TP-Net needs one ground-truth sequence per predicted sequence, of equal length")
    torch.manual_seed(seed)
    model = TPNet(config)
    all_pred = np.concatenate(preds).astype(np.float32)
    model.fit_normalizer(all_pred)
    model.to(device)
    starts = np.cumsum([0] + [len(p) for p in preds[:-1]])
    centers, first, last = [], [], []
    for s, p in zip(starts, preds):
        c = np.arange(0, len(p), sample_stride)
        centers.append(s + c)
        first.append(np.full(len(c), s))
        last.append(np.full(len(c), s + len(p) - 1))
    centers, first, last = (np.concatenate(a) for a in (centers, first, last))
    src = torch.from_numpy(all_pred)
    tgt = torch.from_numpy(np.concatenate(gts).astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, epochs * (len(centers) // batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.1 ** (step / steps))
    rng = np.random.default_rng(seed)
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(centers))
        total = 0.0
        n_batches = len(order) // batch_size
        for b in tqdm(range(n_batches), desc=f"tpnet {epoch + 1}/{epochs}", disable=not progress, leave=False):
            sel = order[b * batch_size : (b + 1) * batch_size]
            idx = np.clip(centers[sel, None] + config.offsets[None], first[sel, None], last[sel, None])
            window = src[idx].to(device)
            target = tgt[centers[sel]].to(device)
            loss = (((model(window) - target) / model.std.unflatten(-1, (-1, 3))) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if progress:
            tqdm.write(f"tpnet epoch {epoch + 1}: loss {total / max(n_batches, 1):.4f}")
    return model.eval()


def save_tpnet(model: TPNet, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": TPNET_FORMAT, "config": asdict(model.config), "model": model.state_dict()}, tmp)


def load_tpnet(path: str | Path, device: str | torch.device = "cpu") -> TPNet:
    from bonelift.training import load_checkpoint

    ckpt = load_checkpoint(path, device, fmt=TPNET_FORMAT, what="TP-Net checkpoint")
    model = TPNet(TPNetConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def latency_ms(model: TPNet, frames: int = 200, warmup: int = 20) -> float:
    """Median wall time of one `TPNetStream.push` in milliseconds, on the model's device."""
    import time

    stream = TPNetStream(model)
    pose = np.zeros((model.config.joints, 3), np.float32)
    times = []
    for i in range(warmup + frames):
        t0 = time.perf_counter()
        stream.push(pose)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000) if times else math.nan
