"""`bonelift evaluate`: score any lifter checkpoint on its test split and write its report.

The data folder and a 2D detection file are never taken from the checkpoint: a checkpoint is not
trusted to name files to open, so `--data` (default: the shared data folder) and, for a model trained
on a detection file, `--keypoints FILE` come from the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bonelift import checkpoints
from bonelift.config import VideoTrainConfig
from bonelift.datasets import load_split
from bonelift.errors import DataError
from bonelift.evaluation import evaluate_model
from bonelift.models import TPNET
from bonelift.reports import input_label, write_report
from bonelift.runtime import resolve_device


def _is_file_source(keypoints: str) -> bool:
    return keypoints.endswith(".npz") or "/" in keypoints or "\\" in keypoints


def evaluate(
    checkpoint: str | Path,
    data_root: str | None = None,
    keypoints: str | None = None,
    stride: int = 1,
    out_prefix: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[dict[str, Any], tuple[Path, Path]]:
    """Python API of `bonelift evaluate`: Protocols 1 and 2 per action (and every table metric), JSON + Markdown."""
    dev = resolve_device(device)
    ckpt = checkpoints.load(checkpoint)
    if checkpoints.kind_of(ckpt) == TPNET:
        raise DataError(
            checkpoint,
            "a TP-Net checkpoint refines another model's predictions; score it with `bonelift bench anatomy`",
        )
    model, config, _ = checkpoints.rebuild(checkpoint, dev, ckpt=ckpt)
    source = keypoints or config.keypoints
    if not keypoints and _is_file_source(config.keypoints):
        raise DataError(
            checkpoint,
            f"was trained on the 2D file {config.keypoints!r}; name the file to evaluate on with --keypoints FILE",
        )
    seqs = load_split(config.dataset, data_root or "", source, config.test_subjects)
    test_flip = config.test_flip if isinstance(config, VideoTrainConfig) else False
    results = evaluate_model(model, seqs, stride=stride, device=dev, progress=progress, test_flip=test_flip)
    results.update(checkpoint=str(checkpoint), model=config.model.name, keypoints=source)
    name = config.model.name
    if isinstance(config, VideoTrainConfig):
        results.update(receptive_field=config.model.receptive_field, causal=config.model.causal)
        name += f" ({config.model.receptive_field} frames{', causal' if config.model.causal else ''})"
    prefix = out_prefix or Path(checkpoint).with_name(Path(checkpoint).stem + "_eval")
    title = f"{name}, {input_label(source)} input, {config.dataset} {'/'.join(config.test_subjects)}"
    return results, write_report(results, prefix, title)
