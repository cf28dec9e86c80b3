"""Every text export of a clip with gaps (one and two people) read back by ordinary parsers equals the arrays it
was written from, within the format's documented precision: the streamed writers change speed, not content."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from bonelift.pipeline.export import read_people_npz
from bonelift.pipeline.lift import export_all
from bonelift.pipeline.track import MISSING, STATUS_NAMES
from bonelift.skeletons import H36M17
from tests.walker import filmed_people

FRAMES = 130


def _clip(people: int) -> list:
    clip = filmed_people(FRAMES, people)
    for k, p in enumerate(clip):
        gap = slice(20 + 30 * k, 35 + 30 * k)
        p.joints[gap], p.trajectory[gap], p.status[gap] = np.nan, np.nan, MISSING
        p.trajectory[40 + k] = np.nan  # a trajectory not known on a posed frame: `null`
        p.joints[50, 3, 1] = np.nan  # one number missing inside a pose: `null` where it is
        p.joints[60, 5] = -1e-9  # rounds to a zero, written without a sign
    return clip


@pytest.fixture(scope="module", params=[1, 2])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    clip = _clip(request.param)
    out = tmp_path_factory.mktemp(f"exports{request.param}")
    export_all(clip[0], clip, out)
    return clip, out


def _close(got, want: np.ndarray, places: int) -> None:
    """`got` (None for null) equals `want` (NaN for missing) to `places` decimals."""
    got = np.array(got, dtype=float)  # None -> NaN
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=0.5 * 10.0 ** -places + 1e-12, equal_nan=True)


def _fields(p, frame: dict, t: int) -> None:
    assert frame["status"] == STATUS_NAMES[int(p.status[t])]
    _close(frame["joints"], p.joints[t], 5)
    _close(frame["keypoints_2d"], p.keypoints_2d[t], 2)
    _close(frame["confidence"], p.confidence[t], 3)
    for key, want in (("trajectory", p.trajectory[t]), ("joints_world", p.joints_world[t]),
                      ("trajectory_world", p.joints_world[t, 0])):
        if np.isfinite(want).all():
            _close(frame[key], want, 5)
        else:
            assert frame[key] is None, (key, t)


def test_json_reads_back(exported) -> None:
    clip, out = exported
    doc = json.loads((out / "poses3d.json").read_bytes())
    assert len(doc["frames"]) == FRAMES and doc["joint_names"] == list(H36M17.joints)
    for t, frame in enumerate(doc["frames"]):
        assert frame["frame"] == t
        _fields(clip[0], frame, t)
        if len(clip) > 1:
            present = [p for p in clip if p.status[t] != MISSING]
            assert [e["person"] for e in frame["people"]] == [p.person for p in present]
            for p, entry in zip(present, frame["people"]):
                _fields(p, entry, t)
    assert doc["frames"][60]["joints"][5] == [0.0, 0.0, 0.0]


def test_csv_reads_back(exported) -> None:
    clip, out = exported
    with (out / "poses3d.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == FRAMES * len(clip)
    cell = lambda text: float(text) if text else np.nan  # noqa: E731 (empty cell: missing)
    for r, row in enumerate(rows):
        t, p = r // len(clip), clip[r % len(clip)]
        assert int(row["frame"]) == t and row["status"] == STATUS_NAMES[int(p.status[t])]
        assert float(row["time_s"]) == pytest.approx(t / p.fps, abs=5e-5)
        if len(clip) > 1:
            assert int(row["person"]) == p.person
        joints = [[cell(row[f"{n}_{a}"]) for a in "xyz"] for n in H36M17.joints]
        _close(joints, p.joints[t], 5)
        _close([cell(row[f"{n}_conf"]) for n in H36M17.joints], p.confidence[t], 3)
        _close([cell(row[f"trajectory_{a}"]) for a in "xyz"], p.trajectory[t], 5)
        _close([[cell(row[f"{n}_world_{a}"]) for a in "xyz"] for n in H36M17.joints], p.joints_world[t], 5)
    assert rows[60 * len(clip)]["Spine_x"] == "0.00000"


def test_viewer_trc_mot_bvh_and_npz_read_back(exported) -> None:
    clip, out = exported
    page = (out / "viewer.html").read_text()
    data = json.loads(re.search(r"const D = (\{.*\});\n", page).group(1))
    others = [o["frames"] for o in data.get("others", [])]
    for p, frames in zip(clip, [data["frames"], *others]):
        assert len(frames) == FRAMES
        for t, pose in enumerate(frames):
            if np.isfinite(p.joints[t]).all():
                _close(pose, p.joints[t], 4)
            else:
                assert pose is None
    lines = (out / "poses3d.trc").read_text().splitlines()
    table = np.array([[float(x) for x in line.split("\t")] for line in lines[6:]])
    assert table.shape == (FRAMES, 2 + 3 * H36M17.num_joints)
    _close(table[:, 2:], clip[0].joints_world.reshape(FRAMES, -1) * 1000, 3)
    mot = (out / "poses3d.mot").read_text().splitlines()
    assert len(mot) == 7 + FRAMES
    motion = (out / "poses3d.bvh").read_text().split("Frame Time:")[1].splitlines()[1:]
    assert len(motion) == FRAMES and all(len(line.split(" ")) == 3 + 3 * 21 for line in motion)
    assert np.isfinite(np.array([[float(x) for x in line.split(" ")] for line in motion])).all()  # gaps held
    for p, back in zip(clip, read_people_npz(out / "poses3d.npz")):
        np.testing.assert_array_equal(back.joints, p.joints.astype(np.float32))
        np.testing.assert_array_equal(back.trajectory, p.trajectory.astype(np.float32))


def test_writers_side_by_side_write_the_same_bytes_as_one_at_a_time(exported, tmp_path) -> None:
    clip, out = exported  # written by `export_all`'s default, two writers at a time
    alone = tmp_path / "one_thread"
    alone.mkdir()
    seconds = export_all(clip[0], clip, alone, threads=1)
    assert sorted(f.name for f in alone.iterdir()) == sorted(f.name for f in out.iterdir())
    for f in alone.iterdir():
        assert f.read_bytes() == (out / f.name).read_bytes(), f.name
    assert {"json", "bvh", "trc", "c3d", "mot", "viewer", "npz"} <= set(seconds)


def test_a_failing_writer_raises_from_export_all(tmp_path, monkeypatch) -> None:
    from bonelift.pipeline import bvh

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bvh, "write_bvh", broken)
    clip = _clip(1)
    with pytest.raises(OSError, match="disk full"):
        export_all(clip[0], clip, tmp_path)
