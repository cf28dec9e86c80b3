"""Temporal convolutional lifter: Pavllo et al., "3D human pose estimation in video with temporal
convolutions and semi-supervised training" (CVPR 2019), Sec. 3 and Fig. 2 (VideoPose3D).

Dilated 1D convolutions over a window of 2D keypoints: an expand convolution, then residual blocks
of (kernel W, dilation W^i) + 1x1 convolutions, batch norm, ReLU and dropout; the receptive field is
the product of the filter widths (27, 81, 243 for 3, 4, 5 widths of 3). Two equivalent ways to run
the same weights:

- *windowed* (`dense=False`): kernel W applied with stride W and no dilation, one output frame per
  window of exactly one receptive field. This is the paper's fast training mode, and the only mode
  of method 5 whose upper sub-networks take a per-window input.
- *sequence* (`dense=True`): kernel W with dilation, one output per input position past the first
  receptive field - the inference mode that shares computation between neighbouring frames.

`causal=True` aligns every residual with the last frame of its window instead of the centre, so
the prediction for frame t only uses frames t - RF + 1 .. t (the caller pads on the left only).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import torch
from torch import nn
from torch.nn import functional as F

from bonelift.errors import BoneliftError
from bonelift.geometry import pad_edges
from bonelift.losses import mpjpe_loss
from bonelift.models.base import Dropout, LayoutsMixin, with_root
from bonelift.models.options import NetworkOptions, switch


def filter_widths_for(receptive_field: int) -> tuple[int, ...]:
    """Filter widths of 3 whose product is `receptive_field` (27 -> (3, 3, 3))."""
    n = round(math.log(receptive_field, 3)) if receptive_field > 1 else 0
    if n < 1 or 3**n != receptive_field:
        raise BoneliftError(f"receptive field must be a power of 3 (>= 3), got {receptive_field}")
    return (3,) * n


@dataclass
class VideoModelConfig(LayoutsMixin):
    """Architecture of a temporal lifter; stored in every video checkpoint so it can be rebuilt."""

    name: str = field(default="tcn", metadata={"help": "video network: tcn (VideoPose3D) or bone (method 5)"})
    input_layout: str = "h36m17"
    output_layout: str = "h36m17"
    receptive_field: int = field(default=27, metadata={"help": "frames seen per output frame: 27, 81 or 243"})
    channels: int = field(default=1024, metadata={"help": "convolution channels", "min": 1})
    dropout: float = field(default=0.25, metadata={"help": "dropout probability", "min": 0, "below": 1})
    causal: bool = field(default=False, metadata={"help": "past and current frames only (live use)"})
    confidence: bool = False  # inputs carry per-joint detector confidences
    reframe: bool = field(default=False, metadata={
        "help": "centre and scale each clip's 2D before the network (geometry.reframe_clip; causal: running "
                "means), for lifters trained on many cameras", "flag": "--reframe-clips"})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "network-specific switch KEY=VALUE "
                                                                            "(`bonelift models` lists them)"})

    @property
    def filter_widths(self) -> tuple[int, ...]:
        return filter_widths_for(self.receptive_field)

    @property
    def pad(self) -> tuple[int, int]:
        """Frames of context (before, after) the current frame that a window needs."""
        rf = self.receptive_field
        return (rf - 1, 0) if self.causal else ((rf - 1) // 2, (rf - 1) // 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TemporalBackbone(nn.Module):
    """The VideoPose3D trunk, with two hooks method 5 needs.

    `skip_channels` > 0 makes every block (and the head) accept `skip_channels` extra channels
    concatenated to its input - the long skip connections of method 5 (Fig. 3). `conf_channels` > 0
    adds the visibility-score branch of method 5 (Fig. 5): a conv block maps the confidences to the
    hidden size, is multiplied element-wise with the keypoint feature (implicit attention) and the
    product is concatenated to that feature. `expand=False` drops the expand layer: the input (with
    `in_channels == channels`) is already a hidden feature at the first block's temporal resolution,
    as in method 5's upper sub-networks, which take the lower one's last feature repeated. `head_skip`
    (default on when `skip_channels`) also concatenates the last skip to the head's input.
    """

    def __init__(
        self, in_channels: int, out_channels: int, filter_widths: tuple[int, ...], channels: int, dropout: float,
        causal: bool, skip_channels: int = 0, conf_channels: int = 0, first_kernel: int | None = None,
        expand: bool = True, head_skip: bool = True,
    ) -> None:
        super().__init__()
        self.widths = (first_kernel or filter_widths[0],) + tuple(filter_widths[1:])
        self.causal = causal
        self.drop = Dropout(dropout)
        if not expand and (in_channels != channels or conf_channels):
            raise BoneliftError("a backbone without expand layer takes `channels` hidden channels and no scores")
        self.expand = nn.Conv1d(in_channels, channels, self.widths[0], bias=False) if expand else None
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1) if expand else None
        self.head_skip = head_skip and skip_channels > 0
        self.score = None
        extra0 = 0
        if conf_channels:
            self.score = nn.Sequential(
                nn.Conv1d(conf_channels, channels, self.widths[0], bias=False), nn.BatchNorm1d(channels), nn.ReLU()
            )
            extra0 = channels
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.points = nn.ModuleList()
        self.point_bns = nn.ModuleList()
        for i, w in enumerate(self.widths[1:]):
            extra = skip_channels + (extra0 if i == 0 else 0)
            self.convs.append(nn.Conv1d(channels + extra, channels, w, bias=False))
            self.bns.append(nn.BatchNorm1d(channels))
            self.points.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.point_bns.append(nn.BatchNorm1d(channels))
        head_in = channels + (skip_channels if self.head_skip else 0) + (extra0 if len(self.widths) == 1 else 0)
        self.head = nn.Conv1d(head_in, out_channels, 1)

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor, level: int, dense: bool) -> torch.Tensor:
        w = conv.kernel_size[0]
        if dense:
            dilation = math.prod(self.widths[:level])
            return F.conv1d(x, conv.weight, conv.bias, dilation=dilation)
        return F.conv1d(x, conv.weight, conv.bias, stride=w)

    def _residual(self, x: torch.Tensor, level: int, dense: bool) -> torch.Tensor:
        w = self.widths[level]
        if dense:
            pad = (w - 1) * math.prod(self.widths[:level]) // 2
            shift = pad if self.causal else 0
            return x[:, :, pad + shift : x.shape[2] - pad + shift]
        return x[:, :, (w - 1 if self.causal else w // 2) :: w]

    def forward(
        self, x: torch.Tensor, dense: bool = False, conf: torch.Tensor | None = None,
        skips: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C_in, T) -> output (B, C_out, T') and the feature after the expand layer and each block.

        `skips[i]` (B, skip_channels, T_i) is concatenated to feature i before it is consumed.
        """
        if self.expand is None:
            h = x
        else:
            h = self.drop(F.relu(self.expand_bn(self._conv(self.expand, x, 0, dense))))
        if self.score is not None:
            if conf is None:
                raise BoneliftError("this model was built for keypoint confidences; pass them")
            s = self.score[0]
            s = self.score[2](self.score[1](self._conv(s, conf, 0, dense)))
            h_in = torch.cat([h, h * s], dim=1)
        else:
            h_in = h
        feats = [h]
        for i in range(len(self.convs)):
            if skips is not None:
                h_in = torch.cat([h_in, skips[i]], dim=1)
            res = self._residual(h, i + 1, dense)
            y = self.drop(F.relu(self.bns[i](self._conv(self.convs[i], h_in, i + 1, dense))))
            h = res + self.drop(F.relu(self.point_bns[i](self.points[i](y))))
            feats.append(h)
            h_in = h
        if skips is not None and self.head_skip:
            h_in = torch.cat([h_in, skips[len(self.convs)]], dim=1)
        return self.head(h_in), feats


