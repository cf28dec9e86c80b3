"""Which lifter a run uses and how a 2D track goes through it: one place for offline `lift` and live lifting.

Bundled weights (in `src/bonelift/weights/`): `lifter_video.pt` (a centred video lifter, the default),
`lifter_video_causal.pt` (a causal one, `causal=True` / `--causal`) and `lifter_h36m17.pt` (single-frame,
`lifter="single-frame"`). While the video weights are not installed the default falls back to the
single-frame weights with a one-line notice, so every run keeps working.

Lifting rules: single-frame lifters see each frame alone, after `frame_like_training` (on by default).
Video lifters see the clip's screen coordinates as they are (`normalize_screen`, no reframing unless
asked) with the detector's confidences when the model takes them; each contiguous run of posed frames
(detected or interpolated) is one sequence for `infer`, its ends padded by repeating the edge frames
like a video's start and end (method 5 pools its bone lengths per run), and missing frames stay NaN;
centred lifters average each run with its mirror image (test-time flip), causal ones do not.
Video lifters' poses then get one symmetric skeleton per person and clip (`check_skeleton`,
`fitting.fit_clip_skeleton`: median bone lengths, mirrored bones equal, every predicted direction kept).

Fusion (`check_fusion`, on by default for video lifters, issue 26): instead of that skeleton fit, the clip is
fitted anatomically to its 2D under the camera (assumed or given focal) with the lifter's poses and, when the
track carries them, the detector's own 3D (MediaPipe's world landmarks) as direction priors (`fusion.fuse_clip`);
causal lifters use its causal form, frame by frame. A track without detector 3D (keypoint files) takes the
2D-only path: the lifter is the only prior, and `fusion_inputs` says so in the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bonelift.cameras import assumed_intrinsics, normalize_screen
from bonelift.errors import DataError, OptionError
from bonelift.fitting import fit_clip_skeleton
from bonelift.fusion import FusionSettings, fuse_clip
from bonelift.geometry import person_height
from bonelift.models import IMAGE, SINGLE_FRAME, TPNET, VIDEO
from bonelift.pipeline.track import MISSING, Track2D
from bonelift.skeletons import H36M17

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lifter_h36m17.pt"  # single-frame
VIDEO_WEIGHTS = WEIGHTS_DIR / "lifter_video.pt"
CAUSAL_VIDEO_WEIGHTS = WEIGHTS_DIR / "lifter_video_causal.pt"


@dataclass(frozen=True)
class Lifter:
    """A loaded lifting network with the file it came from and its checkpoint kind (single-frame or video)."""

    model: nn.Module
    path: Path
    kind: str

    @property
    def is_video(self) -> bool:
        return self.kind == VIDEO

    @property
    def takes_confidence(self) -> bool:
        return self.is_video and bool(self.model.config.confidence)

    def info(self) -> dict[str, Any]:
        """What produced a result, as written into `poses3d.npz` / `.json`."""
        cfg = self.model.config
        return {"file": self.path.name, "model": cfg.name, "kind": self.kind,
                "causal": self.is_video and bool(cfg.causal),
                "receptive_field": int(cfg.receptive_field) if self.is_video else 1,
                "confidence": self.takes_confidence}

    def __str__(self) -> str:
        i = self.info()
        if not self.is_video:
            return f"{i['file']} ({i['model']}, single-frame)"
        timing = "causal" if i["causal"] else "centred"
        return f"{i['file']} ({i['model']}, {timing} video, {i['receptive_field']} frames)"


def load_lifter(path: str | Path, device: str | torch.device = "cpu", need: str | None = None) -> Lifter:
    """The lifter in checkpoint `path`, mapping H36M17 2D to H36M17 3D.

    `need` "video" or "causal" refuses other lifters with a DataError naming the file (why: a live stream
    or `--causal` must not silently run a model that looks into the future or lacks temporal context).
    """
    from bonelift.checkpoints import kind_of, load, rebuild

    path = Path(path)
    ckpt = load(path)
    kind = kind_of(ckpt)
    if kind == TPNET:
        raise DataError(path, "holds a TP-Net refiner (tpnet), not a lifter: pass a single-frame or video checkpoint")
    if kind == IMAGE:
        raise DataError(path, "holds method 3's image network (image), which reads person crops, not 2D keypoints: "
                              "pass a single-frame or video checkpoint")
    if need is not None and kind != VIDEO:
        raise DataError(path, f"holds a {kind} lifter; {_needs(need)}")
    model, _, _ = rebuild(path, device, ckpt=ckpt)
    cfg = model.config
    if cfg.in_layout != H36M17 or cfg.out_layout != H36M17:
        raise DataError(path, f"the lifter must map h36m17 2D to h36m17 3D; this one maps {cfg.input_layout} "
                              f"to {cfg.output_layout}")
    if need == "causal" and not cfg.causal:
        raise DataError(path, f"holds a centred (non-causal) video lifter ({cfg.name}); {_needs(need)}")
    return Lifter(model, path, kind)


def _needs(need: str) -> str:
    return ("a causal video lifter is needed here (kind video, trained with --causal)" if need == "causal"
            else "a video lifter is needed here (kind video: tcn or bone)")


def choose_lifter(
    model: str | Path | None, lifter: str | None, causal: bool, device: str | torch.device = "cpu"
) -> Lifter:
    """The lifter a run uses: `model` when given, else the bundled weights `lifter` names (None: the default).

    The default is the bundled video lifter (causal with `causal`) when it is installed, else the
    single-frame weights (each frame alone, so causal too). An explicit `lifter` that does not match
    `model`, `causal` with a single-frame lifter, or explicitly asked weights that are not installed are errors.
    """
    if lifter == SINGLE_FRAME and causal:
        raise OptionError("causal (--causal) needs a video lifter; the single-frame lifter sees each frame alone "
                          "(already causal: drop --causal)")
    need = "causal" if causal else None
    if model is not None:
        chosen = load_lifter(model, device, need)
        if lifter is not None and chosen.kind != lifter:
            raise OptionError(f"lifter (--lifter) is {lifter}, but {model} holds a {chosen.kind} lifter")
        return chosen
    video = CAUSAL_VIDEO_WEIGHTS if causal else VIDEO_WEIGHTS
    if lifter != SINGLE_FRAME:
        if video.is_file():
            return load_lifter(video, device, need)
        if lifter == VIDEO:
            raise DataError(video, "the bundled video lifter is not installed; pass one with --model CHECKPOINT")
        # A copy without the video weights lifts with the single-frame ones (the summary names the lifter).
    if not DEFAULT_WEIGHTS.is_file():
        raise DataError(DEFAULT_WEIGHTS, "the pretrained lifter is not installed (this copy of bonelift ships no "
                                         "weights); train one with `bonelift train` and pass it with --model "
                                         "CHECKPOINT")
    return load_lifter(DEFAULT_WEIGHTS, device)


def frame_like_training(model: nn.Module, screen: np.ndarray) -> np.ndarray:
    """One similarity for the whole clip that gives its 2D skeleton the size and place of the training inputs.

    A single-frame lifter reads depth partly from the 2D scale it was trained on (Human3.6M subjects
    fill about 60 % of the image width). A person filmed small or off-centre otherwise lifts to a
    shrunken, broken pose: on the demo clip 89 % of frames had a knee or elbow bent backwards without
    this, 1 % with it. The reference is the mean training pose stored in the checkpoint's
    normaliser (head-to-feet height, root position); the clip's median height and root position are
    mapped onto it. One scale and one offset for all frames keep the motion itself unchanged.
    """
    lay = model.config.in_layout
    mean = model.normalizer.in_mean.view(-1, 2).cpu().numpy()
    root = lay.root
    ref_height = person_height(mean, lay)
    clip_height = np.median(person_height(screen, lay))
    if not clip_height > 0:
        return screen
    return (screen - np.median(screen[:, root], axis=0)) * (ref_height / clip_height) + mean[root]


def check_reframe(lifter: Lifter, reframe: bool | None) -> bool:
    """Whether to reframe: by default single-frame lifters yes, video lifters no; True needs a training mean pose."""
    if reframe is None:
        return not lifter.is_video
    if reframe and getattr(lifter.model, "normalizer", None) is None:
        raise OptionError(f"reframe (--reframe) needs the training mean pose of a single-frame lifter; "
                          f"{lifter.path.name} ({lifter.model.config.name}) has none")
    return bool(reframe)


def check_skeleton(lifter: Lifter, skeleton: bool | None) -> bool:
    """Whether to give each person one skeleton per clip: by default video lifters yes, single-frame ones no
    (the earlier single-frame lifter keeps its outputs)."""
    return lifter.is_video if skeleton is None else skeleton


def check_fusion(lifter: Lifter, fusion: bool | None) -> bool:
    """Whether to fuse (module docstring): by default video lifters yes, single-frame ones no (the earlier
    single-frame lifter keeps its outputs)."""
    if fusion is not None and not isinstance(fusion, bool):
        raise OptionError(f"fusion (--fusion) must be True, False or None, got {fusion!r}")
    return lifter.is_video if fusion is None else fusion


def fusion_inputs(track: Track2D) -> list[str]:
    """What a fused track's priors are: the lifter, plus the detector's 3D when the track carries any."""
    has_world = track.world is not None and bool(np.isfinite(track.world).all((1, 2)).any())
    return ["lifter", "detector-3d"] if has_world else ["lifter"]


def posed_runs(status: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every contiguous run of frames with a pose (status not MISSING)."""
    posed = np.concatenate([[False], np.asarray(status) != MISSING, [False]])
    edges = np.flatnonzero(np.diff(posed.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


@torch.no_grad()
def lift_track(
    lifter: Lifter, track: Track2D, reframe: bool | None = None, batch_size: int = 4096, progress: bool = True,
    skeleton: bool | None = None, fusion: bool | None = None, focal: float | None = None,
    fit_frames: np.ndarray | None = None, fusion_settings: FusionSettings | None = None,
    principal: np.ndarray | None = None,
) -> np.ndarray:
    """(T, 17, 3) root-relative metres for an H36M17 track; NaN on frames with no pose (rules: module docstring).

    `fusion` (`check_fusion`) fits the clip to its 2D with the camera's `focal` length and `principal` point in pixels
    (None: assumed, `cameras.assumed_intrinsics`) and supersedes `skeleton`; `fit_frames` limits the fit to those
    frames (others NaN); `fusion_settings` its noise model (None: the defaults).

    `skeleton` (`check_skeleton`): one symmetric skeleton for the whole track (`fitting.fit_clip_skeleton`,
    over every posed frame; causal lifters: the running mean of the frames so far, as `LiveLifter` does).

    Beyond the (T, 17, 3) result, memory grows by one run's 2D at a time; the network itself works in chunks.
    """
    reframe = check_reframe(lifter, reframe)
    if check_fusion(lifter, fusion):
        raw = lift_track(lifter, track, reframe, batch_size, progress, skeleton=False, fusion=False)
        priors = [raw] if "detector-3d" not in fusion_inputs(track) else [raw, track.world - track.world[:, :1]]
        f, c = assumed_intrinsics(track.width, track.height, focal, principal)
        causal = lifter.is_video and bool(lifter.model.config.causal)
        keypoints = track.keypoints
        if fit_frames is not None:
            keypoints = np.full(keypoints.shape, np.nan)
            keypoints[fit_frames] = track.keypoints[fit_frames]
        fused = fuse_clip(keypoints, track.confidence, priors, H36M17, f, c, causal=causal, settings=fusion_settings)
        fused -= fused[:, H36M17.root : H36M17.root + 1]  # in place: a long clip's poses exist once
        return fused
    if check_skeleton(lifter, skeleton):
        causal = lifter.is_video and bool(lifter.model.config.causal)
        return fit_clip_skeleton(lift_track(lifter, track, reframe, batch_size, progress, skeleton=False,
                                            fusion=False), H36M17, causal=causal)
    out = np.full(track.keypoints.shape[:2] + (3,), np.nan)
    rows = np.flatnonzero(track.status != MISSING)
    if not len(rows):
        return out
    device = next(lifter.model.parameters()).device
    screen = None
    if reframe or not lifter.is_video:  # one similarity for the whole clip, from every posed frame
        screen = np.full(track.keypoints.shape, np.nan)
        screen[rows] = normalize_screen(track.keypoints[rows], track.width, track.height)
        if reframe:
            screen[rows] = frame_like_training(lifter.model, screen[rows])
    if lifter.is_video:
        from bonelift.evaluation import predict_video

        conf = track.confidence if lifter.takes_confidence else None
        for a, b in tqdm(posed_runs(track.status), desc="lift 3D", unit="run", disable=not progress):
            x = screen[a:b] if screen is not None else normalize_screen(track.keypoints[a:b], track.width, track.height)
            # Centred lifters average with the mirrored run (VideoPose3D's test-time flip); causal ones do not,
            # so offline causal results equal the live stream's.
            out[a:b] = predict_video(lifter.model, x, conf[a:b] if conf is not None else None,
                                     test_flip=not lifter.model.config.causal, device=device)
        return out
    x = torch.as_tensor(screen[rows], dtype=torch.float32)
    for s in tqdm(range(0, len(rows), batch_size), desc="lift 3D", unit="batch", disable=not progress):
        out[rows[s : s + batch_size]] = lifter.model.predict(x[s : s + batch_size].to(device)).double().cpu().numpy()
    return out


# A lifter as the benchmarks see it: pixel keypoints (T, 17, 2) in H36M17 order, confidences (T, 17) or None,
# frame width, height and rate -> root-relative metres (T, 17, 3) in the camera frame. A function whose
# `takes_world` attribute is true also takes `world=` (T, 17, 3): the detector's own 3D in the camera's axes.
LiftFn = Callable[..., np.ndarray]


def lift_fn(lifter: Lifter, skeleton: bool | None = None, fusion: bool | None = None,
            focal: float | None = None, fusion_settings: FusionSettings | None = None) -> LiftFn:
    """`lifter` as a `LiftFn`: a clip's H36M17 pixels lifted exactly as `bonelift lift` lifts them (`lift_track`)."""

    def lift(keypoints: np.ndarray, confidence: np.ndarray | None, width: int, height: int, fps: float,
             world: np.ndarray | None = None, focal: float | None = focal, frames: np.ndarray | None = None
             ) -> np.ndarray:
        """`frames`: fit only these frames (benchmarks scoring a subset; the lifter still sees every frame)."""
        conf = confidence if confidence is not None else np.ones(keypoints.shape[:2], np.float32)
        track = Track2D(np.asarray(keypoints, np.float64), conf, H36M17, width, height, fps, "keypoints", world=world)
        return lift_track(lifter, track, progress=False, skeleton=skeleton, fusion=fusion, focal=focal,
                          fit_frames=frames, fusion_settings=fusion_settings)

    lift.takes_world = check_fusion(lifter, fusion)  # type: ignore[attr-defined]
    return lift


__all__ = ["CAUSAL_VIDEO_WEIGHTS", "DEFAULT_WEIGHTS", "LiftFn", "Lifter", "VIDEO_WEIGHTS",
           "check_fusion", "check_reframe", "check_skeleton", "choose_lifter", "frame_like_training",
           "fusion_inputs", "lift_fn", "lift_track", "load_lifter", "posed_runs"]
