"""Frame sources: a video file or a folder of images, read lazily with OpenCV.

Opening checks happen before any work starts, so a broken input fails fast with a DataError
that names the file instead of an OpenCV traceback half-way through a run.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bonelift.cameras import MAX_FPS, MIN_FPS
from bonelift.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
READ_AHEAD = 2  # frames a consumer that works on each frame for a while (a tracker, a renderer) has decoded ahead
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise DataError(None, "reading videos needs OpenCV: pip install 'bonelift[video]'") from exc
    return cv2


def rgb_frame(bgr: np.ndarray, max_side: int | None) -> np.ndarray:
    """An OpenCV BGR frame as the RGB image detection sees: downscaled (aspect kept, area averaging) so its longer
    side is at most `max_side` pixels; offline sources and live streams share it, so both detect on equal pixels."""
    cv2 = _cv2()
    height, width = bgr.shape[:2]
    scale = 1.0 if not max_side else min(1.0, max_side / max(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class FrameSource:
    """A video or image folder with its size and frame rate; iterate to get RGB uint8 frames."""

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    images: tuple[Path, ...] = ()

    def frames(self, max_side: int | None = None, start: int = 0, stop: int | None = None,
               ahead: int = 0) -> Iterator[np.ndarray]:
        """RGB frames start..stop-1, downscaled (aspect kept) so the longer side is at most `max_side` pixels; with
        `ahead`, decoded up to that many frames ahead in a thread of their own (`read_ahead`)."""
        frames = self._rgb_frames(max_side, start, stop)
        return read_ahead(frames, ahead) if ahead > 0 else frames

    def _rgb_frames(self, max_side: int | None, start: int, stop: int | None) -> Iterator[np.ndarray]:
        cv2 = _cv2()
        for bgr in self._bgr_frames(cv2, start, stop):
            if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
                raise DataError(
                    self.path, f"frame size changes from {self.width}x{self.height} to {bgr.shape[1]}x{bgr.shape[0]}"
                )
            yield rgb_frame(bgr, max_side)

    def _bgr_frames(self, cv2, start: int, stop: int | None) -> Iterator[np.ndarray]:
        if self.images:
            for p in self.images[start:stop]:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if img is None:
                    raise DataError(p, "not a readable image")
                yield img
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            # Skip by decoding (grab): seeking by frame index is not exact for every codec.
            if any(not cap.grab() for _ in range(start)):
                return
            index = start
            while stop is None or index < stop:
                ok, img = cap.read()
                if not ok:
                    break
                index += 1
                yield img
        finally:
            cap.release()


_DONE = object()  # the end of a `read_ahead` queue


def read_ahead(frames: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """`frames` produced in a thread of their own, at most `depth` ahead of the consumer: OpenCV decodes, resizes
    and converts without the GIL, so a frame's decoding overlaps the work on the frames before it (a 1080p frame
    takes several ms, as much as a quarter of a pose tracker's). An error while reading is raised in the consumer at
    the frame it happened; a consumer that stops early stops the thread."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:  # a put blocked on a full queue is freed by the consumer draining it when it stops
        try:
            for frame in frames:
                if stop.is_set():
                    return
                slots.put(frame)
            slots.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            slots.put(exc)
        finally:
            if stop.is_set() and hasattr(frames, "close"):
                frames.close()  # releases the video file from this thread, which owns the generator

    reader = threading.Thread(target=produce, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            with contextlib.suppress(queue.Empty):
                slots.get_nowait()
            reader.join(0.05)


def open_frames(path: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file or a folder of images; `fps` overrides (or, for images, sets) the frame rate."""
    cv2 = _cv2()
    path = Path(path)
    if path.is_dir():
        images = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        if not images:
            raise DataError(path, f"folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        first = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise DataError(images[0], "not a readable image")
        return FrameSource(path, first.shape[1], first.shape[0], float(fps or 30.0), len(images), images)
    if not path.is_file():
        raise DataError(path, "input not found")
    if path.stat().st_size == 0:
        raise DataError(path, "video file is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not cap.isOpened():
            raise DataError(path, "not a readable video (OpenCV could not open or decode it)")
        if not ok or first is None:
            raise DataError(path, "video has no decodable frames")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    if fps:
        rate = float(fps)
    elif not MIN_FPS <= rate <= MAX_FPS:  # NaN, 0 or nonsense in the container: the usual rate
        rate = 30.0
    return FrameSource(path, first.shape[1], first.shape[0], rate, max(count, 1))
