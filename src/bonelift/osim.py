"""OpenSim for lifted people: a model of bonelift's 17 joints generated in code, fitted to a clip, and OpenSim's
inverse kinematics on the clip's TRC markers (`bonelift opensim OUT/`).

The model (`model_xml`) is one table, `SEGMENTS`: every body, the joint that carries it, the joint's
coordinates (axis, range) and the markers on the body. Markers are the 17 joint centres (TRC names,
`biomech_files.MARKER_NAMES`). Axes are OpenSim's: x forward, **y up**, z to the subject's right, every body
aligned with the pelvis in the default pose (standing, arms hanging). Joints: pelvis free to ground; lumbar at
Spine and neck at Thorax (three rotations each); hips and shoulders balls (flexion about z, adduction about
+-x, internal rotation about +-y, so both sides share signs); knees, elbows and ankles pins (knee and elbow
flexion positive, ankle dorsiflexion positive). Balls are OpenSim CustomJoints (their coordinates are the
clinical angles, a BallJoint's are not); knee and elbow ranges are clamped (which way a hinge bends is
otherwise ambiguous from joint centres), the others are documentation. The ankle has no marker below it
(Human3.6M-17's "Foot" is the ankle), so inverse kinematics holds it at 0 with a coordinate task.

Fitting to the subject (`subject_geometry`): the joint centres are the markers, so the model is not scaled
by ScaleTool's per-segment factors but generated anew with every marker at the clip's median position in
its body's frame (bone lengths along the limbs, pelvis, torso and head points in 3D), which places each
joint centre exactly where the clip has it on average.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.biomech import pelvis_frame
from bonelift.config import OpenSimConfig, configure
from bonelift.errors import DataError
from bonelift.io import writable_dir
from bonelift.pipeline.biomech_files import MARKER_NAMES, MM_PER_M

INSTALL_HINT = "install with pip install --no-deps opensim==4.6"


@dataclass(frozen=True)
class Coordinate:
    """One degree of freedom: name, axis in the joint frame, range in degrees (metres for translations)."""

    name: str
    axis: tuple[float, float, float]
    low: float
    high: float
    clamped: bool = False
    translation: bool = False


@dataclass(frozen=True)
class Segment:
    """A body, the joint to its parent placed at the `at` marker's location in the parent (None: ground origin),
    the joint's kind ("free", "ball", "pin") and coordinates, the markers it carries and its mass fraction."""

    body: str
    parent: str
    joint: str
    at: str | None
    kind: str
    coords: tuple[Coordinate, ...]
    markers: tuple[str, ...]
    mass: float


def _rotations(prefix: str, suffix: str, names: tuple[str, str, str], side: float,
               ranges: tuple[tuple[float, float], ...], clamped: bool = False) -> tuple[Coordinate, ...]:
    """Flexion about z, adduction about side*x, rotation about side*y (side -1 on the left: same signs)."""
    axes = ((0.0, 0.0, 1.0), (side, 0.0, 0.0), (0.0, side, 0.0))
    return tuple(Coordinate(f"{prefix}{n}{suffix}", a, lo, hi, clamped) for n, a, (lo, hi) in zip(names, axes, ranges))


def _sides() -> tuple[Segment, ...]:
    out = []
    for s, side in (("r", 1.0), ("l", -1.0)):
        j = s.upper()
        out += [
            Segment(f"femur_{s}", "pelvis", f"hip_{s}", f"{j}Hip", "ball",
                    _rotations("hip_", f"_{s}", ("flexion", "adduction", "rotation"), side,
                               ((-30, 120), (-50, 30), (-40, 40))), (f"{j}Knee",), 0.100),
            Segment(f"tibia_{s}", f"femur_{s}", f"knee_{s}", f"{j}Knee", "pin",
                    (Coordinate(f"knee_angle_{s}", (0.0, 0.0, -1.0), -10, 140, clamped=True),), (f"{j}Foot",), 0.0465),
            Segment(f"foot_{s}", f"tibia_{s}", f"ankle_{s}", f"{j}Foot", "pin",
                    (Coordinate(f"ankle_angle_{s}", (0.0, 0.0, 1.0), -40, 30),), (), 0.0145),
            Segment(f"humerus_{s}", "torso", f"shoulder_{s}", f"{j}Shoulder", "ball",
                    _rotations("arm_", f"_{s}", ("flex", "add", "rot"), side, ((-90, 180), (-180, 90), (-90, 90))),
                    (f"{j}Elbow",), 0.028),
            Segment(f"forearm_{s}", f"humerus_{s}", f"elbow_{s}", f"{j}Elbow", "pin",
                    (Coordinate(f"elbow_flex_{s}", (0.0, 0.0, 1.0), 0, 150, clamped=True),), (f"{j}Wrist",), 0.022),
        ]
    return tuple(out)


