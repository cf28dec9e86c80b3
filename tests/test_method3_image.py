"""Method 3's image CNN: the head shared with the lifter, detached fusion, crops that carry their joints, PCA
lighting, grid accuracy, a tiny training run through the CLI, its evaluation, and the bench's image part."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift import checkpoints
from bonelift.bench.common import write_suite
from bonelift.bench.method3 import SUITE, render
from bonelift.cli import main
from bonelift.config import ImageTrainConfig
from bonelift.datasets.image_prep import (
    centre_offsets,
    crop_batch,
    lighting_basis,
    pca_lighting,
    resized_side,
    rgb_statistics,
    select_images,
)
from bonelift.datasets.images import ImageSet, load_image_set
from bonelift.errors import BoneliftError, DataError
from bonelift.evaluate import evaluate
from bonelift.evaluation import evaluate_image_model
from bonelift.geometry import to_crop
from bonelift.metrics import grid_accuracy
from bonelift.models import ImageModelConfig, ModelConfig, build_model
from bonelift.models.method3 import Method3Head, Method3ImageNet, Method3Lifter, trunk_side
from bonelift.pipeline.lifters import load_lifter
from bonelift.skeletons import H36M17
from bonelift.training import ImageTrainer
from tests.conftest import REST_POSE

REPO = Path(__file__).resolve().parents[1]
SIDE = 32  # network input of the tiny runs; stored crops are resized_side(SIDE) = 36 px, so no resize happens


def _image_net(**options) -> Method3ImageNet:
    cfg = ImageModelConfig(image_size=SIDE, conv_width=0.25, fc_width=32, dropout=0.0, options=options)
    return build_model(cfg)


def _image_set(n: int, subjects: tuple[str, ...], seed: int = 0, size: int = 36) -> ImageSet:
    """n random crops of jittered rest poses, two actions and two cameras, consecutive frames within a clip."""
    rng = np.random.default_rng(seed)
    poses = (REST_POSE - REST_POSE[0])[None] + rng.normal(0, 0.03, (n, 17, 3))
    poses[:, 0] = 0.0
    joints2d = 0.5 + poses[..., [0, 2]] * np.array([0.4, -0.4])  # a front view filling the crop
    return ImageSet(images=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                    joints2d=joints2d.astype(np.float32), poses=poses.astype(np.float32), layout=H36M17,
                    subject=np.array([subjects[i % len(subjects)] for i in range(n)]),
                    action=np.array(["Walking" if i % 4 < 2 else "Eating" for i in range(n)]),
                    camera=np.array(["54138969" if i % 2 else "55011271" for i in range(n)]),
                    frame=np.arange(n) // 4, source="render")


# ----- the network and the shared head

def test_trunk_side_matches_the_conv_layers() -> None:
    for side in (32, 33, 64, 71, 112, 225):
        net = build_model(ImageModelConfig(image_size=side, conv_width=0.1, fc_width=8)).eval()
        with torch.no_grad():
            maps = net.trunk(torch.zeros(1, 3, side, side))
        assert maps.shape[-2:] == (trunk_side(side), trunk_side(side))
    assert trunk_side(225) == 7 and tuple(build_model(ImageModelConfig(image_size=64)).trunk[0][0].weight.shape) == (
        48, 3, 7, 7)
    with pytest.raises(BoneliftError, match="too small"):
        trunk_side(8)


def test_image_net_3d_loss_sends_no_gradient_into_the_2d_part() -> None:
    torch.manual_seed(0)
    net = _image_net(cls2d=True, multi_root=True)
    crops = torch.rand(6, SIDE, SIDE, 3) * 255
    out = net(crops)
    l3d = net.loss(out, torch.randn(6, 17, 3) * 0.2)["multi_root"]
    head = net.head
    wanted = [out["logits2d"], head.fc1_2d[0].weight, head.fc2_2d.weight, head.fc_probs[0].weight,
              net.trunk[0][0].weight]
    grads = torch.autograd.grad(l3d, wanted, allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0.0 for g in grads[:3])
    assert all(float(g.abs().sum()) > 0 for g in grads[3:])  # the fusion layer and the shared conv layers learn
    net.eval()
    before = net(crops)["pose"]
    with torch.no_grad():
        head.fc2_2d.weight.add_(torch.randn_like(head.fc2_2d.weight))
    assert not torch.allclose(before, net(crops)["pose"])  # ... yet the 3D output reads the 2D probabilities


def test_output_layers_start_small_on_the_image_net_only() -> None:
    """out_std: the image CNN's output layers start at N(0, 0.01²); the lifter keeps its He-initialised ones."""
    net = _image_net(multi_root=True)
    for layer in (net.head.fc2_2d, *net.head.fc2_3d):
        w, b = layer.weight.detach(), layer.bias.detach()
        assert float(w.std()) == pytest.approx(0.01, rel=0.1) and float(b.abs().max()) == 0
    lifter = build_model(ModelConfig(name="method3", input_layout="mpii16", hidden=64, options={"multi_root": True}))
    assert float(lifter.head.fc2_3d[0].weight.detach().std()) == pytest.approx((2 / 64) ** 0.5, rel=0.1)
    with pytest.raises(BoneliftError, match="out_std"):
        _image_net(out_std=-1)


