"""One checkpoint format: rebuild any kind, clear errors for bad files, no lost runs, resume checks."""

from __future__ import annotations

import pytest
import torch

from bonelift import checkpoints
from bonelift.cli import main
from bonelift.config import TPNetTrainConfig, TrainConfig, VideoTrainConfig
from bonelift.datasets import TEST_SUBJECTS, TRAIN_SUBJECTS
from bonelift.errors import BoneliftError, DataError
from bonelift.evaluate import evaluate
from bonelift.models import TPNET, VIDEO, ModelConfig, TPNetConfig, VideoModelConfig, build_model
from bonelift.training import train
from tests.conftest import make_h36m


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("h36m_ckpt")
    make_h36m(path, list(TRAIN_SUBJECTS + TEST_SUBJECTS), frames=8)
    return path


def _config(root, out, **kw) -> TrainConfig:
    base = {"stride": 2, "eval_stride": 4, "epochs": 1, "batch_size": 64, **kw}
    return TrainConfig(model=ModelConfig(hidden=16), data_root=str(root), out_dir=str(out), **base)


def _saved(tmp_path, name="m.pt", **payload_changes):
    config = TrainConfig(model=ModelConfig(hidden=8, blocks=1))
    model = build_model(config.model)
    payload = checkpoints.payload(config, model, "single-frame")
    payload.update(payload_changes)
    return checkpoints.save(tmp_path / name, payload)


def test_every_kind_rebuilds_from_its_checkpoint(tmp_path) -> None:
    video = VideoTrainConfig(model=VideoModelConfig(name="bone", receptive_field=9, channels=8))
    tp = TPNetTrainConfig(model=TPNetConfig(hidden=8))
    for config, kind in ((TrainConfig(model=ModelConfig(hidden=8)), "single-frame"), (video, VIDEO), (tp, TPNET)):
        model = build_model(config.model)
        path = checkpoints.save_model(tmp_path / f"{kind}.pt", model, config, kind)
        again, saved, _ = checkpoints.rebuild(path, kind=kind)
        assert saved == config and not again.training
        for a, b in zip(model.state_dict().values(), again.state_dict().values()):
            torch.testing.assert_close(a, b)
    with pytest.raises(DataError, match="holds a video model, not a single-frame one"):
        checkpoints.rebuild(tmp_path / "video.pt", kind="single-frame")


def test_legacy_tpnet_file_loads(tmp_path) -> None:
    net = build_model(TPNetConfig(hidden=8))
    torch.save(
        {"format": "bonelift-tpnet-v1", "config": TPNetConfig(hidden=8).to_dict(), "model": net.state_dict()},
        tmp_path / "old.pt",
    )
    model, config, _ = checkpoints.rebuild(tmp_path / "old.pt", kind=TPNET)
    assert config.model.hidden == 8


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"train_config": None}, "carries no training configuration"),
        ({"model": [1, 2]}, "not a state dict of tensors"),
        ({"kind": "video"}, "invalid training configuration for a video checkpoint"),
        ({"kind": "nonsense"}, "unknown checkpoint kind"),
    ],
)
def test_bad_checkpoints_are_clear_errors(tmp_path, changes, message) -> None:
    with pytest.raises(DataError, match=message) as info:
        checkpoints.rebuild(_saved(tmp_path, **changes))
    assert "m.pt" in str(info.value)


def test_nan_weights_and_bad_config_values_are_clear_errors(tmp_path) -> None:
    path = _saved(tmp_path)
    ckpt = checkpoints.load(path)
    ckpt["model"] = {k: v.clone() for k, v in ckpt["model"].items()}
    next(v for v in ckpt["model"].values() if v.is_floating_point()).fill_(float("nan"))
    checkpoints.save(tmp_path / "nan.pt", ckpt)
    with pytest.raises(DataError, match="nan.pt: weights contain NaN"):
        checkpoints.rebuild(tmp_path / "nan.pt")
    ckpt = checkpoints.load(path)
    ckpt["train_config"]["model"]["hidden"] = "wide"
    checkpoints.save(tmp_path / "str.pt", ckpt)
    with pytest.raises(DataError, match="str.pt"):
        checkpoints.rebuild(tmp_path / "str.pt")


