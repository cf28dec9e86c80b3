"""Issue 25 (sections 6 and 7): every bad option is one line (exit status 2 on the command line, an OptionError or
DataError in Python) naming the option, raised before any data is loaded or any run folder is made."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import bonelift
from bonelift import checkpoints
from bonelift.cli import main
from bonelift.config import LiftConfig, TrainConfig, VideoTrainConfig
from bonelift.errors import OptionError
from bonelift.models import ModelConfig, build_model


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *words: str) -> str:
    """Run the command line; it must exit 2 with one stderr line holding every word."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--lr", "-1"], ["--lr", "greater than 0"]),
        (["--hidden", "0"], ["--hidden", "1 or more"]),
        (["--dropout", "1.5"], ["--dropout", "less than 1"]),
        (["--seed", "-5"], ["--seed", "0 or more"]),
        (["--lr-decay", "0"], ["--lr-decay", "greater than 0 and at most 1"]),
        (["--loss", "angle=abc", "--losses-on", "all"], ["--loss", "angle", "a number"]),
        (["--loss", "angle=-5", "--losses-on", "all"], ["--loss", "angle", "0 or more"]),
        (["--loss", "bend=1", "--losses-on", "all"], ["--loss", "'bend'", "geometry, angle, symmetry, reprojection"]),
    ],
)
def test_train_ranges(capsys, tmp_path: Path, h36m_root: Path, flags: list[str], words: list[str]) -> None:
    out = tmp_path / "run"
    _refused(capsys, ["train", "--data", str(h36m_root), "--out", str(out), *flags], *words)
    assert not out.exists()  # refused before the run folder is made


@pytest.mark.parametrize(
    "flags, words",
    [(["--channels", "-8"], ["--channels", "1 or more"]), (["--precise-bn", "-3"], ["--precise-bn", "0 or more"])],
)
def test_train_video_ranges(capsys, tmp_path: Path, h36m_root: Path, flags: list[str], words: list[str]) -> None:
    _refused(capsys, ["train-video", "--data", str(h36m_root), "--out", str(tmp_path / "run"), *flags], *words)


def test_bench_test_stride(capsys, tmp_path: Path) -> None:
    _refused(capsys, ["bench", "single-frame", "--out", str(tmp_path / "runs"), "--report", str(tmp_path / "r.md"),
                      "--test-stride", "-1"], "--test-stride")


@pytest.mark.parametrize("where", ["/proc/bonelift_x", "a_file"])
def test_unusable_out_and_report(capsys, tmp_path: Path, h36m_root: Path, where: str) -> None:
    bad = where if where.startswith("/") else str(tmp_path / where)
    Path(tmp_path / "a_file").write_text("not a folder")
    _refused(capsys, ["train", "--data", str(h36m_root), "--out", bad, "--epochs", "1"], "run folder (--out)")
    _refused(capsys, ["bench", "single-frame", "--out", str(tmp_path / "runs"), "--report", f"{bad}/r.md"], "report")


def test_evaluate_refuses_other_joints_before_loading(capsys, tmp_path: Path) -> None:
    config = TrainConfig(model=ModelConfig(hidden=8, blocks=1))
    path = checkpoints.save_model(tmp_path / "gt.pt", build_model(config.model), config, "single-frame")
    missing = tmp_path / "no_data"  # the data is never looked at
    _refused(capsys, ["evaluate", str(path), "--keypoints", "sh", "--data", str(missing), "--device", "cpu"],
             "h36m17, 17 joints", "h36m16 (16 joints)")


def test_focal_and_fps_are_physical(capsys) -> None:
    _refused(capsys, ["lift", "missing.mp4", "--focal", "1e308"], "--focal", "from 1 to 1e+06")
    _refused(capsys, ["lift", "missing.mp4", "--fps", "1e9"], "--fps", "from 0.001 to 100000")
    for bad in ({"focal": 0.5}, {"focal": math.inf}, {"fps": 0.0}):
        with pytest.raises(OptionError):
            LiftConfig(**bad).validate()


@pytest.fixture
def keypoint_file(tmp_path: Path) -> Path:
    path = tmp_path / "k.npz"
    np.savez(path, keypoints=np.zeros((5, 17, 2)))
    return path


@pytest.mark.parametrize(
    "args, kwargs, word",
    [
        ((123,), {}, "input"),
        (("K",), {"out_dir": None}, "out_dir"),
        (("K",), {"model": 123}, "model"),
        (("K",), {"person": 1.0}, "person"),
        (("K",), {"layout": 17}, "layout"),
        (("K",), {"max_people": float("nan")}, "max_people"),
        (("K",), {"pictures": "no"}, "pictures"),
        (("K",), {"focal": 1e308}, "focal"),
    ],
)
def test_lift_api_types(tmp_path: Path, keypoint_file: Path, args: tuple, kwargs: dict, word: str) -> None:
    args = tuple(keypoint_file if a == "K" else a for a in args)
    with pytest.raises(OptionError, match=word):
        bonelift.lift(*args, out_dir=kwargs.pop("out_dir", tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


def test_live_lifter_options() -> None:
    with pytest.raises(OptionError, match="focal"):
        bonelift.LiveLifter(focal="800")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="device"):
            bonelift.LiveLifter(device="cuda")


def test_network_fields_are_checked_with_the_run() -> None:
    """The nested network configuration is checked by the run's one `validate` (no second rule)."""
    with pytest.raises(OptionError, match="channels"):
        VideoTrainConfig(model=VideoTrainConfig().model.__class__(channels=0)).validate()
    TrainConfig().validate()
    VideoTrainConfig().validate()
