"""Training, inference and streaming of the video lifters (VideoPose3D `tcn`, method 5 `bone`).

Kept apart from the single-frame `training.Trainer`, whose shared helpers it reuses: checkpoints
carry `training.CHECKPOINT_FORMAT` plus `"kind": "video"`, so `bonelift evaluate` routes them here.
Training samples one window of `receptive_field` frames per training frame (every `stride`-th),
sequence ends padded by edge replication as in VideoPose3D; method 5 additionally gets, per
sample, `length_frames` frames drawn from the whole video (causal: from frames <= t) and a batch
of bone-length-augmented videos.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS, PoseSequence
from bonelift.errors import BoneliftError, DataError
from bonelift.models.bone_video import BoneVideoLifter, augment_bone_lengths, bone_options
from bonelift.models.tcn import TemporalConvLifter, VideoModelConfig, pad_edges
from bonelift.skeletons import Layout
from bonelift.training import (
    CheckpointedRun,
    _seed_everything,
    config_from_dict,
    load_split,
    rebuild_from_checkpoint,
    resolve_device,
    test_split_for,
)

CHECKPOINT_KIND = "video"
VIDEO_MODELS = {"tcn": TemporalConvLifter, "bone": BoneVideoLifter}


def build_video_model(config: VideoModelConfig) -> nn.Module:
    try:
        factory = VIDEO_MODELS[config.name]
    except KeyError:
        raise BoneliftError(f"unknown video model {config.name!r} (known: {', '.join(VIDEO_MODELS)})") from None
    return factory(config)


@dataclass
class VideoTrainConfig:
    """Everything that determines a video training run; saved with each checkpoint."""

    model: VideoModelConfig = field(default_factory=VideoModelConfig)
    data_root: str = ""
    dataset: str = "h36m"
    keypoints: str = "gt"
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    test_subjects: tuple[str, ...] = TEST_SUBJECTS
    stride: int = 1  # one training window per stride-th frame
    eval_stride: int = 10  # per-epoch monitoring only; `bonelift evaluate` scores every frame
    epochs: int = 80
    batch_size: int = 1024
    lr: float = 1e-3
    lr_decay: float = 0.95  # per epoch (VideoPose3D)
    flip: bool = True  # horizontal-flip training augmentation
    test_flip: bool = True  # average predictions of the input and its mirror image
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs/tcn"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoTrainConfig:
        return config_from_dict(cls, d, VideoModelConfig)


def _flip_points(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Mirror x and swap left/right joints; points are (..., J, D) with J at dim -2."""
    y = x[..., layout.flip_permutation, :].clone()
    y[..., 0] *= -1
    return y