_TRUNK = ((-90, 90), (-90, 90), (-90, 90))
SEGMENTS: tuple[Segment, ...] = (
    Segment("pelvis", "ground", "ground_pelvis", None, "free",
            _rotations("pelvis_", "", ("tilt", "list", "rotation"), 1.0, ((-90, 90), (-90, 90), (-180, 180)))
            + tuple(Coordinate(f"pelvis_t{a}", ax, -100, 100, translation=True)
                    for a, ax in zip("xyz", ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))),
            ("Hip", "RHip", "LHip", "Spine"), 0.142),
    Segment("torso", "pelvis", "lumbar", "Spine", "ball",
            _rotations("lumbar_", "", ("extension", "bending", "rotation"), 1.0, _TRUNK),
            ("Thorax", "RShoulder", "LShoulder"), 0.355),
    Segment("head", "torso", "neck", "Thorax", "ball",
            _rotations("neck_", "", ("extension", "bending", "rotation"), 1.0, _TRUNK), ("Nose", "Head"), 0.081),
    *_sides(),
)
BODY_MASS = 70.0  # kg, split by Winter's segment mass fractions (inverse kinematics does not use masses)

# Default marker locations (metres, in the carrying body): `subject_geometry` of Human3.6M's seven subjects (every
# 20th frame), the median over subjects made left-right symmetric.
DEFAULT_GEOMETRY: dict[str, tuple[float, float, float]] = {
    "Hip": (0.0, 0.0, 0.0), "RHip": (0.0, 0.0, 0.136), "LHip": (0.0, 0.0, -0.136), "Spine": (0.0, 0.253, 0.0),
    "Thorax": (0.0, 0.254, 0.0), "RShoulder": (0.0, 0.2, 0.138), "LShoulder": (0.0, 0.2, -0.138),
    "Nose": (0.066, 0.094, 0.0), "Head": (0.0, 0.187, 0.0),
    "RKnee": (0.0, -0.452, 0.0), "LKnee": (0.0, -0.452, 0.0), "RFoot": (0.0, -0.454, 0.0), "LFoot": (0.0, -0.454, 0.0),
    "RElbow": (0.0, -0.283, 0.0), "LElbow": (0.0, -0.283, 0.0), "RWrist": (0.0, -0.249, 0.0),
    "LWrist": (0.0, -0.249, 0.0),
}
_TRUNK_BODIES = ("pelvis", "torso", "head")  # bodies whose markers are placed in 3D; the others are limbs
_COORD_NAMES = tuple(c.name for s in SEGMENTS for c in s.coords)


def coordinate_names() -> tuple[str, ...]:
    """Every coordinate of the model, in joint order (the columns of the IK motion file after `time`)."""
    return _COORD_NAMES


def _vec(v: tuple[float, ...] | np.ndarray) -> str:
    return " ".join(f"{float(x):.9g}" for x in v)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _offset(frames: ET.Element, name: str, body_path: str, at: tuple[float, ...], turn: float) -> None:
    f = _sub(frames, "PhysicalOffsetFrame", name=name)
    _sub(f, "socket_parent", body_path)
    _sub(f, "translation", _vec(at))
    _sub(f, "orientation", _vec((0.0, turn, 0.0)))


