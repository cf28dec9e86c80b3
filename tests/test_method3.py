"""Method 3: soft grid labels (eqs. 1-3), detached fusion, multi-root regression on unit-norm targets, the
scale recovery, the published schedule, and the Table 2 bench rows end to end on synthetic Human3.6M."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.bench import method3 as bench3
from bonelift.cli import main
from bonelift.config import TrainConfig
from bonelift.datasets import flatten_frames, load_h36m
from bonelift.geometry import (
    grid_centres,
    person_crop,
    soft_grid_labels,
    to_crop,
    torso_scale,
    unit_frobenius,
)
from bonelift.losses import soft_cross_entropy
from bonelift.models import ModelConfig, build_model
from bonelift.models.method3 import Method3Lifter
from bonelift.skeletons import H36M17
from bonelift.training import train
from tests.conftest import REST_POSE, make_h36m

G = 16


def _model(**options) -> Method3Lifter:
    cfg = ModelConfig(name="method3", input_layout="mpii16", output_layout="h36m17", hidden=32, dropout=0.0,
                      max_norm=False, options=options)
    return build_model(cfg)


def _skeleton_poses(n: int, seed: int) -> np.ndarray:
    """(n, 17, 3) pelvis-relative poses of one skeleton (the rest pose rotated): every bone length equal."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        p = (REST_POSE - REST_POSE[0]) @ q.T
        out.append(p)
    return np.asarray(out, np.float32)


# ----- eqs. 1-3: soft labels and the cross entropy

def test_soft_labels_sum_to_one_and_pick_two_to_four_nearest_cells() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(1.0 / G, 1 - 1.0 / G, (500, 2))  # interior: every neighbour cell exists
    labels = soft_grid_labels(pts, G)
    np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-9)
    count = (labels > 0).sum(-1)
    assert count.min() >= 2 and count.max() <= 4 and (count == 4).any() and (count == 2).any()
    centres = grid_centres(G)
    d = np.linalg.norm(pts[:, None] - centres, axis=-1)
    nearest = d.argmin(-1)
    assert np.array_equal(labels.argmax(-1), nearest)  # the closest cell gets the most mass
    chosen = labels > 0
    assert np.all(d[chosen] < 1.0 / G) and np.all(d[~chosen] >= 1.0 / G)  # eq. 2: within one cell width
    # eq. 1: inversely proportional to the distance, among the chosen cells
    i = 0
    w = labels[i][chosen[i]] * d[i][chosen[i]]
    np.testing.assert_allclose(w, w[0], rtol=1e-9)


def test_soft_labels_one_hot_at_a_cell_centre_and_torch_matches_numpy() -> None:
    centres = grid_centres(G)
    labels = soft_grid_labels(centres[[0, 37, 255]], G)
    assert np.array_equal(labels.argmax(-1), [0, 37, 255]) and np.all(labels.max(-1) == 1.0)
    assert np.all((labels > 0).sum(-1) == 1)
    pts = np.random.default_rng(1).uniform(-0.2, 1.2, (20, 17, 2))  # outside points are clamped onto the crop
    t = soft_grid_labels(torch.from_numpy(pts), G).numpy()
    np.testing.assert_allclose(t, soft_grid_labels(pts, G), atol=1e-12)
    np.testing.assert_allclose(t.sum(-1), 1.0, atol=1e-9)


def test_crop_frame_and_cross_entropy() -> None:
    pts = torch.tensor([[[0.0, 0.0], [2.0, 1.0]]])
    crop = person_crop(pts, margin=1.0)
    torch.testing.assert_close(crop, torch.tensor([[1.0, 0.5, 2.0]]))
    torch.testing.assert_close(to_crop(pts, crop), torch.tensor([[[0.0, 0.25], [1.0, 0.75]]]))
    labels = soft_grid_labels(torch.rand(3, 17, 2, dtype=torch.float64), G)
    logits = torch.randn(3, 17, G * G, dtype=torch.float64, requires_grad=True)
    expected = -(labels * torch.log(torch.softmax(logits, -1))).sum() / 3
    torch.testing.assert_close(soft_cross_entropy(logits, labels), expected)
    # minimal where the softmax equals the soft labels: the gradient vanishes there
    at_labels = torch.log(labels.clamp_min(1e-30)).requires_grad_(True)
    (g,) = torch.autograd.grad(soft_cross_entropy(at_labels, labels), at_labels)
    assert float(g.abs().max()) < 1e-12


