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
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from bonelift.config import LiftConfig
from bonelift.errors import DataError
from bonelift.pipeline.frames import READ_AHEAD, FrameSource
from bonelift.pipeline.track import Track2D
from bonelift.skeletons import MEDIAPIPE33

MODEL_COMPLEXITY = 1


class _ImportLater(types.ModuleType):
    """Stands in for a module that MediaPipe imports at load but bonelift never uses: its drawing utilities import
    matplotlib's pyplot (0.08-0.3 s) only to plot landmarks, its audio tasks `sounddevice` (0.05 s) only to record.
    An attribute of a stand-in imports the real module then."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self.__name__), name)


_LATER = ("matplotlib", "matplotlib.pyplot", "sounddevice")  # parents before their submodules


def _mediapipe_pose():
    stand_ins = {name: _ImportLater(name) for name in _LATER if name not in sys.modules}
    for name, module in stand_ins.items():
        parent, _, child = name.rpartition(".")
        if parent in stand_ins:  # `import matplotlib.pyplot as plt` takes the attribute of the parent stand-in
            setattr(stand_ins[parent], child, module)
        sys.modules[name] = module
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise DataError(None, "video detection needs MediaPipe: pip install 'bonelift[video]' "
                              "(mediapipe==0.10.21)") from exc
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]  # anyone importing it from now on gets the real one
    return mp.solutions.pose


MIN_CHUNK = 45  # frames per worker below which a second process costs more than it saves
# A process that has run a MediaPipe graph cannot be forked safely (its children crash), and spawned
# workers would re-import the caller's script; so later runs in such a process use one worker.
_GRAPH_IN_PROCESS = False


def _detect_range(
    source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float, tick
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe over frames start..stop-1 with one tracker: (N, 33, 2) pixels (NaN: nobody), (N, 33) visibility,
    (N, 33, 3) its own metric 3D (`pose_world_landmarks`; NaN: none)."""
    global _GRAPH_IN_PROCESS
    pose_mod = _mediapipe_pose()
    _GRAPH_IN_PROCESS = True
    points: list[np.ndarray] = []
    confs: list[np.ndarray] = []
    worlds: list[np.ndarray] = []
    nan = np.full((MEDIAPIPE33.num_joints, 2), np.nan)
    nan3 = np.full((MEDIAPIPE33.num_joints, 3), np.nan)
    zero = np.zeros(MEDIAPIPE33.num_joints)
    with pose_mod.Pose(
        static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=True,
        min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
    ) as pose:
        for rgb in source.frames(max_side, start, stop, ahead=READ_AHEAD):
            result = pose.process(rgb)
            tick()
            if result.pose_landmarks is None:
                points.append(nan)
                confs.append(zero)
                worlds.append(nan3)
                continue
            lm = result.pose_landmarks.landmark
            points.append(np.array([[p.x * source.width, p.y * source.height] for p in lm]))
            confs.append(np.clip([p.visibility for p in lm], 0.0, 1.0))
            world = result.pose_world_landmarks
            worlds.append(np.array([[p.x, p.y, p.z] for p in world.landmark]) if world is not None else nan3)
    if not points:
        j = MEDIAPIPE33.num_joints
        return np.zeros((0, j, 2)), np.zeros((0, j)), np.zeros((0, j, 3))
    return np.stack(points), np.stack(confs), np.stack(worlds)


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


def _worker(source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float,
            *extra) -> tuple[np.ndarray, np.ndarray]:
    return _detect_range(source, start, stop, max_side, min_confidence, _count_one, *extra)


