"""Video lifters: bone geometry, method 5's parts, causality, streaming, training round trip (synthetic data)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bonelift import geometry
from bonelift.cameras import Camera
from bonelift.datasets import PoseSequence
from bonelift.errors import BoneliftError
from bonelift.geometry import pad_edges
from bonelift.models.bone_video import BoneVideoLifter, Fusion, joint_shifts
from bonelift.models.tcn import TemporalConvLifter, VideoModelConfig, filter_widths_for
from bonelift.skeletons import H36M16, H36M17
from bonelift.streaming import StreamingLifter
from bonelift.training import augment_bone_lengths

torch.set_num_threads(1)


def _camera() -> Camera:
    return Camera("cam", np.eye(3), np.zeros(3), np.array([1000.0, 1000.0]), np.array([500.0, 500.0]),
                  np.array([-0.2, 0.24, -0.003]), np.array([-0.0014, -0.001]), 1000, 1000)


def _skeletons(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 17, 3) random skeletons: random bone directions and lengths, placed 4-5 m in front of the camera."""
    dirs = rng.normal(size=(n, 16, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    lengths = rng.uniform(0.1, 0.5, (n, 16))
    joints = geometry.joints_from_directions(dirs, lengths, H36M17)
    return joints + np.array([0.0, 0.0, 4.5]) + rng.normal(0, 0.1, (n, 1, 3))


def _sequences(n_seq: int = 3, frames: int = 30, seed: int = 0) -> list[PoseSequence]:
    rng = np.random.default_rng(seed)
    cam = _camera()
    out = []
    for i in range(n_seq):
        base = _skeletons(rng, 1)
        poses = (base + rng.normal(0, 0.01, (frames, 17, 3)).cumsum(0)).astype(np.float32)
        kp = cam.project(poses).astype(np.float32)
        out.append(PoseSequence("S1", "Walking", f"Walking {i}", cam, kp, H36M17, poses, H36M17))
    return out


def _config(name: str, causal: bool = False, **options) -> VideoModelConfig:
    return VideoModelConfig(name=name, receptive_field=9, channels=16, dropout=0.0, causal=causal, options=options)


# ----- geometry -------------------------------------------------------------------------------

def test_bone_joint_conversions_are_exact_inverses() -> None:
    rng = np.random.default_rng(1)
    joints = _skeletons(rng, 50)
    rel = joints - joints[:, :1]
    np.testing.assert_allclose(geometry.joints_from_bones(geometry.bone_vectors(rel, H36M17), H36M17), rel, atol=1e-12)
    dirs, lengths = geometry.bone_directions(rel, H36M17)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(geometry.joints_from_directions(dirs, lengths, H36M17), rel, atol=1e-12)
    t = torch.from_numpy(rel)
    d, n = geometry.bone_directions(t, H36M17)
    torch.testing.assert_close(geometry.joints_from_directions(d, n, H36M17), t)
    # Bones -> joints -> bones too, and for a layout with a different tree.
    bones = rng.normal(size=(7, 15, 3))
    np.testing.assert_allclose(
        geometry.bone_vectors(geometry.joints_from_bones(bones, H36M16), H36M16), bones, atol=1e-12
    )


def test_non_bone_pairs_excludes_exactly_the_bones() -> None:
    pairs = geometry.non_bone_pairs(H36M17)
    assert len(pairs) == 17 * 16 // 2 - 16
    assert not {tuple(sorted(b)) for b in H36M17.bones} & set(pairs)
    x = torch.randn(2, 17, 3)
    shifts = joint_shifts(x, pairs)
    a, b = pairs[5]
    torch.testing.assert_close(shifts[:, 5], x[:, b] - x[:, a])


# ----- augmentation ---------------------------------------------------------------------------

def test_augmentation_keeps_directions_and_changes_lengths() -> None:
    rng = np.random.default_rng(2)
    seq, other = _sequences(2, 20)
    x, rel, new_len = augment_bone_lengths(np.stack([seq.poses_3d, other.poses_3d]), [seq.camera, other.camera],
                                           H36M17, H36M17, rng, spread=0.2)
    ratios = new_len / np.stack([geometry.bone_lengths(s.root_relative, H36M17).mean(0) for s in (seq, other)])
    assert not np.allclose(ratios[0], ratios[1])  # new lengths are drawn per video
    x16, _, _ = augment_bone_lengths(seq.poses_3d[None], [seq.camera], H36M17, H36M16, rng)
    assert x16.shape == (1, 20, 16, 2)  # re-projected 2D in the network's input layout
    x, rel, new_len = x[0], rel[0], new_len[0]
    d_old, l_old = geometry.bone_directions(seq.root_relative, H36M17)
    d_new, l_new = geometry.bone_directions(rel, H36M17)
    np.testing.assert_allclose(d_new, d_old, atol=1e-5)
    np.testing.assert_allclose(l_new, np.broadcast_to(new_len, l_new.shape), rtol=1e-5)
    # Offsets within +-spread of the bone's mean length over the videos, drawn independently per bone
    # (mirror bones included); the 2D is the real camera's projection of the new skeleton.
    both = np.stack([geometry.bone_lengths(s.root_relative, H36M17).mean(0) for s in (seq, other)])
    offset = (new_len - l_old.mean(0)) / both.mean(0)
    assert np.all(np.abs(offset) <= 0.2 + 1e-5) and np.abs(offset).max() > 0.01
    child_bone = {c: b for b, (_, c) in enumerate(H36M17.bones)}
    mirrored = [child_bone[int(H36M17.flip_permutation[c])] for _, c in H36M17.bones]
    assert not np.allclose(offset, offset[mirrored], atol=1e-4)
    root = seq.poses_3d[:, :1]
    np.testing.assert_allclose(x, seq.camera.normalize(seq.camera.project(rel + root)), atol=1e-5)
    assert not np.allclose(x, seq.screen, atol=1e-4)


# ----- model structure ------------------------------------------------------------------------

def test_filter_widths() -> None:
    assert filter_widths_for(27) == (3, 3, 3) and filter_widths_for(243) == (3,) * 5
    with pytest.raises(Exception, match="power of 3"):
        filter_widths_for(50)


@pytest.mark.parametrize("causal", [False, True])
def test_tcn_sequence_mode_equals_windowed_mode(causal: bool) -> None:
    torch.manual_seed(0)
    model = TemporalConvLifter(_config("tcn", causal)).eval()
    seq = torch.randn(25, 17, 2)
    dense = model.infer(seq, chunk=7)
    left, _ = model.config.pad
    padded = pad_edges(seq, *model.config.pad)
    windows = padded.unfold(0, 9, 1).permute(0, 3, 1, 2)
    with torch.no_grad():
        windowed = model(windows)["pose"][:, 0]
    torch.testing.assert_close(dense, windowed, atol=1e-5, rtol=1e-4)
    assert torch.all(dense[:, 0] == 0)  # root at the origin


def test_gradients_do_not_cross_subnetworks() -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", subnets=2))
    window = torch.randn(4, 9, 17, 2)
    dirs = model.directions(window)
    dirs[1].sum().backward()
    bottom, top = model.direction
    assert all(p.grad is None for p in bottom.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in top.parameters())
    model.zero_grad(set_to_none=True)
    model.directions(window)[0].sum().backward()
    assert all(p.grad is None for p in top.parameters())


def test_joint_shift_loss_updates_only_the_direction_network() -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", lambda_d=0.0, lambda_l=0.0, lambda_j=0.0, lambda_pose=0.0))
    seq = _sequences(1, 20)[0]
    target = torch.from_numpy(seq.root_relative[:4])
    batch = {"window": torch.randn(4, 9, 17, 2), "target": target, "length_inputs": torch.randn(4, 6, 17, 2),
             "length_targets": target[:, None].expand(4, 6, 17, 3)}
    model.training_loss(batch)["total"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.length.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.attention.parameters())
    for net in model.direction:  # both sub-networks (the lower one at half weight)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.parametrize("pose_grad", [False, True])
def test_final_joint_loss_reaches_the_directions_only_with_pose_grad(pose_grad: bool) -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", lambda_d=0.0, lambda_l=0.0, lambda_j=0.0, lambda_js=0.0,
                                    pose_grad=pose_grad))
    seq = _sequences(1, 20)[0]
    target = torch.from_numpy(seq.root_relative[:4])
    batch = {"window": torch.randn(4, 9, 17, 2), "target": target, "length_inputs": torch.randn(4, 6, 17, 2),
             "length_targets": target[:, None].expand(4, 6, 17, 3)}
    model.training_loss(batch)["total"].backward()
    moved = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()) for net in model.direction]
    assert moved == [False, pose_grad]  # the top sub-network only; the bottom one stays detached
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.length.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.joint_fusion.parameters())


