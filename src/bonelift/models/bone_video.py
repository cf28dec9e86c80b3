"""Method 5: Chen et al., "Anatomy-aware 3D Human Pose Estimation in Videos" (2020), as the authors built it.

The pose of the current frame is decomposed into bone directions (local temporal window) and
bone lengths (frames of the whole video), eq. 1. Every part is switchable through
`VideoModelConfig.options` so the paper's Table 4 ablation can be run:

- `lsc` (default True): fully-convolutional propagating direction network, Sec. 3.2 / Fig. 3:
  `subnets` (2) stacked VideoPose3D trunks, each predicting all bone directions of the current
  frame, normalised to unit length, with its own direction loss (eq. 3). As in the authors' code an
  upper sub-network has no expand layer: it takes the lower one's last hidden feature repeated
  RF / s times (s = first filter width), and each of its blocks concatenates the matching feature of
  the lower sub-network (long skip; none at the head). Gradients are blocked between sub-networks.
  Off: a single trunk (the paper's "Baseline" direction network).
- `ml` (True): the bone-length network predicts 3D joints per sampled frame, trained by MPJPE on
  one randomly chosen frame (eq. 5); off: it predicts bone lengths, trained through their average
  by the bone-length loss (eq. 4, the "AF" row).
- `bone_att` (True): bone-length self-attention (eq. 6) with `gamma` (10) instead of averaging,
  trained by the bone-length loss only.
- `aug` ("auto"): bone-length augmentation batches (Sec. 3.3) train the attention module. "auto"
  lets the trainer decide (`training.video.augment_enabled`): on for detected 2D, off for GT 2D (the paper
  does not augment GT input, Sec. 4.3). The trainer builds them with `augment_bone_lengths`:
  `aug_batch` videos per step (0: one per distinct video in the batch), each bone's length moved
  independently by up to `aug_range` (0.3, the authors' +-30%) of the batch-mean length of that bone.
- `jsl` (True): joint shift loss (eq. 2) over all joint pairs not connected by a bone, on every
  sub-network (each with its own shift head), the lower ones at `lower_weight` (0.5).
- `score_att` (True, only when the config says the inputs carry confidences): visibility scores
  through implicit attention (Sec. 3.5 / Fig. 5).
- `fusion` ("product"): how joints (and joint shifts) come from lengths L and unit directions D.
  "product" is the authors' code: Linear(D) * Linear(L) (element-wise, `channels` wide), then a
  linear layer - a bilinear map that can express eq. 1 exactly. "concat" (alias "fc", the earlier
  default): one linear layer on concat[L, D], which cannot express the product. "analytic": eq. 1.
- `length_frames` (l = 50): frames of one video drawn for the length network in training.
  `test_lengths` ("all"): at inference one set of lengths per video, pooled over all its frames as in
  the authors' code ("draw": over one seeded draw of l frames). Causal models pool over all frames
  <= t (`causal_pool`, exact running softmax), so offline and streaming outputs agree frame by frame.

Loss weights (eq. 7): `lambda_d` 0.015 (eq. 3 summed over the 3(j-1) components), `lambda_l` 0.05
(eq. 4 summed over bones), `lambda_j` 1 (eq. 5 as MPJPE), `lambda_js` 2 on the mean over pairs of
the shift error norm (the authors' code; eq. 2 sums over the 120 pairs, so 2 x mean = sum / 60),
`lower_weight` 0.5 for the lower sub-networks' direction and shift losses (authors' `snd`), and
`lambda_pose` 1 on the final joints' MPJPE (not in eq. 7; trains only the fusion layers, both
inputs detached as in the authors' code). L_JS trains the direction network and the shift heads
(lengths detached). With `ml` the sampled frames' joints are computed without gradient and only
the chosen frames are re-run with gradient (the same maths, far less memory).

Readings of the authors' code (github sunnychencool/Anatomy3D, `common/model.py`, `common/generators.py`,
`run.py`), each an option whose default keeps the earlier behaviour; the bench row `bone-authors` turns all on:

- `aug_joint_loss` (False): eq. 5 also on the augmented skeletons - one drawn frame per augmented video,
  added to L_J (`run.py`: loss_3d_pos_randaug, summed with loss_3d_pos_rand), so the length network also
  sees the augmented lengths (the paper trains it by L_J on real frames only). The trainer then sends the
  augmented frames' new root-relative joints (`aug_targets`).
- `aug_trajectory` ("own"): "random" gives every augmented frame a fresh root, N(0, 0.5 m) per axis around
  (0, -0.3, 5) m in the camera frame (`generators.py`: randomtraj), instead of the frame's own root
  (`training.video.augment_bone_lengths`, `roots`). Sec. 3.3 says only that 2D is re-projected.
- `att_abs` (False): the attention logits are W [X, |X|] + b (`model.py`: boneatt, a Linear on 6j inputs
  with its default bias); eq. 6 writes W X.
- `bn_decay` ("all"): "bottom" decays batch-norm momentum (0.1 -> 0.001, `training.video.bn_momentum`) only
  in the bottom direction sub-network's expand and block norms (`model.py`: set_bn_momentum); its score
  branch, the upper sub-networks and the length network keep 0.1 (`momentum_norms`).
- Training options of `VideoTrainConfig`: `flip_mode` "both" (every window as is and mirrored each epoch,
  `generators.py` / VideoPose3D: the pairs list doubled) instead of a coin per sample, and
  `lr_final_as_epochs` 80 (the rate after the run is lr x 0.95^80 whatever the epoch count; `run.py`
  decays 0.95 per epoch over 80 epochs).
- Augmentation itself: always on in the authors' code (no switch); `aug` "auto" follows the paper (Sec. 4.3:
  none for GT 2D), so `bone-authors` sets `aug` true.

A deviation, off by default: `pose_grad` lets the final-joint loss reach the top direction sub-network (the
paper's "trained together with the whole network" read as end to end). Measured (docs/results.md 5.g, GT 2D, one
seed): 66.14 vs 66.36 mm P1 - no measurable gain; the directions themselves hold method 5 back.

Training cost: lengths are a per-video quantity, so the trainer draws l frames once per distinct
video of a batch (`length_video` maps samples to draws) and the length network runs over those
only. Parameter shapes changed with this design (fusion heads, expand-free upper sub-network):
`bone` checkpoints from before it refuse to load with a clear error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from bonelift import geometry
from bonelift.compat import refuse_old_bone
from bonelift.errors import BoneliftError
from bonelift.geometry import pad_edges
from bonelift.losses import mpjpe_loss
from bonelift.models.base import with_root
from bonelift.models.baseline import ResidualMLP
from bonelift.models.options import NetworkOptions, switch
from bonelift.models.tcn import TemporalBackbone, VideoBatch, VideoModelConfig

FUSIONS = ("product", "concat", "analytic")
_ALIASES = {"fc": "concat"}


@dataclass(frozen=True)
class BoneOptions(NetworkOptions):
    """Options of method 5 (registry entry "bone"); the module docstring gives the paper section of each."""

    lsc: bool = switch(True, "fully-convolutional propagating direction network (`subnets` stacked trunks)")
    subnets: int = switch(2, "stacked direction sub-networks when `lsc` is on")
    ml: bool = switch(True, "the length network predicts 3D joints (eq. 5); off: bone lengths (eq. 4, AF row)")
    bone_att: bool = switch(True, "bone-length self-attention (eq. 6) instead of averaging")
    aug: bool | str = switch("auto", "bone-length augmentation (Sec. 3.3); auto: only for detected 2D", ("auto",))
    jsl: bool = switch(True, "joint shift loss (eq. 2) with its own shift head per sub-network")
    score_att: bool = switch(True, "visibility scores through implicit attention (when inputs carry confidences)")
    fusion: str = switch("product", "joints from lengths and directions: Linear(D) * Linear(L), one linear layer "
                                    "on concat[L, D] (alias fc), or eq. 1 itself", (*FUSIONS, *_ALIASES))
    length_frames: int = switch(50, "l: frames of one video drawn for the length network in training")
    test_lengths: str = switch("all", "lengths at inference: pooled over all frames or over one seeded draw",
                               ("all", "draw"))
    gamma: float = switch(10.0, "temperature of the length attention (eq. 6)")
    aug_range: float = switch(0.3, "largest relative change of a bone's length in augmentation")
    aug_batch: int = switch(0, "augmented videos per step (0: one per distinct video of the batch)")
    lambda_d: float = switch(0.015, "weight of the direction loss (eq. 3)")
    lambda_l: float = switch(0.05, "weight of the bone-length loss (eq. 4)")
    lambda_j: float = switch(1.0, "weight of the length network's joint loss (eq. 5)")
    lambda_js: float = switch(2.0, "weight of the joint shift loss (eq. 2, mean over pairs)")
    lower_weight: float = switch(0.5, "weight of the lower sub-networks' direction and shift losses")
    lambda_pose: float = switch(1.0, "weight of the final joints' MPJPE (trains the fusion layers only)")
    # Readings of the authors' code (off by default, so rows trained before them reproduce).
    aug_joint_loss: bool = switch(False, "eq. 5's joint loss also on the augmented skeletons (authors' code)")
    aug_trajectory: str = switch("own", "root of the augmented frames: the video's own, or drawn per frame around "
                                        "(0, -0.3, 5) m, sd 0.5 m (authors' code)", ("own", "random"))
    att_abs: bool = switch(False, "length attention on [X, |X|] with a bias (authors' code); off: W X, no bias")
    bn_decay: str = switch("all", "batch norms whose momentum decays in training: all, or the bottom direction "
                                  "sub-network's only (authors' code)", ("all", "bottom"))
    # A deviation from the authors' code, measured in docs/results.md 5.g.
    pose_grad: bool = switch(False, "the final joints' MPJPE also trains the top direction sub-network (end to end; "
                                    "authors' code: directions detached)")


def bone_options(config: VideoModelConfig) -> BoneOptions:
    """The switches of this network, checked, with the `fc` alias of `fusion` resolved."""
    opt = BoneOptions.parse(config.options, config.name)
    return replace(opt, fusion=_ALIASES.get(opt.fusion, opt.fusion))


class BoneLengthAttention(nn.Module):
    """Eq. 6: A_i = softmax over the l frames of gamma * W X_iJ, per bone; X_L = sum_i A_i * X_iL.

    `absolute` is the authors' code: W (with a bias) reads [X, |X|], so a logit can grow with a joint's
    distance from the root whatever its sign.
    """

    def __init__(self, in_dim: int, bones: int, gamma: float, absolute: bool = False) -> None:
        super().__init__()
        self.absolute = absolute
        self.W = nn.Linear(2 * in_dim if absolute else in_dim, bones, bias=absolute)
        self.gamma = gamma

    def scores(self, joints: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., bones) attention logits gamma * W X_J (W [X_J, |X_J|] + b when `absolute`)."""
        x = torch.cat([joints, joints.abs()], dim=-1) if self.absolute else joints
        return self.gamma * self.W(x)

    def weights(self, joints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, l, D) -> (B, l, bones) attention weights, summing to 1 over the (unmasked) l frames per bone."""
        s = self.scores(joints)
        if mask is not None:
            s = s.masked_fill(~mask[..., None], float("-inf"))
        return torch.softmax(s, dim=1)

    def forward(self, joints: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return (self.weights(joints, mask) * lengths).sum(dim=1)


class Fusion(nn.Module):
    """(unit directions (B, bones, 3), lengths (B, bones)) -> (B, out): the learned part of eq. 1.

    "product" multiplies a `width`-wide linear map of L with one of D and maps the product linearly:
    with width >= 3 x bones it contains J = sum D_b L_b exactly (channel (b, c) = L_b D_bc).
    "concat" is one linear layer on concat[L, D] (cannot express the product).
    """

    def __init__(self, kind: str, bones: int, out: int, width: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "product":
            self.length_map = nn.Linear(bones, width)
            self.direction_map = nn.Linear(3 * bones, width)
            self.out = nn.Linear(width, out)
        else:
            self.out = nn.Linear(4 * bones, out)

    def forward(self, directions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "product":
            return self.out(self.length_map(lengths) * self.direction_map(directions.flatten(1)))
        return self.out(torch.cat([lengths, directions.flatten(1)], dim=1))


class BoneVideoLifter(nn.Module):
    """Method 5: bone direction network + bone length network with attention + fusion heads."""

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        self.config = config
        self.opt = bone_options(config)
        lay_in, lay = config.in_layout, config.out_layout
        self.layout = lay
        self.n_bones = len(lay.bones)
        self.pairs = geometry.non_bone_pairs(lay)
        fw, c, p = config.filter_widths, config.channels, config.dropout
        conf = lay_in.num_joints if config.confidence and self.opt.score_att else 0
        n_sub = self.opt.subnets if self.opt.lsc else 1
        d_out = 3 * self.n_bones
        subnets = [TemporalBackbone(2 * lay_in.num_joints, d_out, fw, c, p, config.causal, conf_channels=conf)]
        for _ in range(n_sub - 1):
            subnets.append(
                TemporalBackbone(c, d_out, fw, c, p, config.causal, skip_channels=c, expand=False, head_skip=False)
            )
        self.direction = nn.ModuleList(subnets)
        # Bone-length network: the bottom sub-network with convolutions replaced by linear layers (Fig. 4).
        out_len = 3 * (lay.num_joints - 1) if self.opt.ml else self.n_bones
        self.length = ResidualMLP(2 * lay_in.num_joints, out_len, c, len(fw) - 1, p, max_norm=False)
        att_in = 3 * lay.num_joints if self.opt.ml else self.n_bones
        self.attention = (
            BoneLengthAttention(att_in, self.n_bones, self.opt.gamma, self.opt.att_abs) if self.opt.bone_att else None
        )
        kind = self.opt.fusion
        self.joint_fusion = Fusion(kind, self.n_bones, 3 * (lay.num_joints - 1), c) if kind != "analytic" else None
        self.shift_fusion = (
            nn.ModuleList([Fusion(kind, self.n_bones, 3 * len(self.pairs), c) for _ in subnets])
            if kind != "analytic" and self.opt.jsl else None
        )

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """As `nn.Module.load_state_dict`, with a clear refusal of checkpoints of the earlier `bone` design."""
        refuse_old_bone(state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def momentum_norms(self) -> list[nn.Module]:
        """The batch norms whose momentum the trainer decays: all, or with `bn_decay` "bottom" those of the bottom
        direction sub-network but its score branch (the authors' `set_bn_momentum`; the rest keep 0.1)."""
        if self.opt.bn_decay == "all":
            return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        bottom = self.direction[0]
        scores = set(bottom.score.modules()) if bottom.score is not None else set()
        return [m for m in bottom.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in scores]

    # ----- bone directions -------------------------------------------------------------------
    def directions(self, window: torch.Tensor, conf: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, RF, J, 2) windows -> unit bone directions (B, bones, 3) of every sub-network, bottom first.

        The next sub-network takes the previous one's last feature repeated over its first-block
        length and its features through long skips, all detached: no gradient crosses sub-networks.
        """
        x = window.flatten(2).transpose(1, 2)
        c = conf.transpose(1, 2) if conf is not None and self.direction[0].score is not None else None
        out, feats = self.direction[0](x, conf=c)
        outs = [out[:, :, 0]]
        steps = window.shape[1] // self.config.filter_widths[0]
        for net in self.direction[1:]:
            inp = feats[-1].detach().expand(-1, -1, steps)
            out, feats = net(inp, skips=[f.detach() for f in feats])
            outs.append(out[:, :, 0])
        return [unit(o.unflatten(-1, (-1, 3))) for o in outs]

    # ----- bone lengths ----------------------------------------------------------------------
    def frame_estimates(self, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., J_in, 2) frames -> (attention input (..., D), bone lengths (..., bones)) per frame."""
        out, _ = self.length(screen.flatten(-2).reshape(-1, screen.shape[-2] * 2))
        out = out.reshape(*screen.shape[:-2], -1)
        if not self.opt.ml:
            return out, out
        joints = with_root(out.unflatten(-1, (-1, 3)), self.layout)
        return joints.flatten(-2), geometry.bone_lengths(joints, self.layout)

    def pool_lengths(
        self, att_in: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, l, D), (B, l, bones) [valid frames (B, l)] -> (B, bones): eq. 6 attention, or the average."""
        if self.attention is not None:
            return self.attention(att_in, lengths, mask)
        if mask is None:
            return lengths.mean(dim=1)
        w = mask[..., None].to(lengths.dtype)
        return (lengths * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)

    def causal_pool(
        self, att_in: torch.Tensor, lengths: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """(T, D), (T, bones) consecutive frames -> pooled lengths (T, bones) over all frames <= t, and the state.

        A running softmax (log-sum-exp, float64; equal scores = the plain mean): the pool of frame t
        continues from `state`, so a stream fed one frame at a time gets what a whole video gets, with
        memory that does not grow. Positive and negative lengths are accumulated apart (logs of both).
        """
        s = self.attention.scores(att_in) if self.attention is not None else torch.zeros_like(lengths)
        s, v = s.double(), lengths.double()
        parts = [torch.logcumsumexp(s, 0), torch.logcumsumexp(s + v.clamp_min(0).log(), 0),
                 torch.logcumsumexp(s + (-v).clamp_min(0).log(), 0)]
        if state is not None:
            parts = [torch.logaddexp(a, b) for a, b in zip(parts, state)]
        log_z, log_pos, log_neg = parts
        pooled = (log_pos - log_z).exp() - (log_neg - log_z).exp()
        return pooled.to(lengths.dtype), tuple(x[-1] for x in parts)

    # ----- fusion ----------------------------------------------------------------------------
    def fuse(self, directions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, bones, 3) unit directions, (B, bones) lengths -> joints (B, J, 3)."""
        if self.joint_fusion is None:
            return geometry.joints_from_directions(directions, lengths, self.layout)
        return with_root(self.joint_fusion(directions, lengths).unflatten(-1, (-1, 3)), self.layout)

    def shifts(self, level: int, directions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Joint shifts (B, |P|, 3) of the pairs P from sub-network `level`'s directions (its own head)."""
        if self.shift_fusion is None:
            return joint_shifts(geometry.joints_from_directions(directions, lengths, self.layout), self.pairs)
        return self.shift_fusion[level](directions, lengths).unflatten(-1, (-1, 3))

    # ----- training --------------------------------------------------------------------------
    def sample_lengths(self, batch: VideoBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pooled lengths (B, bones) of every sample, the eq. 5 loss, and the per-video draw's (att, lengths).

        `length_inputs` (V, l, J, 2) are one draw per video, `length_video` (B,) the sample's draw (default:
        one draw per sample). Causal: only drawn frames <= `frame_index` plus the sample's own frame count.
        """
        x_len, y_len = batch["length_inputs"], batch["length_targets"]
        n = len(batch["target"])
        vid = batch.get("length_video", torch.arange(n, device=x_len.device))
        if self.opt.ml:
            with torch.no_grad():
                att_in, lengths = self.frame_estimates(x_len)
            # Eq. 5 on one randomly chosen drawn frame per sample (gradient only through it).
            pick = torch.randint(x_len.shape[1], (n,), device=x_len.device)
            chosen, _ = self.frame_estimates(x_len[vid, pick])
            loss_j = mpjpe_loss(chosen.unflatten(-1, (-1, 3)), y_len[vid, pick])
        else:
            att_in, lengths = self.frame_estimates(x_len)
            loss_j = x_len.new_zeros(())
        if not self.config.causal:
            return self.pool_lengths(att_in, lengths)[vid], loss_j, (att_in, lengths)
        index = batch.get("length_index")
        t = batch.get("frame_index")
        if index is None or t is None:
            raise BoneliftError("causal training batches need `length_index` and `frame_index`")
        with torch.no_grad() if self.opt.ml else contextlib.nullcontext():
            own_att, own_len = self.frame_estimates(batch["window"][:, -1])
        mask = torch.cat([index[vid] <= t[:, None], torch.ones_like(t[:, None], dtype=torch.bool)], dim=1)
        pooled = self.pool_lengths(
            torch.cat([att_in[vid], own_att[:, None]], 1), torch.cat([lengths[vid], own_len[:, None]], 1), mask
        )
        return pooled, loss_j, (att_in, lengths)

    def training_loss(self, batch: VideoBatch) -> dict[str, torch.Tensor]:
        """Eq. 7 on one batch (`tcn.VideoBatch`, the model API the video trainer fills): windows, centre
        targets, per-video length draws (`sample_lengths`) and, with augmentation, `aug_inputs` / `aug_lengths`.
        The paper's loss is the model's; which frames are drawn and when augmentation runs is the trainer's."""
        o = self.opt
        target = batch["target"]
        y_dir, y_len = geometry.bone_directions(target, self.layout)
        dirs = self.directions(batch["window"], batch.get("conf"))
        weights = [o.lower_weight] * (len(dirs) - 1) + [1.0]
        # Eq. 3 for every sub-network, summed over the 3(j-1) components; lower sub-networks down-weighted.
        loss_d = sum(w * ((d - y_dir) ** 2).sum(dim=(1, 2)).mean() for w, d in zip(weights, dirs))

        pooled, loss_j, _ = self.sample_lengths(batch)
        loss_l = ((pooled - y_len) ** 2).sum(dim=1).mean()  # eq. 4
        if self.attention is not None and "aug_inputs" in batch:
            x_aug = batch["aug_inputs"]
            with torch.no_grad():
                a_in, a_len = self.frame_estimates(x_aug)
            loss_l = 0.5 * (loss_l + ((self.attention(a_in, a_len) - batch["aug_lengths"]) ** 2).sum(dim=1).mean())
            if o.aug_joint_loss and o.ml:  # authors' code: eq. 5 on one drawn frame per augmented video, added
                pick = torch.randint(x_aug.shape[1], (len(x_aug),), device=x_aug.device)
                rows = torch.arange(len(x_aug), device=x_aug.device)
                chosen, _ = self.frame_estimates(x_aug[rows, pick])
                loss_j = loss_j + mpjpe_loss(chosen.unflatten(-1, (-1, 3)), batch["aug_targets"][rows, pick])

        # Final joints: both inputs detached, so this loss trains only the fusion layers (authors' code); with
        # `pose_grad` it also reaches the top direction sub-network.
        lengths = pooled.detach()
        joints = self.fuse(dirs[-1] if o.pose_grad else dirs[-1].detach(), lengths)
        loss_pose = mpjpe_loss(joints, target)
        # Joint shift loss: per sub-network, lengths detached -> updates the direction network (and shift heads).
        if o.jsl:
            y_js = joint_shifts(target, self.pairs)
            loss_js = sum(w * (self.shifts(k, d, lengths) - y_js).norm(dim=-1).mean()
                          for k, (w, d) in enumerate(zip(weights, dirs)))
        else:
            loss_js = target.new_zeros(())
        total = (o.lambda_d * loss_d + o.lambda_l * loss_l + o.lambda_j * loss_j
                 + o.lambda_js * loss_js + o.lambda_pose * loss_pose)
        return {"total": total, "mpjpe": loss_pose, "direction": loss_d, "length": loss_l, "joints": loss_j,
                "shift": loss_js}

    # ----- inference -------------------------------------------------------------------------
    def forward(
        self, window: torch.Tensor, length_inputs: torch.Tensor, conf: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Windows (B, RF, J, 2) and their length frames (B, l, J, 2) -> "pose" (B, J, 3) metres."""
        att_in, lengths = self.frame_estimates(length_inputs)
        pooled = self.pool_lengths(att_in, lengths)
        dirs = self.directions(window, conf)[-1]
        return {"pose": self.fuse(dirs, pooled), "lengths": pooled, "directions": dirs}

    @torch.no_grad()
    def video_lengths(self, screen: torch.Tensor, chunk: int = 8192,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """(T, J, 2) one video -> its bone lengths: (1, bones) for the whole video, or (T, bones) causal."""
        att_all, len_all = [], []
        for s in range(0, len(screen), chunk):
            a, b = self.frame_estimates(screen[s : s + chunk])
            att_all.append(a)
            len_all.append(b)
        att, lengths = torch.cat(att_all), torch.cat(len_all)
        if self.config.causal:
            return self.causal_pool(att, lengths)[0]
        if self.opt.test_lengths == "draw":
            count = min(self.opt.length_frames, len(screen))
            idx = torch.randperm(len(screen), generator=generator)[:count].to(screen.device)
            att, lengths = att[idx], lengths[idx]
        return self.pool_lengths(att[None], lengths[None])

    @torch.no_grad()
    def infer(self, screen: torch.Tensor, conf: torch.Tensor | None = None, chunk: int = 1024,
              generator: torch.Generator | None = None, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(T, J, 2) one sequence -> (T, J_out, 3) (or only `frames`): windows batched `chunk` at a
        time (memory bounded by the chunk).

        One set of bone lengths per video (`video_lengths`): the same for every frame, or for causal
        models pooled over all frames <= t, as `StreamingLifter` does frame by frame.
        """
        n, dev = len(screen), screen.device
        lengths = self.video_lengths(screen, generator=generator)
        left, right = self.config.pad
        x = pad_edges(screen, left, right)
        c = pad_edges(conf, left, right) if conf is not None else None
        rf = self.config.receptive_field
        outs = []
        frames = torch.arange(n, device=dev) if frames is None else frames.to(dev)
        for t in frames.split(chunk):
            pooled = lengths[t] if self.config.causal else lengths.expand(len(t), -1)
            win = x.unfold(0, rf, 1)[t].permute(0, 3, 1, 2)
            cw = c.unfold(0, rf, 1)[t].permute(0, 2, 1) if c is not None else None
            outs.append(self.fuse(self.directions(win, cw)[-1], pooled))
        return torch.cat(outs)


def unit(v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(..., 3) vectors scaled to unit length (the network's directions, before L_D and the fusion)."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


def joint_shifts(joints: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """(..., J, 3) -> (..., |P|, 3) relative shifts J_k2 - J_k1 for the pairs of eq. 2."""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    return joints[..., b, :] - joints[..., a, :]
