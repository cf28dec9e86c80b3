"""Lifting networks, selected by name (`bonelift train --model NAME`)."""

from __future__ import annotations

from collections.abc import Callable

from bonelift.errors import BoneliftError
from bonelift.models.base import LiftingModel, ModelConfig
from bonelift.models.baseline import Baseline

MODELS: dict[str, Callable[[ModelConfig], LiftingModel]] = {
    "baseline": Baseline,
}


def build_model(config: ModelConfig) -> LiftingModel:
    """Instantiate the network named by `config.name`."""
    try:
        factory = MODELS[config.name]
    except KeyError:
        raise BoneliftError(f"unknown model {config.name!r} (known: {', '.join(sorted(MODELS))})") from None
    return factory(config)


__all__ = ["MODELS", "LiftingModel", "ModelConfig", "build_model"]
