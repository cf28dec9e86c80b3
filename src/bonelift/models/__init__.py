"""Every network, selected by name (`bonelift models` lists them): one registry for single-frame lifters
(methods 1-3), video lifters (VideoPose3D `tcn`, method 5 `bone`), TP-Net (method 4) and method 3's
image CNN (kind "image", person crops in instead of 2D keypoints).

Each entry names its kind (the configuration class it is built from and the checkpoint kind it is
saved as) and the typed options dataclass its model file declares (`models.options`); `check_options`
(called by `build_model` and every run configuration's `validate`) refuses an unknown key or a value of
the wrong type, so a misspelt `--option` is an error instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn

from bonelift.errors import BoneliftError
from bonelift.models.asn import ASN, ASNOptions
from bonelift.models.base import LiftingModel, ModelConfig, init_weights, set_kernels
from bonelift.models.bone_video import BoneOptions, BoneVideoLifter
from bonelift.models.hsn import HSN, HSNOptions
from bonelift.models.method3 import ImageModelConfig, ImageOptions, Method3ImageNet, Method3Lifter, Method3Options
from bonelift.models.multiroot import BaselineOptions, baseline
from bonelift.models.options import NetworkOptions
from bonelift.models.tcn import TCNOptions, TemporalConvLifter, VideoModelConfig
from bonelift.models.tpnet import TPNet, TPNetConfig

SINGLE_FRAME, VIDEO, TPNET, IMAGE = "single-frame", "video", "tpnet", "image"
CONFIG_CLASSES: dict[str, type] = {SINGLE_FRAME: ModelConfig, VIDEO: VideoModelConfig, TPNET: TPNetConfig,
                                   IMAGE: ImageModelConfig}
_BASIC, _HSN, _ASN = BaselineOptions, HSNOptions, ASNOptions  # each model file declares its options


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the network, its kind, and the dataclass of its options."""

    build: Callable[[Any], nn.Module]
    kind: str
    summary: str
    options: type[NetworkOptions] = NetworkOptions


MODELS: dict[str, ModelSpec] = {
    "baseline": ModelSpec(baseline, SINGLE_FRAME, "residual MLP (Martinez et al.)", _BASIC),
    # Method 1 (human structure-aware network), Table 1 variants.
    "hsn-single": ModelSpec(
        partial(HSN, dual=False, residual=True), SINGLE_FRAME, "method 1, one refinement channel", _HSN
    ),
    "hsn-dual-nores": ModelSpec(
        partial(HSN, dual=True, residual=False),
        SINGLE_FRAME,
        "method 1, dual channel without residual fusion",
        _HSN,
    ),
    "hsn-dual": ModelSpec(
        partial(HSN, dual=True, residual=True), SINGLE_FRAME, "method 1, dual channel with residual fusion", _HSN
    ),
    # Method 2 (articulated structure-aware network), Table 2 ablation.
    "basic-ref": ModelSpec(
        partial(ASN, fusion="none", rem=False), SINGLE_FRAME, "method 2, basic + refinement", _ASN
    ),
    "basic-ref-amstar": ModelSpec(
        partial(ASN, fusion="plain", rem=False), SINGLE_FRAME, "method 2, + plain feature fusion (AM*)", _ASN
    ),
    "basic-ref-am": ModelSpec(
        partial(ASN, fusion="attention", rem=False), SINGLE_FRAME, "method 2, + attention module (AM)", _ASN
    ),
    "asn": ModelSpec(
        partial(ASN, fusion="attention", rem=True),
        SINGLE_FRAME,
        "method 2, AM + random enhancement module",
        _ASN,
    ),
    # Method 3 (2D grid classification + multi-root regression), Table 2 rows via options cls2d / multi_root.
    "method3": ModelSpec(Method3Lifter, SINGLE_FRAME, "method 3, 2D soft-label classification + multi-root 3D",
                         Method3Options),
    "method3-image": ModelSpec(Method3ImageNet, IMAGE, "method 3 image CNN (ZFnet-shaped conv layers) with the "
                               "same 2D/3D head", ImageOptions),
    "tcn": ModelSpec(TemporalConvLifter, VIDEO, "temporal convolutions (VideoPose3D)", TCNOptions),
    "bone": ModelSpec(BoneVideoLifter, VIDEO, "method 5, bone length + direction", BoneOptions),
    "tpnet": ModelSpec(TPNet, TPNET, "method 4, temporal refinement of a single-frame model's poses"),
}


def model_spec(name: str, kind: str | None = None) -> ModelSpec:
    """The registry entry of `name`, checked to be of `kind` when given."""
    spec = MODELS.get(name)
    if spec is None or (kind is not None and spec.kind != kind):
        known = sorted(n for n, s in MODELS.items() if kind is None or s.kind == kind)
        what = f"{kind} model" if kind else "model"
        raise BoneliftError(f"unknown {what} {name!r} (known: {', '.join(known)})")
    return spec


def check_options(name: str, options: dict[str, Any]) -> NetworkOptions:
    """The network's typed options; an `OptionError` for an unknown key or a value of the wrong type."""
    return MODELS[name].options.parse(options, name)


def build_model(config: Any) -> nn.Module:
    """Instantiate the network a configuration names (a ModelConfig, VideoModelConfig, TPNetConfig or
    ImageModelConfig)."""
    kind = next((k for k, cls in CONFIG_CLASSES.items() if isinstance(config, cls)), None)
    spec = model_spec(config.name, kind)
    options = check_options(config.name, getattr(config, "options", {}))
    model = spec.build(config)
    if kind in (SINGLE_FRAME, IMAGE):
        init_weights(model, getattr(options, "init", "kaiming"))
    return model


__all__ = [
    "IMAGE",
    "MODELS",
    "SINGLE_FRAME",
    "TPNET",
    "VIDEO",
    "ImageModelConfig",
    "LiftingModel",
    "ModelConfig",
    "ModelSpec",
    "NetworkOptions",
    "TPNet",
    "TPNetConfig",
    "VideoModelConfig",
    "build_model",
    "check_options",
    "model_spec",
    "set_kernels",
]
