"""Structure-aware training of any lifter (method 4, Sec. 4.1 and 4.3): anatomical losses on the
2D-only samples' poses, switched on after a 3D warm start, the symmetry loss in a later stage.

`training.single_frame.Trainer` calls `AnatomicalObjective.add` after the model's own loss; nothing here depends on the
model type. Configuration (`TrainConfig`): `losses` maps "geometry", "angle", "symmetry",
"reprojection" to weights; `warmup_epochs` delays them (the paper trains on 3D data only before
weak supervision "so that it learns to output reasonable poses"); `weak_subjects` names the
subjects used as 2D-only data; `losses_on` says which samples the structure losses (eq. 3) supervise:
"weak" (the paper, Fig. 1: the depth module gets L_z3D on 3D samples and L_zSA on 2D-only samples)
or "all" (also the 3D-labelled batch, bonelift's behaviour before December 2026, kept for the record);
`symmetry_epoch` starts the paper's fourth stage, in which the symmetry loss joins (the learning rate
drop of that stage is `TrainConfig.lr_factor`, applied by the trainer's scheduler).

The 2D-only samples join every minibatch from the first step (warm start included, where no loss uses them):
the trainer runs the 3D and 2D-only samples of a step through one train-mode forward pass, so they share
batch-norm statistics as in the paper's Fig. 1, and a row without weak losses sees the same data, draws and
batches as one with them (paired ablations differ only in their losses). The weak terms are blind to the
predicted global scale (`losses.weak_losses`: Zhou et al.'s 2D-only samples never teach scale).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bonelift.datasets import flatten_frames, run_split
from bonelift.errors import BoneliftError
from bonelift.losses import LOSS_NAMES, anatomical_losses, canonical_bone_lengths, weak_losses


class AnatomicalObjective:
    """Adds the weighted anatomical terms of the 2D-only samples (and with `losses_on` "all" of the 3D batch).

    2D-only samples are consumed in equal number to the 3D samples of each step, as the paper's
    schedule does (`sample`; the trainer appends them to the step's one forward pass). Their ground-truth 3D
    is dropped when loaded and never reaches the loss: only their screen coordinates (the network
    input) and image coordinates (`weak_rays`, through their camera, for `losses.weak_pose`) are kept.
    """

    def __init__(
        self,
        weights: dict[str, float],
        warmup_epochs: int,
        canonical: np.ndarray,
        weak_inputs: np.ndarray | None,
        weak_rays: np.ndarray | None = None,
        losses_on: str = "weak",
        symmetry_epoch: int = 0,
    ) -> None:
        unknown = set(weights) - set(LOSS_NAMES)
        if unknown:
            raise BoneliftError(f"unknown loss name(s) {sorted(unknown)} (known: {', '.join(LOSS_NAMES)})")
        if losses_on not in ("weak", "all"):
            raise BoneliftError(f"losses_on must be 'weak' or 'all', got {losses_on!r}")
        if weak_inputs is not None and (weak_rays is None or weak_rays.shape != weak_inputs.shape):
            raise BoneliftError("2D-only samples need their image coordinates (one (J, 2) array per input)")
        self.weights = {k: float(v) for k, v in weights.items() if v}
        self.warmup_epochs = warmup_epochs
        self.losses_on = losses_on
        self.symmetry_epoch = symmetry_epoch
        self.canonical = torch.as_tensor(canonical, dtype=torch.float32)
        self.weak_inputs = None if weak_inputs is None else torch.from_numpy(np.ascontiguousarray(weak_inputs))
        self.weak_rays = None if weak_rays is None else torch.from_numpy(np.ascontiguousarray(weak_rays))

    @classmethod
    def for_run(cls, trainer: Any, train_targets: np.ndarray) -> AnatomicalObjective | None:
        """Build from the trainer's config; None when no anatomical loss or weak subject is configured."""
        cfg = trainer.config
        if not any(cfg.losses.values()) and not cfg.weak_subjects:
            return None
        weak_inputs = weak_rays = None
        if cfg.weak_subjects:
            overlap = set(cfg.weak_subjects) & set(cfg.train_subjects)
            if overlap:
                raise BoneliftError(f"subjects {sorted(overlap)} are both 3D-labelled and 2D-only")
            if trainer.model.config.in_layout != trainer.model.config.out_layout:
                raise BoneliftError("weak supervision needs 2D keypoints in the 3D output layout (e.g. --keypoints gt)")
            weak = flatten_frames(run_split(cfg, cfg.weak_subjects), cfg.stride, image_coords=True)
            weak_inputs, weak_rays = weak["inputs"], weak["image_coords"]
        layout = trainer.model.config.out_layout
        return cls(
            cfg.losses,
            cfg.warmup_epochs,
            canonical_bone_lengths(train_targets, layout),
            weak_inputs,
            weak_rays,
            cfg.losses_on,
            cfg.symmetry_epoch,
        )

    def active(self, epoch: int) -> bool:
        return epoch >= self.warmup_epochs

    def weights_at(self, epoch: int) -> dict[str, float]:
        """The weighted terms of `epoch`: none in the warm start, symmetry only from its stage on."""
        if not self.active(epoch):
            return {}
        return {k: v for k, v in self.weights.items() if k != "symmetry" or epoch >= self.symmetry_epoch}

    def sample(self, n: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor] | None:
        """`n` random 2D-only inputs and their image coordinates for one step, or None without 2D-only data.

        Every process draws the same (world, n) indices from its (equally seeded) generator and keeps its own row,
        so data-parallel processes see distinct samples and one process draws exactly as before.
        """
        if self.weak_inputs is None:
            return None
        idx = torch.randint(len(self.weak_inputs), (world, n))[rank]
        return self.weak_inputs[idx], self.weak_rays[idx]

    def add(
        self,
        trainer: Any,
        outputs: dict[str, torch.Tensor],
        weak_outputs: dict[str, torch.Tensor] | None,
        rays: torch.Tensor | None,
        losses: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Return `losses` with the anatomical terms (prefixed "anat_" on the 3D batch, "weak_") added to "total".

        `outputs` are the 3D samples' network outputs, `weak_outputs` and `rays` the 2D-only samples' of the same
        forward pass (None without 2D-only data).
        """
        weights = self.weights_at(trainer.epoch)
        if not weights:
            return losses
        model = trainer.model
        layout = model.config.out_layout
        canonical = self.canonical.to(outputs["pose"].device)
        losses = dict(losses)
        total = losses["total"]
        if self.losses_on == "all":
            pose = model.to_metric(outputs["pose"])
            for name, value in anatomical_losses(pose, layout, weights, canonical).items():
                losses["anat_" + name] = value
                total = total + weights[name] * value
        if weak_outputs is not None and rays is not None:
            pose_w = model.to_metric(weak_outputs["pose"])
            for name, value in weak_losses(pose_w, rays, layout, weights, canonical).items():
                losses["weak_" + name] = value
                total = total + weights[name] * value
        losses["total"] = total
        return losses
