"""Pose2Sim's multi-view demo footage: the Qualisys calibration (`Calib.qca.txt`) read into `Camera` objects.

Qualisys writes intrinsics in sub-pixels (1/64 px), the camera centre in millimetres and a rotation
whose y and z axes point the other way from OpenCV's; the reader turns all of it into bonelift's
convention (camera = R @ (P - T), metres, pixels), so the footage's cameras work with
`Camera.project` and `cameras.triangulate` like Human3.6M's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from bonelift.cameras import Camera
from bonelift.errors import DataError, require_file
from bonelift.skeletons import MM

SUBPIXELS = 64.0  # Qualisys intrinsics are in 1/64 pixel
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # camera axes: Qualisys y up, z backwards; OpenCV y down, z forwards
_ROTATION = ("r11", "r12", "r13", "r21", "r22", "r23", "r31", "r32", "r33")


def _numbers(elem: ET.Element, names: tuple[str, ...], path: Path, where: str) -> np.ndarray:
    """The float attributes `names` of `elem`; a missing or non-numeric one is a DataError naming it."""
    values = []
    for name in names:
        raw = elem.get(name)
        if raw is None:
            raise DataError(path, f"{where}: <{elem.tag}> has no attribute {name!r}")
        try:
            value = float(raw)
        except ValueError:
            raise DataError(path, f"{where}: <{elem.tag}> attribute {name}={raw!r} is not a number") from None
        if not np.isfinite(value):
            raise DataError(path, f"{where}: <{elem.tag}> attribute {name}={raw!r} is not finite")
        values.append(value)
    return np.array(values)


def _camera(elem: ET.Element, path: Path, index: int) -> Camera:
    cam_id = elem.get("serial") or f"camera{index}"
    where = f"camera {cam_id!r}"
    transform, intrinsic = elem.find("transform"), elem.find("intrinsic")
    if transform is None or intrinsic is None:
        raise DataError(path, f"{where} lacks a <transform> or <intrinsic> element")
    m = _numbers(transform, _ROTATION, path, where).reshape(3, 3)
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-4) or np.linalg.det(m) < 0:
        raise DataError(path, f"{where}: r11..r33 is not a rotation matrix")
    centre = _numbers(transform, ("x", "y", "z"), path, where) / MM
    f = _numbers(intrinsic, ("focalLengthU", "focalLengthV"), path, where) / SUBPIXELS
    c = _numbers(intrinsic, ("centerPointU", "centerPointV"), path, where) / SUBPIXELS
    k = _numbers(intrinsic, ("radialDistortion1", "radialDistortion2", "radialDistortion3"), path, where)
    p = _numbers(intrinsic, ("tangentalDistortion1", "tangentalDistortion2"), path, where)
    if (f <= 0).any():
        raise DataError(path, f"{where}: focal length {f.tolist()} px is not positive")
    fov = elem.find("fov_video")
    if fov is not None:
        box = _numbers(fov, ("left", "top", "right", "bottom"), path, where)
        width, height = int(box[2] - box[0] + 1), int(box[3] - box[1] + 1)
    else:
        size = _numbers(intrinsic, ("sensorMaxU", "sensorMaxV"), path, where) / SUBPIXELS
        width, height = int(round(size[0])) + 1, int(round(size[1])) + 1
    return Camera(cam_id, QUALISYS_TO_OPENCV @ m, centre, f, c, k, p, width, height, distortion="opencv")


def read_qualisys_calibration(path: str | Path) -> dict[str, Camera]:
    """{serial: Camera} of a Qualisys `.qca.txt` calibration, in file order; DataError on a malformed file."""
    path = require_file(path, "calibration file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(path, f"not a readable XML calibration ({exc})") from None
    elems = root.findall("./cameras/camera")
    if root.tag != "calibration" or not elems:
        raise DataError(path, "no <calibration><cameras><camera> elements: not a Qualisys calibration")
    cams: dict[str, Camera] = {}
    for i, elem in enumerate(elems):
        cam = _camera(elem, path, i)
        if cam.id in cams:
            raise DataError(path, f"camera {cam.id!r} appears twice")
        cams[cam.id] = cam
    return cams
