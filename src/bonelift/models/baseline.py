"""Residual-MLP lifting baseline: Martinez et al., "A simple yet effective baseline for 3d human
pose estimation" (ICCV 2017), Sec. 3 and Fig. 1.

Linear(2J -> 1024) + BN + ReLU + Dropout, then `blocks` residual modules of two such layers, then
Linear(1024 -> 3J'). All weight matrices are max-norm constrained. Training kernels (`RunConfig.kernels`): by
default the max-norm factor scales each layer's output and dropout masks come from 16-bit random draws
(`base.MaxNormLinear`, `base.Dropout`): the same function as rescaling the weights and torch's dropout, cheaper
on CPU; `--kernels reference` trains exactly as runs before December 2026 did.
"""

from __future__ import annotations

import torch
from torch import nn

from bonelift.models.base import Dropout, LiftingModel, MaxNormLinear, ModelConfig


class DenseBlock(nn.Sequential):
    """Linear + batch norm + ReLU + dropout: the unit every structure-aware MLP is built from."""

    def __init__(self, in_features: int, out_features: int, dropout: float, max_norm: bool) -> None:
        super().__init__(
            MaxNormLinear(in_features, out_features, max_norm),
            nn.BatchNorm1d(out_features),
            nn.ReLU(),
            Dropout(dropout),
        )


class ResidualModule(nn.Module):
    """Two dense blocks with an identity skip (Fig. 1 of Martinez et al.)."""

    def __init__(self, width: int, dropout: float, max_norm: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            DenseBlock(width, width, dropout, max_norm), DenseBlock(width, width, dropout, max_norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class ResidualMLP(nn.Module):
    """Input block, residual modules, and a linear head; exposes the intermediate features.

    Returns the prediction and the list of features after the input block and after each module,
    which the structure-aware refinements (methods 1 and 2) consume.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, blocks: int, dropout: float, max_norm: bool) -> None:
        super().__init__()
        self.inp = DenseBlock(in_dim, width, dropout, max_norm)
        self.modules_ = nn.ModuleList(ResidualModule(width, dropout, max_norm) for _ in range(blocks))
        self.head = MaxNormLinear(width, out_dim, max_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.inp(x)
        feats = [h]
        for m in self.modules_:
            h = m(h)
            feats.append(h)
        return self.head(h), feats


class Baseline(LiftingModel):
    """Martinez et al.'s network: predicts all non-root joints in one pass."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.net = ResidualMLP(self.in_dim, self.out_dim, config.hidden, config.blocks, config.dropout, config.max_norm)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pose, _ = self.net(x)
        return {"pose": pose}
