"""Training of the video lifters (VideoPose3D `tcn`, method 5 `bone`): windows, augmentation, the batch step.

Training samples one window of `receptive_field` frames per training frame (every `stride`-th),
sequence ends padded by edge replication as in VideoPose3D; method 5 additionally gets one draw of
`length_frames` frames per distinct video of the batch (causal: the model keeps those <= t and the
sample's own frame) and, for detected 2D only by default, a batch of bone-length-augmented videos
(`augment_bone_lengths`, Sec. 3.3). Batch-norm momentum decays per epoch from 0.1 to 0.001
(`bn_momentum`, as VideoPose3D and the method 5 authors do; method 5's `bn_decay` picks which norms).
Training flips either a coin per sample (`flip_mode` "coin") or every window both ways each epoch
("both": samples N..2N-1 are the mirrored copies of 0..N-1, as VideoPose3D's generator doubles its pairs).
The learning rate decays by `lr_decay` per epoch, or (`lr_final_as_epochs` N) by lr_decay^(N / epochs), so
a short run ends at the rate an N-epoch run ends at.
"""

from __future__ import annotations

import typing
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from bonelift import geometry
from bonelift.cameras import Camera
from bonelift.config import VideoTrainConfig
from bonelift.datasets import PoseSequence, WindowData, run_split
from bonelift.datasets.virtual import synthesize
from bonelift.evaluation import evaluate_model
from bonelift.geometry import mirror
from bonelift.models import VIDEO, build_model
from bonelift.models.bone_video import BoneOptions, BoneVideoLifter, bone_options
from bonelift.models.tcn import VideoBatch
from bonelift.runtime import BATCH_NORM_STREAM, epoch_generator
from bonelift.skeletons import Layout, convert
from bonelift.training.loop import Run

Splits = tuple[list[PoseSequence], list[PoseSequence]]
# Authors' code: augmented frames get a fresh root per frame, N(0, 0.5 m) per axis around this camera-frame point.
RANDOM_ROOT_MEAN = np.array([0.0, -0.3, 5.0])
RANDOM_ROOT_SD = 0.5


def augment_enabled(options: BoneOptions, keypoints: str) -> bool:
    """Whether method 5's bone-length augmentation runs: "auto" means only for detected (not GT) 2D input
    (Sec. 4.3), and only when there is a length attention module to train."""
    on = keypoints != "gt" if options.aug == "auto" else options.aug
    return on and options.bone_att


