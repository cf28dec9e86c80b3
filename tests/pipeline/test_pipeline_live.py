"""Live lifting (`bonelift.LiveLifter`): frame in -> 3D out, equal to offline causal inference, and its latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.cameras import normalize_screen
from bonelift.errors import DataError
from bonelift.fitting import fit_clip_skeleton
from bonelift.pipeline import lift, lifters
from bonelift.pipeline.export import read_npz
from bonelift.skeletons import H36M17, MEDIAPIPE33, convert
from bonelift.streaming import latency_ms

W, H = 640, 480
torch.set_num_threads(1)


def _mediapipe_clip(frames: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T, 33, 2) pixels drifting smoothly and (T, 33) confidences, as MediaPipe would give them."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([150, 80], [490, 400], (1, 33, 2))
    kp = start + rng.normal(0, 2.0, (frames, 33, 2)).cumsum(0)
    return kp, rng.uniform(0.2, 1.0, (frames, 33))


def _offline_causal(ckpt: Path, kp: np.ndarray, conf: np.ndarray, skeleton: bool = True) -> np.ndarray:
    """Offline: the same conversion and screen normalisation, the causal model's `infer` on the clip, then (by
    default, as `lift` does for video lifters) the running symmetric skeleton."""
    model = lifters.load_lifter(ckpt).model
    h36m, c = convert(kp, MEDIAPIPE33, H36M17, conf)
    x = torch.as_tensor(normalize_screen(h36m, W, H), dtype=torch.float32)
    raw = model.infer(x, torch.as_tensor(c, dtype=torch.float32)).numpy()
    return fit_clip_skeleton(raw, H36M17, causal=True) if skeleton else raw


def _live(ckpt: Path):
    from bonelift.pipeline.live import LiveLifter

    return LiveLifter(ckpt)


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_live_equals_offline_causal_inference(tmp_path: Path, video_checkpoints: dict, name: str) -> None:
    import bonelift

    ckpt = video_checkpoints[f"{name}_causal"]
    kp, conf = _mediapipe_clip()
    live = bonelift.LiveLifter(ckpt, layout="mediapipe33", fusion=False)
    streamed = np.stack([live.push(k, c, W, H) for k, c in zip(kp, conf)])
    assert streamed.shape == (40, 17, 3) and np.isfinite(live.root).all()  # random model: any place
    np.testing.assert_allclose(streamed, _offline_causal(ckpt, kp, conf), atol=1e-5)
    # ... and equal to `lift` on a keypoint file of the same detections (same layout conversion and screen).
    np.savez(tmp_path / "mp.npz", keypoints=kp, confidence=conf, width=W, height=H, fps=30.0, layout="mediapipe33")
    lift(tmp_path / "mp.npz", tmp_path / "out", model=ckpt, causal=True, pictures=False, progress=False, fusion=False)
    np.testing.assert_allclose(streamed, read_npz(tmp_path / "out" / "poses3d.npz").joints, atol=1e-5)
    # With fusion (the default) too: a keypoint file has no detector 3D, so both take the 2D-only path.
    fused = bonelift.LiveLifter(ckpt, layout="mediapipe33")
    streamed = np.stack([fused.push(k, c, W, H) for k, c in zip(kp, conf)])
    lift(tmp_path / "mp.npz", tmp_path / "fused", model=ckpt, causal=True, pictures=False, progress=False)
    offline = read_npz(tmp_path / "fused" / "poses3d.npz")
    assert offline.lifter["fusion_inputs"] == "lifter"
    np.testing.assert_allclose(streamed, offline.joints, atol=1e-5)
    # Without the skeleton the stream is the network's own output, frame by frame.
    raw = bonelift.LiveLifter(ckpt, layout="mediapipe33", skeleton=False, fusion=False)
    np.testing.assert_allclose(np.stack([raw.push(k, c, W, H) for k, c in zip(kp, conf)]),
                               _offline_causal(ckpt, kp, conf, skeleton=False), atol=1e-5)


def test_live_missing_frame_starts_a_new_run(video_checkpoints: dict) -> None:
    import bonelift

    ckpt = video_checkpoints["bone_causal"]
    kp, conf = _mediapipe_clip(30, seed=1)
    live = bonelift.LiveLifter(ckpt, fusion=False)
    outs = [live.push(None if t == 12 else kp[t], conf[t], W, H) for t in range(30)]
    assert outs[12] is None and live.root is not None
    kp_nan = kp[20].copy()
    kp_nan[11] = np.nan  # a shoulder not found: no complete person in this frame
    assert live.push(kp_nan, conf[20], W, H) is None and live.root is None
    # Each run is inferred on its own; the person's running skeleton carries across the gap.
    raw = np.concatenate([_offline_causal(ckpt, kp[:12], conf[:12], skeleton=False), np.full((1, 17, 3), np.nan),
                          _offline_causal(ckpt, kp[13:], conf[13:], skeleton=False)])
    fitted = fit_clip_skeleton(raw, H36M17, causal=True)
    np.testing.assert_allclose(np.stack(outs[:12] + outs[13:]), np.concatenate([fitted[:12], fitted[13:]]),
                               atol=1e-5)


def test_live_refuses_what_is_not_a_causal_video_lifter(tmp_path: Path, video_checkpoints: dict,
                                                        tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bonelift.pipeline.live import LiveLifter

    with pytest.raises(DataError, match=r"tcn\.pt: holds a centred \(non-causal\) video lifter \(tcn\)"):
        LiveLifter(video_checkpoints["tcn"])
    with pytest.raises(DataError, match=r"tiny\.pt: holds a single-frame lifter; a causal video lifter is needed"):
        LiveLifter(tiny_checkpoint)
    monkeypatch.setattr("bonelift.pipeline.live.CAUSAL_VIDEO_WEIGHTS", tmp_path / "lifter_video_causal.pt")
    with pytest.raises(DataError, match="lifter_video_causal.pt: the bundled causal video lifter is not installed"):
        LiveLifter()
    live = LiveLifter(video_checkpoints["tcn_causal"], layout="h36m17")
    with pytest.raises(DataError, match=r"expected \(17, 2\) for layout h36m17"):
        live.push(np.zeros((33, 2)), None, W, H)


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_live_latency_per_frame(video_checkpoints: dict, name: str) -> None:
    """`streaming.latency_ms` of one `push` (layout conversion, normalisation, model, root): tiny model, CPU."""
    kp, conf = _mediapipe_clip(80, seed=2)
    live = _live(video_checkpoints[f"{name}_causal"])
    ms = latency_ms(lambda t: live.push(kp[t], conf[t], W, H), range(len(kp)), warmup=20)
    print(f"live {name} (RF 9, 16 channels): {ms:.2f} ms per frame")
    assert 0 < ms < 200


_BAD_FRAMES = {  # name -> (keypoints transform, width, height): frames a careless or hostile caller may push
    "nan width": (lambda k: k, float("nan"), H),
    "tiny width": (lambda k: k, 1e-300, H),
    "zero height": (lambda k: k, W, 0),
    "negative width": (lambda k: k, -W, H),
    "string width": (lambda k: k, "640", H),
    "huge coordinates": (lambda k: k * 1e200, W, H),
    "string keypoints": (lambda k: k.astype(str), W, H),
    "ragged keypoints": (lambda k: [[1.0, 2.0], [3.0]], W, H),
    "wrong joint count": (lambda k: k[:20], W, H),
}


@pytest.mark.parametrize("bad", sorted(_BAD_FRAMES))
def test_live_bad_frame_is_an_error_and_poisons_nothing(video_checkpoints: dict, bad: str) -> None:
    """After any bad frame the next good frames are lifted exactly as by a fresh lifter (the bad frame first), or
    as after a missing frame (the bad frame inside a stream): the bad frame ends the run and leaves no state."""
    ckpt = video_checkpoints["bone_causal"]
    kp, conf = _mediapipe_clip(24, seed=3)
    transform, width, height = _BAD_FRAMES[bad]
    fresh_lifter = _live(ckpt)
    fresh = [fresh_lifter.push(k, c, W, H) for k, c in zip(kp[12:], conf[12:])]
    live = _live(ckpt)
    with pytest.raises(DataError, match="keypoint|width|frame|shape") as err:
        live.push(transform(kp[0]), conf[0], width, height)
    assert "\n" not in str(err.value) and live.root is None
    np.testing.assert_array_equal(np.stack([live.push(k, c, W, H) for k, c in zip(kp[12:], conf[12:])]),
                                  np.stack(fresh))
    # Inside a stream: the same poses as a stream with a missing (None) frame in its place.
    gap, hit = _live(ckpt), _live(ckpt)
    expected = [gap.push(None if t == 12 else kp[t], conf[t], W, H) for t in range(24)]
    got = [hit.push(kp[t], conf[t], W, H) for t in range(12)]
    with pytest.raises(DataError):
        hit.push(transform(kp[12]), conf[12], width, height)
    got += [None] + [hit.push(kp[t], conf[t], W, H) for t in range(13, 24)]
    assert all(np.isfinite(p).all() for p in got if p is not None)
    np.testing.assert_array_equal(np.stack(got[13:]), np.stack(expected[13:]))


def test_live_none_frame_starts_a_new_run_like_a_fresh_stream(video_checkpoints: dict) -> None:
    """Without the running skeleton or fusion lengths (kept across gaps on purpose), poses after a None frame are a
    fresh lifter's."""
    from bonelift.pipeline.live import LiveLifter

    ckpt = video_checkpoints["bone_causal"]
    kp, conf = _mediapipe_clip(20, seed=4)
    live, fresh = LiveLifter(ckpt, skeleton=False, fusion=False), LiveLifter(ckpt, skeleton=False, fusion=False)
    for t in range(10):
        live.push(kp[t], conf[t], W, H)
    assert live.push(None, None, W, H) is None
    np.testing.assert_array_equal(np.stack([live.push(k, c, W, H) for k, c in zip(kp[10:], conf[10:])]),
                                  np.stack([fresh.push(k, c, W, H) for k, c in zip(kp[10:], conf[10:])]))


