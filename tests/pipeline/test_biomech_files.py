"""TRC, C3D, MOT and angle CSV files: they read back (C3D with two independent readers) and are fast."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from bonelift.biomech import ANGLE_NAMES, joint_angles
from bonelift.pipeline.biomech_files import MARKER_NAMES, write_angles_csv, write_c3d, write_mot, write_trc
from tests.walker import walk


@pytest.fixture
def clip() -> np.ndarray:
    x = walk(120)
    x[7] = np.nan
    return x


def test_trc_parses_back(clip: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "m.trc"
    write_trc(clip, 30.0, path)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t")[:2] == ["PathFileType", "4"]
    meta = dict(zip(lines[1].split("\t"), lines[2].split("\t")))
    assert meta["Units"] == "mm" and int(meta["NumFrames"]) == 120 and int(meta["NumMarkers"]) == 17
    assert float(meta["DataRate"]) == 30.0
    assert [m for m in lines[3].split("\t")[2:] if m] == list(MARKER_NAMES)
    assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and lines[5] == ""
    rows = np.array([[float(v) for v in ln.split("\t")] for ln in lines[6:]])
    assert rows.shape == (120, 2 + 51)
    assert np.array_equal(rows[:, 0], np.arange(1, 121)) and np.allclose(rows[:, 1], np.arange(120) / 30.0)
    np.testing.assert_allclose(rows[:, 2:].reshape(120, 17, 3), clip * 1000, atol=6e-4)
    assert np.isnan(rows[7, 2:]).all()


def test_c3d_reads_back_with_independent_readers(clip: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "m.c3d"
    write_c3d(clip, 30.0, path)
    ezc3d = pytest.importorskip("ezc3d")
    c = ezc3d.c3d(str(path))
    assert c["parameters"]["POINT"]["LABELS"]["value"] == list(MARKER_NAMES)
    assert c["parameters"]["POINT"]["UNITS"]["value"] == ["mm"]
    assert float(c["parameters"]["POINT"]["RATE"]["value"][0]) == 30.0
    got = c["data"]["points"][:3].transpose(2, 1, 0)
    assert np.nanmax(np.abs(got - clip * 1000)) < 0.1 and np.isnan(got[7]).all()
    c3d = pytest.importorskip("c3d")
    with path.open("rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no analog data": there is none
        reader = c3d.Reader(fh)
        frames = np.stack([p for _, p, _ in reader.read_frames()])
        assert [s.strip() for s in reader.point_labels] == list(MARKER_NAMES)
    ok = np.isfinite(clip).all(-1)
    assert np.abs(frames[..., :3][ok] - clip[ok] * 1000).max() < 0.1
    assert (frames[7, :, 3] == -1).all() and (frames[ok][:, 3] >= 0).all()


def test_long_c3d_keeps_its_length(tmp_path: Path) -> None:
    """Over 65535 frames the header's 16-bit frame count overflows; TRIAL:ACTUAL_END_FIELD keeps the true length."""
    ezc3d = pytest.importorskip("ezc3d")
    x = np.zeros((70000, 17, 3), np.float32) + np.arange(70000, dtype=np.float32)[:, None, None] * 1e-3
    write_c3d(x, 120.0, tmp_path / "long.c3d")
    pts = ezc3d.c3d(str(tmp_path / "long.c3d"))["data"]["points"]
    assert pts.shape[2] == 70000 and pts[0, 0, -1] == pytest.approx(69999, abs=0.01)


def test_mot_and_csv(clip: np.ndarray, tmp_path: Path) -> None:
    angles = joint_angles(clip)
    write_mot(angles, 30.0, tmp_path / "a.mot")
    lines = (tmp_path / "a.mot").read_text().splitlines()
    end = lines.index("endheader")
    assert "inDegrees=yes" in lines[:end] and f"nRows={len(clip)}" in lines[:end]
    assert lines[end + 1].split("\t") == ["time", *ANGLE_NAMES]
    mot = np.array([[float(v) for v in ln.split("\t")] for ln in lines[end + 2:]])
    np.testing.assert_allclose(mot[:, 1:], angles, atol=1e-4)
    write_angles_csv(angles, 30.0, tmp_path / "a.csv")
    rows = (tmp_path / "a.csv").read_text().splitlines()
    assert rows[0].split(",") == ["frame", "time_s", *ANGLE_NAMES]
    assert rows[8].split(",")[0] == "7" and set(rows[8].split(",")[2:]) == {""}
    back = np.array([[float(v) for v in r.split(",")] for k, r in enumerate(rows[1:]) if k != 7])
    np.testing.assert_allclose(back[:, 2:], np.delete(angles, 7, 0), atol=1e-4)


