"""Training of the video lifters (VideoPose3D `tcn`, method 5 `bone`): windows, augmentation, the batch step.

Training samples one window of `receptive_field` frames per training frame (every `stride`-th),
sequence ends padded by edge replication as in VideoPose3D; method 5 additionally gets, per
sample, `length_frames` frames drawn from the whole video (causal: from frames <= t) and a batch
of bone-length-augmented videos (`augment_bone_lengths`, Sec. 3.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bonelift import geometry
from bonelift.cameras import Camera
from bonelift.config import VideoTrainConfig
from bonelift.datasets import PoseSequence, WindowData, run_split
from bonelift.evaluation import evaluate_model
from bonelift.geometry import mirror
from bonelift.models import VIDEO, build_model
from bonelift.models.bone_video import bone_options
from bonelift.skeletons import Layout, convert
from bonelift.training.loop import Run

Splits = tuple[list[PoseSequence], list[PoseSequence]]


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
    ) -> None:
        """`splits` (train, test) reuses sequences already loaded (the benchmark trains several rows)."""
        config = self.begin(config, resume, progress, overwrite)
        self.rng = np.random.default_rng(config.seed)
        train_seqs, self.test_seqs = splits or (run_split(config, config.train_subjects), run_split(config))
        mc = config.model
        mc.input_layout = train_seqs[0].layout.name
        mc.output_layout = train_seqs[0].layout_3d.name
        mc.confidence = mc.confidence and train_seqs[0].confidence is not None
        self.data = WindowData(train_seqs, mc.pad)
        self.samples = self.data.frames(config.stride)
        self.model = build_model(mc).to(self.device)
        self.optimizer = self.adam(amsgrad=True)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, config.lr_decay)
        self.start(resume)

    def num_samples(self) -> int:
        return len(self.samples)

    def batch_losses(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.training_loss(self.batch(rows))

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
                out.update(
                    self.augmented(
                        int(opt["aug_batch"]) or len(rows), int(opt["length_frames"]), float(opt["aug_range"])
                    )
                )
        if self.config.flip:
            half = torch.rand(len(rows)) < 0.5
            lay_in, lay_out = mc.in_layout, mc.out_layout
            for key in ("window", "length_inputs"):
                if key in out:
                    out[key][half] = mirror(out[key][half], lay_in)
            for key in ("target", "length_targets"):
                if key in out:
                    out[key][half] = mirror(out[key][half], lay_out)
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
) -> VideoTrainer:
    """Python API of `bonelift train-video`."""
    trainer = VideoTrainer(config, resume=resume, progress=progress, splits=splits, overwrite=overwrite)
    trainer.fit()
    return trainer


def augment_bone_lengths(
    poses_cam: np.ndarray,
    cameras: list[Camera],
    layout: Layout,
    in_layout: Layout,
    rng: np.random.Generator,
    spread: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone-length augmentation of method 5 (Sec. 3.3) for frames of V videos at once.

    (V, T, J, 3) absolute camera-frame joints of T frames of each video, with the V videos' cameras
    -> (screen 2D (V, T, J_in, 2), new joints (V, T, J, 3) root relative, new bone lengths (V, bones)).
    A video's new lengths are its mean lengths times a factor in [1 - spread, 1 + spread] per bone
    (mirror bones share it); every frame keeps its bone directions and root position and is
    re-projected with its video's real camera (with distortion).
    """
    root = poses_cam[..., layout.root : layout.root + 1, :]
    dirs, lengths = geometry.bone_directions(poses_cam - root, layout)
    flip = layout.flip_permutation
    child_bone = layout.child_bone
    factor = rng.uniform(1 - spread, 1 + spread, (len(poses_cam), len(layout.bones)))
    for b, (_, child) in enumerate(layout.bones):
        mirror = child_bone[int(flip[child])]
        if mirror < b:
            factor[:, b] = factor[:, mirror]
    new_len = (lengths.mean(axis=1) * factor).astype(poses_cam.dtype)
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