class VideoTrainer(Run):
    """Owns the model, optimiser and data of one video run; `fit()` trains, evaluating each epoch."""

    kind = VIDEO
    step_schedule = False  # VideoPose3D decays the learning rate once per epoch

    def __init__(
        self,
        config: VideoTrainConfig,
        resume: bool = False,
        progress: bool = True,
        splits: Splits | None = None,
        overwrite: bool = False,
        override: bool = False,
    ) -> None:
        """`splits` (train, test) reuses sequences already loaded (the benchmark trains several rows)."""
        config = self.begin(config, resume, progress, overwrite, override=override)
        self.rng = np.random.default_rng(config.seed)
        train_seqs, self.test_seqs = splits or (run_split(config, config.train_subjects), run_split(config))
        if config.views.active:  # virtual cameras / detector-like 2D (issue 17); monitoring on the real cameras
            train_seqs = synthesize(train_seqs, config.views, config.seed)
            self.test_seqs = synthesize(self.test_seqs, replace(config.views, cameras="h36m"), 10_000)
        mc = config.model
        mc.input_layout = train_seqs[0].layout.name
        mc.output_layout = train_seqs[0].layout_3d.name
        mc.confidence = mc.confidence and train_seqs[0].confidence is not None
        self.data = WindowData(train_seqs, mc.pad, prepare=self.prepare if mc.reframe else None)
        self.samples = self.data.frames(config.stride)
        self.model = build_model(mc).to(self.device)
        self.optimizer = self.make_optimizer(amsgrad=True)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, epoch_decay(config))
        self.start(resume)

    def prepare(self, screen: np.ndarray) -> np.ndarray:
        """One sequence's screen as the network sees it (`reframe`: `geometry.reframe_clip`, as at inference)."""
        mc = self.config.model
        return geometry.reframe_clip(screen, mc.in_layout, mc.causal)

    @property
    def both_ways(self) -> bool:
        """Whether an epoch holds every window twice, as is and mirrored."""
        return self.config.flip and self.config.flip_mode == "both"

    def num_samples(self) -> int:
        return len(self.samples) * (2 if self.both_ways else 1)

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.training_loss(self.batch(rows))

    def batch(self, rows: torch.Tensor) -> VideoBatch:
        """Training tensors for samples `rows` (below `num_samples()`), flipped at random or, both ways, those
        past `len(self.samples)`; one tensor gather and one masked mirror per key, no loop over samples."""
        mc = self.config.model
        mirrored = rows >= len(self.samples) if self.both_ways else None
        rows = rows % len(self.samples)
        seq, t = self.samples[rows, 0], self.samples[rows, 1]
        window, conf = self.data.windows(seq, t)
        out = {"window": window, "target": self.data.target(seq, t)}
        if mc.confidence:
            out["conf"] = conf
        half = mirrored if mirrored is not None else torch.rand(len(rows)) < 0.5
        if mc.name == "bone":
            half = self._length_draws(out, seq, t, mirrored)
        if self.config.flip:
            lay_in, lay_out = mc.in_layout, mc.out_layout
            vflip = out.pop("video_flip", None)
            for key, lay, mask in (("window", lay_in, half), ("length_inputs", lay_in, vflip),
                                   ("target", lay_out, half), ("length_targets", lay_out, vflip)):
                if key in out:
                    out[key][mask] = mirror(out[key][mask], lay)
            if "conf" in out:
                out["conf"][half] = out["conf"][half][..., lay_in.flip_permutation]
        out.pop("video_flip", None)
        return typing.cast(VideoBatch, {k: v.to(self.device, non_blocking=True) for k, v in out.items()})

    def _length_draws(self, out: dict[str, torch.Tensor], seq: torch.Tensor, t: torch.Tensor,
                      mirrored: torch.Tensor | None = None) -> torch.Tensor:
        """Method 5's length inputs: one draw of l frames per distinct video of the batch (lengths are a
        per-video quantity, so the length network runs V x l frames instead of B x l), the augmented
        videos, and the flip mask of the samples (a video's samples and draw are flipped together, so
        its pooled lengths stay those of the flipped skeleton). Flipping both ways (`mirrored` given), a
        video and its mirror image are two distinct videos here, each with its own draw."""
        mc = self.config.model
        opt = bone_options(mc)
        keys = seq if mirrored is None else 2 * seq + mirrored.long()
        videos, inverse = torch.unique(keys, return_inverse=True)
        if mirrored is not None:
            videos, vflip = videos // 2, videos % 2 == 1
        count = opt.length_frames
        frames = (torch.rand(len(videos), count) * self.data.lengths[videos][:, None]).long()
        seq_l = videos[:, None].expand_as(frames)
        out["length_inputs"] = self.data.frame_screen(seq_l, frames)
        out["length_targets"] = self.data.target(seq_l, frames)
        out["length_video"] = inverse
        if mc.causal:  # the model keeps, per sample, the drawn frames <= t and the sample's own frame
            out["length_index"], out["frame_index"] = frames, t
        if augment_enabled(opt, self.config.keypoints):
            out.update(self.augmented(opt.aug_batch or len(videos), count, opt))
        if mirrored is None:
            vflip = torch.rand(len(videos)) < 0.5
        out["video_flip"] = vflip
        return vflip[inverse]

    def train_epoch(self) -> float:
        """One epoch, batch-norm momentum first decayed per epoch from 0.1 to 0.001 (VideoPose3D, method 5's code;
        method 5 names the norms that decay, `BoneVideoLifter.momentum_norms`)."""
        momentum = bn_momentum(self.epoch, self.config.epochs)
        norms = (self.model.momentum_norms() if isinstance(self.model, BoneVideoLifter) else
                 [m for m in self.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)])
        for m in norms:
            m.momentum = momentum
        loss = super().train_epoch()
        if self.config.precise_bn:
            self.recalibrate_batch_norm(self.config.precise_bn)
        return loss

    @torch.no_grad()
    def recalibrate_batch_norm(self, batches: int) -> None:
        """Batch-norm statistics of the current weights: the plain average over `batches` training batches.

        Why: with few, large updates per epoch the running averages lag the weights; on the virtual-camera
        data a lagging estimate cost 74 mm on a training batch (160.9 -> 86.6 mm once re-estimated).
        The batches run through the training loss in training mode (dropout on, as the statistics were
        gathered), without gradients; the draws are seeded by the epoch.
        """
        norms = [m for m in self.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        self.net.train()
        gen = epoch_generator(self.config.seed, self.epoch, BATCH_NORM_STREAM)
        for _ in range(batches):
            self.losses(torch.randint(self.num_samples(), (self.config.batch_size,), generator=gen))
        for m, momentum in zip(norms, saved):
            m.momentum = momentum

    def augmented(self, count: int, frames: int, opt: BoneOptions) -> dict[str, torch.Tensor]:
        """`count` bone-length-augmented samples of `frames` random frames from random training videos (with
        `aug_joint_loss` also their new root-relative joints; `aug_trajectory` "random": fresh roots)."""
        mc = self.config.model
        seqs = self.rng.integers(len(self.data.seqs), size=count)
        picks = (self.rng.random((count, frames)) * self.data.lengths.numpy()[seqs, None]).astype(np.int64)
        poses = np.stack([self.data.seqs[i].poses_3d[p] for i, p in zip(seqs, picks)])
        cams = [self.data.seqs[i].camera for i in seqs]
        roots = (self.rng.normal(0.0, RANDOM_ROOT_SD, (count, frames, 1, 3)) + RANDOM_ROOT_MEAN
                 if opt.aug_trajectory == "random" else None)
        x, rel, new_len = augment_bone_lengths(poses, cams, mc.out_layout, mc.in_layout, self.rng, opt.aug_range,
                                               roots)
        if mc.reframe:  # each augmented video's frames framed together, like a clip
            x = np.stack([geometry.reframe_clip(v, mc.in_layout) for v in x])
        out = {"aug_inputs": torch.from_numpy(x), "aug_lengths": torch.from_numpy(new_len.astype(np.float32))}
        if opt.aug_joint_loss:
            out["aug_targets"] = torch.from_numpy(rel)
        return out

    def monitor(self) -> dict[str, Any]:
        cfg = self.config
        return evaluate_model(
            self.model, self.test_seqs, cfg.eval_stride, self.device, progress=False, test_flip=cfg.test_flip
        )


def train_video(
    config: VideoTrainConfig,
    resume: bool = False,
    progress: bool = True,
    splits: Splits | None = None,
    overwrite: bool = False,
    override: bool = False,
) -> VideoTrainer:
    """Python API of `bonelift train-video`."""
    trainer = VideoTrainer(
        config, resume=resume, progress=progress, splits=splits, overwrite=overwrite, override=override
    )
    trainer.fit()
    return trainer


def epoch_decay(config: VideoTrainConfig) -> float:
    """The learning-rate factor per epoch: `lr_decay`, or with `lr_final_as_epochs` N the factor that reaches
    lr x lr_decay^N after `epochs` epochs (why: a short run then anneals as far as the published 80-epoch one)."""
    if not config.lr_final_as_epochs:
        return config.lr_decay
    return float(config.lr_decay ** (config.lr_final_as_epochs / config.epochs))


def bn_momentum(epoch: int, epochs: int, initial: float = 0.1, final: float = 0.001) -> float:
    """Batch-norm momentum of 0-based `epoch`: exponential decay from `initial` to `final` over the run."""
    return float(initial * np.exp(-epoch / max(epochs, 1) * np.log(initial / final)))


def augment_bone_lengths(
    poses_cam: np.ndarray,
    cameras: list[Camera],
    layout: Layout,
    in_layout: Layout,
    rng: np.random.Generator,
    spread: float = 0.3,
    roots: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone-length augmentation of method 5 (Sec. 3.3) for frames of V videos at once.

    (V, T, J, 3) absolute camera-frame joints of T frames of each video, with the V videos' cameras
    -> (screen 2D (V, T, J_in, 2), new joints (V, T, J, 3) root relative, new bone lengths (V, bones)).
    As in the authors' code, a video's new length of each bone is its mean length plus an offset drawn
    independently per bone (mirror bones too) in [-spread, spread] x that bone's mean length over the
    V videos (kept >= 1 mm); every frame keeps its bone directions and root position and is
    re-projected with its video's real camera (with distortion). `roots` (V, T, 1, 3), camera frame, replace
    the frames' own root positions (the authors' random trajectories).
    """
    root = poses_cam[..., layout.root : layout.root + 1, :]
    dirs, lengths = geometry.bone_directions(poses_cam - root, layout)
    if roots is not None:
        root = roots.astype(poses_cam.dtype)
    own = lengths.mean(axis=1)
    offset = rng.uniform(-spread, spread, own.shape) * own.mean(axis=0)
    new_len = np.maximum(own + offset, 1e-3).astype(poses_cam.dtype)
    rel = geometry.joints_from_directions(dirs, np.broadcast_to(new_len[:, None], lengths.shape), layout)
    screen = np.empty(poses_cam.shape[:2] + (in_layout.num_joints, 2), np.float32)
    groups: dict[int, list[int]] = {}
    for v, cam in enumerate(cameras):
        groups.setdefault(id(cam), []).append(v)
    for members in groups.values():  # one projection per distinct camera
        cam = cameras[members[0]]
        pixels = cam.project(rel[members] + root[members])
        if in_layout != layout:
            pixels, _ = convert(pixels, layout, in_layout)
        screen[members] = cam.normalize(pixels)
    return screen, rel.astype(np.float32), new_len
