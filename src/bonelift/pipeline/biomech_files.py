"""Biomechanics files of a lifted person: markers as TRC (OpenSim) and C3D, joint angles as MOT and CSV.

Markers are the 17 joint centres in the world frame (`bonelift.world`: y up, floor at y = 0, metres in,
millimetres in the files), named as Human3.6M names them with "Neck/Nose" written "Nose" (a slash is
not a safe marker name). Missing frames are NaN in TRC, MOT and CSV, and invalid points (residual -1,
coordinates 0) in C3D. The C3D file is written here (no C3D library needed to write): little-endian
("Intel") 32-bit floats, one 512-byte header, the POINT, ANALOG (no channels) and TRIAL groups; clips
longer than 65535 frames keep their true length in TRIAL:ACTUAL_END_FIELD. Every writer formats whole
arrays at once (a 10-minute clip in well under a second).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bonelift.biomech import ANGLE_NAMES
from bonelift.io import Numbers, write_table
from bonelift.skeletons import H36M17

MARKER_NAMES = tuple(n.replace("Neck/Nose", "Nose") for n in H36M17.joints)
MM_PER_M = 1000.0
_BLOCK = 512


def _timed(values: np.ndarray, fps: float) -> np.ndarray:
    """(T, C) values with the frame time (seconds) in front."""
    return np.concatenate([(np.arange(len(values)) / fps)[:, None], values], axis=1)


def _numbers(values: np.ndarray, decimals: list[int], sep: str, nan: str) -> Numbers:
    """A table's rows: `sep` between columns, a newline after each row."""
    return Numbers(values, decimals, [sep] * (values.shape[1] - 1) + ["\n"], nan)


def write_trc(joints_world: np.ndarray, fps: float, path: Path) -> None:
    """(T, 17, 3) world-frame metres as an OpenSim TRC marker file (millimetres, `Frame#`, `Time`, X/Y/Z per marker)."""
    t, n = joints_world.shape[:2]
    head = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{fps:.6g}\t{fps:.6g}\t{t}\t{n}\tmm\t{fps:.6g}\t1\t{t}",
        "Frame#\tTime\t" + "\t\t\t".join(MARKER_NAMES) + "\t\t",
        "\t\t" + "\t".join(f"X{k}\tY{k}\tZ{k}" for k in range(1, n + 1)),
        "",
    ]
    body = np.concatenate([np.arange(1, t + 1)[:, None], _timed(joints_world.reshape(t, -1) * MM_PER_M, fps)], 1)
    with path.open("wb") as fh:
        fh.write(("\n".join(head) + "\n").encode())
        write_table(fh, [_numbers(body, [0, 6] + [3] * (n * 3), "\t", "NaN")], t)


def write_mot(angles: np.ndarray, fps: float, path: Path) -> None:
    """(T, len(ANGLE_NAMES)) degrees as an OpenSim motion (storage) file, `time` first."""
    head = [path.stem, "version=1", f"nRows={len(angles)}", f"nColumns={len(ANGLE_NAMES) + 1}", "inDegrees=yes",
            "endheader", "time\t" + "\t".join(ANGLE_NAMES)]
    with path.open("wb") as fh:
        fh.write(("\n".join(head) + "\n").encode())
        write_table(fh, [_numbers(_timed(angles, fps), [6] + [4] * len(ANGLE_NAMES), "\t", "NaN")], len(angles))


def write_angles_csv(angles: np.ndarray, fps: float, path: Path) -> None:
    """(T, len(ANGLE_NAMES)) degrees as CSV: `frame, time_s, <angle>...`, empty cells where missing."""
    body = np.concatenate([np.arange(len(angles))[:, None], _timed(angles, fps)], axis=1)
    with path.open("wb") as fh:
        fh.write(("frame,time_s," + ",".join(ANGLE_NAMES) + "\n").encode())
        write_table(fh, [_numbers(body, [0, 6] + [4] * len(ANGLE_NAMES), ",", "")], len(body))


