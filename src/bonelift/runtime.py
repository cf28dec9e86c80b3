"""Where and how a run executes: device choice, seeding, torch.distributed (torchrun) and a machine description."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from bonelift.errors import BoneliftError


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; an unknown name or an absent GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise BoneliftError(f"--device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BoneliftError(f"--device {name}: no CUDA GPU is available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise BoneliftError(f"--device: unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling generator of one epoch: a function of (seed, epoch) only, so a resumed run shuffles alike."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


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
