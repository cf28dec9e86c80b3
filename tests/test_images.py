"""Person crops for method 3's image network: crop geometry, the Human3.6M video-archive loader on a synthetic
archive, the renderer of real poses (determinism, labels, depth order), ImageSet files and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bonelift.cameras import H36M_CAMERA_IDS, Camera
from bonelift.cli import main
from bonelift.datasets import (
    Appearance,
    ImageSet,
    PoseSequence,
    crop_geometry,
    crop_image,
    find_h36m_videos,
    load_h36m,
    load_h36m_video,
    load_image_set,
    render_crop,
    render_image_set,
)
from bonelift.errors import DataError, OptionError
from bonelift.geometry import to_crop
from bonelift.skeletons import H36M17
from tests.conftest import REST_POSE

cv2 = pytest.importorskip("cv2", reason="person crops need OpenCV (pip install 'bonelift[video]')")

# A small camera, so the synthetic videos are tiny: 160 x 120 frames, no distortion.
WIDTH, HEIGHT = 160, 120
CAMERA = Camera(H36M_CAMERA_IDS[0], np.eye(3), np.zeros(3), np.array([200.0, 200.0]), np.array([80.0, 60.0]),
                np.zeros(3), np.zeros(2), WIDTH, HEIGHT)
PELVIS = H36M17.index("Hip")


def _camera_pose(world: np.ndarray, depth: float = 5.0) -> np.ndarray:
    """A world pose (z up, facing -y) in a camera looking along +y at it: x right, y down, z forward."""
    world = np.asarray(world, np.float64)
    return np.stack([world[..., 0], 0.95 - world[..., 2], world[..., 1] + depth], -1)


def _sequence(frames: int, take: str = "Walking 1", subject: str = "S1", camera: Camera = CAMERA) -> PoseSequence:
    """A person walking sideways (3 cm per frame, so every frame has its own crop) in front of `camera`."""
    poses = np.repeat(_camera_pose(REST_POSE)[None], frames, 0)
    poses[..., 0] += (np.arange(frames) * 0.03 - 0.1)[:, None]
    poses = poses.astype(np.float32)
    keypoints = camera.project(poses.astype(np.float64)).astype(np.float32)
    return PoseSequence(subject, take.rpartition(" ")[0] or take, take, camera, keypoints, H36M17, poses, H36M17)


def _blob_green(k: int) -> int:
    """The green level of frame k's blob: frame-specific, 25 levels apart, so a frame off by one shows."""
    return 40 + 25 * k


