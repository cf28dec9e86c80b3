from pathlib import Path

import numpy as np
import pytest
import torch

from bonelift.cameras import Camera, calibrate_dlt, load_h36m_cameras, normalize_screen, unnormalize_screen
from bonelift.errors import DataError
from tests.conftest import write_cameras


def _camera() -> Camera:
    return Camera(
        "cam", np.eye(3), np.zeros(3), np.array([1000.0, 990.0]), np.array([500.0, 510.0]),
        np.array([-0.2, 0.24, -0.003]), np.array([-0.0014, -0.001]), 1000, 1000,
    )


def test_distortion_matches_hand_computed_value():
    cam = _camera()
    # x/z = 0.2, y/z = -0.1: r2 = 0.05; radial = 1 - 0.2*0.05 + 0.24*0.0025 - 0.003*0.000125 = 0.990599625
    # tangential term = p1*y + p2*x = -0.0014*(-0.1) + (-0.001)*0.2 = -0.00006
    # x' = 0.2*(0.990599625 - 0.00006) + p2*r2 = 0.198107925 - 0.00005 = 0.198057925
    # y' = -0.1*(0.990539625) + p1*r2 = -0.0990539625 - 0.00007 = -0.0991239625
    pix = cam.project(np.array([0.4, -0.2, 2.0]))
    expected = np.array([0.198057925 * 1000 + 500, -0.0991239625 * 990 + 510])
    np.testing.assert_allclose(pix, expected, atol=1e-9)


def test_projection_numpy_and_torch_agree():
    cam = _camera()
    pts = np.random.default_rng(0).normal([0, 0, 4], [0.5, 0.5, 0.3], (10, 3))
    t = torch.from_numpy(pts)
    f, c, k, p = (torch.from_numpy(a) for a in (cam.f, cam.c, cam.k, cam.p))
    from bonelift.cameras import project

    np.testing.assert_allclose(project(t, f, c, k, p).numpy(), cam.project(pts), atol=1e-9)


def test_project_back_project_round_trip(tmp_path):
    write_cameras(tmp_path / "cameras.h5", ["S1"])
    cam = load_h36m_cameras(tmp_path / "cameras.h5")["S1"]["54138969"]
    rng = np.random.default_rng(1)
    world = rng.normal([0, 0, 1.0], [0.5, 0.5, 0.5], (50, 3))
    cam_pts = cam.world_to_camera(world)
    np.testing.assert_allclose(cam.camera_to_world(cam_pts), world, atol=1e-12)
    back = cam.back_project(cam.project(cam_pts), cam_pts[:, 2])
    np.testing.assert_allclose(back, cam_pts, atol=1e-7)


