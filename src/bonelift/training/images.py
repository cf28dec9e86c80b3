"""Training of method 3's image CNN (`method3-image`) on ImageSet files: the batch step of the one loop.

Sec. 4 of the paper: the stored person crops are resized to 250/225 of the network input and a random
crop of the input size is taken per sample (joints moved with it), with AlexNet's PCA colour noise
(the eigen-decomposition of the training images' RGB covariance); SGD with momentum, a staircase
learning rate and the epoch passed to the loss for eq. 6's lambda_2D schedule. The training crops are
kept as uint8 on the run's device (the GPU when there is one), so a batch is indexed, cropped and
augmented there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bonelift.config import ImageTrainConfig
from bonelift.datasets.image_prep import (
    crop_batch,
    lighting_basis,
    pca_lighting,
    random_offsets,
    resize_images,
    resized_side,
    rgb_statistics,
    select_images,
)
from bonelift.datasets.images import ImageSet, load_image_set
from bonelift.evaluation import evaluate_image_model
from bonelift.models import IMAGE, build_model
from bonelift.training.loop import Run

ImageSplits = tuple[ImageSet, ImageSet]


def load_image_split(config: ImageTrainConfig) -> ImageSplits:
    """(train, test) ImageSets of a run: its subjects, actions and stride; the test file defaults to the training
    one."""
    train_set = load_image_set(config.train_images)
    test_path = config.test_images or config.train_images
    test_set = train_set if Path(test_path) == Path(config.train_images) else load_image_set(test_path)
    return (select_images(train_set, config.train_subjects, config.actions, config.train_images, config.stride),
            select_images(test_set, config.test_subjects, config.actions, test_path))


def _resized(images: ImageSet, side: int) -> ImageSet:
    """The set with its crops resized once to `side` (so neither training nor monitoring resizes per batch)."""
    return images if images.size == side else replace(images, images=resize_images(images.images, side))


class ImageTrainer(Run):
    """Owns the image network, its optimiser and data; `fit()` trains, scoring the test set every epoch.

    `data` (train, test) reuses ImageSets already loaded and selected (a benchmark trains several rows on them).
    """

    kind = IMAGE
    step_schedule = False  # the staircase steps once per epoch

    def __init__(self, config: ImageTrainConfig, resume: bool = False, progress: bool = True,
                 data: ImageSplits | None = None, overwrite: bool = False, override: bool = False) -> None:
        config = self.begin(config, resume, progress, overwrite, override=override)
        train_set, test_set = data or load_image_split(config)
        config.model.output_layout = train_set.layout.name
        self.model = build_model(config.model)
        self.side = config.model.image_size
        resized = resized_side(self.side)
        train_set = _resized(train_set, resized)
        self.test_set = _resized(test_set, resized)
        mean, cov = rgb_statistics(train_set.images, seed=config.seed)
        self.model.fit(mean, np.sqrt(np.diag(cov)), train_set.poses)
        eigvec, eigstd = lighting_basis(cov)
        self.model.to(self.device)
        dev = self.device
        self.images = torch.from_numpy(train_set.images).to(dev)
        self.joints2d = torch.from_numpy(train_set.joints2d).to(dev)
        self.poses = torch.from_numpy(train_set.poses).to(dev)
        self.eigvec = torch.from_numpy(eigvec).float().to(dev)
        self.eigstd = torch.from_numpy(eigstd).float().to(dev)
        self.optimizer = self.make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step_epochs, config.lr_decay)
        self.start(resume)

    def num_samples(self) -> int:
        return len(self.images)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augmented crops (B, S, S, 3) float 0-255, their joints (B, J, 2) and poses (B, J, 3) of samples `rows`."""
        rows = rows.to(self.device)
        offsets = random_offsets(len(rows), self.images.shape[1], self.side)
        crops, joints = crop_batch(self.images[rows], self.joints2d[rows], offsets, self.side)
        crops = crops.float()
        if self.config.color_aug > 0:
            crops = pca_lighting(crops, self.eigvec, self.eigstd, self.config.color_aug)
        return crops, joints, self.poses[rows]

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        crops, joints, poses = self.batch(rows)
        out = self.net(crops)
        losses = self.model.loss(out, poses, joints, epoch=self.epoch)
        with torch.no_grad():  # progress bar only: the batch's MPJPE in metres
            losses["mpjpe"] = (out["pose"] - poses).norm(dim=-1).mean()
        return losses

    def monitor(self) -> dict[str, Any]:
        """Scores of every `eval_stride`-th test image (centre crops)."""
        return evaluate_image_model(self.model, self.test_set, stride=self.config.eval_stride, device=self.device,
                                    progress=False)


def train_image(config: ImageTrainConfig, resume: bool = False, progress: bool = True,
                data: ImageSplits | None = None, overwrite: bool = False, override: bool = False) -> ImageTrainer:
    """Python API of `bonelift train-image`: build a trainer, fit it, return it (model in `.model`)."""
    trainer = ImageTrainer(config, resume=resume, progress=progress, data=data, overwrite=overwrite, override=override)
    trainer.fit()
    return trainer
