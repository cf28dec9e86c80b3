"""`lift()` end to end on a synthetic 2D keypoint file (no detector): exports, BVH round trip, bad input."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import walking_poses

from bonelift.cli import main
from bonelift.errors import DataError, OptionError
from bonelift.fitting import fit_skeleton, subject_bone_lengths
from bonelift.pipeline import bvh, lift
from bonelift.pipeline.export import read_npz
from bonelift.pipeline.lift import OUTPUT_FILES
from bonelift.skeletons import H36M17
from bonelift.world import WorldFrame

FPS = 25.0


def _keypoint_file(path: Path, frames: int = 30, drop: tuple[int, ...] = (7, 8)) -> Path:
    """Project a walking person (5 m in front of a 1000 px camera) to a 640x480 image; drop some frames."""
    poses = walking_poses(frames) + np.array([0.0, 0.0, 5.0])
    kp = 1000.0 * poses[..., :2] / poses[..., 2:] + np.array([320.0, 240.0])
    kp[list(drop)] = np.nan
    np.savez(path, keypoints=kp, confidence=np.full(kp.shape[:2], 0.8), width=640, height=480, fps=FPS, layout="h36m17")
    return path


@pytest.fixture(scope="module")
def lifted(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    tmp = tmp_path_factory.mktemp("lift")
    kp_file = _keypoint_file(tmp / "walk.npz")
    summary = lift(kp_file, tmp / "out", model=tiny_checkpoint, progress=False)
    return summary, tmp / "out"


def test_lift_writes_every_output_and_nothing_else(lifted) -> None:
    summary, out = lifted
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]  # temporary folder gone
    assert (summary.frames, summary.detected, summary.interpolated, summary.missing) == (30, 28, 2, 0)
    assert set(summary.seconds) == {"read 2D", "lift", "export", "render"}
    assert "frames/s" in str(summary)


def test_pictures_have_every_frame(lifted) -> None:
    cv2 = pytest.importorskip("cv2")
    _, out = lifted
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 30
    h, w = frames[0].shape[:2]
    assert h == 360 and w == 480 + 360  # 640x480 image scaled to 360 px high, beside a square 3D view
    # the 3D panel shows coloured bones on its dark background
    from bonelift.pipeline.render import LEFT_RGB

    panel = frames[10][:, 480:, ::-1].astype(int)
    assert (np.abs(panel - np.array(LEFT_RGB)).sum(-1) < 80).sum() > 50
    from PIL import Image

    with Image.open(out / "overlay.gif") as gif:
        assert gif.n_frames == 15 and gif.size == (w * 2 // 3, h * 2 // 3)  # ~10 fps: every 2nd of 25 fps


def test_npz_json_csv_agree(lifted) -> None:
    _, out = lifted
    poses = read_npz(out / "poses3d.npz")
    assert poses.joints.shape == (30, 17, 3) and poses.fps == FPS and (poses.width, poses.height) == (640, 480)
    np.testing.assert_allclose(poses.joints[:, 0], 0.0)  # root-relative
    assert list(poses.status[6:10]) == [0, 1, 1, 0]
    assert (poses.confidence[7:9] == 0).all() and np.allclose(poses.confidence[0], 0.8)
    with np.load(out / "poses3d.npz") as z:
        assert tuple(z["joint_names"]) == H36M17.joints
    doc = json.loads((out / "poses3d.json").read_text())
    assert doc["joint_names"] == list(H36M17.joints) and doc["fps"] == FPS and len(doc["frames"]) == 30
    np.testing.assert_allclose(np.array(doc["frames"][12]["joints"]), poses.joints[12], atol=1e-5)
    assert doc["frames"][7]["status"] == "interpolated"
    with (out / "poses3d.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and rows[8]["status"] == "interpolated"
    assert float(rows[12]["LWrist_z"]) == pytest.approx(poses.joints[12, H36M17.index("LWrist"), 2], abs=1e-5)


def _bvhio_positions(path: Path, frame: WorldFrame | None = None) -> np.ndarray:
    """(T, 17, 3) H36M joint positions in camera metres, by an independent reader's forward kinematics (a BVH in
    the world `frame` is turned back into the camera frame)."""
    bvhio = pytest.importorskip("bvhio")
    root = bvhio.readAsHierarchy(str(path))
    rows = [next(i for i, j in enumerate(bvh.BVH_JOINTS) if j.h36m == k) for k in range(H36M17.num_joints)]
    names = [bvh.BVH_JOINTS[r].name for r in rows]
    frames = root.getKeyframeRange()[1] + 1
    out = []
    for t in range(frames):
        root.loadPose(t)
        world = {j.Name: np.array(j.PositionWorld) for j, _, _ in root.layout()}
        out.append([world[n] for n in names])
    metres = np.array(out) / bvh.CM_PER_M
    if frame is None:
        return metres * np.array([1.0, -1.0, -1.0])
    return (metres + [0.0, frame.floor_height, 0.0]) @ frame.world_from_camera


def test_bvh_round_trip_within_a_millimetre(lifted) -> None:
    _, out = lifted
    poses = read_npz(out / "poses3d.npz")
    text = (out / "poses3d.bvh").read_text()
    assert f"Frames: {poses.num_frames}" in text and f"Frame Time: {1 / FPS:.8f}" in text
    lengths = subject_bone_lengths(poses.joints, H36M17)
    fitted = fit_skeleton(poses.joints, lengths, H36M17)
    with np.load(out / "poses3d.npz") as z:  # the BVH is in the world frame
        world = WorldFrame(z["world_from_camera"], float(z["floor_height"]), 0.0, 0)
    read_back = _bvhio_positions(out / "poses3d.bvh", world)
    assert np.isfinite(poses.trajectory).all() and (poses.trajectory[:, 2] > 0).all()  # in front of the camera
    np.testing.assert_allclose(read_back[:, 0], poses.trajectory, atol=1e-5)  # the root moves with the trajectory
    read_back -= read_back[:, :1]
    error_mm = 1000 * np.abs(read_back - fitted).max()
    assert error_mm < 1.0, f"BVH round trip error {error_mm:.4f} mm"
    # the BVH skeleton's bones have the median lengths of the prediction
    from bonelift.geometry import bone_lengths

    np.testing.assert_allclose(
        bone_lengths(read_back, H36M17), np.broadcast_to(lengths, (poses.num_frames, 16)), atol=1e-5
    )


def test_bvh_solver_on_awkward_poses(tmp_path: Path) -> None:
    """Arbitrary (even non-human) poses, missing frames held: forward kinematics still matches exactly."""
    rng = np.random.default_rng(3)
    joints = walking_poses(12) + rng.normal(0, 0.15, (12, 17, 3))
    joints -= joints[:, :1]
    joints[4] = np.nan
    fitted, lengths = bvh.write_bvh(joints, 30.0, tmp_path / "a.bvh")
    assert np.isfinite(fitted).all()
    np.testing.assert_allclose(fitted[4], fitted[3])  # held from the nearest frame
    assert 1000 * np.abs(_bvhio_positions(tmp_path / "a.bvh") - fitted).max() < 1.0


def test_missing_shipped_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lifters = importlib.import_module("bonelift.pipeline.lifters")  # where the bundled weights are looked up
    monkeypatch.setattr(lifters, "DEFAULT_WEIGHTS", tmp_path / "absent" / "lifter_h36m17.pt")
    monkeypatch.setattr(lifters, "VIDEO_WEIGHTS", tmp_path / "absent" / "lifter_video.pt")
    kp_file = _keypoint_file(tmp_path / "walk.npz")
    with pytest.raises(DataError, match="pretrained lifter is not installed"):
        lift(kp_file, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def _no_debris(parent: Path, expected: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == expected


def test_wrong_joint_count_leaves_nothing(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = tmp_path / "hand21.npz"
    np.savez(path, keypoints=np.ones((5, 21, 3)))
    with pytest.raises(DataError, match="hand21.npz: has 21 joints per frame"):
        lift(path, tmp_path / "out", model=tiny_checkpoint, progress=False)
    _no_debris(tmp_path, {"hand21.npz"})


def test_unwritable_out_dir(tmp_path: Path, tiny_checkpoint: Path) -> None:
    kp_file = _keypoint_file(tmp_path / "walk.npz")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not_a_folder: parent folder of the output folder exists and is not a folder"):
        lift(kp_file, blocker / "out", model=tiny_checkpoint, progress=False)
    with pytest.raises(DataError, match="not_a_folder: output folder exists and is not a folder"):
        lift(kp_file, blocker, model=tiny_checkpoint, progress=False)
    _no_debris(tmp_path, {"walk.npz", "not_a_folder"})


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("notes.mp4", b"this is a text file, not a video\n" * 10, "not a readable video"),
    ("empty.mp4", b"", "video file is empty"),
])
def test_bad_videos(tmp_path: Path, tiny_checkpoint: Path, name: str, content: bytes, problem: str) -> None:
    pytest.importorskip("cv2")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        lift(path, tmp_path / "out", model=tiny_checkpoint, progress=False)
    assert info.value.source == str(path)
    _no_debris(tmp_path, {name})


def test_rerun_replaces_outputs_in_existing_folder(tmp_path: Path, tiny_checkpoint: Path) -> None:
    kp_file = _keypoint_file(tmp_path / "walk.npz", frames=10, drop=())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    lift(kp_file, out, model=tiny_checkpoint, pictures=False, progress=False)
    assert (
        (out / "keep.txt").read_text() == "mine"
        and (out / "poses3d.bvh").exists()
        and not (out / "overlay.mp4").exists()
    )


def test_cli_lift_reports_errors_and_summary(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    import bonelift

    assert bonelift.lift is lift  # the Python entry point of the issue: bonelift.lift(...)
    kp_file = _keypoint_file(tmp_path / "walk.npz", frames=10, drop=())
    assert (
        main(
            [
                "lift",
                str(kp_file),
                "-o",
                str(tmp_path / "o"),
                "--model",
                str(tiny_checkpoint),
                "--no-pictures",
                "--quiet",
            ]
        )
        == 0
    )
    assert "frames: 10" in capsys.readouterr().out
    assert (
        main(["lift", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o2"), "--model", str(tiny_checkpoint)]) == 2
    )
    assert "missing.mp4: input not found" in capsys.readouterr().err


def test_euler_zxy_rebuilds_the_matrix_even_at_gimbal_lock() -> None:
    rng = np.random.default_rng(0)
    angles = np.radians(rng.uniform(-180, 180, (50, 3)))
    angles[:5, 1] = np.pi / 2  # x at +90 degrees: gimbal lock
    angles[5:10, 1] = -np.pi / 2

    def rot(axis: int, a: np.ndarray) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        m = np.repeat(np.eye(3)[None], len(a), axis=0)
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
        return m

    def zxy(e: np.ndarray) -> np.ndarray:
        return rot(2, e[:, 0]) @ rot(0, e[:, 1]) @ rot(1, e[:, 2])

    matrices = zxy(angles)
    np.testing.assert_allclose(zxy(np.radians(bvh.euler_zxy(matrices))), matrices, atol=1e-7)


def test_mp4_falls_back_to_opencv_without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cv2 = pytest.importorskip("cv2")
    import sys

    from bonelift.pipeline.export import Poses3D
    from bonelift.pipeline.render import render_video

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    joints = walking_poses(5)
    poses = Poses3D(joints, np.full((5, 17, 2), 50.0), np.ones((5, 17)), np.zeros(5, np.int8), 30.0, 200, 100, "x")
    assert render_video(poses, None, tmp_path / "a.mp4", None, panel_height=100, progress=False) == 5
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert (
        int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"mp4v", b"FMP4")
        and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5
    )
    cap.release()


def test_deployable_float16_checkpoint(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The shipped weights may be a `bonelift export` (float16) file: it lifts like the original."""
    from bonelift.checkpoints import export

    half = export(tiny_checkpoint, tmp_path / "half.pt")
    kp_file = _keypoint_file(tmp_path / "walk.npz", frames=8, drop=())
    lift(kp_file, tmp_path / "a", model=tiny_checkpoint, pictures=False, progress=False)
    lift(kp_file, tmp_path / "b", model=half, pictures=False, progress=False)
    a, b = read_npz(tmp_path / "a" / "poses3d.npz"), read_npz(tmp_path / "b" / "poses3d.npz")
    np.testing.assert_allclose(a.joints, b.joints, atol=2e-3)


