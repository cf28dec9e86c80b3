"""One configuration path: a dataclass per concern, command-line flags generated from its fields, one
`validate()` of every field (type and range, from the field's metadata), and `key=value` overrides checked
against what the network understands.

Every entry point takes its configuration the same way: training (`TrainConfig`, ...), `lift` (`LiftConfig`),
`evaluate` (`EvaluateConfig`) and `LiveLifter` (`LiveConfig`); the Python API accepts a configuration object
plus keyword overrides named like its fields (`configure`), and the command line gets one flag per field
(`add_arguments` / `from_args`). A bad value is an `OptionError` naming the field and its flag.

A run configuration (`TrainConfig`, `VideoTrainConfig`, `TPNetTrainConfig`, `ImageTrainConfig`) is saved in every
checkpoint and rebuilt from it with `config_from_dict`. Adding a training option is two edits: a field
here (its `help` metadata becomes the flag's help text) and the line of code that uses it; `add_arguments`
and `from_args` give every command that trains the new flag.

Field metadata understood by the flag generator: `help`; `flag` (the CLI spelling when it is not
`--field-name`, e.g. `--out` for `out_dir`; for a bool that is on by default, the flag that turns it off);
`short` (e.g. `-o`); `aliases` (deprecated spellings kept working); `sets` (a bool flag that also switches the
named fields, e.g. `--no-flip` for training and test flipping); `metavar`; `parse` (turns the flag's text
into the value, raising OptionError). Understood by `validate` (`check_fields`): `min` (smallest value),
`above` (values must exceed it), `choices`. A saved configuration that predates a field gets the value the
older code behaved as when `compat.LEGACY_FIELDS` names one (e.g. TP-Net's `frame_step` 1), else the default
of new runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bonelift.cameras import DEFAULT_FOCAL_FACTOR, MAX_FOCAL, MAX_FPS, MIN_FOCAL, MIN_FPS
from bonelift.compat import legacy_fields
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, canonical_action
from bonelift.datasets.humaneva import HUMANEVA_TEST_SUBJECTS, HUMANEVA_TRAIN_SUBJECTS
from bonelift.datasets.virtual import ViewConfig
from bonelift.errors import OptionError
from bonelift.filters import FILTERS
from bonelift.losses import LOSS_NAMES
from bonelift.models import (
    IMAGE,
    SINGLE_FRAME,
    VIDEO,
    ImageModelConfig,
    ModelConfig,
    TPNetConfig,
    VideoModelConfig,
    check_options,
    model_spec,
)
from bonelift.models.method3 import trunk_side
from bonelift.skeletons import Layout


def opt(default: Any = dataclasses.MISSING, help: str = "", factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field with CLI metadata (help text, flag spelling, aliases)."""
    kw: dict[str, Any] = {"metadata": {"help": help, **meta}}
    if factory is not dataclasses.MISSING:
        kw["default_factory"] = factory
    else:
        kw["default"] = default
    return field(**kw)


