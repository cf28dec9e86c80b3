"""Readers for 2D keypoints that users already have: COCO-style JSON, npz and CSV.

Supported JSON flavours (one person per frame is kept: the highest-scoring one):
- OpenPose (BODY_25 or COCO-18): `{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}`, one file per
  frame (pass the folder); undetected joints (0, 0, 0) make the frame missing;
- AlphaPose / COCO results: `[{"image_id": ..., "keypoints": [x, y, c, ...], "score": s}, ...]`;
- COCO dataset: `{"images": [...], "annotations": [{"image_id", "keypoints"}]}` (image size read from it);
- MMPose: `[{"frame_id": i, "instances": [{"keypoints": [[x, y], ...], "keypoint_scores": [...]}]}]`,
  optionally wrapped as `{"instance_info": [...]}`.
npz: `keypoints` (T, J, 2 or 3), optional `confidence` (T, J), `layout`, `width`, `height`, `fps`; or
`keypoints` (P, T, J, 2 or 3) and `confidence` (P, T, J) for several people already tracked (`read_people`).
CSV: a header of `<joint>_x, <joint>_y[, <joint>_conf]` columns (an optional leading `frame`
column); joint names of a known layout select it, otherwise the joint count does. Empty cells and
NaN mark joints that were not found; so do (0, 0) keypoints in every format.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from bonelift.errors import DataError
from bonelift.io import load_json, read_npz_arrays
from bonelift.pipeline.frames import IMAGE_SUFFIXES
from bonelift.pipeline.track import Track2D, check_fps
from bonelift.skeletons import COCO17, LAYOUTS, MEDIAPIPE33, OPENPOSE18, OPENPOSE25, Layout, get_layout

KEYPOINT_SUFFIXES = (".json", ".npz", ".csv")
# Layout assumed from the number of joints when a file does not say (COCO-style tools write COCO17).
DEFAULT_LAYOUTS: dict[int, Layout] = {17: COCO17, 18: OPENPOSE18, 25: OPENPOSE25, 33: MEDIAPIPE33}
_CONF_SUFFIXES = ("conf", "confidence", "score", "c", "visibility", "v")
MAX_SIDE = 100_000  # pixels; a larger width or height is a mistake (and would allocate huge pictures)
MAX_COORD = 1e6  # pixels; larger coordinates are not image positions (and overflow drawing and size guesses)
MAX_OUTSIDE = 2.0  # image sizes a joint may lie beyond the image's edges (detectors extrapolate hidden joints a little)


def is_keypoint_input(path: Path) -> bool:
    """True for a keypoint file, or a folder of OpenPose per-frame JSON files and no images (a folder of images is
    read as images even when it holds JSON files, such as the outputs of `lift infold -o infold`)."""
    if path.is_dir():
        suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file()}
        return ".json" in suffixes and not suffixes & set(IMAGE_SUFFIXES)
    return path.suffix.lower() in KEYPOINT_SUFFIXES


def _layout_for(num_joints: int, source: Path, layout: str | None) -> Layout:
    if layout is not None:
        lay = get_layout(layout, str(source))
        if lay.num_joints != num_joints:
            raise DataError(source, f"has {num_joints} joints per frame but layout {lay.name} has {lay.num_joints}")
        return lay
    if num_joints not in DEFAULT_LAYOUTS:
        known = ", ".join(f"{n} ({lay.name})" for n, lay in DEFAULT_LAYOUTS.items())
        raise DataError(
            source, f"has {num_joints} joints per frame; supported joint counts: {known} (or pass a layout)"
        )
    return DEFAULT_LAYOUTS[num_joints]


def _frame_size(points: np.ndarray, source: Path) -> tuple[int, int]:
    """Guess the image size when a file does not store it: the keypoints' extent with equal margins."""
    finite = points[np.isfinite(points).all(-1)]
    lo, hi = finite.min(0), finite.max(0)
    w, h = (int(np.ceil(v)) for v in np.maximum(hi + np.maximum(lo, 0), 1.0))
    warnings.warn(f"{source}: image size unknown, assuming {w}x{h} from the keypoint extent (pass image_size / --size)",
                  stacklevel=3)
    return w, h


