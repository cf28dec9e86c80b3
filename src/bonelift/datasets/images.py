"""Person crops with their 2D and 3D ground truth: what method 3's image network trains and is scored on.

An `ImageSet` is produced by one of two sources and consumed by `training.images` and `evaluation`:
- `video`: frames of the Human3.6M video archive (`S*/Videos/<action>.<camera>.mp4`), cropped around
  the joints projected through the frame's camera (a user's real images);
- `render`: frames rendered from real Human3.6M poses and cameras (here, where no video exists).
Stored as an uncompressed npz of plain arrays (strings as fixed-width unicode), read without pickle.

Both sources frame a person the same way (`crop_geometry`): the square box around the frame's
projected ground-truth joints, enlarged by `CROP_MARGIN`, mapped onto an S x S crop by one affine;
`joints2d` are the joints in that crop's coordinates (`geometry.to_crop`), so image and labels agree
to the sub-pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from bonelift.errors import DataError, OptionError, require_file
from bonelift.geometry import person_crop, to_crop
from bonelift.io import atomic_path, read_npz_arrays
from bonelift.skeletons import Layout, get_layout

SOURCES = ("render", "video")

# Side of the square crop as a multiple of the projected joints' bounding box (its longer side). Our reading
# of "cropped using the segmentation information ... so that a person is located around the center" (method 3,
# Sec. 4): the paper's crop is the silhouette's box, which reaches ~5 % of the height beyond the joint centres at
# each end (soles, hair, hands), so ~1.1 x the joints' box; training then takes random 225 x 225 crops of the
# 250 x 250 image, which can cut up to 10 % of the side at either edge, so the silhouette stays whole in every
# crop when it fits in the central 80 %: 1.1 / 0.8 ~ 1.4.
CROP_MARGIN = 1.4
# Every 5th frame (10 Hz): consecutive 50 Hz frames are near duplicates, and the five training subjects at
# stride 1 would be ~275 GB of 250 px crops.
DEFAULT_STRIDE = 5


def _cv2():
    """OpenCV, an optional dependency (the `video` extra): imported where images are decoded or drawn."""
    try:
        import cv2
    except ImportError as exc:
        raise DataError(None, "person crops need OpenCV: pip install 'bonelift[video]'") from exc
    return cv2


def check_crop_options(stride: int, size: int) -> None:
    """The options both sources share, checked before any file is read."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise OptionError(f"stride (--stride) must be a positive integer, got {stride!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise OptionError(f"size (--size) must be an integer >= 8 pixels, got {size!r}")


def sequences_layout(sequences: Sequence, source: str | Path | None) -> Layout:
    """The one 3D layout of `sequences` (an image set has one); none or a mix is a DataError naming `source`."""
    if not sequences:
        raise DataError(source, "no sequences to make person crops of")
    layout = sequences[0].layout_3d
    if any(seq.layout_3d != layout for seq in sequences):
        raise DataError(source, "the sequences mix 3D joint layouts; an image set has one")
    return layout


def empty_images(n: int, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8 allocated once for a loader to fill; refused up front when it cannot fit in memory.

    Human3.6M at stride 1 is ~1.5 M training frames (~275 GB at 250 px): without the check the allocation
    succeeds lazily and the process is killed hours later, halfway through the videos.
    """
    need = n * size * size * 3
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: no check
        have = None
    if have and need > 0.8 * have:
        raise OptionError(f"{n} crops of {size}x{size} need {need / 2**30:.1f} GiB, more than this machine's "
                          f"{have / 2**30:.1f} GiB of memory allows: raise the stride (--stride) or lower "
                          "the size (--size)")
    return np.empty((n, size, size, 3), np.uint8)


def crop_geometry(pixels: np.ndarray, size: int,
                  margin: float = CROP_MARGIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(box (3,) = centre x, centre y, side in pixels; affine (2, 3) frame pixels -> crop pixels; joints2d (J, 2)).

    `pixels` (J, 2) are one frame's projected joints. The affine maps the box onto a `size` x `size`
    raster with OpenCV's convention (pixel centres at integers), so crop coordinate q in [0, 1] lands
    at raster position q * size - 0.5: `cv2.warpAffine` with it (video) and drawing through it (render)
    both put joint j exactly at `joints2d[j]`.
    """
    pixels = np.asarray(pixels, np.float64)
    box = person_crop(pixels, margin)
    scale = size / box[2]
    x0, y0 = box[:2] - box[2] / 2
    affine = np.array([[scale, 0.0, -x0 * scale - 0.5], [0.0, scale, -y0 * scale - 0.5]])
    return box, affine, to_crop(pixels, box).astype(np.float32)


def crop_image(frame: np.ndarray, affine: np.ndarray, size: int, border: int = 0) -> np.ndarray:
    """The `size` x `size` crop of `frame` (H, W, 3) through `crop_geometry`'s affine; outside the frame: `border`.

    Shrinking by more than 2x first halves the frame with Gaussian pyramids (`cv2.pyrDown`, which keeps
    pixel centres at 2i -> i), because bilinear sampling alone would alias a 1000 px person into 64 px.
    """
    cv2 = _cv2()
    affine = np.array(affine, np.float64)
    while affine[0, 0] < 0.5 and min(frame.shape[:2]) >= 2:
        frame = cv2.pyrDown(frame)
        affine[:, :2] *= 2.0  # source coordinates halved: x = 2 x', so the linear part doubles
    return cv2.warpAffine(frame, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(border, border, border))


@dataclass
class ImageSet:
    """N square person crops, each with the ground truth of the 3D layout's joints."""

    images: np.ndarray  # (N, S, S, 3) uint8 RGB, the person centred, S = the stored size (250 in the paper)
    joints2d: (
        np.ndarray
    )  # (N, J, 2) float32 projected 3D joints, crop coordinates: (0, 0) top-left, (1, 1) bottom-right
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
    data = read_npz_arrays(path)
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
