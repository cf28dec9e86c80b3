"""The one training loop: shuffling, batches, optimiser steps, per-epoch monitoring, logs, checkpoints, resume.

Every trainer (single-frame, video, TP-Net) is a `Run` that says how many samples an epoch has and
what a batch of them costs (`batch_losses`); the loop here does the rest identically for all. A run
folder holds `config.json`, `log.csv`, `log.json`, `last.pt` and `best.pt` (best monitored P1).
Checkpoints are written atomically, `best.pt` before `last.pt`, so a run killed at any moment resumes
from a `last.pt` whose best score `best.pt` holds; `resume` restores optimiser, scheduler and random
state, so a resumed run continues bit-identically. A folder that already holds a run is never
overwritten unless asked (`overwrite`).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from bonelift import checkpoints
from bonelift.config import RunConfig
from bonelift.errors import BoneliftError, DataError, OptionError
from bonelift.io import atomic_path, writable_dir, write_json
from bonelift.models import set_kernels
from bonelift.runtime import distributed, epoch_generator, local_device, resolve_device, seed_everything
from bonelift.skeletons import MM

RUN_FILES = ("config.json", "log.csv", "log.json", "last.pt", "best.pt")


# Options a resumed run may change: how long it trains, where it runs, where its files and data are.
RESUME_FREE = frozenset({"epochs", "device", "out_dir", "data_root"})
# Filled in from the data when training starts, so a configuration before that does not know them yet.
_FROM_DATA = frozenset({"model.input_layout", "model.output_layout", "model.confidence"})


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"channels": 8}} -> {"model.channels": 8}: every option under its dotted name."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and k not in ("options", "losses") else
                   {f"{prefix}{k}": v})
    return out


def prepare_run_dir(out_dir: str | Path, config: RunConfig, kind: str, resume: bool, overwrite: bool,
                    override: bool = False) -> None:
    """Check a run folder before any data is loaded: refuse to clobber a run, or check the one to resume.

    Resuming needs a `last.pt` of the same kind and network, trained with the same options (but `RESUME_FREE`)
    unless `override` (then `config.json` records the new ones); stale temporary files of a killed run go.
    """
    out = Path(out_dir)
    if not resume or out.is_dir():  # a missing folder to resume is reported below, without making it
        writable_dir(out, "run folder (--out)")
    last = out / "last.pt"
    if resume:
        if not last.is_file():
            raise DataError(last, "nothing to resume (no last.pt in the run folder)")
        ckpt = checkpoints.load(last)
        have = checkpoints.kind_of(ckpt)
        if have != kind:
            raise DataError(last, f"holds a {have} run; this is a {kind} run, so it cannot resume it")
        saved_config = checkpoints.config_of(ckpt, last)
        saved = saved_config.model.to_dict()
        wanted = config.model.to_dict()
        differ = sorted(
            k for k in wanted if k not in ("input_layout", "output_layout", "confidence") and saved.get(k) != wanted[k]
        )
        if differ:
            raise DataError(
                last,
                "was trained with another network ("
                + ", ".join(f"{k}: {saved.get(k)!r} there, {wanted[k]!r} here" for k in differ)
                + "); cannot resume it",
            )
        before, now = _flat(json.loads(json.dumps(saved_config.to_dict()))), _flat(json.loads(json.dumps(
            config.to_dict())))
        changed = sorted(k for k in now if k not in RESUME_FREE | _FROM_DATA and before.get(k) != now[k])
        if changed and not override:
            raise OptionError(f"{last} was trained with other options ("
                              + ", ".join(f"{k}: {before.get(k)!r} there, {now[k]!r} here" for k in changed)
                              + "); resume with the run's options, or pass --override to continue under the new ones")
    elif any((out / name).exists() for name in RUN_FILES):
        if not overwrite:
            raise BoneliftError(f"{out} holds a run already; pass --resume to continue it or --overwrite to replace it")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    for stale in out.glob(".*.tmp") if out.is_dir() else ():
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


class Run:
    """Base of every trainer: subclasses set `config`, `model`, `optimizer`, `scheduler`, `device`, `progress`,
    implement `num_samples` and `batch_losses`, optionally `monitor`, then call `start(resume)`."""

    kind: str = ""
    step_schedule = True  # the scheduler steps after every batch (False: after every epoch)
    rank, world = 0, 1
    config: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    progress: bool

    @property
    def out_dir(self) -> Path | None:
        return Path(self.config.out_dir) if self.config.out_dir else None

    @property
    def net(self) -> nn.Module:
        """The module the forward passes use (a DistributedDataParallel wrapper under torchrun)."""
        return getattr(self, "_net", self.model)

    def begin(self, config: Any, resume: bool, progress: bool, overwrite: bool, data_parallel: bool = False,
              override: bool = False) -> Any:
        """Shared start of every trainer: validate and copy the configuration (the caller's copy never changes),
        pick the device (this process's GPU under torchrun when `data_parallel`), check the run folder, seed."""
        config.validate()
        self.config = copy.deepcopy(config)
        if data_parallel:
            self.rank, self.world = distributed()
        self.device = local_device(resolve_device(self.config.device), self.world)
        self.progress = progress and self.rank == 0
        if self.out_dir is not None and self.rank == 0:
            prepare_run_dir(self.out_dir, self.config, self.kind, resume, overwrite, override)
        seed_everything(self.config.seed)
        return self.config

    def make_optimizer(self, amsgrad: bool = False) -> torch.optim.Optimizer:
        """The one optimiser constructor of every trainer, configured from the run: Adam (the default; `amsgrad`
        for VideoPose3D) or, with `optimizer` "sgd", SGD with the run's momentum (method 3), in the kernel
        `optimizer_impl` names (None lets torch choose)."""
        cfg = self.config
        kernel = {} if cfg.optimizer_impl == "default" else {cfg.optimizer_impl: True}
        if getattr(cfg, "optimizer", "adam") == "sgd":
            return torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, **kernel)
        return torch.optim.Adam(self.model.parameters(), lr=cfg.lr, amsgrad=amsgrad, weight_decay=cfg.weight_decay,
                                **kernel)

    def num_samples(self) -> int:
        raise NotImplementedError

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of the samples `rows` (indices below `num_samples()`); "total" is minimised."""
        raise NotImplementedError

    def losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """`batch_losses` in the run's precision: with "bf16" under `torch.autocast` (matrix products in bf16),
        every loss returned in fp32 so the backward pass starts and the optimiser steps in fp32."""
        bf16 = self.config.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = self.batch_losses(rows)
        return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in losses.items()}

    def monitor(self) -> dict[str, Any] | None:
        """Scores after an epoch (`p1`/`p2` dicts with an "average"), or None for no monitoring."""
        return None

    def start(self, resume: bool) -> None:
        set_kernels(self.model, self.config.kernels == "fast")
        self.epoch, self.step, self.history, self.best = 0, 0, [], math.inf
        if resume and self.out_dir is not None:
            ckpt = checkpoints.load(self.out_dir / "last.pt", self.device)
            try:
                self.model.load_state_dict(ckpt["model"])
            except RuntimeError as exc:
                raise DataError(self.out_dir / "last.pt", f"weights do not fit this run's network: {exc}") from None
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.epoch, self.step = ckpt["epoch"], ckpt["step"]
            self.history, self.best = ckpt["history"], ckpt["best"]
            torch.set_rng_state(ckpt["rng"])

    def fit(self) -> list[dict[str, Any]]:
        """Train for the configured epochs, monitoring after each and checkpointing last and best."""
        lead = self.rank == 0 and self.out_dir is not None
        if lead:
            write_json(self.out_dir / "config.json", self.config.to_dict())
        while self.epoch < self.config.epochs:
            t0 = time.time()
            loss = self.train_epoch()
            train_s = time.time() - t0
            self.epoch += 1
            if not self.step_schedule:
                self.scheduler.step()
            if self.rank == 0:  # other data-parallel processes only train
                self._record_epoch(loss, train_s, self.monitor(), lead)
        return self.history

    def train_epoch(self) -> float:
        """One pass over this process's shard of the shuffled samples; the mean total loss."""
        cfg = self.config
        self.net.train()
        order = torch.randperm(self.num_samples(), generator=epoch_generator(cfg.seed, self.epoch))[
            self.rank :: self.world
        ]
        # Counted on the whole epoch, not the shard: every process then takes the same number of steps (shards
        # differ by one sample when the count is odd, and DDP's gradient exchange needs every process at each step).
        n_batches = max(1, self.num_samples() // (cfg.batch_size * self.world))
        total = 0.0
        bar = tqdm(
            range(n_batches), desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.progress, leave=False
        )
        for b in bar:
            losses = self.losses(order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            if self.step_schedule:
                self.scheduler.step()
            self.step += 1
            value = float(losses["total"].detach())
            total += value
            if b % 20 == 0:
                post = {"loss": f"{value:.4f}", "lr": f"{self.scheduler.get_last_lr()[0]:.2e}"}
                if "mpjpe" in losses:
                    post["mpjpe"] = f"{float(losses['mpjpe'].detach()) * MM:.1f}"
                bar.set_postfix(post)
        return total / n_batches

    def _payload(self) -> dict[str, Any]:
        return checkpoints.payload(
            self.config,
            self.model,
            self.kind,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            epoch=self.epoch,
            step=self.step,
            history=self.history,
            best=self.best,
            rng=torch.get_rng_state(),
        )

    def _record_epoch(self, loss: float, train_s: float, results: dict[str, Any] | None, write: bool) -> None:
        """Log the epoch; checkpoint `best.pt` when monitored P1 improved, then `last.pt`."""
        p1 = results["p1"]["average"] if results else math.nan
        p2 = results["p2"]["average"] if results else math.nan
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "loss": loss,
            "lr": self.scheduler.get_last_lr()[0],
            "p1_mm": p1,
            "p2_mm": p2,
            "train_seconds": train_s,
        }
        self.history.append(row)
        improved = results is not None and p1 < self.best
        self.best = min(self.best, p1) if results else self.best
        if write:
            payload = self._payload()
            if improved:
                checkpoints.save(self.out_dir / "best.pt", payload)
            checkpoints.save(self.out_dir / "last.pt", payload)
            write_json(self.out_dir / "log.json", self.history)
            with atomic_path(self.out_dir / "log.csv") as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
                writer.writerows(self.history)
        if self.progress:
            scores = f"  P1 {p1:.2f} mm  P2 {p2:.2f} mm" if results else ""
            tqdm.write(f"epoch {self.epoch}: loss {loss:.4f}{scores}  ({train_s:.0f} s)")
