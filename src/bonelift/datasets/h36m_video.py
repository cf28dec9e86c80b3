"""Person crops from the Human3.6M video archive (`S*/Videos/<take>.<camera>.mp4`): the `video` ImageSet source.

The archive's videos and the 3D poses are both sampled at 50 Hz from the same start, so frame t of a video
is the 3D frame t of its take (aligned on the shorter where the counts differ by a few frames). Each kept
frame is cropped around its 3D joints projected through that camera, lens distortion included: the
ground-truth 2D that `flatten_frames(gt2d=True)` gives, so the crop is centred on the person even where the
archive's silhouettes or bounding boxes are not shipped.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bonelift.datasets.common import PoseSequence
from bonelift.datasets.h36m import _ACTION_ALIASES
from bonelift.datasets.images import (
    CROP_MARGIN,
    DEFAULT_STRIDE,
    ImageSet,
    _cv2,
    check_crop_options,
    crop_geometry,
    crop_image,
    empty_images,
    sequences_layout,
)
from bonelift.errors import DataError

# The archive names some S1 takes differently from the 3D files (VideoPose3D renamed them): "Photo 1" in
# the 3D file is "TakingPhoto 1.<camera>.mp4" in the videos.
_ARCHIVE_NAMES = {canonical: archive for archive, canonical in _ACTION_ALIASES.items()}
# Frame rate of the archive's videos and of the motion capture: frame t of one is frame t of the other.
ARCHIVE_FPS = 50.0
# Frames may differ from the camera's nominal size by two rows on some subjects (1000 x 1002); more than
# this means a resized copy, whose crops the full-resolution projections would miss.
_SIZE_TOLERANCE_PX = 8


def video_candidates(root: str | Path, seq: PoseSequence) -> list[Path]:
    """Where the archive keeps `seq`'s video: `root/<subject>/Videos/<take>.<camera>.mp4`, then the archive's
    alias of the take ("Photo 1" -> "TakingPhoto 1"); the first is the name a missing video is reported by."""
    folder = Path(root) / seq.subject / "Videos"
    names = [seq.take]
    match = re.fullmatch(r"(.*?)([ _]\d+)?", seq.take.strip())
    base, suffix = match.group(1), match.group(2) or ""
    if base in _ARCHIVE_NAMES:
        names.append(_ARCHIVE_NAMES[base] + suffix)
    return [folder / f"{name}.{seq.camera.id}.mp4" for name in names]


def find_h36m_videos(root: str | Path,
                     sequences: Sequence[PoseSequence]) -> tuple[list[tuple[PoseSequence, Path]], list[Path]]:
    """(sequences with their video, expected paths of the videos that are missing), in `sequences` order."""
    found, missing = [], []
    for seq in sequences:
        candidates = video_candidates(root, seq)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(candidates[0])
        else:
            found.append((seq, path))
    return found, missing


def load_h36m_video(
    root: str | Path,
    sequences: Sequence[PoseSequence],
    stride: int = DEFAULT_STRIDE,
    size: int = 250,
    margin: float = CROP_MARGIN,
    progress: bool = False,
) -> ImageSet:
    """Every `stride`-th frame of each sequence's archive video, cropped around its projected 3D joints.

    `sequences` come from `load_h36m` (any 2D source: only cameras and 3D are used). Sequences whose
    video is absent are skipped with a warning naming them (`find_h36m_videos` lists them); none found is
    a DataError naming `root`, a video that cannot be opened or decoded a DataError naming the file.
    Videos are decoded front to back (`grab` for skipped frames: seeking in MPEG-4 is slow and inexact).
    Memory: N x size² x 3 bytes, allocated once (stride 1 on the training subjects is ~275 GB at 250 px).
    """
    cv2 = _cv2()
    root = Path(root)
    check_crop_options(stride, size)
    layout = sequences_layout(sequences, root)
    if not root.is_dir():
        raise DataError(root, "video archive folder not found")
    found, missing = find_h36m_videos(root, sequences)
    if not found:
        raise DataError(root, f"no Human3.6M videos for the {len(sequences)} sequences (expected "
                              f"<subject>/Videos/<take>.<camera>.mp4, e.g. {missing[0].relative_to(root)})")
    if missing:
        shown = ", ".join(str(p) for p in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        warnings.warn(f"{len(missing)} of {len(sequences)} videos missing, their sequences skipped: {shown}",
                      stacklevel=2)

    capacity = sum(len(range(0, len(seq), stride)) for seq, _ in found)
    images = empty_images(capacity, size)
    joints2d = np.empty((capacity, layout.num_joints, 2), np.float32)
    poses = np.empty((capacity, layout.num_joints, 3), np.float32)
    frames = np.empty(capacity, np.int64)
    labels: list[tuple[str, str, str, int]] = []  # (subject, action, camera, crops) per video
    n = 0
    with tqdm(total=capacity, desc="video crops", unit="crop", disable=not progress, leave=False) as bar:
        for seq, path in found:
            start = n
            pixels = seq.camera.project(np.asarray(seq.poses_3d, np.float64))
            relative = seq.root_relative
            cap = cv2.VideoCapture(str(path))
            try:
                if not cap.isOpened():
                    raise DataError(path, "cannot open the video (corrupt file, or a codec this OpenCV cannot decode)")
                fps = cap.get(cv2.CAP_PROP_FPS)
                if fps > 0 and abs(fps - ARCHIVE_FPS) > 0.5:  # 0: the container does not say
                    raise DataError(path, f"runs at {fps:g} fps, the archive's videos and the 3D at {ARCHIVE_FPS:g}: "
                                          "frame t would not be 3D frame t (a re-encoded copy?)")
                for t in range(len(seq)):
                    keep = t % stride == 0
                    ok, frame = cap.read() if keep else (cap.grab(), None)
                    if not ok:
                        break  # the video is shorter than the 3D: align on the shorter
                    if t == 0:
                        _check_frame_size(frame, seq, path)
                    if keep:
                        _, affine, joints2d[n] = crop_geometry(pixels[t], size, margin)
                        images[n] = cv2.cvtColor(crop_image(frame, affine, size), cv2.COLOR_BGR2RGB)
                        poses[n], frames[n] = relative[t], t
                        n += 1
                        bar.update()
            finally:
                cap.release()
            if n == start and len(seq):
                raise DataError(path, "no frame could be decoded (corrupt or empty video)")
            labels.append((seq.subject, seq.action, seq.camera.id, n - start))
    counts = [c for *_, c in labels]
    return ImageSet(
        images=images[:n], joints2d=joints2d[:n], poses=poses[:n], layout=layout,
        subject=np.repeat([s for s, *_ in labels], counts), action=np.repeat([a for _, a, *_ in labels], counts),
        camera=np.repeat([c for _, _, c, _ in labels], counts), frame=frames[:n], source="video",
    )


def _check_frame_size(frame: np.ndarray, seq: PoseSequence, path: Path) -> None:
    """Refuse frames whose size is not the camera's: the projections would crop the wrong region."""
    height, width = frame.shape[:2]
    cam = seq.camera
    if abs(width - cam.width) > _SIZE_TOLERANCE_PX or abs(height - cam.height) > _SIZE_TOLERANCE_PX:
        raise DataError(path, f"frames are {width}x{height} but camera {cam.id} is {cam.width}x{cam.height}; "
                              "the crops need the archive's original resolution")