def test_attention_weights_sum_to_one_per_bone() -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone"))
    joints = torch.randn(3, 50, 51)
    w = model.attention.weights(joints)
    assert w.shape == (3, 50, 16)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3, 16))
    assert model.attention.gamma == 10.0
    lengths = torch.rand(3, 50, 16)
    pooled = model.attention(joints, lengths)
    assert torch.all(pooled >= lengths.min(1).values - 1e-6) and torch.all(pooled <= lengths.max(1).values + 1e-6)


@pytest.mark.slow
def test_product_fusion_represents_eq1_exactly() -> None:
    """With perfect directions and lengths a short fit of the default fusion reaches < 1 mm (concat cannot)."""
    torch.manual_seed(0)
    rel = _skeletons(np.random.default_rng(0), 2560)
    rel = torch.from_numpy(rel - rel[:, :1]).float()
    dirs, lengths = geometry.bone_directions(rel, H36M17)
    y = rel[:, 1:].flatten(1)
    fit, held = slice(0, 2048), slice(2048, None)
    errors = {}
    for kind in ("product", "concat"):
        fusion = Fusion(kind, 16, 48, 64)
        opt = torch.optim.LBFGS(fusion.parameters(), max_iter=100, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-12, tolerance_change=1e-15)

        def closure(opt: torch.optim.LBFGS = opt, fusion: Fusion = fusion) -> torch.Tensor:
            opt.zero_grad()
            loss = ((fusion(dirs[fit], lengths[fit]) - y[fit]) ** 2).mean()
            loss.backward()
            return loss

        for _ in range(5):
            opt.step(closure)
        with torch.no_grad():
            err = (fusion(dirs[held], lengths[held]) - y[held]).unflatten(-1, (16, 3)).norm(dim=-1)
            errors[kind] = float(err.mean())
    assert errors["product"] * 1000 < 1.0 < errors["concat"] * 1000, errors