@pytest.mark.parametrize("confidence", [np.ones(5), np.ones((33, 2)), np.array(["a"] * 33), [[1.0], [2.0, 3.0]]])
def test_live_misshapen_confidence_is_one_line(video_checkpoints: dict, confidence) -> None:
    kp, _ = _mediapipe_clip(1)
    with pytest.raises(DataError, match=r"confidence (must be|is not)"):
        _live(video_checkpoints["tcn_causal"]).push(kp[0], confidence, W, H)


@pytest.mark.parametrize("frame", [np.full((17, 2), np.nan), np.full((17, 2), 1e30), np.zeros((16, 2)),
                                   np.array([["x", "y"]] * 17)])
def test_streaming_lifter_refuses_a_bad_frame_and_restarts(video_checkpoints: dict, frame: np.ndarray) -> None:
    """`StreamingLifter`: a bad frame is a DataError and the stream restarts, equal to a fresh one afterwards."""
    from bonelift.streaming import StreamingLifter

    model = lifters.load_lifter(video_checkpoints["bone_causal"]).model
    kp, conf = _mediapipe_clip(12, seed=5)
    screen = normalize_screen(convert(kp, MEDIAPIPE33, H36M17, conf)[0], W, H).astype(np.float32)
    c17 = convert(kp, MEDIAPIPE33, H36M17, conf)[1]
    stream, fresh = StreamingLifter(model), StreamingLifter(model)
    for t in range(4):
        stream.push(screen[t], c17[t])
    with pytest.raises(DataError, match="frame|coordinates"):
        stream.push(frame, c17[0])
    np.testing.assert_array_equal(np.stack([stream.push(s, c) for s, c in zip(screen[4:], c17[4:])]),
                                  np.stack([fresh.push(s, c) for s, c in zip(screen[4:], c17[4:])]))


