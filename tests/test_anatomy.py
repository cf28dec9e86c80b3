"""Anatomical losses, skeleton fitting, TP-Net and validity reports on small synthetic poses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bonelift.config import TPNetTrainConfig
from bonelift.errors import DataError
from bonelift.evaluation import refine_sequence
from bonelift.fitting import fit_skeleton, subject_bone_lengths
from bonelift.geometry import ANGLE_TRIPLES, bend_components, bone_lengths, bone_vectors
from bonelift.losses import (
    canonical_bone_lengths,
    geometry_loss,
    illegal_angle_loss,
    symmetry_loss,
    weak_pose,
)
from bonelift.models.tpnet import TPNet, TPNetConfig
from bonelift.skeletons import H36M17
from bonelift.streaming import TPNetStream
from bonelift.training import train_tpnet
from bonelift.validity import load_predictions, validity_file

# A standing person facing the camera (x right, y down, z forward): elbows flexed forward, knees bent.
STANDING = np.array([
    [0, 0, 0], [-.13, 0, 0], [-.13, .45, -.05], [-.13, .9, .05], [.13, 0, 0], [.13, .45, -.05], [.13, .9, .05],
    [0, -.25, 0], [0, -.5, 0], [0, -.6, -.02], [0, -.7, 0], [.18, -.5, 0], [.2, -.22, .03], [.2, -.05, -.2],
    [-.18, -.5, 0], [-.2, -.22, .03], [-.2, -.05, -.2],
])


def _reverse_bend(pose: np.ndarray, limb: int) -> np.ndarray:
    """Mirror limb `limb`'s distal joint through the plane of its base, proximal and middle joints."""
    base, prox, mid, dist, _ = ANGLE_TRIPLES[limb]
    b, p, m, d = (H36M17.index(n) for n in (base, prox, mid, dist))
    n = np.cross(pose[p] - pose[b], pose[m] - pose[p])
    n /= np.linalg.norm(n)
    out = pose.copy()
    v = out[d] - out[m]
    out[d] = out[m] + v - 2 * (v @ n) * n
    return out


def _mirror(pose: np.ndarray) -> np.ndarray:
    out = pose[H36M17.flip_permutation].copy()
    out[:, 0] *= -1
    return out


def test_angle_loss_zero_for_legal_positive_for_each_reversed_limb():
    assert (bend_components(STANDING, H36M17) > 0).all()
    assert float(illegal_angle_loss(torch.tensor(STANDING)[None], H36M17)) == 0.0
    for limb in range(4):  # right elbow, left elbow, right knee, left knee
        bad = _reverse_bend(STANDING, limb)
        comp = bend_components(bad, H36M17)
        assert comp[limb] < 0 and (np.delete(comp, limb) > 0).all()
        assert float(illegal_angle_loss(torch.tensor(bad)[None], H36M17)) > 0.0


def test_symmetry_loss_zero_for_mirrored_skeleton_positive_otherwise():
    sym = 0.5 * (STANDING + _mirror(STANDING))  # exactly left/right symmetric
    assert float(symmetry_loss(torch.tensor(sym)[None], H36M17)) == pytest.approx(0.0, abs=1e-12)
    longer = sym.copy()
    longer[H36M17.index("LWrist")] += [0, 0.05, 0]
    assert float(symmetry_loss(torch.tensor(longer)[None], H36M17)) > 1e-4


def test_geometry_loss_zero_for_scaled_canonical_skeleton():
    canonical = torch.tensor(canonical_bone_lengths(STANDING[None], H36M17))
    assert float(geometry_loss(torch.tensor(1.3 * STANDING)[None], H36M17, canonical)) == pytest.approx(0.0, abs=1e-12)
    stretched = STANDING.copy()
    stretched[H36M17.index("RFoot")] += [0, 0.2, 0]
    assert float(geometry_loss(torch.tensor(stretched)[None], H36M17, canonical)) > 1e-3