def test_final_joint_loss_trains_only_the_fusion() -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", lambda_d=0.0, lambda_l=0.0, lambda_j=0.0, lambda_js=0.0))
    seq = _sequences(1, 20)[0]
    target = torch.from_numpy(seq.root_relative[:4])
    batch = {"window": torch.randn(4, 9, 17, 2), "target": target, "length_inputs": torch.randn(2, 6, 17, 2),
             "length_targets": target[:2, None].expand(2, 6, 17, 3), "length_video": torch.tensor([0, 1, 1, 0])}
    model.training_loss(batch)["total"].backward()
    for part in (model.direction, model.length, model.attention):
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in part.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.joint_fusion.parameters())
    # Directions reach L_D and the fusion with unit length.
    norms = model.directions(torch.randn(3, 9, 17, 2))[0].norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_old_bone_checkpoints_are_refused_clearly() -> None:
    model = BoneVideoLifter(_config("bone"))
    state = {**model.state_dict(), "joint_head.weight": torch.zeros(48, 64)}
    with pytest.raises(Exception, match="predates"):
        model.load_state_dict(state)
    assert BoneVideoLifter(_config("bone", fusion="fc")).opt.fusion == "concat"  # old configs still build


def test_trainer_draws_lengths_once_per_video() -> None:
    from bonelift.config import VideoTrainConfig
    from bonelift.training import VideoTrainer

    seqs = _sequences(3, 40)
    for causal in (False, True):
        cfg = VideoTrainConfig(model=_config("bone", causal=causal, length_frames=6), batch_size=32, stride=1,
                               epochs=1, device="cpu", out_dir="", keypoints="sh")
        trainer = VideoTrainer(cfg, progress=False, splits=(seqs, seqs[:1]))
        rows = torch.arange(0, 120, 4)
        batch = trainer.batch(rows)
        assert batch["length_inputs"].shape == (3, 6, 17, 2) and batch["length_video"].shape == (30,)
        assert "aug_inputs" in batch and len(batch["aug_inputs"]) == 3  # one augmented video per video
        assert ("length_index" in batch) == causal
        losses = trainer.model.training_loss(batch)
        assert torch.isfinite(losses["total"])
    gt = VideoTrainer(replace(cfg, keypoints="gt"), progress=False, splits=(seqs, seqs[:1]))
    assert "aug_inputs" not in gt.batch(rows)  # no bone-length augmentation for GT 2D by default


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_causal_output_ignores_future_frames(name: str) -> None:
    torch.manual_seed(0)
    model = (TemporalConvLifter if name == "tcn" else BoneVideoLifter)(_config(name, causal=True)).eval()
    seq = torch.randn(30, 17, 2)
    changed = seq.clone()
    t = 17
    changed[t + 1 :] += torch.randn_like(changed[t + 1 :])
    a = model.infer(seq, generator=torch.Generator().manual_seed(3))
    b = model.infer(changed, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a[: t + 1], b[: t + 1])
    assert not torch.allclose(a[t + 1 :], b[t + 1 :])


