"""What every lifting network shares: its configuration, input/target normalisation, and max-norm layers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bonelift.errors import BoneliftError
from bonelift.skeletons import Layout, get_layout


class LayoutsMixin:
    """`in_layout` / `out_layout` for configurations that name their input and output joint layouts."""

    input_layout: str
    output_layout: str

    @property
    def in_layout(self) -> Layout:
        return get_layout(self.input_layout)

    @property
    def out_layout(self) -> Layout:
        return get_layout(self.output_layout)


@dataclass
class ModelConfig(LayoutsMixin):
    """Architecture of a lifting network; stored in every checkpoint so it can be rebuilt."""

    name: str = field(default="baseline", metadata={"help": "network (`bonelift models` lists them)"})
    input_layout: str = "h36m17"  # layout of the 2D keypoints fed to the network
    output_layout: str = "h36m17"  # layout of the 3D output (root joint predicted as zero)
    hidden: int = field(default=1024, metadata={"help": "width of the hidden layers", "min": 1})
    blocks: int = field(default=2, metadata={"help": "residual modules of the basic network",
                                                     "min": 0})
    dropout: float = field(default=0.5, metadata={"help": "dropout probability", "min": 0, "below": 1})
    max_norm: bool = field(default=True, metadata={"help": "no max-norm constraint on the weight matrices"})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "network-specific switch KEY=VALUE "
                                                                            "(`bonelift models` lists them)"})

    @property
    def out_joints(self) -> list[int]:
        """Indices (in `out_layout`) of the joints the network regresses: all but the root."""
        lay = self.out_layout
        return [j for j in range(lay.num_joints) if j != lay.root]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MaxNormLinear(nn.Linear):
    """Linear layer whose weight matrix is rescaled to norm <= 1 when used (Martinez et al.'s max-norm).

    `fast` (the default; `set_kernels`) scales the layer's output instead of the weight: x (sW)^T + b =
    s (x W^T) + b, the same function and gradients up to rounding, without a scaled copy of the weight matrix
    and its backward pass each step; `fast = False` rescales the weight as runs before December 2026 did.
    """

    fast = True

    def __init__(self, in_features: int, out_features: int, max_norm: bool = True) -> None:
        super().__init__(in_features, out_features)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.max_norm:
            return nn.functional.linear(x, self.weight, self.bias)
        scale = torch.clamp(1.0 / self.weight.norm().clamp_min(1e-12), max=1.0)
        if not self.fast:
            return nn.functional.linear(x, self.weight * scale, self.bias)
        out = nn.functional.linear(x, self.weight)
        return out * scale if self.bias is None else torch.addcmul(self.bias, out, scale)


class Dropout(nn.Dropout):
    """Inverted dropout whose keep mask is drawn from 16-bit random integers (`fast`, the default; `set_kernels`).

    Why: on CPU, `nn.Dropout` draws one Bernoulli variate per element through torch's generic sampler, which cost
    as much as a 1024-wide layer's matrix product in the single-frame networks' training step. Here one 64-bit
    random integer gives four 16-bit draws; an element is kept when its draw is below k = round((1 - p) 2^16) and
    scaled by 2^16 / k, so the mask is unbiased (E[mask] = 1) for a keep probability within 2^-17 of 1 - p (exact
    for p = 0.5 and 0.25). `fast = False` is torch's own dropout, as runs before December 2026 drew it.
    """

    fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.fast and self.training and self.p > 0):
            return super().forward(x)
        keep = max(1, round((1.0 - self.p) * 65536))
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        draws = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
        mask = (draws < keep - 32768).to(x.dtype) * (65536.0 / keep)
        return x * mask


def set_kernels(model: nn.Module, fast: bool) -> None:
    """Choose the training kernels of every max-norm layer and dropout of `model` (`RunConfig.kernels`)."""
    for m in model.modules():
        if isinstance(m, (MaxNormLinear, Dropout)):
            m.fast = fast


def zscore_stats(samples: np.ndarray, ddof: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and standard deviation (floored at 1e-6) of (N, ...) samples, flattened per sample.

    The one normalisation rule of every network that standardises its inputs or targets. `ddof` is explicit
    because two conventions were trained and saved: the input / output statistics (every lifter, TP-Net) use
    the population std (0), method 3's per-root target statistics the sample std (1); unifying them would
    change what those runs reproduce.
    """
    flat = np.asarray(samples).reshape(len(samples), -1).astype(np.float64)
    return torch.from_numpy(flat.mean(0)), torch.from_numpy(np.maximum(flat.std(0, ddof=ddof), 1e-6))


def with_root(pose: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(..., J-1, 3) non-root joints -> (..., J, 3) with the root at the origin: the one root re-insertion."""
    full = pose.new_zeros(pose.shape[:-2] + (layout.num_joints, 3))
    full[..., [j for j in range(layout.num_joints) if j != layout.root], :] = pose
    return full


class Normalizer(nn.Module):
    """Z-score statistics of inputs and targets computed on training data, kept as buffers."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))
        self.register_buffer("out_mean", torch.zeros(out_dim))
        self.register_buffer("out_std", torch.ones(out_dim))

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Set statistics from (N, J, 2) inputs and (N, J', 3) targets."""
        for (mean, std), samples in (((self.in_mean, self.in_std), inputs), ((self.out_mean, self.out_std), targets)):
            m, s = zscore_stats(samples)
            mean.copy_(m)
            std.copy_(s)

    def norm_in(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(-2) - self.in_mean) / self.in_std

    def norm_out(self, y: torch.Tensor) -> torch.Tensor:
        return (y.flatten(-2) - self.out_mean) / self.out_std

    def denorm_out(self, y: torch.Tensor) -> torch.Tensor:
        return (y * self.out_std + self.out_mean).unflatten(-1, (-1, 3))


class LiftingModel(nn.Module):
    """Base of single-frame lifters: normalised 2D in, normalised non-root 3D joints out.

    Subclasses implement `forward(x) -> dict` with at least "pose" (B, 3 * J_out) in normalised
    units, and may override `loss` to add the terms of their paper.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.in_dim = 2 * config.in_layout.num_joints
        self.out_dim = 3 * len(config.out_joints)
        self.normalizer = Normalizer(self.in_dim, self.out_dim)

    def loss(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Default objective: mean squared error of the final pose in normalised units."""
        mse = ((outputs["pose"] - target) ** 2).mean()
        return {"total": mse, "pose": mse}

    def predict(self, screen: torch.Tensor) -> torch.Tensor:
        """(B, J_in, 2) screen coordinates -> (B, J_out_layout, 3) root-relative metres, root at zero."""
        return self.to_metric(self(self.normalizer.norm_in(screen))["pose"])

    def to_metric(self, pose_norm: torch.Tensor) -> torch.Tensor:
        """(B, 3 * J_out) normalised output -> (B, J_out_layout, 3) metres with the root joint at zero."""
        return with_root(self.normalizer.denorm_out(pose_norm), self.config.out_layout)

    def fit_statistics(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Fit the training statistics from (N, J, 2) screen inputs and (N, J3, 3) root-relative targets."""
        self.normalizer.fit(inputs, targets[:, self.config.out_joints])

    def target(self, root_relative: torch.Tensor) -> torch.Tensor:
        """Normalised regression target from (B, J, 3) root-relative metres."""
        return self.normalizer.norm_out(root_relative[..., self.config.out_joints, :])


INITS = ("kaiming", "pytorch")


def init_weights(model: nn.Module, scheme: str) -> None:
    """Kaiming (He) initialisation of every linear (and 2D convolution) layer, as methods 1 and 2 state (and
    Martinez et al.'s code does), or PyTorch's default (`pytorch`, bonelift's earlier behaviour); residual
    refinement heads are zeroed again afterwards so they still start at the identity, and modules with
    `init_outputs` (method 3's head) redraw their output layers."""
    if scheme not in INITS:
        raise BoneliftError(f"option init must be one of {', '.join(INITS)}, got {scheme!r}")
    if scheme == "kaiming":
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:  # the convolutions before batch norm have none
                    nn.init.zeros_(m.bias)
    for m in model.modules():
        if hasattr(m, "start_at_identity"):
            m.start_at_identity()
        if hasattr(m, "init_outputs"):
            m.init_outputs()


def out_joint_mask(config: ModelConfig, joints: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Boolean mask over the 3 * J_out output units that selects `joints` (indices in out_layout)."""
    mask = torch.zeros(len(config.out_joints), 3, dtype=torch.bool)
    for j in joints:
        mask[config.out_joints.index(j)] = True
    return mask.flatten()


__all__ = ["INITS", "LiftingModel", "MaxNormLinear", "ModelConfig", "Normalizer", "init_weights", "out_joint_mask",
           "with_root", "zscore_stats"]