def test_shared_head_gives_identical_results_for_both_trunks() -> None:
    """One head class behind both trunks: given the same features and weights, outputs and losses agree."""
    torch.manual_seed(1)
    opts = {"cls2d": True, "multi_root": True}
    lifter = build_model(ModelConfig(name="method3", input_layout="mpii16", hidden=32, blocks=1, dropout=0.0,
                                     max_norm=False, options=opts)).double().eval()
    net = _image_net(**opts).double().eval()
    assert type(lifter.head) is type(net.head) is Method3Head
    poses = (torch.from_numpy(REST_POSE - REST_POSE[0]) + 0.03 * torch.randn(5, 17, 3, dtype=torch.float64))
    poses[:, 0] = 0
    inputs = np.random.default_rng(0).normal(size=(5, 16, 2))
    lifter.normalizer.fit(inputs, poses[:, lifter.config.out_joints].numpy())
    net.fit(np.full(3, 120.0), np.full(3, 60.0), poses.numpy())
    net.head.load_state_dict(lifter.head.state_dict())
    feats = torch.randn(5, 32, dtype=torch.float64)
    lifter.features = lambda x: feats  # both trunks emit the same features
    net.features = lambda x: feats
    a = lifter(torch.from_numpy(inputs).flatten(1))
    b = net(torch.zeros(5, SIDE, SIDE, 3, dtype=torch.float64))
    for key in ("roots", "logits2d"):
        torch.testing.assert_close(a[key], b[key])
    torch.testing.assert_close(lifter.to_metric(a["pose"]), b["pose"])
    gt2d = torch.from_numpy(inputs[:, :1].repeat(17, 1)) + 0.01 * torch.randn(5, 17, 2, dtype=torch.float64)
    la = lifter.loss(a, lifter.target(poses), gt2d=gt2d, epoch=20)
    lb = net.loss(b, poses, to_crop(gt2d, a["crop"]), epoch=20)
    for key in ("total", "multi_root", "cls2d"):
        torch.testing.assert_close(la[key], lb[key])


def test_lifter_checkpoints_from_before_the_shared_head_still_load() -> None:
    lifter = build_model(ModelConfig(name="method3", input_layout="mpii16", hidden=16, blocks=1,
                                     options={"cls2d": True})).eval()
    legacy = {k.removeprefix("head."): v for k, v in lifter.state_dict().items() if "target_" not in k}
    assert "fc1_2d.0.weight" in legacy
    fresh = build_model(lifter.config).eval()
    fresh.load_state_dict(legacy)
    x = torch.randn(3, lifter.in_dim)
    torch.testing.assert_close(fresh(x)["pose"], lifter(x)["pose"])
    assert isinstance(fresh, Method3Lifter)


# ----- data preparation: crops, PCA lighting, grid accuracy

def test_random_crops_keep_each_joint_on_its_pixel(tmp_path: Path) -> None:
    """A bright pixel at a joint's position lies under that joint in every training crop the trainer makes."""
    n, stored = 12, resized_side(SIDE)
    data = _image_set(n, ("S1",))
    rng = np.random.default_rng(3)
    data.images[:] = 0
    px = rng.integers(stored - SIDE, SIDE, (n, 2))  # inside every possible crop
    data.images[np.arange(n), px[:, 1], px[:, 0]] = 255
    data.joints2d[:, 13] = (px + 0.5) / stored  # the left wrist sits on the bright pixel
    cfg = ImageTrainConfig(train_images="unused.npz", train_subjects=("S1",), test_subjects=("S1",), color_aug=0.0,
                           epochs=1, device="cpu", out_dir="", model=ImageModelConfig(image_size=SIDE, conv_width=0.25,
                                                                                       fc_width=8))
    trainer = ImageTrainer(cfg, progress=False, data=(data, data))
    torch.manual_seed(0)
    seen = set()
    for _ in range(3):
        crops, joints, _ = trainer.batch(torch.arange(n))
        cols, rows = np.floor(joints[:, 13].numpy() * SIDE).astype(int).T
        assert np.all(crops.numpy()[np.arange(n), rows, cols] == 255)
        assert int((crops.numpy() == 255).sum()) == 3 * n  # one bright pixel (three channels) per crop
        seen.add(tuple(cols - px[:, 0]))
    assert len(seen) > 1  # the crops do move
    crops, joints = crop_batch(torch.from_numpy(data.images), torch.from_numpy(data.joints2d),
                               centre_offsets(n, stored, SIDE), SIDE)
    np.testing.assert_allclose(joints.numpy(), (data.joints2d * stored - 2) / SIDE, atol=1e-6)  # centre: offset 2


