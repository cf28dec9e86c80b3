"""Method 4 as published (issue #14): perspective weak pose, losses on the 2D-only stream, staged schedule,
range-of-motion validity, legacy configurations and a tiny synthetic run of `bench anatomy`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.cameras import Camera
from bonelift.config import TPNetTrainConfig, TrainConfig, config_from_dict
from bonelift.errors import BoneliftError
from bonelift.geometry import flexion_angles
from bonelift.losses import (
    anatomical_losses,
    canonical_bone_lengths,
    geometry_loss,
    symmetry_loss,
    weak_losses,
    weak_pose,
)
from bonelift.metrics import illegal_angle_percentage, range_of_motion_percentage
from bonelift.models import ModelConfig, TPNetConfig
from bonelift.skeletons import H36M17
from tests.conftest import make_h36m
from tests.test_anatomy import STANDING, _reverse_bend


def _camera() -> Camera:
    return Camera(
        "cam", np.eye(3), np.zeros(3), np.array([1145.0, 1144.0]), np.array([512.0, 515.0]),
        np.array([-0.2, 0.24, -0.003]), np.array([-0.0014, -0.001]), 1000, 1000,
    )


def test_weak_pose_of_ground_truth_reproduces_it_and_its_losses():
    cam = _camera()
    rng = np.random.default_rng(0)
    gt = STANDING[None] + 0.03 * rng.standard_normal((16, 17, 3))
    gt = gt - gt[:, :1]
    absolute = (
        gt + np.stack([rng.uniform(-1, 1, 16), rng.uniform(-0.5, 0.5, 16), rng.uniform(3.5, 6.5, 16)], -1)[:, None]
    )
    rays = torch.tensor(cam.image_coords(cam.project(absolute)))  # pixels with distortion -> undistorted rays
    pose = torch.tensor(gt)
    wp, residual = weak_pose(pose, rays, H36M17)
    assert (wp - pose).norm(dim=-1).max() < 1e-3  # within 1 mm
    assert residual.abs().max() < 1e-3
    canonical = torch.tensor(canonical_bone_lengths(gt, H36M17))
    assert float(symmetry_loss(wp, H36M17)) == pytest.approx(float(symmetry_loss(pose, H36M17)), abs=1e-7)
    assert float(geometry_loss(wp, H36M17, canonical)) == pytest.approx(
        float(geometry_loss(pose, H36M17, canonical)), abs=1e-6
    )
    # Weak perspective (scaled 2D, the code before #14) is ~20 mm off on the same poses.
    xy2d = rays - rays[:, :1]
    s = (pose[..., :2] * xy2d).sum((-2, -1)) / (xy2d * xy2d).sum((-2, -1))
    assert (s[:, None, None] * xy2d - pose[..., :2]).norm(dim=-1).mean() > 5e-3
    # A wrong predicted depth moves the weak pose's x, y with it (the 2D fixes rays, not coordinates).
    deeper = pose.clone()
    deeper[..., 2] *= 1.5
    assert not torch.allclose(weak_pose(deeper, rays, H36M17)[0][..., :2], wp[..., :2], atol=1e-3)


def _camera_rays(cam: Camera, poses: np.ndarray, seed: int = 0) -> torch.Tensor:
    """Undistorted image coordinates of root-relative `poses` placed 3.5-6.5 m in front of `cam`."""
    rng = np.random.default_rng(seed)
    n = len(poses)
    place = np.stack([rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(3.5, 6.5, n)], -1)[:, None]
    return torch.tensor(cam.image_coords(cam.project(poses + place)))


def test_weak_terms_are_blind_to_the_predicted_scale_and_vanish_on_ground_truth():
    cam = _camera()
    rng = np.random.default_rng(1)
    gt = STANDING[None] + 0.03 * rng.standard_normal((16, 17, 3))
    gt = gt - gt[:, :1]
    rays = _camera_rays(cam, gt)
    pred = torch.tensor(gt + 0.03 * rng.standard_normal(gt.shape))  # a prediction 30 mm off per coordinate
    canonical = torch.tensor(canonical_bone_lengths(1.1 * gt, H36M17))  # another subject's (larger) skeleton
    weights = dict.fromkeys(("geometry", "angle", "symmetry", "reprojection"), 1.0)

    def metric_form(pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms before the fix: structure losses on the metric weak pose, the residual in metres."""
        pose_w, residual = weak_pose(pose, rays, H36M17)
        depth = ((pose_w[..., :2] - pose_w[..., :1, :2]) * (rays - rays[..., :1, :])).sum((-2, -1)) / (
            (rays - rays[..., :1, :]) ** 2).sum((-2, -1))
        terms = anatomical_losses(pose_w, H36M17, weights, canonical)
        terms["reprojection"] = ((residual * depth[:, None, None]) ** 2).sum(-1).mean()
        return terms

    ref, ref_old = weak_losses(pred, rays, H36M17, weights, canonical), metric_form(pred)
    assert set(ref) == set(weights) and all(float(v) > 0 for k, v in ref.items() if k != "angle")
    for s in (0.5, 0.8, 1.25, 2.0):
        scaled = weak_losses(s * pred, rays, H36M17, weights, canonical)
        old = metric_form(s * pred)
        for name in weights:
            assert float(scaled[name]) == pytest.approx(float(ref[name]), rel=1e-6, abs=1e-12), (name, s)
        for name in ("symmetry", "reprojection"):  # the old form fell (rose) with the body's size, by s²
            assert float(old[name]) == pytest.approx(s**2 * float(ref_old[name]), rel=1e-3), (name, s)
        assert float(old["geometry"]) == pytest.approx(s**2 * float(ref_old["geometry"]), rel=1e-3)
    # No gradient along the global scale: the derivative along the pose itself is zero.
    pose = pred.clone().requires_grad_(True)
    sum(weak_losses(pose, rays, H36M17, weights, canonical).values()).backward()
    assert abs(float((pose.grad * pred).sum())) < 1e-8 * float(pose.grad.norm() * pred.norm()) + 1e-12
    # Ground truth (a symmetric, legal skeleton, any size) gives ~zero terms.
    exact = np.repeat(STANDING[None], 4, 0) * np.array([0.9, 1.0, 1.1, 1.2])[:, None, None]
    canonical = torch.tensor(canonical_bone_lengths(1.1 * STANDING[None], H36M17))
    terms = weak_losses(torch.tensor(exact), _camera_rays(cam, exact, 2), H36M17, weights, canonical)
    assert all(float(v) < 1e-10 for v in terms.values()), terms


