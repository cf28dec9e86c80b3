"""Reliability promises of the data loaders (docs/reliability.md): no code runs from a data file, errors travel."""

from __future__ import annotations

import json
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
    with pytest.raises(
        DataError, match="is not a dict of sequences"
    ):  # a plain (non-pickled) array is read without pickle
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


# --- bounded memory on hostile files (docs/reliability.md, "Bounded memory") -------------------------------------


def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An npy version 1.0 header declaring `shape` (no data follows unless the caller writes it)."""
    import io

    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})  # with the magic
    return buf.getvalue()


def _zeros_bomb(path: Path, shape: tuple[int, ...], names: tuple[str, ...] = ("keypoints",)) -> Path:
    """An npz whose members `names` hold deflated float64 zeros of `shape`, streamed (never in memory)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                fh.write(_npy_header(shape))
                left, chunk = int(np.prod(shape)) * 8, bytes(2**24)
                while left > 0:
                    fh.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
    return path


def _header_only_npz(path: Path, members: dict[str, tuple[int, ...]]) -> Path:
    """A few-hundred-byte npz whose members declare arrays of the given shapes and hold no data."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, shape in members.items():
            zf.writestr(f"{name}.npy", _npy_header(shape))
    return path


# Peak resident memory of the reading process: VmHWM (reset by exec), not getrusage's ru_maxrss, which a child
# inherits from the forked image of its parent (pytest's own 1.5 GB after the whole suite).
_PEAK_PROBE = """
import sys
from bonelift.errors import DataError
from bonelift.pipeline.keypoint_io import read_keypoints
try:
    read_keypoints(sys.argv[1])
    print("read", end=" ")
except DataError as exc:
    print("DataError", str(exc).count(chr(10)), end=" ")
with open("/proc/self/status") as fh:
    print(next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory read from /proc (Linux)")
def test_keypoint_zip_bomb_fails_fast_with_low_peak_memory(tmp_path: Path) -> None:
    """1.5 GB of zeros deflated into a 1.5 MB keypoint npz: refused from its npy header, peak RSS <= 500 MB."""
    import subprocess
    import sys

    bomb = _zeros_bomb(tmp_path / "bomb.npz", (2_830_000, 33, 2))
    assert bomb.stat().st_size < 2_000_000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", _PEAK_PROBE, str(bomb)], capture_output=True, text=True, env=env,
                         timeout=120)
    verdict, lines, peak_mb = out.stdout.split()
    assert (verdict, lines) == ("DataError", "0"), out.stderr
    assert int(peak_mb) <= 500


@pytest.mark.parametrize("reader", ["keypoints", "predictions", "image set", "poses3d", "dataset"])
def test_tiny_files_declaring_huge_arrays_are_refused_before_allocation(tmp_path: Path, reader: str) -> None:
    """~300 bytes declaring 10**7 x 10**6 x 2 float64 (160 TB): every npz reader refuses it from the header."""
    from bonelift.datasets.images import load_image_set
    from bonelift.pipeline.export import read_npz
    from bonelift.pipeline.keypoint_io import read_keypoints
    from bonelift.validity import load_predictions

    key = {"keypoints": "keypoints", "predictions": "poses", "image set": "images", "poses3d": "joints",
           "dataset": "positions_3d"}[reader]
    path = _header_only_npz(tmp_path / "huge.npz", {key: (10**7, 10**6, 2)})
    assert path.stat().st_size < 400
    load = {"keypoints": read_keypoints, "predictions": load_predictions, "image set": load_image_set,
            "poses3d": read_npz, "dataset": lambda p: load_pickled_npz(p, "positions_3d")}[reader]
    with pytest.raises(DataError, match=r"huge\.npz: \w+ \(10000000, 1000000, 2\) float64 declares 152,587,891 MB, "
                                        r"more than a \d+-byte file may inflate to .*: a zip bomb or a corrupt file"):
        load(path)


def test_many_members_share_one_budget(tmp_path: Path) -> None:
    """Members of 30 MB each (under the minimum budget one by one) add up: the file as a whole is refused, and a
    member shorter than its header says is refused before its data is read."""
    from bonelift.pipeline.keypoint_io import read_keypoints

    path = _zeros_bomb(tmp_path / "many.npz", (3_750_000,), names=("a0", "a1", "keypoints"))
    with pytest.raises(DataError, match=r"many\.npz: keypoints \(3750000,\) float64 declares 29 MB, more than"):
        read_keypoints(path)
    short = _header_only_npz(tmp_path / "short.npz", {"keypoints": (1000, 17, 2)})
    with pytest.raises(DataError, match=r"short\.npz: keypoints declares 272,000 bytes of data but holds 0: truncated"):
        read_keypoints(short)


