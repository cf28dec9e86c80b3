"""Several people: identities through a crossing, one 3D track per person, --person / --max-people, real clips."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import walking_poses

from bonelift.cli import main
from bonelift.errors import OptionError
from bonelift.pipeline import lift
from bonelift.pipeline.associate import associate, gather
from bonelift.pipeline.export import Poses3D, read_npz, read_people_npz

MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"
FPS = 25.0


def _project(poses: np.ndarray, x_metres: np.ndarray, depth: float) -> np.ndarray:
    """Pixels (T, 17, 2) of root-relative poses walking along x at `depth` metres (1000 px focal, 640x480)."""
    placed = poses + np.stack([x_metres, np.zeros_like(x_metres), np.full_like(x_metres, depth)], -1)[:, None]
    return 1000.0 * placed[..., :2] / placed[..., 2:] + np.array([320.0, 240.0])


def _crossing(frames: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Two people walking towards each other who meet in the middle of the clip: (2, T, 17, 2) pixels."""
    a = _project(walking_poses(frames, seed=1), np.linspace(-1.2, 1.2, frames), 5.0)
    b = _project(walking_poses(frames, seed=2), np.linspace(1.2, -1.2, frames), 5.3)
    return a, b


def _shuffled_slots(people: list[np.ndarray], rng: np.random.Generator, slots: int = 3) -> np.ndarray:
    """Detector-like rows (T, slots, J, 2): the people in a random slot order each frame, NaN in the rest."""
    frames, joints = people[0].shape[:2]
    rows = np.full((frames, slots, joints, 2), np.nan)
    for t in range(frames):
        for slot, person in zip(rng.permutation(slots), people):
            rows[t, slot] = person[t]
    return rows


def test_association_keeps_identities_through_a_crossing() -> None:
    a, b = _crossing()
    rng = np.random.default_rng(0)
    rows = _shuffled_slots([a, b], rng)
    for t in range(29, 32):  # b hidden behind a as they pass: the detector sees only a
        rows[t, [k for k in range(3) if np.allclose(rows[t, k], b[t])]] = np.nan
    tracks = [gather(rows, r, np.nan) for r in associate(rows, max_lost=10)]
    assert len(tracks) == 2
    # each track is one person from start to end: compare with both people wherever the track has a pose
    for track in tracks:
        have = np.isfinite(track).all((1, 2))
        err = [np.abs(track[have] - p[have]).max() for p in (a, b)]
        assert min(err) < 1e-9, f"track mixes the two people (max error {err})"
    assert np.isfinite(tracks[0]).all() and np.isnan(tracks[1][29:32]).all()  # b hidden for 3 frames, not lost


def test_trying_every_pairing_gives_the_hungarian_pairs() -> None:
    from scipy.optimize import linear_sum_assignment

    from bonelift.pipeline.associate import _assign

    rng = np.random.default_rng(0)
    for _ in range(500):
        cost = rng.random(rng.integers(1, 6, 2))
        cost[rng.random(cost.shape) < 0.3] = np.inf  # beyond the gate: never paired
        rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
        hungarian = {(int(r), int(c)) for r, c in zip(rows, cols) if np.isfinite(cost[r, c])}
        assert set(_assign(cost)) == hungarian, cost


def test_greedy_matcher_without_scipy_keeps_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    monkeypatch.setattr("bonelift.pipeline.associate.EXACT_LIMIT", 0)  # too many pairings to try: scipy's turn
    a, b = _crossing()
    rows = _shuffled_slots([a, b], np.random.default_rng(1))
    tracks = [gather(rows, r, np.nan) for r in associate(rows, max_lost=10)]
    assert len(tracks) == 2 and {int(np.argmin([np.abs(t - p).max() for p in (a, b)])) for t in tracks} == {0, 1}
    assert all(min(np.abs(t - p).max() for p in (a, b)) < 1e-9 for t in tracks)


