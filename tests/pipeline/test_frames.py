"""Frames decoded ahead of the detector in a thread of their own (`frames.read_ahead`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bonelift.errors import DataError
from bonelift.pipeline.frames import read_ahead


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_read_ahead_gives_every_frame_in_order_and_raises_a_reading_error_where_it_happened() -> None:
    def frames():
        for k in range(5):
            yield np.full((2, 2, 3), k, np.uint8)
        raise DataError(Path("clip.mp4"), "frame size changes")

    seen = []
    with pytest.raises(DataError, match="clip.mp4: frame size changes"):
        for frame in read_ahead(frames(), 2):
            seen.append(int(frame[0, 0, 0]))
    assert seen == [0, 1, 2, 3, 4]


def test_a_consumer_that_stops_early_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless():
        try:
            k = 0
            while True:
                yield np.full((2, 2, 3), k % 256, np.uint8)
                k += 1
        finally:
            closed.set()  # the video file is released

    before = len(_reader_threads())
    ahead = read_ahead(endless(), 2)
    assert [int(next(ahead)[0, 0, 0]) for _ in range(3)] == [0, 1, 2]
    ahead.close()
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while len(_reader_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_reader_threads()) == before


def test_a_video_read_ahead_equals_the_video_read_in_turn(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="video extra not installed")
    from bonelift.pipeline.frames import open_frames

    path = tmp_path / "clip.avi"
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (96, 64))
    for _ in range(12):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.release()
    source = open_frames(path)
    plain = list(source.frames(48, 2, 10))
    ahead = list(source.frames(48, 2, 10, ahead=2))
    assert len(plain) == len(ahead) == 8
    assert all(np.array_equal(a, b) for a, b in zip(plain, ahead))