def test_losses_are_differentiable_gradcheck():
    rng = np.random.default_rng(0)
    pose = torch.tensor(STANDING[None] + 0.01 * rng.standard_normal((2, 17, 3)), requires_grad=True)
    bad = torch.tensor(_reverse_bend(_reverse_bend(STANDING, 0), 3)[None], requires_grad=True)
    canonical = torch.tensor(canonical_bone_lengths(STANDING[None], H36M17) * 1.1)
    assert torch.autograd.gradcheck(lambda p: symmetry_loss(p, H36M17), (pose,))
    assert torch.autograd.gradcheck(lambda p: geometry_loss(p, H36M17, canonical), (pose,))
    assert torch.autograd.gradcheck(lambda p: illegal_angle_loss(p, H36M17), (bad,))


def test_weak_pose_keeps_2d_and_predicted_depth():
    pose = torch.tensor(STANDING[None])
    absolute = STANDING + np.array([0.1, -0.2, 4.5])
    rays = torch.tensor(absolute[None, :, :2] / absolute[None, :, 2:])  # pinhole rays of the same pose
    wp, residual = weak_pose(pose, rays, H36M17)
    assert torch.allclose(wp, pose) and residual.abs().max() < 1e-12
    assert torch.equal(wp[..., 2], pose[..., 2])


def test_skeleton_fitting_preserves_directions_and_sets_lengths():
    rng = np.random.default_rng(1)
    pose = STANDING + 0.02 * rng.standard_normal(STANDING.shape)
    target = subject_bone_lengths(STANDING[None], H36M17)
    fitted = fit_skeleton(pose, target, H36M17)
    np.testing.assert_allclose(bone_lengths(fitted, H36M17), target, atol=1e-12)
    d0, d1 = bone_vectors(pose, H36M17), bone_vectors(fitted, H36M17)
    cos = (d0 * d1).sum(-1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)
    np.testing.assert_allclose(fitted[0], pose[0])
    torch_fit = fit_skeleton(torch.tensor(pose), target, H36M17)
    np.testing.assert_allclose(torch_fit.numpy(), fitted, atol=1e-12)


def _tiny(past: int, future: int, step: int = 1) -> TPNet:
    torch.manual_seed(0)
    model = TPNet(TPNetConfig(past=past, future=future, hidden=16, layers=2, frame_step=step)).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def test_tpnet_online_uses_no_future_frames():
    model = _tiny(4, 0)
    rng = np.random.default_rng(2)
    seq = rng.standard_normal((12, 17, 3)) * 0.1
    changed = seq.copy()
    changed[7:] += 1.0  # alter frames after t = 6 only
    a = refine_sequence(model, seq)
    b = refine_sequence(model, changed)
    np.testing.assert_array_equal(a[:7], b[:7])
    assert not np.allclose(a[7:], b[7:])
    assert (a[:, 0] == 0).all()


@pytest.mark.parametrize(
    "past,future,step,length", [(4, 0, 1, 9), (3, 2, 1, 9), (4, 0, 2, 13), (3, 2, 2, 13), (3, 2, 2, 3)]
)
def test_tpnet_stream_matches_batch_with_bounded_memory(past, future, step, length):
    model = _tiny(past, future, step)
    seq = np.random.default_rng(3).standard_normal((length, 17, 3))
    batch = refine_sequence(model, seq)
    stream = TPNetStream(model)
    out = [r for pose in seq if (r := stream.push(pose)) is not None]
    assert len(stream.buffer) <= (past + future) * step + 1
    out += stream.flush()
    np.testing.assert_allclose(np.stack(out), batch, atol=1e-10)


def test_tpnet_window_takes_every_frame_step_th_pose():
    model = _tiny(3, 0, 2)
    np.testing.assert_array_equal(model.config.offsets, [-6, -4, -2, 0])
    seq = np.random.default_rng(6).standard_normal((12, 17, 3)) * 0.1
    changed = seq.copy()
    changed[[5, 7, 9]] += 1.0  # odd frames: outside the window of frame 10
    assert np.allclose(refine_sequence(model, seq)[10], refine_sequence(model, changed)[10])
    changed[8] += 1.0  # two frames back: inside it
    assert not np.allclose(refine_sequence(model, seq)[10], refine_sequence(model, changed)[10])


