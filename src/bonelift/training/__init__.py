"""Training: the one loop (`loop.Run`) and its trainers for single-frame lifters, video lifters, TP-Net and
method 3's image CNN."""

from bonelift.training.images import ImageTrainer, load_image_split, train_image
from bonelift.training.loop import Run, prepare_run_dir
from bonelift.training.single_frame import Trainer, train
from bonelift.training.tpnet import TPNetTrainer, train_tpnet
from bonelift.training.video import VideoTrainer, augment_bone_lengths, train_video

__all__ = [
    "ImageTrainer",
    "Run",
    "TPNetTrainer",
    "Trainer",
    "VideoTrainer",
    "augment_bone_lengths",
    "load_image_split",
    "prepare_run_dir",
    "train",
    "train_image",
    "train_tpnet",
    "train_video",
]