def _param(name: str, group: int, kind: int, dims: tuple[int, ...], data: bytes, last: bool = False) -> bytes:
    """One C3D parameter record: name, group id, offset to the next record, type, dimensions, data, no description."""
    key = name.encode("ascii")
    rest = struct.pack("<bB", kind, len(dims)) + bytes(dims) + data + b"\x00"
    return struct.pack("<bb", len(key), group) + key + struct.pack("<h", 0 if last else 2 + len(rest)) + rest


def _group(name: str, group: int) -> bytes:
    key = name.encode("ascii")
    return struct.pack("<bb", len(key), -group) + key + struct.pack("<hB", 3, 0)


def _int16(v: int) -> bytes:
    return struct.pack("<H", v & 0xFFFF)


def _chars(labels: tuple[str, ...] | list[str]) -> tuple[tuple[int, ...], bytes]:
    width = max(len(s) for s in labels)
    return (width, len(labels)), b"".join(s.ljust(width).encode("ascii") for s in labels)


def write_c3d(joints_world: np.ndarray, fps: float, path: Path) -> None:
    """(T, 17, 3) world-frame metres as a C3D file of 17 markers in millimetres (float, Intel byte order)."""
    t, n = joints_world.shape[:2]
    labels_dims, labels = _chars(MARKER_NAMES)
    desc_dims, descs = _chars([f"bonelift joint {j}" for j in H36M17.joints])

    def params(data_start: int) -> bytes:
        records = [
            _group("POINT", 1),
            _param("USED", 1, 2, (), _int16(n)),
            _param("FRAMES", 1, 2, (), _int16(min(t, 0xFFFF))),
            _param("DATA_START", 1, 2, (), _int16(data_start)),
            _param("SCALE", 1, 4, (), struct.pack("<f", -1.0)),
            _param("RATE", 1, 4, (), struct.pack("<f", fps)),
            _param("LABELS", 1, -1, labels_dims, labels),
            _param("DESCRIPTIONS", 1, -1, desc_dims, descs),
            _param("UNITS", 1, -1, (2,), b"mm"),
            _param("X_SCREEN", 1, -1, (2,), b"+X"),
            _param("Y_SCREEN", 1, -1, (2,), b"+Y"),
            _group("ANALOG", 2),
            _param("USED", 2, 2, (), _int16(0)),
            _param("RATE", 2, 4, (), struct.pack("<f", 0.0)),  # no analog channels
            _param("GEN_SCALE", 2, 4, (), struct.pack("<f", 1.0)),
            _group("TRIAL", 3),
            _param("ACTUAL_START_FIELD", 3, 2, (2,), _int16(1) + _int16(0)),
            _param("ACTUAL_END_FIELD", 3, 2, (2,), _int16(t) + _int16(t >> 16), last=True),
        ]
        return b"".join(records)

    size = 4 + len(params(0))
    blocks = -(-size // _BLOCK)
    data_start = 2 + blocks
    section = struct.pack("<BBBB", 1, 0x50, blocks, 84) + params(data_start)
    section = section.ljust(blocks * _BLOCK, b"\x00")
    header = np.zeros(256, "<i2")
    header_bytes = bytearray(header.tobytes())
    header_bytes[0:2] = bytes([2, 0x50])
    struct.pack_into("<HHHHH", header_bytes, 2, n, 0, 1, min(t, 0xFFFF), 0)
    struct.pack_into("<fHHf", header_bytes, 12, -1.0, data_start, 0, fps)
    points = np.zeros((t, n, 4), "<f4")
    valid = np.isfinite(joints_world).all(-1)
    points[..., :3] = np.where(valid[..., None], joints_world * MM_PER_M, 0.0)
    points[..., 3] = np.where(valid, 0.0, -1.0)
    data = points.tobytes()
    data = data.ljust(-(-len(data) // _BLOCK) * _BLOCK, b"\x00")
    path.write_bytes(bytes(header_bytes) + section + data)
