"""Training of single-frame lifters: configuration, data preparation, loop, checkpoints, resume.

A run directory holds `config.json`, `log.csv`, `log.json`, `last.pt` and `best.pt`. Checkpoints
are written to a temporary file and renamed, so an interrupted run never leaves a torn file, and
`--resume` continues from `last.pt` with the optimiser, scheduler and random state restored.
Launch under `torchrun --nproc_per_node N` to train data-parallel over N processes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, PoseSequence, flatten_frames, load_h36m
from bonelift.errors import BoneliftError, DataError, atomic_path
from bonelift.models import LiftingModel, ModelConfig, build_model
from bonelift.skeletons import COCO17, H36M16, H36M17, MEDIAPIPE33, MPII16, Layout, convert

CHECKPOINT_FORMAT = "bonelift-checkpoint-v1"


@dataclass
class TrainConfig:
    """Everything that determines a training run; saved with each checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data_root: str = ""
    dataset: str = "h36m"
    keypoints: str = "gt"  # "gt", "sh", or a detection file / detector name
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    test_subjects: tuple[str, ...] = TEST_SUBJECTS
    stride: int = 4  # use every stride-th training frame (50 Hz Human3.6M is highly redundant)
    eval_stride: int = 10  # per-epoch monitoring only; `bonelift evaluate` scores every frame
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.96  # exponential decay factor ...
    lr_decay_samples: int = 6_400_000  # ... per this many training samples (Martinez: 100k steps of 64)
    noise_px: float = 0.0  # Gaussian noise added to training 2D, in pixels of a 1000-px-wide image
    flip: bool = False  # horizontal flip augmentation (mirrored 2D and 3D, left/right swapped)
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs/baseline"
    init_from: str = ""  # checkpoint whose weights (and normalisation) start this run: fine-tuning
    losses: dict[str, float] = field(default_factory=dict)  # anatomical loss weights (bonelift.weak)
    warmup_epochs: int = 0  # epochs on 3D data only before `losses` and weak supervision switch on
    weak_subjects: tuple[str, ...] = ()  # 2D-only training subjects (their 3D is never used)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return config_from_dict(cls, d, ModelConfig)


