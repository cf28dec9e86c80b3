"""Benchmark datasets as lists of per-camera `PoseSequence`s, plus the flattening used for training."""

from bonelift.datasets.common import (
    PoseSequence,
    default_data_root,
    flatten_frames,
)
from bonelift.datasets.h36m import (
    ACTION_ABBREVIATIONS,
    CANONICAL_ACTIONS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    canonical_action,
    load_h36m,
)
from bonelift.datasets.humaneva import load_humaneva

__all__ = [
    "ACTION_ABBREVIATIONS",
    "CANONICAL_ACTIONS",
    "PoseSequence",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "canonical_action",
    "default_data_root",
    "flatten_frames",
    "load_h36m",
    "load_humaneva",
]
