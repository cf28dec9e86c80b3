"""One configuration path: a dataclass per concern, command-line flags generated from its fields, and
`key=value` overrides checked against what the network understands.

A run configuration (`TrainConfig`, `VideoTrainConfig`, `TPNetTrainConfig`, `ImageTrainConfig`) is saved in every
checkpoint and rebuilt from it with `config_from_dict`. Adding a training option is two edits: a field
here (its `help` metadata becomes the flag's help text) and the line of code that uses it; `add_arguments`
and `from_args` give every command that trains the new flag.

Field metadata understood by the flag generator: `help`; `flag` (the CLI spelling when it is not
`--field-name`, e.g. `--out` for `out_dir`); `aliases` (deprecated spellings kept working); `sets` (a bool
flag that also switches the named fields, e.g. `--no-flip` for training and test flipping). A saved
configuration that predates a field gets the value the older code behaved as when `compat.LEGACY_FIELDS`
names one (e.g. TP-Net's `frame_step` 1), else the default of new runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from bonelift.compat import legacy_fields
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, canonical_action
from bonelift.datasets.humaneva import HUMANEVA_TEST_SUBJECTS, HUMANEVA_TRAIN_SUBJECTS
from bonelift.datasets.virtual import ViewConfig
from bonelift.errors import BoneliftError
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
            raise BoneliftError(f"{what} expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(raw)
    return out


@dataclass
class RunConfig:
    """What every training run shares: data, 2D source, subjects, budget, seed, device, run folder."""

    data_root: str = opt("", "data folder (default: <shared data>/<dataset>, or $BONELIFT_DATA)", flag="--data")
    dataset: str = opt("h36m", "benchmark dataset", choices=("h36m", "humaneva"))
    keypoints: str = opt("gt", "2D input: gt, sh, or a detection npz")
    train_subjects: tuple[str, ...] = opt(TRAIN_SUBJECTS, "comma-separated 3D-labelled training subjects")
    test_subjects: tuple[str, ...] = opt(TEST_SUBJECTS, "comma-separated test subjects")
    actions: tuple[str, ...] = opt((), "comma-separated actions to train and test on, e.g. Walking (method 3's "
                                       "one network per action); empty: all")
    stride: int = opt(4, "train on every N-th frame (50 Hz Human3.6M is highly redundant)")
    eval_stride: int = opt(10, "per-epoch monitoring on every N-th test frame (`evaluate` scores every frame)")
    epochs: int = opt(10, "training epochs")
    batch_size: int = opt(256, "batch size")
    lr: float = opt(1e-3, "learning rate")
    lr_decay: float = opt(0.96, "exponential learning-rate decay factor")
    weight_decay: float = opt(0.0, "L2 weight decay of the optimiser")
    optimizer: str = opt("adam", "optimiser: adam (methods 1, 2, 4, 5) or sgd with --momentum (method 3)",
                         choices=("adam", "sgd"))
    momentum: float = opt(0.9, "momentum of --optimizer sgd (method 3: 0.9)")
    flip: bool = opt(False, "horizontal flip augmentation (mirrored 2D and 3D, left/right swapped)")
    seed: int = opt(0, "random seed")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    out_dir: str = opt("runs/run", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        return config_from_dict(cls, d)

    def for_dataset(self) -> Any:
        """A copy whose subjects are the dataset's protocol split when they were left at the Human3.6M defaults."""
        if self.dataset == "humaneva" and self.train_subjects == TRAIN_SUBJECTS and self.test_subjects == TEST_SUBJECTS:
            return replace(self, train_subjects=HUMANEVA_TRAIN_SUBJECTS, test_subjects=HUMANEVA_TEST_SUBJECTS)
        return self

    def validate(self) -> None:
        """Refuse an unknown network or option before any data is loaded."""
        model = getattr(self, "model", None)
        if model is not None:
            model_spec(model.name, MODEL_KINDS[type(model)])
            check_options(model.name, getattr(model, "options", {}))
        if self.optimizer not in ("adam", "sgd"):
            raise BoneliftError(f"--optimizer must be adam or sgd, got {self.optimizer!r}")
        for name in ("epochs", "batch_size", "stride", "eval_stride"):
            if getattr(self, name) < 1:
                raise BoneliftError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