def test_world_frame_and_biomechanics_outputs(lifted) -> None:
    """The world frame is in npz, JSON and CSV and agrees with the camera-frame joints; TRC and C3D carry it."""
    _, out = lifted
    with np.load(out / "poses3d.npz") as z:
        rot, floor = z["world_from_camera"], float(z["floor_height"])
        joints, traj, world = z["joints"], z["trajectory"], z["joints_world"]
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) and z["world_camera_height"] > 0
    ok = np.isfinite(joints).all(axis=(1, 2))
    want = (joints + traj[:, None]) @ rot.T - [0.0, floor, 0.0]
    np.testing.assert_allclose(world[ok], want[ok], atol=1e-4)
    doc = json.loads((out / "poses3d.json").read_text())
    assert doc["world"]["floor_height"] == pytest.approx(floor)
    np.testing.assert_allclose(doc["frames"][0]["joints_world"], world[0], atol=1e-4)
    header = (out / "poses3d.csv").read_text().splitlines()[0].split(",")
    assert "Hip_world_y" in header and header[-1] == "trajectory_world_z"
    trc = (out / "poses3d.trc").read_text().splitlines()
    np.testing.assert_allclose([float(v) for v in trc[6].split("\t")[2:5]], world[0, 0] * 1000, atol=1e-3)
    assert (out / "poses3d.c3d").stat().st_size > 512 and (out / "poses3d.mot").read_text().count("\n") > 30


def test_filter_and_world_options(tmp_path: Path, tiny_checkpoint: Path) -> None:
    kp_file = _keypoint_file(tmp_path / "walk.npz")
    with pytest.raises(OptionError, match="filter"):
        lift(kp_file, tmp_path / "o", model=tiny_checkpoint, filter="kalman", progress=False)
    with pytest.raises(OptionError, match="biomech"):
        lift(kp_file, tmp_path / "o", model=tiny_checkpoint, world=False, progress=False)
    lift(kp_file, tmp_path / "o", model=tiny_checkpoint, filter="butterworth", world=False, biomech=False,
         pictures=False, progress=False)
    assert not (tmp_path / "o" / "poses3d.trc").exists()
    with np.load(tmp_path / "o" / "poses3d.npz") as z:
        assert "joints_world" not in z.files