def test_a_person_away_longer_than_max_lost_gets_a_new_id_and_short_tracks_go() -> None:
    a, _ = _crossing(40)
    rows = np.full((40, 2, 17, 2), np.nan)
    rows[:15, 0] = a[:15]
    rows[30:, 1] = a[30:]  # back after 15 frames
    rows[20:22, 0] = a[20:22] + 300  # a two-frame false detection elsewhere
    kept = associate(rows, max_lost=20, min_frames=5)
    assert [int((r >= 0).sum()) for r in kept] == [25]  # max_lost 20 bridges the 15-frame absence
    split = associate(rows, max_lost=10, min_frames=5)
    assert [int((r >= 0).sum()) for r in split] == [15, 10]  # the longest first; the false one dropped


@pytest.fixture(scope="module")
def two_people(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    """A (P, T, J, 2) keypoint file of the crossing; its person 0 is absent for the first 10 frames, so person 1
    is the main person (the longest track); lifted."""
    tmp = tmp_path_factory.mktemp("people")
    a, b = _crossing(40)
    b[:10] = np.nan
    path = tmp / "two.npz"
    np.savez(path, keypoints=np.stack([b, a]), confidence=np.full((2, 40, 17), 0.9), width=640, height=480, fps=FPS,
             layout="h36m17")
    summary = lift(path, tmp / "out", model=tiny_checkpoint, progress=False)
    return path, summary, tmp / "out"


def test_every_person_is_lifted_and_exported(two_people) -> None:
    _, summary, out = two_people
    assert (out / "poses3d_person0.bvh").is_file() and not (out / "poses3d_person1.bvh").exists()
    assert summary.people == {0: 30, 1: 40} and "people: 2" in str(summary) and "(person 1, the longest" in str(summary)
    with np.load(out / "poses3d.npz") as z:
        assert z["joints_all"].shape == (2, 40, 17, 3) and list(z["person_ids"]) == [0, 1] and z["person"] == 1
        np.testing.assert_array_equal(z["joints_all"][1], z["joints"])  # the main person: the longest track
        assert np.isnan(z["joints_all"][0, :10]).all() and np.isfinite(z["joints_all"][0, 10:]).all()
    people = read_people_npz(out / "poses3d.npz")
    assert [p.person for p in people] == [0, 1] and read_npz(out / "poses3d.npz").person == 1
    with (out / "poses3d.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 80 and [r["person"] for r in rows[:4]] == ["0", "1", "0", "1"]
    assert rows[0]["status"] == "missing" and rows[1]["status"] == rows[20]["status"] == "detected"
    assert rows[0]["LWrist_z"] == "" and float(rows[20]["LWrist_z"]) == pytest.approx(people[0].joints[10, 13, 2],
                                                                                        abs=1e-5)
    doc = json.loads((out / "poses3d.json").read_text())
    assert doc["person_ids"] == [0, 1] and doc["person"] == 1
    assert [p["person"] for p in doc["frames"][5]["people"]] == [1]
    assert [p["person"] for p in doc["frames"][15]["people"]] == [0, 1]
    np.testing.assert_allclose(doc["frames"][15]["joints"], people[1].joints[15], atol=1e-5)  # top level: main
    page = (out / "viewer.html").read_text()
    assert '"others":[{"person":0' in page and "D.others" in page


def test_person_selects_one_and_a_rerun_drops_the_other_bvh(two_people, tiny_checkpoint: Path, capsys) -> None:
    path, _, out = two_people
    everyone = read_people_npz(out / "poses3d.npz")
    alone = out.parent / "alone"
    assert main(["lift", str(path), "-o", str(alone), "--model", str(tiny_checkpoint), "--person", "1",
                 "--no-pictures", "--quiet"]) == 0
    capsys.readouterr()
    picked = read_npz(alone / "poses3d.npz")
    assert picked.person == 1
    np.testing.assert_allclose(picked.joints, everyone[1].joints, atol=1e-6)
    assert not list(alone.glob("poses3d_person*.bvh"))
    with (alone / "poses3d.csv").open() as fh:
        assert {r["person"] for r in csv.DictReader(fh)} == {"1"}
    summary = lift(path, out, model=tiny_checkpoint, person=0, pictures=False, progress=False)  # the first folder
    assert not (out / "poses3d_person0.bvh").exists() and not (out / "overlay.mp4").exists()
    assert summary.people == {0: 30} and summary.missing == 10
    np.testing.assert_allclose(read_npz(out / "poses3d.npz").joints, everyone[0].joints, atol=1e-6)


@pytest.mark.parametrize(("options", "message"), [
    ({"person": -1}, re.escape("person (--person) must be")),
    ({"person": 1.5}, re.escape("person (--person) must be a whole number")),
    ({"max_people": 0}, re.escape("max_people (--max-people) must be")),
    ({"person": 4, "max_people": 4}, re.escape("must be below max_people (--max-people) 4")),
    ({"person": 3}, re.escape("person (--person) is 3, but ") + ".*two.npz has 2 people"),
])
def test_bad_person_options(two_people, tiny_checkpoint: Path, tmp_path: Path, options: dict, message: str) -> None:
    path = two_people[0]
    with pytest.raises(OptionError, match=message):
        lift(path, tmp_path / "o", model=tiny_checkpoint, pictures=False, progress=False, **options)
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_bad_max_people(two_people, tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["lift", str(two_people[0]), "-o", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
                 "--max-people", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_people (--max-people) must be" in err[0]


def test_one_person_files_keep_the_single_person_format(tmp_path: Path, tiny_checkpoint: Path) -> None:
    a, _ = _crossing(12)
    path = tmp_path / "one.npz"
    np.savez(path, keypoints=a, width=640, height=480, fps=FPS, layout="h36m17")
    summary = lift(path, tmp_path / "out", model=tiny_checkpoint, pictures=False, progress=False)
    assert summary.people == {0: 12} and "people:" not in str(summary)
    with (tmp_path / "out" / "poses3d.csv").open() as fh:
        assert "person" not in next(csv.reader(fh))
    doc = json.loads((tmp_path / "out" / "poses3d.json").read_text())
    assert "people" not in doc["frames"][0] and "person_ids" not in doc
    assert "D.others" not in (tmp_path / "out" / "viewer.html").read_text()
    with np.load(tmp_path / "out" / "poses3d.npz") as z:
        assert z["joints_all"].shape == (1, 12, 17, 3) and list(z["person_ids"]) == [0]


def test_overlay_draws_each_further_person_in_its_colour() -> None:
    pytest.importorskip("cv2")
    from bonelift.pipeline.render import LEFT_RGB, PERSON_RGB, SideBySide

    joints = walking_poses(4)
    kp = 50.0 * joints[..., :2] + np.array([50.0, 50.0])  # a 2D skeleton about 80 px tall
    main_person = Poses3D(joints, kp, np.ones((4, 17)), np.zeros(4, np.int8), 30.0, 200, 100, "x")
    other = Poses3D(joints, kp + [100.0, 0.0], np.ones((4, 17)), np.zeros(4, np.int8), 30.0, 200, 100, "x", 1)
    alone = SideBySide(main_person, 100).compose(0, None).astype(int)
    both = SideBySide(main_person, 100, [main_person, other]).compose(0, None).astype(int)

    def pixels(img: np.ndarray, rgb: tuple[int, int, int]) -> tuple[int, int]:
        near = np.abs(img - np.array(rgb)).sum(-1) < 30
        return int(near[:, :200].sum()), int(near[:, 200:].sum())  # the picture, the 3D view

    assert pixels(alone, PERSON_RGB[0]) == (0, 0)
    assert min(pixels(both, PERSON_RGB[0])) > 20 and min(pixels(both, LEFT_RGB)) > 20


# --- the real two-person clips (skipped where ../shared/media is absent) -----------------------------------------

def _real_tracks(video: Path) -> tuple[list[np.ndarray], float, int]:
    pytest.importorskip("mediapipe")
    from bonelift.pipeline.detect import detect_people
    from bonelift.pipeline.frames import open_frames

    src = open_frames(video)
    points, _ = detect_people(src, max_people=4, progress=False, workers=1)
    rows = associate(points, max_lost=round(src.fps), min_frames=round(src.fps / 2))
    return [gather(points, r, np.nan) for r in rows], src.fps, src.height


def _pelvis(track: np.ndarray) -> np.ndarray:
    return track[:, [23, 24]].mean(1)  # MediaPipe hips


def _no_jumps(track: np.ndarray, height: int) -> bool:
    hip = _pelvis(track)
    have = np.flatnonzero(np.isfinite(hip).all(-1))
    step = np.linalg.norm(np.diff(hip[have], axis=0), axis=-1) / np.maximum(np.diff(have), 1)
    return bool((step < 0.08 * height).all())


_TWO_PROCESSES = """
import sys
import numpy as np
from bonelift.pipeline.associate import associate, gather
from bonelift.pipeline.detect import detect_people
from bonelift.pipeline.frames import open_frames
src = open_frames(sys.argv[1])
points, _ = detect_people(src, max_people=4, progress=False, workers=2)
rows = associate(points, max_lost=round(src.fps), min_frames=round(src.fps / 2))
np.save(sys.argv[2], np.stack([gather(points, r, np.nan) for r in rows]))
"""


@pytest.mark.skipif(not (MEDIA / "sports2d_demo.mp4").is_file(), reason="../shared/media not present")
@pytest.mark.slow
def test_sports2d_clip_gives_two_long_tracks_without_swaps(tmp_path: Path) -> None:
    """Two detection processes (`--workers 2`; a fresh interpreter, so that it may fork): one track per person."""
    import os
    import subprocess

    pytest.importorskip("mediapipe")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _TWO_PROCESSES, str(MEDIA / "sports2d_demo.mp4"),
                          str(tmp_path / "tracks.npy")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    tracks = list(np.load(tmp_path / "tracks.npy"))
    frames = [int(np.isfinite(t).all((1, 2)).sum()) for t in tracks]
    long = [t for t, n in zip(tracks, frames) if n >= 60]
    assert len(long) >= 2, frames
    # the man on the cabinet stays one track across the two processes' chunks (163 frames, 6-168)
    assert frames[0] >= 150, frames
    assert all(_no_jumps(t, 994) for t in long[:2])
    # one walks on the grass, one stands on the cabinet: their pelvis heights never mix
    y = [np.nanmedian(_pelvis(t)[:, 1]) for t in long[:2]]
    lo, hi = sorted(range(2), key=lambda k: y[k])
    assert np.nanmax(_pelvis(long[lo])[:, 1]) < np.nanmin(_pelvis(long[hi])[:, 1])


# where the man on the treadmill is (pelvis, pixels) on frame 5 of each Pose2Sim view, read off the frames
TREADMILL_MAN = {"cam01": (425, 740), "cam02": (575, 755), "cam03": (645, 897), "cam04": (415, 975)}


@pytest.mark.skipif(not (MEDIA / "pose2sim_multiperson" / "cam01.mp4").is_file(), reason="../shared/media not present")
@pytest.mark.parametrize("view", sorted(TREADMILL_MAN))
@pytest.mark.slow
def test_pose2sim_treadmill_man_is_one_track(view: str) -> None:
    tracks, _, height = _real_tracks(MEDIA / "pose2sim_multiperson" / f"{view}.mp4")
    assert len(tracks) >= 2  # the woman beside him is found too
    at = np.array(TREADMILL_MAN[view])
    dist = [np.linalg.norm(_pelvis(t)[5] - at) if np.isfinite(_pelvis(t)[5]).all() else np.inf for t in tracks]
    man = tracks[int(np.argmin(dist))]
    assert min(dist) < 60 and np.isfinite(man).all((1, 2)).sum() >= 95  # of 100 frames
    assert _no_jumps(man, height)


def _demo_frames(folder: Path, frames: int, hidden: range) -> Path:
    """The demo clip's first `frames` frames as PNGs in `folder`, the cabinet and the man standing on it blacked
    out on the frames `hidden`."""
    cv2 = pytest.importorskip("cv2")
    from bonelift.pipeline import DEMO_CLIP

    cap = cv2.VideoCapture(str(DEMO_CLIP))
    for i in range(frames):
        ok, img = cap.read()
        assert ok
        if i in hidden:
            img[:185, 120:360] = 0
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    cap.release()
    return folder


@pytest.mark.slow
def test_one_person_video_gives_the_single_person_keypoints(tmp_path: Path) -> None:
    """The demo clip with the man on the cabinet blacked out: the main person's 2D is the single-person run's."""
    pytest.importorskip("mediapipe")
    from bonelift.pipeline.detect import detect, detect_people
    from bonelift.pipeline.frames import open_frames

    src = open_frames(_demo_frames(tmp_path, 20, range(20)), fps=30)
    single, _ = detect(src, progress=False, workers=1)
    points, _ = detect_people(src, max_people=4, progress=False, workers=1)
    rows = associate(points, max_lost=30, min_frames=15)
    assert len(rows) == 1 and (rows[0] >= 0).all()
    np.testing.assert_array_equal(gather(points, rows[0], np.nan), single.keypoints)


def test_file_person_ids_stay_the_files_even_around_an_empty_person(tmp_path: Path, tiny_checkpoint: Path) -> None:
    a, b = _crossing(10)
    path = tmp_path / "three.npz"
    np.savez(path, keypoints=np.stack([a, np.full_like(a, np.nan), b]), width=640, height=480, fps=FPS, layout="h36m17")
    summary = lift(path, tmp_path / "out", model=tiny_checkpoint, pictures=False, progress=False, max_people=None)
    assert summary.people == {0: 10, 2: 10}
    with np.load(tmp_path / "out" / "poses3d.npz") as z:
        assert list(z["person_ids"]) == [0, 2] and z["joints_all"].shape == (2, 10, 17, 3)
    assert (tmp_path / "out" / "poses3d_person2.bvh").is_file()
    with pytest.raises(OptionError, match=re.escape("person (--person) is 1, but ") + ".*ids 0, 2"):
        lift(path, tmp_path / "o2", model=tiny_checkpoint, pictures=False, progress=False, person=1)


@pytest.mark.slow
def test_a_photograph_gives_every_person_in_it(tmp_path: Path) -> None:
    """A still image is searched until everyone in it is found (video search spreads over frames)."""
    import cv2

    from bonelift.bench.footage import FOOTAGE_DIR

    clip = FOOTAGE_DIR / "cam01.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not present (the Pose2Sim footage in ../shared/media)")
    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    cap.release()
    assert ok
    photo = tmp_path / "two_people.jpg"
    cv2.imwrite(str(photo), frame)
    summary = lift(photo, tmp_path / "out", pictures=False, progress=False)
    assert len(summary.people) == 2 and all(n == 1 for n in summary.people.values())


def test_searches_for_more_people_back_off_while_they_find_nobody() -> None:
    """The search cadence: every FIND_EVERY frames for PATIENCE misses, then doubling up to FIND_BACKOFF times."""
    from bonelift.pipeline import detect

    waits = [detect._search_wait(m) for m in range(detect.PATIENCE + 5)]
    every, backoff = detect.FIND_EVERY, detect.FIND_BACKOFF
    assert waits[: detect.PATIENCE + 1] == [every] * (detect.PATIENCE + 1)
    assert waits[detect.PATIENCE + 1] == 2 * every
    assert all(a <= b for a, b in zip(waits, waits[1:])) and waits[-1] == every * backoff


@pytest.mark.slow
def test_a_person_hidden_for_a_moment_is_found_again_at_their_last_place(tmp_path: Path) -> None:
    """The demo clip with the man on the cabinet blacked out on frames 15-17: his tracker loses him, and the
    searches at his last place start a tracker on him again once he is back."""
    pytest.importorskip("mediapipe")
    from bonelift.pipeline.detect import detect_people
    from bonelift.pipeline.frames import open_frames

    points, _ = detect_people(open_frames(_demo_frames(tmp_path, 36, range(15, 18)), fps=30), max_people=4,
                              progress=False, workers=1)
    people = np.isfinite(points).all(-1).all(-1).sum(1)
    assert (people[10:15] == 2).all() and (people[15:18] == 1).all(), people
    assert (people[26:] == 2).all(), people


@pytest.mark.slow
def test_a_reused_tracker_graph_gives_the_keypoints_of_a_new_one(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The man on the cabinet lost on frames 15-17 and found again: his new tracker reuses the graph of the lost
    one (cleared by losing him), and every keypoint is the one a new graph gives."""
    pytest.importorskip("mediapipe")
    from bonelift.pipeline import detect
    from bonelift.pipeline.frames import open_frames

    src = open_frames(_demo_frames(tmp_path, 30, range(15, 18)), fps=30)
    made = []
    make = detect._tracker_graph
    monkeypatch.setattr(detect, "_tracker_graph", lambda *a, **k: made.append(1) or make(*a, **k))
    reused = detect.detect_people(src, max_people=4, progress=False, workers=1, world=True)
    graphs = len(made)
    monkeypatch.setattr(detect._Graphs, "stop", lambda self, person: person.close())  # never reuse
    fresh = detect.detect_people(src, max_people=4, progress=False, workers=1, world=True)
    assert len(made) - graphs > graphs  # the run without reuse made more graphs
    for a, b in zip(reused, fresh):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_search_finds_the_man_on_the_cabinet_on_the_first_frame(tmp_path: Path) -> None:
    """The searches run MediaPipe's person detector alone (the tracker they start checks it with landmarks): on
    the demo clip the woman is tracked from the first frame and the man on the cabinet found on that frame too
    (the still-image Pose run searches used before found him on the ninth)."""
    pytest.importorskip("mediapipe")
    from bonelift.pipeline.detect import detect_people
    from bonelift.pipeline.frames import open_frames

    points, _ = detect_people(open_frames(_demo_frames(tmp_path, 6, range(0)), fps=30), max_people=4,
                              progress=False, workers=1)
    people = np.isfinite(points).all(-1).all(-1)
    assert (people.sum(1) == 2).all(), people.sum(1)
    man = points[0][people[0]][np.argmin(points[0][people[0]][:, 0, 1])]  # the higher head
    assert man[:, 1].max() < 190  # on the cabinet (its top is at y ~ 165 of 360)


def test_a_spare_tracker_graph_loads_ahead_only_while_more_people_can_come() -> None:
    """`_Graphs` keeps one graph loading beside the trackers while fewer than `others` trackers are out, so a
    person found later starts on a loaded graph; once every slot is out, nothing more loads."""
    import concurrent.futures

    from bonelift.pipeline import detect

    made = []

    class Graph:
        def __init__(self) -> None:
            made.append(self)
            self.frames = 0

        def process(self, image: np.ndarray):
            self.frames += 1
            return type("Result", (), {"pose_landmarks": None})()

        def close(self) -> None:
            pass

    pose_mod = type("PoseModule", (), {"Pose": lambda self, **kwargs: Graph()})()
    with concurrent.futures.ThreadPoolExecutor(1) as loader:
        graphs = detect._Graphs(pose_mod, 0.5, loader, others=2)
        graphs.warm()
        graphs.warm()  # one spare at a time
        assert len(made) == 1
        a = graphs.tracker(np.array([0, 0, 10, 10]))
        assert a.pose is made[0] and made[0].frames == 1  # it had loaded on a blank frame
        graphs.warm()
        b = graphs.tracker(np.array([0, 0, 10, 10]))
        assert b.pose is made[1] and len(made) == 2
        graphs.warm()  # both slots out: no spare
        assert len(made) == 2
        graphs.stop(a)  # lost: kept as the spare
        graphs.warm()
        assert len(made) == 2 and graphs.tracker(np.array([0, 0, 10, 10])).pose is made[0]
        graphs.close()
