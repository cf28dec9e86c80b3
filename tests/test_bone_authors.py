"""Method 5's readings of the authors' code (issue 23 item 3): each a typed option whose default keeps the
earlier behaviour bit for bit; synthetic data only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bonelift import geometry
from bonelift.config import VideoTrainConfig
from bonelift.errors import OptionError
from bonelift.geometry import mirror
from bonelift.losses import mpjpe_loss
from bonelift.models.bone_video import BoneVideoLifter
from bonelift.skeletons import H36M17
from bonelift.training import VideoTrainer, augment_bone_lengths
from bonelift.training.video import bn_momentum, epoch_decay
from tests.test_video import _camera, _config, _sequences

torch.set_num_threads(1)

# Two-epoch tiny runs (seed 3) of the code before these options existed: mean loss per epoch and the sum of
# every floating-point state entry (weights and batch-norm statistics) after the run.
BEFORE = {
    "bone": ([5.812808990478516, 5.484710693359375], 242.44473070604727),
    "tcn": ([1.1243926286697388, 1.0968427658081055], 90.53841480211122),
}
DEFAULTS = {"bone": {"length_frames": 6, "aug_joint_loss": False, "aug_trajectory": "own", "att_abs": False,
                     "bn_decay": "all"}, "tcn": {}}


def _trainer(name: str = "bone", seqs=None, confidence: bool = False, **train) -> VideoTrainer:
    opts = {"length_frames": 6} if name == "bone" else {}
    opts.update(train.pop("options", {}))
    model = replace(_config(name, **opts), confidence=confidence)
    run = {"batch_size": 32, "stride": 2, "epochs": 2, "device": "cpu", "out_dir": "", "keypoints": "sh", "seed": 3}
    cfg = VideoTrainConfig(model=model, **{**run, **train})
    seqs = seqs or _sequences(3, 40)
    return VideoTrainer(cfg, progress=False, splits=(seqs, seqs[:1]))


@pytest.mark.parametrize("name", ["bone", "tcn"])
def test_default_path_is_unchanged(name: str) -> None:
    trainer = _trainer(name, options=DEFAULTS[name], flip_mode="coin", lr_final_as_epochs=0)
    trainer.monitor = lambda: None  # type: ignore[method-assign]
    history = trainer.fit()
    state = sum(float(v.double().sum()) for v in trainer.model.state_dict().values() if v.is_floating_point())
    losses, total = BEFORE[name]
    # Any change of the random streams or the maths moves these by far more than the reduction-order noise allowed.
    np.testing.assert_allclose([h["loss"] for h in history], losses, rtol=1e-6)
    np.testing.assert_allclose(state, total, rtol=1e-6)


def test_attention_on_x_and_abs_x_with_bias() -> None:
    model = BoneVideoLifter(_config("bone", att_abs=True))
    att = model.attention
    assert att.W.weight.shape == (16, 2 * 3 * 17) and att.W.bias is not None
    assert BoneVideoLifter(_config("bone")).attention.W.weight.shape == (16, 3 * 17)  # default: eq. 6 as before
    x = torch.randn(4, 7, 3 * 17)
    expect = 10.0 * (torch.cat([x, x.abs()], -1) @ att.W.weight.T + att.W.bias)
    torch.testing.assert_close(att.scores(x), expect)
    with torch.no_grad():
        att.W.weight[:, : 3 * 17] = 0  # only the |X| half left: the logits ignore the joints' signs
    torch.testing.assert_close(att.scores(x), att.scores(-x))
    w = att.weights(x)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4, 16))


def test_bn_decay_in_the_bottom_subnetwork_only() -> None:
    seqs = _sequences(3, 40)
    for s in seqs:  # with confidences, so the score branch (which the authors do not decay) exists
        s.confidence = np.ones(s.keypoints.shape[:2], np.float32)
    trainer = _trainer(seqs=seqs, confidence=True, options={"bn_decay": "bottom"})
    model = trainer.model
    bottom = model.direction[0]
    assert bottom.score is not None
    decayed = model.momentum_norms()
    assert set(decayed) == {bottom.expand_bn, *bottom.bns, *bottom.point_bns}
    trainer.epoch = 1
    trainer.train_epoch()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) > len(decayed)
    for m in norms:
        assert m.momentum == (bn_momentum(1, 2) if m in decayed else 0.1)
    everything = _trainer(seqs=seqs, confidence=True).model.momentum_norms()
    assert len(everything) == len(norms)  # default: every norm decays, as before


@pytest.mark.parametrize("name", ["tcn", "bone"])
def test_flip_both_ways_doubles_the_samples(name: str) -> None:
    coin, both = _trainer(name), _trainer(name, flip_mode="both")
    n = len(coin.samples)
    assert coin.num_samples() == n and both.num_samples() == 2 * n
    assert _trainer(name, flip_mode="both", flip=False).num_samples() == n  # no flipping: nothing to double
    rows = torch.arange(0, n, 3)
    batch = both.batch(torch.cat([rows, rows + n]))
    k = len(rows)
    lay = H36M17
    torch.testing.assert_close(batch["window"][k:], mirror(batch["window"][:k], lay))
    torch.testing.assert_close(batch["target"][k:], mirror(batch["target"][:k], lay))
    torch.testing.assert_close(both.batch(rows)["window"], coin.data.windows(*coin.samples[rows].T)[0])
    if name == "bone":  # a video and its mirror image are two videos, each with its own (mirrored) draw
        assert len(batch["length_inputs"]) == 2 * len(torch.unique(both.samples[rows, 0]))
        v, seq = batch["length_video"], both.samples[rows[0], 0]
        frames = both.data.frame_screen(seq.expand(40), torch.arange(40))
        for draw, flipped in ((v[0], False), (v[k], True)):  # every drawn frame is one of the video's, mirrored
            x = batch["length_inputs"][draw]
            x = mirror(x, lay) if flipped else x
            assert torch.cdist(x.flatten(1), frames.flatten(1)).min(dim=1).values.max() < 2e-3  # others: > 0.02
        assert torch.isfinite(both.model.training_loss(batch)["total"])
    both.monitor = lambda: None  # type: ignore[method-assign]
    both.config.epochs = 1
    both.fit()
    assert both.step == 2 * n // 32  # one epoch holds every window both ways: twice the batches


def test_learning_rate_reaches_the_80_epoch_final_value() -> None:
    for epochs in (1, 3):
        trainer = _trainer("tcn", epochs=epochs, lr_final_as_epochs=80)
        trainer.monitor = lambda: None  # type: ignore[method-assign]
        trainer.fit()
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.95**80, rel=1e-9)
    default = _trainer("tcn", epochs=3)
    default.monitor = lambda: None  # type: ignore[method-assign]
    default.fit()
    assert default.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.95**3, rel=1e-9)
    cfg = VideoTrainConfig(epochs=80, lr_final_as_epochs=80)
    assert epoch_decay(cfg) == pytest.approx(0.95, rel=1e-12)  # the published run is unchanged
    with pytest.raises(OptionError):
        replace(cfg, lr_final_as_epochs=-1).validate()
    with pytest.raises(OptionError):
        replace(cfg, flip_mode="sometimes").validate()


def test_random_trajectory_keeps_the_skeleton_and_moves_the_root() -> None:
    rng = np.random.default_rng(0)
    seqs = _sequences(2, 10)
    poses = np.stack([s.poses_3d for s in seqs])
    cams = [_camera()] * 2
    x0, rel0, len0 = augment_bone_lengths(poses, cams, H36M17, H36M17, np.random.default_rng(1))
    roots = rng.normal(0, 0.5, (2, 10, 1, 3)) + np.array([0, -0.3, 5.0])
    x1, rel1, len1 = augment_bone_lengths(poses, cams, H36M17, H36M17, np.random.default_rng(1), roots=roots)
    np.testing.assert_array_equal(rel0, rel1)
    np.testing.assert_array_equal(len0, len1)
    cam = cams[0]
    np.testing.assert_allclose(x1, cam.normalize(cam.project(rel1 + roots)), atol=1e-5)
    assert np.abs(x1 - x0).max() > 0.01


def test_joint_loss_on_augmented_skeletons() -> None:
    trainer = _trainer(options={"aug_joint_loss": True, "aug_trajectory": "random"})
    batch = trainer.batch(torch.arange(0, 40, 2))
    a_in, a_len, a_tgt = batch["aug_inputs"], batch["aug_lengths"], batch["aug_targets"]
    assert a_tgt.shape == a_in.shape[:2] + (17, 3)
    torch.testing.assert_close(geometry.bone_lengths(a_tgt, H36M17), a_len[:, None].expand(-1, a_tgt.shape[1], -1))
    assert "aug_targets" not in _trainer().batch(torch.arange(0, 40, 2))  # default: no extra targets
    model = trainer.model
    torch.manual_seed(0)
    on = model.training_loss(batch)
    torch.manual_seed(0)
    model.opt = replace(model.opt, aug_joint_loss=False)
    off = model.training_loss(batch)
    pick = torch.randint(a_in.shape[1], (len(a_in),))  # the draw after the sampled frames' draw
    rows = torch.arange(len(a_in))
    chosen, _ = model.frame_estimates(a_in[rows, pick])
    extra = mpjpe_loss(chosen.unflatten(-1, (-1, 3)), a_tgt[rows, pick])
    torch.testing.assert_close(on["joints"], off["joints"] + extra)


def test_bench_rows_and_honest_labels(tmp_path, monkeypatch) -> None:
    from bonelift.bench import video
    from bonelift.models.bone_video import BoneOptions

    assert list(video.ROWS)[-4:] == ["jsl-aug", "bone-aug", "bone-authors", "bone-e2e"]
    assert BoneOptions.parse(video.ROWS["bone-e2e"][2], "bone").pose_grad  # the one deviation, its own row
    authors = BoneOptions.parse(video.ROWS["bone-authors"][2], "bone")
    assert authors.aug is True and authors.aug_joint_loss and authors.aug_trajectory == "random"
    assert authors.att_abs and authors.bn_decay == "bottom"
    assert video.ROW_TRAINING["bone-authors"] == {"flip_mode": "both", "lr_final_as_epochs": 80}

    def row(name: str, inp: str, **extra):
        label, model, options, _ = video.ROWS[name]
        return {"label": label, "model": model, "options": options, "input": inp, **extra}

    assert video.row_label(row("jsl", "gt")) == "AF +ML +BoneAtt +AUG +JSL [no AUG: auto is off for GT 2D]"
    assert video.row_label(row("bone", "gt")) == ("method 5 (+LSC, full) [no AUG: auto is off for GT 2D; "
                                                  "no ScoreAtt: the 2D has no confidences]")
    assert video.row_label(row("bone-aug", "gt")).endswith("AUG on [no ScoreAtt: the 2D has no confidences]")
    assert video.row_label(row("bone", "sh", confidence=True)) == "method 5 (+LSC, full)"
    assert video.row_label(row("bone", "sh")).endswith("[no ScoreAtt: the 2D has no confidences]")  # older rows
    assert video.row_label(row("boneatt", "gt")) == "AF +ML +BoneAtt"  # AUG off on purpose: nothing claimed
    assert video.row_label(row("tcn", "gt")) == "TCN baseline (VideoPose3D)"

    seen = {}

    def capture(cfg, **kwargs):
        seen["cfg"] = cfg
        raise RuntimeError("captured")

    monkeypatch.setattr(video, "train_video", capture)
    base = VideoTrainConfig(model=_config("tcn"), epochs=1, device="cpu")
    with pytest.raises(RuntimeError, match="captured"):
        video.run_benchmark(base, ["bone-authors"], tmp_path / "runs", tmp_path / "v.md", "x", progress=False,
                            data=lambda c: (_sequences(2, 20), _sequences(1, 20)))
    cfg = seen["cfg"]
    assert cfg.flip_mode == "both" and cfg.lr_final_as_epochs == 80 and cfg.model.options["bn_decay"] == "bottom"