def config_from_dict(cls: type, d: dict[str, Any], model_cls: type) -> Any:
    """Rebuild a run configuration saved by `to_dict`; unknown keys are ignored so older checkpoints load."""
    known = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in known}
    kwargs["model"] = model_cls(**d["model"]) if isinstance(d.get("model"), dict) else d.get("model", model_cls())
    for key in ("train_subjects", "test_subjects", "weak_subjects"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def input_layout_for(layout: Layout) -> Layout:
    """The layout networks see for a detector layout: Human3.6M order where the joints allow it."""
    if layout == MPII16:
        return H36M16
    if layout in (COCO17, MEDIAPIPE33):
        return H36M17
    return layout


def prepare_inputs(seqs: list[PoseSequence]) -> tuple[list[PoseSequence], Layout]:
    """Convert every sequence's keypoints to the network input layout (in place) and return it."""
    src = seqs[0].layout
    dst = input_layout_for(src)
    if src != dst:
        for s in seqs:
            s.keypoints, s.confidence = convert(s.keypoints, src, dst, s.confidence)
            s.layout = dst
    return seqs, dst


def load_split(config: TrainConfig, subjects: tuple[str, ...]) -> list[PoseSequence]:
    """Sequences of `subjects` for the configured dataset and 2D source, in network input layout."""
    if config.dataset == "h36m":
        seqs = load_h36m(config.data_root, config.keypoints, subjects)
    elif config.dataset == "humaneva":
        from bonelift.datasets import load_humaneva

        # HumanEva subjects name their split ("Train/S1", "Validate/S1"): the protocol trains and
        # tests on the same subjects, so the split cannot be inferred from the subject list.
        splits = {s.partition("/")[0] for s in subjects}
        if "" in {s.partition("/")[2] for s in subjects} or not splits <= {"Train", "Validate"}:
            raise BoneliftError(f"HumanEva subjects must be 'Train/S<n>' or 'Validate/S<n>', got {list(subjects)}")
        seqs = [
            seq
            for split in ("Train", "Validate")
            if split in splits
            for seq in load_humaneva(config.data_root, split, tuple(s.partition("/")[2] for s in subjects if s.startswith(split + "/")))
        ]
    else:
        raise BoneliftError(f"unknown dataset {config.dataset!r} (known: h36m, humaneva)")
    return prepare_inputs(seqs)[0]


def test_split_for(config: Any, data_root: str | None = None, keypoints: str | None = None) -> list[PoseSequence]:
    """Test sequences of a saved run configuration, optionally on another data folder or 2D source."""
    if data_root:
        config.data_root = data_root
    if keypoints:
        config.keypoints = keypoints
    return load_split(config, config.test_subjects)


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", fmt: str = CHECKPOINT_FORMAT, what: str = "bonelift checkpoint"
) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; a missing, corrupt or foreign file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise DataError(path, f"corrupt or unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise DataError(path, f"not a {what} (missing format tag)")
    return ckpt


def rebuild_from_checkpoint(
    path: str | Path, device: str | torch.device, config_cls: type, build: Any, kind: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the network a checkpoint of `kind` holds, in eval mode; wrong kind or weights are DataErrors."""
    ckpt = load_checkpoint(path, device)
    if ckpt.get("kind") != kind:
        raise DataError(path, f"holds a {ckpt.get('kind') or 'single-frame'} model, not a {kind or 'single-frame'} one")
    config = config_cls.from_dict(ckpt["train_config"])
    model = build(config.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise DataError(path, f"weights do not match model {config.model.name!r}: {exc}") from exc
    return model.to(device).eval(), ckpt


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[LiftingModel, dict[str, Any]]:
    """Rebuild the single-frame network saved in a checkpoint, in eval mode, and return it with the checkpoint."""
    return rebuild_from_checkpoint(path, device, TrainConfig, build_model)


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """Write a deployable copy of a checkpoint: weights (float16 when `half`) and configuration only.

    Drops the optimiser, scheduler and random state (two thirds of a training checkpoint); the
    result loads with `model_from_checkpoint` like any other.
    """
    ckpt = load_checkpoint(src)
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    keep = {k: ckpt[k] for k in ("format", "kind", "train_config", "epoch", "step", "history") if k in ckpt}
    save_checkpoint(Path(dst), {**keep, "model": weights})
    return Path(dst)


def _flip(inputs: torch.Tensor, targets: torch.Tensor, in_layout: Layout, out_layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror screen x and camera x, swapping left and right joints."""
    x = inputs[:, in_layout.flip_permutation].clone()
    x[..., 0] *= -1
    y = targets[:, out_layout.flip_permutation].clone()
    y[..., 0] *= -1
    return x, y


class CheckpointedRun:
    """Checkpoint, resume and log bookkeeping shared by the single-frame and video trainers.

    Subclasses set `config`, `model`, `optimizer`, `scheduler`, `device`, `out_dir`, `progress` and
    call `_start_state(resume)`; `_record_epoch` then logs a row and writes last/best checkpoints.
    """

    kind: str | None = None  # stored in checkpoints so `evaluate` can route them

    def _start_state(self, resume: bool) -> None:
        self.epoch, self.step, self.history, self.best = 0, 0, [], math.inf
        if resume:
            ckpt = load_checkpoint(self.out_dir / "last.pt", self.device)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.epoch, self.step = ckpt["epoch"], ckpt["step"]
            self.history, self.best = ckpt["history"], ckpt["best"]
            torch.set_rng_state(ckpt["rng"])

    def _payload(self) -> dict[str, Any]:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "train_config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "best": self.best,
            "rng": torch.get_rng_state(),
        }
        if self.kind:
            payload["kind"] = self.kind
        return payload

    def _write_config(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_dir / "config.json") as tmp:
            tmp.write_text(json.dumps(self.config.to_dict(), indent=2))

    def fit(self) -> list[dict[str, Any]]:
        """Train for the configured epochs, evaluating after each and checkpointing last and best."""
        lead = getattr(self, "rank", 0) == 0
        if lead:
            self._write_config()
        while self.epoch < self.config.epochs:
            t0 = time.time()
            loss = self.train_epoch()
            train_s = time.time() - t0
            self.epoch += 1
            if lead:  # other data-parallel processes only train
                self._record_epoch(loss, train_s, self._monitor(), self.scheduler.get_last_lr()[0])
        return self.history

    def _record_epoch(self, loss: float, train_s: float, results: dict[str, Any], lr: float) -> None:
        """Log the epoch's monitoring scores; checkpoint `last.pt`, and `best.pt` when P1 improved."""
        row = {"epoch": self.epoch, "step": self.step, "loss": loss, "lr": lr, "p1_mm": results["p1"]["average"],
               "p2_mm": results["p2"]["average"], "train_seconds": train_s}
        self.history.append(row)
        improved = row["p1_mm"] < self.best
        self.best = min(self.best, row["p1_mm"])
        payload = self._payload()
        save_checkpoint(self.out_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.out_dir / "best.pt", payload)
        with atomic_path(self.out_dir / "log.json") as tmp:
            tmp.write_text(json.dumps(self.history, indent=2))
        with atomic_path(self.out_dir / "log.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(self.history)
        if self.progress:
            tqdm.write(f"epoch {self.epoch}: loss {loss:.4f}  P1 {row['p1_mm']:.2f} mm  P2 {row['p2_mm']:.2f} mm  ({train_s:.0f} s)")


class Trainer(CheckpointedRun):
    """Owns the model, optimiser and data of one run; `fit()` trains, `evaluate()` measures."""

    def __init__(
        self, config: TrainConfig, resume: bool = False, progress: bool = True,
        splits: tuple[list[PoseSequence], list[PoseSequence]] | None = None,
    ) -> None:
        self.config = config
        self.rank, self.world = _distributed()
        self.device = resolve_device(config.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.progress = progress and self.rank == 0
        self.out_dir = Path(config.out_dir)
        _seed_everything(config.seed)

        # `splits` lets a caller training several models on the same data load it once.
        train_seqs, self.test_seqs = splits or (load_split(config, config.train_subjects), load_split(config, config.test_subjects))
        config.model.input_layout = train_seqs[0].layout.name
        config.model.output_layout = train_seqs[0].layout_3d.name
        frames = flatten_frames(train_seqs, config.stride)
        self.inputs = torch.from_numpy(frames["inputs"])
        self.targets = torch.from_numpy(frames["targets"])

        self.model = build_model(config.model)
        self.model.normalizer.fit(frames["inputs"], frames["targets"][:, config.model.out_joints])
        if config.init_from:
            init, _ = model_from_checkpoint(config.init_from)
            if init.config.name != config.model.name or init.config.input_layout != config.model.input_layout:
                raise BoneliftError(f"{config.init_from}: model {init.config.name}/{init.config.input_layout} cannot start a "
                                    f"{config.model.name}/{config.model.input_layout} run")
            self.model.load_state_dict(init.state_dict())
        self.model.to(self.device)
        from bonelift.weak import AnatomicalObjective

        self.anatomy = AnatomicalObjective.from_trainer(self, frames["targets"])
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        steps_per_decay = max(1, config.lr_decay_samples // (config.batch_size * self.world))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: config.lr_decay ** (step / steps_per_decay)
        )
        self._start_state(resume)

    def train_epoch(self) -> float:
        """One pass over this process's shard of the (shuffled) training frames; mean loss."""
        cfg = self.config
        self.net.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.inputs), generator=gen)[self.rank :: self.world]
        n_batches = len(order) // cfg.batch_size
        in_layout, out_layout = self.model.config.in_layout, self.model.config.out_layout
        total = 0.0
        bar = tqdm(range(n_batches), desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.progress, leave=False)
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x, y = self.inputs[idx], self.targets[idx]
            if cfg.flip:
                half = torch.rand(len(idx)) < 0.5
                fx, fy = _flip(x[half], y[half], in_layout, out_layout)
                x, y = x.clone(), y.clone()
                x[half], y[half] = fx, fy
            if cfg.noise_px > 0:
                x = x + torch.randn_like(x) * (2 * cfg.noise_px / 1000.0)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            out = self.net(self.model.normalizer.norm_in(x))
            losses = self.model.loss(out, self.model.target(y))
            if self.anatomy is not None:
                losses = self.anatomy.add(self, out, x, losses)
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            total += float(losses["total"].detach())
            if b % 50 == 0:
                bar.set_postfix(loss=f"{float(losses['total'].detach()):.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        return total / max(n_batches, 1)

    def _monitor(self) -> dict[str, Any]:
        """Per-epoch scores on every `eval_stride`-th test frame."""
        from bonelift.evaluation import evaluate_sequences

        return evaluate_sequences(self.model, self.test_seqs, stride=self.config.eval_stride, device=self.device, progress=False)


def train(
    config: TrainConfig, resume: bool = False, progress: bool = True,
    splits: tuple[list[PoseSequence], list[PoseSequence]] | None = None,
) -> Trainer:
    """Python API of `bonelift train`: build a trainer, fit it, return it (model in `.model`)."""
    trainer = Trainer(config, resume=resume, progress=progress, splits=splits)
    trainer.fit()
    return trainer
