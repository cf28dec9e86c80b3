"""Method 3 (Park, Hwang and Kwak, "3D Human Pose Estimation Using Convolutional Neural Networks with 2D
Pose Information", ECCV Workshops 2016) on 2D input: soft-labelled 2D grid classification feeding
multi-root 3D regression, as a lifting network (registry name `method3`).

Code -> paper:
- `trunk_in` + `trunk`: the shared layers (Sec. 3.1, Fig. 1). The paper shares five convolutional layers
  over a 225 x 225 image; on 2D input (Stacked Hourglass detections) a dense block and `blocks` residual
  modules of width `hidden` take their place (reading: the shared representation that both losses train).
- `fc1_2d`, `fc2_2d`: the 2D part of Fig. 2, per joint a softmax over the N_g x N_g = 16 x 16 cells
  (option `grid`) of the person's crop; trained with the soft labels of eqs. 1-2
  (`geometry.soft_grid_labels`) and the cross entropy of eq. 3 (`losses.soft_cross_entropy`). The
  classified joints are the 3D layout's (N_j = 17 on Human3.6M, as in the paper), whose ground-truth 2D is
  the projection of the 3D joints (`flatten_frames(gt2d=True)`). The crop (`geometry.person_crop`) is the
  square box of the *detected* input joints enlarged by `crop_margin`: the 2D part learns where the true
  joints lie inside the crop the detections define (reading; the paper crops with the segmentation masks).
- `fc1_3d`: the first 3D fully connected layer; `fc_probs`: "fc probs 2D", applied to the vectorised
  softmax output (N_g² N_j values, "probs 2D") *detached*, so the fusion sends no gradient into the 2D
  part (Sec. 3.2); its output is concatenated with `fc1_3d`'s ("fc 2D-3D") ahead of the per-root layers.
  Option `cls2d` switches the fusion on; without it the 2D loss still trains the shared layers (Table 2's
  baseline keeps the 2D loss and deletes only probs 2D / fc probs 2D / fc 2D-3D).
- `fc2_3d`: one output layer per root (Sec. 3.3, "fc2 3D"), each predicting the J - 1 other joints relative
  to its root (eq. 4); option `multi_root` uses N_r = 6 roots, else the pelvis alone. Loss: eq. 6,
  lambda_2D sum_j L2D(j) + lambda_3D sum_r sum_{j != r} L3D(j, r) (`losses.multi_root_sq_error`), with
  lambda_2D = 0.1 for the first 16 epochs and 0.01 after, lambda_3D = 0.5 (options `lambda_2d`,
  `lambda_2d_late`, `lambda_2d_epoch`, `lambda_3d`; Sec. 4). The trainer passes the epoch.
- Targets (Sec. 4): the ground-truth 3D is made zero-mean and scaled to unit Frobenius norm
  (`geometry.unit_frobenius`); the per-root targets are differences of that shape.
- Test time (eq. 7): each root's prediction is translated to zero mean and the N_r are averaged
  (`multiroot.combine_roots`); the size is then recovered so that the summed torso bone lengths
  (`geometry.TORSO_BONES`: pelvis-hip, spine and collar bones) equal those of the mean training skeleton
  (`ShapeNormalizer.mean_bones`, fitted with the input statistics), and the pose is re-centred on its pelvis
  (a translation, which leaves every root- or Procrustes-aligned metric unchanged).

Roots (Fig. 3(b) is not in the text; it says the six were chosen so that most joints are a root or the
neighbour of one): pelvis, neck (Neck/Nose, the thorax where a layout has none), both elbows, both
knees, as `multiroot.ROOT_NAMES`; with the Human3.6M tree every one of the 17 joints is then a root or
adjacent to one. Deviations: batch norm and dropout (Sec. 4: 0.3, `ModelConfig.dropout`) on every hidden
fully connected layer but not on the output layers (a normalised output layer would fix the scale of the
targets); max-norm follows `ModelConfig.max_norm` (the paper has none; the bench turns it off). The
paper's optimiser (SGD, lr 0.01 halved every 4 epochs, momentum 0.9, weight decay 0.001, batch 128,
28 epochs) is training configuration (`TrainConfig.optimizer`, `lr_step_epochs`, ...), set by
`bonelift bench method3`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bonelift.errors import BoneliftError
from bonelift.geometry import bone_lengths, person_crop, soft_grid_labels, to_crop, torso_scale, unit_frobenius
from bonelift.losses import multi_root_sq_error, soft_cross_entropy
from bonelift.models.base import LiftingModel, MaxNormLinear, ModelConfig, Normalizer, with_root
from bonelift.models.baseline import DenseBlock, ResidualModule
from bonelift.models.multiroot import combine_roots, root_joints
from bonelift.skeletons import Layout

OPTIONS = {
    "multi_root": False,
    "cls2d": False,
    "grid": 16,
    "crop_margin": 1.2,
    "lambda_2d": 0.1,
    "lambda_2d_late": 0.01,
    "lambda_2d_epoch": 16,
    "lambda_3d": 0.5,
    "init": "kaiming",
}


class ShapeNormalizer(Normalizer):
    """The usual z-score statistics plus the mean training bone lengths that restore a unit-norm pose's size."""

    def __init__(self, in_dim: int, out_dim: int, layout: Layout) -> None:
        super().__init__(in_dim, out_dim)
        self.layout = layout
        self.register_buffer("mean_bones", torch.ones(len(layout.bones)))

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Also average every bone over the training targets ((N, J-1, 3) non-root joints, root-relative)."""
        super().fit(inputs, targets)
        full = with_root(torch.from_numpy(np.asarray(targets, np.float64)), self.layout)
        self.mean_bones.copy_(bone_lengths(full, self.layout).mean(0))


class Method3Lifter(LiftingModel):
    """Shared layers, a 2D grid-classification part and a (multi-)root 3D part, optionally fused (Fig. 2)."""

    needs_gt2d = True  # the trainer passes each sample's projected ground-truth 2D (screen coordinates) and epoch

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        opts = {**OPTIONS, **config.options}
        self.grid = int(opts["grid"])
        if self.grid < 2:
            raise BoneliftError(f"option grid must be >= 2, got {opts['grid']!r}")
        self.cls2d, self.multi_root = bool(opts["cls2d"]), bool(opts["multi_root"])
        self.crop_margin = float(opts["crop_margin"])
        self.lambdas = (float(opts["lambda_2d"]), float(opts["lambda_2d_late"]), int(opts["lambda_2d_epoch"]),
                        float(opts["lambda_3d"]))
        lay = config.out_layout
        self.normalizer = ShapeNormalizer(self.in_dim, self.out_dim, lay)
        h, p, mn = config.hidden, config.dropout, config.max_norm
        self.trunk_in = DenseBlock(self.in_dim, h, p, mn)
        self.trunk = nn.Sequential(*(ResidualModule(h, p, mn) for _ in range(config.blocks)))
        cells = lay.num_joints * self.grid**2
        self.fc1_2d = DenseBlock(h, h, p, mn)
        self.fc2_2d = MaxNormLinear(h, cells, mn)
        self.fc1_3d = DenseBlock(h, h, p, mn)
        self.fc_probs = DenseBlock(cells, h, p, mn) if self.cls2d else None
        width = 2 * h if self.cls2d else h
        roots = root_joints(config) if self.multi_root else [lay.root]
        self.fc2_3d = nn.ModuleList(MaxNormLinear(width, 3 * (lay.num_joints - 1), mn) for _ in roots)
        others = [[j for j in range(lay.num_joints) if j != r] for r in roots]
        self.register_buffer("roots", torch.tensor(roots, dtype=torch.long), persistent=False)
        self.register_buffer("others", torch.tensor(others, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        n = self.normalizer
        screen = (x * n.in_std + n.in_mean).unflatten(-1, (-1, 2)).to(x.dtype)
        h = self.trunk(self.trunk_in(x))
        logits = self.fc2_2d(self.fc1_2d(h)).unflatten(-1, (-1, self.grid**2))  # (B, J, N_g²)
        f3d = self.fc1_3d(h)
        if self.fc_probs is not None:  # probs 2D -> fc probs 2D, no gradient back into the 2D part (Sec. 3.2)
            probs = torch.softmax(logits, dim=-1).detach().flatten(1)
            f3d = torch.cat([f3d, self.fc_probs(probs)], dim=-1)
        relative = torch.stack([head(f3d) for head in self.fc2_3d], dim=1).unflatten(-1, (-1, 3))  # (B, R, J-1, 3)
        return {"pose": n.norm_out(self.metric_pose(relative)[:, self.config.out_joints]), "roots": relative,
                "logits2d": logits, "crop": person_crop(screen, self.crop_margin)}

    def per_root(self, relative: torch.Tensor) -> torch.Tensor:
        """(B, R, J-1, 3) -> (B, R, J, 3): each root's prediction with the root itself at zero."""
        full = relative.new_zeros(relative.shape[:2] + (self.config.out_layout.num_joints, 3))
        index = self.others[None, :, :, None].expand(relative.shape[0], -1, -1, 3)
        return full.scatter(2, index, relative)

    def metric_pose(self, relative: torch.Tensor) -> torch.Tensor:
        """Eq. 7 average of the per-root shapes, sized by the mean training torso, pelvis at zero: (B, J, 3) metres."""
        lay = self.config.out_layout
        shape = combine_roots(self.per_root(relative), lay.root)
        return shape * torso_scale(shape, self.normalizer.mean_bones.to(shape.dtype), lay)[:, None, None]

    def lambda_2d(self, epoch: int) -> float:
        """lambda_2D of the epoch (0-based): 0.1, then 0.01 once `lambda_2d_epoch` epochs are done (Sec. 4)."""
        early, late, switch, _ = self.lambdas
        return early if epoch < switch else late

    def shape_target(self, target: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) zero-mean, unit-Frobenius-norm ground truth from the normalised regression target."""
        return unit_frobenius(with_root(self.normalizer.denorm_out(target), self.config.out_layout))[0]

    def grid_labels(self, gt2d: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
        """(B, J, N_g²) soft labels of ground-truth 2D (screen coordinates) inside each sample's crop."""
        return soft_grid_labels(to_crop(gt2d.to(crop.dtype), crop), self.grid)

    def loss(
        self, outputs: dict[str, torch.Tensor], target: torch.Tensor, gt2d: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """Eq. 6; without `gt2d` (no 2D ground truth to classify) the 3D part alone."""
        l3d = multi_root_sq_error(outputs["roots"], self.shape_target(target), self.roots, self.others)
        total = self.lambdas[3] * l3d
        out = {"multi_root": l3d}
        if gt2d is not None:
            l2d = soft_cross_entropy(outputs["logits2d"], self.grid_labels(gt2d, outputs["crop"]))
            total = total + self.lambda_2d(epoch) * l2d
            out["cls2d"] = l2d
        return {"total": total, **out}