def test_existing_run_is_never_overwritten_without_asking(root, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    train(_config(root, out), progress=False)
    before = (out / "last.pt").read_bytes()
    with pytest.raises(BoneliftError, match="holds a run already; pass --resume .* or --overwrite"):
        train(_config(root, out), progress=False)
    assert (out / "last.pt").read_bytes() == before
    assert main(["train", "--data", str(root), "--hidden", "16", "--epochs", "1", "--out", str(out)]) == 2
    assert "holds a run already" in capsys.readouterr().err
    train(_config(root, out, lr=2e-3), progress=False, overwrite=True)
    assert (out / "last.pt").read_bytes() != before


def test_resume_checks_kind_and_network_before_loading_data(root, tmp_path) -> None:
    out = tmp_path / "run"
    train(_config(root, out), progress=False)
    (out / ".best.pt.abc.tmp").write_bytes(b"torn")  # left by a run killed while saving
    wider = _config(tmp_path / "absent-data", out, epochs=2)
    wider.model.hidden = 32
    with pytest.raises(DataError, match="another network .*hidden: 16 there, 32 here"):
        train(wider, resume=True, progress=False)
    from bonelift.training import train_video

    with pytest.raises(DataError, match="holds a single-frame run; this is a video run"):
        train_video(
            VideoTrainConfig(data_root=str(tmp_path / "absent-data"), out_dir=str(out)), resume=True, progress=False
        )
    resumed = train(_config(root, out, epochs=2), resume=True, progress=False)
    assert resumed.epoch == 2 and not list(out.glob(".*.tmp"))
    assert (out / "best.pt").stat().st_mtime_ns <= (out / "last.pt").stat().st_mtime_ns  # best is written first


def test_evaluate_never_opens_a_file_named_by_the_checkpoint(root, tmp_path) -> None:
    out = tmp_path / "run"
    train(_config(root, out), progress=False)
    ckpt = checkpoints.load(out / "last.pt")
    ckpt["train_config"]["keypoints"] = str(tmp_path / "evil.npz")
    ckpt["train_config"]["data_root"] = str(tmp_path / "elsewhere")
    checkpoints.save(tmp_path / "pointing.pt", ckpt)
    with pytest.raises(DataError, match="name the file to evaluate on with --keypoints FILE"):
        evaluate(tmp_path / "pointing.pt", progress=False)
    results, _ = evaluate(tmp_path / "pointing.pt", data_root=str(root), keypoints="gt", progress=False)
    assert results["frames"] > 0


def test_export_refuses_to_overwrite(root, tmp_path) -> None:
    path = _saved(tmp_path)
    out = checkpoints.export(path, tmp_path / "small.pt")
    with pytest.raises(DataError, match="exists already"):
        checkpoints.export(path, out)
    with pytest.raises(DataError, match="is a folder"):
        checkpoints.export(path, tmp_path)
    assert checkpoints.export(path, out, overwrite=True) == out


def test_export_to_an_impossible_path_is_a_clear_error(tmp_path) -> None:
    path = _saved(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        checkpoints.export(path, blocker / "sub" / "out.pt")
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_3d_file_with_flipped_bytes_is_a_clear_error(root, tmp_path) -> None:
    import shutil

    from bonelift.datasets import load_h36m

    copy = tmp_path / "h36m"
    shutil.copytree(root, copy)
    data = bytearray((copy / "data_3d_h36m_17j.npz").read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    (copy / "data_3d_h36m_17j.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="data_3d_h36m_17j.npz"):
        load_h36m(copy, "gt", ["S9"])