class VideoBatch(TypedDict, total=False):
    """The training batch every video lifter's `training_loss` reads: the model API its trainer
    (`training.video.VideoTrainer.batch`) fills, so the two are tied by these declared keys, not by strings
    each side guesses. The trainer owns the sampling policy (which frames, draws and augmentations);
    the model owns its loss on them.

    window (B, RF, J_in, 2), target (B, J_out - 1, 3) and conf (B, RF, J_in) when inputs carry confidences:
    every lifter. Method 5 only: length_inputs (V, l, J_in, 2) / length_targets (V, l, J_out - 1, 3), one draw of
    l frames per distinct video; length_video (B,) each sample's draw; causal: length_index (V, l) the drawn
    frames and frame_index (B,) the sample's frame; with bone-length augmentation aug_inputs (Ba, l, J_in, 2)
    and aug_lengths (Ba, bones), and with `aug_joint_loss` aug_targets (Ba, l, J_out, 3) root relative.
    """

    window: torch.Tensor
    target: torch.Tensor
    conf: torch.Tensor
    length_inputs: torch.Tensor
    length_targets: torch.Tensor
    length_video: torch.Tensor
    length_index: torch.Tensor
    frame_index: torch.Tensor
    aug_inputs: torch.Tensor
    aug_lengths: torch.Tensor
    aug_targets: torch.Tensor