@pytest.mark.parametrize("bone_att", [True, False])
def test_causal_pool_is_attention_over_all_past_frames(bone_att: bool) -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", causal=True, bone_att=bone_att)).eval()
    att, lengths = torch.randn(12, 51), torch.randn(12, 16)  # negative lengths too (the `ml` = False network)
    pooled, _ = model.causal_pool(att, lengths)
    mask = torch.arange(12)[None, :] <= torch.arange(12)[:, None]
    direct = model.pool_lengths(att[None].expand(12, -1, -1), lengths[None].expand(12, -1, -1), mask)
    torch.testing.assert_close(pooled, direct, atol=1e-5, rtol=1e-5)
    # Continuing from a state gives the same as one pass.
    first, state = model.causal_pool(att[:5], lengths[:5])
    rest, _ = model.causal_pool(att[5:], lengths[5:], state)
    torch.testing.assert_close(torch.cat([first, rest]), pooled)


def test_test_time_lengths_are_one_set_per_video() -> None:
    torch.manual_seed(0)
    for test_lengths in ("all", "draw"):
        model = BoneVideoLifter(_config("bone", test_lengths=test_lengths, length_frames=7)).eval()
        seq = torch.randn(40, 17, 2)
        lengths = model.video_lengths(seq, generator=torch.Generator().manual_seed(0))
        assert lengths.shape == (1, 16)
        pose = model.infer(seq, generator=torch.Generator().manual_seed(0))
        bones = geometry.bone_lengths(pose, H36M17)
        assert not torch.allclose(pose[0], pose[1])
        # The fusion sees the same lengths at every frame: re-fusing frame t's directions with them reproduces it.
        with torch.no_grad():
            win = pad_edges(seq, 4, 4).unfold(0, 9, 1).permute(0, 3, 1, 2)
            refused = model.fuse(model.directions(win)[-1], lengths.expand(40, -1))
        torch.testing.assert_close(refused, pose)
        assert bones.shape == (40, 16)
    analytic = BoneVideoLifter(_config("bone", fusion="analytic")).eval()
    bones = geometry.bone_lengths(analytic.infer(torch.randn(30, 17, 2)), H36M17)
    torch.testing.assert_close(bones, bones[:1].expand_as(bones))  # eq. 1: frame-constant bone lengths, no jitter