def test_exports_are_fast(tmp_path: Path) -> None:
    """A 10-minute clip at 60 fps (36,000 frames): angles, TRC, C3D, MOT and CSV together in CPU seconds (the
    machine is shared; measured 2026-12-02 on the 2-core machine: see docs/pipeline.md)."""
    x = np.tile(walk(600, fps=60.0), (60, 1, 1))
    start = time.process_time()
    angles = joint_angles(x)
    write_trc(x, 60.0, tmp_path / "m.trc")
    write_c3d(x, 60.0, tmp_path / "m.c3d")
    write_mot(angles, 60.0, tmp_path / "a.mot")
    write_angles_csv(angles, 60.0, tmp_path / "a.csv")
    rate = len(x) / (time.process_time() - start)
    assert rate > 10000, f"{rate:.0f} frames/s"


def _people(count: int, frames: int = 60) -> list:
    """`count` walkers filmed by one pitched camera, as lifted people sharing the clip's world frame."""
    from bonelift.pipeline.export import Poses3D
    from bonelift.world import estimate_world
    from tests.walker import film

    people = []
    for k in range(count):
        joints, traj, _ = film(walk(frames, start=(-1.0 + 0.8 * k, 4.0 + k)), 10.0, 2.0)
        people.append(Poses3D(joints, np.zeros((frames, 17, 2)), np.ones((frames, 17)), np.zeros(frames, np.int8),
                              30.0, 640, 480, "clip.mp4", k, traj))
    frame = estimate_world([(p.joints, p.trajectory) for p in people], 30.0)
    for p in people:
        p.world = frame
    return people


def _trc_markers(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    return np.array([[float(v) for v in ln.split("\t")[2:]] for ln in lines[6:]]).reshape(-1, 17, 3) / 1000


def test_one_file_set_per_person(tmp_path: Path) -> None:
    """Several people: the main person keeps `poses3d.*`, each further person K gets `poses3d_personK.trc`, `.c3d`,
    `.mot` and `_angles.csv`, each holding that person's markers only (one subject per file, as OpenSim expects)."""
    from bonelift.pipeline.lift import PERSON_FILE, export_all

    people = _people(3)
    export_all(people[0], people, tmp_path)
    for k, p in enumerate(people):
        stem = "poses3d" if k == 0 else f"poses3d_person{k}"
        assert all((tmp_path / f"{stem}{end}").is_file() for end in (".trc", ".c3d", ".mot", "_angles.csv", ".bvh"))
        np.testing.assert_allclose(_trc_markers(tmp_path / f"{stem}.trc"), p.joints_world, atol=6e-7)
        mot = np.loadtxt(tmp_path / f"{stem}.mot", skiprows=7)
        np.testing.assert_allclose(mot[:, 1:], joint_angles(p.joints_world), atol=1e-4)
    assert PERSON_FILE.fullmatch("poses3d_person2_angles.csv") and not PERSON_FILE.fullmatch("poses3d_person2.npz")
    ezc3d = pytest.importorskip("ezc3d")
    got = ezc3d.c3d(str(tmp_path / "poses3d_person2.c3d"))["data"]["points"][:3].transpose(2, 1, 0)
    assert np.abs(got - people[2].joints_world * 1000).max() < 0.1
    alone = tmp_path / "alone"
    alone.mkdir()
    export_all(people[1], [people[1]], alone)
    assert not list(alone.glob("poses3d_person*")) and (alone / "poses3d.trc").is_file()
    np.testing.assert_allclose(_trc_markers(alone / "poses3d.trc"), people[1].joints_world, atol=6e-7)