def _synthetic_trainer(tmp_path, **changes):
    from bonelift.training.single_frame import Trainer

    root = tmp_path / "h36m"
    if not root.exists():
        make_h36m(root, ["S1", "S5", "S9"], frames=24)
    config = TrainConfig(
        model=ModelConfig(hidden=16, blocks=1), data_root=str(root), train_subjects=("S1",), test_subjects=("S9",),
        weak_subjects=("S5",), stride=2, epochs=3, batch_size=32, device="cpu", out_dir="",
        losses={"geometry": 1.0, "angle": 1.0, "symmetry": 1.0, "reprojection": 1.0}, warmup_epochs=1,
        symmetry_epoch=2, symmetry_lr_factor=0.1,
    )
    config = TrainConfig(**{**config.__dict__, **changes})
    return Trainer(config, progress=False)


def test_structure_losses_never_see_a_3d_labelled_sample(tmp_path, monkeypatch):
    import bonelift.training.anatomy as anatomy

    seen: list[torch.Tensor] = []
    weak_seen: list[torch.Tensor] = []
    real_losses, real_weak = anatomy.anatomical_losses, anatomy.weak_losses

    def spy_losses(pose, *args, **kw):
        seen.append(pose)
        return real_losses(pose, *args, **kw)

    def spy_weak(pose, *args, **kw):
        weak_seen.append(pose)
        return real_weak(pose, *args, **kw)

    monkeypatch.setattr(anatomy, "anatomical_losses", spy_losses)
    monkeypatch.setattr(anatomy, "weak_losses", spy_weak)
    trainer = _synthetic_trainer(tmp_path)
    trainer.epoch = 2
    rows = torch.arange(16)
    inputs: list[torch.Tensor] = []
    trainer.model.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach().clone()))
    losses = trainer.batch_losses(rows)
    # One forward pass of 16 3D + 16 2D-only samples; only the 2D-only half reaches the structure losses.
    assert len(inputs) == 1 and len(inputs[0]) == 32
    assert not seen and len(weak_seen) == 1 and len(weak_seen[0]) == 16
    assert not any(k.startswith("anat_") for k in losses) and "weak_symmetry" in losses
    # The weak stream's inputs are the 2D-only subject's: none equals a 3D-labelled input.
    weak = trainer.anatomy.weak_inputs.flatten(1)
    labelled = trainer.inputs.flatten(1)
    assert torch.cdist(weak, labelled).min() > 1e-6
    normed_weak = trainer.model.normalizer.norm_in(trainer.anatomy.weak_inputs)
    assert (inputs[0][16:, None] - normed_weak[None]).norm(dim=-1).min(1).values.max() < 1e-5
    seen.clear()
    weak_seen.clear()
    old = _synthetic_trainer(tmp_path, losses_on="all")
    old.epoch = 2
    assert "anat_geometry" in old.batch_losses(rows) and len(seen) == 1 and len(weak_seen) == 1  # 3D batch too
    with pytest.raises(BoneliftError, match="2D-only stream"):
        TrainConfig(losses={"angle": 1.0}).validate()
    TrainConfig(losses={"angle": 1.0}, losses_on="all").validate()


