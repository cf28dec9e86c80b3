"""Offline 2D detection with MediaPipe Pose (BlazePose, 33 landmarks), one person per frame.

`mediapipe==0.10.21` ships the pose-landmark models inside its wheel, and `model_complexity=1`
(BlazePose "full") is the one that runs without downloading anything, so it is fixed here.
MediaPipe runs in tracking mode (the person detector only re-runs when tracking is lost), which
is what makes video detection fast. Landmarks come back normalised to the image, so downscaling a
frame before detection changes neither their scale nor the pixel coordinates we return.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import time

import numpy as np
from tqdm import tqdm

from bonelift.errors import DataError
from bonelift.pipeline.frames import FrameSource
from bonelift.pipeline.track import Track2D
from bonelift.skeletons import MEDIAPIPE33

MODEL_COMPLEXITY = 1


def _mediapipe_pose():
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise DataError(None, "video detection needs MediaPipe: pip install 'bonelift[video]' (mediapipe==0.10.21)") from exc
    return mp.solutions.pose


MIN_CHUNK = 45  # frames per worker below which a second process costs more than it saves
# A process that has run a MediaPipe graph cannot be forked safely (its children crash), and spawned
# workers would re-import the caller's script; so later runs in such a process use one worker.
_GRAPH_IN_PROCESS = False


def _detect_range(
    source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float, tick
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe over frames start..stop-1 with one tracker: (N, 33, 2) pixels (NaN: nobody), (N, 33) visibility."""
    global _GRAPH_IN_PROCESS
    pose_mod = _mediapipe_pose()
    _GRAPH_IN_PROCESS = True
    points: list[np.ndarray] = []
    confs: list[np.ndarray] = []
    nan = np.full((MEDIAPIPE33.num_joints, 2), np.nan)
    zero = np.zeros(MEDIAPIPE33.num_joints)
    with pose_mod.Pose(
        static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=True,
        min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
    ) as pose:
        for rgb in source.frames(max_side, start, stop):
            result = pose.process(rgb)
            tick()
            if result.pose_landmarks is None:
                points.append(nan)
                confs.append(zero)
                continue
            lm = result.pose_landmarks.landmark
            points.append(np.array([[p.x * source.width, p.y * source.height] for p in lm]))
            confs.append(np.clip([p.visibility for p in lm], 0.0, 1.0))
    if not points:
        return np.zeros((0, MEDIAPIPE33.num_joints, 2)), np.zeros((0, MEDIAPIPE33.num_joints))
    return np.stack(points), np.stack(confs)


_COUNTER = None  # frames done, shared with worker processes (set by _init_worker)


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when the process that started it dies, even by SIGKILL (Linux prctl PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(counter, parent: int) -> None:
    global _COUNTER
    _COUNTER = counter
    _die_with_parent(parent)
    # The parent handles Ctrl-C and SIGTERM and stops the workers itself; a forked worker must not run the
    # parent's Python handlers (they would unwind a copy of the parent's run) or print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import cv2

    cv2.setNumThreads(1)  # do not rely on a thread pool inherited through fork


def _count_one() -> None:
    with _COUNTER.get_lock():
        _COUNTER.value += 1


def _worker(source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float):
    return _detect_range(source, start, stop, max_side, min_confidence, _count_one)


def _parallel(
    source: FrameSource, total: int, open_end: bool, workers: int, max_side, min_confidence, bar
) -> tuple[np.ndarray, np.ndarray]:
    """Split the clip into `workers` consecutive chunks, each tracked by its own process.

    MediaPipe's graph runs on one core, so this is what uses a second core. Each chunk starts with
    a fresh tracker (one extra person-detector run at its first frame). Processes are forked (no
    re-import, no model reload); the parent only waits and updates the progress bar.
    """
    bounds = np.linspace(0, total, workers + 1).round().astype(int)  # the last chunk reads to the end (the count may be an estimate)
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("i", 0)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(counter, os.getpid()))
    try:
        futures = [
            pool.submit(_worker, source, int(a), None if open_end and k == workers - 1 else int(b), max_side, min_confidence)
            for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        ]
        while not all(f.done() for f in futures):
            concurrent.futures.wait(futures, timeout=0.1)
            bar.update(counter.value - bar.n)
            failed = next((f for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:  # one chunk failed: the others' work is wasted, stop at once
                failed.result()
        parts = [f.result() for f in futures]
    except concurrent.futures.process.BrokenProcessPool as exc:  # a worker was killed (out of memory, signal)
        _stop(pool)
        raise DataError(source.path, f"a detection process died ({exc}); try --workers 1") from exc
    except BaseException:  # an error in a chunk, Ctrl-C or SIGTERM: no worker may outlive the run
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True)
    bar.update(counter.value - bar.n)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (the executor would otherwise wait for them to finish their chunks)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(5)


def default_workers() -> int:
    """Two detection processes on Linux with at least two usable cores, else one (see `_GRAPH_IN_PROCESS`)."""
    if not sys.platform.startswith("linux") or _GRAPH_IN_PROCESS:
        return 1
    return 2 if len(os.sched_getaffinity(0)) >= 2 else 1


def detect(
    source: FrameSource,
    max_side: int | None = 640,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[Track2D, float]:
    """Run MediaPipe Pose over `source`; returns the MEDIAPIPE33 track and the seconds spent.

    A frame where MediaPipe finds nobody gets NaN keypoints (status MISSING); visibility is kept
    as the per-joint confidence. `workers` processes track consecutive chunks; by default
    `default_workers()`, but one for clips shorter than `MIN_CHUNK` frames per worker.
    """
    _mediapipe_pose()  # fail early (and import once before forking)
    total = source.num_frames if max_frames is None else min(source.num_frames, max_frames)
    if workers is None:
        workers = min(default_workers(), total // MIN_CHUNK)
    workers = max(1, min(workers, total)) if not _GRAPH_IN_PROCESS else 1
    start = time.perf_counter()
    with tqdm(total=total, desc="detect 2D", unit="frame", disable=not progress) as bar:
        if workers > 1:
            points, confs = _parallel(source, total, max_frames is None, workers, max_side, min_confidence, bar)
        else:
            points, confs = _detect_range(source, 0, max_frames, max_side, min_confidence, lambda: bar.update(1))
    seconds = time.perf_counter() - start
    if len(points) == 0:
        raise DataError(source.path, "no frames could be read")
    track = Track2D(points, confs, MEDIAPIPE33, source.width, source.height, source.fps, str(source.path))
    if not track.detected.any():
        raise DataError(source.path, f"no person found in any of its {track.num_frames} frames")
    return track, seconds