def _parallel(
    source: FrameSource, total: int, open_end: bool, workers: int, max_side, min_confidence, bar, work=_worker,
    extra: tuple = (),
) -> tuple[np.ndarray, ...]:
    """Split the clip into `workers` consecutive chunks, each tracked by its own process.

    MediaPipe's graph runs on one core, so this is what uses a second core. Each chunk starts with
    a fresh tracker (one extra person-detector run at its first frame). Processes are forked (no
    re-import, no model reload); the parent only waits and updates the progress bar.
    """
    # the last chunk reads to the end (the frame count may be an estimate)
    bounds = np.linspace(0, total, workers + 1).round().astype(int)
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("i", 0)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(counter, os.getpid()))
    try:
        futures = [
            pool.submit(work, source, int(a), None if open_end and k == workers - 1 else int(b), max_side,
                        min_confidence, *extra)
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
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))


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


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def track_threads() -> int:
    """Threads that track the people of one frame side by side: the usable cores, at most 4."""
    return max(1, min(4, _usable_cores()))


def default_workers() -> int:
    """Two detection processes on Linux with at least two usable cores, else one (see `_GRAPH_IN_PROCESS`)."""
    if not sys.platform.startswith("linux") or _GRAPH_IN_PROCESS:
        return 1
    return 2 if _usable_cores() >= 2 else 1


