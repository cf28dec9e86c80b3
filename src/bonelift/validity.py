"""Structural validity of predicted pose sequences (method 4, Sec. 5.2 and Table 6): left/right
asymmetry per limb, bone-length std across frames, the percentage of elbows/knees outside their normal
range of motion (`metrics.range_of_motion_percentage`, which ground truth passes), and eq. 1's
bent-backwards percentage (the angle loss's own statistic; it flags real elbows too).

Works on any prediction file, without ground truth: `bonelift validity PRED.npz`. The file holds
one array per sequence of shape (T, J, 3) (or one (S, T, J, 3) array of S sequences), in metres
unless told otherwise, and optionally a string `layout` (default: guessed from J).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bonelift import metrics
from bonelift.errors import DataError, check_array, require_file
from bonelift.io import atomic_path, read_npz_arrays
from bonelift.skeletons import H36M16, H36M17, HUMANEVA15, MM, Layout, get_layout

_LAYOUT_BY_JOINTS = {17: H36M17, 16: H36M16, 15: HUMANEVA15}


def validity(sequences: list[np.ndarray], layout: Layout, unit_to_mm: float = MM) -> dict[str, Any]:
    """Table 6 quantities for sequences (T, J, 3): symmetry L1 and length std per limb (mm), illegal %."""
    pred = np.concatenate(sequences)
    scale = lambda d: {k: v * unit_to_mm for k, v in d.items()}  # noqa: E731
    return {
        "frames": int(len(pred)),
        "sequences": len(sequences),
        "symmetry": scale(metrics.symmetry_error(pred, layout)),
        "bone_std": scale(metrics.bone_length_std(sequences, layout)),
        "range_of_motion_pct": metrics.range_of_motion_percentage(pred, layout),
        "illegal_angles_pct": metrics.illegal_angle_percentage(pred, layout),
    }


def load_predictions(path: str | Path, layout: str | None = None) -> tuple[list[np.ndarray], Layout]:
    """Sequences and layout of a prediction npz (see the module docstring); malformed files raise DataError."""
    path = require_file(path, "prediction file")
    arrays = read_npz_arrays(path)
    if layout is None and "layout" in arrays:
        layout = str(arrays.pop("layout"))
    arrays.pop("layout", None)
    seqs: list[np.ndarray] = []
    for key, arr in arrays.items():
        if arr.ndim == 4:
            seqs.extend(check_array(a, path, f"{key}[{i}]", (None, None, 3)) for i, a in enumerate(arr))
        elif arr.ndim == 3:
            seqs.append(check_array(arr, path, key, (None, None, 3)))
        else:
            raise DataError(path, f"{key} has shape {arr.shape}, expected (T, J, 3) or (S, T, J, 3)")
    if not seqs:
        raise DataError(path, "no pose arrays found")
    seqs = [s for s in seqs if len(s)]  # an empty sequence has no bones to measure (its means would be NaN)
    if not seqs:
        raise DataError(path, "holds no frames (every pose array has length 0)")
    joints = {s.shape[1] for s in seqs}
    if len(joints) != 1:
        raise DataError(path, f"sequences have different joint counts {sorted(joints)}")
    (j,) = joints
    if layout is not None:
        lay = get_layout(layout, str(path))
    elif j in _LAYOUT_BY_JOINTS:
        lay = _LAYOUT_BY_JOINTS[j]
    else:
        raise DataError(path, f"cannot guess the layout of {j} joints; store a 'layout' string or pass --layout")
    if lay.num_joints != j:
        raise DataError(path, f"layout {lay.name} has {lay.num_joints} joints but the poses have {j}")
    return [s.astype(np.float64) for s in seqs], lay


def markdown_validity(rows: dict[str, dict[str, Any]]) -> str:
    """Table 6 style: one column per model; symmetry L1 and bone-length std per limb (mm), the two illegal %."""
    names = list(rows)
    first = rows[names[0]]
    head = "| | " + " | ".join(names) + " |\n|---" + "|---" * len(names) + "|"
    lines = ["Left/right symmetry, mean L1 (mm):", "", head]
    for limb in first["symmetry"]:
        lines.append(f"| {limb} | " + " | ".join(f"{rows[n]['symmetry'][limb]:.1f}" for n in names) + " |")
    lines += ["", "Bone-length std across frames (mm):", "", head]
    for limb in first["bone_std"]:
        lines.append(f"| {limb} | " + " | ".join(f"{rows[n]['bone_std'][limb]:.1f}" for n in names) + " |")
    lines += ["", "Outside the normal range of motion (% of frames; elbow flexion > 150 deg, knee outside -10..160):",
              "", head]
    for joint in first["range_of_motion_pct"]:
        lines.append(f"| {joint} | " + " | ".join(f"{rows[n]['range_of_motion_pct'][joint]:.2f}" for n in names) + " |")
    lines += ["", "Bent backwards by eq. 1's test (% of frames; the angle loss's statistic, not a validity bound):",
              "", head]
    for joint in first["illegal_angles_pct"]:
        lines.append(f"| {joint} | " + " | ".join(f"{rows[n]['illegal_angles_pct'][joint]:.2f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def validity_file(
    path: str | Path, layout: str | None = None, unit: str = "m", out: str | Path | None = None
) -> tuple[dict, str]:
    """Python API of `bonelift validity`: report on a prediction file; writes `<out>.json/.md` when given."""
    import json

    if unit not in ("m", "mm"):
        raise DataError(None, f"unit must be 'm' or 'mm', got {unit!r}")
    seqs, lay = load_predictions(path, layout)
    report = validity(seqs, lay, MM if unit == "m" else 1.0)
    md = (
        f"### Structural validity of {Path(path).name} ({report['frames']} frames, {report['sequences']} sequences)\n\n"
    )
    md += markdown_validity({Path(path).stem: report})
    if out is not None:
        prefix = Path(out)
        with atomic_path(prefix.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
        with atomic_path(prefix.with_suffix(".md")) as tmp:
            tmp.write_text(md)
    return report, md