def test_rows_differing_only_in_losses_see_identical_batches_and_draws(tmp_path, one_thread):
    """Table 3's pairing: the 3D and 2D-only samples of every step, flips, noise and dropout draws are the same in a
    row without weak losses as in the full row, so paired differences measure the losses alone."""
    seen: dict[str, list[torch.Tensor]] = {}
    states = {}
    for name, losses in (("s1-3d", {}), ("full", None)):
        changes = {"epochs": 2, "noise_px": 2.0, "flip": True, **({} if losses is None else {"losses": losses})}
        trainer = _synthetic_trainer(tmp_path, **changes)
        inputs = seen.setdefault(name, [])
        trainer.model.register_forward_pre_hook(
            lambda m, args, inputs=inputs: inputs.append(args[0].detach().clone()) if m.training else None
        )
        trainer.fit()
        states[name] = torch.get_rng_state()
    assert len(seen["full"]) == len(seen["s1-3d"]) > 1
    assert all(torch.equal(a, b) for a, b in zip(seen["full"], seen["s1-3d"]))
    assert torch.equal(states["full"], states["s1-3d"])


def test_staged_schedule_switches_symmetry_on_at_its_stage_only(tmp_path):
    trainer = _synthetic_trainer(tmp_path)
    rows = torch.arange(16)
    keys = []
    for epoch in range(3):
        trainer.epoch = epoch
        keys.append({k for k in trainer.batch_losses(rows) if k.startswith("weak_")})
    assert keys[0] == set()  # 3D warm start
    assert keys[1] == {"weak_geometry", "weak_angle", "weak_reprojection"}
    assert keys[2] == keys[1] | {"weak_symmetry"}
    trainer.epoch = 0
    history = trainer.fit()
    per_epoch = max(1, len(trainer.inputs) // trainer.config.batch_size)
    lr = [trainer.config.lr * trainer.config.lr_decay ** (s / max(1, 6_400_000 // 32)) for s in range(3 * per_epoch)]
    assert history[0]["lr"] == pytest.approx(lr[per_epoch], rel=1e-6)  # stage 3: full learning rate
    assert history[1]["lr"] == pytest.approx(0.1 * lr[min(2 * per_epoch, len(lr) - 1)], rel=1e-3)
    with pytest.raises(BoneliftError, match="symmetry-epoch"):
        TrainConfig(warmup_epochs=3, symmetry_epoch=2, losses_on="all").validate()


def test_range_of_motion_measure_passes_legal_poses_and_flags_limits():
    assert range_of_motion_percentage(STANDING[None], H36M17)["any"] == 0.0
    straight = STANDING.copy()
    straight[H36M17.index("RFoot")] = straight[H36M17.index("RKnee")] + (
        straight[H36M17.index("RKnee")] - straight[H36M17.index("RHip")]
    )
    assert abs(flexion_angles(straight, H36M17)[2]) < 1e-6
    hyper = _reverse_bend(STANDING, 2)  # right knee bent backwards by its flexion (~12 deg)
    angle = flexion_angles(hyper, H36M17)[2]
    assert angle < -10 and range_of_motion_percentage(hyper[None], H36M17)["right knee"] == 100.0
    elbow_back = _reverse_bend(STANDING, 0)  # an elbow bent the other way: humeral rotation, not illegal
    assert illegal_angle_percentage(elbow_back[None], H36M17)["right elbow"] == 100.0
    assert range_of_motion_percentage(elbow_back[None], H36M17)["right elbow"] == 0.0
    folded = STANDING.copy()
    e, w, s = (H36M17.index(n) for n in ("RElbow", "RWrist", "RShoulder"))
    folded[w] = folded[e] + 0.25 * (folded[s] - folded[e]) / np.linalg.norm(folded[s] - folded[e])  # 180 deg flexed
    assert range_of_motion_percentage(folded[None], H36M17)["right elbow"] == 100.0


def test_configs_saved_before_the_fields_keep_their_old_meaning():
    old_tp = TPNetTrainConfig(model=TPNetConfig(hidden=8)).to_dict()
    del old_tp["model"]["frame_step"]
    assert config_from_dict(TPNetTrainConfig, old_tp).model.frame_step == 1
    assert TPNetConfig().frame_step == 2
    old = TrainConfig(losses={"angle": 1.0}).to_dict()
    del old["losses_on"]
    assert config_from_dict(TrainConfig, old).losses_on == "all" and TrainConfig().losses_on == "weak"


@pytest.fixture
def one_thread():
    """Tiny networks run several times faster on one thread than on cores shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_bench_anatomy_tiny_synthetic_run(tmp_path, one_thread):
    from bonelift.bench.anatomy import AnatomyBench, run
    from bonelift.config import TrainConfig
    from bonelift.models import ModelConfig

    root = tmp_path / "h36m"
    make_h36m(root, ["S1", "S5", "S9", "S11"], frames=16)
    lifters = TrainConfig(data_root=str(root), epochs=2, stride=3, batch_size=64, model=ModelConfig(hidden=16),
                          eval_stride=1000, device="cpu")
    bench = AnatomyBench(
        train=lifters, row_epochs={"s1-3d": 1}, warmup_fraction=0.5, symmetry_fraction=0.5,
        weak_2d_subjects=("S5",), tpnet_epochs=1, tpnet_sample_stride=5, tpnet_hidden=16,
    )
    report = tmp_path / "anatomy_h36m.md"
    doc = run(bench, tmp_path / "runs", report, "bonelift bench anatomy (test)", test_stride=2, seeds=2)
    rows = {(r["variant"], r["seed"]): r for r in doc["rows"]}
    for variant in ("s1-3d", "s1-3d+weak-2d-reproj", "s1-3d+weak-2d-geometry", "s1-3d+weak-2d-angle",
                    "s1-3d+weak-2d", "tpnet-online", "tpnet-bidirectional", "tpnet-single-frame"):
        for seed in (0, 1):
            r = rows[(variant, seed)]
            assert np.isfinite(r["p1_mm"]) and np.isfinite(r["p2_mm"]) and r["input"] == "gt"
    assert rows[("s1-3d", 0)]["epochs"] == 1 and rows[("s1-3d+weak-2d", 0)]["weak_subjects"] == ["S5"]
    assert rows[("s1-3d", 0)]["weak_subjects"] == ["S5"] and rows[("s1-3d", 0)]["losses"] == {}  # same data
    assert rows[("tpnet-online", 0)]["tpnet_subjects"] == ["S5"]  # predictions the lifter had no 3D for
    assert "P1 - s1-3d (paired)" in report.read_text()
    gt = rows[("ground-truth", 0)]
    assert gt["p1_mm"] == 0.0 and "validity" in gt
    online = rows[("tpnet-online", 0)]
    assert online["frame_step"] == 2 and online["latency_ms"] > 0
    assert online["gain_p1_mm"] == pytest.approx(online["input_p1_mm"] - online["p1_mm"])
    saved = json.loads(report.with_suffix(".json").read_text())
    assert saved["suite"] == "anatomy_h36m" and "Ground truth" in report.read_text()
    again = run(bench, tmp_path / "runs", report, "again", test_stride=2, seeds=2)  # complete runs are reused
    assert [r["p1_mm"] for r in again["rows"]] == [r["p1_mm"] for r in doc["rows"]]
    # A subset of rows merges into the same file (the selection is not part of the budget); no TP-Net without FULL.
    subset = run(replace(bench, rows=("s1-3d", "s1-3d+weak-2d-reproj")), tmp_path / "runs", report, "subset",
                 test_stride=2, seeds=2)
    assert len(subset["rows"]) == len(doc["rows"])
    # TP-Net fitted on the lifter's own 3D subject trains into its own folders, not over the S5-trained ones.
    on_3d = run(replace(bench, rows=("s1-3d+weak-2d", "tpnet"), tpnet_train_on="3d"), tmp_path / "runs",
                tmp_path / "on_3d.md", "on 3d", test_stride=2, seeds=1)
    assert (tmp_path / "runs" / "tpnet-online-train-on-3d" / "seed0" / "last.pt").is_file()
    assert {r["tpnet_subjects"][0] for r in on_3d["rows"] if r["model"] == "tpnet"} == {"S1"}


def test_bench_anatomy_rows_option_and_paired_differences():
    from bonelift.bench.anatomy import AnatomyBench
    from bonelift.bench.common import paired_difference
    from bonelift.errors import OptionError

    bench = AnatomyBench(rows=("s1-3d", "s1-3d+weak-2d"))
    bench.validate()
    assert [v[0] for v in bench.variants()] == ["s1-3d", "s1-3d+weak-2d"]
    assert "rows" not in bench.budget() and bench.budget()["tpnet_train_on"] == "2d-only"
    with pytest.raises(OptionError, match="unknown row"):
        AnatomyBench(rows=("s1-3d", "bogus")).validate()
    full = [v[0] for v in AnatomyBench(record_all=True).variants()]
    assert full[0] == "s1-3d" and full[-1] == "s1-3d+weak-2d-losses-on-all" and len(full) == 6
    # Every row trains on the same data; only the losses differ.
    configs = [AnatomyBench().lifter(Path("x"), v, 0) for v in AnatomyBench().variants()]
    assert {c.weak_subjects for c in configs} == {("S5", "S6", "S7", "S8")} and configs[0].losses == {}
    base = [{"seed": s, "p1_mm": p} for s, p in ((0, 80.0), (1, 82.0), (2, 81.0))]
    clear = [{"seed": s, "p1_mm": p} for s, p in ((0, 78.0), (1, 80.1), (2, 78.9))]
    noisy = [{"seed": s, "p1_mm": p} for s, p in ((0, 79.0), (1, 83.0), (2, 80.0))]
    assert paired_difference(clear, base, "p1_mm") == "-2.00 ± 0.10 (3)"
    assert paired_difference(noisy, base, "p1_mm").endswith("not resolved")
    assert paired_difference(clear[:1], base, "p1_mm") == "-2.00 (1) not resolved"
    assert paired_difference(clear, [], "p1_mm") == "–"


def test_clip_skeleton_is_constant_symmetric_and_keeps_directions() -> None:
    """One skeleton per clip: median lengths (causal: running mean), mirrored bones equal, directions kept."""
    from bonelift.fitting import clip_bone_lengths, fit_clip_skeleton
    from bonelift.geometry import bone_directions, bone_lengths
    from bonelift.skeletons import H36M17

    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (20, 17, 3))
    poses[7] = np.nan  # a frame without a pose
    fitted = fit_clip_skeleton(poses, H36M17)
    lengths = bone_lengths(fitted, H36M17)
    ok = np.isfinite(lengths).all(-1)
    assert not ok[7] and ok.sum() == 19
    np.testing.assert_allclose(lengths[ok], np.broadcast_to(lengths[ok][0], lengths[ok].shape), atol=1e-9)
    for left, right in H36M17.mirrored_bones:
        np.testing.assert_allclose(lengths[ok][:, left], lengths[ok][:, right], atol=1e-9)
    want = np.median(bone_lengths(poses[ok], H36M17), 0)
    left, right = H36M17.mirrored_bones[0]
    assert lengths[0, left] == pytest.approx((want[left] + want[right]) / 2)
    np.testing.assert_allclose(bone_directions(fitted[ok], H36M17)[0], bone_directions(poses[ok], H36M17)[0], atol=1e-9)
    causal = clip_bone_lengths(poses, H36M17, causal=True)
    raw = bone_lengths(poses, H36M17)
    spine = H36M17.bone_index[(H36M17.index("Hip"), H36M17.index("Spine"))]
    assert causal[3, spine] == pytest.approx(raw[:4, spine].mean())
    assert causal[9, spine] == pytest.approx(np.concatenate([raw[:7, spine], raw[8:10, spine]]).mean())
    assert len(H36M17.mirrored_bones) == 6
