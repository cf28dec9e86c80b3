"""Multi-root 3D regression head (method 3, Park et al., Sec. 3.3), as a head for lifting MLPs.

Instead of predicting joints relative to the pelvis only, N_r = 6 separate output layers each
predict all joints relative to one root joint r (loss Eq. 6, 3D part: sum over r and j != r of
||R_j - (J_j - J_r)||^2). At test time every prediction is translated to zero mean and the six
are averaged (Eq. 7). bonelift's evaluation expects pelvis-relative non-root joints, so the
average is re-centred on its own pelvis afterwards; that is a translation, which leaves every
root-aligned and Procrustes-aligned metric equal to scoring the zero-mean average.

Root choice: the paper shows its six roots only in Fig. 3(b) and says they were picked so that
most joints are a root or a neighbour of one. We take the pelvis, the neck (Neck/Nose; the thorax
where a layout has no neck), both elbows and both knees: with the Human3.6M tree every one of the
17 joints is then a root or adjacent to one.

The paper's 2D-classification part (Eq. 1-3) needs image features and does not apply to lifting.
Per-root regression targets are scaled by the pelvis-relative z-score statistics of the output
(the pelvis row, zero in those statistics, gets the mean std), so the squared errors are in the
same units as every other bonelift loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bonelift.errors import BoneliftError
from bonelift.models.base import INITS, LayoutsMixin, LiftingModel, MaxNormLinear, ModelConfig, Normalizer
from bonelift.models.baseline import Baseline
from bonelift.models.options import NetworkOptions, switch

ROOT_NAMES: tuple[tuple[str, ...], ...] = (
    ("Hip",),
    ("Neck/Nose", "Thorax"),
    ("LElbow",),
    ("RElbow",),
    ("LKnee",),
    ("RKnee",),
)


def root_joints(config: LayoutsMixin) -> list[int]:
    """Indices in the output layout of the N_r = 6 roots (first available name of each entry)."""
    lay = config.out_layout
    roots = []
    for names in ROOT_NAMES:
        found = [n for n in names if n in lay.joints]
        if not found:
            raise BoneliftError(f"multi-root head: layout {lay.name} has none of {names}")
        roots.append(lay.index(found[0]))
    return roots


def other_joints(roots: list[int], num_joints: int) -> list[list[int]]:
    """Per root, the J - 1 other joints its output layer predicts relative to it (eq. 4), in layout order."""
    return [[j for j in range(num_joints) if j != r] for r in roots]


def scatter_roots(relative: torch.Tensor, others: torch.Tensor, num_joints: int) -> torch.Tensor:
    """(B, R, J-1, 3) joints relative to each root -> (B, R, J, 3), each root itself at zero."""
    full = relative.new_zeros(relative.shape[:2] + (num_joints, 3))
    index = others[None, :, :, None].expand(relative.shape[0], -1, -1, 3)
    return full.scatter(2, index, relative)


def combine_roots(relative: torch.Tensor, pelvis: int) -> torch.Tensor:
    """(B, R, J, 3) per-root predictions -> (B, J, 3) pose relative to its pelvis.

    Eq. 7: translate each prediction to zero mean, then average over roots; finally re-centre on
    the averaged pose's pelvis so the output matches single-root (pelvis) regression.
    """
    avg = (relative - relative.mean(dim=-2, keepdim=True)).mean(dim=1)
    return avg - avg[:, pelvis : pelvis + 1]


class MultiRootHead(nn.Module):
    """One linear output layer per root (Fig. 2 "fc2 3D"), each over the J - 1 non-root joints.

    `forward` maps hidden features to the raw normalised outputs (B, R, 3 (J - 1)), so the head can
    replace `ResidualMLP.head`; `relative`, `pose` and `loss` interpret them.
    """

    def __init__(self, config: ModelConfig, width: int, max_norm: bool) -> None:
        super().__init__()
        self.config = config
        lay = config.out_layout
        self.pelvis = lay.root
        roots = root_joints(config)
        # Separate layers break the symmetry between roots (Sec. 3.3).
        self.heads = nn.ModuleList(MaxNormLinear(width, 3 * (lay.num_joints - 1), max_norm) for _ in roots)
        others = other_joints(roots, lay.num_joints)
        self.register_buffer("roots", torch.tensor(roots, dtype=torch.long), persistent=False)
        self.register_buffer("others", torch.tensor(others, dtype=torch.long), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(h) for head in self.heads], dim=1)

    def _stats(self, normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
        """(J, 3) mean and std of pelvis-relative joints over the full layout (pelvis: 0, mean std)."""
        lay = self.config.out_layout
        out = self.config.out_joints
        mean = normalizer.out_mean.new_zeros(lay.num_joints, 3)
        std = normalizer.out_std.mean().expand(lay.num_joints, 3).clone()
        mean[out] = normalizer.out_mean.view(-1, 3)
        std[out] = normalizer.out_std.view(-1, 3)
        return mean, std

    def _relative_stats(self, normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, J-1, 3) mean of J_j - J_r and scale for each root's output joints."""
        mean, std = self._stats(normalizer)
        rel_mean = mean[self.others] - mean[self.roots][:, None]
        return rel_mean, std[self.others]

    def relative(self, raw: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
        """(B, R, J, 3) metres: joints relative to each root, the root itself at zero."""
        rel_mean, scale = self._relative_stats(normalizer)
        rel = raw.unflatten(-1, (-1, 3)) * scale + rel_mean
        return scatter_roots(rel, self.others, self.config.out_layout.num_joints)

    def pose(self, raw: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
        """Averaged prediction as the usual normalised pelvis-relative non-root vector (B, 3 J_out)."""
        avg = combine_roots(self.relative(raw, normalizer), self.pelvis)
        return normalizer.norm_out(avg[:, self.config.out_joints])

    def loss(self, raw: torch.Tensor, target: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
        """Eq. 6 (3D part), mean over roots, joints j != r and coordinates, in normalised units."""
        lay = self.config.out_layout
        gt = target.new_zeros(target.shape[0], lay.num_joints, 3)
        gt[:, self.config.out_joints] = normalizer.denorm_out(target)
        rel_gt = gt[:, self.others] - gt[:, self.roots][:, :, None]  # (B, R, J-1, 3): J_j - J_r
        rel_mean, scale = self._relative_stats(normalizer)
        return ((raw.unflatten(-1, (-1, 3)) - (rel_gt - rel_mean) / scale) ** 2).mean()


class MultiRootBaseline(Baseline):
    """Martinez et al.'s network with the multi-root head in place of its single output layer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.net.head = MultiRootHead(config, config.hidden, config.max_norm)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raw, _ = self.net(x)
        return {"pose": self.net.head.pose(raw, self.normalizer), "roots": raw}

    def loss(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        total = self.net.head.loss(outputs["roots"], target, self.normalizer)
        return {"total": total, "multi_root": total}


@dataclass(frozen=True)
class BaselineOptions(NetworkOptions):
    """Options of the residual-MLP baseline (registry entry "baseline")."""

    multi_root: bool = switch(False, "method 3's multi-root head (eq. 6 loss, eq. 7 combination) as output layer")
    init: str = switch("kaiming", "weight initialisation: Kaiming (He) or PyTorch's default", INITS)


def baseline(config: ModelConfig) -> LiftingModel:
    """Registry entry "baseline": the multi-root variant when option `multi_root` is true."""
    multi = BaselineOptions.parse(config.options, config.name).multi_root
    return MultiRootBaseline(config) if multi else Baseline(config)
