"""Human structure-aware network (method 1: hard-joint refinement with a dual-channel structure).

Sec. 2.1: the basic network is Martinez et al.'s residual MLP (2 residual modules), supervised on
all joints (Eq. 1, L1). Sec. 2.2: a refinement network reads the basic network's 3D output and
re-predicts the hard joints (elbows, wrists, knees, feet), supervised only on them through the
indicator q (Eq. 2). Variants:

* single channel (Fig. 3): one refinement branch reads all joints;
* dual channel (Fig. 4): branch A reads the joints of set A (left limbs plus the shared trunk)
  and refines the left hard joints, branch B the mirrored set (Eq. 3, 4);
* feature fusion ("residual connection", Fig. 2 blue line): the basic network's last hidden
  feature is added to each branch's last hidden feature (option `fusion_at`, below), so the
  refinement sees 2D evidence;
* residual refinement (the abstract: the refinement network is cascaded "in a residual learning
  manner", a separate statement from the feature fusion): each branch predicts a correction to the
  basic estimate, its head initialised to zero, so the refined hard joints start at the basic ones
  (option `refine`: "residual", or "absolute" to predict the joints outright).

Total loss L = L1 + L3 + L4 (Eq. 7); for the single channel L = L1 + L2. The final pose takes the
hard joints from the refinement and the other joints from the basic network.

Reading of the paper where it is not explicit: the branch input is the basic output of its set's
joints as predicted (the pelvis is the root, always zero, so it carries no information and is not
fed); the fusion joins the branch's last hidden layer (`fusion_at="last"`): the paper says only that
a residual connection joins the two networks, but its single-channel "wo dual" row (66.78 mm, Table
1) is the same number and description as method 2's "basic+ref+AM*", which method 2 Sec. 2.3 builds
by connecting "the final 2D feature and the final 3D feature", so `hsn-single` and
`basic-ref-amstar` are one network (tested); `fusion_at="first"` (after the branch's first layer) is
bonelift's earlier reading, kept to reproduce it. The single-channel variant has the fusion, as in
Table 1 where only the "w dual / wo res" row drops it. Initialisation: Kaiming, as Sec. 3 states
(option `init`, "pytorch" for PyTorch's default). Through that fusion a dual branch also sees
basic-network features computed from all 2D joints: the paper's separation of sides is on the
3D features, which is what the branches' inputs implement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bonelift.losses import masked_sq_error
from bonelift.models.base import INITS, LiftingModel, ModelConfig
from bonelift.models.baseline import ResidualMLP
from bonelift.models.options import NetworkOptions, switch
from bonelift.models.refinement import FUSION_POINTS, REFINES, RefinementBranch, hard_mask, joints_by_name

# Joint groups of Sec. 2.2 ("hand" is the wrist in Human3.6M naming). A joint a layout lacks
# (Neck/Nose in the 16-joint Stacked Hourglass layout, Spine in HumanEva) is skipped.
CHANNEL_A = ("LWrist", "LElbow", "LKnee", "LFoot", "Thorax", "Neck/Nose", "LShoulder", "Head", "Spine", "LHip", "Hip")
CHANNEL_B = ("RWrist", "RElbow", "RKnee", "Head", "RFoot", "Hip", "Neck/Nose", "RShoulder", "Thorax", "Spine", "RHip")


@dataclass(frozen=True)
class HSNOptions(NetworkOptions):
    """Options of method 1's networks (hsn-single, hsn-dual-nores, hsn-dual)."""

    fusion_at: str = switch("last", "which basic-network feature the refinement fuses: the last or the first",
                            FUSION_POINTS)
    refine: str = switch("residual", "refinement head: a correction to the basic estimate (zero-initialised) or "
                                     "the joints outright", REFINES)
    init: str = switch("kaiming", "weight initialisation: Kaiming (He) or PyTorch's default", INITS)


class HSN(LiftingModel):
    """Basic network cascaded with a single- or dual-channel hard-joint refinement network."""

    def __init__(self, config: ModelConfig, dual: bool = True, residual: bool = True) -> None:
        super().__init__(config)
        opt = HSNOptions.parse(config.options, config.name)
        self.dual, self.residual, self.fusion_at = dual, residual, opt.fusion_at
        self.net = ResidualMLP(self.in_dim, self.out_dim, config.hidden, config.blocks, config.dropout, config.max_norm)
        lay = config.out_layout
        groups = (
            [joints_by_name(lay, CHANNEL_A), joints_by_name(lay, CHANNEL_B)] if dual else [list(range(lay.num_joints))]
        )
        self.channels = torch.nn.ModuleList()
        for k, group in enumerate(groups):
            # Positions of the group's predicted joints inside the (J_out, 3) output view.
            rows = [config.out_joints.index(j) for j in group if j in config.out_joints]
            self.register_buffer(f"rows_{k}", torch.tensor(rows, dtype=torch.long), persistent=False)
            self.register_buffer(f"q_{k}", hard_mask(config, group), persistent=False)
            self.channels.append(RefinementBranch(3 * len(rows), self.out_dim, config.hidden, config.dropout,
                                                  config.max_norm, residual=opt.refine == "residual"))

    def _rows(self, k: int) -> torch.Tensor:
        return getattr(self, f"rows_{k}")

    def _q(self, k: int) -> torch.Tensor:
        return getattr(self, f"q_{k}")

    def refine(self, basic: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """(B, C, 3 * J_out) outputs of the C refinement branches for basic output `basic`."""
        joints = basic.unflatten(-1, (-1, 3))
        skip = feature if self.residual else None
        return torch.stack([ch.output(ch.features(joints[:, self._rows(k)].flatten(1), skip, self.fusion_at), basic)
                            for k, ch in enumerate(self.channels)], dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        basic, feats = self.net(x)
        refined = self.refine(basic, feats[-1])
        pose = basic
        for k in range(len(self.channels)):
            pose = torch.where(self._q(k), refined[:, k], pose)
        return {"pose": pose, "basic": basic, "refined": refined}

    def loss(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        l1 = ((outputs["basic"] - target) ** 2).mean()  # Eq. 1, all joints
        # Eq. 2 (single) or Eq. 3 + Eq. 4 (dual): each branch only on the hard joints of its set.
        lref = sum(masked_sq_error(outputs["refined"][:, k], target, self._q(k)) for k in range(len(self.channels)))
        return {"total": l1 + lref, "basic": l1, "refine": lref}  # Eq. 7
