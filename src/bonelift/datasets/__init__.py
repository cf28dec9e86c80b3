"""Benchmark datasets as lists of per-camera `PoseSequence`s, splits in network input layout, windows."""

from bonelift.datasets.common import PoseSequence, default_data_root, flatten_frames
from bonelift.datasets.h36m import (
    ACTION_ABBREVIATIONS,
    CANONICAL_ACTIONS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    canonical_action,
    load_h36m,
)
from bonelift.datasets.humaneva import load_humaneva
from bonelift.datasets.splits import DATASETS, data_folder, input_layout_for, load_split, prepare_inputs, run_split
from bonelift.datasets.windows import WindowData

__all__ = [
    "ACTION_ABBREVIATIONS",
    "CANONICAL_ACTIONS",
    "DATASETS",
    "PoseSequence",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "WindowData",
    "canonical_action",
    "data_folder",
    "default_data_root",
    "flatten_frames",
    "input_layout_for",
    "load_h36m",
    "load_humaneva",
    "load_split",
    "prepare_inputs",
    "run_split",
]