class WindowData:
    """All sequences of a split, edge-padded and concatenated, with index arithmetic for windows."""

    def __init__(self, seqs: list[PoseSequence], config: VideoModelConfig) -> None:
        if not seqs:
            raise DataError(None, "no sequences")
        self.seqs = seqs
        self.left, right = config.pad
        self.rf = config.receptive_field
        screens, confs, targets, starts, lengths = [], [], [], [], []
        off = 0
        for s in seqs:
            x = torch.from_numpy(s.screen)
            screens.append(pad_edges(x, self.left, right))
            c = torch.from_numpy(s.confidence.astype(np.float32)) if s.confidence is not None else torch.ones(x.shape[:2])
            confs.append(pad_edges(c, self.left, right))
            targets.append(torch.from_numpy(s.root_relative.astype(np.float32)))
            starts.append(off)
            lengths.append(len(s))
            off += len(s) + self.rf - 1
        self.screen, self.conf = torch.cat(screens), torch.cat(confs)
        self.targets = torch.cat(targets)
        self.starts = torch.tensor(starts)
        self.lengths = torch.tensor(lengths)
        self.target_starts = torch.cumsum(torch.tensor([0, *lengths[:-1]]), 0)

    def frames(self, stride: int) -> torch.Tensor:
        """(N, 2) (sequence, frame) pairs of every stride-th frame."""
        return torch.cat([torch.stack([torch.full((len(range(0, n, stride)),), i), torch.arange(0, n, stride)], 1)
                          for i, n in enumerate(self.lengths.tolist())])

    def windows(self, seq: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = (self.starts[seq] + t)[:, None] + torch.arange(self.rf)
        return self.screen[idx], self.conf[idx]

    def frame_screen(self, seq: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.screen[self.starts[seq] + self.left + t]

    def target(self, seq: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.targets[self.target_starts[seq] + t]


class VideoTrainer(CheckpointedRun):
    """Owns the model, optimiser and data of one video run; `fit()` trains, evaluating each epoch."""

    kind = CHECKPOINT_KIND

    def __init__(self, config: VideoTrainConfig, resume: bool = False, progress: bool = True,
                 splits: tuple[list[PoseSequence], list[PoseSequence]] | None = None) -> None:
        """`splits` (train, test) reuses sequences already loaded (the benchmark trains several rows)."""
        self.config = config
        self.device = resolve_device(config.device)
        self.progress = progress
        self.out_dir = Path(config.out_dir)
        _seed_everything(config.seed)
        self.rng = np.random.default_rng(config.seed)
        if splits is None:
            splits = (load_split(config, config.train_subjects), load_split(config, config.test_subjects))  # type: ignore[arg-type]
        train_seqs, self.test_seqs = splits
        mc = config.model
        mc.input_layout = train_seqs[0].layout.name
        mc.output_layout = train_seqs[0].layout_3d.name
        mc.confidence = mc.confidence and train_seqs[0].confidence is not None
        self.data = WindowData(train_seqs, mc)
        self.samples = self.data.frames(config.stride)
        self.model = build_video_model(mc).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, amsgrad=True)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, config.lr_decay)
        self._start_state(resume)

    def batch(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training tensors for samples `rows` of `self.samples`, flipped at random when configured."""
        mc = self.config.model
        seq, t = self.samples[rows, 0], self.samples[rows, 1]
        window, conf = self.data.windows(seq, t)
        out = {"window": window, "target": self.data.target(seq, t)}
        if mc.confidence:
            out["conf"] = conf
        if mc.name == "bone":
            opt = bone_options(mc)
            lengths = self.data.lengths[seq]
            upper = t if mc.causal else lengths - 1
            frames = (torch.rand(len(rows), int(opt["length_frames"])) * (upper + 1)[:, None]).long()
            seq_l = seq[:, None].expand_as(frames)
            out["length_inputs"] = self.data.frame_screen(seq_l, frames)
            out["length_targets"] = self.data.target(seq_l, frames)
            if opt["aug"] and opt["bone_att"]:
                out.update(self.augmented(int(opt["aug_batch"]) or len(rows), int(opt["length_frames"]), float(opt["aug_range"])))
        if self.config.flip:
            half = torch.rand(len(rows)) < 0.5
            lay_in, lay_out = mc.in_layout, mc.out_layout
            for key in ("window", "length_inputs"):
                if key in out:
                    out[key][half] = _flip_points(out[key][half], lay_in)
            for key in ("target", "length_targets"):
                if key in out:
                    out[key][half] = _flip_points(out[key][half], lay_out)
            if "conf" in out:
                out["conf"][half] = out["conf"][half][..., lay_in.flip_permutation]
        return {k: v.to(self.device, non_blocking=True) for k, v in out.items()}

    def augmented(self, count: int, frames: int, spread: float) -> dict[str, torch.Tensor]:
        """`count` bone-length-augmented samples of `frames` random frames from random training videos."""
        mc = self.config.model
        seqs = self.rng.integers(len(self.data.seqs), size=count)
        picks = (self.rng.random((count, frames)) * self.data.lengths.numpy()[seqs, None]).astype(np.int64)
        poses = np.stack([self.data.seqs[i].poses_3d[p] for i, p in zip(seqs, picks)])
        cams = [self.data.seqs[i].camera for i in seqs]
        x, _, new_len = augment_bone_lengths(poses, cams, mc.out_layout, mc.in_layout, self.rng, spread)
        return {"aug_inputs": torch.from_numpy(x), "aug_lengths": torch.from_numpy(new_len.astype(np.float32))}

    def train_epoch(self) -> float:
        cfg = self.config
        self.model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.samples), generator=gen)
        n_batches = max(1, len(order) // cfg.batch_size)
        total = 0.0
        bar = tqdm(range(n_batches), desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.progress, leave=False)
        for b in bar:
            losses = self.model.training_loss(self.batch(order[b * cfg.batch_size : (b + 1) * cfg.batch_size]))
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            self.step += 1
            total += float(losses["total"].detach())
            if b % 20 == 0:
                bar.set_postfix(loss=f"{float(losses['total'].detach()):.4f}", mpjpe=f"{float(losses['mpjpe'].detach()) * 1000:.1f}")
        self.scheduler.step()
        return total / n_batches

    def _monitor(self) -> dict[str, Any]:
        cfg = self.config
        return evaluate_video_model(self.model, self.test_seqs, cfg, stride=cfg.eval_stride, device=self.device, progress=False)


def train_video(config: VideoTrainConfig, resume: bool = False, progress: bool = True) -> VideoTrainer:
    """Python API of `bonelift train-video`."""
    trainer = VideoTrainer(config, resume=resume, progress=progress)
    trainer.fit()
    return trainer


# ----- inference ------------------------------------------------------------------------------

@torch.no_grad()
def predict_sequence(model: nn.Module, screen: np.ndarray, conf: np.ndarray | None = None, test_flip: bool = True,
                     device: str | torch.device = "cpu", seed: int = 0, frames: np.ndarray | None = None) -> np.ndarray:
    """(T, J, 2) screen keypoints of one video -> (T, J_out, 3) root-relative metres (or only `frames`).

    With `test_flip` the prediction is averaged with the un-mirrored prediction of the mirrored input
    (VideoPose3D's test-time augmentation); both passes draw the same bone-length frames.
    """
    model.eval()
    mc: VideoModelConfig = model.config
    x = torch.from_numpy(np.ascontiguousarray(screen, dtype=np.float32)).to(device)
    c = torch.from_numpy(conf.astype(np.float32)).to(device) if conf is not None and mc.confidence else None
    f = torch.from_numpy(frames) if frames is not None else None
    pred = model.infer(x, c, generator=torch.Generator().manual_seed(seed), frames=f)
    if test_flip:
        xf = _flip_points(x, mc.in_layout)
        cf = c[:, mc.in_layout.flip_permutation] if c is not None else None
        mirrored = model.infer(xf, cf, generator=torch.Generator().manual_seed(seed), frames=f)
        pred = 0.5 * (pred + _flip_points(mirrored, mc.out_layout))
    return pred.cpu().numpy()


def evaluate_video_model(model: nn.Module, seqs: list[PoseSequence], config: VideoTrainConfig, stride: int = 1,
                         device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """Score every frame of every test sequence, or with `stride` > 1 the frame pairs (t, t + 1) of
    every stride-th t (`evaluation.scored_frames`), so MPJVE stays a consecutive-frame measure."""
    from bonelift.evaluation import score, scored_frames

    frames = [scored_frames(len(s), stride) for s in seqs]
    preds = [predict_sequence(model, s.screen, s.confidence, config.test_flip, device, seed=i, frames=f)
             for i, (s, f) in enumerate(zip(tqdm(seqs, desc="predict", disable=not progress, leave=False), frames))]
    return score(preds, seqs, frames=frames)


def video_model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    return rebuild_from_checkpoint(path, device, VideoTrainConfig, build_video_model, CHECKPOINT_KIND)


def evaluate_video(checkpoint: str | Path, data_root: str | None = None, keypoints: str | None = None, stride: int = 1,
                   out_prefix: str | Path | None = None, device: str = "auto", progress: bool = True):
    """`bonelift evaluate` for video checkpoints: every frame of the test split, JSON + Markdown report."""
    from bonelift.evaluation import input_label, write_report

    dev = resolve_device(device)
    model, ckpt = video_model_from_checkpoint(checkpoint, dev)
    config = VideoTrainConfig.from_dict(ckpt["train_config"])
    seqs = test_split_for(config, data_root, keypoints)
    results = evaluate_video_model(model, seqs, config, stride=stride, device=dev, progress=progress)
    results.update(checkpoint=str(checkpoint), model=config.model.name, keypoints=config.keypoints,
                   receptive_field=config.model.receptive_field, causal=config.model.causal)
    prefix = out_prefix or Path(checkpoint).with_name(Path(checkpoint).stem + "_eval")
    title = (f"{config.model.name} ({config.model.receptive_field} frames{', causal' if config.model.causal else ''}), "
             f"{input_label(config.keypoints)} input, {config.dataset} {'/'.join(config.test_subjects)}")
    return results, write_report(results, prefix, title)


class StreamingLifter:
    """Frame-by-frame lifting of a live stream with memory bounded by the receptive field.

    `push(keypoints)` takes one frame's screen keypoints (J, 2) and returns the pose (J_out, 3) of
    the newest frame whose window is complete: the pushed frame for causal models, the frame
    `RF // 2` pushes ago otherwise (None until then). The stream start is padded by repeating the
    first frame, as in offline inference. For method 5 the bone-length frames are a uniform
    reservoir sample of the frames seen so far (size `length_frames`), so memory stays bounded
    however long the video; with a causal model that is exactly its training distribution.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.model = model.eval()
        self.config: VideoModelConfig = model.config
        if self.config.confidence:
            raise BoneliftError("StreamingLifter does not take keypoint confidences yet")
        self.device = torch.device(device)
        self.buffer: deque[torch.Tensor] = deque(maxlen=self.config.receptive_field)
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self.is_bone = isinstance(model, BoneVideoLifter)
        self.reservoir: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.capacity = int(model.opt["length_frames"]) if self.is_bone else 0

    @torch.no_grad()
    def push(self, keypoints: np.ndarray) -> np.ndarray | None:
        x = torch.as_tensor(np.asarray(keypoints, dtype=np.float32), device=self.device)
        if not self.buffer:
            for _ in range(self.config.pad[0]):
                self.buffer.append(x)
        self.buffer.append(x)
        self.seen += 1
        if self.is_bone:
            est = self.model.frame_estimates(x[None])
            item = (est[0][0], est[1][0])
            if len(self.reservoir) < self.capacity:
                self.reservoir.append(item)
            else:
                k = int(self.rng.integers(self.seen))
                if k < self.capacity:
                    self.reservoir[k] = item
        if len(self.buffer) < self.config.receptive_field:
            return None
        window = torch.stack(list(self.buffer))[None]
        if self.is_bone:
            att = torch.stack([a for a, _ in self.reservoir])[None]
            lengths = torch.stack([b for _, b in self.reservoir])[None]
            pooled = self.model.pool_lengths(att, lengths)
            pose, _ = self.model.fuse(self.model.directions(window)[-1], pooled)
        else:
            pose = self.model(window)["pose"][:, 0]
        return pose[0].cpu().numpy()


def streaming_latency_ms(model: nn.Module, screen: np.ndarray, frames: int = 300) -> float:
    """Mean wall-clock milliseconds per `push` over `frames` frames of `screen` (after the buffer fills)."""
    lifter = StreamingLifter(model)
    n = min(frames, len(screen))
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        lifter.push(screen[i])
        times.append(time.perf_counter() - t0)
    warm = times[min(len(times) - 1, model.config.receptive_field):]
    return float(np.mean(warm) * 1000)