def test_live_fusion_with_detector_3d_equals_offline_causal_fusion(video_checkpoints: dict) -> None:
    """Frames pushed with MediaPipe's world landmarks give, frame by frame, what the offline causal fusion of the
    clip gives (`lift_track` with the track's world landmarks), across a missing frame."""
    import bonelift
    from bonelift.pipeline.track import Track2D

    ckpt = video_checkpoints["tcn_causal"]
    kp, conf = _mediapipe_clip(24, seed=3)
    rng = np.random.default_rng(5)
    world = np.cumsum(rng.normal(0, 0.01, (24, 33, 3)), 0) + rng.normal(0, 0.3, (1, 33, 3))
    world[7] = np.nan  # MediaPipe without world landmarks on one frame
    kp[15] = np.nan  # and a frame without a person
    live = bonelift.LiveLifter(ckpt)
    streamed = [live.push(kp[t], conf[t], W, H, world=world[t]) for t in range(24)]
    assert streamed[15] is None
    h36m, c = convert(kp, MEDIAPIPE33, H36M17, conf)
    track = Track2D(h36m, c, H36M17, W, H, 30.0, "clip", world=convert(world, MEDIAPIPE33, H36M17)[0])
    offline = lifters.lift_track(lifters.load_lifter(ckpt), track, progress=False)
    for t, pose in enumerate(streamed):
        if pose is not None:
            np.testing.assert_allclose(pose, offline[t], atol=1e-5)