def _people_to_frames(per_frame: list[list[tuple[np.ndarray, float]]], source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pick the best-scoring person of each frame; (T, J, 2) points (NaN if nobody) and (T, J) scores."""
    counts = {len(p) for people in per_frame for p, _ in people}
    if not counts:
        raise DataError(source, "no person in any frame")
    if len(counts) > 1:
        raise DataError(source, f"people have different joint counts {sorted(counts)}")
    j = counts.pop()
    kp = np.full((len(per_frame), j, 2), np.nan)
    conf = np.zeros((len(per_frame), j))
    for t, people in enumerate(per_frame):
        if people:
            best = max(people, key=lambda item: item[1])[0]
            kp[t], conf[t] = best[:, :2], best[:, 2]
    return kp, conf


def _flat_to_points(flat, source: Path, dims: int = 3) -> np.ndarray:
    arr = np.asarray(flat, dtype=np.float64)
    if arr.ndim != 1 or len(arr) % dims:
        raise DataError(source, f"keypoint list of length {arr.size} is not a multiple of {dims} (x, y, score)")
    return arr.reshape(-1, dims)


def _person(points: np.ndarray, score: float | None = None) -> tuple[np.ndarray, float]:
    return points, float(points[:, 2].mean() if score is None else score)


def _openpose_frame(data: dict, source: Path) -> list[tuple[np.ndarray, float]]:
    return [_person(_flat_to_points(p["pose_keypoints_2d"], source)) for p in data.get("people", [])]


def _read_json(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """(T, J, 2), (T, J) and the image size if the file states it."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        frames = []
        for f in files:
            data = load_json(f)
            if not isinstance(data, dict) or not isinstance(data.get("people"), list):
                raise DataError(f, "not an OpenPose frame file (no 'people' list)")
            try:
                frames.append(_openpose_frame(data, f))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if isinstance(exc, DataError):
                    raise
                missing = "a person without 'pose_keypoints_2d'" if isinstance(exc, KeyError) else "malformed person"
                raise DataError(f, f"{missing} ({type(exc).__name__}: {exc})") from None
        return (*_people_to_frames(frames, path), None)
    data = load_json(path)
    try:
        if isinstance(data, dict) and "people" in data:
            return (*_people_to_frames([_openpose_frame(data, path)], path), None)
        if isinstance(data, dict) and "annotations" in data:
            images = {im["id"]: im for im in data.get("images", [])}
            ids = sorted(images) or sorted({a["image_id"] for a in data["annotations"]})
            per = {i: [] for i in ids}
            for a in data["annotations"]:
                per.setdefault(a["image_id"], []).append(_person(_flat_to_points(a["keypoints"], path), a.get("score")))
            size = None
            if images:
                first = images[ids[0]]
                size = (int(first["width"]), int(first["height"])) if "width" in first else None
            return (*_people_to_frames([per[i] for i in per], path), size)
        if isinstance(data, dict) and "instance_info" in data:
            data = data["instance_info"]
        if isinstance(data, list) and data and "instances" in data[0]:
            frames = []
            for fr in sorted(data, key=lambda f: f.get("frame_id", 0)):
                people = []
                for inst in fr["instances"]:
                    xy = np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1, 2)
                    sc = np.asarray(inst.get("keypoint_scores", np.ones(len(xy))), dtype=np.float64).reshape(-1, 1)
                    people.append(_person(np.hstack([xy, sc]), inst.get("bbox_score")))
                frames.append(people)
            return (*_people_to_frames(frames, path), None)
        if isinstance(data, list) and data and "keypoints" in data[0]:
            order: dict = {}
            for det in data:
                order.setdefault(det.get("image_id", len(order)), []).append(
                    _person(_flat_to_points(det["keypoints"], path), det.get("score")))
            keys = sorted(order, key=_natural_key)
            return (*_people_to_frames([order[k] for k in keys], path), None)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(path, f"malformed keypoint JSON ({type(exc).__name__}: {exc})") from exc
    raise DataError(
        path, "unrecognised JSON: expected OpenPose, AlphaPose/COCO results, COCO annotations or MMPose output"
    )