@dataclass(frozen=True)
class TCNOptions(NetworkOptions):
    """Options of the VideoPose3D lifter (registry entry "tcn")."""

    score_att: bool = switch(True, "visibility scores through implicit attention (when inputs carry confidences)")


class TemporalConvLifter(nn.Module):
    """VideoPose3D: 2D keypoint windows -> root-relative 3D joints (metres) of the current frame."""

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        self.config = config
        j_in, j_out = config.in_layout.num_joints, config.out_layout.num_joints
        self.backbone = TemporalBackbone(
            2 * j_in, 3 * (j_out - 1), config.filter_widths, config.channels, config.dropout, config.causal,
            conf_channels=j_in if config.confidence and TCNOptions.parse(config.options, config.name).score_att else 0,
        )

    def forward(
        self, x: torch.Tensor, conf: torch.Tensor | None = None, dense: bool = False
    ) -> dict[str, torch.Tensor]:
        """(B, T, J, 2) screen keypoints (T = RF in windowed mode) -> "pose" (B, T', J_out, 3) metres."""
        inp = x.flatten(2).transpose(1, 2)
        c = conf.transpose(1, 2) if conf is not None and self.backbone.score is not None else None
        out, _ = self.backbone(inp, dense=dense, conf=c)
        pose = out.transpose(1, 2).unflatten(-1, (-1, 3))
        return {"pose": with_root(pose, self.config.out_layout)}

    def training_loss(self, batch: VideoBatch) -> dict[str, torch.Tensor]:
        """MPJPE of the centre frame (the model API the video trainer calls)."""
        pred = self(batch["window"], batch.get("conf"))["pose"][:, 0]
        loss = mpjpe_loss(pred, batch["target"])
        return {"total": loss, "mpjpe": loss}

    @torch.no_grad()
    def infer(self, screen: torch.Tensor, conf: torch.Tensor | None = None, chunk: int = 4096,
              generator: torch.Generator | None = None, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(T, J, 2) one whole sequence -> (T, J_out, 3) (or only `frames`), in sequence mode over
        edge-padded chunks.

        Memory is bounded by `chunk` + RF frames however long the video (VideoPose3D pads the
        sequence ends by replicating the first and last frames).
        """
        left, right = self.config.pad
        x = pad_edges(screen, left, right)
        c = pad_edges(conf, left, right) if conf is not None else None
        rf, n = self.config.receptive_field, len(screen)
        outs = []
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            sub_c = c[None, s : e + rf - 1] if c is not None else None
            outs.append(self(x[None, s : e + rf - 1], sub_c, dense=True)["pose"][0])
        pose = torch.cat(outs)
        return pose if frames is None else pose[frames]