def test_visibility_score_branch_uses_confidences() -> None:
    torch.manual_seed(0)
    cfg = _config("bone")
    cfg.confidence = True
    model = BoneVideoLifter(cfg).eval()
    assert model.direction[0].score is not None
    window, length_inputs = torch.randn(2, 9, 17, 2), torch.randn(2, 5, 17, 2)
    a = model(window, length_inputs, torch.ones(2, 9, 17))["pose"]
    b = model(window, length_inputs, torch.zeros(2, 9, 17))["pose"]
    assert not torch.allclose(a, b)
    off = BoneVideoLifter(_config("bone"))
    assert off.direction[0].score is None


@pytest.mark.parametrize("options", [{}, {"ml": False, "bone_att": False, "aug": False, "jsl": False, "lsc": False},
                                     {"fusion": "analytic"}])
def test_bone_training_loss_is_finite_and_backpropagates(options: dict) -> None:
    torch.manual_seed(0)
    model = BoneVideoLifter(_config("bone", **options))
    seq = _sequences(1, 20)[0]
    target = torch.from_numpy(seq.root_relative[:4])
    batch = {"window": torch.randn(4, 9, 17, 2), "target": target, "length_inputs": torch.randn(4, 6, 17, 2),
             "length_targets": target[:, None].expand(4, 6, 17, 3),
             "aug_inputs": torch.randn(3, 6, 17, 2), "aug_lengths": torch.rand(3, 16)}
    losses = model.training_loss(batch)
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
    assert any(p.grad is not None for p in model.length.parameters())


# ----- streaming and training round trip ------------------------------------------------------

@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_streaming_matches_offline_causal_inference(name: str) -> None:
    torch.manual_seed(0)
    model = (TemporalConvLifter if name == "tcn" else BoneVideoLifter)(_config(name, causal=True)).eval()
    seq = torch.randn(20, 17, 2)
    lifter = StreamingLifter(model)
    streamed = np.stack([lifter.push(f.numpy()) for f in seq])
    assert len(lifter.buffer) == 9 and lifter.flush() == []
    # Frame by frame equal to offline causal inference (method 5: lengths pooled over all frames <= t).
    np.testing.assert_allclose(streamed, model.infer(seq).numpy(), atol=1e-5)


def test_noncausal_streaming_lags_by_half_window() -> None:
    model = TemporalConvLifter(_config("tcn")).eval()
    lifter = StreamingLifter(model)
    outs = [lifter.push(np.zeros((17, 2), np.float32)) for _ in range(6)]
    assert outs[:4] == [None] * 4 and outs[4] is not None


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_noncausal_streaming_flush_returns_the_last_frames(name: str) -> None:
    torch.manual_seed(0)
    model = (TemporalConvLifter if name == "tcn" else BoneVideoLifter)(_config(name)).eval()
    seq = torch.randn(15, 17, 2)
    lifter = StreamingLifter(model)
    streamed = [p for p in (lifter.push(f.numpy()) for f in seq) if p is not None]
    streamed += lifter.flush()
    assert len(streamed) == 15
    if name == "tcn":  # equal to offline inference, end padding included
        np.testing.assert_allclose(np.stack(streamed), model.infer(seq).numpy(), atol=1e-5)
    else:  # the flushed frames use the whole video's lengths, as offline
        np.testing.assert_allclose(np.stack(streamed[-4:]), model.infer(seq)[-4:].numpy(), atol=1e-5)
    short = StreamingLifter(model)
    assert short.push(seq[0].numpy()) is None and len(short.flush()) == 1


