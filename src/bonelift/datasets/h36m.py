"""Human3.6M loaders for three layouts of the files users have.

* bonelift's shared files: `data_3d_h36m_17j.npz` (17 joints, world, metres),
  `data_2d_h36m_<detector>*.npz` ({subject: {take: {camera: (N, J, 2)}}}), `cameras.h5`;
* VideoPose3D files: `data_3d_h36m.npz` (32 joints, metres), `data_2d_h36m_<detector>.npz`
  ({subject: {take: [per-camera arrays]}} plus `metadata`), with `cameras.h5` beside them;
* the original archive: `S*/MyPoses/3D_positions/<take>.h5` (dataset `3D_positions`, (96, N) mm),
  `S*/StackedHourglass/<take>.<camera>.h5` (dataset `poses`, (N, 16, 2)), `cameras.h5`.

All three become the same `PoseSequence`s: one per subject, take and camera, 3D in the camera
frame in metres, 2D either ground truth (projected with distortion) or detections.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bonelift.cameras import H36M_CAMERA_IDS, Camera, load_h36m_cameras
from bonelift.datasets.common import PoseSequence, load_pickled_npz
from bonelift.errors import DataError, check_array, require_file
from bonelift.skeletons import H36M17, H36M32_TO_17, MM, MPII16, Layout, get_layout

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
CANONICAL_ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)
# Column headings used in the papers' per-action tables.
ACTION_ABBREVIATIONS = {
    "Directions": "Dir.", "Discussion": "Disc.", "Eating": "Eat", "Greeting": "Greet", "Phoning": "Phone",
    "Photo": "Photo", "Posing": "Pose", "Purchases": "Purch.", "Sitting": "Sit", "SittingDown": "SitD.",
    "Smoking": "Smoke", "Waiting": "Wait", "WalkDog": "WalkD.", "Walking": "Walk", "WalkTogether": "WalkT.",
}
# Names the original archive uses for some takes of S1.
_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", "WalkingTogether": "WalkTogether"}


def canonical_action(take: str, source: str | Path | None = None) -> str:
    """Map a take name ("Directions 1", "Photo_1", "TakingPhoto") to one of the 15 actions."""
    base = re.sub(r"[ _]\d+$", "", take.strip())
    base = _ACTION_ALIASES.get(base, base)
    if base not in CANONICAL_ACTIONS:
        raise DataError(source, f"unknown Human3.6M action {take!r} (expected one of {', '.join(CANONICAL_ACTIONS)})")
    return base


def _take_key(take: str) -> str:
    """Comparable take name: the 2D files write "Directions_1" where the 3D files write "Directions 1"."""
    return take.replace("_", " ").strip()


def _find(root: Path, pattern: str) -> list[Path]:
    return sorted(root.glob(pattern))


def _read_3d(root: Path) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """World-frame 17-joint poses in metres, {subject: {take: (N, 17, 3)}}, and the format found."""
    f17 = root / "data_3d_h36m_17j.npz"
    f32 = root / "data_3d_h36m.npz"
    if f17.is_file() or f32.is_file():
        path = f17 if f17.is_file() else f32
        raw = load_pickled_npz(path, "positions_3d")["value"]
        out: dict[str, dict[str, np.ndarray]] = {}
        for subject, takes in raw.items():
            out[subject] = {}
            for take, arr in takes.items():
                arr = np.asarray(arr)
                if arr.ndim != 3 or arr.shape[1:] not in ((17, 3), (32, 3)):
                    raise DataError(
                        path, f"{subject}/{take}: 3D array has shape {arr.shape}, expected (N, 17, 3) or (N, 32, 3)"
                    )
                if arr.shape[1] == 32:
                    arr = arr[:, H36M32_TO_17]
                out[subject][take] = check_array(arr.astype(np.float32), path, f"{subject}/{take}", (None, 17, 3))
        return out, "npz"
    archive = _find(root, "S*/MyPoses/3D_positions/*.h5")
    if archive:
        import h5py

        out = {}
        for path in archive:
            subject = path.parts[-4]
            try:
                with h5py.File(path, "r") as fh:
                    arr = np.asarray(fh["3D_positions"])
            except (OSError, KeyError) as exc:
                raise DataError(path, f"cannot read dataset '3D_positions' ({exc})") from exc
            check_array(arr, path, "3D_positions", (96, None))
            poses = arr.T.reshape(-1, 32, 3)[:, H36M32_TO_17] / MM
            out.setdefault(subject, {})[path.stem] = poses.astype(np.float32)
        return out, "archive"
    raise DataError(
        root, "no Human3.6M 3D poses: expected data_3d_h36m_17j.npz, data_3d_h36m.npz or S*/MyPoses/3D_positions/*.h5"
    )


def _layout_for(num_joints: int, layout_name: str | None, path: Path) -> Layout:
    if layout_name:
        name = {"h36m": "h36m17" if num_joints == 17 else "mpii16", "coco": "coco17"}.get(layout_name, layout_name)
        layout = get_layout(name, str(path))
        if layout.num_joints != num_joints:
            raise DataError(path, f"layout {layout.name} has {layout.num_joints} joints but the file has {num_joints}")
        return layout
    by_count = {17: H36M17, 16: MPII16}
    if num_joints not in by_count:
        raise DataError(
            path, f"cannot infer the joint layout of {num_joints}-joint detections; give metadata['layout_name']"
        )
    return by_count[num_joints]


def _read_detections(path: Path) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]], Layout]:
    """Detections {subject: {take_key: {camera_id: (N, J, 2)}}} from an npz file in either dict style."""
    loaded = load_pickled_npz(path, "positions_2d")
    raw, meta = loaded["value"], loaded["metadata"] or {}
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    num_joints = None
    for subject, takes in raw.items():
        out[subject] = {}
        for take, cams in takes.items():
            if isinstance(cams, dict):
                items = {str(k): v for k, v in cams.items()}
            else:  # VideoPose3D: list in the fixed camera order
                items = dict(zip(H36M_CAMERA_IDS, cams))
            for cam_id, arr in items.items():
                arr = np.asarray(arr)
                if arr.ndim != 3 or arr.shape[-1] not in (2, 3):
                    raise DataError(
                        path, f"{subject}/{take}/{cam_id}: detections have shape {arr.shape}, expected (N, J, 2)"
                    )
                num_joints = num_joints or arr.shape[1]
                if arr.shape[1] != num_joints:
                    raise DataError(
                        path, f"{subject}/{take}/{cam_id}: {arr.shape[1]} joints, other sequences have {num_joints}"
                    )
                arr = arr[..., :2].astype(np.float32)
                check_array(arr, path, f"{subject}/{take}/{cam_id}", (None, num_joints, 2))
                out[subject].setdefault(_take_key(take), {})[cam_id] = arr
    if num_joints is None:
        raise DataError(path, "no detections in file")
    return out, _layout_for(num_joints, meta.get("layout_name"), path)


def _read_archive_detections(root: Path) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]], Layout]:
    import h5py

    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for path in _find(root, "S*/StackedHourglass/*.h5"):
        take, _, cam_id = path.stem.rpartition(".")
        try:
            with h5py.File(path, "r") as fh:
                arr = np.asarray(fh["poses"], dtype=np.float32)
        except (OSError, KeyError) as exc:
            raise DataError(path, f"cannot read dataset 'poses' ({exc})") from exc
        check_array(arr, path, "poses", (None, 16, 2))
        out.setdefault(path.parts[-3], {}).setdefault(_take_key(take), {})[cam_id] = arr
    if not out:
        raise DataError(root, "no Stacked Hourglass detections under S*/StackedHourglass/")
    return out, MPII16


def _resolve_detections(root: Path, keypoints: str) -> tuple[dict, Layout]:
    """Find the detection source named by `keypoints` ("sh", a detector name, or a file path)."""
    as_path = Path(keypoints)
    if as_path.suffix == ".npz":
        candidate = as_path if as_path.is_file() or as_path.is_absolute() else root / as_path
        return _read_detections(require_file(candidate, "2D detections"))
    prefix = {"sh": "data_2d_h36m_sh"}.get(keypoints, f"data_2d_h36m_{keypoints}")
    files = _find(root, f"{prefix}*.npz")
    if files:
        return _read_detections(files[0])
    if keypoints == "sh" and _find(root, "S*/StackedHourglass/*.h5"):
        return _read_archive_detections(root)
    raise DataError(root, f"no 2D detections for {keypoints!r}: expected {prefix}*.npz or S*/StackedHourglass/*.h5")


def load_h36m(
    root: str | Path,
    keypoints: str = "gt",
    subjects: Iterable[str] = TRAIN_SUBJECTS + TEST_SUBJECTS,
    cameras: str | Path | None = None,
) -> list[PoseSequence]:
    """Load Human3.6M sequences for `subjects`, one per take and camera.

    `keypoints` is "gt" (3D projected through each camera with distortion, 17 joints), "sh"
    (Stacked Hourglass detections, 16 MPII joints) or another detector's file name suffix / path.
    Frame counts of detections and 3D are aligned on the shorter; takes without detections for a
    camera are skipped (e.g. S11 "Directions", camera 54138969, whose video is corrupt).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "Human3.6M data folder not found")
    all_cams = load_h36m_cameras(cameras or root / "cameras.h5")
    poses, _ = _read_3d(root)
    detections, det_layout = (None, H36M17) if keypoints == "gt" else _resolve_detections(root, keypoints)
    sequences: list[PoseSequence] = []
    for subject in subjects:
        if subject not in poses:
            raise DataError(root, f"subject {subject} has no 3D poses")
        if subject not in all_cams:
            raise DataError(root / "cameras.h5", f"no cameras for subject {subject}")
        for take in sorted(poses[subject]):
            action = canonical_action(take, root)
            world = poses[subject][take]
            for cam_id in H36M_CAMERA_IDS:
                cam: Camera = all_cams[subject][cam_id]
                cam_pose = cam.world_to_camera(world).astype(np.float32)
                if detections is None:
                    kp = cam.project(cam_pose.astype(np.float64)).astype(np.float32)
                else:
                    kp = detections.get(subject, {}).get(_take_key(take), {}).get(cam_id)
                    if kp is None:
                        continue
                n = min(len(kp), len(cam_pose))
                sequences.append(
                    PoseSequence(subject, action, take, cam, kp[:n], det_layout, cam_pose[:n], H36M17)
                )
    if not sequences:
        raise DataError(root, f"no sequences found for subjects {list(subjects)}")
    return sequences
