"""Temporal training windows over a split: every sequence edge-padded (`geometry.pad_edges`, the one
padding rule) and concatenated, with the index arithmetic that cuts a window for any (sequence, frame)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bonelift.datasets.common import PoseSequence
from bonelift.errors import DataError
from bonelift.geometry import pad_edges


class WindowData:
    """All sequences of a split, edge-padded and concatenated, with index arithmetic for windows."""

    def __init__(self, seqs: list[PoseSequence], pad: tuple[int, int],
                 prepare: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """`pad`: frames of context (before, after) a window needs around its frame; `prepare` maps each
        sequence's whole screen (T, J, 2) before windows are cut (e.g. `geometry.reframe_clip`)."""
        if not seqs:
            raise DataError(None, "no sequences")
        self.seqs = seqs
        self.left, right = pad
        self.rf = self.left + right + 1
        screens, confs, targets, starts, lengths = [], [], [], [], []
        off = 0
        for s in seqs:
            x = torch.from_numpy(np.ascontiguousarray(prepare(s.screen) if prepare else s.screen, np.float32))
            screens.append(pad_edges(x, self.left, right))
            c = (
                torch.from_numpy(s.confidence.astype(np.float32))
                if s.confidence is not None
                else torch.ones(x.shape[:2])
            )
            confs.append(pad_edges(c, self.left, right))
            targets.append(torch.from_numpy(s.root_relative.astype(np.float32)))
            starts.append(off)
            lengths.append(len(s))
            off += len(s) + self.rf - 1
        self.screen, self.conf = torch.cat(screens), torch.cat(confs)
        self.targets = torch.cat(targets)
        self.starts = torch.tensor(starts)
        self.lengths = torch.tensor(lengths)
        self.target_starts = torch.cumsum(torch.tensor([0, *lengths[:-1]]), 0)

    def frames(self, stride: int) -> torch.Tensor:
        """(N, 2) (sequence, frame) pairs of every stride-th frame."""
        return torch.cat(
            [
                torch.stack([torch.full((len(range(0, n, stride)),), i), torch.arange(0, n, stride)], 1)
                for i, n in enumerate(self.lengths.tolist())
            ]
        )

    def windows(self, seq: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = (self.starts[seq] + t)[:, None] + torch.arange(self.rf)
        return self.screen[idx], self.conf[idx]

    def frame_screen(self, seq: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.screen[self.starts[seq] + self.left + t]

    def target(self, seq: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.targets[self.target_starts[seq] + t]