def _write_video(path: Path, seq: PoseSequence, frames: int, size: tuple[int, int] = (WIDTH, HEIGHT),
                 fps: float = 50.0) -> None:
    """Dark frames with a bright blob on the pelvis's projection; its green channel encodes the frame index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    pelvis = seq.camera.project(seq.poses_3d[:, PELVIS].astype(np.float64))
    for k in range(frames):
        frame = np.full((size[1], size[0], 3), 12, np.uint8)
        x, y = np.round(pelvis[k]).astype(int).tolist()
        cv2.circle(frame, (x, y), 9, (230, _blob_green(k), 255), -1)  # BGR: red and blue high, green = k
        writer.write(frame)
    writer.release()


def test_crop_puts_a_frame_point_where_its_crop_coordinates_say(tmp_path: Path) -> None:
    """No codec involved: a dot drawn at a joint's pixel lands at the joint's crop coordinates, also when the
    crop shrinks the frame by more than 2x (the pyramid path) and when the box leaves the frame (border fill)."""
    frame = np.zeros((400, 600, 3), np.uint8)
    points = np.array([[300.0, 100.0], [330.0, 350.0], [260.0, 200.0]])
    cv2.circle(frame, (330, 350), 6, (255, 255, 255), -1)
    for size in (32, 250):
        box, affine, joints2d = crop_geometry(points, size, margin=1.4)
        assert np.allclose(box, [295.0, 225.0, 350.0]) and np.allclose(joints2d, to_crop(points, box))
        crop = crop_image(frame, affine, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        weight = crop[..., 0].astype(float)
        yy, xx = np.mgrid[:size, :size]
        centroid = np.array([(xx * weight).sum(), (yy * weight).sum()]) / weight.sum()
        assert np.abs(centroid - (joints2d[1] * size - 0.5)).max() < 0.25
    _, affine, _ = crop_geometry(np.array([[0.0, 0.0], [50.0, 80.0]]), 40)  # box reaches past the top-left corner
    assert (crop_image(np.full((100, 100, 3), 200, np.uint8), affine, 40, border=0)[0, 0] == 0).all()


def test_video_loader_crops_each_frame_around_its_projected_joints(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    seq = _sequence(10)  # the 3D is longer than the video (8 frames): aligned on the shorter
    _write_video(archive / "S1" / "Videos" / f"Walking 1.{CAMERA.id}.mp4", seq, 8)
    size = 48
    images = load_h36m_video(archive, [seq], stride=2, size=size)
    assert images.source == "video" and len(images) == 4 and list(images.frame) == [0, 2, 4, 6]
    assert images.images.shape == (4, size, size, 3) and images.images.dtype == np.uint8
    assert list(images.subject) == ["S1"] * 4 and list(images.camera) == [CAMERA.id] * 4
    assert np.allclose(images.poses, seq.root_relative[::2][:4], atol=1e-6)
    for i, k in enumerate(images.frame):
        crop = images.images[i].astype(float)  # RGB
        x, y = np.round(images.joints2d[i, PELVIS] * size - 0.5).astype(int)
        centre = crop[y - 1:y + 2, x - 1:x + 2].mean((0, 1))
        assert centre[0] > 200 and centre[2] > 200, "the blob is not where the pelvis projects"
        assert abs(centre[1] - _blob_green(k)) < 12, f"crop {i} shows another frame than {k}"
        border = np.concatenate([crop[:3].reshape(-1, 3), crop[-3:].reshape(-1, 3), crop[:, :3].reshape(-1, 3),
                                 crop[:, -3:].reshape(-1, 3)])
        assert border.mean() < 30
        assert np.allclose(images.joints2d[i], crop_geometry(seq.keypoints[k], size)[2], atol=1e-5)


def test_video_loader_names_missing_absent_and_corrupt_videos(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    present, absent = _sequence(4, "Walking 1"), _sequence(4, "Eating 2")
    _write_video(archive / "S1" / "Videos" / f"Walking 1.{CAMERA.id}.mp4", present, 4)
    expected_missing = archive / "S1" / "Videos" / f"Eating 2.{CAMERA.id}.mp4"
    assert find_h36m_videos(archive, [present, absent])[1] == [expected_missing]
    with pytest.warns(UserWarning, match="Eating 2"):
        images = load_h36m_video(archive, [present, absent], stride=1, size=16)
    assert len(images) == 4 and set(images.action) == {"Walking"}

    # The archive names some S1 takes differently ("TakingPhoto 1" for the 3D file's "Photo 1").
    photo = _sequence(3, "Photo 1")
    _write_video(archive / "S1" / "Videos" / f"TakingPhoto 1.{CAMERA.id}.mp4", photo, 3)
    assert len(load_h36m_video(archive, [photo], stride=1, size=16)) == 3

    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        (tmp_path / "empty").mkdir()
        load_h36m_video(tmp_path / "empty", [present], stride=1, size=16)

    corrupt = tmp_path / "bad" / "S1" / "Videos" / f"Walking 1.{CAMERA.id}.mp4"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not an mp4 file" * 50)
    with pytest.raises(DataError, match="Walking 1.54138969.mp4: cannot open"):
        load_h36m_video(tmp_path / "bad", [present], stride=1, size=16)

    small = tmp_path / "small"  # a resized copy of the archive: the projections would crop the wrong region
    _write_video(small / "S1" / "Videos" / f"Walking 1.{CAMERA.id}.mp4", present, 2, size=(80, 60))
    with pytest.raises(DataError, match="frames are 80x60 but camera 54138969 is 160x120"):
        load_h36m_video(small, [present], stride=1, size=16)
    slow = tmp_path / "slow"  # re-encoded at 25 fps: frame t would be 3D frame 2t
    _write_video(slow / "S1" / "Videos" / f"Walking 1.{CAMERA.id}.mp4", present, 2, fps=25.0)
    with pytest.raises(DataError, match="runs at 25 fps"):
        load_h36m_video(slow, [present], stride=1, size=16)
    with pytest.raises(OptionError, match="stride"):
        load_h36m_video(archive, [present], stride=0, size=16)


def test_renderer_labels_shapes_and_determinism(h36m_root: Path) -> None:
    seqs = load_h36m(h36m_root, "gt", ["S1"])[:4]
    images = render_image_set(seqs, size=32, stride=20, seed=3)
    assert images.source == "render" and len(images) == 8
    assert images.images.shape == (8, 32, 32, 3) and images.images.dtype == np.uint8
    assert images.joints2d.dtype == np.float32 and images.poses.dtype == np.float32
    assert (images.joints2d >= 0).all() and (images.joints2d <= 1).all()
    assert list(images.frame) == [0, 20] * 4 and list(images.camera) == [s.camera.id for s in seqs for _ in "ab"]
    first = seqs[0]
    # Labels: the 3D projected through the real camera (distortion included), in the crop's coordinates.
    assert np.allclose(images.joints2d[1], crop_geometry(first.keypoints[20], 32)[2], atol=1e-5)
    assert np.allclose(images.poses[1], first.root_relative[20], atol=1e-6)
    again = render_image_set(seqs, size=32, stride=20, seed=3)
    assert np.array_equal(images.images, again.images)
    other = render_image_set(seqs, size=32, stride=20, seed=4)
    assert not np.array_equal(images.images, other.images) and np.array_equal(images.joints2d, other.joints2d)
    assert images.images.std() > 10  # not blank


def test_renderer_paints_nearer_parts_over_farther_ones() -> None:
    """A right forearm crossing the belly: in front of the torso its colour shows there, behind it the shirt's."""
    look = Appearance(skin=(220.0, 30.0, 30.0), top=(30.0, 30.0, 220.0), bottom=(30.0, 200.0, 30.0),
                      shoes=(60.0, 60.0, 60.0), long_sleeves=False, light=(0.0, -1.0))
    camera = Camera("test", np.eye(3), np.zeros(3), np.array([1000.0, 1000.0]), np.array([500.0, 500.0]),
                    np.zeros(3), np.zeros(2), 1000, 1000)
    elbow, wrist = H36M17.index("RElbow"), H36M17.index("RWrist")
    size = 160
    for front, expect in ((-1.0, "forearm"), (1.0, "torso")):
        world = REST_POSE.copy()
        world[elbow] = [-0.2, 0.05 * front, 1.1]
        world[wrist] = [0.1, 0.3 * front, 1.05]  # -y is toward the camera
        image, joints2d = render_crop(_camera_pose(world, 4.0), camera, size, np.random.default_rng(0),
                                      appearance=look)
        x, y = np.round((joints2d[elbow] + joints2d[wrist]) / 2 * size - 0.5).astype(int)
        red, _, blue = image[y, x].astype(int)
        assert (red > blue + 60) if expect == "forearm" else (blue > red + 60), (front, image[y, x])


