"""`bonelift evaluate`: score any lifter checkpoint on its test split, or an image checkpoint (method 3's
CNN) on an ImageSet, and write its report.

The data folder, a 2D detection file and an ImageSet are never taken from the checkpoint: a checkpoint
is not trusted to name files to open, so `--data` (default: the shared data folder), for a model trained
on a detection file `--keypoints FILE`, and for an image model `--images FILE` come from the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bonelift import checkpoints
from bonelift.config import EvaluateConfig, ImageTrainConfig, VideoTrainConfig, configure
from bonelift.datasets import load_split, named_input_layout
from bonelift.datasets.image_prep import select_images
from bonelift.datasets.images import load_image_set
from bonelift.errors import DataError
from bonelift.evaluation import evaluate_image_model, evaluate_model
from bonelift.models import IMAGE, TPNET
from bonelift.reports import input_label, write_report
from bonelift.runtime import resolve_device


def _is_file_source(keypoints: str) -> bool:
    return keypoints.endswith(".npz") or "/" in keypoints or "\\" in keypoints


def evaluate(
    checkpoint: str | Path, config: EvaluateConfig | None = None, **overrides: Any
) -> tuple[dict[str, Any], tuple[Path, Path]]:
    """Python API of `bonelift evaluate`: Protocols 1 and 2 per action (and every table metric), JSON + Markdown.

    `config` (default: `EvaluateConfig()`) with keyword `overrides` named like its fields, e.g.
    `evaluate(ckpt, data_root=..., stride=5)`. An image checkpoint is scored on the ImageSet file `images`
    (its test subjects and actions).
    """
    o = configure(EvaluateConfig, config, overrides)
    dev = resolve_device(o.device)
    ckpt = checkpoints.load(checkpoint)
    if checkpoints.kind_of(ckpt) == TPNET:
        raise DataError(
            checkpoint,
            "a TP-Net checkpoint refines another model's predictions; score it with `bonelift bench anatomy`",
        )
    model, trained, _ = checkpoints.rebuild(checkpoint, dev, ckpt=ckpt)
    prefix = o.out_prefix or Path(checkpoint).with_name(Path(checkpoint).stem + "_eval")
    if isinstance(trained, ImageTrainConfig):
        return _evaluate_images(checkpoint, model, trained, o.images, o.stride, prefix, dev, o.progress)
    if o.images is not None:
        raise DataError(checkpoint, f"holds a {checkpoints.kind_of(ckpt)} lifter, which reads 2D keypoints; "
                                    "--images is for image checkpoints")
    source = o.keypoints or trained.keypoints
    if not o.keypoints and _is_file_source(trained.keypoints):
        raise DataError(
            checkpoint,
            f"was trained on the 2D file {trained.keypoints!r}; name the file to evaluate on with --keypoints FILE",
        )
    _check_source(checkpoint, trained, source)
    seqs = load_split(trained.dataset, o.data_root or "", source, trained.test_subjects)
    test_flip = trained.test_flip if isinstance(trained, VideoTrainConfig) else False
    results = evaluate_model(model, seqs, stride=o.stride, device=dev, progress=o.progress, test_flip=test_flip)
    results.update(checkpoint=str(checkpoint), model=trained.model.name, keypoints=source)
    name = trained.model.name
    if isinstance(trained, VideoTrainConfig):
        results.update(receptive_field=trained.model.receptive_field, causal=trained.model.causal)
        name += f" ({trained.model.receptive_field} frames{', causal' if trained.model.causal else ''})"
    title = f"{name}, {input_label(source)} input, {trained.dataset} {'/'.join(trained.test_subjects)}"
    return results, write_report(results, prefix, title)


def _check_source(checkpoint: str | Path, trained: Any, source: str) -> None:
    """Refuse, before the data loads, a named 2D source whose joints are not the ones the network reads."""
    wanted, given = trained.model.in_layout, named_input_layout(trained.dataset, source)
    if given is not None and given.name != wanted.name:
        raise DataError(checkpoint, f"reads {trained.keypoints!r} 2D ({wanted.name}, {wanted.num_joints} joints); "
                                    f"--keypoints {source} gives {given.name} ({given.num_joints} joints)")


def _evaluate_images(checkpoint: str | Path, model: Any, config: ImageTrainConfig, images: str | Path | None,
                     stride: int, prefix: str | Path, device: Any, progress: bool) -> tuple[dict[str, Any], tuple]:
    """An image checkpoint on the test subjects (and actions) of the ImageSet file `images`."""
    if images is None:
        raise DataError(checkpoint, f"holds an {IMAGE} model ({config.model.name}); name the ImageSet file to "
                                    "score it on with --images FILE")
    test = select_images(load_image_set(images), config.test_subjects, config.actions, images)
    results = evaluate_image_model(model, test, stride=stride, device=device, progress=progress)
    results.update(checkpoint=str(checkpoint), model=config.model.name, images=str(images),
                   input=f"{test.source} images")
    title = (f"{config.model.name}, {test.source} images {Path(images).name}, {'/'.join(config.test_subjects)}; "
             f"2D grid accuracy {results['grid_acc_pct']:.1f} % (within one cell {results['grid_acc1_pct']:.1f} %)")
    return results, write_report(results, prefix, title)
