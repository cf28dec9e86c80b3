"""The Pose2Sim calibration reader, weighted triangulation and the wild-footage cross-view scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bonelift.bench import footage as fb
from bonelift.cameras import Camera, reprojection_errors, triangulate
from bonelift.datasets.pose2sim import read_qualisys_calibration
from bonelift.errors import DataError

REAL_CALIB = fb.FOOTAGE_DIR / "Calib.qca.txt"

_CAMERA_XML = """    <camera active="1" serial="{serial}">
      <fov_video bottom="479" left="0" right="639" top="0"/>
      <transform r11="{m[0]}" r12="{m[1]}" r13="{m[2]}" r21="{m[3]}" r22="{m[4]}" r23="{m[5]}" r31="{m[6]}"
                 r32="{m[7]}" r33="{m[8]}" x="{c[0]}" y="{c[1]}" z="{c[2]}"/>
      <intrinsic centerPointU="{u}" centerPointV="{v}" focalLengthU="{fu}" focalLengthV="{fv}"
                 radialDistortion1="-0.05" radialDistortion2="0.1" radialDistortion3="0.01"
                 tangentalDistortion1="0.001" tangentalDistortion2="-0.002"/>
    </camera>
"""


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV world -> camera rotation of a camera at `centre` looking at `target`, world z up."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def _rig(n: int = 4) -> dict[str, Camera]:
    """`n` OpenCV-distorted cameras 3.5 m around the origin, 1.5 m up, all looking at (0, 0, 1)."""
    cams = {}
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        centre = np.array([3.5 * np.cos(a), 3.5 * np.sin(a), 1.5])
        cams[f"cam{i + 1:02d}"] = Camera(
            f"cam{i + 1:02d}", _look_at(centre, np.array([0.0, 0.0, 1.0])), centre, np.array([1200.0, 1190.0]),
            np.array([320.0, 250.0]), np.array([-0.05, 0.1, 0.01]), np.array([0.001, -0.002]), 640, 480,
            distortion="opencv")
    return cams


def _write_xml(path: Path, cams: dict[str, Camera]) -> None:
    body = ""
    for cam in cams.values():
        m = (np.diag([1.0, -1.0, -1.0]) @ cam.R).ravel()  # Qualisys rows: R = diag(1, -1, -1) @ M
        body += _CAMERA_XML.format(serial=cam.id, m=m.tolist(), c=(cam.T * 1000).tolist(), u=cam.c[0] * 64,
                                   v=cam.c[1] * 64, fu=cam.f[0] * 64, fv=cam.f[1] * 64)
    path.write_text(f"<?xml version='1.0'?>\n<calibration>\n  <cameras>\n{body}  </cameras>\n</calibration>\n")


def test_reader_converts_qualisys_conventions(tmp_path: Path) -> None:
    rig = _rig(2)
    _write_xml(tmp_path / "Calib.qca.txt", rig)
    cams = read_qualisys_calibration(tmp_path / "Calib.qca.txt")
    assert list(cams) == list(rig)
    for got, want in zip(cams.values(), rig.values()):
        np.testing.assert_allclose(got.R, want.R, atol=1e-12)
        np.testing.assert_allclose(got.T, want.T, atol=1e-12)  # millimetres -> metres
        np.testing.assert_allclose(got.f, want.f)  # sub-pixels -> pixels
        np.testing.assert_allclose(got.c, want.c)
        np.testing.assert_allclose(got.k, [-0.05, 0.1, 0.01])
        np.testing.assert_allclose(got.p, [0.001, -0.002])
        assert (got.width, got.height, got.distortion) == (640, 480, "opencv")


def test_opencv_distortion_matches_the_opencv_formula() -> None:
    cam = _rig(1)["cam01"]
    x, y = 0.2, -0.1
    r2 = x * x + y * y
    k1, k2, k3 = cam.k
    p1, p2 = cam.p
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    np.testing.assert_allclose(cam.project(np.array([2 * x, 2 * y, 2.0])), [xd * cam.f[0] + cam.c[0],
                                                                           yd * cam.f[1] + cam.c[1]], atol=1e-9)
    np.testing.assert_allclose(cam.image_coords(cam.project(np.array([x, y, 1.0]))), [x, y], atol=1e-9)


@pytest.mark.parametrize("text, problem", [
    ("<calibration><cameras>", "not a readable XML"),
    ("<calibration><cameras/></calibration>", "no <calibration><cameras><camera>"),
    ("<calibration><cameras><camera serial='c1'><transform/><intrinsic/></camera></cameras></calibration>",
     "has no attribute 'r11'"),
])
def test_malformed_calibration_is_a_data_error_naming_the_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "broken.qca.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=problem) as info:
        read_qualisys_calibration(path)
    assert info.value.source == str(path)


def test_non_numeric_attribute_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Calib.qca.txt"
    _write_xml(path, _rig(1))
    path.write_text(path.read_text().replace('focalLengthU="76800.0"', 'focalLengthU="wide"'))
    with pytest.raises(DataError, match="focalLengthU='wide' is not a number"):
        read_qualisys_calibration(path)


def _project(cams: list[Camera], world: np.ndarray) -> np.ndarray:
    return np.stack([c.project(c.world_to_camera(world)) for c in cams])


def test_triangulation_recovers_synthetic_points_exactly() -> None:
    cams = list(_rig().values())
    world = np.random.default_rng(0).normal([0, 0, 1], [0.4, 0.4, 0.5], (7, 5, 3))
    pixels = _project(cams, world)
    np.testing.assert_allclose(triangulate(cams, pixels), world, atol=1e-7)
    # a view with zero weight or NaN pixels does not pull; one view alone gives NaN
    bad = pixels.copy()
    bad[1] += 80.0
    weights = np.ones(pixels.shape[:-1])
    weights[1] = 0.0
    np.testing.assert_allclose(triangulate(cams, bad, weights), world, atol=1e-7)
    bad[2, 0, 0] = np.nan
    weights[[0, 3], 0, 0] = 0.0
    out = triangulate(cams, bad, weights)
    assert np.isnan(out[0, 0]).all() and np.isfinite(out[0, 1:]).all()
    assert reprojection_errors(cams, world, pixels).max() < 1e-6


@pytest.mark.skipif(not REAL_CALIB.is_file(), reason="../shared/media not present")
def test_real_calibration_is_consistent() -> None:
    cams = list(read_qualisys_calibration(REAL_CALIB).values())
    assert [c.id for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    assert all((c.width, c.height) == (1088, 1920) and 1600 < c.f[0] < 1750 for c in cams)
    # a point where the people stand is in front of every camera and inside its frame
    world = np.array([[0.0, 0.0, 1.0], [0.2, -0.4, 0.7], [-1.0, 0.0, 1.2]])
    assert all((c.world_to_camera(world)[:, 2] > 1.0).all() for c in cams)
    pixels = _project(cams, world)
    assert ((pixels > 0) & (pixels < [1088, 1920])).all()
    np.testing.assert_allclose(triangulate(cams, pixels), world, atol=1e-6)
    assert reprojection_errors(cams, triangulate(cams, pixels + 0.5), pixels).max() < 2.0


# --- cross-view scores on a synthetic person ----------------------------------------------------------------------

def _person(t: int, offset: np.ndarray, seed: int) -> np.ndarray:
    """(T, 33, 3) world points of a made-up MediaPipe-33 person moving a little, feet at index 27/28."""
    rng = np.random.default_rng(seed)
    body = rng.normal([0, 0, 0.9], [0.2, 0.2, 0.45], (33, 3))
    body[[27, 28], 2] = 0.05
    wobble = 0.05 * np.sin(np.linspace(0, 3, t))[:, None, None] * rng.normal(size=(1, 33, 3))
    return body + wobble + offset


def _footage(people: list[np.ndarray], shuffle: bool = False) -> fb.Footage:
    cams = _rig()
    tracks = {}
    for i, (view, cam) in enumerate(cams.items()):
        order = people[::-1] if shuffle and i % 2 else people
        tracks[view] = []
        for p in order:
            hip = (p[:, 23] + p[:, 24]) / 2
            world = (p - hip[:, None]) @ cam.R.T  # MediaPipe's landmarks: hip-centred, camera axes
            kp = cam.project(cam.world_to_camera(p))
            tracks[view].append(fb.ViewTrack(view, kp, np.full(kp.shape[:2], 0.9), world))
    return fb.Footage(cams, tracks, 640, 480, 60.0, {})


def test_views_of_one_skeleton_agree_and_a_wrong_rotation_shows() -> None:
    footage = _footage([_person(12, np.zeros(3), 1)])
    footage.people = {"woman": {v: 0 for v in footage.tracks}}
    row = fb.score_footage(fb.MEDIAPIPE_WORLD, footage, "woman")
    assert row["views"] == list(footage.tracks) and row["frames"] == 12
    for key in ("n_mpjpe_views_mm", "p_mpjpe_views_mm", "mpjve_views_mm", "n_mpjpe_ref_mm", "p_mpjpe_ref_mm"):
        assert row[key] < 1e-3, (key, row[key])
    # one view's 3D turned 30 degrees about its camera's y axis: the between-view and reference errors grow
    a = np.radians(30)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    bad = footage.tracks["cam02"][0]
    footage.tracks["cam02"][0] = fb.ViewTrack("cam02", bad.keypoints, bad.confidence, bad.world @ turn.T)
    worse = fb.score_footage(fb.MEDIAPIPE_WORLD, footage, "woman")
    assert worse["n_mpjpe_views_mm"] > 20 and worse["n_mpjpe_ref_per_view_mm"]["cam02"] > 50
    assert worse["n_mpjpe_ref_per_view_mm"]["cam01"] < 1e-3
    assert worse["p_mpjpe_views_mm"] < 1e-3  # a rotation is what P-MPJPE forgives


def test_any_lift_function_is_scored_in_its_camera_frame() -> None:
    footage = _footage([_person(8, np.zeros(3), 2)])
    footage.people = {"woman": {v: 0 for v in footage.tracks}}
    by_pixels = {}
    for (track,) in footage.tracks.values():
        cam_pose, _ = fb._h36m(track.world)
        by_pixels[track.keypoints[0, 0].tobytes()] = 0.5 * cam_pose  # right up to scale

    def lift_fn(kp: np.ndarray, conf: np.ndarray, width: int, height: int, fps: float) -> np.ndarray:
        assert kp.shape == (8, 17, 2) and conf.shape == (8, 17) and (width, height, fps) == (640, 480, 60.0)
        for track in (t[0] for t in footage.tracks.values()):
            if np.allclose(fb._h36m(track.keypoints)[0], kp):
                return by_pixels[track.keypoints[0, 0].tobytes()]
        raise AssertionError("unknown view")

    row = fb.score_footage(lift_fn, footage, "woman")
    assert row["n_mpjpe_views_mm"] < 1e-3 and row["n_mpjpe_ref_mm"] < 1e-3 and row["bone_std_mm"] > 0


@pytest.mark.slow
def test_people_are_followed_across_views_by_geometry() -> None:
    woman = _person(40, np.array([0.5, -0.4, 0.0]), 3)
    man = _person(40, np.array([-0.6, 0.3, 0.2]), 4)  # on the treadmill: his feet are higher
    footage = _footage([woman, man], shuffle=True)
    people = fb.follow_people(footage)
    named = fb.name_people(footage, people)
    assert named["woman"] == {"cam01": 0, "cam02": 1, "cam03": 0, "cam04": 1}
    assert named["man"] == {"cam01": 1, "cam02": 0, "cam03": 1, "cam04": 0}


def test_detect_people_can_return_world_landmarks() -> None:
    pytest.importorskip("mediapipe")
    pytest.importorskip("cv2")
    from bonelift.pipeline import DEMO_CLIP
    from bonelift.pipeline.detect import detect_people
    from bonelift.pipeline.frames import open_frames

    src = open_frames(DEMO_CLIP)
    points, conf, world = detect_people(src, max_people=2, max_frames=4, progress=False, workers=1, world=True)
    assert world.shape == points.shape[:3] + (3,)
    found = np.isfinite(points).all((-1, -2))
    assert found.any() and np.isfinite(world[found]).all() and not np.isfinite(world[~found]).any()
    hips = (world[found][:, 23] + world[found][:, 24]) / 2
    assert np.abs(hips).max() < 0.05  # metres, origin between the hips


def test_left_right_swaps_are_found_and_undone() -> None:
    footage = _footage([_person(12, np.zeros(3), 5)])
    footage.people = {"woman": {v: 0 for v in footage.tracks}}
    frames = np.zeros(12, bool)
    frames[4:9] = True
    footage.tracks["cam03"][0] = footage.tracks["cam03"][0].swapped(frames)  # MediaPipe mixed up left and right
    geo = footage.geometry("woman")
    np.testing.assert_array_equal(geo.swapped[2], frames)
    assert not geo.swapped[[0, 1, 3]].any() and geo.agree.all()
    assert fb.score_footage(fb.MEDIAPIPE_WORLD, footage, "woman")["n_mpjpe_views_mm"] < 1e-3
    kept = fb.score_footage(fb.MEDIAPIPE_WORLD, footage, "woman", fix_swaps=False)
    assert kept["views"] == ["cam01", "cam02", "cam04"] and kept["frames_found"]["cam03"] == 7