def _tiny_set(n: int = 3) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(
        images=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), joints2d=rng.uniform(0, 1, (n, 17, 2)).astype(
            np.float32), poses=rng.normal(0, 0.3, (n, 17, 3)).astype(np.float32), layout=H36M17,
        subject=np.array(["S1", "S9", "S11"][:n]), action=np.array(["Walking"] * n), camera=np.array(["54138969"] * n),
        frame=np.arange(n, dtype=np.int64), source="render",
    )


class _Trap:
    """Unpickling this creates `marker`: a file refused without unpickling leaves no marker."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_image_set_round_trip_and_pickled_files_are_refused(tmp_path: Path) -> None:
    original = _tiny_set()
    loaded = load_image_set(original.save(tmp_path / "set.npz"))
    for name in ("images", "joints2d", "poses", "subject", "action", "camera", "frame"):
        assert np.array_equal(getattr(loaded, name), getattr(original, name)), name
    assert loaded.layout == H36M17 and loaded.source == "render" and loaded.size == 8
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind

    _Trap.marker = tmp_path / "unpickled"
    arrays = {k: v for k, v in np.load(tmp_path / "set.npz").items()}
    arrays["subject"] = np.array([_Trap(), "S9", "S11"], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(DataError, match="evil.npz: subject holds pickled objects"):
        load_image_set(tmp_path / "evil.npz")
    assert not _Trap.marker.exists()


def test_cli_writes_image_sets_and_never_overwrites_unasked(h36m_root: Path, tmp_path: Path, capsys) -> None:
    def flags(out: Path, stride: int) -> list[str]:
        return ["--data", str(h36m_root), "--subjects", "S1", "--stride", str(stride), "--size", "24",
                "--out", str(out), "--quiet"]

    out = tmp_path / "crops" / "render.npz"
    assert main(["images", "render", *flags(out, 20), "--seed", "1"]) == 0
    assert "24 crops of 24x24 (render)" in capsys.readouterr().out
    written = out.read_bytes()
    assert len(load_image_set(out)) == 24
    assert main(["images", "render", *flags(out, 20), "--seed", "2"]) == 2
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == written
    assert main(["images", "render", *flags(out, 20), "--seed", "2", "--overwrite"]) == 0
    assert out.read_bytes() != written

    # The video source on an archive holding one of S1's 12 videos (5 frames, frame-sized to its camera).
    seq = load_h36m(h36m_root, "gt", ["S1"])[0]
    archive = tmp_path / "archive"
    _write_video(archive / "S1" / "Videos" / f"{seq.take}.{seq.camera.id}.mp4", seq, 5,
                 size=(seq.camera.width, seq.camera.height))
    video_out = tmp_path / "video.npz"
    assert main(["images", "video", "--archive", str(archive), *flags(video_out, 2)]) == 0
    captured = capsys.readouterr()
    assert "11 of 12 videos missing" in captured.err and "3 crops of 24x24 (video)" in captured.out
    assert load_image_set(video_out).source == "video"
    nowhere = tmp_path / "v2.npz"
    assert main(["images", "video", "--archive", str(tmp_path / "nowhere"), *flags(nowhere, 2)]) == 2
    assert "video archive folder not found" in capsys.readouterr().err and not nowhere.exists()
