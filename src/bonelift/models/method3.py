"""Method 3 (Park, Hwang and Kwak, "3D Human Pose Estimation Using Convolutional Neural Networks with 2D
Pose Information", ECCV Workshops 2016): soft-labelled 2D grid classification feeding multi-root 3D
regression, as the paper's image CNN (registry name `method3-image`, kind "image") and as a lifting
network on 2D keypoints (`method3`, kind "single-frame"). Both share everything after their trunk.

Code -> paper, shared part (`Method3Head`, Fig. 2: "the structure after the last pooling layer"):
- `fc1_2d`, `fc2_2d`: the 2D part, per joint a softmax over the N_g x N_g = 16 x 16 cells of the crop
  (Sec. 3.1, N_g: Sec. 4); trained with the soft labels of eqs. 1-2 (`geometry.soft_grid_labels`) and the
  cross entropy of eq. 3 (`losses.soft_cross_entropy`). The classified joints are the 3D layout's
  (N_j = 17 on Human3.6M, as in the paper).
- `fc1_3d`: the first 3D fully connected layer; `fc_probs`: "fc probs 2D", applied to the vectorised
  softmax output (N_g² N_j values, "probs 2D") *detached*, so the fusion sends no gradient into the 2D
  part (Sec. 3.2); its output is concatenated with `fc1_3d`'s ("fc 2D-3D") ahead of the per-root layers.
  Option `cls2d` switches the fusion on; without it the 2D loss still trains the shared layers (Table 2's
  baseline keeps the 2D loss and deletes only probs 2D / fc probs 2D / fc 2D-3D).
- `fc2_3d`: one output layer per root (Sec. 3.3, "fc2 3D"), each predicting the J - 1 other joints relative
  to its root (eq. 4); option `multi_root` uses N_r = 6 roots, else the pelvis alone. Loss: eq. 6,
  lambda_2D sum_j L2D(j) + lambda_3D sum_r sum_{j != r} L3D(j, r) (`losses.multi_root_sq_error`), with
  lambda_2D = 0.1 for the first 16 epochs and 0.01 after, lambda_3D = 0.5 (options `lambda_2d`,
  `lambda_2d_late`, `lambda_2d_epoch`, `lambda_3d`; Sec. 4). The trainers pass the epoch.
- Not in the paper, a control: option `grad_3d_shared` = k multiplies the 3D loss's gradient into everything
  below the per-root output layers (fc1_3d, fc_probs, the shared layers) and leaves the output layer's own
  step alone. Six roots send the layers they share the sum of six 3D gradients; this gives one root the same
  factor without eq. 6's other change, the six output layers. (Weighting one root's 3D loss by 6 instead,
  `lambda_3d` x6, also multiplies its output layer's step by 6: under the paper's SGD at lr 0.01 that
  diverged to NaN within 20 steps on SH 2D, 2026-12-03.)
- Targets (Sec. 4): the ground-truth 3D is made zero-mean and scaled to unit Frobenius norm
  (`geometry.unit_frobenius`); the per-root targets are differences of that shape.
- Deviation, option `zscore_3d` (default on): every per-root output unit regresses its target standardised
  by the training mean and std of that unit (`fit_targets`, buffers `target_mean` / `target_std`), and
  eq. 6's 3D sum is taken over those standardised errors. Why: in unit-norm units a shape coordinate
  varies by only ~0.06 around its mean, so the 3D gradient is ~300x weaker than the 2D cross entropy's;
  measured on SH 2D (hidden 512, 4 epochs of every 40th frame, 2026-12-01) the network then predicted
  little more than the mean shape: P1 164.7 mm with SGD at the paper's lr 0.01, 172-176 mm without the
  2D loss or with Adam, diverging at lr 0.1, against 94.0 mm with standardised outputs (the residual MLP
  of Martinez et al. at a similar budget: 85.8). The unit-norm shape, its differences per root, eq. 7
  and the torso scale are unchanged; the standardisation is an affine map of each output unit, so the
  network can represent exactly the same poses. It does shift eq. 6's balance towards the 3D part
  (its loss starts near 48 per root instead of ~0.2). `zscore_3d=False` gives the paper's raw units.
- Test time (eq. 7): each root's prediction is translated to zero mean and the N_r are averaged
  (`multiroot.combine_roots`); the size is then recovered so that the summed torso bone lengths
  (`geometry.TORSO_BONES`: pelvis-hip, spine and collar bones) equal those of the mean training skeleton
  (`mean_bones`, fitted on the training poses), and the pose is re-centred on its pelvis (a translation,
  which leaves every root- or Procrustes-aligned metric unchanged).
- Batch norm and dropout (Sec. 4: "applied to every fully connected layer", 0.3) on every hidden fully
  connected layer but not on the two output layers (reading: a normalised output layer would fix the
  scale of the logits and of the unit-norm targets).
- Initialisation (not in the text): He for every hidden layer; option `out_std` draws the two output layers
  from N(0, out_std²) instead (Caffe's gaussian filler). The image CNN uses 0.01: with He output layers
  its 3D branch died within the first epoch on synthetic crops (every fc1_3d ReLU silent, one shape
  predicted for every image). The lifter keeps He output layers (`out_std` 0) so its bench rows stay
  reproducible.

Roots (Fig. 3(b) is not in the text; it says the six were chosen so that most joints are a root or the
neighbour of one): pelvis, neck (Neck/Nose, the thorax where a layout has none), both elbows, both
knees, as `multiroot.ROOT_NAMES`; with the Human3.6M tree every one of the 17 joints is then a root or
adjacent to one.

The image CNN (`Method3ImageNet`, Sec. 3.1 and 4; config `ImageModelConfig`):
- `trunk`: five convolutional and three max-pooling layers with ZFnet's filter sizes and strides
  (conv1 7x7/2, pool 3x3/2, conv2 5x5/2, pool 3x3/2, conv3-5 3x3/1, pool 3x3/2), each convolution followed
  by batch norm (Sec. 4) and ReLU; batch norm takes the place of ZFnet's local response normalisation.
  Fig. 1 (the feature-map counts) is not in the text, which only says they are fewer than ZFnet's
  96-256-384-384-256: we use half, `BASE_CHANNELS` = 48-128-192-192-128, times `conv_width`.
  Readings: "same" padding (k // 2) and ceil-mode pooling (Caffe's rounding), so a 225 x 225 input gives
  113 -> 56 -> 28 -> 14 -> 7 and the 7 x 7 x 128 maps feed the head, and crops down to 27 px still work.
- The head's hidden fully connected layers are `fc_width` = 1024 wide (Fig. 2's dimensions are not in
  the text; ZFnet has 4096, the paper's net is smaller). The crop is the network input itself: the 2D
  part classifies the ground-truth joints of the (randomly or centrally) cropped image.
- Input: (B, S, S, 3) pixels 0-255, standardised per colour channel with the training images' mean and
  standard deviation (`pixel_mean`, `pixel_std`; Caffe-style mean subtraction). Cropping, the 250/225
  resize and the PCA colour augmentation are data preparation (`datasets.image_prep`,
  `training.images`); the optimiser and schedule are training configuration (`ImageTrainConfig`).

The lifting network on 2D input (`Method3Lifter`, registry `method3`):
- `trunk_in` + `trunk`: the shared layers. On 2D input (Stacked Hourglass detections) a dense block and
  `blocks` residual modules of width `hidden` take the conv layers' place (reading: the shared
  representation that both losses train); the head's hidden layers are `hidden` wide too.
- The 2D part classifies the projected ground-truth joints (`flatten_frames(gt2d=True)`) inside the crop
  (`geometry.person_crop`) that the *detected* input joints define, enlarged by `crop_margin`: it learns
  where the true joints lie inside the crop the detections define (reading; the paper crops with the
  segmentation masks). Mean bone lengths are fitted with the input statistics (`ShapeNormalizer`).
- Max-norm follows `ModelConfig.max_norm` (the paper has none; the bench turns it off). The paper's
  optimiser (SGD, lr 0.01 halved every 4 epochs, momentum 0.9, weight decay 0.001, batch 128, 28 epochs)
  is training configuration (`TrainConfig.optimizer`, `lr_step_epochs`, ...), set by `bonelift bench method3`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bonelift.compat import method3_head_keys
from bonelift.errors import BoneliftError
from bonelift.geometry import bone_lengths, person_crop, soft_grid_labels, to_crop, torso_scale, unit_frobenius
from bonelift.losses import multi_root_sq_error, soft_cross_entropy
from bonelift.models.base import (
    INITS,
    LayoutsMixin,
    LiftingModel,
    MaxNormLinear,
    ModelConfig,
    Normalizer,
    with_root,
    zscore_stats,
)
from bonelift.models.baseline import DenseBlock, ResidualModule
from bonelift.models.multiroot import combine_roots, other_joints, root_joints, scatter_roots
from bonelift.models.options import NetworkOptions, switch
from bonelift.skeletons import Layout


@dataclass(frozen=True)
class HeadOptions(NetworkOptions):
    """Options of the shared head (`Method3Head`): what both method 3 networks accept."""

    multi_root: bool = switch(False, "N_r = 6 roots (eq. 6 / eq. 7) instead of the pelvis alone")
    cls2d: bool = switch(False, "fuse the detached 2D grid probabilities into the 3D part (fc probs 2D)")
    lambda_2d: float = switch(0.1, "weight of the 2D cross entropy before `lambda_2d_epoch`")
    lambda_2d_late: float = switch(0.01, "weight of the 2D cross entropy from `lambda_2d_epoch` on")
    lambda_2d_epoch: int = switch(16, "epoch at which the 2D weight drops to `lambda_2d_late`")
    lambda_3d: float = switch(0.5, "weight of the per-root 3D loss")
    grad_3d_shared: float = switch(1.0, "factor on the 3D loss's gradient below the per-root output layers (the "
                                        "loss-scale control of multi_root; forward values unchanged)")
    out_std: float = switch(0.0, "std of the Gaussian drawing the two output layers (0: He like the hidden ones)")
    zscore_3d: bool = switch(True, "regress every per-root output standardised by its training mean and std")


@dataclass(frozen=True)
class Method3Options(HeadOptions):
    """Options of the lifting network on 2D keypoints (registry entry "method3")."""

    grid: int = switch(16, "N_g: cells per side of the 2D classification grid")
    crop_margin: float = switch(1.2, "enlargement of the detected joints' box that the 2D grid covers")
    init: str = switch("kaiming", "weight initialisation: Kaiming (He) or PyTorch's default", INITS)


@dataclass(frozen=True)
class ImageOptions(HeadOptions):
    """Options of the image CNN (registry entry "method3-image"); its grid is `ImageModelConfig.grid`."""

    out_std: float = switch(0.01, "std of the Gaussian drawing the two output layers (Caffe's gaussian filler)")


BASE_CHANNELS = (48, 128, 192, 192, 128)  # feature maps of conv1-5 at conv_width 1: half of ZFnet's


def mean_bone_lengths(poses: np.ndarray | torch.Tensor, layout: Layout) -> torch.Tensor:
    """(B,) mean length of every bone over (N, J, 3) training poses: the skeleton whose torso sets the test scale."""
    return bone_lengths(torch.from_numpy(np.asarray(poses, np.float64)), layout).mean(0)


class Method3Head(nn.Module):
    """Fig. 2 after the shared layers: the 2D grid part, the optional detached fusion and the per-root 3D layers,
    with eq. 6's loss and eq. 7's combination. Built once for both trunks, so they cannot drift apart."""

    def __init__(self, config: LayoutsMixin, opts: HeadOptions, features: int, hidden: int, grid: int,
                 dropout: float, max_norm: bool) -> None:
        super().__init__()
        if int(grid) < 2:
            raise BoneliftError(f"grid (N_g) must be >= 2, got {grid!r}")
        self.grid = int(grid)
        self.cls2d, self.multi_root = opts.cls2d, opts.multi_root
        self.lambdas = (opts.lambda_2d, opts.lambda_2d_late, opts.lambda_2d_epoch, opts.lambda_3d)
        self.grad_3d_shared = float(opts.grad_3d_shared)
        if not self.grad_3d_shared > 0:
            raise BoneliftError(f"option grad_3d_shared must be > 0, got {opts.grad_3d_shared!r}")
        self.out_std = opts.out_std
        if self.out_std < 0:
            raise BoneliftError(f"option out_std must be >= 0, got {opts.out_std!r}")
        self.layout = lay = config.out_layout
        cells = lay.num_joints * self.grid**2
        self.fc1_2d = DenseBlock(features, hidden, dropout, max_norm)
        self.fc2_2d = MaxNormLinear(hidden, cells, max_norm)
        self.fc1_3d = DenseBlock(features, hidden, dropout, max_norm)
        self.fc_probs = DenseBlock(cells, hidden, dropout, max_norm) if self.cls2d else None
        width = 2 * hidden if self.cls2d else hidden
        roots = root_joints(config) if self.multi_root else [lay.root]
        self.fc2_3d = nn.ModuleList(MaxNormLinear(width, 3 * (lay.num_joints - 1), max_norm) for _ in roots)
        others = other_joints(roots, lay.num_joints)
        self.register_buffer("roots", torch.tensor(roots, dtype=torch.long), persistent=False)
        self.register_buffer("others", torch.tensor(others, dtype=torch.long), persistent=False)
        self.zscore_3d = opts.zscore_3d
        # Per-root output statistics in unit-norm units; mean 0 / std 1 (no standardisation) until fitted.
        self.register_buffer("target_mean", torch.zeros(len(roots), lay.num_joints - 1, 3))
        self.register_buffer("target_std", torch.ones(len(roots), lay.num_joints - 1, 3))
        self.init_outputs()

    def fit_targets(self, poses: np.ndarray | torch.Tensor) -> None:
        """With option `zscore_3d`, the mean and std of every per-root output over (N, J, 3) training poses
        (root-relative metres, made unit-norm shapes here), so each output unit regresses a standardised value."""
        if not self.zscore_3d:
            return
        shape = unit_frobenius(torch.as_tensor(np.asarray(poses, np.float64)))[0]
        relative = shape[:, self.others] - shape[:, self.roots][:, :, None]
        mean, std = zscore_stats(relative.numpy(), ddof=1)  # sample std: what the trained rows used
        self.target_mean.copy_(mean.view_as(self.target_mean))
        self.target_std.copy_(std.view_as(self.target_std))

    def init_outputs(self) -> None:
        """With option `out_std` > 0, draw the two output layers from N(0, out_std²), biases zero (Caffe's gaussian
        filler; called again after any re-initialisation): the predictions start near the zero-mean targets.
        Why: with He-initialised output layers the first 3D loss is ~20x that of a zero prediction and the
        first SGD steps silence every ReLU of fc1_3d (the image CNN then predicts one mean shape)."""
        if self.out_std > 0:
            for layer in (self.fc2_2d, *self.fc2_3d):
                nn.init.normal_(layer.weight, 0.0, self.out_std)
                nn.init.zeros_(layer.bias)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shared features (B, F) -> "logits2d" (B, J, N_g²) and "roots" (B, R, J-1, 3), unit-norm shape units."""
        logits = self.fc2_2d(self.fc1_2d(h)).unflatten(-1, (-1, self.grid**2))
        f3d = self.fc1_3d(h)
        if self.fc_probs is not None:  # probs 2D -> fc probs 2D, no gradient back into the 2D part (Sec. 3.2)
            probs = torch.softmax(logits, dim=-1).detach().flatten(1)
            f3d = torch.cat([f3d, self.fc_probs(probs)], dim=-1)
        if self.grad_3d_shared != 1.0:  # k x the gradient into fc1_3d / fc_probs / the trunk; the value is f3d exactly
            f3d = f3d.detach() + (f3d - f3d.detach()) * self.grad_3d_shared
        raw = torch.stack([head(f3d) for head in self.fc2_3d], dim=1).unflatten(-1, (-1, 3))
        return {"roots": raw * self.target_std.to(raw.dtype) + self.target_mean.to(raw.dtype), "logits2d": logits}

    def per_root(self, relative: torch.Tensor) -> torch.Tensor:
        """(B, R, J-1, 3) -> (B, R, J, 3): each root's prediction with the root itself at zero."""
        return scatter_roots(relative, self.others, self.layout.num_joints)

    def metric_pose(self, relative: torch.Tensor, mean_bones: torch.Tensor) -> torch.Tensor:
        """Eq. 7 average of the per-root shapes, sized by the mean training torso, pelvis at zero: (B, J, 3) metres."""
        shape = combine_roots(self.per_root(relative), self.layout.root)
        return shape * torso_scale(shape, mean_bones.to(shape.dtype), self.layout)[:, None, None]

    def lambda_2d(self, epoch: int) -> float:
        """lambda_2D of the epoch (0-based): 0.1, then 0.01 once `lambda_2d_epoch` epochs are done (Sec. 4)."""
        early, late, switch, _ = self.lambdas
        return early if epoch < switch else late

    def loss(self, outputs: dict[str, torch.Tensor], shape: torch.Tensor, labels: torch.Tensor | None = None,
             epoch: int = 0) -> dict[str, torch.Tensor]:
        """Eq. 6 from the (B, J, 3) unit-norm ground-truth shape and (B, J, N_g²) soft labels (None: 3D part only)."""
        l3d = multi_root_sq_error(outputs["roots"], shape, self.roots, self.others, self.target_std.to(shape.dtype))
        total = self.lambdas[3] * l3d
        out = {"multi_root": l3d}
        if labels is not None:
            l2d = soft_cross_entropy(outputs["logits2d"], labels)
            total = total + self.lambda_2d(epoch) * l2d
            out["cls2d"] = l2d
        return {"total": total, **out}