# ----- Sec. 3.2: fusion without gradient into the 2D part

def test_3d_loss_sends_no_gradient_into_the_2d_part() -> None:
    torch.manual_seed(0)
    model = _model(cls2d=True, multi_root=True)
    out = model(torch.randn(8, model.in_dim))
    l3d = model.loss(out, torch.randn(8, model.out_dim))["multi_root"]
    two_d = [model.head.fc1_2d[0].weight, model.head.fc2_2d.weight]
    grads = torch.autograd.grad(l3d, [out["logits2d"], *two_d, model.head.fc_probs[0].weight], allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0.0 for g in grads[:3])
    assert grads[3] is not None and float(grads[3].abs().sum()) > 0  # the fusion layer itself learns
    # ... yet the 3D output reads the 2D probabilities
    model.eval()
    x = torch.randn(4, model.in_dim)
    before = model(x)["pose"]
    with torch.no_grad():
        model.head.fc2_2d.weight.add_(torch.randn_like(model.head.fc2_2d.weight))
    assert not torch.allclose(before, model(x)["pose"])
    plain = _model(multi_root=True).eval()
    before = plain(x)["pose"]
    with torch.no_grad():
        plain.head.fc2_2d.weight.add_(torch.randn_like(plain.head.fc2_2d.weight))
    torch.testing.assert_close(before, plain(x)["pose"])  # without cls2d the 2D part only trains the trunk


def test_2d_loss_trains_the_2d_part_and_follows_the_schedule() -> None:
    torch.manual_seed(1)
    model = _model(cls2d=True)
    out = model(torch.randn(4, model.in_dim))
    gt2d = torch.randn(4, 17, 2) * 0.2
    early = model.loss(out, torch.randn(4, model.out_dim), gt2d=gt2d, epoch=15)
    late = model.loss(out, torch.randn(4, model.out_dim), gt2d=gt2d, epoch=16)
    assert (model.head.lambda_2d(0), model.head.lambda_2d(15), model.head.lambda_2d(16)) == (0.1, 0.1, 0.01)
    torch.testing.assert_close(early["total"] - 0.5 * early["multi_root"], 0.1 * early["cls2d"])
    torch.testing.assert_close(late["total"] - 0.5 * late["multi_root"], 0.01 * late["cls2d"])
    (g,) = torch.autograd.grad(early["cls2d"], model.head.fc2_2d.weight)
    assert float(g.abs().sum()) > 0


# ----- Sec. 3.3 and 4: multi-root regression of unit-norm shapes, scale recovery

def _fitted(model: Method3Lifter, poses: np.ndarray) -> None:
    inputs = np.random.default_rng(2).normal(size=(len(poses), 16, 2)).astype(np.float32)
    model.fit_statistics(inputs, poses)


def test_exact_per_root_targets_recombine_to_the_ground_truth() -> None:
    poses = _skeleton_poses(6, seed=3)
    model = _model(multi_root=True).eval()
    _fitted(model, poses)
    gt = torch.from_numpy(poses).double()
    model.double()
    shape, _ = unit_frobenius(gt)
    roots, others = model.head.roots, model.head.others
    exact = shape[:, others] - shape[:, roots][:, :, None]  # (B, R, J-1, 3)
    torch.testing.assert_close(model.metric_pose(exact), gt, atol=1e-6, rtol=0)
    target = model.target(gt)
    assert float(model.loss({"roots": exact}, target)["total"]) < 1e-20
    assert [H36M17.joints[r] for r in roots] == ["Hip", "Neck/Nose", "LElbow", "RElbow", "LKnee", "RKnee"]