def test_pca_lighting_shifts_colour_only() -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(40, 200, (6, 10, 10, 3), dtype=np.uint8)
    images[..., 1] = images[..., 0] // 2 + 30  # correlated channels
    mean, cov = rgb_statistics(images)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0))
    vec, std = lighting_basis(cov)
    np.testing.assert_allclose(vec @ np.diag(std**2) @ vec.T, cov, atol=1e-8)
    vec_t, std_t = torch.from_numpy(vec).float(), torch.from_numpy(std).float()
    x = torch.from_numpy(images).float()
    out = pca_lighting(x, vec_t, std_t, 0.1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    shift = (out - x).reshape(6, -1, 3)
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))  # one RGB offset per image
    assert float(shift.abs().max()) > 0.1 and not torch.allclose(shift[0, 0], shift[1, 0])
    u8 = pca_lighting(torch.from_numpy(images), vec_t, std_t, 1.0, torch.Generator().manual_seed(0))
    assert u8.dtype == torch.uint8 and u8.shape == x.shape and not torch.equal(u8, torch.from_numpy(images))
    torch.testing.assert_close(pca_lighting(x, vec_t, std_t, 0.0), x)


def test_grid_accuracy_on_hand_made_cells() -> None:
    g = 4
    joints = np.array([[[0.1, 0.1], [0.6, 0.1], [0.9, 0.9]], [[0.9, 0.9], [1.2, -0.1], [0.1, 0.9]]])
    # true cells: 0, 2 (column 2, row 0), 15 | 15, 3 (outside: nearest border cell), 12
    cells = np.array([[0, 7, 15], [10, 3, 0]])  # hit, neighbour, hit | neighbour, hit, miss by three rows
    assert grid_accuracy(cells, joints, g) == pytest.approx(300 / 6)
    assert grid_accuracy(cells, joints, g, within=1) == pytest.approx(500 / 6)
    assert np.isnan(grid_accuracy(np.zeros((0, 3), int), np.zeros((0, 3, 2)), g))


# ----- training, checkpoint, evaluation and the bench

def test_tiny_training_writes_a_checkpoint_that_rebuilds_and_evaluates(tmp_path: Path) -> None:
    path = _image_set(24, ("S1", "S9")).save(tmp_path / "set.npz")
    run = tmp_path / "run"
    assert main(["train-image", "--train-images", str(path), "--train-subjects", "S1", "--test-subjects", "S9",
                 "--epochs", "1", "--batch-size", "8", "--crop-size", str(SIDE), "--conv-width", "0.25",
                 "--fc-width", "16", "--option", "cls2d=true", "--option", "multi_root=true", "--device", "cpu",
                 "--eval-stride", "1", "--out", str(run)]) == 0
    model, config, ckpt = checkpoints.rebuild(run / "last.pt", kind="image")
    assert isinstance(model, Method3ImageNet) and isinstance(config, ImageTrainConfig)
    assert (config.model.image_size, config.model.options, config.optimizer) == (SIDE, {"cls2d": True,
                                                                                        "multi_root": True}, "sgd")
    assert len(ckpt["history"]) == 1 and np.isfinite(ckpt["history"][0]["p1_mm"])
    assert float(model.pixel_std.min()) > 1 and float(model.mean_bones.min()) > 0  # fitted on the training set
    assert main(["evaluate", str(run / "last.pt"), "--images", str(path), "--device", "cpu",
                 "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval.json").read_text())
    assert set(results["p1"]) >= {"Walking", "Eating", "average"} and results["frames"] == 12
    assert 0 <= results["grid_acc_pct"] <= results["grid_acc1_pct"] <= 100
    direct = evaluate_image_model(model, select_images(load_image_set(path), ("S9",)), progress=False)
    assert direct["p1"]["average"] == pytest.approx(results["p1"]["average"], rel=1e-5)
    assert "render images" in (tmp_path / "eval.md").read_text()
    with pytest.raises(DataError, match="--images"):
        evaluate(run / "last.pt", device="cpu", progress=False)
    with pytest.raises(DataError, match="image network"):
        load_lifter(run / "last.pt")