@pytest.mark.slow
def test_train_tpnet_reduces_noise():
    rng = np.random.default_rng(4)
    t = np.linspace(0, 6, 300)[:, None, None]
    gt = 0.2 * np.sin(t + np.arange(4)[None, :, None] * 0.3 + np.arange(3)[None, None, :])
    gt[:, 0] = 0
    noisy = gt + 0.03 * rng.standard_normal(gt.shape)
    noisy[:, 0] = 0
    config = TPNetConfig(past=4, future=0, hidden=256, joints=4)
    run = TPNetTrainConfig(model=config, stride=1, epochs=30, lr=1e-3, batch_size=32, device="cpu", out_dir="")
    model = train_tpnet(run, [noisy], [gt], progress=False)
    refined = refine_sequence(model, noisy)
    assert np.abs(refined - gt).mean() < 0.7 * np.abs(noisy - gt).mean()


def test_validity_file_reports_and_rejects_bad_input(tmp_path):
    seq = np.repeat(STANDING[None], 5, axis=0)
    bad = _reverse_bend(STANDING, 2)
    seq[0] = bad
    path = tmp_path / "pred.npz"
    np.savez(path, seq_a=seq, seq_b=seq[:3])
    report, md = validity_file(path, out=tmp_path / "report")
    assert report["frames"] == 8 and report["illegal_angles_pct"]["right knee"] == pytest.approx(200 / 8)
    assert report["symmetry"]["average"] == pytest.approx(0, abs=1e-9) and "upper arm" in md
    assert (tmp_path / "report.md").is_file()
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 17)))
    with pytest.raises(DataError):
        load_predictions(tmp_path / "bad.npz")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError):
        load_predictions(tmp_path / "trunc.npz")


def test_anatomical_objective_warmup_weak_batch_and_gradients():
    from types import SimpleNamespace

    from bonelift.errors import BoneliftError
    from bonelift.models import ModelConfig, build_model
    from bonelift.training.anatomy import AnatomicalObjective

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=16, blocks=1, dropout=0.0))
    rng = np.random.default_rng(5)
    poses = STANDING[None] + 0.02 * rng.standard_normal((32, 17, 3))
    screen = (poses[..., :2] / (5 + poses[..., 2:])).astype(np.float32)
    model.normalizer.fit(screen, poses[:, 1:])
    weights = {"geometry": 1.0, "angle": 1.0, "symmetry": 1.0, "reprojection": 1.0}
    rays = (poses[..., :2] / (5 + poses[..., 2:])).astype(np.float32)
    obj = AnatomicalObjective(weights, 2, canonical_bone_lengths(poses, H36M17), screen, rays, losses_on="all")
    trainer = SimpleNamespace(model=model, net=model, epoch=0)
    x = torch.from_numpy(screen[:8])
    xw, rays_w = obj.sample(8)
    out = model(model.normalizer.norm_in(x))
    out_w = model(model.normalizer.norm_in(xw))
    base = model.loss(out, model.target(torch.from_numpy(poses[:8]).float()))
    assert obj.add(trainer, out, out_w, rays_w, base) is base  # warm start: 3D loss only
    trainer.epoch = 2
    losses = obj.add(trainer, out, out_w, rays_w, base)
    assert {"anat_geometry", "anat_angle", "anat_symmetry", "weak_geometry", "weak_reprojection"} <= set(losses)
    extra = sum(v for k, v in losses.items() if k.startswith(("anat_", "weak_")))
    assert torch.allclose(losses["total"], base["total"] + extra)
    model.zero_grad()
    losses["weak_reprojection"].backward()
    assert model.net.head.weight.grad.abs().sum() > 0
    with pytest.raises(BoneliftError):
        AnatomicalObjective({"bogus": 1.0}, 0, canonical_bone_lengths(poses, H36M17), None)


def test_cli_validity_command(tmp_path, capsys):
    from bonelift.cli import main

    np.savez(tmp_path / "pred.npz", walk=np.repeat(STANDING[None], 4, axis=0) * 1000.0, layout="h36m17")
    assert main(["validity", str(tmp_path / "pred.npz"), "--unit", "mm"]) == 0
    assert "normal range of motion" in capsys.readouterr().out
    assert main(["validity", str(tmp_path / "missing.npz")]) == 2
