"""Training of single-frame lifters (methods 1-4): data preparation and the batch step of the one loop.

Launch under `torchrun --nproc_per_node N` to train data-parallel over N processes.
"""

from __future__ import annotations

from typing import Any

import torch

from bonelift import checkpoints
from bonelift.config import TrainConfig
from bonelift.datasets import PoseSequence, flatten_frames, run_split
from bonelift.errors import BoneliftError
from bonelift.evaluation import evaluate_model
from bonelift.geometry import mirror
from bonelift.models import SINGLE_FRAME, build_model
from bonelift.training.anatomy import AnatomicalObjective
from bonelift.training.loop import Run

Splits = tuple[list[PoseSequence], list[PoseSequence]]


class Trainer(Run):
    """Owns the model, optimiser and data of one run; `fit()` trains, monitoring every epoch.

    The caller's configuration is copied, never changed: the copy records the layouts found in the data.
    `splits` (train, test) reuses sequences already loaded (a benchmark trains several models on them).
    """

    kind = SINGLE_FRAME

    def __init__(
        self,
        config: TrainConfig,
        resume: bool = False,
        progress: bool = True,
        splits: Splits | None = None,
        overwrite: bool = False,
        override: bool = False,
    ) -> None:
        config = self.begin(config, resume, progress, overwrite, data_parallel=True, override=override)

        train_seqs, self.test_seqs = splits or (run_split(config, config.train_subjects), run_split(config))
        config.model.input_layout = train_seqs[0].layout.name
        config.model.output_layout = train_seqs[0].layout_3d.name
        self.model = build_model(config.model)
        # Models that classify the true 2D (method 3) get each sample's projected ground truth with its loss.
        wants_gt2d = getattr(self.model, "needs_gt2d", False)
        frames = flatten_frames(train_seqs, config.stride, gt2d=wants_gt2d)
        self.inputs = torch.from_numpy(frames["inputs"])
        self.targets = torch.from_numpy(frames["targets"])
        self.gt2d = torch.from_numpy(frames["gt2d"]) if wants_gt2d else None

        self.model.fit_statistics(frames["inputs"], frames["targets"])
        if config.init_from:
            init, init_cfg, _ = checkpoints.rebuild(config.init_from, kind=SINGLE_FRAME)
            if init_cfg.model.name != config.model.name or init_cfg.model.input_layout != config.model.input_layout:
                raise BoneliftError(
                    f"{config.init_from}: model {init_cfg.model.name}/{init_cfg.model.input_layout} "
                    f"cannot start a {config.model.name}/{config.model.input_layout} run"
                )
            self.model.load_state_dict(init.state_dict())
        self.model.to(self.device)
        self.anatomy = AnatomicalObjective.for_run(self, frames["targets"])
        if self.world > 1:
            self._net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.optimizer = self.make_optimizer()
        steps_per_decay = max(1, config.lr_decay_samples // (config.batch_size * self.world))
        steps_per_epoch = max(1, len(range(self.rank, len(self.inputs), self.world)) // config.batch_size)

        def decay(step: int) -> float:
            """Per-sample exponential decay, or with `lr_step_epochs` a staircase over epochs (method 3)."""
            if config.lr_step_epochs:
                return config.lr_decay ** (step // (steps_per_epoch * config.lr_step_epochs))
            return config.lr_decay ** (step / steps_per_decay)

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: decay(step) * config.lr_factor(step, steps_per_epoch)
        )
        self.start(resume)

    def num_samples(self) -> int:
        return len(self.inputs)

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config
        x, y = self.inputs[rows], self.targets[rows]
        g = self.gt2d[rows] if self.gt2d is not None else None
        if cfg.flip:
            half = torch.rand(len(rows)) < 0.5
            x, y = x.clone(), y.clone()
            x[half] = mirror(x[half], self.model.config.in_layout)
            y[half] = mirror(y[half], self.model.config.out_layout)
            if g is not None:
                g = g.clone()
                g[half] = mirror(g[half], self.model.config.out_layout)
        if cfg.noise_px > 0:
            x = x + torch.randn_like(x) * (2 * cfg.noise_px / 1000.0)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        weak = self.anatomy.sample(len(rows), self.rank, self.world) if self.anatomy is not None else None
        if weak is None:
            out, out_w, rays = self.net(self.model.normalizer.norm_in(x)), None, None
        else:
            # One mixed minibatch (method 4, Fig. 1): the 2D-only samples share the 3D samples' forward pass and
            # batch-norm statistics; the outputs are split back, 3D samples first.
            xw, rays = (t.to(self.device, non_blocking=True) for t in weak)
            both = self.net(self.model.normalizer.norm_in(torch.cat([x, xw])))
            out, out_w = ({k: v[part] for k, v in both.items()} for part in (slice(0, len(x)), slice(len(x), None)))
        extra = {} if g is None else {"gt2d": g.to(self.device, non_blocking=True), "epoch": self.epoch}
        losses = self.model.loss(out, self.model.target(y), **extra)
        if self.anatomy is not None:
            losses = self.anatomy.add(self, out, out_w, rays, losses)
        return losses

    def monitor(self) -> dict[str, Any]:
        """Per-epoch scores on the frame pairs of every `eval_stride`-th test frame."""
        return evaluate_model(
            self.model, self.test_seqs, stride=self.config.eval_stride, device=self.device, progress=False
        )


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    splits: Splits | None = None,
    overwrite: bool = False,
    override: bool = False,
) -> Trainer:
    """Python API of `bonelift train`: build a trainer, fit it, return it (model in `.model`)."""
    trainer = Trainer(config, resume=resume, progress=progress, splits=splits, overwrite=overwrite, override=override)
    trainer.fit()
    return trainer
