"""OpenSim model and inverse kinematics (`bonelift.osim`): a skeleton posed with known joint angles comes back
from its TRC file through OpenSim 4.6 (skipped, visibly, where OpenSim is not installed)."""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from bonelift.biomech import ANGLE_NAMES, joint_angles
from bonelift.cli import main
from bonelift.errors import DataError, OptionError
from bonelift.osim import (
    DEFAULT_GEOMETRY,
    INSTALL_HINT,
    SEGMENTS,
    coordinate_names,
    model_xml,
    opensim,
    read_trc,
    subject_geometry,
)
from bonelift.pipeline.biomech_files import MARKER_NAMES, write_trc

FPS = 30.0


def _opensim_or_skip():
    return pytest.importorskip("opensim", reason=f"OpenSim is not installed ({INSTALL_HINT})")


def _rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Rotation matrix about a unit axis (Rodrigues)."""
    k = np.asarray(axis, float)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx


def pose(angles: dict[str, float], position: np.ndarray, geometry: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """(17, 3) markers of the model posed by `angles` (degrees; body-fixed rotations in joint order, as OpenSim's
    CustomJoint composes them), computed here without OpenSim."""
    rot, origin, out = {}, {}, {}
    for s in SEGMENTS:
        r = np.eye(3)
        for c in s.coords:
            if not c.translation:
                r = r @ _rotation(c.axis, angles.get(c.name, 0.0))
        if s.parent == "ground":
            rot[s.body], origin[s.body] = r, position
        else:
            origin[s.body] = origin[s.parent] + rot[s.parent] @ np.asarray(geometry[s.at])
            rot[s.body] = rot[s.parent] @ r
        for m in s.markers:
            out[m] = origin[s.body] + rot[s.body] @ np.asarray(geometry[m])
    return np.stack([out[m] for m in MARKER_NAMES])


def _motion(frames: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Known joint angles per frame (degrees) and a pelvis path: walking away from the camera at 140 degrees."""
    t = np.arange(frames) / FPS
    s = np.sin(2 * np.pi * t)
    angles = {
        "pelvis_rotation": np.full(frames, 140.0), "pelvis_tilt": 5 + 2 * s, "pelvis_list": 3 * s,
        "lumbar_extension": -8 + 3 * s, "lumbar_bending": 2 * s, "lumbar_rotation": 5 * s,
        "hip_flexion_r": 25 * s, "hip_flexion_l": -25 * s, "hip_adduction_r": 4 + 0 * s, "hip_adduction_l": 2 * s,
        "hip_rotation_r": 5 * s, "knee_angle_r": 35 + 30 * s, "knee_angle_l": 35 - 30 * s,
        "arm_flex_r": -20 * s, "arm_flex_l": 20 * s, "arm_add_r": -12 + 0 * s, "arm_add_l": -8 + 0 * s,
        "elbow_flex_r": 50 + 35 * s, "elbow_flex_l": 50 - 35 * s,
    }
    heading = np.array([math.sin(math.radians(140 + 90)), 0.0, math.cos(math.radians(140 + 90))])
    path = np.array([0.5, 0.95, 4.0]) + 1.2 * t[:, None] * heading
    return angles, path


