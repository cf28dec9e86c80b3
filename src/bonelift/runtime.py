"""Where and how a run executes: device choice, seeding, torch.distributed (torchrun) and a machine description."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from bonelift.errors import OptionError


def resolve_device(name: str) -> torch.device:
    """The torch device for `name` (`auto`: CUDA when present), refusing unknown names and devices this
    machine does not have with an error that names the option."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(
            f"device (--device) {name!r} is not a device name (use auto, cpu, cuda, cuda:N or mps)"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OptionError(f"device (--device) {name!r}: no CUDA GPU is available on this machine (use cpu or auto)")
        if dev.index is not None and dev.index >= count:
            raise OptionError(f"device (--device) {name!r}: this machine has {count} CUDA GPU(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise OptionError(f"device (--device) {name!r}: Apple MPS is not available on this machine")
    elif dev.type != "cpu":
        raise OptionError(f"device (--device) {name!r} is not supported (use auto, cpu, cuda, cuda:N or mps)")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


SHUFFLE_STREAM, BATCH_NORM_STREAM = 100_003, 1000  # seed spacing of each per-epoch stream (kept: runs reproduce)


def epoch_generator(seed: int, epoch: int, stream: int = SHUFFLE_STREAM) -> torch.Generator:
    """The generator of one epoch's draws: a function of (seed, epoch, stream) only, so a resumed run draws alike.

    The one seed-derivation rule of the training loops: `seed * stream + epoch`; the stream (the shuffling
    order, the batch-norm recalibration batches) keeps its own spacing so stored runs reproduce."""
    return torch.Generator().manual_seed(seed * stream + epoch)


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def local_device(device: torch.device, world: int) -> torch.device:
    """This process's GPU under torchrun (LOCAL_RANK), else `device`."""
    if world > 1 and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def machine(device: str = "auto") -> str:
    """One line naming the machine a result was measured on (CPU cores and threads, or the GPU)."""
    dev = resolve_device(device)
    accel = (
        torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU only, {torch.get_num_threads()} torch threads"
    )
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, {accel}; Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