@pytest.mark.parametrize("name", ["tcn", pytest.param("bone", marks=pytest.mark.slow)])
def test_video_training_round_trip(name: str, tmp_path) -> None:
    from bonelift.config import VideoTrainConfig
    from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS
    from bonelift.evaluate import evaluate
    from bonelift.training import VideoTrainer, train_video
    from tests.conftest import make_h36m

    root = tmp_path / "h36m"
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=12)
    opts = {"length_frames": 5} if name == "bone" else {}
    cfg = VideoTrainConfig(model=_config(name, **opts), data_root=str(root), epochs=2, batch_size=64, stride=4,
                           eval_stride=1, out_dir=str(tmp_path / "run"), device="cpu")
    trainer = train_video(cfg, progress=False)
    assert len(trainer.history) == 2 and np.isfinite(trainer.history[-1]["p1_mm"])
    assert cfg.model.input_layout == "h36m17" and cfg.epochs == 2  # the caller's configuration is not changed
    # Resume continues from last.pt; `bonelift evaluate` routes by the checkpoint kind.
    cfg.epochs = 3
    resumed = VideoTrainer(cfg, resume=True, progress=False)
    assert resumed.epoch == 2
    resumed.fit()
    results, paths = evaluate(tmp_path / "run" / "last.pt", data_root=str(root), stride=1, device="cpu", progress=False)
    assert results["frames"] == len(trainer.test_seqs) * 12 and results["model"] == name and paths[1].is_file()
    assert "bone_std" in results and results["p1"]["average"] > 0


def test_bench_video_writes_results_and_reuses_rows(tmp_path) -> None:
    from bonelift.bench import video
    from bonelift.config import VideoTrainConfig

    train_seqs, test_seqs = _sequences(3, 30, seed=0), _sequences(2, 25, seed=1)
    base = VideoTrainConfig(model=_config("tcn"), epochs=1, batch_size=16, stride=3, device="cpu")
    report = tmp_path / "video_h36m.md"
    assert video.ROWS["bone-concat"][2] == {"fusion": "concat"}
    assert video.ROWS["bone-analytic"][2] == {"fusion": "analytic"}
    doc = video.run_benchmark(base, ["tcn", "af", "bone-causal"], tmp_path / "runs", report, "bonelift bench video ...",
                              latency_frames=20, progress=False, data=lambda c: (train_seqs, test_seqs))
    text = report.read_text()
    assert "| AF |" in text and "bonelift bench video ..." in text
    rows = {r["variant"]: r for r in doc["rows"]}
    assert rows["bone-causal"]["latency_ms"] > 0 and "latency_ms" not in rows["tcn"]
    assert {r["input"] for r in doc["rows"]} == {"gt"} and all("mpjve_mm" in r for r in doc["rows"])

    def no_data(config):
        raise AssertionError("a scored row was trained again")

    # A second invocation (e.g. the collecting one after parallel runs) reuses scored rows without training,
    # and keeps the rows of the first in the suite file.
    again = video.run_benchmark(base, ["tcn", "af"], tmp_path / "runs", report, "collect", progress=False, data=no_data)
    assert {r["variant"]: r for r in again["rows"]}["af"] == rows["af"] and len(again["rows"]) == 3
    with pytest.raises(Exception, match="unknown benchmark row"):
        video.run_benchmark(base, ["nope"], tmp_path / "runs", report, "x")


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_streaming_with_confidences_matches_offline_causal_inference(name: str) -> None:
    torch.manual_seed(0)
    config = replace(_config(name, causal=True), confidence=True)
    model = (TemporalConvLifter if name == "tcn" else BoneVideoLifter)(config).eval()
    seq, conf = torch.randn(20, 17, 2), torch.rand(20, 17)
    lifter = StreamingLifter(model)
    assert lifter.takes_confidence
    streamed = np.stack([lifter.push(f.numpy(), c.numpy()) for f, c in zip(seq, conf)])
    np.testing.assert_allclose(streamed, model.infer(seq, conf).numpy(), atol=1e-5)
    assert not np.allclose(streamed, model.infer(seq, torch.ones_like(conf)).numpy(), atol=1e-4)  # they matter
    with pytest.raises(BoneliftError, match="pass them to push"):
        StreamingLifter(model).push(seq[0].numpy())