def synthetic_clip(frames: int = 60, scale: float = 1.08) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(T, 17, 3) markers of a subject 8 % larger than the default model, and the angles that posed them."""
    angles, path = _motion(frames)
    geometry = {m: tuple(scale * v for v in loc) for m, loc in DEFAULT_GEOMETRY.items()}
    clip = np.stack([pose({k: v[i] for k, v in angles.items()}, path[i], geometry) for i in range(frames)])
    return clip, angles


def _read_mot(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text().splitlines()
    head = lines.index("endheader") + 1
    return lines[head].split("\t"), np.loadtxt(lines[head + 1:], delimiter="\t", ndmin=2)


def test_model_is_one_table_with_a_marker_per_joint() -> None:
    root = ET.fromstring(model_xml())
    model = root.find("Model")
    bodies = [b.get("name") for b in model.iter("Body")]
    assert bodies == [s.body for s in SEGMENTS]
    assert [m.get("name") for m in model.iter("Marker")] == list(MARKER_NAMES)
    assert [c.get("name") for c in model.iter("Coordinate")] == list(coordinate_names())
    kinds = {j.get("name"): j.tag for j in model.find("JointSet").find("objects")}
    assert kinds["ground_pelvis"] == "CustomJoint" and kinds["hip_r"] == "CustomJoint"
    assert all(kinds[f"{j}_{s}"] == "PinJoint" for j in ("knee", "ankle", "elbow") for s in "rl")
    knee = next(c for c in model.iter("Coordinate") if c.get("name") == "knee_angle_r")
    low, high = (math.degrees(float(v)) for v in knee.find("range").text.split())
    assert (round(low), round(high)) == (-10, 140) and knee.find("clamped").text == "true"


def test_subject_geometry_recovers_the_posing_geometry() -> None:
    clip, _ = synthetic_clip(30)
    got = subject_geometry(clip)
    for m, loc in DEFAULT_GEOMETRY.items():
        np.testing.assert_allclose(got[m], 1.08 * np.asarray(loc), atol=1e-9, err_msg=m)


def test_synthetic_pose_has_the_geometric_angles_it_was_given() -> None:
    """The test's own forward kinematics agrees with bonelift's joint-centre angles (knee, elbow flexion)."""
    clip, angles = synthetic_clip(30)
    geo = joint_angles(clip)
    np.testing.assert_allclose(geo[:, ANGLE_NAMES.index("knee_flexion_r")], angles["knee_angle_r"][:30], atol=1e-6)
    np.testing.assert_allclose(geo[:, ANGLE_NAMES.index("elbow_flexion_l")], angles["elbow_flex_l"][:30], atol=1e-6)


def test_bad_folders_and_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="output folder of `bonelift lift` not found"):
        opensim(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no poses3d.trc"):
        opensim(tmp_path)
    (tmp_path / "poses3d.trc").write_text("PathFileType\t4\n")
    with pytest.raises(DataError, match="poses3d.trc: not a readable TRC"):
        opensim(tmp_path)
    with pytest.raises(DataError, match="other.trc: TRC marker file not found"):
        opensim(tmp_path, trc=("other.trc",))
    with pytest.raises(OptionError, match="accuracy"):
        opensim(tmp_path, accuracy=0.0)
    assert main(["opensim", str(tmp_path), "--accuracy", "0"]) == 2  # the flag generated from OpenSimConfig
    clip, _ = synthetic_clip(5)
    clip[:] = np.nan
    write_trc(clip, FPS, tmp_path / "poses3d.trc")
    with pytest.raises(DataError, match="no frame has every marker"):
        opensim(tmp_path)


def test_missing_opensim_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    clip, _ = synthetic_clip(5)
    write_trc(clip, FPS, tmp_path / "poses3d.trc")
    monkeypatch.setitem(sys.modules, "opensim", None)  # import opensim raises ImportError
    assert main(["opensim", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bonelift: error: `bonelift opensim` needs OpenSim 4.6: {INSTALL_HINT}"


def test_trc_reads_back(tmp_path: Path) -> None:
    clip, _ = synthetic_clip(10)
    clip[3] = np.nan
    write_trc(clip, FPS, tmp_path / "m.trc")
    times, markers = read_trc(tmp_path / "m.trc")
    np.testing.assert_allclose(times, np.arange(10) / FPS, atol=1e-6)
    np.testing.assert_allclose(markers, clip, atol=1e-6)


def test_inverse_kinematics_recovers_known_angles(tmp_path: Path, capsys) -> None:
    """TRC of a skeleton posed with known angles -> `bonelift opensim` -> the angles, and markers within 2 cm."""
    _opensim_or_skip()
    clip, angles = synthetic_clip(60)
    clip[20] = np.nan  # a missing frame is left out of the fit, not the end of it
    write_trc(clip, FPS, tmp_path / "poses3d.trc")
    assert main(["opensim", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "poses3d.trc: 59 frames, RMS marker error" in printed
    out = tmp_path / "opensim"
    assert sorted(p.name for p in out.iterdir()) == ["poses3d.osim", "poses3d_ik.mot", "poses3d_ik_errors.csv"]
    report = np.genfromtxt(out / "poses3d_ik_errors.csv", delimiter=",", names=True)
    assert len(report) == 59 and 20 not in report["frame"]
    assert np.sqrt(np.mean(report["rms_m"] ** 2)) <= 0.02 and report["max_m"].max() < 0.03
    columns, motion = _read_mot(out / "poses3d_ik.mot")
    rows = report["frame"].astype(int)
    np.testing.assert_allclose(motion[:, 0], rows / FPS, atol=1e-4)
    for name in ("knee_angle_r", "knee_angle_l", "elbow_flex_r", "elbow_flex_l", "hip_flexion_r", "arm_flex_l"):
        np.testing.assert_allclose(motion[:, columns.index(name)], angles[name][rows], atol=1.0, err_msg=name)
    scaled = ET.parse(out / "poses3d.osim").getroot()
    knee = next(m for m in scaled.iter("Marker") if m.get("name") == "RKnee")
    np.testing.assert_allclose([float(v) for v in knee.find("location").text.split()],
                               [0.0, -1.08 * 0.452, 0.0], atol=1e-6)


@pytest.mark.slow
def test_inverse_kinematics_on_a_lifted_clip(tmp_path: Path) -> None:
    """A synthetic walker filmed by a pitched camera, its 2D lifted by the bundled lifter (`bonelift lift`), then
    OpenSim on the lift's TRC: the markers are fitted within 2 cm RMS."""
    _opensim_or_skip()
    from bonelift.pipeline import lift
    from tests.walker import film, walk

    joints, trajectory, _ = film(walk(90), pitch_deg=10.0, roll_deg=2.0)
    camera = joints + trajectory[:, None]
    keypoints = 1000.0 * camera[..., :2] / camera[..., 2:] + np.array([640.0, 360.0])
    np.savez(tmp_path / "walk.npz", keypoints=keypoints, confidence=np.full(keypoints.shape[:2], 0.9), width=1280,
             height=720, fps=FPS, layout="h36m17")
    lift(tmp_path / "walk.npz", tmp_path / "out", pictures=False, progress=False)
    (fit,) = opensim(tmp_path / "out")
    assert fit.frames == 90 and fit.rms <= 0.02, fit
