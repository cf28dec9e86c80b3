"""End to end on a synthetic Human3.6M: train, checkpoint, resume, evaluate (API and CLI)."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.checkpoints import rebuild
from bonelift.cli import main
from bonelift.config import TrainConfig
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS
from bonelift.errors import DataError
from bonelift.evaluate import evaluate
from bonelift.models import ModelConfig, build_model
from bonelift.training import train
from tests.conftest import make_h36m


@pytest.fixture(scope="module")
def full_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_full")
    make_h36m(root, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=24)
    return root


def _config(root, out, keypoints="gt", epochs=2) -> TrainConfig:
    return TrainConfig(model=ModelConfig(hidden=32), data_root=str(root), keypoints=keypoints, stride=1, eval_stride=1,
                       epochs=epochs, batch_size=64, out_dir=str(out))


def test_train_resume_evaluate(full_root, tmp_path):
    out = tmp_path / "run"
    trainer = train(_config(full_root, out), progress=False)
    assert [r["epoch"] for r in trainer.history] == [1, 2]
    assert trainer.history[1]["loss"] < trainer.history[0]["loss"] * 1.5
    for name in ("last.pt", "best.pt", "log.csv", "log.json", "config.json"):
        assert (out / name).is_file()
    assert not list(out.glob("*.tmp"))
    resumed = train(_config(full_root, out, epochs=3), resume=True, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    results, (js, md) = evaluate(out / "last.pt", data_root=str(full_root), progress=False)
    assert results["model"] == "baseline" and results["frames"] == 2 * 3 * 4 * 24
    assert json.loads(js.read_text())["p1"]["average"] == pytest.approx(results["p1"]["average"])
    assert "P1 (MPJPE)" in md.read_text()
    # the saved checkpoint reproduces the model's predictions exactly
    model = rebuild(out / "last.pt")[0]
    x = torch.zeros(2, 17, 2)
    torch.testing.assert_close(model.predict(x), resumed.model.eval().predict(x))


def test_sh_input_uses_16_joints(full_root, tmp_path):
    trainer = train(_config(full_root, tmp_path / "sh", keypoints="sh", epochs=1), progress=False)
    assert trainer.model.config.input_layout == "h36m16"
    assert trainer.inputs.shape[1:] == (16, 2)
    pred = trainer.model.eval().predict(trainer.inputs[:3])
    assert pred.shape == (3, 17, 3) and torch.all(pred[:, 0] == 0)


def test_cli_train_and_evaluate(full_root, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "--data", str(full_root), "--epochs", "1", "--hidden", "16", "--stride", "2",
                 "--batch-size", "32", "--out", str(out)]) == 0
    assert main(["evaluate", str(out / "last.pt"), "--data", str(full_root)]) == 0
    assert "P2 (P-MPJPE)" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_max_norm_and_normalizer():
    model = build_model(ModelConfig(hidden=16))
    x = np.random.default_rng(0).normal(size=(50, 17, 2)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(50, 16, 3)).astype(np.float32)
    model.normalizer.fit(x, y)
    z = model.normalizer.norm_in(torch.from_numpy(x))
    torch.testing.assert_close(z.mean(0), torch.zeros(34), atol=1e-5, rtol=0)
    back = model.normalizer.denorm_out(model.normalizer.norm_out(torch.from_numpy(y)))
    torch.testing.assert_close(back, torch.from_numpy(y), atol=1e-5, rtol=0)
    lin = model.net.head
    with torch.no_grad():
        lin.weight.mul_(100)
    h = torch.randn(4, 16)
    out = lin(h) - lin.bias
    assert out.norm(dim=1).max() <= h.norm(dim=1).max() * 1.0001


def test_fine_tune_from_checkpoint_with_noise(full_root, tmp_path):
    base = train(_config(full_root, tmp_path / "base", epochs=1), progress=False)
    cfg = _config(full_root, tmp_path / "tuned", epochs=1)
    cfg.init_from, cfg.noise_px, cfg.flip = str(tmp_path / "base" / "last.pt"), 5.0, True
    tuned = train(cfg, progress=False)
    torch.testing.assert_close(tuned.model.normalizer.in_mean, base.model.normalizer.in_mean)
    assert tuned.history[0]["epoch"] == 1
    bad = _config(full_root, tmp_path / "bad", keypoints="sh", epochs=1)
    bad.init_from = str(tmp_path / "base" / "last.pt")
    with pytest.raises(Exception, match="cannot start"):
        train(bad, progress=False)


def test_export_keeps_predictions(full_root, tmp_path):
    train(_config(full_root, tmp_path / "run", epochs=1), progress=False)
    assert main(["export", str(tmp_path / "run" / "last.pt"), str(tmp_path / "lifter.pt")]) == 0
    full = rebuild(tmp_path / "run" / "last.pt")[0]
    small, _, ckpt = rebuild(tmp_path / "lifter.pt")
    assert "optimizer" not in ckpt
    assert (tmp_path / "lifter.pt").stat().st_size < (tmp_path / "run" / "last.pt").stat().st_size / 3
    x = torch.randn(5, 17, 2) * 0.3
    torch.testing.assert_close(small.predict(x), full.predict(x), atol=2e-3, rtol=0)


def test_resume_with_other_options_is_refused_unless_overridden(full_root, tmp_path, capsys):
    """`config.json` must say how the run trained: resuming under another lr, seed, stride or batch size is refused
    naming each changed field (before any data loads) unless `--override`; epochs, device and paths may change."""
    from bonelift.errors import OptionError

    out = tmp_path / "run"
    train(_config(full_root, out, epochs=1), progress=False)
    changed = _config(full_root, out, epochs=2)
    changed.lr, changed.seed, changed.stride, changed.batch_size = 0.5, 3, 2, 16
    with pytest.raises(OptionError, match=r"last\.pt was trained with other options \(batch_size: 64 there, 16 here, "
                                          r"lr: 0\.001 there, 0\.5 here, seed: 0 there, 3 here, stride: 1 there, "
                                          r"2 here\); .*--override"):
        train(changed, resume=True, progress=False)
    args = ["train", "--data", str(full_root), "--hidden", "32", "--stride", "1", "--eval-stride", "1",
            "--batch-size", "64", "--epochs", "2", "--out", str(out), "--resume", "--lr", "0.5"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lr: 0.001 there, 0.5 here" in err[0] and "Traceback" not in err[0]
    assert json.loads((out / "config.json").read_text())["lr"] == 0.001  # the record is untouched
    assert main(args + ["--override"]) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.5  # ... and says what the run went on with


def _save_to_a_full_disk(how: str):
    """A stand-in for `torch.save` inside `checkpoints.save` that meets a full disk: part of the file is written,
    then the write fails with ENOSPC (`oserror`), or torch's own writer meets a real ENOSPC (`torch`, /dev/full)."""
    real_save = torch.save

    def save(obj, path):
        if how == "torch":
            return real_save(obj, "/dev/full")
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