def test_standardised_outputs_map_back_to_the_unit_norm_targets() -> None:
    """Option zscore_3d: each output unit regresses its per-root target standardised by the training statistics,
    so the standardised targets give the exact shape and the loss is the squared error in those units."""
    poses = _skeleton_poses(40, seed=5) * np.random.default_rng(0).uniform(0.8, 1.2, (40, 1, 1)).astype(np.float32)
    model = _model(multi_root=True).eval().double()
    _fitted(model, poses)
    head = model.head
    shape = unit_frobenius(torch.from_numpy(poses).double())[0]
    exact = shape[:, head.others] - shape[:, head.roots][:, :, None]
    torch.testing.assert_close(head.target_mean, exact.mean(0))
    torch.testing.assert_close(head.target_std, exact.std(0).clamp_min(1e-6))
    z = (exact - head.target_mean) / head.target_std
    assert abs(float(z.mean())) < 1e-9 and abs(float(z.std()) - 1) < 0.05
    wrong = exact + 0.01
    loss = float(model.loss({"roots": wrong}, model.target(torch.from_numpy(poses).double()))["multi_root"])
    assert loss == pytest.approx(float(((0.01 / head.target_std) ** 2).sum()), rel=1e-6)
    plain = _model(multi_root=True, zscore_3d=False).double()
    _fitted(plain, poses)
    assert float(plain.head.target_std.min()) == 1.0 and float(plain.head.target_mean.abs().max()) == 0.0


def test_frobenius_normalisation_and_torso_scale_invert_each_other() -> None:
    poses = _skeleton_poses(10, seed=4)
    shape, scale = unit_frobenius(poses)
    np.testing.assert_allclose(shape.mean(-2), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(shape.reshape(10, -1), axis=-1), 1.0, atol=1e-6)
    model = _model()
    _fitted(model, poses)
    mean_bones = model.normalizer.mean_bones.numpy()
    s = torso_scale(shape, mean_bones, H36M17)
    np.testing.assert_allclose(s, scale, rtol=1e-5)
    restored = shape * s[:, None, None]
    np.testing.assert_allclose(restored - restored[:, :1], poses, atol=1e-5)


# ----- training: GT 2D per sample, SGD and the staircase schedule, the Table 2 bench rows

def test_flatten_frames_gt2d_is_the_projected_ground_truth(tmp_path: Path) -> None:
    make_h36m(tmp_path / "h36m", ["S1"], frames=12)
    gt_seqs = load_h36m(tmp_path / "h36m", "gt", ["S1"])
    frames = flatten_frames(gt_seqs, stride=3, gt2d=True)
    np.testing.assert_allclose(frames["gt2d"], frames["inputs"], atol=1e-5)  # GT keypoints are that projection
    assert frames["gt2d"].shape == (len(frames["inputs"]), 17, 2)
    assert "gt2d" not in flatten_frames(gt_seqs, stride=3)


def test_trainer_uses_sgd_staircase_and_feeds_gt2d(tmp_path: Path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, ["S1", "S9"], frames=24)
    cfg = TrainConfig(data_root=str(root), keypoints="sh", train_subjects=("S1",), test_subjects=("S9",), stride=1,
                      epochs=2, batch_size=32, lr=0.01, optimizer="sgd", lr_decay=0.5, lr_step_epochs=1,
                      device="cpu", out_dir=str(tmp_path / "run"),
                      model=ModelConfig(name="method3", hidden=32, blocks=1, dropout=0.3, max_norm=False,
                                        options={"cls2d": True, "multi_root": True}))
    trainer = train(cfg, progress=False)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.param_groups[0]["momentum"] == 0.9
    assert [round(r["lr"], 6) for r in trainer.history] == [0.005, 0.0025]
    assert trainer.gt2d is not None and trainer.gt2d.shape == (len(trainer.inputs), 17, 2)
    losses = trainer.batch_losses(torch.arange(8))
    assert {"cls2d", "multi_root"} <= set(losses) and torch.isfinite(losses["total"])
    assert torch.isfinite(trainer.model.normalizer.mean_bones).all() and trainer.model.normalizer.mean_bones.min() > 0


