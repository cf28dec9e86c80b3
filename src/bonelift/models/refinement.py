"""Pieces shared by the hard-joint refinement networks of method 1 (HSN) and method 2 (ASN).

Both papers cascade a refinement MLP after the Martinez et al. basic network: the refinement reads
the basic network's 3D output, re-predicts the output vector, and only its hard joints are kept
and supervised (indicator q of method 1 Eq. 2 / method 2 Eq. 2).
"""

from __future__ import annotations

import torch
from torch import nn

from bonelift.models.base import MaxNormLinear, ModelConfig, out_joint_mask
from bonelift.models.baseline import DenseBlock
from bonelift.skeletons import Layout


def joints_by_name(layout: Layout, names: tuple[str, ...]) -> list[int]:
    """Indices in `layout` of the named joints it has, in layout order; absent names are skipped.

    Channel and root membership is defined by name so the same definitions hold for the 17-joint
    Human3.6M layout, the 16-joint Stacked Hourglass one (no Neck/Nose) and HumanEva's 15 joints.
    """
    wanted = set(names)
    return [j for j, n in enumerate(layout.joints) if n in wanted]


def hard_mask(config: ModelConfig, joints: list[int] | None = None) -> torch.Tensor:
    """Indicator q over the 3 * J_out output units: hard joints (of `joints`, if given) are 1."""
    hard = config.out_layout.hard_joints
    if joints is not None:
        hard = tuple(j for j in hard if j in joints)
    return out_joint_mask(config, hard)


REFINES = ("residual", "absolute")
FUSION_POINTS = ("last", "first")


class RefinementBranch(nn.Module):
    """Two dense layers of `width` units and a linear head (method 1 Fig. 3, method 2 Sec. 2.2).

    `skip`, when given, is the basic network's feature fused into the branch ("residual connection"):
    added to the branch's last hidden feature (`at="last"`, method 2 Sec. 2.3's "directly connect the
    final 2D feature and the final 3D feature", which is also method 1's "wo dual" row: both papers
    report 66.78 mm for it) or, as bonelift did before, after the first layer (`at="first"`).

    With `residual=True` the head predicts a correction to the basic estimate and starts at zero, so
    the refined joints equal the basic network's at initialisation (method 1's abstract: the refinement
    is cascaded "in a residual learning manner"); `residual=False` predicts the joints outright.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, dropout: float, max_norm: bool,
                 residual: bool = True) -> None:
        super().__init__()
        self.layer1 = DenseBlock(in_dim, width, dropout, max_norm)
        self.layer2 = DenseBlock(width, width, dropout, max_norm)
        self.head = MaxNormLinear(width, out_dim, max_norm)
        self.residual = residual
        self.start_at_identity()

    def start_at_identity(self) -> None:
        """Zero the head of a residual branch (called again after any re-initialisation)."""
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor, skip: torch.Tensor | None = None, at: str = "last") -> torch.Tensor:
        h = self.layer1(x)
        if skip is not None and at == "first":
            h = h + skip
        h = self.layer2(h)
        if skip is not None and at == "last":
            h = h + skip
        return h

    def output(self, feature: torch.Tensor, basic: torch.Tensor) -> torch.Tensor:
        """The branch's joints from its last feature: basic + correction, or the head's joints outright."""
        out = self.head(feature)
        return basic + out if self.residual else out
