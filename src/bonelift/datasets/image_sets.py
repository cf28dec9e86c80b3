"""`write_image_set`: Human3.6M sequences -> person crops (rendered or from the video archive) -> an ImageSet npz.

The `bonelift images render | video` command is this function with its arguments as flags, so the
command line and Python make the same file from the same options.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bonelift.datasets.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS, load_h36m
from bonelift.datasets.h36m_video import load_h36m_video
from bonelift.datasets.images import CROP_MARGIN, DEFAULT_STRIDE, SOURCES, ImageSet, check_crop_options
from bonelift.datasets.render import render_image_set
from bonelift.datasets.splits import data_folder
from bonelift.errors import DataError, OptionError


def write_image_set(
    source: str,
    out: str | Path,
    data: str | Path | None = None,
    archive: str | Path | None = None,
    subjects: Iterable[str] = TRAIN_SUBJECTS + TEST_SUBJECTS,
    stride: int = DEFAULT_STRIDE,
    size: int = 250,
    seed: int = 0,
    margin: float = CROP_MARGIN,
    overwrite: bool = False,
    progress: bool = False,
) -> ImageSet:
    """Make the crops of `subjects` from `source` ("render" or "video") and save them to `out` atomically.

    `data` is the Human3.6M folder with the 3D poses and `cameras.h5` (default: the shared data's
    `h36m`); `archive` the video archive's root (`S*/Videos/*.mp4`), needed for "video"; `seed` drives
    the renderer only. An existing `out` is kept unless `overwrite`; it is checked, like the options,
    before anything is loaded, so a refused run costs nothing.
    """
    if source not in SOURCES:
        raise OptionError(f"image source must be one of {', '.join(SOURCES)}, got {source!r}")
    check_crop_options(stride, size)
    subjects = tuple(subjects)
    if not subjects or any(not s for s in subjects):
        raise OptionError(f"subjects (--subjects) must name at least one subject, got {list(subjects)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(out, "exists already (pass --overwrite to replace it)")
    if source == "video" and archive is None:
        raise OptionError("the video source needs the archive folder (archive=..., --archive)")
    sequences = load_h36m(data_folder("h36m", data or ""), "gt", subjects)
    if source == "video":
        images = load_h36m_video(archive, sequences, stride, size, margin, progress)
    else:
        images = render_image_set(sequences, size, stride, seed, margin, progress)
    images.save(out)
    return images
