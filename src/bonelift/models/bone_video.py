"""Method 5: Chen et al., "Anatomy-aware 3D Human Pose Estimation in Videos" (2020).

The pose of the current frame is decomposed into bone directions (local temporal window) and
bone lengths (frames sampled from the whole video), eq. 1. Every part is switchable through
`VideoModelConfig.options` so the paper's Table 4 ablation can be run:

- `lsc` (default True): fully-convolutional propagating direction network, Sec. 3.2 / Fig. 3:
  `subnets` (2) stacked VideoPose3D trunks, each predicting all bone directions of the current
  frame with its own direction loss (eq. 3); the output of one sub-network is repeated RF / s times
  (s = first filter width) as the input of the next; the output of each residual block is
  concatenated with the matching block of the next sub-network; gradients are blocked between
  sub-networks. Off: a single trunk (the paper's "Baseline" direction network).
- `ml` (True): the bone-length network predicts 3D joints per sampled frame, trained by MPJPE on
  one randomly chosen frame (eq. 5); off: it predicts bone lengths, trained through their average
  by the bone-length loss (eq. 4, the "AF" row).
- `bone_att` (True): bone-length self-attention (eq. 6) with `gamma` (10) instead of averaging,
  trained by the bone-length loss only.
- `aug` (True): bone-length augmentation batches (Sec. 3.3) train the attention module; the batches
  are built by the trainer with `augment_bone_lengths`: `aug_batch` augmented videos per step (0: as
  many as the batch size, as in the paper), new lengths within `aug_range` (0.2) of the video's.
- `jsl` (True): joint shift loss (eq. 2) over all joint pairs not connected by a bone, updating only
  the direction network.
- `score_att` (True, only when the config says the inputs carry confidences): visibility scores
  through implicit attention (Sec. 3.5 / Fig. 5).
- `fusion` ("fc"): final joints and joint shifts regressed by one linear layer each from the
  concatenated length and direction vectors (the paper's implementation notes, Sec. 4.2);
  "analytic" derives them with eq. 1.
- `length_frames` (l = 50), loss weights `lambda_d` 0.015, `lambda_l` 0.05, `lambda_j` 1,
  `lambda_js` 0.1 (eq. 7) and `lambda_pose` 1.

Deviations, all documented where they occur: the loss on the final joints (`lambda_pose`) is
not in eq. 7 but the fc fusion layers need a target; L_J and L_JS are averaged (MPJPE as in
VideoPose3D, mean over pairs) instead of squared/summed, so the published weights keep the terms
commensurate with metres; with `ml` the sampled frames' joints are computed without gradient and
only the chosen frame is re-run with gradient (the same maths, far less memory).
Interpretation of Fig. 3 (not shown in the text): an upper sub-network's expand layer is a 1x1
convolution over the repeated directions, so its features have the temporal length of the lower
sub-network's and each level can be concatenated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bonelift import geometry
from bonelift.errors import BoneliftError
from bonelift.geometry import pad_edges
from bonelift.losses import mpjpe_loss
from bonelift.models.base import with_root
from bonelift.models.baseline import ResidualMLP
from bonelift.models.tcn import TemporalBackbone, VideoModelConfig

DEFAULTS: dict[str, Any] = {
    "lsc": True, "subnets": 2, "ml": True, "bone_att": True, "aug": True, "jsl": True, "score_att": True,
    "fusion": "fc", "length_frames": 50, "gamma": 10.0, "aug_range": 0.2, "aug_batch": 0,
    "lambda_d": 0.015, "lambda_l": 0.05, "lambda_j": 1.0, "lambda_js": 0.1, "lambda_pose": 1.0,
}


def bone_options(config: VideoModelConfig) -> dict[str, Any]:
    """The switches of this network: `DEFAULTS` updated by the configuration (keys checked by the registry)."""
    return {**DEFAULTS, **config.options}


class BoneLengthAttention(nn.Module):
    """Eq. 6: A_i = softmax over the l frames of gamma * W X_iJ, per bone; X_L = sum_i A_i * X_iL."""

    def __init__(self, in_dim: int, bones: int, gamma: float) -> None:
        super().__init__()
        self.W = nn.Linear(in_dim, bones, bias=False)
        self.gamma = gamma

    def weights(self, joints: torch.Tensor) -> torch.Tensor:
        """(B, l, J*3) -> (B, l, bones) attention weights, summing to 1 over l for every bone."""
        return torch.softmax(self.gamma * self.W(joints), dim=1)

    def forward(self, joints: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return (self.weights(joints) * lengths).sum(dim=1)


class BoneVideoLifter(nn.Module):
    """Method 5: bone direction network + bone length network with attention + fusion head."""

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        self.config = config
        self.opt = bone_options(config)
        lay_in, lay = config.in_layout, config.out_layout
        self.layout = lay
        self.n_bones = len(lay.bones)
        self.pairs = geometry.non_bone_pairs(lay)
        fw, c, p = config.filter_widths, config.channels, config.dropout
        conf = lay_in.num_joints if config.confidence and self.opt["score_att"] else 0
        n_sub = int(self.opt["subnets"]) if self.opt["lsc"] else 1
        d_out = 3 * self.n_bones
        subnets = [TemporalBackbone(2 * lay_in.num_joints, d_out, fw, c, p, config.causal, conf_channels=conf)]
        for _ in range(n_sub - 1):
            subnets.append(TemporalBackbone(d_out, d_out, fw, c, p, config.causal, skip_channels=c, first_kernel=1))
        self.direction = nn.ModuleList(subnets)
        # Bone-length network: the bottom sub-network with convolutions replaced by linear layers (Fig. 4).
        out_len = 3 * (lay.num_joints - 1) if self.opt["ml"] else self.n_bones
        self.length = ResidualMLP(2 * lay_in.num_joints, out_len, c, len(fw) - 1, p, max_norm=False)
        att_in = 3 * lay.num_joints if self.opt["ml"] else self.n_bones
        self.attention = BoneLengthAttention(att_in, self.n_bones, float(self.opt["gamma"])) if self.opt["bone_att"] else None
        if self.opt["fusion"] == "fc":
            self.joint_head = nn.Linear(4 * self.n_bones, 3 * (lay.num_joints - 1))
            self.shift_head = nn.Linear(4 * self.n_bones, 3 * len(self.pairs))
        elif self.opt["fusion"] != "analytic":
            raise BoneliftError(f"fusion must be 'fc' or 'analytic', got {self.opt['fusion']!r}")

    # ----- bone directions -------------------------------------------------------------------
    def directions(self, window: torch.Tensor, conf: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, RF, J, 2) windows -> raw direction outputs (B, bones, 3) of every sub-network, bottom first.

        The next sub-network sees the previous output repeated over its first-block length and the
        previous features through long skips; both are detached so no gradient crosses sub-networks.
        """
        x = window.flatten(2).transpose(1, 2)
        c = conf.transpose(1, 2) if conf is not None and self.direction[0].score is not None else None
        out, feats = self.direction[0](x, conf=c)
        outs = [out[:, :, 0]]
        steps = window.shape[1] // self.config.filter_widths[0]
        for net in self.direction[1:]:
            inp = outs[-1].detach()[:, :, None].expand(-1, -1, steps)
            out, feats = net(inp, skips=[f.detach() for f in feats])
            outs.append(out[:, :, 0])
        return [o.unflatten(-1, (-1, 3)) for o in outs]

    # ----- bone lengths ----------------------------------------------------------------------
    def frame_estimates(self, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., J_in, 2) frames -> (attention input (..., D), bone lengths (..., bones)) per frame."""
        out, _ = self.length(screen.flatten(-2).reshape(-1, screen.shape[-2] * 2))
        out = out.reshape(*screen.shape[:-2], -1)
        if not self.opt["ml"]:
            return out, out
        joints = with_root(out.unflatten(-1, (-1, 3)), self.layout)
        return joints.flatten(-2), geometry.bone_lengths(joints, self.layout)

    def pool_lengths(self, att_in: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, l, D), (B, l, bones) -> (B, bones): eq. 6 attention, or the plain average without it."""
        if self.attention is None:
            return lengths.mean(dim=1)
        return self.attention(att_in, lengths)

    # ----- fusion ----------------------------------------------------------------------------
    def fuse(self, directions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, bones, 3), (B, bones) -> joints (B, J, 3) and joint shifts (B, |P|, 3) for the pairs P."""
        if self.opt["fusion"] == "fc":
            z = torch.cat([lengths, directions.flatten(1)], dim=1)
            joints = with_root(self.joint_head(z).unflatten(-1, (-1, 3)), self.layout)
            return joints, self.shift_head(z).unflatten(-1, (-1, 3))
        unit = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        joints = geometry.joints_from_directions(unit, lengths, self.layout)
        return joints, joint_shifts(joints, self.pairs)

    # ----- training --------------------------------------------------------------------------
    def training_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 7 on one batch: windows, centre targets, `length_inputs`/`length_targets` (B, l, ...) and,
        with `aug`, `aug_inputs` (Ba, l, J, 2) / `aug_lengths` (Ba, bones)."""
        o = self.opt
        target = batch["target"]
        y_dir, y_len = geometry.bone_directions(target, self.layout)
        dirs = self.directions(batch["window"], batch.get("conf"))
        # Eq. 3 for every sub-network, summed over the 3(j-1) components.
        loss_d = sum(((d - y_dir) ** 2).sum(dim=(1, 2)).mean() for d in dirs)

        x_len = batch["length_inputs"]
        if o["ml"]:
            with torch.no_grad():
                att_in, lengths = self.frame_estimates(x_len)
            # Eq. 5 on one randomly chosen sampled frame per example (gradient only through it).
            pick = torch.randint(x_len.shape[1], (len(x_len),), device=x_len.device)
            rows = torch.arange(len(x_len), device=x_len.device)
            chosen, _ = self.frame_estimates(x_len[rows, pick])
            loss_j = mpjpe_loss(chosen.unflatten(-1, (-1, 3)), batch["length_targets"][rows, pick])
        else:
            att_in, lengths = self.frame_estimates(x_len)
            loss_j = target.new_zeros(())
        pooled = self.pool_lengths(att_in.detach() if o["ml"] else att_in, lengths.detach() if o["ml"] else lengths)
        loss_l = ((pooled - y_len) ** 2).sum(dim=1).mean()  # eq. 4
        if o["aug"] and self.attention is not None and "aug_inputs" in batch:
            with torch.no_grad():
                a_in, a_len = self.frame_estimates(batch["aug_inputs"])
            loss_l = 0.5 * (loss_l + ((self.attention(a_in, a_len) - batch["aug_lengths"]) ** 2).sum(dim=1).mean())

        # Fusion and joint shift loss see the lengths detached: they update the direction network only.
        joints, shifts = self.fuse(dirs[-1], pooled.detach())
        loss_pose = mpjpe_loss(joints, target)
        loss_js = (shifts - joint_shifts(target, self.pairs)).norm(dim=-1).mean() if o["jsl"] else target.new_zeros(())
        total = (o["lambda_d"] * loss_d + o["lambda_l"] * loss_l + o["lambda_j"] * loss_j
                 + o["lambda_js"] * loss_js + o["lambda_pose"] * loss_pose)
        return {"total": total, "mpjpe": loss_pose, "direction": loss_d, "length": loss_l, "joints": loss_j, "shift": loss_js}

    # ----- inference -------------------------------------------------------------------------
    def forward(self, window: torch.Tensor, length_inputs: torch.Tensor, conf: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Windows (B, RF, J, 2) and their sampled frames (B, l, J, 2) -> "pose" (B, J, 3) metres."""
        att_in, lengths = self.frame_estimates(length_inputs)
        pooled = self.pool_lengths(att_in, lengths)
        dirs = self.directions(window, conf)[-1]
        joints, _ = self.fuse(dirs, pooled)
        return {"pose": joints, "lengths": pooled, "directions": dirs}

    @torch.no_grad()
    def infer(self, screen: torch.Tensor, conf: torch.Tensor | None = None, chunk: int = 1024,
              generator: torch.Generator | None = None, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(T, J, 2) one sequence -> (T, J_out, 3) (or only `frames`): windows batched `chunk` at a
        time (memory bounded by the chunk).

        Per-frame length estimates are computed once for the sequence; each frame then pools l frames
        drawn at random from the whole video (causal: from frames <= t), as in training (Sec. 3.4).
        """
        n, dev = len(screen), screen.device
        count = int(self.opt["length_frames"])
        att_all, len_all = [], []
        for s in range(0, n, 8 * chunk):
            a, b = self.frame_estimates(screen[s : s + 8 * chunk])
            att_all.append(a)
            len_all.append(b)
        att_all, len_all = torch.cat(att_all), torch.cat(len_all)
        left, right = self.config.pad
        x = pad_edges(screen, left, right)
        c = pad_edges(conf, left, right) if conf is not None else None
        rf = self.config.receptive_field
        outs = []
        frames = torch.arange(n, device=dev) if frames is None else frames.to(dev)
        for t in frames.split(chunk):
            idx = sample_frames(t, n, count, self.config.causal, generator)
            pooled = self.pool_lengths(att_all[idx], len_all[idx])
            win = x.unfold(0, rf, 1)[t].permute(0, 3, 1, 2)
            cw = c.unfold(0, rf, 1)[t].permute(0, 2, 1) if c is not None else None
            joints, _ = self.fuse(self.directions(win, cw)[-1], pooled)
            outs.append(joints)
        return torch.cat(outs)


def sample_frames(t: torch.Tensor, length: int, count: int, causal: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, count) frame indices drawn uniformly from the whole sequence, or from frames <= t if causal."""
    u = torch.rand((len(t), count), generator=generator, device="cpu").to(t.device)
    upper = (t + 1).to(u.dtype)[:, None] if causal else torch.full((len(t), 1), float(length), device=t.device)
    return (u * upper).long().clamp_max(length - 1)


def joint_shifts(joints: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """(..., J, 3) -> (..., |P|, 3) relative shifts J_k2 - J_k1 for the pairs of eq. 2."""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    return joints[..., b, :] - joints[..., a, :]