class _Alloc:
    """Pickles as `bytearray(n)`: a few bytes that allocate n."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __reduce__(self):
        return (bytearray, (self.n,))


def test_restricted_unpickler_refuses_bytearray(tmp_path: Path) -> None:
    path = tmp_path / "alloc.npz"
    np.savez(path, positions_3d=np.array({"S1": {"Walking": _Alloc(10**13)}}, dtype=object))
    assert path.stat().st_size < 1000
    with pytest.raises(DataError, match=r"alloc\.npz: refusing to unpickle builtins\.bytearray"):
        load_pickled_npz(path, "positions_3d")


def test_shared_nested_lists_are_refused(tmp_path: Path) -> None:
    """A pickle of 40 levels of a list holding itself twice: under 1 kB, 2**40 leaves."""
    x: list = [np.zeros((1, 17, 3))]
    for _ in range(40):
        x = [x, x]
    root = tmp_path / "h36m"
    make_h36m(root, ["S1"])
    path = root / "data_3d_h36m_17j.npz"
    np.savez(path, positions_3d=np.array({"S1": {"Walking": x}}, dtype=object))
    assert path.stat().st_size < 2000
    with pytest.raises(DataError, match=r"data_3d_h36m_17j\.npz: positions_3d\.npy holds containers (nested deeper "
                                        r"than 16|with more than 1,000,000 items)"):
        load_h36m(root, "gt", subjects=["S1"])


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    from bonelift.pipeline.keypoint_io import read_keypoints

    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DataError, match=r"deep\.json: JSON nested 200000 levels deep \(at most 100\)"):
        read_keypoints(path)
    text = tmp_path / "strings.json"  # brackets inside strings do not count
    text.write_text(json.dumps([{"people": "[" * 500 + '\\"[' * 300}]))
    with pytest.raises(DataError, match=r"strings\.json: malformed keypoint JSON|unrecognised JSON"):
        read_keypoints(text)


def test_oversized_json_is_refused_from_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON file over `io.MAX_JSON_BYTES` (a 40 MB sparse file: nothing is written or read) is one DataError,
    as a keypoint file, inside an OpenPose folder and as a benchmark results file."""
    from bonelift import io
    from bonelift.bench.common import cached_row
    from bonelift.pipeline.keypoint_io import read_keypoints

    def big(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[")
        os.truncate(path, 40 * 2**20)
        return path

    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} was read"))
    too_big = r"JSON file of 40 MB \(at most 32 MB\): not a keypoint, configuration or results file"
    with pytest.raises(DataError, match=rf"big\.json: {too_big}"):
        read_keypoints(big(tmp_path / "big.json"))
    with pytest.raises(DataError, match=rf"0_keypoints\.json: {too_big}"):
        read_keypoints(big(tmp_path / "openpose" / "0_keypoints.json").parent)
    with pytest.raises(DataError, match=rf"{io.MAX_JSON_BYTES // 2**20} MB"):
        cached_row(big(tmp_path / "run" / "bench_row.json").parent, {}, 1)


def test_checkpoint_zip_bomb_is_refused_before_torch_reads_it(tmp_path: Path) -> None:
    import zipfile

    import torch

    from bonelift.checkpoints import load

    real = Path(__file__).resolve().parents[1] / "checkpoints" / "baseline_gt.pt"
    bomb = tmp_path / "bomb.pt"
    torch.save({"format": 1, "weights": torch.zeros(2)}, bomb)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/data/99", "w") as fh:
        for _ in range(12):
            fh.write(bytes(2**24))  # 192 MB of zeros in ~200 kB
    with pytest.raises(DataError, match=r"bomb\.pt: bomb/data/99 declares 192 MB.*zip bomb"):
        load(bomb)
    assert load(real)["format"]  # a real checkpoint (17 MB, stored) is within its budget
    legacy = tmp_path / "legacy.pt"
    torch.save({"format": 1}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(DataError, match=r"legacy\.pt: corrupt or unreadable checkpoint \(not a torch zip archive\)"):
        load(legacy)
