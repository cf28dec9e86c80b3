"""Reliability promises of the data loaders (docs/reliability.md): no code runs from a data file, errors travel."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bonelift.datasets import load_h36m
from bonelift.datasets.common import load_pickled_npz
from bonelift.datasets.humaneva import load_humaneva
from bonelift.errors import DataError, OptionError
from tests.conftest import make_h36m

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class _Payload:
    """Pickles as a call of os.system: loading it with plain pickle would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_npz(path: Path, key: str, marker: Path, nested: bool = True) -> Path:
    """An npz in VideoPose3D layout whose `key` hides the payload inside the {subject: {take: array}} dict."""
    value = {"S1": {"Walking": _Payload(marker)}} if nested else _Payload(marker)
    np.savez(path, **{key: np.array(value, dtype=object)})
    return path


def test_plain_pickle_would_run_the_payload(tmp_path: Path) -> None:
    """Guard of the tests below: the crafted file really is dangerous for np.load(allow_pickle=True)."""
    marker = tmp_path / "ran"
    path = _evil_npz(tmp_path / "evil.npz", "positions_3d", marker)
    with np.load(path, allow_pickle=True) as z:
        z["positions_3d"]
    assert marker.exists()


@pytest.mark.parametrize("nested", [True, False])
def test_pickled_code_in_npz_is_refused(tmp_path: Path, nested: bool) -> None:
    marker = tmp_path / "ran"
    path = _evil_npz(tmp_path / "evil.npz", "positions_3d", marker, nested)
    with pytest.raises(DataError, match=r"evil\.npz: refusing to unpickle posix\.system .*holds code, not data"):
        load_pickled_npz(path, "positions_3d")
    assert not marker.exists()


def test_pickled_code_in_metadata_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "meta.npz"
    np.savez(path, positions_2d=np.array({"S1": {}}, dtype=object), metadata=np.array(_Payload(marker), dtype=object))
    with pytest.raises(DataError, match=r"meta\.npz: refusing to unpickle"):
        load_pickled_npz(path, "positions_2d")
    assert not marker.exists()


def test_h36m_routes_refuse_pickled_code(tmp_path: Path) -> None:
    root = tmp_path / "h36m"
    make_h36m(root, ["S1"])
    marker = tmp_path / "ran"
    det = _evil_npz(tmp_path / "det.npz", "positions_2d", marker)
    with pytest.raises(DataError, match=r"det\.npz: refusing to unpickle"):  # --keypoints FILE.npz
        load_h36m(root, str(det), subjects=["S1"])
    sh = _evil_npz(root / "data_2d_h36m_sh_pt_mpii_16j.npz", "positions_2d", marker)
    with pytest.raises(DataError, match=f"{sh.name}: refusing to unpickle"):  # --keypoints sh
        load_h36m(root, "sh", subjects=["S1"])
    _evil_npz(root / "data_3d_h36m_17j.npz", "positions_3d", marker)
    with pytest.raises(DataError, match=r"data_3d_h36m_17j\.npz: refusing to unpickle"):  # --keypoints gt
        load_h36m(root, "gt", subjects=["S1"])
    assert not marker.exists()


def test_humaneva_refuses_pickled_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _evil_npz(tmp_path / "data_3d_humaneva15.npz", "positions_3d", marker)
    np.savez(tmp_path / "data_2d_humaneva15_gt.npz", positions_2d=np.array({}, dtype=object))
    with pytest.raises(DataError, match=r"data_3d_humaneva15\.npz: refusing to unpickle"):
        load_humaneva(tmp_path)
    assert not marker.exists()


def test_restricted_loader_reads_containers_scalars_and_plain_arrays(tmp_path: Path) -> None:
    value = {"S1": {"Walking 1": [np.arange(6.0).reshape(2, 3), np.ones((2, 3), np.float32)], "Eating": np.zeros(2)}}
    meta = {"layout_name": "h36m17", "num_joints": np.int64(17), "symmetry": [[1, 2], [4, 5]], "tags": {"a"}}
    path = tmp_path / "ok.npz"
    np.savez_compressed(path, positions_2d=np.array(value, dtype=object), metadata=np.array(meta, dtype=object))
    got = load_pickled_npz(path, "positions_2d")
    assert got["metadata"] == meta and type(got["metadata"]["num_joints"]) is np.int64
    np.testing.assert_array_equal(got["value"]["S1"]["Walking 1"][0], value["S1"]["Walking 1"][0])
    assert got["value"]["S1"]["Walking 1"][1].dtype == np.float32
    with pytest.raises(DataError, match="is not a dict of sequences"):  # a plain (non-pickled) array is read without pickle
        np.savez(tmp_path / "plain.npz", positions_2d=np.zeros((3, 2)))
        load_pickled_npz(tmp_path / "plain.npz", "positions_2d")


@pytest.mark.parametrize(("name", "key"), [
    ("h36m/data_3d_h36m_17j.npz", "positions_3d"),
    ("humaneva/data_2d_humaneva15_gt.npz", "positions_2d"),
])
def test_restricted_loader_matches_numpy_on_the_real_files(name: str, key: str) -> None:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    got = load_pickled_npz(path, key)
    with np.load(path, allow_pickle=True) as z:
        want = z[key].item()
        meta = z["metadata"].item() if "metadata" in z.files else None
    assert got["metadata"] == meta and want.keys() == got["value"].keys()
    for subject in list(want)[:3]:
        for take in list(want[subject])[:3]:
            a, b = want[subject][take], got["value"][subject][take]
            for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
                assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)


def test_errors_survive_pickling() -> None:
    err = pickle.loads(pickle.dumps(DataError("a.npz", "broken")))
    assert isinstance(err, DataError) and (err.source, err.problem, str(err)) == ("a.npz", "broken", "a.npz: broken")
    err = pickle.loads(pickle.dumps(DataError(None, "no source")))
    assert err.source is None and str(err) == "no source"
    assert str(pickle.loads(pickle.dumps(OptionError("--fps must be positive")))) == "--fps must be positive"
