"""One checkpoint format for every network: save, load, rebuild, export, routed by the checkpoint's kind.

A checkpoint is a dict saved with `torch.save` and read back with `weights_only=True` (a file cannot run
code): `format`, `kind` (single-frame, video or tpnet; absent in single-frame checkpoints written before
kinds existed), `train_config` (the run configuration, so the network can be rebuilt), `model` (the
state dict) and, in training checkpoints, the optimiser, scheduler and random state for resuming.
TP-Net files of the older `bonelift-tpnet-v1` format still load (`compat.upgrade_checkpoint`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bonelift.compat import upgrade_checkpoint
from bonelift.config import RUN_CONFIGS, RunConfig
from bonelift.errors import BoneliftError, DataError
from bonelift.io import atomic_path, check_zip_budget
from bonelift.models import SINGLE_FRAME, TPNET, build_model

FORMAT = "bonelift-checkpoint-v1"
KEEP_ON_EXPORT = ("format", "kind", "train_config", "epoch", "step", "history")


def save(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename): a crash or a full disk never leaves a torn
    file, and the previous checkpoint stays as it was."""
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (disk full) as RuntimeError
            raise OSError(f"torch could not write the file, disk full? ({str(exc).strip().splitlines()[-1]})") from None
    return Path(path)


def payload(config: RunConfig, model: nn.Module, kind: str, **state: Any) -> dict[str, Any]:
    """The checkpoint dict of a network and the configuration that built it, plus any training `state`."""
    return {"format": FORMAT, "kind": kind, "train_config": config.to_dict(), "model": model.state_dict(), **state}


def save_model(path: str | Path, model: nn.Module, config: RunConfig, kind: str = SINGLE_FRAME, **state: Any) -> Path:
    """Save a network with its run configuration so `rebuild` can restore it."""
    return save(path, payload(config, model, kind, **state))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; a missing, corrupt or foreign file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    if not zipfile.is_zipfile(path):  # the legacy formats declare storage sizes that torch allocates before reading
        raise DataError(path, "corrupt or unreadable checkpoint (not a torch zip archive)")
    check_zip_budget(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise DataError(path, f"corrupt or unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    ckpt = upgrade_checkpoint(ckpt, FORMAT, TPNET)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DataError(path, "not a bonelift checkpoint (missing format tag)")
    return ckpt


def kind_of(ckpt: dict[str, Any]) -> str:
    return ckpt.get("kind") or SINGLE_FRAME


def config_of(ckpt: dict[str, Any], path: str | Path) -> RunConfig:
    """The run configuration a checkpoint carries, checked to be one its kind can use."""
    kind = kind_of(ckpt)
    if kind not in RUN_CONFIGS:
        raise DataError(path, f"unknown checkpoint kind {kind!r} (known: {', '.join(RUN_CONFIGS)})")
    saved = ckpt.get("train_config")
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise DataError(path, "the checkpoint carries no training configuration (train_config with a model)")
    try:
        config = RUN_CONFIGS[kind].from_dict(saved)
        config.validate()
    except (TypeError, ValueError, BoneliftError) as exc:
        raise DataError(path, f"invalid training configuration for a {kind} checkpoint: {exc}") from None
    return config


def rebuild(
    path: str | Path, device: str | torch.device = "cpu", kind: str | None = None, ckpt: dict[str, Any] | None = None
) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """The network a checkpoint holds, in eval mode on `device`, with its configuration and the checkpoint.

    `kind`, when given, is the kind the caller needs; another kind, an unusable configuration, weights
    that do not fit the network or non-finite weights are DataErrors naming the file.
    """
    ckpt = load(path, "cpu") if ckpt is None else ckpt
    have = kind_of(ckpt)
    if kind is not None and have != kind:
        raise DataError(path, f"holds a {have} model, not a {kind} one")
    config = config_of(ckpt, path)
    weights = ckpt.get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise DataError(path, "the checkpoint's `model` entry is not a state dict of tensors")
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise DataError(path, f"weights contain NaN/inf values ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
    try:
        model = build_model(config.model)
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, BoneliftError) as exc:
        raise DataError(path, f"weights do not match model {config.model.name!r}: {exc}") from None
    return model.to(device).eval(), config, ckpt


def export(src: str | Path, dst: str | Path, half: bool = True, overwrite: bool = False) -> Path:
    """Write a deployable copy of a checkpoint: weights (float16 when `half`) and configuration only.

    Drops the optimiser, scheduler and random state (two thirds of a training checkpoint); the result
    loads with `rebuild` like any other. An existing `dst` is kept unless `overwrite`.
    """
    dst = Path(dst)
    if dst.is_dir():
        raise DataError(dst, "is a folder; name the file to write")
    if dst.exists() and not overwrite:
        raise DataError(dst, "exists already (pass --overwrite to replace it)")
    ckpt = load(src)
    rebuild(src, ckpt=ckpt)  # refuse to export what would not load
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    keep = {k: ckpt[k] for k in KEEP_ON_EXPORT if k in ckpt}
    try:
        return save(dst, {**keep, "model": weights})
    except OSError as exc:
        raise DataError(dst, f"cannot write ({exc.strerror or exc})") from None


__all__ = ["FORMAT", "export", "kind_of", "load", "payload", "rebuild", "save", "save_model"]