@pytest.mark.parametrize("how", ["oserror", "torch"])
def test_disk_full_while_saving_a_checkpoint(full_root, tmp_path, monkeypatch, capsys, how):
    """One line naming the checkpoint; the previous checkpoints intact and loadable; no temporary file; resuming
    afterwards gives bit for bit the run that never met a full disk."""
    from bonelift import checkpoints

    if how == "torch" and not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    reference = train(_config(full_root, tmp_path / "reference", epochs=2), progress=False).model.state_dict()
    out = tmp_path / "run"
    train(_config(full_root, out, epochs=1), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints.torch, "save", _save_to_a_full_disk(how))
        with pytest.raises(DataError, match=r"(best|last)\.pt: cannot write \(.*(No space left|disk full).*\); the "
                                            r"previous file is unchanged") as info:
            train(_config(full_root, out, epochs=2), resume=True, progress=False)
        assert "\n" not in str(info.value)
        assert main(["train", "--data", str(full_root), "--out", str(out), "--hidden", "32", "--stride", "1",
                     "--eval-stride", "1", "--batch-size", "64", "--epochs", "2", "--resume"]) == 2
        # the progress bar of the epoch that ran before the save is on stderr too; the error is its own last line
        err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
        assert err.startswith("bonelift: error: ") and ".pt: cannot write" in err, err
    # nothing changed, nothing left behind; config.json records the extended run (--epochs 2) before it trains
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before if k != "config.json")
    assert json.loads(after["config.json"])["epochs"] == 2
    assert checkpoints.load(out / "last.pt")["epoch"] == 1
    resumed = train(_config(full_root, out, epochs=2), resume=True, progress=False).model.state_dict()
    assert reference.keys() == resumed.keys()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
