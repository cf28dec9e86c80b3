"""Train/test splits in the network input layout: one loader for every trainer, evaluator and benchmark.

Nothing here reads or changes a run configuration: callers pass the dataset, folder, 2D source and
subjects, so loading a test split on another folder never rewrites the configuration it came from.
"""

from __future__ import annotations

from pathlib import Path

from bonelift.datasets.common import PoseSequence, default_data_root
from bonelift.datasets.h36m import load_h36m
from bonelift.datasets.humaneva import load_humaneva
from bonelift.errors import BoneliftError
from bonelift.skeletons import COCO17, H36M16, H36M17, MEDIAPIPE33, MPII16, Layout, convert

DATASETS = ("h36m", "humaneva")


def input_layout_for(layout: Layout) -> Layout:
    """The layout networks see for a detector layout: Human3.6M order where the joints allow it."""
    if layout == MPII16:
        return H36M16
    if layout in (COCO17, MEDIAPIPE33):
        return H36M17
    return layout


# The detector layout of each 2D source a dataset names (a detection file's layout is known once it is read).
_NAMED_SOURCES: dict[tuple[str, str], Layout] = {("h36m", "gt"): H36M17, ("h36m", "sh"): MPII16}


def named_input_layout(dataset: str, keypoints: str) -> Layout | None:
    """The network input layout of a named 2D source ("gt", "sh"), known without loading it; None for a file."""
    layout = _NAMED_SOURCES.get((dataset, keypoints))
    return None if layout is None else input_layout_for(layout)


def prepare_inputs(seqs: list[PoseSequence]) -> list[PoseSequence]:
    """Convert every sequence's keypoints to the network input layout (in place) and return them."""
    src = seqs[0].layout
    dst = input_layout_for(src)
    if src != dst:
        for s in seqs:
            s.keypoints, s.confidence = convert(s.keypoints, src, dst, s.confidence)
            s.layout = dst
    return seqs


def data_folder(dataset: str, data_root: str | Path = "") -> Path:
    """`data_root`, or the default folder of `dataset` when it is empty."""
    return Path(data_root) if data_root else default_data_root() / dataset


def load_split(dataset: str, data_root: str | Path, keypoints: str, subjects: tuple[str, ...]) -> list[PoseSequence]:
    """Sequences of `subjects` for a dataset and 2D source, in network input layout."""
    root = data_folder(dataset, data_root)
    if dataset == "h36m":
        return prepare_inputs(load_h36m(root, keypoints, subjects))
    if dataset != "humaneva":
        raise BoneliftError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    # HumanEva subjects name their split ("Train/S1", "Validate/S1"): the protocol trains and tests on
    # the same subjects, so the split cannot be inferred from the subject list.
    splits = {s.partition("/")[0] for s in subjects}
    if "" in {s.partition("/")[2] for s in subjects} or not splits <= {"Train", "Validate"}:
        raise BoneliftError(f"HumanEva subjects must be 'Train/S<n>' or 'Validate/S<n>', got {list(subjects)}")
    seqs = [
        seq
        for split in ("Train", "Validate")
        if split in splits
        for seq in load_humaneva(root, split, tuple(s.partition("/")[2] for s in subjects if s.startswith(split + "/")))
    ]
    return prepare_inputs(seqs)


def run_split(config, subjects: tuple[str, ...] | None = None) -> list[PoseSequence]:
    """`load_split` for a run configuration's dataset, folder and 2D source (its test subjects by default),
    only the configuration's `actions` when it names some (a per-action model)."""
    seqs = load_split(
        config.dataset, config.data_root, config.keypoints, config.test_subjects if subjects is None else subjects
    )
    actions = getattr(config, "actions", ())
    if actions:
        chosen = [s for s in seqs if s.action in actions]
        if not chosen:
            known = ", ".join(sorted({s.action for s in seqs}))
            raise BoneliftError(f"--actions {','.join(actions)}: no such action in the data (known: {known})")
        seqs = chosen
    return seqs