def test_adam_stays_the_default_optimiser(tmp_path: Path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, ["S1", "S9"], frames=8)
    cfg = TrainConfig(data_root=str(root), keypoints="sh", train_subjects=("S1",), test_subjects=("S9",), epochs=1,
                      batch_size=16, stride=1, device="cpu", out_dir=str(tmp_path / "run"),
                      model=ModelConfig(hidden=16))
    trainer = train(cfg, progress=False)
    assert isinstance(trainer.optimizer, torch.optim.Adam) and trainer.gt2d is None


def test_each_component_alone_on_both_parts_and_the_loss_scale_control() -> None:
    assert [e.key for e in bench3.entries(None, "image")] == ["image-regression", "image-multiroot", "image-cls2d",
                                                             "image-cls2d+multiroot", "image-regression-x6"]
    sh = {e.key: e for e in bench3.entries(None, "sh", ("Walking",))}
    image = {e.key: e for e in bench3.entries(None, "image")}
    for key in ("regression", "multiroot", "cls2d", "cls2d+multiroot"):  # the image rows switch what the sh rows do
        assert image[f"image-{key}"].options == sh[f"{key}@Walking"].options
    shared = {"lambda_2d_epoch": 3}
    assert bench3.row_options(sh["regression-x6@Walking"], shared) == {"lambda_2d_epoch": 3, "lambda_3d": 3.0}
    assert bench3.row_options(image["image-regression-x6"], {"lambda_3d": 0.25}) == {"lambda_3d": 1.5}
    assert bench3.row_options(sh["multiroot@Walking"], shared) == {"lambda_2d_epoch": 3, "multi_root": True}
    assert bench3.row_options(sh["regression-g6@Walking"], shared) == {"lambda_2d_epoch": 3, "grad_3d_shared": 6.0}


def test_six_roots_weigh_the_3d_loss_like_the_x6_control() -> None:
    """What `regression-x6` controls for: eq. 6 sums the roots' 3D losses, so at initialisation six roots' 3D loss is
    ~6x one root's; the x6 row weights one root's 3D loss by exactly 6. (The trunk's gradient norm grows less with
    six roots while their heads are random and their gradients partly cancel.)"""
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(256, 17, 3)).astype(np.float32)
    poses -= poses[:, :1]
    inputs = rng.normal(size=(256, 16, 2)).astype(np.float32)
    three_d, total = {}, {}
    for name, options in (("one", {}), ("six", {"multi_root": True}), ("x6", {"lambda_3d": 3.0})):
        torch.manual_seed(0)
        model = _model(**options)
        model.fit_statistics(inputs, poses)
        out = model(model.normalizer.norm_in(torch.from_numpy(inputs)))
        losses = model.loss(out, model.target(torch.from_numpy(poses)))
        three_d[name], total[name] = float(losses["multi_root"].detach()), float(losses["total"].detach())
    assert three_d["x6"] == three_d["one"] and total["x6"] == pytest.approx(6 * total["one"])
    assert 4.5 < three_d["six"] / three_d["one"] < 7.5