def test_bad_image_runs_are_clear_errors(tmp_path: Path) -> None:
    path = _image_set(8, ("S1",)).save(tmp_path / "set.npz")
    base = dict(train_images=str(path), device="cpu", out_dir=str(tmp_path / "run"),
                model=ImageModelConfig(image_size=SIDE, conv_width=0.25, fc_width=8))
    with pytest.raises(BoneliftError, match="--train-images is required"):
        ImageTrainConfig(**{**base, "train_images": ""}).validate()
    with pytest.raises(BoneliftError, match="too small"):
        ImageTrainConfig(**{**base, "model": ImageModelConfig(image_size=12)}).validate()
    with pytest.raises(DataError, match="unknown Human3.6M action"):
        ImageTrainConfig(**base, actions=("Juggling",)).validate()
    with pytest.raises(DataError, match=r"set\.npz: no image of subjects S9, S11 .*holds subjects S1"):
        ImageTrainer(ImageTrainConfig(**base, train_subjects=("S1",)), progress=False)
    with pytest.raises(BoneliftError, match="unknown option"):
        ImageTrainConfig(**{**base, "model": ImageModelConfig(options={"crop_margin": 1.1})}).validate()


def test_bench_image_part_writes_rows_and_keeps_the_2d_input_rows(tmp_path: Path) -> None:
    report = tmp_path / "docs" / "method3.md"
    report.parent.mkdir()
    # The SH part of the repository's document (its image part, if any, left out).
    before = json.loads((REPO / "docs" / "results" / "method3.json").read_text())
    before["rows"] = [r for r in before["rows"] if r.get("network") != "method3-image"]
    before.pop("parts", None)
    report.with_suffix(".json").write_text(json.dumps(before))
    train = _image_set(16, ("S1", "S5")).save(tmp_path / "train.npz")
    test = _image_set(8, ("S9",), seed=1).save(tmp_path / "test.npz")
    argv = ["bench", "method3", "--parts", "image", "--train-images", str(train), "--test-images", str(test),
            "--epochs", "1", "--batch-size", "8", "--crop-size", str(SIDE), "--conv-width", "0.25", "--fc-width", "16",
            "--device", "cpu", "--out", str(tmp_path / "runs"), "--report", str(report),
            "--option", "lambda_2d_epoch=2"]
    assert main(argv) == 0
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["rows"][: len(before["rows"])] == before["rows"]  # the SH rows and their header are kept
    assert all(doc[k] == before[k] for k in ("command", "machine", "date", "budget"))
    image = doc["rows"][len(before["rows"]):]
    assert [r["variant"] for r in image] == ["image-regression", "image-multiroot", "image-cls2d",
                                             "image-cls2d+multiroot", "image-regression-x6"]
    for r in image:
        assert r["network"] == "method3-image" and r["model"] == r["variant"]
        assert r["input"] == "render" and r["epochs"] == 1
        assert np.isfinite(r["p1_mm"]) and np.isfinite(r["p2_mm"]) and 0 <= r["grid_acc_pct"] <= 100
        assert set(r["p1_per_action_mm"]) == {"Walking", "Eating"}
    assert [r["options"] for r in image] == [{"lambda_2d_epoch": 2}, {"lambda_2d_epoch": 2, "multi_root": True},
                                             {"lambda_2d_epoch": 2, "cls2d": True},
                                             {"lambda_2d_epoch": 2, "cls2d": True, "multi_root": True},
                                             {"lambda_2d_epoch": 2, "lambda_3d": 3.0}]
    assert "M3 image CNN, 2D-cls" in report.read_text() and "3D loss x6" in report.read_text()
    b = doc["parts"]["image"]["budget"]
    assert (b["optimizer"], b["lr"], b["lr_decay"], b["lr_step_epochs"], b["model"]["image_size"]) == (
        "sgd", 0.01, 0.5, 4, SIDE)
    text = report.read_text()
    assert "Table 2 ablation on 2D input" in text and "the image CNN on ImageSets" in text
    assert "functional check of the image path" in text and "117.3 mm" in text
    seconds = [r["train_seconds"] for r in image]
    assert main(argv) == 0  # rows scored under the same budget are reused
    again = json.loads(report.with_suffix(".json").read_text())
    assert [r["train_seconds"] for r in again["rows"] if r.get("network") == "method3-image"] == seconds
    # A later 2D-input run keeps the image part's header and rows.
    sh = write_suite(report, SUITE, "bonelift bench method3", "cpu", before["budget"], before["rows"][:1], render)
    # against the file as the rerun left it: the rerun rewrites the part's header date, and the two runs can fall in
    # different minutes (CI, 2026-12-03 18:18 / 18:19)
    assert sh["parts"]["image"] == again["parts"]["image"] and len(sh["rows"]) == len(again["rows"])