def parse_value(raw: str) -> Any:
    """A command-line value as bool, int, float or str."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def parse_key_values(items: list[str], what: str = "--option") -> dict[str, Any]:
    """`key=value` pairs (values typed by `parse_value`)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise OptionError(f"{what} expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(raw)
    return out


def _option_label(f: dataclasses.Field) -> str:
    """How an error names a field: its Python name and its flag, e.g. `max_side (--max-side)`."""
    return f"{f.name} ({_flag(f, '')})"


def _check_type(value: Any, kind: Any) -> str | None:
    """What `value` should have been when it does not fit the type hint `kind`, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # None is allowed where the hint says so
        wants = [_check_type(value, k) for k in typing.get_args(kind) if k is not type(None) or value is None]
        return None if None in wants else " or ".join(w for w in wants if w)
    if kind is bool:
        return None if isinstance(value, bool | np.bool_) else "True or False"
    if isinstance(value, bool | np.bool_):
        return {int: "a whole number", float: "a number", str: "a text"}.get(kind, getattr(kind, "__name__", "?"))
    if kind is int:
        return None if isinstance(value, int | np.integer) else "a whole number"
    if kind is float:
        return None if isinstance(value, int | float | np.integer | np.floating) else "a number"
    origin = typing.get_origin(kind)
    if origin is tuple:
        return None if isinstance(value, tuple | list) else "a sequence"
    if origin is dict:
        return None if isinstance(value, dict) else "a dict of KEY=VALUE"
    if kind is str:
        return None if isinstance(value, str) else "a text"
    if isinstance(kind, type):
        return None if isinstance(value, kind) else f"a {kind.__name__}"
    return None


def _range_problem(value: Any, meta: Any) -> str | None:
    """What a number should have been when it breaks the `min` / `above` / `max` / `below` metadata, else None."""
    rules = (("min", "{:g} or more", lambda v, b: v >= b), ("above", "greater than {:g}", lambda v, b: v > b),
             ("max", "at most {:g}", lambda v, b: v <= b), ("below", "less than {:g}", lambda v, b: v < b))
    bounds = [(key, text.format(meta[key]), ok) for key, text, ok in rules if meta.get(key) is not None]
    real = isinstance(value, float | np.floating)
    if not (real and not math.isfinite(value)) and all(ok(value, meta[key]) for key, _, ok in bounds):
        return None
    if "min" in meta and "max" in meta:  # one range reads better than two bounds
        return f"from {meta['min']:g} to {meta['max']:g}"
    return " and ".join(["finite"] * real + [text for _, text, _ in bounds])


def check_fields(config: Any) -> None:
    """Check every field of `config` against its type hint and its `min` / `above` / `max` / `below` / `choices`
    metadata; a nested configuration (the network's) is checked the same way. For a dict field (`--loss
    NAME=WEIGHT`) `choices` names the keys it may have and the range applies to every value.

    One rule for every configuration, so an option is checked where it is declared: an OptionError naming
    the field and its flag, raised before any slow work.
    """
    hints = _hints(type(config))
    for f in fields(config):
        kind, value = hints[f.name], getattr(config, f.name)
        if dataclasses.is_dataclass(kind):
            check_fields(value)
            continue
        wanted = _check_type(value, kind)
        if wanted is not None:
            raise OptionError(f"{_option_label(f)} must be {wanted}, got {value!r}")
        if value is None or isinstance(value, bool | np.bool_):
            continue
        choices = f.metadata.get("choices")
        if isinstance(value, dict):
            _check_entries(f, value, typing.get_args(kind)[1:])
        elif isinstance(value, int | float | np.integer | np.floating):
            problem = _range_problem(value, f.metadata)
            if problem:
                raise OptionError(f"{_option_label(f)} must be {problem}, got {value!r}")
        if choices is not None and not isinstance(value, dict) and value not in choices:
            raise OptionError(f"{_option_label(f)} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _check_entries(f: dataclasses.Field, entries: dict, value_kind: tuple) -> None:
    """Keys of a dict field against its `choices`, values against its value type and range."""
    choices = f.metadata.get("choices")
    for key, value in entries.items():
        if choices is not None and key not in choices:
            raise OptionError(f"{_option_label(f)}: unknown name {key!r} (known: {', '.join(choices)})")
        wanted = _check_type(value, value_kind[0]) if value_kind and value_kind[0] is not Any else None
        problem = wanted or (None if isinstance(value, str | bool) else _range_problem(value, f.metadata))
        if problem:
            raise OptionError(f"{_option_label(f)} {key} must be {problem}, got {value!r}")


class Options:
    """What every configuration dataclass shares: a plain dict of its fields, rebuilt by `from_dict`, and one
    `validate()` (subclasses add checks that span several fields)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        return config_from_dict(cls, d)

    def validate(self) -> None:
        """Refuse a field of the wrong type or outside its range."""
        check_fields(self)


def configure(cls: type, config: Any = None, overrides: dict[str, Any] | None = None) -> Any:
    """The validated configuration of an API call: `config` (default: `cls()`) with keyword `overrides`
    named like its fields; an unknown keyword is an OptionError naming it."""
    base = cls() if config is None else config
    if not isinstance(base, cls):
        raise OptionError(f"config must be a {cls.__name__}, got {type(base).__name__}")
    known = [f.name for f in fields(base)]
    unknown = [k for k in overrides or {} if k not in known]
    if unknown:
        raise OptionError(f"unknown option {unknown[0]!r} of {type(base).__name__} (known: {', '.join(known)})")
    chosen = replace(base, **overrides) if overrides else base
    chosen.validate()
    return chosen


@dataclass
class RunConfig(Options):
    """What every training run shares: data, 2D source, subjects, budget, seed, device, run folder."""

    data_root: str = opt("", "data folder (default: <shared data>/<dataset>, or $BONELIFT_DATA)", flag="--data")
    dataset: str = opt("h36m", "benchmark dataset", choices=("h36m", "humaneva"))
    keypoints: str = opt("gt", "2D input: gt, sh, or a detection npz")
    train_subjects: tuple[str, ...] = opt(TRAIN_SUBJECTS, "comma-separated 3D-labelled training subjects")
    test_subjects: tuple[str, ...] = opt(TEST_SUBJECTS, "comma-separated test subjects")
    actions: tuple[str, ...] = opt((), "comma-separated actions to train and test on, e.g. Walking (method 3's "
                                       "one network per action); empty: all")
    stride: int = opt(4, "train on every N-th frame (50 Hz Human3.6M is highly redundant)", min=1)
    eval_stride: int = opt(10, "per-epoch monitoring on every N-th test frame (`evaluate` scores every frame)",
                           min=1)
    epochs: int = opt(10, "training epochs", min=1)
    batch_size: int = opt(256, "batch size", min=1)
    lr: float = opt(1e-3, "learning rate", above=0)
    lr_decay: float = opt(0.96, "exponential learning-rate decay factor", above=0, max=1)
    weight_decay: float = opt(0.0, "L2 weight decay of the optimiser", min=0)
    optimizer: str = opt("adam", "optimiser: adam (methods 1, 2, 4, 5) or sgd with --momentum (method 3)",
                         choices=("adam", "sgd"))
    momentum: float = opt(0.9, "momentum of --optimizer sgd (method 3: 0.9)", min=0, max=1)
    optimizer_impl: str = opt("default", "optimiser kernel: default (torch's choice: a loop over tensors on CPU, "
                                         "foreach on CUDA), foreach (one multi-tensor call per step) or fused (one "
                                         "fused kernel); the same update up to rounding", choices=("default",
                                                                                               "foreach", "fused"))
    kernels: str = opt("fast", "training kernels of max-norm layers and dropout: fast (output scaled by the max-norm "
                               "factor, dropout masks from 16-bit random draws: same function, cheaper on CPU) or "
                               "reference (torch's dropout, the rescaled weight matrix: bit for bit as runs before "
                               "December 2026)", choices=("fast", "reference"))
    flip: bool = opt(False, "horizontal flip augmentation (mirrored 2D and 3D, left/right swapped)")
    seed: int = opt(0, "random seed", min=0)
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    precision: str = opt("fp32", "arithmetic of the training forward pass: fp32, or bf16 under torch.autocast (losses "
                                 "and optimiser stay fp32; fast only where the hardware has bf16 matrix units)",
                         choices=("fp32", "bf16"))
    out_dir: str = opt("runs/run", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def for_dataset(self) -> Any:
        """A copy whose subjects are the dataset's protocol split when they were left at the Human3.6M defaults."""
        if self.dataset == "humaneva" and self.train_subjects == TRAIN_SUBJECTS and self.test_subjects == TEST_SUBJECTS:
            return replace(self, train_subjects=HUMANEVA_TRAIN_SUBJECTS, test_subjects=HUMANEVA_TEST_SUBJECTS)
        return self

    def validate(self) -> None:
        """Refuse a field of the wrong type, an unknown network or option before any data is loaded."""
        super().validate()
        model = getattr(self, "model", None)
        if model is not None:
            model_spec(model.name, MODEL_KINDS[type(model)])
            check_options(model.name, getattr(model, "options", {}))


@dataclass
class TrainConfig(RunConfig):
    """A single-frame lifter's run (methods 1-4); saved with each checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lr_decay_samples: int = opt(
        6_400_000,
        "decay the learning rate by --lr-decay per this many training samples (Martinez et al.: 100k steps of 64)",
        min=1,
    )
    lr_step_epochs: int = opt(
        0, "staircase schedule: multiply the learning rate by --lr-decay every N epochs instead of the per-sample "
           "decay (0: off; method 3: 0.5 every 4)", min=0
    )
    noise_px: float = opt(0.0, "Gaussian noise added to training 2D, in pixels of a 1000-px-wide image", min=0)
    init_from: str = opt("", "start from this checkpoint's weights and normalisation (fine-tuning)", flag="--init")
    losses: dict[str, float] = opt(
        help=f"anatomical loss weight NAME=WEIGHT: {', '.join(LOSS_NAMES)}", factory=dict, flag="--loss",
        choices=LOSS_NAMES, min=0,
    )
    warmup_epochs: int = opt(0, "epochs on 3D data only before --loss terms and weak supervision switch on",
                             min=0)
    weak_subjects: tuple[str, ...] = opt((), "comma-separated 2D-only subjects (weak supervision, method 4)")
    losses_on: str = opt(
        "weak",
        "samples the geometry/angle/symmetry losses supervise: weak = the 2D-only stream only (method 4, Fig. 1), "
        "all = the 3D-labelled batch too (bonelift before December 2026)",
        choices=("weak", "all"),
    )
    symmetry_epoch: int = opt(
        0,
        "staged schedule (method 4, Sec. 4.3): from this epoch the symmetry loss joins and the learning rate is "
        "multiplied by --symmetry-lr-factor; 0 = no extra stage, symmetry on with the other losses",
        min=0,
    )
    symmetry_lr_factor: float = opt(0.1, "learning-rate factor of the symmetry stage (paper: 2.5e-5 / 2.5e-4)",
                                      above=0)
    out_dir: str = opt("runs/baseline", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse a staged schedule that starts before the warm start, or losses with no sample to supervise."""
        super().validate()
        if self.symmetry_epoch and self.symmetry_epoch < self.warmup_epochs:
            raise OptionError(
                f"--symmetry-epoch {self.symmetry_epoch} is before the weak losses start (--warmup-epochs "
                f"{self.warmup_epochs}); the paper adds symmetry in a later stage"
            )
        structure = any(self.losses.get(k) for k in ("geometry", "angle", "symmetry"))
        if structure and self.losses_on == "weak" and not self.weak_subjects:
            raise OptionError(
                "the structure losses supervise the 2D-only stream (--losses-on weak): name --weak-subjects, "
                "or pass --losses-on all to add them on the 3D-labelled batch"
            )

    def lr_factor(self, step: int, steps_per_epoch: int) -> float:
        """Learning-rate multiplier of optimiser step `step`: `symmetry_lr_factor` in the symmetry stage, else 1."""
        if self.symmetry_epoch and step >= self.symmetry_epoch * steps_per_epoch:
            return self.symmetry_lr_factor
        return 1.0


@dataclass
class VideoTrainConfig(RunConfig):
    """A video lifter's run (VideoPose3D `tcn`, method 5 `bone`); saved with each checkpoint."""

    # Inputs carry per-joint confidences where the 2D source has them (`bonelift train-video` always did).
    model: VideoModelConfig = field(default_factory=lambda: VideoModelConfig(confidence=True))
    views: ViewConfig = field(default_factory=ViewConfig)
    stride: int = opt(1, "one training window per N-th frame", min=1)
    epochs: int = opt(80, "training epochs", min=1)
    batch_size: int = opt(1024, "batch size", min=1)
    lr_decay: float = opt(0.95, "learning-rate decay per epoch (VideoPose3D)", above=0, max=1)
    flip: bool = opt(
        True, "horizontal flip augmentation, and test-time flip averaging", flag="--no-flip", sets=("test_flip",)
    )
    test_flip: bool = opt(True, "average predictions of the input and its mirror image", flag="--no-test-flip")
    flip_mode: str = opt("coin", "training flip: a coin toss per sample, or every window both ways each epoch "
                                 "(VideoPose3D and method 5's code; twice the samples per epoch)",
                         choices=("coin", "both"))
    lr_final_as_epochs: int = opt(0, "decay the learning rate per epoch so that after the run it is lr x "
                                     "lr_decay^N, whatever the epoch count (0: lr_decay per epoch)", min=0)
    precise_bn: int = opt(0, "after each epoch, re-estimate batch-norm statistics with its final weights over N "
                             "training batches (0: off, the papers' running averages)", min=0)
    out_dir: str = opt("runs/tcn", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse virtual views or detector-like 2D on data they cannot be built from."""
        super().validate()
        self.views.check()
        if self.views.active and (self.keypoints != "gt" or self.dataset != "h36m"):
            raise OptionError("--cameras / --detector build the 2D from Human3.6M's 3D: use --dataset h36m "
                                f"--keypoints gt (got {self.dataset} / {self.keypoints})")


@dataclass
class TPNetTrainConfig(RunConfig):
    """TP-Net's run over a single-frame model's predictions (method 4, Sec. 4.2)."""

    model: TPNetConfig = field(default_factory=TPNetConfig)
    stride: int = opt(20, "every N-th frame of the training predictions is a target (its window: --frame-step apart)",
                      min=1)
    epochs: int = opt(3, "training epochs (paper: 30)", min=1)
    lr: float = opt(3e-4, "learning rate (Adam, decayed to a tenth over the run)", above=0)
    out_dir: str = opt("runs/tpnet", "run folder", flag="--out")


@dataclass
class ImageTrainConfig(RunConfig):
    """Method 3's image CNN trained on ImageSet files (person crops with their 2D and 3D ground truth); saved
    with each checkpoint. The defaults are the paper's schedule (Sec. 4); `--train-subjects` /
    `--test-subjects` select by the ImageSet's subject array, `--actions` by its action array."""

    # Options of a 2D-keypoint run that image training has not (`train-image` and `bench method3` leave them out).
    KEYPOINT_ONLY: typing.ClassVar[tuple[str, ...]] = ("data_root", "dataset", "keypoints", "flip")

    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    train_images: str = opt("", "ImageSet file (.npz) of the training crops (`bonelift images` writes them)")
    test_images: str = opt("", "ImageSet file of the test crops (default: the --train-images file, --test-subjects)")
    color_aug: float = opt(0.1, "PCA colour augmentation: std of the per-image weights of the training images' RGB "
                                "principal components (AlexNet: 0.1; 0: off)", min=0)
    stride: int = opt(1, "train on every N-th training image", min=1)
    epochs: int = opt(28, "training epochs (paper: 28)", min=1)
    batch_size: int = opt(128, "batch size (paper: 128)", min=1)
    lr: float = opt(0.01, "initial learning rate (paper: 0.01)", above=0)
    lr_decay: float = opt(0.5, "learning-rate factor every --lr-step-epochs epochs (paper: 0.5)",
                            above=0, max=1)
    lr_step_epochs: int = opt(4, "staircase schedule: multiply the learning rate by --lr-decay every N epochs "
                                 "(paper: 4)", min=1)
    weight_decay: float = opt(0.001, "L2 weight decay of the optimiser (paper: 0.001)", min=0)
    optimizer: str = opt("sgd", "optimiser: sgd with --momentum (the paper's) or adam", choices=("adam", "sgd"))
    out_dir: str = opt("runs/method3_image", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse a run without training images, options the image path does not have, and too small crops."""
        super().validate()
        if not self.train_images:
            raise OptionError("--train-images is required: the ImageSet file (.npz) to train on")
        if self.flip:
            raise OptionError("--flip is not available for image training (the paper does not flip)")
        trunk_side(self.model.image_size)
        for action in self.actions:
            canonical_action(action)


def parse_size(raw: str) -> tuple[int, int]:
    """`--size WIDTHxHEIGHT` as (width, height)."""
    w, sep, h = raw.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise OptionError(f"--size expects WIDTHxHEIGHT, got {raw!r}")
    return int(w), int(h)


def device_opt(default: str = "auto") -> Any:
    """The `device` field of every non-training configuration (one definition; checked by `runtime.resolve_device`
    when the run starts, since it depends on the machine)."""
    return opt(default, "auto, cpu, cuda or cuda:N")


LIFTERS = (VIDEO, SINGLE_FRAME)  # the bundled weights `lift(lifter=...)` / `--lifter` can name


@dataclass
class LifterOptions(Options):
    """What `lift` and `LiveLifter` share: the lifter checkpoint, the device and the camera's focal length."""

    model: str | Path | None = opt(None, "lifter checkpoint, single-frame or video (default: the bundled weights "
                                         "--lifter names)")
    device: str | torch.device = device_opt()
    focal: float | None = opt(None, "camera focal length for the root trajectory (default: "
                                    f"{DEFAULT_FOCAL_FACTOR} x the longer image side)", metavar="PIXELS",
                              min=MIN_FOCAL, max=MAX_FOCAL)


@dataclass
class LiftConfig(LifterOptions):
    """`bonelift lift` / `bonelift.lift()`: how a video, image folder or keypoint file becomes 3D; written into
    the outputs (`poses3d.json` `config`, `poses3d.npz` `config`)."""

    lifter: str | None = opt(None, "bundled weights without --model (default: video, or single-frame with a notice "
                                   "while the video weights are not installed)", choices=LIFTERS)
    causal: bool = opt(False, "a causal video lifter (past frames only): --model must be one, else the bundled one")
    max_side: int | None = opt(640, "downscale frames to this longer side before detection (0 or None: off)", min=0)
    max_gap: int | None = opt(None, "longest detection gap (frames) to interpolate (default: a third of a second)",
                              min=0)
    max_frames: int | None = opt(None, "only the first N frames", above=0)
    layout: str | None = opt(None, "joint layout of a keypoint file (coco17, mediapipe33, h36m17)")
    image_size: tuple[int, int] | None = opt(None, "image size of a keypoint file", flag="--size", metavar="WxH",
                                             parse=parse_size)
    fps: float | None = opt(None, "frame rate (image folders, keypoint files)", min=MIN_FPS, max=MAX_FPS)
    workers: int | None = opt(None, "detection processes (default: 2 on Linux with 2+ cores; --max-people > 1: 1 "
                                    "unless each gets 10 s of video, a frame's people run in threads)", above=0)
    max_people: int | None = opt(4, "most people tracked at once in a video (1: the single-person tracker)", above=0)
    person: int | None = opt(None, "lift only person N (0: the longest track; default: everyone, person 0 in "
                                   "`joints`)", metavar="N", min=0)
    pictures: bool = opt(True, "skip the MP4/GIF rendering", flag="--no-pictures")
    reframe: bool | None = opt(None, "scale and centre the clip's 2D like the training data (default: on for "
                                     "single-frame lifters, off for video lifters)")
    skeleton: bool | None = opt(None, "one symmetric skeleton per person and clip: median bone lengths, mirrored "
                                      "bones equal, directions kept (default: on for video lifters, off for "
                                      "single-frame lifters)")
    fusion: bool | None = opt(None, "fit each clip to its 2D under the camera with the lifter's and the detector's "
                                    "3D (MediaPipe's world landmarks) as priors, one symmetric skeleton per person "
                                    "(default: on for video lifters, off for single-frame lifters)")
    world: bool = opt(True, "estimate the camera's pitch, roll and the floor, export joints in that world frame "
                            "(y up, floor at 0) and write the BVH in it")
    scene_vertical: bool = opt(True, "let the video's vertical lines (walls, door frames) set the world's up "
                                     "direction where they are found (bonelift.pipeline.scene)")
    biomech: bool = opt(True, "write poses3d.trc, .c3d, .mot and poses3d_angles.csv (needs the world frame)")
    camera_height: float | None = opt(None, "the camera's height above the floor: puts the floor that far below the "
                                            "camera along the estimated up instead of at the foot contacts",
                                      metavar="METRES", above=0, max=1000)
    intrinsics: str | Path | None = opt(None, "camera calibration JSON (fx, fy, cx, cy, optional OpenCV distortion, "
                                              "width, height; docs/pipeline.md): 2D undistorted, its focal length "
                                              "and principal point used", metavar="FILE")
    filter: str = opt("none", "smooth joints and trajectory over time", choices=FILTERS)
    filter_cutoff: float | None = opt(None, "Butterworth cutoff or One-Euro minimum cutoff, Hz (default 6 / 1)",
                                      above=0)
    filter_beta: float | None = opt(None, "One-Euro speed coefficient per m/s (default 5)", min=0)
    progress: bool = opt(True, "no progress bars", flag="--quiet")

    def validate(self) -> None:
        """Also refuse a person beyond --max-people, an image size that is not two pixel counts, a camera height
        without the world frame and a focal length given twice."""
        super().validate()
        if self.biomech and not self.world:
            raise OptionError("biomech (--biomech) needs world (--world): the biomechanics files are in the world "
                              "frame (pass --no-biomech with --no-world)")
        if self.camera_height is not None and not self.world:
            raise OptionError("camera_height (--camera-height) places the floor of the world frame: it needs world "
                              "(--world)")
        if self.intrinsics is not None and self.focal is not None:
            raise OptionError("focal (--focal) and intrinsics (--intrinsics) both give the focal length: pass one")
        if self.person is not None and self.max_people is not None and self.person >= self.max_people:
            raise OptionError(f"person (--person) must be below max_people (--max-people) {self.max_people}, "
                              f"got {self.person!r}")
        size = self.image_size
        if size is not None and not (len(size) == 2 and all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size)):
            raise OptionError(f"image_size (--size WIDTHxHEIGHT) must be two whole numbers of pixels greater than 0, "
                              f"got {size!r}")

    def people(self) -> int:
        """Most people tracked at once (None: the field's default)."""
        return type(self).max_people if self.max_people is None else int(self.max_people)


@dataclass
class LiveConfig(LifterOptions):
    """`bonelift.LiveLifter`: a causal video lifter fed one detector frame at a time (`model` None: the bundled
    causal weights)."""

    device: str | torch.device = device_opt("cpu")
    layout: str | Layout = opt("mediapipe33", "joint layout of the pushed keypoints (mediapipe33, coco17, h36m17)")
    skeleton: bool = opt(True, "give each pose the running symmetric skeleton of the frames so far")
    fusion: bool = opt(True, "fit each frame to its 2D with the lifter's and the detector's 3D as priors and the "
                             "running skeleton (the causal form of `lift --fusion`; supersedes skeleton)")


LIVE_FILTERS = tuple(f for f in FILTERS if f != "butterworth")  # zero-lag Butterworth needs the whole clip


def parse_address(raw: str, what: str = "udp (--udp)") -> tuple[str, int]:
    """`HOST:PORT` (the host may be a name or an IPv4 address) as (host, port), or an OptionError naming `what`."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionError(f"{what} must be HOST:PORT with a port from 1 to 65535, got {raw!r}")
    return host, int(port)


@dataclass
class LiveCommandConfig(LiveConfig):
    """`bonelift live` / `bonelift.pipeline.live_stream.live()`: a camera, stream or video file lifted frame by
    frame with MediaPipe's single-person tracker and `LiveLifter` (its fields; `layout` is MediaPipe's)."""

    headless: bool | None = opt(None, "no overlay window (default: headless when there is no display)")
    udp: str | None = opt(None, "send one JSON line per frame to this address", metavar="HOST:PORT")
    websocket: str | None = opt(None, "serve the same JSON lines to every WebSocket client of this address "
                                      "(needs the websockets package: bonelift[video])", metavar="HOST:PORT")
    max_frames: int | None = opt(None, "stop after N frames (default: until the stream ends or q / Esc / Ctrl-C)",
                                 above=0)
    max_side: int | None = opt(640, "downscale frames to this longer side before detection (0 or None: off)", min=0)
    min_confidence: float = opt(0.5, "MediaPipe's detection and tracking confidence", min=0)
    filter: str = opt("none", "smooth joints and root causally over time", choices=LIVE_FILTERS)
    filter_cutoff: float | None = opt(None, "One-Euro minimum cutoff, Hz (default 1)", above=0)
    filter_beta: float | None = opt(None, "One-Euro speed coefficient per m/s (default 5)", min=0)

    def validate(self) -> None:
        """Also refuse a UDP or WebSocket address that is not HOST:PORT and a detector confidence above 1."""
        super().validate()
        if self.udp is not None:
            parse_address(self.udp)
        if self.websocket is not None:
            parse_address(self.websocket, "websocket (--websocket)")
        if self.min_confidence > 1:
            raise OptionError(f"min_confidence (--min-confidence) must be at most 1, got {self.min_confidence!r}")


@dataclass
class EvaluateConfig(Options):
    """`bonelift evaluate` / `bonelift.evaluate.evaluate()`: where to score a checkpoint and where the report goes.

    Files are never taken from the checkpoint (it is not trusted to name files to open)."""

    data_root: str | None = opt(None, "data folder (default: <shared data>/<dataset>)", flag="--data")
    keypoints: str | None = opt(None, "2D input (default: the one used for training)")
    stride: int = opt(1, "score frame pairs of every N-th frame (protocol: 1)", min=1)
    images: str | Path | None = opt(None, "ImageSet file to score an image checkpoint (method3-image) on")
    out_prefix: str | Path | None = opt(None, "report prefix (default: next to the checkpoint)", flag="--out")
    device: str | torch.device = device_opt()
    progress: bool = opt(True, "no progress bars", flag="--quiet")


@dataclass
class OpenSimConfig(Options):
    """`bonelift opensim OUT/` / `bonelift.osim.opensim()`: OpenSim inverse kinematics on a lift's TRC markers."""

    trc: tuple[str, ...] = opt((), "TRC files in OUT to fit (default: poses3d.trc and every poses3d_person*.trc)")
    accuracy: float = opt(1e-5, "inverse kinematics solver accuracy (OpenSim's default 1e-5)", above=0, max=0.1)


MODEL_KINDS: dict[type, str] = {ModelConfig: SINGLE_FRAME, VideoModelConfig: VIDEO, TPNetConfig: "tpnet",
                                ImageModelConfig: IMAGE}
RUN_CONFIGS: dict[str, type[RunConfig]] = {
    SINGLE_FRAME: TrainConfig,
    VIDEO: VideoTrainConfig,
    "tpnet": TPNetTrainConfig,
    IMAGE: ImageTrainConfig,
}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Rebuild a configuration saved by `to_dict`; unknown keys are ignored so older checkpoints load.

    A field missing from `d` takes its `compat.legacy_fields` value when it has one (the behaviour of the
    code that saved `d`), else its default.
    """
    hints = _hints(cls)
    legacy = legacy_fields(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in d:
            if f.name in legacy:  # saved before the field existed: what it meant then
                kwargs[f.name] = legacy[f.name]
            continue
        value, kind = d[f.name], hints[f.name]
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = config_from_dict(kind, value)
        elif typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


# ----- command-line flags ---------------------------------------------------------------------

_MODEL_FLAGS = {"name": "--model", "options": "--option"}  # nested model fields with their own spelling
_HIDDEN = {"input_layout", "output_layout", "confidence", "joints", "root", "past", "future"}  # set from data / presets


def _flag(f: dataclasses.Field, prefix: str) -> str:
    if prefix and f.name in _MODEL_FLAGS:
        return _MODEL_FLAGS[f.name]
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _walk(cls: type, prefix: str = "") -> typing.Iterator[tuple[str, dataclasses.Field, Any]]:
    """(dest, field, type) of every flag-bearing field, the nested model configuration's included."""
    hints = _hints(cls)
    for f in fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from _walk(kind, prefix + f.name + ".")
        elif not (prefix and f.name in _HIDDEN):
            yield prefix + f.name, f, kind


def field_dests(cls: type) -> tuple[str, ...]:
    """Every flag-bearing field of the configuration class `cls`, nested ones as "model.hidden"."""
    return tuple(dest for dest, _, _ in _walk(cls))


def _default(obj: Any, dest: str) -> Any:
    for part in dest.split("."):
        obj = getattr(obj, part)
    return obj


def _flag_kind(kind: Any) -> tuple[Any, bool]:
    """(the type a flag parses, whether the field also takes None) of a field's type hint."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [k for k in typing.get_args(kind) if k is not type(None)]
        return rest[0], len(rest) < len(typing.get_args(kind))
    return kind, False


def add_arguments(
    parser: argparse.ArgumentParser, defaults: Any, only: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()
) -> None:
    """Add one flag per field of the configuration `defaults` (an instance: its values are the defaults).

    `only` / `skip` name fields (nested ones as "model.hidden") to include or leave out.
    """
    for dest, f, hint in _walk(type(defaults)):
        if (only is not None and dest not in only) or dest in skip:
            continue
        prefix = dest.rpartition(".")[0]
        kind, optional = _flag_kind(hint)
        names = [*f.metadata.get("short", ()), _flag(f, prefix), *f.metadata.get("aliases", ())]
        default = _default(defaults, dest)
        helptext = f.metadata.get("help", "")
        origin = typing.get_origin(kind)
        if kind is bool and optional:  # None: decided at run time (`--reframe` / `--no-reframe`)
            parser.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                                help=helptext)
        elif kind is bool:
            if default and "flag" not in f.metadata:  # a switch that is on by default turns off
                names[-1 - len(f.metadata.get("aliases", ()))] = "--no-" + f.name.replace("_", "-")
            action = "store_false" if default else "store_true"
            parser.add_argument(*names, dest=dest, action=action, default=default, help=helptext)
        elif "parse" in f.metadata:  # parsed by `from_args`, so a bad value is a one-line OptionError
            parser.add_argument(*names, dest=dest, default=default, metavar=f.metadata.get("metavar"), help=helptext)
        elif origin is tuple:
            parser.add_argument(
                *names,
                dest=dest,
                default=default,
                type=_comma_list,
                metavar="A,B,...",
                help=f"{helptext} (default: {','.join(default) or 'none'})",
            )
        elif origin is dict:
            parser.add_argument(
                *names,
                dest=dest,
                action="append",
                default=None,
                metavar="KEY=VALUE",
                help=helptext or "network-specific switch (see `bonelift models`)",
            )
        else:
            parser.add_argument(
                *names,
                dest=dest,
                type=kind,
                default=default,
                choices=f.metadata.get("choices"),
                metavar=f.metadata.get("metavar", None if "choices" in f.metadata else f.name.upper()),
                help=helptext + (f" (default: {default!r})" if default not in ("", None) else ""),
            )


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def from_args(defaults: Any, args: argparse.Namespace) -> Any:
    """The configuration `defaults` with every field the parsed `args` carry; validated."""
    values = vars(args)

    def build(obj: Any, prefix: str) -> Any:
        changes: dict[str, Any] = {}
        hints = _hints(type(obj))
        for f in fields(obj):
            dest = prefix + f.name
            if dataclasses.is_dataclass(hints[f.name]):
                changes[f.name] = build(getattr(obj, f.name), dest + ".")
            elif dest in values:
                value = values[dest]
                if typing.get_origin(hints[f.name]) is dict:
                    what = _flag(f, prefix)
                    value = {**getattr(obj, f.name), **parse_key_values(value or [], what)}
                elif "parse" in f.metadata and isinstance(value, str):
                    value = f.metadata["parse"](value)
                changes[f.name] = value
        for f in fields(obj):  # bool flags that switch other fields too (`--no-flip`)
            for other in f.metadata.get("sets", ()):
                if prefix + f.name in values and values[prefix + f.name] != getattr(obj, f.name):
                    changes[other] = values[prefix + f.name]
        return replace(obj, **changes)

    config = build(defaults, "")
    if isinstance(config, RunConfig):
        config = config.for_dataset()
    if isinstance(config, Options):
        config.validate()
    return config


__all__ = [
    "EvaluateConfig",
    "ImageTrainConfig",
    "LIFTERS",
    "LiftConfig",
    "LifterOptions",
    "LIVE_FILTERS",
    "LiveCommandConfig",
    "LiveConfig",
    "OpenSimConfig",
    "Options",
    "MODEL_KINDS",
    "RUN_CONFIGS",
    "RunConfig",
    "TPNetTrainConfig",
    "TrainConfig",
    "VideoTrainConfig",
    "add_arguments",
    "check_fields",
    "config_from_dict",
    "configure",
    "device_opt",
    "field_dests",
    "from_args",
    "opt",
    "parse_address",
    "parse_key_values",
    "parse_size",
    "parse_value",
]