def test_reframe_clip_removes_camera_scale_and_runs_causally_frame_by_frame() -> None:
    rng = np.random.default_rng(4)
    clip = geometry.reframe_clip(rng.normal(0, 0.3, (40, 17, 2)).astype(np.float32), H36M17)
    moved = clip * 2.5 + np.array([0.3, -0.7], np.float32)  # the same clip filmed closer and off-centre
    np.testing.assert_allclose(geometry.reframe_clip(moved, H36M17), geometry.reframe_clip(clip, H36M17), atol=1e-5)
    h = np.linalg.norm(clip[:, 10] - clip[:, [3, 6]].mean(1), axis=-1)
    assert np.isclose(h.mean(), geometry.REFRAME_HEIGHT, atol=1e-4)
    running = geometry.RunningReframe(H36M17)
    np.testing.assert_allclose(np.stack([running(f) for f in moved]), geometry.reframe_clip(moved, H36M17, causal=True),
                               atol=1e-5)


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_reframed_causal_model_streams_like_offline_inference(name: str) -> None:
    from bonelift.evaluation import predict_video

    torch.manual_seed(0)
    config = replace(_config(name, causal=True), confidence=True, reframe=True)
    model = (TemporalConvLifter if name == "tcn" else BoneVideoLifter)(config).eval()
    seq, conf = np.random.default_rng(1).normal(0, 0.3, (20, 17, 2)).astype(np.float32), np.ones((20, 17), np.float32)
    lifter = StreamingLifter(model)
    streamed = np.stack([lifter.push(f, c) for f, c in zip(seq, conf)])
    offline = predict_video(model, seq, conf, test_flip=False)
    np.testing.assert_allclose(streamed, offline, atol=1e-5)
    # The framing is part of the model: the clip filmed twice as large lifts to the same poses.
    np.testing.assert_allclose(predict_video(model, seq * 2, conf, test_flip=False), offline, atol=1e-4)


def test_tcn_matched_width_matches_method5_parameters() -> None:
    """The capacity control is within 10 % of method 5's parameter count (the issue's bound), at two widths."""
    from bonelift.bench.video import matched_channels, parameter_count

    for channels in (32, 128):
        base = VideoModelConfig(channels=channels, receptive_field=27)
        target = parameter_count(replace(base, name="bone"))
        width = matched_channels(base)
        assert width > channels
        assert abs(parameter_count(replace(base, channels=width)) - target) <= 0.1 * target


def test_bench_tcn_matched_row_is_matched_as_trained(tmp_path) -> None:
    """The row's width is chosen for the inputs the run really has (no confidences here), so the trained networks'
    parameter counts are within 10 % of each other."""
    from bonelift.bench import video
    from bonelift.config import VideoTrainConfig

    train_seqs, test_seqs = _sequences(3, 30, seed=0), _sequences(2, 25, seed=1)
    assert train_seqs[0].confidence is None
    # confidence=True as `VideoTrainConfig()` has it: the data decides (here: none)
    base = VideoTrainConfig(model=replace(_config("tcn"), confidence=True), epochs=1, batch_size=16, stride=3,
                            device="cpu")
    doc = video.run_benchmark(base, ["tcn-matched", "bone"], tmp_path / "runs", tmp_path / "v.md", "x",
                              progress=False, data=lambda c: (train_seqs, test_seqs))
    params = {r["variant"]: r["params"] for r in doc["rows"]}
    assert abs(params["tcn-matched"] - params["bone"]) <= 0.1 * params["bone"]


def test_bench_video_budget_text_names_the_schedule_it_ran() -> None:
    """A budget annealed as N epochs, or with another optimiser kernel, says so; an older budget (no such fields)
    reads as the per-epoch decay it ran."""
    from bonelift.bench.video import _schedule

    old = {"lr": 0.001, "lr_decay": 0.95}
    assert _schedule(old) == "lr 0.001 x 0.95/epoch"
    assert _schedule({**old, "lr_final_as_epochs": 0, "optimizer_impl": "default"}) == "lr 0.001 x 0.95/epoch"
    text = _schedule({**old, "lr_final_as_epochs": 80, "optimizer_impl": "fused"})
    assert text == "lr 0.001 annealed per epoch to lr x 0.95^80, fused Adam"