# ----- the lifting network on 2D keypoints

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
        self.mean_bones.copy_(mean_bone_lengths(full, self.layout))


class Method3Lifter(LiftingModel):
    """Residual MLP trunk on 2D keypoints, then the shared head (Fig. 2)."""

    needs_gt2d = True  # the trainer passes each sample's projected ground-truth 2D (screen coordinates) and epoch

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        opts = Method3Options.parse(config.options, config.name)
        self.crop_margin = opts.crop_margin
        self.normalizer = ShapeNormalizer(self.in_dim, self.out_dim, config.out_layout)
        h, p, mn = config.hidden, config.dropout, config.max_norm
        self.trunk_in = DenseBlock(self.in_dim, h, p, mn)
        self.trunk = nn.Sequential(*(ResidualModule(h, p, mn) for _ in range(config.blocks)))
        self.head = Method3Head(config, opts, h, h, opts.grid, p, mn)
        self.register_load_state_dict_pre_hook(method3_head_keys)  # older checkpoints' keys

    def fit_statistics(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Input / output statistics, mean training bones, and the head's per-root output statistics."""
        super().fit_statistics(inputs, targets)
        self.head.fit_targets(targets)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared layers' output (B, hidden) for normalised 2D input."""
        return self.trunk(self.trunk_in(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        n = self.normalizer
        screen = (x * n.in_std + n.in_mean).unflatten(-1, (-1, 2)).to(x.dtype)
        out = self.head(self.features(x))
        pose = n.norm_out(self.metric_pose(out["roots"])[:, self.config.out_joints])
        return {"pose": pose, **out, "crop": person_crop(screen, self.crop_margin)}

    def metric_pose(self, relative: torch.Tensor) -> torch.Tensor:
        """(B, R, J-1, 3) per-root shapes -> (B, J, 3) metres, pelvis at zero (eq. 7 and the torso scale)."""
        return self.head.metric_pose(relative, self.normalizer.mean_bones)

    def shape_target(self, target: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) zero-mean, unit-Frobenius-norm ground truth from the normalised regression target."""
        return unit_frobenius(with_root(self.normalizer.denorm_out(target), self.config.out_layout))[0]

    def grid_labels(self, gt2d: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
        """(B, J, N_g²) soft labels of ground-truth 2D (screen coordinates) inside each sample's crop."""
        return soft_grid_labels(to_crop(gt2d.to(crop.dtype), crop), self.head.grid)

    def loss(
        self, outputs: dict[str, torch.Tensor], target: torch.Tensor, gt2d: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """Eq. 6; without `gt2d` (no 2D ground truth to classify) the 3D part alone."""
        labels = None if gt2d is None else self.grid_labels(gt2d, outputs["crop"])
        return self.head.loss(outputs, self.shape_target(target), labels, epoch)


# ----- the image CNN

@dataclass
class ImageModelConfig(LayoutsMixin):
    """Architecture of method 3's image CNN; stored in every checkpoint so it can be rebuilt."""

    name: str = field(default="method3-image", metadata={"help": "image network (`bonelift models` lists them)"})
    output_layout: str = "h36m17"  # joints classified in 2D and regressed in 3D (set from the ImageSet)
    image_size: int = field(default=225, metadata={
        "flag": "--crop-size", "help": "network input side in pixels: the random (training) or centre (test) crop "
                                       "of the images resized to 250/225 of it (paper: 225 of 250)"})
    grid: int = field(default=16, metadata={"help": "N_g: cells per side of the 2D classification grid",
                                              "min": 2})
    conv_width: float = field(default=1.0, metadata={
        "help": "feature-map multiplier of conv1-5 (1: 48-128-192-192-128, half of ZFnet's)", "above": 0})
    fc_width: int = field(default=1024, metadata={"help": "width of the hidden fully connected layers",
                                                    "min": 1})
    dropout: float = field(default=0.3, metadata={"help": "dropout probability of the fully connected layers",
                                                     "min": 0, "below": 1})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "network-specific switch KEY=VALUE "
                                                                            "(`bonelift models` lists them)"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trunk_side(image_size: int) -> int:
    """Side of the last pooling layer's maps for a square input of `image_size` (conv3-5 keep the size)."""
    n = int(image_size)
    for kind in ("conv", "pool", "conv", "pool", "pool"):
        if kind == "conv":  # conv1 / conv2: odd kernel k, stride 2, padding k // 2
            n = (n - 1) // 2 + 1
        else:  # 3x3 stride 2, ceil mode; the last window must start inside the input (PyTorch's rule)
            out = -(-(n - 3) // 2) + 1
            n = out - 1 if (out - 1) * 2 >= n else out
        if n < 1:
            raise BoneliftError(f"crop size (--crop-size) {image_size} is too small for the conv layers (at least 27)")
    return n


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    """Convolution (no bias: batch norm follows) + batch norm + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Method3ImageNet(nn.Module):
    """Method 3's CNN: ZFnet-shaped conv layers on the person crop, then the shared head (Figs. 1-2)."""

    def __init__(self, config: ImageModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.conv_width <= 0 or config.fc_width < 1:
            raise BoneliftError(f"conv width and fc width must be positive, got {config.conv_width}, "
                                f"{config.fc_width}")
        c1, c2, c3, c4, c5 = (max(1, round(c * config.conv_width)) for c in BASE_CHANNELS)
        side = trunk_side(config.image_size)
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.trunk = nn.Sequential(_conv(3, c1, 7, 2), pool(), _conv(c1, c2, 5, 2), pool(),
                                   _conv(c2, c3, 3, 1), _conv(c3, c4, 3, 1), _conv(c4, c5, 3, 1), pool())
        self.head = Method3Head(
            config,
            ImageOptions.parse(config.options, config.name),
            c5 * side * side,
            config.fc_width,
            config.grid,
            config.dropout,
            max_norm=False,
        )
        lay = config.out_layout
        self.register_buffer("pixel_mean", torch.zeros(3))
        self.register_buffer("pixel_std", torch.ones(3))
        self.register_buffer("mean_bones", torch.ones(len(lay.bones)))

    def fit(self, pixel_mean: np.ndarray, pixel_std: np.ndarray, poses: np.ndarray) -> None:
        """Training statistics: per-channel pixel mean / std (0-255) and mean bone lengths of (N, J, 3) poses."""
        self.pixel_mean.copy_(torch.as_tensor(np.asarray(pixel_mean, np.float64)))
        self.pixel_std.copy_(torch.as_tensor(np.maximum(np.asarray(pixel_std, np.float64), 1e-6)))
        self.mean_bones.copy_(mean_bone_lengths(poses, self.config.out_layout))
        self.head.fit_targets(poses)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) pixels 0-255 (any dtype, channels last as stored) -> (B, F) last pooling layer, flattened."""
        x = (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        return self.trunk(x.permute(0, 3, 1, 2)).flatten(1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head outputs plus "pose": (B, J, 3) metres, pelvis at zero."""
        out = self.head(self.features(images))
        return {**out, "pose": self.head.metric_pose(out["roots"], self.mean_bones)}

    def loss(self, outputs: dict[str, torch.Tensor], poses: torch.Tensor, joints2d: torch.Tensor | None = None,
             epoch: int = 0) -> dict[str, torch.Tensor]:
        """Eq. 6 from (B, J, 3) root-relative metres and (B, J, 2) joints in the crop's frame (None: 3D only)."""
        shape = unit_frobenius(poses.to(outputs["roots"].dtype))[0]
        labels = None if joints2d is None else soft_grid_labels(joints2d.to(shape.dtype), self.head.grid)
        return self.head.loss(outputs, shape, labels, epoch)