def detect(
    source: FrameSource,
    max_side: int | None = LiftConfig.max_side,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[Track2D, float]:
    """Run MediaPipe Pose over `source`; returns the MEDIAPIPE33 track (with MediaPipe's world landmarks) and
    the seconds spent.

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
            points, confs, world = _parallel(source, total, max_frames is None, workers, max_side, min_confidence,
                                             bar)
        else:
            points, confs, world = _detect_range(source, 0, max_frames, max_side, min_confidence,
                                                 lambda: bar.update(1))
    seconds = time.perf_counter() - start
    if len(points) == 0:
        raise DataError(source.path, "no frames could be read")
    track = Track2D(points, confs, MEDIAPIPE33, source.width, source.height, source.fps, str(source.path),
                    world=world)
    if not track.detected.any():
        raise DataError(source.path, f"no person found in any of its {track.num_frames} frames")
    return track, seconds


# --- every person in the frame -------------------------------------------------------------------------------------

FIND_EVERY = 3  # frames between searches for people not yet tracked ...
PATIENCE = 3  # searches at that rate after the last find or loss; after them each search that finds nobody
FIND_BACKOFF = 4  # doubles the wait, up to this many times FIND_EVERY (a third of the detection cost was searches
# on a clip whose people were all tracked); losing someone restarts the short wait
# A detection process that starts mid-clip first follows people this long (at most a third of its chunk)
# before its first frame, without the first tracker (it starts on its first frame, as the single-person
# tracker does): people an earlier process followed are then already tracked, even one MediaPipe cannot
# pick up from a single still frame.
LEAD_SECONDS = 1.0
# Frames per detection process below which `detect_people` keeps one process: a chunk that starts mid-clip has to
# find everyone again (the demo clip split in two: 63 -> 43 frames with both people), and on frames with several
# people the trackers' threads already use the cores (`track_threads`).
PEOPLE_CHUNK_SECONDS = 10.0
LOST_SEARCHES = 2  # searches at a lost person's last place (a window around it) before the usual ones resume
LOST_WINDOW = 1.2  # side of that window / the person's last box: little room for the people around them
STILL_SEARCHES = 12  # searches on a photograph (whole frame and tiles in turn) for everyone in it
DUPLICATE = 0.15  # two trackers whose keypoints lie this close (mean distance / person size) follow one person
FOUND_WINDOW = 1.7  # side of a found person's first window / the square around their circle (~ a tracked one's)


def _box(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(x0, y0, x1, y1) around a person's landmarks, 10 % padded, clipped to the image."""
    lo, hi = points.min(0), points.max(0)
    pad = 0.1 * (hi - lo).max() + 4
    return np.clip(np.r_[lo - pad, hi + pad], 0, [width, height, width, height])


# MediaPipe-33 limbs and torso edges painted over a person to hide them (feet and hands included).
_LIMBS = ((11, 13), (13, 15), (15, 19), (12, 14), (14, 16), (16, 20), (23, 25), (25, 27), (27, 31), (24, 26),
          (26, 28), (28, 32), (11, 12), (23, 24), (11, 23), (12, 24))


def _masked(rgb: np.ndarray, hide: list[np.ndarray], keep: np.ndarray | None) -> np.ndarray:
    """`rgb` with the people `hide` ((33, 2) pixel landmarks each) painted black, except inside the box `keep`.

    A silhouette (thick limbs, filled torso, head disc) rather than a box: a box around someone with
    raised arms also covers the person standing next to them.
    """
    if not hide:
        return rgb
    import cv2

    out = rgb.copy()
    for pts in hide:
        size = float(np.linalg.norm(pts.max(0) - pts.min(0)))
        width = max(3, int(round(0.09 * size)))
        q = np.round(pts).astype(np.int32)
        cv2.fillConvexPoly(out, q[[11, 12, 24, 23]], (0, 0, 0))
        for a, b in _LIMBS:
            cv2.line(out, tuple(int(v) for v in q[a]), tuple(int(v) for v in q[b]), (0, 0, 0), width)
        head = float(np.linalg.norm(pts[7] - pts[8]))
        cv2.circle(out, tuple(int(v) for v in q[0]), max(3, int(round(0.9 * head + width / 2))), (0, 0, 0), -1)
    if keep is not None:
        x0, y0, x1, y1 = np.round(keep).astype(int)
        out[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
    return out


class _Person:
    """One MediaPipe tracker following one person; `points` in downscaled pixels, None while it sees nobody.

    The first tracker sees the whole frame. The others see a window around their person, so a
    small person (the detector works on the whole frame at 224 px) is still found and followed;
    the window moves only when the person nears its edge or changes size a lot. Those trackers
    run without MediaPipe's landmark smoothing, which would smear the jump a window move causes.
    """

    def __init__(self, pose, window: np.ndarray | None = None) -> None:
        self.pose = pose  # a `_tracker_graph`: smoothing on for the whole-frame tracker only
        self.window = window
        self.points: np.ndarray | None = None
        self.conf: np.ndarray | None = None
        self.box: np.ndarray | None = None
        self.world: np.ndarray | None = None  # (33, 3) MediaPipe's metric, hip-centred landmarks (NaN: none)

    def see(self, rgb: np.ndarray, hide: list[np.ndarray]) -> bool:
        h, w = rgb.shape[:2]
        if self.window is None:
            image, x0, y0 = _masked(rgb, hide, self.box), 0, 0
        else:
            x0, y0, x1, y1 = self.window
            shift = np.array([x0, y0, x0, y0])
            keep = None if self.box is None else self.box - shift
            image = np.ascontiguousarray(_masked(rgb[y0:y1, x0:x1], [q - shift[:2] for q in hide], keep))
        result = self.pose.process(image)
        if result.pose_landmarks is None:
            self.points = self.conf = self.box = self.world = None
            return False
        ih, iw = image.shape[:2]
        lm = result.pose_landmarks.landmark
        self.points = np.array([[p.x * iw + x0, p.y * ih + y0] for p in lm])
        self.conf = np.clip([p.visibility for p in lm], 0.0, 1.0)
        world = result.pose_world_landmarks
        self.world = (np.array([[p.x, p.y, p.z] for p in world.landmark]) if world is not None
                      else np.full((len(lm), 3), np.nan))
        self.box = _box(self.points, w, h)
        if self.window is not None and not _fits(self.box, self.window):
            self.window = _window(self.box, w, h)
        return True

    def close(self) -> None:
        self.pose.close()


def _tracker_graph(pose_mod, min_confidence: float, smooth: bool):
    """A MediaPipe tracking-mode pose graph (`_Person.pose`)."""
    return pose_mod.Pose(static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=smooth,
                         min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)


_BLANK = np.zeros((64, 64, 3), np.uint8)  # a frame with nobody on it: loads a graph's models, or clears its track


def _ready(loading: concurrent.futures.Future | None) -> None:
    """Wait for a graph's models to load (`loading`: its first, blank frame; None: nothing to wait for)."""
    if loading is not None:
        loading.result()


class _Graphs:
    """The tracker graphs of the people after the first, reused and loaded ahead: a new MediaPipe graph costs
    100-400 ms (its models load on its first frame), so a spare loads in `loader` beside the trackers while more
    people may come (at most `others` trackers besides the first), and a lost person's graph is kept and handed to
    the next person found. A graph that has lost its person (or seen a blank frame) detects anew on its next frame,
    as a new one does, so neither changes any keypoints."""

    def __init__(self, pose_mod, min_confidence: float, loader: concurrent.futures.Executor | None,
                 others: int) -> None:
        self._make = lambda: _tracker_graph(pose_mod, min_confidence, smooth=False)
        self._loader = loader  # None: no spare loads ahead (one core: it would only delay the trackers)
        self._others = others
        self._out = 0  # graphs handed to trackers and not yet given back
        self._spare: list[tuple[object, concurrent.futures.Future | None]] = []
        self._lock = threading.Lock()  # searches start trackers in their own thread while the loop stops others

    def warm(self) -> None:
        """Load a spare graph in the loader unless one is ready or no one else can come."""
        with self._lock:
            if self._loader is None or self._spare or self._out >= self._others:
                return
            graph = self._make()
            self._spare.append((graph, self._loader.submit(graph.process, _BLANK)))

    def tracker(self, window: np.ndarray) -> _Person:
        """A tracker for a person found in `window`: a spare graph, else a new one."""
        with self._lock:
            graph, loading = self._spare.pop() if self._spare else (None, None)
            self._out += 1
        _ready(loading)
        return _Person(self._make() if graph is None else graph, window)

    def stop(self, person: _Person) -> None:
        """Keep the graph of a tracker no longer needed; one still following someone sees a blank frame first."""
        with self._lock:
            self._out -= 1
        if person.box is not None and person.pose.process(_BLANK).pose_landmarks is not None:
            person.close()  # not cleared (never seen): not reused
            return
        with self._lock:
            self._spare.append((person.pose, None))

    def close(self) -> None:
        for graph, loading in self._spare:
            _ready(loading)
            graph.close()
        self._spare = []


class StreamDetector:
    """MediaPipe's single-person tracker fed one frame at a time (`bonelift live`): the tracker `detect` runs
    over a clip and `detect_people` starts with, so a stream gives the keypoints offline detection gives."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        self._person = _Person(_tracker_graph(_mediapipe_pose(), min_confidence, smooth=True))

    def __call__(self, rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...] | None:
        """The person on an RGB frame (any downscale of a `width` x `height` image): (33, 2) pixels of the full
        image, (33,) visibilities and (33, 3) world landmarks (NaN: none), or None when nobody is seen."""
        person = self._person
        if not person.see(rgb, []):
            return None
        scale = np.array([width / rgb.shape[1], height / rgb.shape[0]])
        return person.points * scale, person.conf, person.world

    def close(self) -> None:
        self._person.close()


def _window(box: np.ndarray, width: int, height: int, scale: float = 1.8) -> np.ndarray:
    """Integer (x0, y0, x1, y1): a square `scale` times the person's box around it, inside the frame."""
    side = min(max(scale * float((box[2:] - box[:2]).max()), 96.0), float(max(width, height)))
    centre = (box[:2] + box[2:]) / 2
    lo = np.clip(centre - side / 2, 0, np.maximum(np.array([width, height]) - side, 0))
    hi = np.minimum(lo + side, [width, height])
    return np.round(np.r_[lo, hi]).astype(int)


def _fits(box: np.ndarray, window: np.ndarray) -> bool:
    """The box lies inside the window's inner 80 % and is neither much too big nor too small for it."""
    side = float((window[2:] - window[:2]).max())
    margin = 0.1 * side
    inside = (box[:2] >= window[:2] + margin).all() and (box[2:] <= window[2:] - margin).all()
    size = float((box[2:] - box[:2]).max())
    return bool(inside and 1.3 * size <= side <= 3.0 * size)


def _tiles(width: int, height: int) -> list[np.ndarray]:
    """Overlapping squares of two thirds of the short side covering the frame, where the finder looks for
    people too small for a whole-frame detection."""
    side = max(1, round(2 * min(width, height) / 3))
    xs = np.linspace(0, width - side, max(2, int(np.ceil(width / side)) + 1)).round().astype(int)
    ys = np.linspace(0, height - side, max(2, int(np.ceil(height / side)) + 1)).round().astype(int)
    return [np.array([x, y, x + side, y + side]) for y in ys for x in xs]


def _search_wait(misses: int) -> int:
    """Frames to the next search for more people after `misses` searches in a row found nobody: `FIND_EVERY` for
    the first `PATIENCE`, then doubling up to `FIND_BACKOFF` times that."""
    return FIND_EVERY * min(2 ** min(max(misses - PATIENCE, 0), 8), FIND_BACKOFF)


def _detect_people_range(
    source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float, tick,
    max_people: int, world: bool = False,
) -> tuple[np.ndarray, ...]:
    """Every person on frames start..stop-1: (N, max_people, 33, 2) pixels (NaN: empty slot), (N, max_people, 33).

    With `world`, also (N, max_people, 33, 3): MediaPipe's `pose_world_landmarks` of the same slots.

    One MediaPipe tracker per person, each fed the frame with the other people painted out (`_masked`;
    its own box kept) where the previous frame left them, so a tracker that loses its person cannot
    jump onto someone already tracked; the trackers of a frame run side by side in `track_threads()`
    threads. The first tracker runs on every whole frame like the single-person `detect`, so a video
    with one person gives exactly its keypoints. Every `FIND_EVERY` frames (longer while searches find
    nobody, `_search_wait`) MediaPipe's person detector on the frame with everyone tracked hidden
    (`_search`) looks for one more person and starts a tracker on them (`_seek`), both in their own thread
    beside the trackers of that frame and the next; the person joins on the frame after (the start often fails,
    and no frame waits for it; on the frame where the first tracker first finds someone the search runs after it
    and they join at once); after a tracker loses its person, every other search looks at their last place first
    (`LOST_SEARCHES`). A chunk that starts mid-clip runs
    `LEAD_SECONDS` early (those frames are not returned). A slot's position in a row carries no
    identity: `associate` links rows into people.
    """
    global _GRAPH_IN_PROCESS
    pose_mod = _mediapipe_pose()
    _GRAPH_IN_PROCESS = True
    j = MEDIAPIPE33.num_joints
    points: list[np.ndarray] = []
    confs: list[np.ndarray] = []
    worlds: list[np.ndarray] = []
    first = _Person(_tracker_graph(pose_mod, min_confidence, smooth=True))
    people = [first]
    finder = _finder_graph()
    pool = concurrent.futures.ThreadPoolExecutor(track_threads())
    # The finder works in its own thread (loading its models beside the first tracker's first frame, then one search
    # and the start of its tracker at a time), so the trackers never queue behind a search; spare tracker graphs
    # load in a third thread (`loader`). The finder has no state: the blank frame it loads on changes nothing.
    finding = concurrent.futures.ThreadPoolExecutor(1)
    finder_ready = finding.submit(finder.process, _BLANK) if max_people > 1 else None
    loader = concurrent.futures.ThreadPoolExecutor(1) if track_threads() > 1 else None
    graphs = _Graphs(pose_mod, min_confidence, loader, max_people - 1)
    graphs.warm()
    searches = misses = next_search = 0
    # (`_seek` running in `finding`, the frame it was sent on, where it looked): a search for more people and the
    # start of a tracker on whom it found, beside the trackers of two frames; the person joins on the frame after
    seeking: tuple[concurrent.futures.Future, int, np.ndarray | None] | None = None
    lost: list[list] = []  # [last box, searches there] of each person a tracker lost: every other search looks there
    where = None

    def settle(person: _Person | None, sent: int, looked: np.ndarray | None) -> None:
        """The tracker a search started on someone (or None) joins the people; the search cadence goes on."""
        nonlocal searches, misses, lost, next_search
        joined = _join(graphs, person, people, max_people)
        if looked is None:  # the whole frame or a tile
            searches += 1
            misses = 0 if joined else misses + 1
        else:  # a lost person's place is searched LOST_SEARCHES times, or until someone is found there;
            lost[0][1] += 1  # it neither counts as a miss nor takes a turn of the whole frame and tiles
            lost = lost[1:] if joined or lost[0][1] >= LOST_SEARCHES else lost
            misses = 0 if joined else misses
        next_search = sent + _search_wait(misses)
        graphs.warm()  # a tracker started (or failed and was kept): the next spare loads while none is left

    span = (source.num_frames if stop is None else stop) - start
    lead = max(0, min(start, round(LEAD_SECONDS * source.fps), span // 3))  # at most a third more work
    try:
        for n, rgb in enumerate(source.frames(max_side, start - lead, stop, ahead=READ_AHEAD)):
            h, w = rgb.shape[:2]
            if seeking is not None and n >= seeking[1] + 2:  # sent two frames ago: whom it found joins now
                settle(seeking[0].result(), *seeking[1:])
                seeking = None
            seen = [p.points for p in people]
            if seeking is None and n >= next_search and (first.box is not None or n < lead) \
                    and len(people) < max_people:
                # the search for more people sees them where the last frame left them, beside this frame's trackers
                # (while the first tracker sees nobody its own detector searches every frame)
                where = _window(lost[0][0], w, h, LOST_WINDOW) if lost and where is None else None
                seeking = (finding.submit(_seek, finder, graphs, rgb, _known(people), searches, min_confidence, where),
                           n, where)
            jobs = []
            for k, person in enumerate(people):
                if person is first and n < lead:
                    continue
                # the first tracker starts on the whole frame, as the single-person tracker does
                starting = person is first and n == lead
                jobs.append((person, [q for i, q in enumerate(seen) if i != k and q is not None and not starting]))
            # Each tracker is its own MediaPipe graph, which releases the GIL: the people of a frame are
            # tracked side by side (they see each other where the last frame left them).
            for person, seeing in [(person, pool.submit(person.see, rgb, hide)) for person, hide in jobs]:
                if not seeing.result() and person is not first:
                    lost = [*lost, [_box(seen[people.index(person)], w, h), 0]][-max_people:]
                    graphs.stop(person)
            tracked = len(people)
            people = _drop_duplicates([first] + [p for p in people[1:] if p.box is not None], graphs)
            if len(people) < tracked:  # someone lost: they may well still be there
                misses, next_search = 0, min(next_search, n + FIND_EVERY)
            if seeking is None and n >= next_search and first.box is not None and len(people) < max_people:
                # the first tracker has just found someone (the clip's first frame): search after it, join at once
                where = None
                settle(finding.submit(_seek, finder, graphs, rgb, _known(people), searches, min_confidence).result(),
                       n, None)
            if source.num_frames == 1:  # a photograph: no later frames to find the others on, so search now
                for still in range(STILL_SEARCHES):
                    if len(people) >= max_people:
                        break
                    _ready(finder_ready)
                    _join(graphs, _seek(finder, graphs, rgb, _known(people), searches + still, min_confidence),
                          people, max_people)
            if n < lead:
                continue
            row = np.full((max_people, j, 2), np.nan)
            conf = np.zeros((max_people, j))
            world_row = np.full((max_people, j, 3), np.nan)
            scale = np.array([source.width / rgb.shape[1], source.height / rgb.shape[0]])
            for k, person in enumerate(p for p in people if p.box is not None):
                if k < max_people:
                    row[k] = person.points * scale
                    conf[k] = person.conf
                    world_row[k] = person.world
            points.append(row)
            confs.append(conf)
            worlds.append(world_row)
            tick()
    finally:
        pool.shutdown(wait=True)
        finding.shutdown(wait=True)  # a search sent on the last frames finishes unread
        late = seeking[0].result() if seeking is not None and seeking[0].exception() is None else None
        if late is not None:
            late.close()
        if loader is not None:
            loader.shutdown(wait=True)
        for person in people:
            person.close()
        graphs.close()
        finder.close()
    if not points:
        empty = np.zeros((0, max_people, j, 2)), np.zeros((0, max_people, j))
        return (*empty, np.zeros((0, max_people, j, 3))) if world else empty
    return (np.stack(points), np.stack(confs), np.stack(worlds)) if world else (np.stack(points), np.stack(confs))


def _drop_duplicates(people: list[_Person], graphs: _Graphs) -> list[_Person]:
    """Stop the later of two trackers that follow the same person (the first tracker is never stopped)."""
    kept: list[_Person] = []
    for person in people:
        if person.box is not None and kept:
            same = any(
                other.box is not None and np.linalg.norm(other.points - person.points, axis=-1).mean()
                < DUPLICATE * np.linalg.norm(other.box[2:] - other.box[:2]) for other in kept)
            if same:
                graphs.stop(person)
                continue
        kept.append(person)
    return kept


def _boxed(rgb: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    """`rgb` with the boxes blacked out."""
    out = rgb.copy()
    for box in boxes:
        x0, y0, x1, y1 = np.round(box).astype(int)
        out[y0:y1, x0:x1] = 0
    return out


def _known(people: list[_Person]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(box, landmarks) of every person a tracker sees: a copy a search can read while the trackers update."""
    return [(p.box, p.points) for p in people if p.box is not None]


class _Found(NamedTuple):
    """A person the detector found: the middle of their hips and the radius of the circle around their body
    (BlazePose's detection keypoints 0 and 1), in pixels of the frame."""

    centre: np.ndarray
    radius: float

    def box(self, width: int, height: int) -> np.ndarray:
        """The square around that circle, clipped to the image."""
        r = self.radius
        return np.clip(np.r_[self.centre - r, self.centre + r], 0, [width, height, width, height])


# BlazePose's person detector alone, the first half of a still-image Pose graph: a search needs only to know where
# someone is (the tracker started there runs the landmarks), and this costs 13 ms a frame here against 34.
_FINDER_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""


def _finder_graph():
    """A MediaPipe graph running only the pose detector (`_FINDER_GRAPH`); its `process` returns `detections`."""
    _mediapipe_pose()
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python.solution_base import SolutionBase

    config = text_format.Parse(_FINDER_GRAPH, calculator_pb2.CalculatorGraphConfig())
    return SolutionBase(graph_config=config, outputs=["detections"])


def _search(finder, rgb: np.ndarray, tracked: list[tuple[np.ndarray, np.ndarray]], search: int,
            min_confidence: float, where: np.ndarray | None = None) -> _Found | None:
    """Someone who is not one of the `tracked` people ((box, landmarks) each), or None.

    Searches alternate between the whole frame with every tracked person's box blacked out (finds
    people apart from them) and one of `_tiles` in turn with the tracked people painted out (finds
    people next to or behind them, and people too small for a whole-frame detection); a window `where`
    (a lost person's last place) is searched like a tile. Of the detector's people (at least `min_confidence`),
    the likeliest whose hips are in no tracked person's box (one showing beside their mask is not new).
    """
    h, w = rgb.shape[:2]
    if search % 2 == 0 and where is None:
        area = np.array([0, 0, w, h])
        image = _boxed(rgb, [box for box, _ in tracked])
    else:
        tiles = _tiles(w, h)
        area = tiles[search // 2 % len(tiles)] if where is None else where
        x0, y0, x1, y1 = area
        image = _masked(rgb[y0:y1, x0:x1], [points - area[:2] for _, points in tracked], None)
    x0, y0, x1, y1 = area
    found = []
    for d in finder.process(np.ascontiguousarray(image)).detections or []:
        hips, edge = ([k.x * (x1 - x0) + x0, k.y * (y1 - y0) + y0] for k in d.location_data.relative_keypoints[:2])
        centre = np.array(hips)
        if d.score[0] >= min_confidence and not any(_inside(centre, box) for box, _ in tracked):
            found.append((d.score[0], _Found(centre, float(np.linalg.norm(np.subtract(edge, hips))))))
    return max(found, key=lambda f: f[0])[1] if found else None


def _inside(point: np.ndarray, box: np.ndarray) -> bool:
    return bool((point >= box[:2]).all() and (point <= box[2:]).all())


def _seek(finder, graphs: _Graphs, rgb: np.ndarray, tracked: list[tuple[np.ndarray, np.ndarray]], search: int,
          min_confidence: float, where: np.ndarray | None = None) -> _Person | None:
    """A tracker started on someone a search (`_search`) found, seeing them on this frame with the `tracked`
    people painted out, or None. Its landmarks must hold the hips the detector saw; its window: `where` (where the
    search looked), else one around the person's circle. It runs in the search's thread, beside the trackers: a start
    that fails (the detector also fires on things no landmarks confirm) delays no frame."""
    found = _search(finder, rgb, tracked, search, min_confidence, where)
    if found is None:
        return None
    h, w = rgb.shape[:2]
    person = graphs.tracker(_window(found.box(w, h), w, h, FOUND_WINDOW) if where is None else where)
    if person.see(rgb, [points for _, points in tracked]) and _inside(found.centre, person.box):
        return person
    graphs.stop(person)
    return None


def _join(graphs: _Graphs, person: _Person | None, people: list[_Person], max_people: int) -> bool:
    """Add a tracker a search started to `people` unless they are full or it follows someone they hold (the
    trackers moved on this frame); whether it joined."""
    if person is None:
        return False
    if len(people) >= max_people:
        graphs.stop(person)
        return False
    people[:] = _drop_duplicates([*people, person], graphs)
    return people[-1] is person


def _people_worker(source: FrameSource, start: int, stop: int | None, max_side: int | None, min_confidence: float,
                   max_people: int, world: bool = False) -> tuple[np.ndarray, ...]:
    return _detect_people_range(source, start, stop, max_side, min_confidence, _count_one, max_people, world)


def detect_people(
    source: FrameSource,
    max_people: int = 4,
    max_side: int | None = LiftConfig.max_side,
    max_frames: int | None = None,
    min_confidence: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
    world: bool = False,
) -> tuple[np.ndarray, ...]:
    """Every person on every frame: (T, max_people, 33, 2) MEDIAPIPE33 pixels (NaN: empty slot), (T, max_people, 33).

    Slots carry no identity (see `bonelift.pipeline.associate`). Chunks of the clip run in
    `workers` processes like `detect`; by default one process unless each chunk would hold at least
    `PEOPLE_CHUNK_SECONDS` of video (the threads of `_detect_people_range` use the cores). `world` adds a
    third array (T, max_people, 33, 3): MediaPipe's own 3D `pose_world_landmarks` (metres, origin between
    the hips, image-aligned axes x right, y down, z away from the camera), for comparing a lifter with
    MediaPipe's 3D.
    """
    _mediapipe_pose()
    total = source.num_frames if max_frames is None else min(source.num_frames, max_frames)
    if workers is None:
        workers = min(default_workers(), total // max(MIN_CHUNK, round(PEOPLE_CHUNK_SECONDS * source.fps)))
    workers = max(1, min(workers, total)) if not _GRAPH_IN_PROCESS else 1
    with tqdm(total=total, desc="detect 2D", unit="frame", disable=not progress) as bar:
        if workers > 1:
            out = _parallel(source, total, max_frames is None, workers, max_side, min_confidence, bar,
                            work=_people_worker, extra=(max_people, world))
        else:
            out = _detect_people_range(source, 0, max_frames, max_side, min_confidence, lambda: bar.update(1),
                                       max_people, world)
    points = out[0]
    if len(points) == 0:
        raise DataError(source.path, "no frames could be read")
    if not np.isfinite(points).all(-1).all(-1).any():
        raise DataError(source.path, f"no person found in any of its {len(points)} frames")
    return out
