"""Lifting networks, selected by name (`bonelift train --model NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from bonelift.errors import BoneliftError
from bonelift.models.asn import ASN
from bonelift.models.base import LiftingModel, ModelConfig
from bonelift.models.hsn import HSN
from bonelift.models.multiroot import baseline

MODELS: dict[str, Callable[[ModelConfig], LiftingModel]] = {
    "baseline": baseline,  # options={"multi_root": True}: method 3's multi-root head
    # Method 1 (human structure-aware network), Table 1 variants.
    "hsn-single": partial(HSN, dual=False, residual=True),
    "hsn-dual-nores": partial(HSN, dual=True, residual=False),
    "hsn-dual": partial(HSN, dual=True, residual=True),
    # Method 2 (articulated structure-aware network), Table 2 ablation.
    "basic-ref": partial(ASN, fusion="none", rem=False),
    "basic-ref-amstar": partial(ASN, fusion="plain", rem=False),
    "basic-ref-am": partial(ASN, fusion="attention", rem=False),
    "asn": partial(ASN, fusion="attention", rem=True),
}


def build_model(config: ModelConfig) -> LiftingModel:
    """Instantiate the network named by `config.name`."""
    try:
        factory = MODELS[config.name]
    except KeyError:
        raise BoneliftError(f"unknown model {config.name!r} (known: {', '.join(sorted(MODELS))})") from None
    return factory(config)


__all__ = ["MODELS", "LiftingModel", "ModelConfig", "build_model"]