def _coordinate(coords: ET.Element, c: Coordinate, default: float) -> None:
    scale = 1.0 if c.translation else math.pi / 180.0
    el = _sub(coords, "Coordinate", name=c.name)
    _sub(el, "default_value", f"{default:.9g}")
    _sub(el, "range", _vec((c.low * scale, c.high * scale)))
    _sub(el, "clamped", str(c.clamped).lower())
    _sub(el, "locked", "false")


def _spatial_transform(joint: ET.Element, coords: tuple[Coordinate, ...]) -> None:
    """Three rotations then three translations; translations without a coordinate are constant 0."""
    st = _sub(joint, "SpatialTransform")
    rot = [c for c in coords if not c.translation]
    trans = {c.axis: c for c in coords if c.translation}
    for k, c in enumerate(rot, 1):
        ax = _sub(st, "TransformAxis", name=f"rotation{k}")
        _sub(ax, "coordinates", c.name)
        _sub(ax, "axis", _vec(c.axis))
        _sub(_sub(ax, "LinearFunction", name="function"), "coefficients", "1 0")
    for k, axis in enumerate(((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), 1):
        ax = _sub(st, "TransformAxis", name=f"translation{k}")
        _sub(ax, "coordinates", trans[axis].name if axis in trans else "")
        _sub(ax, "axis", _vec(axis))
        if axis in trans:
            _sub(_sub(ax, "LinearFunction", name="function"), "coefficients", "1 0")
        else:
            _sub(_sub(ax, "Constant", name="function"), "value", "0")


def model_xml(geometry: dict[str, tuple[float, float, float]] | None = None, name: str = "bonelift17",
              defaults: dict[str, float] | None = None) -> str:
    """The OpenSim 4 model (.osim text) with markers at `geometry` (marker -> location in its body, metres;
    default `DEFAULT_GEOMETRY`) and coordinate default values `defaults` (radians / metres; default 0)."""
    geo = {**DEFAULT_GEOMETRY, **(geometry or {})}
    carrier = {m: s.body for s in SEGMENTS for m in s.markers}
    doc = ET.Element("OpenSimDocument", Version="40000")
    model = _sub(doc, "Model", name=name)
    _sub(model, "credits", "generated by bonelift (bonelift.osim.model_xml), MIT licence")
    _sub(model, "length_units", "meters")
    _sub(model, "force_units", "N")
    _sub(model, "gravity", "0 -9.80665 0")
    bodies = _sub(_sub(model, "BodySet", name="bodyset"), "objects")
    joints = _sub(_sub(model, "JointSet", name="jointset"), "objects")
    markers = _sub(_sub(model, "MarkerSet", name="markerset"), "objects")
    for s in SEGMENTS:
        body = _sub(bodies, "Body", name=s.body)
        mass = s.mass * BODY_MASS
        _sub(body, "mass", f"{mass:.6g}")
        centre = np.mean([geo[m] for m in s.markers], axis=0) / 2 if s.markers else np.zeros(3)
        _sub(body, "mass_center", _vec(centre))
        _sub(body, "inertia", _vec((mass * 0.01,) * 3 + (0.0,) * 3))
        tag = {"free": "CustomJoint", "ball": "CustomJoint", "pin": "PinJoint"}[s.kind]
        joint = _sub(joints, tag, name=s.joint)
        _sub(joint, "socket_parent_frame", f"{s.parent}_offset")
        _sub(joint, "socket_child_frame", f"{s.body}_offset")
        coords = _sub(joint, "coordinates")
        for c in s.coords:
            _coordinate(coords, c, (defaults or {}).get(c.name, 0.0))
        frames = _sub(joint, "frames")
        # a pin turns about its frames' z: a half turn about y points z to the left (knee flexion positive)
        turn = math.pi if s.kind == "pin" and s.coords[0].axis[2] < 0 else 0.0
        parent_path = "/ground" if s.parent == "ground" else f"/bodyset/{s.parent}"
        _offset(frames, f"{s.parent}_offset", parent_path, geo[s.at] if s.at else (0.0, 0.0, 0.0), turn)
        _offset(frames, f"{s.body}_offset", f"/bodyset/{s.body}", (0.0, 0.0, 0.0), turn)
        if tag == "CustomJoint":
            _spatial_transform(joint, s.coords)
    for m in MARKER_NAMES:
        el = _sub(markers, "Marker", name=m)
        _sub(el, "socket_parent_frame", f"/bodyset/{carrier[m]}")
        _sub(el, "location", _vec(geo[m]))
        _sub(el, "fixed", "false")
    ET.indent(doc)
    return '<?xml version="1.0" encoding="UTF-8" ?>\n' + ET.tostring(doc, encoding="unicode") + "\n"


def read_trc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times (T,), markers (T, 17, 3) metres, NaN where missing) of a bonelift TRC file (`biomech_files.write_trc`);
    a DataError naming the file when it is not one."""
    try:
        lines = path.read_text().splitlines()
        meta = dict(zip(lines[1].split("\t"), lines[2].split("\t")))
        names = [n for n in lines[3].split("\t")[2:] if n]
        rows = np.loadtxt(lines[6:], delimiter="\t", ndmin=2) if len(lines) > 6 else np.zeros((0, 53))
    except (OSError, IndexError, ValueError) as exc:
        raise DataError(path, f"not a readable TRC marker file ({exc})") from None
    if tuple(names) != MARKER_NAMES or rows.shape[1] != 2 + 3 * len(MARKER_NAMES):
        raise DataError(path, f"TRC markers must be bonelift's 17 joints {', '.join(MARKER_NAMES)}")
    scale = {"mm": 1.0 / MM_PER_M, "m": 1.0}.get(meta.get("Units", ""))
    if scale is None:
        raise DataError(path, f"TRC units must be mm or m, got {meta.get('Units')!r}")
    if not np.isfinite(rows[:, 2:]).all(-1).any():
        raise DataError(path, "no frame has every marker")
    return rows[:, 1], rows[:, 2:].reshape(len(rows), -1, 3) * scale


def _local(points: np.ndarray, origin: np.ndarray, fwd: np.ndarray, up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """(T, 3) points in a body frame given by its data axes, as OpenSim coordinates (x forward, y up, z right)."""
    d = points - origin
    return np.stack([(d * fwd).sum(-1), (d * up).sum(-1), -(d * left).sum(-1)], -1)


def _axes(up: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forward, up, left) unit axes with `up` kept and `left` made orthogonal to it."""
    up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    left = left - (left * up).sum(-1, keepdims=True) * up
    left = left / np.linalg.norm(left, axis=-1, keepdims=True)
    return np.cross(left, up), up, left