def test_grad_3d_shared_scales_the_shared_layers_3d_gradient_only() -> None:
    """`grad_3d_shared` = k (the `regression-g6` row): the same outputs and losses, k x the 3D loss's gradient in
    fc1_3d and the trunk, the output layer's gradient unchanged, the 2D part's untouched."""
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(64, 17, 3)).astype(np.float32)
    poses -= poses[:, :1]
    inputs = rng.normal(size=(64, 16, 2)).astype(np.float32)
    grads, outs = {}, {}
    for k in (1.0, 6.0):
        torch.manual_seed(0)
        model = _model(grad_3d_shared=k).eval()  # no dropout: the two passes see the same network
        model.fit_statistics(inputs, poses)
        out = model(model.normalizer.norm_in(torch.from_numpy(inputs)))
        model.loss(out, model.target(torch.from_numpy(poses)))["multi_root"].backward()
        outs[k] = out["roots"].detach()
        grads[k] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert torch.equal(outs[1.0], outs[6.0])
    head, shared = "head.fc2_3d.0.weight", "head.fc1_3d.0.weight"
    assert torch.allclose(grads[6.0][head], grads[1.0][head])
    trunk = next(n for n in grads[1.0] if not n.startswith("head."))
    for name in (shared, trunk):  # float sums in another order: compare the whole tensor
        assert float(torch.linalg.norm(grads[6.0][name] - 6 * grads[1.0][name])) < 1e-4 * float(
            torch.linalg.norm(6 * grads[1.0][name]))
    assert not any(n.startswith("head.fc1_2d") or n.startswith("head.fc2_2d") for n in grads[6.0])


@pytest.mark.slow
def test_bench_method3_rows_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, ["S1", "S5", "S6", "S7", "S8", "S9", "S11"], frames=8)  # the protocol's subjects
    report = tmp_path / "docs" / "method3.md"
    main(["bench", "method3", "--data", str(root), "--epochs", "1", "--stride", "2", "--batch-size", "32",
          "--hidden", "16", "--blocks", "1", "--device", "cpu", "--out", str(tmp_path / "runs"),
          "--report", str(report), "--option", "lambda_2d_epoch=2"])
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["suite"] == "method3"
    assert [r["variant"] for r in doc["rows"]] == ["regression", "multiroot", "cls2d", "cls2d+multiroot",
                                                   "regression-x6", "regression-g6"]
    assert doc["rows"][4]["options"] == {"lambda_2d_epoch": 2, "lambda_3d": 3.0}
    assert {r["input"] for r in doc["rows"]} == {"sh"} and {r["model"] for r in doc["rows"]} == {"method3"}
    assert all(np.isfinite(r["p1_mm"]) and r["epochs"] == 1 for r in doc["rows"])
    assert doc["rows"][3]["options"] == {"lambda_2d_epoch": 2, "cls2d": True, "multi_root": True}
    assert doc["rows"][0]["options"] == {"lambda_2d_epoch": 2}
    b = doc["budget"]
    assert (b["optimizer"], b["lr"], b["lr_decay"], b["lr_step_epochs"], b["weight_decay"]) == ("sgd", 0.01, 0.5, 4,
                                                                                                0.001)
    assert b["model"]["dropout"] == 0.3 and b["model"]["max_norm"] is False
    assert "published cls2d+multiroot" in report.read_text()
    # One network per action (the paper's protocol): its own rows and header, the all-actions rows kept.
    main(["bench", "method3", "--data", str(root), "--epochs", "1", "--stride", "1", "--batch-size", "32",
          "--hidden", "16", "--blocks", "1", "--device", "cpu", "--out", str(tmp_path / "runs"),
          "--report", str(report), "--actions", "Walking", "--models", "regression"])
    again = json.loads(report.with_suffix(".json").read_text())
    assert [r["variant"] for r in again["rows"]] == [r["variant"] for r in doc["rows"]] + ["regression@Walking"]
    assert set(again["rows"][-1]["p1_per_action_mm"]) == {"Walking"} and again["budget"] == b
    assert again["parts"]["sh-per-action"]["budget"]["actions"] == ["Walking"]
    assert "one network per action" in report.read_text()
    with pytest.raises(Exception, match="unknown method3 rows"):
        bench3.entries("cls3d")
