"""Benchmark datasets as lists of per-camera `PoseSequence`s, splits in network input layout, windows, person crops."""

from bonelift.datasets.common import PoseSequence, default_data_root, flatten_frames
from bonelift.datasets.h36m import (
    ACTION_ABBREVIATIONS,
    CANONICAL_ACTIONS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    canonical_action,
    load_h36m,
)
from bonelift.datasets.h36m_video import find_h36m_videos, load_h36m_video
from bonelift.datasets.humaneva import load_humaneva
from bonelift.datasets.image_sets import write_image_set
from bonelift.datasets.images import CROP_MARGIN, ImageSet, crop_geometry, crop_image, load_image_set
from bonelift.datasets.render import Appearance, render_crop, render_image_set
from bonelift.datasets.splits import (
    DATASETS,
    data_folder,
    input_layout_for,
    load_split,
    named_input_layout,
    prepare_inputs,
    run_split,
)
from bonelift.datasets.windows import WindowData

__all__ = [
    "ACTION_ABBREVIATIONS",
    "Appearance",
    "CANONICAL_ACTIONS",
    "CROP_MARGIN",
    "DATASETS",
    "ImageSet",
    "PoseSequence",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "WindowData",
    "canonical_action",
    "crop_geometry",
    "crop_image",
    "data_folder",
    "default_data_root",
    "find_h36m_videos",
    "flatten_frames",
    "input_layout_for",
    "named_input_layout",
    "load_h36m",
    "load_h36m_video",
    "load_humaneva",
    "load_image_set",
    "load_split",
    "prepare_inputs",
    "render_crop",
    "render_image_set",
    "run_split",
    "write_image_set",
]