def subject_geometry(markers: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Every marker's median location in its body (metres, OpenSim axes) over the frames of (T, 17, 3) markers
    that have all of them: pelvis points in the pelvis frame (`biomech.pelvis_frame`), torso points in a frame
    up along Spine -> Thorax, head points in one up along Thorax -> Head, limbs as median bone lengths."""
    x = markers[np.isfinite(markers).all((1, 2))]
    j = {n: x[:, k] for k, n in enumerate(MARKER_NAMES)}
    pelvis = pelvis_frame(x)
    torso = _axes(j["Thorax"] - j["Spine"], j["LShoulder"] - j["RShoulder"])
    head = _axes(j["Head"] - j["Thorax"], torso[2])
    local = {m: _local(j[m], j["Hip"], *pelvis) for m in ("RHip", "LHip", "Spine")}
    local |= {m: _local(j[m], j["Spine"], *torso) for m in ("Thorax", "RShoulder", "LShoulder")}
    local |= {m: _local(j[m], j["Thorax"], *head) for m in ("Nose", "Head")}
    out = {m: tuple(float(v) for v in np.median(p, axis=0)) for m, p in local.items()}
    out["Hip"] = (0.0, 0.0, 0.0)
    for s in SEGMENTS:  # a limb's marker lies on the body's long axis, the median bone length below the joint
        if s.body not in _TRUNK_BODIES and s.markers:
            length = np.median(np.linalg.norm(j[s.markers[0]] - j[s.at], axis=-1))
            out[s.markers[0]] = (0.0, -float(length), 0.0)
    return out


@dataclass(frozen=True)
class InverseKinematics:
    """One TRC file's fit: the files written into OUT/opensim/ and the marker error over its fitted frames."""

    trc: Path
    model: Path
    motion: Path
    report: Path
    frames: int
    rms: float  # metres, over every fitted frame and marker
    max: float  # metres, the largest marker error of any frame

    def __str__(self) -> str:
        return (f"{self.trc.name}: {self.frames} frames, RMS marker error {self.rms * 100:.2f} cm, max "
                f"{self.max * 100:.2f} cm -> {self.model.name}, {self.motion.name}, {self.report.name}")


def trc_files(out_dir: Path, names: tuple[str, ...] = ()) -> list[Path]:
    """The TRC files of a lift's output folder: `names` inside it, or poses3d.trc and every poses3d_person*.trc."""
    if not out_dir.is_dir():
        raise DataError(out_dir, "output folder of `bonelift lift` not found")
    found = [out_dir / n for n in names] if names else sorted(out_dir.glob("poses3d*.trc"))
    missing = [p for p in found if not p.is_file()]
    if missing:
        raise DataError(missing[0], "TRC marker file not found")
    if not found:
        raise DataError(out_dir, "no poses3d.trc (written by `bonelift lift` with the world frame and --biomech on)")
    return found


def import_opensim():  # noqa: ANN201 - the opensim module; its stubs are not typed
    """The `opensim` module, quiet (errors only, no opensim.log in the working folder), or a one-line DataError."""
    try:
        import opensim
    except (ImportError, OSError):
        raise DataError(None, f"`bonelift opensim` needs OpenSim 4.6: {INSTALL_HINT}") from None
    opensim.Logger.setLevelString("error")
    opensim.Logger.removeFileSink()
    return opensim


@contextlib.contextmanager
def _native_stdout_muted() -> Iterator[None]:
    """OpenSim's tools print the model's summary with C++ `cout`, past Python and the Logger: file descriptor 1
    goes to /dev/null meanwhile, so the command prints only its own lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _read_storage(path: Path) -> tuple[list[str], np.ndarray]:
    """(column names, (N, C) values) of an OpenSim storage file (.mot / .sto)."""
    lines = path.read_text().splitlines()
    head = next(k for k, line in enumerate(lines) if line.strip() == "endheader") + 1
    return lines[head].split("\t"), np.loadtxt(lines[head + 1:], delimiter="\t", ndmin=2)


def _start_pose(markers: np.ndarray) -> dict[str, float]:
    """Pelvis heading and position of the first complete frame: where inverse kinematics starts its search
    (OpenSim's first frame starts from the default pose, and a subject facing away is a poor local start)."""
    first = markers[np.isfinite(markers).all((1, 2))][0]
    fwd, _, _ = pelvis_frame(first)
    hip = first[MARKER_NAMES.index("Hip")]
    # the model's x axis turned by the heading about y is (cos, 0, -sin)
    return {"pelvis_rotation": math.atan2(-fwd[2], fwd[0]), "pelvis_tx": hip[0], "pelvis_ty": hip[1],
            "pelvis_tz": hip[2]}


def _fit(osim, trc: Path, times: np.ndarray, markers: np.ndarray, dest: Path,  # noqa: ANN001 - opensim module
         accuracy: float) -> InverseKinematics:
    """Model fitted to one TRC file, OpenSim's inverse kinematics over its complete frames, a report per frame."""
    stem = trc.stem
    complete = np.flatnonzero(np.isfinite(markers).all((1, 2)))
    with tempfile.TemporaryDirectory(dir=dest, prefix=".ik-") as tmp_dir:
        tmp = Path(tmp_dir)
        model_path = tmp / f"{stem}.osim"
        model_path.write_text(model_xml(subject_geometry(markers), stem, _start_pose(markers)))
        model = osim.Model(str(model_path))  # held here: the tool keeps only a reference
        ik = osim.InverseKinematicsTool()
        ik.setName(stem)
        ik.setModel(model)
        table = osim.TimeSeriesTableVec3(str(trc))  # OpenSim's own reader; its IK stops at a frame without markers
        for row in np.flatnonzero(~np.isfinite(markers).all((1, 2)))[::-1]:
            table.removeRowAtIndex(int(row))
        table.removeTableMetaDataKey("NumFrames")  # the writer counts them again
        osim.TRCFileAdapter.write(table, str(tmp / "markers.trc"))
        ik.setMarkerDataFileName(str(tmp / "markers.trc"))
        ik.setStartTime(float(times[complete[0]]))
        ik.setEndTime(float(times[complete[-1]]))
        ik.setResultsDir(str(tmp))
        ik.setOutputMotionFileName(str(tmp / f"{stem}_ik.mot"))
        ik.set_accuracy(accuracy)
        ik.set_report_errors(False)
        ik.set_report_marker_locations(True)
        tasks = ik.getIKTaskSet()
        for name in MARKER_NAMES:
            task = osim.IKMarkerTask()
            task.setName(name)
            task.setWeight(1.0)
            tasks.cloneAndAppend(task)
        for c in (c for s in SEGMENTS for c in s.coords if c.name.startswith("ankle_")):
            task = osim.IKCoordinateTask()  # no marker below the ankle: hold it at its default (0)
            task.setName(c.name)
            task.setWeight(1.0)
            task.setValueType(osim.IKCoordinateTask.DefaultValue)
            tasks.cloneAndAppend(task)
        with _native_stdout_muted():
            ik.run()
        columns, located = _read_storage(tmp / f"{stem}_ik_model_marker_locations.sto")
        order = [columns.index(f"{m}_t{a}") for m in MARKER_NAMES for a in "xyz"]
        rows = np.clip(np.searchsorted(times, located[:, 0] - 1e-9), 0, len(times) - 1)
        model_points = located[:, order].reshape(len(rows), -1, 3)
        error = np.linalg.norm(model_points - markers[rows], axis=-1)  # NaN where a marker is missing
        report = tmp / f"{stem}_ik_errors.csv"
        with report.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["frame", "time_s", "rms_m", "max_m", "markers"])
            for r, t, e in zip(rows, located[:, 0], error):
                seen = e[np.isfinite(e)]
                w.writerow([int(r), f"{t:.6f}", f"{np.sqrt(np.mean(seen ** 2)):.6f}" if len(seen) else "",
                            f"{seen.max():.6f}" if len(seen) else "", len(seen)])
        kept = [model_path, tmp / f"{stem}_ik.mot", report]
        for path in kept:
            os.replace(path, dest / path.name)
    seen = error[np.isfinite(error)]
    return InverseKinematics(trc, dest / kept[0].name, dest / kept[1].name, dest / kept[2].name, len(rows),
                             float(np.sqrt(np.mean(seen ** 2))), float(seen.max()))


def opensim(out_dir: str | os.PathLike[str], config: OpenSimConfig | None = None,
            **overrides: object) -> list[InverseKinematics]:
    """`bonelift opensim OUT/`: for each TRC file of a lift's output folder (every person's), a model of
    bonelift's 17 joints fitted to the clip, OpenSim's inverse kinematics, and into OUT/opensim/ the fitted
    model (<trc>.osim), the joint angles (<trc>_ik.mot, degrees) and the marker error per frame
    (<trc>_ik_errors.csv, metres)."""
    o = configure(OpenSimConfig, config, overrides)
    out = Path(out_dir)
    clips = [(p, *read_trc(p)) for p in trc_files(out, o.trc)]
    osim = import_opensim()
    dest = writable_dir(out / "opensim")
    return [_fit(osim, p, times, markers, dest, o.accuracy) for p, times, markers in clips]
