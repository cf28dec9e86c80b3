"""Training: the one loop (`loop.Run`) and its trainers for single-frame lifters, video lifters and TP-Net."""

from bonelift.training.loop import Run, prepare_run_dir
from bonelift.training.single_frame import Trainer, train
from bonelift.training.tpnet import TPNetTrainer, train_tpnet
from bonelift.training.video import VideoTrainer, augment_bone_lengths, train_video

__all__ = [
    "Run",
    "TPNetTrainer",
    "Trainer",
    "VideoTrainer",
    "augment_bone_lengths",
    "prepare_run_dir",
    "train",
    "train_tpnet",
    "train_video",
]
