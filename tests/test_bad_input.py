"""Each kind of bad input gives one DataError naming the file and the problem."""

import numpy as np
import pytest

from bonelift.checkpoints import load as load_checkpoint
from bonelift.datasets import load_h36m
from bonelift.errors import DataError
from tests.conftest import make_h36m


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_h36m(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"cameras\.h5: camera file not found"):
        load_h36m(tmp_path / "empty")


def test_no_3d_poses(h36m_root):
    (h36m_root / "data_3d_h36m_17j.npz").unlink()
    with pytest.raises(DataError, match="no Human3.6M 3D poses"):
        load_h36m(h36m_root, subjects=["S9"])


def test_truncated_npz(h36m_root):
    path = h36m_root / "data_3d_h36m_17j.npz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"data_3d_h36m_17j\.npz: cannot read npz"):
        load_h36m(h36m_root, subjects=["S9"])


def test_truncated_h5(h36m_root):
    path = h36m_root / "cameras.h5"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"cameras\.h5: cannot read Human3\.6M cameras"):
        load_h36m(h36m_root, subjects=["S9"])


def test_wrong_shape_3d(h36m_root):
    path = h36m_root / "data_3d_h36m_17j.npz"
    poses = np.load(path, allow_pickle=True)["positions_3d"].item()
    poses["S9"]["Walking"] = poses["S9"]["Walking"][..., :2]
    np.savez(path, positions_3d=np.array(poses, dtype=object))
    with pytest.raises(DataError, match=r"S9/Walking: 3D array has shape \(40, 17, 2\)"):
        load_h36m(h36m_root, subjects=["S9"])


def test_nan_keypoints(h36m_root):
    path = h36m_root / "data_2d_h36m_sh_pt_mpii_16j.npz"
    det = np.load(path, allow_pickle=True)["positions_2d"].item()
    det["S9"]["Walking"]["55011271"][3, 4] = np.nan
    np.savez(path, positions_2d=np.array(det, dtype=object))
    with pytest.raises(DataError, match=r"sh_pt_mpii_16j\.npz: S9/Walking/55011271 contains 2 NaN"):
        load_h36m(h36m_root, "sh", subjects=["S9"])


def test_unknown_layout_in_metadata(tmp_path):
    root = tmp_path / "vp"
    make_h36m(root, ["S9"], fmt="videopose")
    path = root / "data_2d_h36m_sh_pt_mpii.npz"
    det = np.load(path, allow_pickle=True)["positions_2d"].item()
    np.savez(path, positions_2d=np.array(det, dtype=object), metadata={"layout_name": "openpose25", "num_joints": 16})
    with pytest.raises(DataError, match=r"data_2d_h36m_sh_pt_mpii\.npz: unknown joint layout 'openpose25'"):
        load_h36m(root, "sh", subjects=["S9"])


def test_unknown_action(h36m_root):
    path = h36m_root / "data_3d_h36m_17j.npz"
    poses = np.load(path, allow_pickle=True)["positions_3d"].item()
    poses["S9"]["Juggling 1"] = poses["S9"].pop("Walking")
    np.savez(path, positions_3d=np.array(poses, dtype=object))
    with pytest.raises(DataError, match="unknown Human3.6M action 'Juggling 1'"):
        load_h36m(h36m_root, subjects=["S9"])


def test_missing_detector_and_subject(h36m_root):
    with pytest.raises(DataError, match="no 2D detections for 'cpn'"):
        load_h36m(h36m_root, "cpn", subjects=["S9"])
    with pytest.raises(DataError, match="subject S5 has no 3D poses"):
        load_h36m(h36m_root, subjects=["S5"])


def test_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"bad\.pt: corrupt or unreadable checkpoint"):
        load_checkpoint(bad)
    import torch

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(DataError, match="not a bonelift checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_atomic_write_leaves_nothing_on_failure_and_normal_permissions(tmp_path):
    from bonelift.io import atomic_path

    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "out.txt").read_text() == "whole"
    assert (tmp_path / "out.txt").stat().st_mode & 0o044  # group/other readable under the usual umask