def _natural_key(key) -> tuple:
    """Sort image ids like '10.jpg' after '9.jpg'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(key)))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None, float | None, str | None]:
    data = read_npz_arrays(path)
    key = next((k for k in ("keypoints", "keypoints_2d", "positions_2d") if k in data), None)
    if key is None:
        raise DataError(path, f"no 'keypoints' array (found {sorted(data)})")
    if not _numeric(data[key]):
        raise DataError(path, f"{key} has non-numeric dtype {data[key].dtype}, expected pixel coordinates")
    kp = np.asarray(data[key], dtype=np.float64)
    if kp.ndim not in (3, 4) or kp.shape[-1] not in (2, 3):
        raise DataError(path, f"{key} has shape {kp.shape}, expected (T, J, 2) or (T, J, 3), or (P, T, J, 2|3) "
                              "for several people")
    conf = data.get("confidence", kp[..., 2] if kp.shape[-1] == 3 else np.ones(kp.shape[:-1]))
    if not _numeric(conf):
        raise DataError(path, f"confidence has non-numeric dtype {np.asarray(conf).dtype}")
    conf = np.asarray(conf, dtype=np.float64)
    if conf.shape != kp.shape[:-1]:
        raise DataError(path, f"confidence has shape {conf.shape}, expected {kp.shape[:-1]}")
    size = None
    if "width" in data and "height" in data:
        size = (int(_scalar(data, "width", path, integer=True)), int(_scalar(data, "height", path, integer=True)))
    fps = _scalar(data, "fps", path) if "fps" in data else None
    layout = None
    if "layout" in data:
        if data["layout"].ndim != 0 or data["layout"].dtype.kind not in "US":
            raise DataError(path, f"layout must be a name such as 'coco17', got an array of {data['layout'].dtype} "
                                  f"with shape {data['layout'].shape}")
        layout = str(data["layout"])
    return kp[..., :2], conf, size, fps, layout


def _numeric(arr) -> bool:
    """True for integer or float arrays (booleans, strings and objects are not coordinates)."""
    dtype = np.asarray(arr).dtype
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def _scalar(data: dict, name: str, path: Path, integer: bool = False) -> float:
    """A positive finite number stored under `name` in an npz (width, height, fps), or a DataError naming it."""
    arr = data[name]
    if arr.ndim != 0 or not _numeric(arr):
        raise DataError(path, f"{name} must be one number, got an array of {arr.dtype} with shape {arr.shape}")
    value = float(arr)
    if not np.isfinite(value) or value <= 0 or (integer and (value != int(value) or value > MAX_SIDE)):
        kind = f"a whole number of pixels from 1 to {MAX_SIDE}" if integer else "a finite number greater than 0"
        raise DataError(path, f"{name} must be {kind}, got {arr.item()!r}")
    return value


def check_inside(kp: np.ndarray, width: int, height: int, path: Path | None) -> None:
    """Refuse keypoints lying far outside a `width` x `height` image (a 1x1 image, a wrong --size): normalised by
    that size they would be hundreds of image widths away, which a lifter turns into confident nonsense."""
    points = kp[np.isfinite(kp).all(axis=-1)]
    if not points.size:
        return
    size = np.array([width, height], np.float64)
    beyond = float((np.maximum(-points, points - size) / size).max())  # image sizes beyond the nearest edge
    if beyond > MAX_OUTSIDE:
        raise DataError(path, f"keypoints lie {beyond:.3g} image sizes outside the {width}x{height} image (at most "
                              f"{MAX_OUTSIDE:g}): wrong image width and height?")


def check_size(size, path: Path | None, what: str) -> tuple[int, int]:
    """Width and height as positive whole numbers (from a file or the caller), or a DataError naming `what`."""
    try:
        w, h = size
        ok = all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                 and float(v) == int(v) and 0 < int(v) <= MAX_SIDE for v in (w, h))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise DataError(path, f"{what} must be two whole numbers of pixels from 1 to {MAX_SIDE}, got {size!r}")
    return int(w), int(h)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, Layout | None]:
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable CSV file ({exc})") from exc
    if len(rows) < 2:
        raise DataError(path, "CSV needs a header row and at least one frame")
    header = [h.strip() for h in rows[0]]
    cols: dict[str, dict[str, int]] = {}
    for i, name in enumerate(header):
        base, _, suffix = name.rpartition("_")
        if suffix.lower() in ("x", "y") or suffix.lower() in _CONF_SUFFIXES:
            kind = suffix.lower() if suffix.lower() in ("x", "y") else "c"
            cols.setdefault(base, {})[kind] = i
    joints = [j for j, c in cols.items() if "x" in c and "y" in c]
    if not joints:
        raise DataError(path, "CSV header has no '<joint>_x, <joint>_y' columns")
    t = len(rows) - 1
    kp = np.full((t, len(joints), 2), np.nan)
    conf = np.ones((t, len(joints)))
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DataError(path, f"row {r + 2} has {len(row)} cells, header has {len(header)}")
        for j, name in enumerate(joints):
            c = cols[name]
            for d, kind in enumerate("xy"):
                kp[r, j, d] = _cell(row[c[kind]], path, r + 2)
            if "c" in c:
                conf[r, j] = _cell(row[c["c"]], path, r + 2)
    conf = np.nan_to_num(conf, nan=0.0)
    lower = [j.lower() for j in joints]
    for lay in LAYOUTS.values():
        names = [n.lower() for n in lay.joints]
        if len(names) == len(lower) and set(names) == set(lower):
            order = [lower.index(n) for n in names]
            return kp[:, order], conf[:, order], lay
    return kp, conf, None


def _cell(text: str, path: Path, line: int) -> float:
    if not text.strip():
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(path, f"line {line}: {text!r} is not a number") from None


def read_keypoints(
    path: str | Path, layout: str | None = None, image_size: tuple[int, int] | None = None, fps: float | None = None
) -> Track2D:
    """Read a 2D keypoint file (or OpenPose folder) into a `Track2D`, checking its joint count.

    A file with several people (npz `keypoints` (P, T, J, 2|3)) gives its first person; see `read_people`.
    """
    return read_people(path, layout, image_size, fps)[0]


def read_people(
    path: str | Path, layout: str | None = None, image_size: tuple[int, int] | None = None, fps: float | None = None
) -> list[Track2D]:
    """Every person of a keypoint file, one `Track2D` each: one for all formats but an npz with a person axis."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "input not found")
    file_size = file_fps = None
    lay: Layout | None = None
    suffix = path.suffix.lower()
    if suffix not in KEYPOINT_SUFFIXES and not path.is_dir():
        raise DataError(path, f"unknown keypoint file type {suffix!r} (expected {', '.join(KEYPOINT_SUFFIXES)})")
    try:
        if path.is_dir() or suffix == ".json":
            kp, conf, file_size = _read_json(path)
        elif suffix == ".npz":
            kp, conf, file_size, file_fps, file_layout = _read_npz(path)
            layout = layout or file_layout
        else:
            kp, conf, lay = _read_csv(path)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(path, f"malformed keypoint file ({type(exc).__name__}: {exc})") from exc
    if fps is not None:
        check_fps(fps, str(path))
    if file_fps is not None:
        check_fps(file_fps, str(path), "the fps stored in the file")
    if layout is not None or lay is None:
        lay = _layout_for(kp.shape[-2], path, layout)
    kp = kp.copy()
    kp[~np.isfinite(kp).all(axis=-1)] = np.nan  # inf / NaN in either coordinate: joint not found
    kp[(kp == 0).all(axis=-1)] = np.nan  # OpenPose / COCO write undetected joints as (0, 0, 0)
    if not np.isfinite(kp).all(axis=-1).any():
        raise DataError(path, f"no keypoint in any of its {kp.shape[-3]} frames")
    extreme = float(np.nanmax(np.abs(kp)))
    if extreme > MAX_COORD:
        raise DataError(
            path, f"keypoint coordinates reach {extreme:.3g}, not pixel positions (at most {MAX_COORD:.0e})"
        )
    if image_size is not None or file_size is not None:
        w, h = check_size(image_size if image_size is not None else file_size, path,
                          "image_size (--size)" if image_size is not None else "the image size stored in the file")
        check_inside(kp, w, h, path)
    else:
        w, h = _frame_size(kp, path)
        if max(w, h) > MAX_SIDE:
            raise DataError(
                path,
                f"keypoints spread over {w}x{h} px, more than an image of at most {MAX_SIDE} px a side "
                "(pass the image size, --size WxH, if they really are pixels)",
            )
    conf = np.clip(np.nan_to_num(conf, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    rate = float(fps or file_fps or 30.0)
    if kp.ndim == 3:
        return [Track2D(kp, conf, lay, w, h, rate, str(path))]
    return [Track2D(k, c, lay, w, h, rate, str(path)) for k, c in zip(kp, conf)]  # ids = indices, even if empty


__all__ = ["DEFAULT_LAYOUTS", "KEYPOINT_SUFFIXES", "MAX_COORD", "MAX_OUTSIDE", "check_inside", "check_size",
           "is_keypoint_input", "read_keypoints",
           "read_people"]