def test_h36m_camera_file_rotation_is_transposed_and_units_metres(tmp_path):
    write_cameras(tmp_path / "cameras.h5", ["S1"])
    cam = load_h36m_cameras(tmp_path / "cameras.h5")["S1"]["55011271"]
    # the fixture camera looks at (0, 0, 1) from 4.5 m away: that point is on the optical axis
    target = cam.world_to_camera(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(target[:2], 0, atol=1e-9)
    assert 4.0 < target[2] < 5.0
    assert (cam.width, cam.height) == (1000, 1000)


def test_screen_normalisation_round_trip():
    px = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    s = normalize_screen(px, 1000, 1002)
    np.testing.assert_allclose(s[0], [-1, -1.002])
    np.testing.assert_allclose(s[2], [0, 0], atol=1e-12)
    np.testing.assert_allclose(unnormalize_screen(s, 1000, 1002), px)


def test_dlt_recovers_camera():
    cam = Camera("c", np.eye(3), np.array([0.1, -0.2, -4.0]), np.array([900.0, 905.0]), np.array([320.0, 240.0]),
                 np.zeros(3), np.zeros(2), 640, 480)
    world = np.random.default_rng(2).normal(0, 0.7, (200, 3))
    pix = cam.project(cam.world_to_camera(world), distort=False)
    est = calibrate_dlt(world, pix, "c", 640, 480)
    np.testing.assert_allclose(est.f, cam.f, rtol=1e-6)
    np.testing.assert_allclose(est.T, cam.T, atol=1e-6)
    np.testing.assert_allclose(est.world_to_camera(world), cam.world_to_camera(world), atol=1e-6)


def _moving_skeleton(frames: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative joints (T, 17, 3) that turn in place and a trajectory (T, 3) walking across, towards the camera."""
    from bonelift import geometry
    from bonelift.skeletons import H36M17

    rng = np.random.default_rng(4)
    dirs = rng.normal(size=(16, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    rest = geometry.joints_from_directions(dirs, rng.uniform(0.1, 0.45, 16), H36M17)
    angle = np.linspace(0, np.pi, frames)
    rot = np.zeros((frames, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = (np.cos(angle), np.sin(angle), 1.0,
                                                                          -np.sin(angle), np.cos(angle))
    joints = np.einsum("tij,kj->tki", rot, rest - rest[:1])
    s = np.linspace(0, 1, frames)
    trajectory = np.stack([-1.5 + 3 * s, 0.3 + 0.05 * np.sin(8 * s), 7.0 - 4 * s], axis=1)
    return joints, trajectory


def test_root_trajectory_recovers_the_camera_frame_path():
    from bonelift.cameras import assumed_intrinsics, root_trajectory

    joints, trajectory = _moving_skeleton()
    f, c = np.array([1450.0, 1440.0]), np.array([960.0, 540.0])
    points = joints + trajectory[:, None]  # camera frame
    pixels = f * points[..., :2] / points[..., 2:] + c
    conf = np.random.default_rng(0).uniform(0.2, 1.0, pixels.shape[:2])
    est = root_trajectory(joints, pixels, conf, f, c)
    assert 1000 * np.abs(est - trajectory).max() < 1.0  # exact 2D: exact path (here ~1e-9 mm)
    # A joint the detector does not trust (confidence 0) does not move the solution, however wrong it is.
    bad = pixels.copy()
    bad[:, 3] += 200.0
    conf0 = conf.copy()
    conf0[:, 3] = 0.0
    assert 1000 * np.abs(root_trajectory(joints, bad, conf0, f, c) - trajectory).max() < 1.0
    # Missing frames are NaN; all-zero confidences (a filled frame) weigh joints equally; noise stays small.
    pixels[10] = np.nan
    conf[20] = 0.0
    est = root_trajectory(joints, pixels, conf, f, c)
    assert np.isnan(est[10]).all() and np.abs(est[20] - trajectory[20]).max() < 1e-6
    noisy = pixels + np.random.default_rng(1).normal(0, 1.0, pixels.shape)
    err = np.linalg.norm(root_trajectory(joints, noisy, conf, f, c) - trajectory, axis=-1)
    assert np.nanmedian(err) < 0.05  # 1 px noise: centimetres (mostly depth)
    focal, centre = assumed_intrinsics(1920, 1080)
    assert focal == 0.8 * 1920 and tuple(centre) == (960.0, 540.0) and assumed_intrinsics(640, 480, 500.0)[0] == 500.0


def _calibration(tmp_path: Path, **fields: object) -> Path:
    import json

    doc = {"fx": 1400.0, "fy": 1380.0, "cx": 965.0, "cy": 530.0, "distortion": [-0.28, 0.09, 0.001, -0.0015, -0.01],
           "width": 1920, "height": 1080, **fields}
    path = tmp_path / "intrinsics.json"
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    return path


def test_intrinsics_undistort_a_distorted_projection(tmp_path: Path) -> None:
    """A pose projected through a distorting lens with fx != fy comes back as the ideal square-pixel pinhole camera
    (focal fx, same principal point) sees it; OpenCV's undistortPoints agrees where it is installed."""
    from bonelift.cameras import project, read_intrinsics
    from tests.walker import film, walk

    cam = read_intrinsics(_calibration(tmp_path))
    assert cam.width == 1920 and cam.distortion == "opencv"
    joints, traj, _ = film(walk(30), 12.0, 2.0, height=1.4)
    points = joints + traj[:, None] + np.array([0.3, 0.0, 0.0])
    distorted = project(points, cam.f, cam.c, cam.k, cam.p, "opencv")
    ideal = project(points, np.array([cam.f[0], cam.f[0]]), cam.c)
    assert np.abs(distorted - ideal).max() > 20  # the lens moves points by tens of pixels
    assert np.abs(cam.ideal_pixels(distorted) - ideal).max() < 1e-3
    cv2 = pytest.importorskip("cv2")
    k = np.array([[cam.f[0], 0, cam.c[0]], [0, cam.f[1], cam.c[1]], [0, 0, 1]])
    dist = np.array([cam.k[0], cam.k[1], cam.p[0], cam.p[1], cam.k[2]])
    theirs = cv2.undistortPoints(distorted.reshape(-1, 1, 2), k, dist).reshape(distorted.shape) * cam.f[0] + cam.c
    assert np.abs(theirs - ideal).max() < 0.05  # OpenCV stops after 5 fixed-point steps; ours runs 20


@pytest.mark.parametrize(("fields", "message"), [
    ({"fx": None}, "fx must be a number"), ({"fy": -3}, "fy must be a number"), ({"k1": 0.1}, "unknown intrinsics"),
    ({"distortion": [0.1, 0.2]}, "distortion must be 4 or 5"), ({"height": None}, "width and height"),
    ({"width": 1920.5}, "width and height")])
def test_bad_intrinsics_name_the_file_and_field(tmp_path: Path, fields: dict, message: str) -> None:
    from bonelift.cameras import read_intrinsics

    path = _calibration(tmp_path, **fields)
    with pytest.raises(DataError, match=message) as err:
        read_intrinsics(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