@dataclass
class TrainConfig(RunConfig):
    """A single-frame lifter's run (methods 1-4); saved with each checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lr_decay_samples: int = opt(
        6_400_000,
        "decay the learning rate by --lr-decay per this many training samples (Martinez et al.: 100k steps of 64)",
    )
    lr_step_epochs: int = opt(
        0, "staircase schedule: multiply the learning rate by --lr-decay every N epochs instead of the per-sample "
           "decay (0: off; method 3: 0.5 every 4)"
    )
    noise_px: float = opt(0.0, "Gaussian noise added to training 2D, in pixels of a 1000-px-wide image")
    init_from: str = opt("", "start from this checkpoint's weights and normalisation (fine-tuning)", flag="--init")
    losses: dict[str, float] = opt(
        help="anatomical loss weight NAME=WEIGHT: geometry, angle, symmetry, reprojection", factory=dict, flag="--loss"
    )
    warmup_epochs: int = opt(0, "epochs on 3D data only before --loss terms and weak supervision switch on")
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
    )
    symmetry_lr_factor: float = opt(0.1, "learning-rate factor of the symmetry stage (paper: 2.5e-5 / 2.5e-4)")
    out_dir: str = opt("runs/baseline", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse a staged schedule that starts before the warm start, or losses with no sample to supervise."""
        super().validate()
        if self.losses_on not in ("weak", "all"):
            raise BoneliftError(f"--losses-on must be weak or all, got {self.losses_on!r}")
        if self.symmetry_epoch and self.symmetry_epoch < self.warmup_epochs:
            raise BoneliftError(
                f"--symmetry-epoch {self.symmetry_epoch} is before the weak losses start (--warmup-epochs "
                f"{self.warmup_epochs}); the paper adds symmetry in a later stage"
            )
        structure = any(self.losses.get(k) for k in ("geometry", "angle", "symmetry"))
        if structure and self.losses_on == "weak" and not self.weak_subjects:
            raise BoneliftError(
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

    model: VideoModelConfig = field(default_factory=VideoModelConfig)
    views: ViewConfig = field(default_factory=ViewConfig)
    stride: int = opt(1, "one training window per N-th frame")
    epochs: int = opt(80, "training epochs")
    batch_size: int = opt(1024, "batch size")
    lr_decay: float = opt(0.95, "learning-rate decay per epoch (VideoPose3D)")
    flip: bool = opt(
        True, "horizontal flip augmentation, and test-time flip averaging", flag="--no-flip", sets=("test_flip",)
    )
    test_flip: bool = opt(True, "average predictions of the input and its mirror image", flag="--no-test-flip")
    precise_bn: int = opt(0, "after each epoch, re-estimate batch-norm statistics with its final weights over N "
                             "training batches (0: off, the papers' running averages)")
    out_dir: str = opt("runs/tcn", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse virtual views or detector-like 2D on data they cannot be built from."""
        super().validate()
        self.views.check()
        if self.views.active and (self.keypoints != "gt" or self.dataset != "h36m"):
            raise BoneliftError("--cameras / --detector build the 2D from Human3.6M's 3D: use --dataset h36m "
                                f"--keypoints gt (got {self.dataset} / {self.keypoints})")


@dataclass
class TPNetTrainConfig(RunConfig):
    """TP-Net's run over a single-frame model's predictions (method 4, Sec. 4.2)."""

    model: TPNetConfig = field(default_factory=TPNetConfig)
    stride: int = opt(20, "every N-th frame of the training predictions is a target (its window: --frame-step apart)")
    epochs: int = opt(3, "training epochs (paper: 30)")
    lr: float = opt(3e-4, "learning rate (Adam, decayed to a tenth over the run)")
    out_dir: str = opt("runs/tpnet", "run folder", flag="--out")


@dataclass
class ImageTrainConfig(RunConfig):
    """Method 3's image CNN trained on ImageSet files (person crops with their 2D and 3D ground truth); saved
    with each checkpoint. The defaults are the paper's schedule (Sec. 4); `--train-subjects` /
    `--test-subjects` select by the ImageSet's subject array, `--actions` by its action array."""

    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    train_images: str = opt("", "ImageSet file (.npz) of the training crops (`bonelift images` writes them)")
    test_images: str = opt("", "ImageSet file of the test crops (default: the --train-images file, --test-subjects)")
    color_aug: float = opt(0.1, "PCA colour augmentation: std of the per-image weights of the training images' RGB "
                                "principal components (AlexNet: 0.1; 0: off)")
    stride: int = opt(1, "train on every N-th training image")
    epochs: int = opt(28, "training epochs (paper: 28)")
    batch_size: int = opt(128, "batch size (paper: 128)")
    lr: float = opt(0.01, "initial learning rate (paper: 0.01)")
    lr_decay: float = opt(0.5, "learning-rate factor every --lr-step-epochs epochs (paper: 0.5)")
    lr_step_epochs: int = opt(4, "staircase schedule: multiply the learning rate by --lr-decay every N epochs "
                                 "(paper: 4)")
    weight_decay: float = opt(0.001, "L2 weight decay of the optimiser (paper: 0.001)")
    optimizer: str = opt("sgd", "optimiser: sgd with --momentum (the paper's) or adam", choices=("adam", "sgd"))
    out_dir: str = opt("runs/method3_image", "run folder (config, logs, last.pt, best.pt)", flag="--out")

    def validate(self) -> None:
        """Also refuse a run without training images, options the image path does not have, and too small crops."""
        super().validate()
        if not self.train_images:
            raise BoneliftError("--train-images is required: the ImageSet file (.npz) to train on")
        if self.flip:
            raise BoneliftError("--flip is not available for image training (the paper does not flip)")
        if self.lr_step_epochs < 1:
            raise BoneliftError(f"--lr-step-epochs must be >= 1, got {self.lr_step_epochs}")
        if self.color_aug < 0:
            raise BoneliftError(f"--color-aug must be >= 0, got {self.color_aug}")
        trunk_side(self.model.image_size)
        if self.model.grid < 2:
            raise BoneliftError(f"--grid must be >= 2, got {self.model.grid}")
        for action in self.actions:
            canonical_action(action)


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


def _default(obj: Any, dest: str) -> Any:
    for part in dest.split("."):
        obj = getattr(obj, part)
    return obj


def add_arguments(
    parser: argparse.ArgumentParser, defaults: Any, only: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()
) -> None:
    """Add one flag per field of the configuration `defaults` (an instance: its values are the defaults).

    `only` / `skip` name fields (nested ones as "model.hidden") to include or leave out.
    """
    for dest, f, kind in _walk(type(defaults)):
        if (only is not None and dest not in only) or dest in skip:
            continue
        prefix = dest.rpartition(".")[0]
        names = [_flag(f, prefix), *f.metadata.get("aliases", ())]
        default = _default(defaults, dest)
        helptext = f.metadata.get("help", "")
        origin = typing.get_origin(kind)
        if kind is bool:
            if default and not names[0].startswith("--no-"):  # a switch that is on by default turns off
                names[0] = "--no-" + names[0][2:]
            action = "store_false" if names[0].startswith("--no-") else "store_true"
            parser.add_argument(*names, dest=dest, action=action, default=default, help=helptext)
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
                help=helptext + (f" (default: {default!r})" if default != "" else ""),
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
                changes[f.name] = value
        for f in fields(obj):  # bool flags that switch other fields too (`--no-flip`)
            for other in f.metadata.get("sets", ()):
                if prefix + f.name in values and values[prefix + f.name] != getattr(obj, f.name):
                    changes[other] = values[prefix + f.name]
        return replace(obj, **changes)

    config = build(defaults, "")
    if isinstance(config, RunConfig):
        config = config.for_dataset()
        config.validate()
    return config


__all__ = [
    "ImageTrainConfig",
    "MODEL_KINDS",
    "RUN_CONFIGS",
    "RunConfig",
    "TPNetTrainConfig",
    "TrainConfig",
    "VideoTrainConfig",
    "add_arguments",
    "config_from_dict",
    "from_args",
    "opt",
    "parse_key_values",
    "parse_value",
]
