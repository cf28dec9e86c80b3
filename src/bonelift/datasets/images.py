"""Person crops with their 2D and 3D ground truth: what method 3's image network trains and is scored on.

An `ImageSet` is produced by one of two sources and consumed by `training.images` and `evaluation`:
- `video`: frames of the Human3.6M video archive (`S*/Videos/<action>.<camera>.mp4`), cropped around
  the joints projected through the frame's camera (a user's real images);
- `render`: frames rendered from real Human3.6M poses and cameras (here, where no video exists).
Stored as an uncompressed npz of plain arrays (strings as fixed-width unicode), read without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from bonelift.errors import DataError, require_file
from bonelift.io import atomic_path
from bonelift.skeletons import Layout, get_layout

SOURCES = ("render", "video")


@dataclass
class ImageSet:
    """N square person crops, each with the ground truth of the 3D layout's joints."""

    images: np.ndarray  # (N, S, S, 3) uint8 RGB, the person centred, S = the stored size (250 in the paper)
    joints2d: np.ndarray  # (N, J, 2) float32 projected 3D joints in crop coordinates: (0, 0) top-left, (1, 1) bottom-right
    poses: np.ndarray  # (N, J, 3) float32 metres, camera frame, relative to the root joint
    layout: Layout  # the joints of `joints2d` and `poses` (h36m17 on Human3.6M)
    subject: np.ndarray  # (N,) str
    action: np.ndarray  # (N,) str, canonical action names
    camera: np.ndarray  # (N,) str camera ids
    frame: np.ndarray  # (N,) int64 frame index inside its take
    source: str  # one of SOURCES

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3 \
                or self.images.shape[1] != self.images.shape[2]:
            raise DataError(None, f"ImageSet images must be (N, S, S, 3) uint8, got {self.images.shape} "
                                  f"{self.images.dtype}")
        j = self.layout.num_joints
        for name, shape in (("joints2d", (n, j, 2)), ("poses", (n, j, 3))):
            if getattr(self, name).shape != shape:
                raise DataError(None, f"ImageSet {name} must be {shape}, got {getattr(self, name).shape}")
        for name in ("subject", "action", "camera", "frame"):
            if len(getattr(self, name)) != n:
                raise DataError(None, f"ImageSet {name} has {len(getattr(self, name))} entries for {n} images")
        if self.source not in SOURCES:
            raise DataError(None, f"ImageSet source must be one of {SOURCES}, got {self.source!r}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def subset(self, rows: np.ndarray) -> ImageSet:
        """The samples `rows` (indices or a boolean mask), e.g. one action's for a per-action model."""
        arrays = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name not in ("layout", "source")}
        return ImageSet(layout=self.layout, source=self.source, **arrays)

    def save(self, path: str | Path) -> Path:
        """Write atomically as a plain npz (no object arrays, so `load_image_set` never unpickles)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("layout", "source")}
        for name in ("subject", "action", "camera"):
            arrays[name] = np.asarray(arrays[name], dtype=str)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, layout=np.asarray(self.layout.name), source=np.asarray(self.source), **arrays)
        return Path(path)


def load_image_set(path: str | Path) -> ImageSet:
    """Read an `ImageSet` written by `ImageSet.save`; anything else is a DataError naming the file."""
    path = require_file(path, "image set")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"cannot read image set ({type(exc).__name__}: {exc})") from exc
    names = [f.name for f in fields(ImageSet)]
    missing = [n for n in names if n not in data]
    if missing:
        raise DataError(path, f"not a bonelift image set (missing {', '.join(missing)})")
    try:
        return ImageSet(
            images=data["images"], joints2d=data["joints2d"].astype(np.float32), poses=data["poses"].astype(np.float32),
            layout=get_layout(str(data["layout"])), subject=data["subject"], action=data["action"],
            camera=data["camera"], frame=data["frame"].astype(np.int64), source=str(data["source"]),
        )
    except DataError as exc:
        raise DataError(path, exc.problem) from None
