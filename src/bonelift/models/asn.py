"""Articulated structure-aware network (method 2: refinement + attention module + random enhancement).

Sec. 2.1: basic network (Martinez et al., 2 residual modules) with loss L1 on all joints (Eq. 1).
Sec. 2.2: a refinement network of 2 dense layers of 1024 units reads the basic network's 3D output
and re-predicts the hard joints; its loss L2 is masked by the hard-joint indicator q (Eq. 2), and
L = L1 + L2 (Eq. 3). Sec. 2.3: the attention module (AM) fuses basic-network ("2D") features
F_i into the refinement's last feature F* (Eq. 6-8); the "AM*" ablation instead adds the last
basic feature unweighted. Sec. 2.4: the random enhancement module (REM) wraps ReLU and Dropout
in a residual connection, used only in the first layer of the basic network.

Table 2 ablation, by registry name: basic-ref (no fusion), basic-ref-amstar (AM*),
basic-ref-am (AM), asn (AM + REM). `options={"multi_root": True}` swaps the basic network's
output layer for method 3's multi-root head (L1 then becomes that head's Eq. 6 loss).

Readings of the paper where it is not explicit. Residual refinement (option `refine`, default
"residual"): the refinement predicts a correction to the basic estimate with its head initialised to
zero, as method 1's abstract states for the same cascade ("in a residual learning manner"); method 2
does not say, and "absolute" (the head predicts the joints outright) is kept so the difference is
measured. Initialisation: Kaiming, as Sec. 3 states (option `init`). The fused feature F* is the
refinement's last hidden feature (Sec. 2.3);  the AM's 2D features are the outputs of the basic
network's residual modules (m = 2, the two 2D features (a) and (e) of Fig. 3), each taken after
its last dropout as Sec. 2.3 asks; w_i is a vector of the feature width, initialised to zero
(every attention starts at 0.5); REM replaces the ReLU and Dropout of the first layer, giving
Linear, BatchNorm, then x + Dropout(ReLU(x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bonelift.errors import BoneliftError
from bonelift.losses import masked_sq_error
from bonelift.models.base import INITS, Dropout, LiftingModel, ModelConfig
from bonelift.models.baseline import ResidualMLP
from bonelift.models.multiroot import MultiRootHead
from bonelift.models.options import NetworkOptions, switch
from bonelift.models.refinement import REFINES, RefinementBranch, hard_mask

FUSIONS = ("none", "plain", "attention")


@dataclass(frozen=True)
class ASNOptions(NetworkOptions):
    """Options of method 2's networks (basic-ref, basic-ref-amstar, basic-ref-am, asn)."""

    multi_root: bool = switch(False, "method 3's multi-root head as the basic network's output layer")
    refine: str = switch("residual", "refinement head: a correction to the basic estimate (zero-initialised) or "
                                     "the joints outright", REFINES)
    init: str = switch("kaiming", "weight initialisation: Kaiming (He) or PyTorch's default", INITS)


class AttentionModule(nn.Module):
    """Eq. 6-8: F* <- F* + sum_i (1 - sigmoid(w_i * ||F_i - F*||_2)) * F_i."""

    def __init__(self, num_features: int, width: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(num_features, width))

    def forward(self, f_star: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        if len(feats) != len(self.w):
            raise BoneliftError(f"attention module expects {len(self.w)} features, got {len(feats)}")
        out = f_star
        for w_i, f_i in zip(self.w, feats):
            sim = w_i * torch.linalg.vector_norm(f_i - f_star, dim=-1, keepdim=True)  # Eq. 6
            att = 1.0 - torch.sigmoid(sim)  # Eq. 7
            out = out + att * f_i  # Eq. 8
        return out


class RandomEnhancement(nn.Module):
    """REM (Sec. 2.4, Fig. 4): x + Dropout(ReLU(x)); in eval mode x + ReLU(x)."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(torch.relu(x))


class ASN(LiftingModel):
    """Basic network + single refinement branch, with optional AM / AM* fusion and REM."""

    def __init__(self, config: ModelConfig, fusion: str = "attention", rem: bool = True) -> None:
        super().__init__(config)
        if fusion not in FUSIONS:
            raise BoneliftError(f"unknown fusion {fusion!r} (known: {', '.join(FUSIONS)})")
        self.fusion = fusion
        opt = ASNOptions.parse(config.options, config.name)
        self.net = ResidualMLP(self.in_dim, self.out_dim, config.hidden, config.blocks, config.dropout, config.max_norm)
        if rem:
            linear, norm = self.net.inp[0], self.net.inp[1]
            self.net.inp = nn.Sequential(linear, norm, RandomEnhancement(config.dropout))
        self.multi_root = opt.multi_root
        if self.multi_root:
            self.net.head = MultiRootHead(config, config.hidden, config.max_norm)
        self.refinement = RefinementBranch(self.out_dim, self.out_dim, config.hidden, config.dropout, config.max_norm,
                                           residual=opt.refine == "residual")
        if fusion == "attention":
            self.attention = AttentionModule(config.blocks, config.hidden)
        self.register_buffer("q", hard_mask(config), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raw, feats = self.net(x)
        out = {}
        if self.multi_root:
            out["roots"] = raw
            raw = self.net.head.pose(raw, self.normalizer)
        basic = raw
        f_star = self.refinement.features(basic)
        if self.fusion == "plain":  # AM*: the final basic feature joined without weighting
            f_star = f_star + feats[-1]
        elif self.fusion == "attention":
            f_star = self.attention(f_star, feats[1:])
        refined = self.refinement.output(f_star, basic)
        pose = torch.where(self.q, refined, basic)
        return {**out, "pose": pose, "basic": basic, "refined": refined}

    def loss(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.multi_root:
            l1 = self.net.head.loss(outputs["roots"], target, self.normalizer)  # method 3 Eq. 6
        else:
            l1 = ((outputs["basic"] - target) ** 2).mean()  # Eq. 1
        l2 = masked_sq_error(outputs["refined"], target, self.q)  # Eq. 2
        return {"total": l1 + l2, "basic": l1, "refine": l2}  # Eq. 3
