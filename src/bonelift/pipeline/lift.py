"""`lift()`: video / image folder / 2D keypoint file in, 3D joints + BVH + pictures out, offline.

Stages: 2D (MediaPipe detection, or a keypoint file) -> gap filling (per joint) -> detector layout
to Human3.6M-17 -> lifting with a bonelift checkpoint (a video lifter over each run of posed frames, or
a single-frame one; `lifters`) and the root trajectory in the camera frame (`cameras.root_trajectory`)
-> exports (npz, json, csv, bvh) -> pictures (mp4, gif, html). Videos are searched for every person
(`detect.detect_people`), whose detections are linked into one track per person (`associate`) and
lifted track by track. Everything is written into a temporary folder beside OUTDIR and moved into
place only when all stages succeeded, so a failed run leaves no partial outputs.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bonelift.biomech import joint_angles
from bonelift.cameras import assumed_intrinsics, root_trajectory
from bonelift.errors import DataError, OptionError
from bonelift.filters import check_filter, smooth
from bonelift.pipeline import biomech_files, bvh, export, render, viewer
from bonelift.pipeline.gaps import fill_gaps
from bonelift.pipeline.keypoint_io import is_keypoint_input, read_people
from bonelift.pipeline.lifters import (
    DEFAULT_WEIGHTS,
    Lifter,
    check_reframe,
    check_skeleton,
    choose_lifter,
    frame_like_training,
    lift_track,
)
from bonelift.pipeline.track import DETECTED, INTERPOLATED, MISSING, Track2D
from bonelift.skeletons import H36M17, convert
from bonelift.world import estimate_world

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEMO_CLIP = PACKAGE_DIR / "assets" / "demo_walk.mp4"
OUTPUT_FILES = ("poses3d.npz", "poses3d.json", "poses3d.csv", "poses3d.bvh", "poses3d.trc", "poses3d.c3d", "poses3d.mot",
                "poses3d_angles.csv", "viewer.html", "overlay.mp4", "overlay.gif")
PERSON_BVH = re.compile(r"poses3d_person\d+\.bvh")  # one BVH per further person: also bonelift outputs
DEFAULT_MAX_PEOPLE = 4


@dataclass
class LiftSummary:
    """What a run produced and how fast each stage was (seconds are wall-clock)."""

    out_dir: Path
    frames: int
    detected: int
    interpolated: int
    missing: int
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU time (all threads and workers) per stage
    files: list[Path] = field(default_factory=list)
    max_side: int | None = None
    people: dict[int, int] = field(default_factory=dict)  # person id -> frames with a pose (detected or filled)
    lifter: str = ""  # the lifter that ran (file, model, causal or not, receptive field)

    def fps(self, stage: str) -> float:
        return self.frames / self.seconds[stage] if self.seconds.get(stage) else float("inf")

    def __str__(self) -> str:
        lines = [
            f"frames: {self.frames}  detected: {self.detected}  interpolated: {self.interpolated}  no person: {self.missing}",
        ]
        for stage, sec in self.seconds.items():
            cpu = self.cpu_seconds.get(stage)
            extra = f"  ({1000 * cpu / max(self.frames, 1):.1f} CPU ms/frame)" if cpu is not None else ""
            lines.append(f"  {stage:<10} {sec:8.2f} s  {self.fps(stage):9.1f} frames/s{extra}")
        two_d = self.seconds.get("detect 2D", self.seconds.get("read 2D", 0.0))
        lifted = two_d + self.seconds.get("lift", 0.0)
        if lifted > 0:
            share = 100 * self.seconds.get("lift", 0.0) / lifted
            lines.append(f"  2D + lift: {self.frames / lifted:.1f} frames/s (lifting {share:.1f} % of it)")
        if self.max_side:
            lines.append(f"  (frames downscaled to at most {self.max_side} px before detection)")
        if len(self.people) > 1:
            each = ", ".join(f"{k}: {n}" for k, n in self.people.items())
            main = max(self.people, key=lambda k: self.people[k])
            lines.append(f"people: {len(self.people)} (frames with a pose per person id: {each}); "
                         f"counts above are the main person's (person {main}, the longest track)")
        if self.lifter:
            lines.append(f"lifter: {self.lifter}")
        lines.append(f"outputs in {self.out_dir}: " + ", ".join(p.name for p in self.files))
        return "\n".join(lines)


class _Stages:
    """Wall-clock and process-CPU seconds per named stage."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @staticmethod
    def _cpu() -> float:
        """CPU seconds of this process and its finished children (the detection workers)."""
        try:
            import resource
        except ImportError:  # not on Unix: this process only
            return time.process_time()
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        w, c = time.perf_counter(), self._cpu()
        yield
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w
        self.cpu[name] = self.cpu.get(name, 0.0) + self._cpu() - c


def _to_h36m(track: Track2D) -> Track2D:
    if track.layout == H36M17:
        return track
    try:
        kp, conf = convert(track.keypoints, track.layout, H36M17, track.confidence)
    except DataError as exc:
        raise DataError(track.source, exc.problem) from None
    return Track2D(kp, conf, H36M17, track.width, track.height, track.fps, track.source, track.status)


def _two_d(
    src: Path, layout: str | None, image_size: tuple[int, int] | None, fps: float | None, max_side: int | None,
    max_frames: int | None, progress: bool, workers: int | None, max_people: int,
) -> tuple[list[Track2D], object]:
    """The 2D tracks of `src`, one per person (videos: longest first; keypoint files: the file's order), and its
    frame source (None for keypoint files).

    `max_people` 1 runs the single-person MediaPipe tracker exactly as before multi-person support.
    """
    if is_keypoint_input(src):
        tracks = read_people(src, layout=layout, image_size=image_size, fps=fps)[:max_people]
        if max_frames is not None:
            tracks = [Track2D(t.keypoints[:max_frames], t.confidence[:max_frames], t.layout, t.width, t.height, t.fps,
                              t.source, t.status[:max_frames]) for t in tracks]
        return tracks, None
    from bonelift.pipeline.detect import detect, detect_people
    from bonelift.pipeline.frames import open_frames

    frame_source = open_frames(src, fps)
    if max_people == 1:
        track = detect(frame_source, max_side=max_side, max_frames=max_frames, progress=progress, workers=workers)[0]
        return [track], frame_source
    from bonelift.pipeline.associate import associate, gather
    from bonelift.skeletons import MEDIAPIPE33

    points, confs = detect_people(frame_source, max_people, max_side=max_side, max_frames=max_frames,
                                  progress=progress, workers=workers)
    rate = frame_source.fps
    rows = associate(points, max_lost=max(1, round(rate)), min_frames=max(3, round(rate / 2)))
    tracks = [Track2D(gather(points, r, np.nan), gather(confs, r, 0.0), MEDIAPIPE33, frame_source.width,
                      frame_source.height, rate, str(frame_source.path)) for r in rows]
    return tracks, frame_source


def _prepare_out_dir(out_dir: Path) -> Path:
    """Make a temporary folder beside `out_dir` (same filesystem, so the final move is a rename)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, "output path exists and is not a folder")
    if out_dir.is_dir() and not os.access(out_dir, os.W_OK | os.X_OK):
        raise DataError(out_dir, "output folder is not writable")
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(out_dir, f"cannot write the output folder ({exc.strerror or exc})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(out_dir, f"its parent folder {parent} is not writable (bonelift writes the outputs to a "
                                 "temporary folder there and moves them in when every stage succeeded)")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise DataError(out_dir, f"cannot write a temporary folder in {parent} ({exc.strerror or exc})") from exc
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the final folder should look like any other
    return tmp


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out_dir` (file `.OUT.lock` beside it) so two runs cannot mix their outputs.

    The lock file is removed on release; a run that locked a file another run just removed retries
    on the new one, so removal never lets two runs in at once.
    """
    import fcntl

    lock = out_dir.parent / f".{out_dir.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataError(out_dir, f"cannot create the lock file {lock} ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataError(out_dir, f"another bonelift run is writing {out_dir} (lock {lock.name}); "
                                     "wait for it or choose another output folder") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # locked a file the previous holder had already removed: lock the current one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _commit(tmp: Path, out_dir: Path) -> list[Path]:
    """Move this run's files into `out_dir` and drop the outputs of an earlier run that this one did not write."""
    written = {f.name for f in tmp.iterdir()}
    if not out_dir.exists():
        os.replace(tmp, out_dir)
    else:
        for f in tmp.iterdir():
            os.replace(f, out_dir / f.name)
        tmp.rmdir()
        for f in out_dir.iterdir():
            if (f.name in OUTPUT_FILES or PERSON_BVH.fullmatch(f.name)) and f.name not in written and f.is_file():
                f.unlink()
    persons = sorted((n for n in written if PERSON_BVH.fullmatch(n)), key=lambda n: int(re.sub(r"\D", "", n)))
    return [out_dir / name for name in OUTPUT_FILES if name in written] + [out_dir / n for n in persons]


def _positive(value: float | None, option: str, integer: bool = False, allow_zero: bool = False) -> None:
    """Refuse a number bonelift cannot use for `option`, naming the option and the value."""
    if value is None:
        return
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise OptionError(f"{option} must be {kind}, got {value!r}")
    if integer and float(value) != int(value):
        raise OptionError(f"{option} must be {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise OptionError(f"{option} must be {'finite and ' if not integer else ''}{bound}, got {value!r}")


def _check_options(fps, max_side, max_gap, max_frames, image_size, workers, person=None, max_people=None,
                   focal=None) -> None:
    """Check the numeric options before anything runs (the API and the command line share these checks)."""
    _positive(focal, "focal (--focal, pixels)")
    _positive(person, "person (--person)", integer=True, allow_zero=True)
    _positive(max_people, "max_people (--max-people)", integer=True)
    if person is not None and max_people is not None and person >= max_people:
        raise OptionError(f"person (--person) must be below max_people (--max-people) {max_people}, got {person!r}")
    _positive(fps, "fps (--fps)")
    _positive(max_side, "max_side (--max-side; 0 or None: no downscaling)", integer=True, allow_zero=True)
    _positive(max_gap, "max_gap (--max-gap)", integer=True, allow_zero=True)
    _positive(max_frames, "max_frames (--max-frames)", integer=True)
    _positive(workers, "workers (--workers)", integer=True)
    if image_size is not None:
        try:
            _positive(image_size[0], "width", integer=True)
            _positive(image_size[1], "height", integer=True)
            ok = len(image_size) == 2
        except (OptionError, TypeError, IndexError, KeyError):
            ok = False
        if not ok:
            raise OptionError(f"image_size (--size WIDTHxHEIGHT) must be two whole numbers of pixels greater than 0, "
                              f"got {image_size!r}")


def _on_sigterm(signum: int, frame) -> None:
    """Turn SIGTERM into SystemExit so the `finally` blocks stop the workers and remove the temporary folder."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Install `_on_sigterm` for the run (main thread only: signals are delivered there) and restore the old handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def lift(
    input: str | Path | None = None,
    out_dir: str | Path = "bonelift_out",
    model: str | Path | None = None,
    device: str = "auto",
    max_side: int | None = 640,
    max_gap: int | None = None,
    max_frames: int | None = None,
    layout: str | None = None,
    image_size: tuple[int, int] | None = None,
    fps: float | None = None,
    pictures: bool = True,
    progress: bool = True,
    workers: int | None = None,
    reframe: bool | None = None,
    skeleton: bool | None = None,
    person: int | None = None,
    max_people: int | None = DEFAULT_MAX_PEOPLE,
    lifter: str | None = None,
    causal: bool = False,
    focal: float | None = None,
    world: bool = True,
    biomech: bool = True,
    filter: str = "none",
    filter_cutoff: float | None = None,
    filter_beta: float | None = None,
) -> LiftSummary:
    """Lift `input` (video, image folder or 2D keypoint file; None = the bundled demo clip) to 3D.

    max_side: frames are downscaled so their longer side is at most this many pixels before
    detection (speed; MediaPipe works at 256 px internally). max_gap: longest run of missing frames
    filled by interpolation (default: a third of a second). layout / image_size / fps describe
    keypoint files that do not say so themselves. workers: detection processes (default: 2 on a
    Linux machine with 2+ cores for clips of 90+ frames, else 1). model: a single-frame or video
    lifter checkpoint; None: the bundled weights `lifter` names ("video", "single-frame"; None: the
    video lifter, or the single-frame one with a notice while the video weights are not installed).
    causal: a causal video lifter (`model` must be one; without `model` the bundled causal weights).
    reframe: scale and centre the clip's 2D like the lifter's training data (`frame_like_training`;
    None: on for single-frame lifters, off for video lifters). skeleton: one symmetric skeleton per person
    and clip (`fitting.fit_clip_skeleton`; None: on for video lifters, off for single-frame ones). focal: the
    camera's focal length in pixels for the root trajectory (None: `cameras.DEFAULT_FOCAL_FACTOR` x the longer image side).
    max_people: most people tracked at once in a video (1: the single-person tracker). person: None
    lifts everyone, the main person (id 0, the longest track) in `joints`; N lifts only person N.
    world: estimate the world frame (`bonelift.world`) and export the joints in it (also the BVH's frame).
    biomech: write poses3d.trc, .c3d, .mot and poses3d_angles.csv (needs `world`). filter: smooth joints and
    trajectory over time (`bonelift.filters`: "none", "one-euro", "butterworth"); filter_cutoff (Hz) and
    filter_beta its parameters (None: the defaults there).
    Returns a `LiftSummary`; raises DataError on bad input, OptionError on bad options.
    """
    from bonelift.runtime import resolve_device

    _check_options(fps, max_side, max_gap, max_frames, image_size, workers, person, max_people, focal)
    for flag, value in (("causal (--causal)", causal), ("world (--world)", world), ("biomech (--biomech)", biomech)):
        if not isinstance(value, bool):
            raise OptionError(f"{flag} must be True or False, got {value!r}")
    check_filter(filter)
    _positive(filter_cutoff, "filter_cutoff (--filter-cutoff, Hz)")
    _positive(filter_beta, "filter_beta (--filter-beta)", allow_zero=True)
    if biomech and not world:
        raise OptionError("biomech (--biomech) needs world (--world): the biomechanics files are in the world frame")
    max_side = max_side or None
    torch_device = resolve_device(device)
    src = Path(input) if input is not None else DEMO_CLIP
    out_dir = Path(out_dir).absolute()
    if not src.exists():
        raise DataError(src, "input not found")
    chosen = choose_lifter(model, lifter, causal, torch_device)
    do_reframe = check_reframe(chosen, reframe)
    do_skeleton = check_skeleton(chosen, skeleton)
    if pictures:
        try:
            import cv2  # noqa: F401
            import PIL  # noqa: F401
        except ImportError as exc:
            raise DataError(None, "pictures (MP4/GIF) need OpenCV and Pillow: pip install 'bonelift[video]', "
                                  "or pass pictures=False (--no-pictures)") from exc
    options = _Options(max_side, max_gap, max_frames, layout, image_size, fps, pictures, progress, workers,
                       do_reframe, do_skeleton, person, DEFAULT_MAX_PEOPLE if max_people is None else int(max_people),
                       focal, world, biomech, filter, filter_cutoff, filter_beta)
    with _sigterm_exits():
        return _run(src, out_dir, chosen, options)


@dataclass(frozen=True)
class _Options:
    """The checked options of one `lift` run, as the stages need them."""

    max_side: int | None
    max_gap: int | None
    max_frames: int | None
    layout: str | None
    image_size: tuple[int, int] | None
    fps: float | None
    pictures: bool
    progress: bool
    workers: int | None
    reframe: bool
    skeleton: bool
    person: int | None
    max_people: int
    focal: float | None
    world: bool = True
    biomech: bool = True
    filter: str = "none"
    filter_cutoff: float | None = None
    filter_beta: float | None = None


def _run(src: Path, out_dir: Path, lifter: Lifter, o: _Options) -> LiftSummary:
    """The stages of `lift` on checked options, holding the output lock, writing into a temporary folder."""
    stage = _Stages()
    tmp = _prepare_out_dir(out_dir)  # before the slow stages: an unwritable OUTDIR fails at once
    try:
        with _locked(out_dir):
            return _stages(stage, tmp, src, out_dir, lifter, o)
    except OSError as exc:
        raise DataError(out_dir, f"cannot write outputs ({exc.strerror or exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _stages(stage: _Stages, tmp: Path, src: Path, out_dir: Path, lifter: Lifter, o: _Options) -> LiftSummary:
    """2D, gaps, lifting, root trajectory, exports and pictures into `tmp`, then the commit into `out_dir`."""
    with stage("read 2D" if is_keypoint_input(src) else "detect 2D"):
        tracks, frame_source = _two_d(src, o.layout, o.image_size, o.fps, o.max_side, o.max_frames, o.progress,
                                      o.workers, o.max_people)
    gap = o.max_gap if o.max_gap is not None else max(1, round(tracks[0].fps / 3))
    tracks = [_to_h36m(fill_gaps(t, gap)) for t in tracks]  # fill per joint before derived joints mix them
    posed = [int((t.status != MISSING).sum()) for t in tracks]
    main = int(np.argmax(posed))  # the longest track (videos: person 0; keypoint files keep their order)
    if not posed[main]:
        raise DataError(tracks[0].source, f"no frame with a complete person, even after filling gaps of up to {gap} "
                                          "frames")
    ids = [k for k, n in enumerate(posed) if n]
    if o.person is not None:
        if o.person not in ids:
            raise OptionError(f"person (--person) is {o.person}, but {src} has {len(ids)} "
                              f"{'person' if len(ids) == 1 else 'people'} (ids {', '.join(map(str, ids))})")
        ids = [o.person]
    people = []
    info = {**lifter.info(), "skeleton": o.skeleton}
    with stage("lift"):
        for k in ids:
            t = tracks[k]
            joints = lift_track(lifter, t, reframe=o.reframe, skeleton=o.skeleton, progress=o.progress)
            f, c = assumed_intrinsics(t.width, t.height, o.focal)
            camera = {"focal": f, "principal_point": [float(c[0]), float(c[1])], "focal_assumed": o.focal is None}
            root = root_trajectory(joints, t.keypoints, t.confidence, f, c)
            joints = smooth(joints, t.fps, o.filter, o.filter_cutoff, o.filter_beta)
            root = smooth(root, t.fps, o.filter, o.filter_cutoff, o.filter_beta)
            people.append(export.Poses3D(joints, t.keypoints, t.confidence, t.status, t.fps, t.width, t.height,
                                         t.source, k, root, info, camera))
    poses = next((p for p in people if p.person == main), people[0])
    ordered = [poses] + [p for p in people if p is not poses]  # the main person's stature sets the ankle height
    frame = estimate_world([(p.joints, p.trajectory) for p in ordered], poses.fps) if o.world else None
    for p in people:
        p.world = frame
    with stage("export"):
        export.write_npz(poses, tmp / "poses3d.npz", people)
        export.write_json(poses, tmp / "poses3d.json", people)
        export.write_csv(poses, tmp / "poses3d.csv", people)
        bvh.write_bvh(poses.joints, poses.fps, tmp / "poses3d.bvh", poses.trajectory, frame)
        for other in (p for p in people if p is not poses):
            bvh.write_bvh(other.joints, other.fps, tmp / f"poses3d_person{other.person}.bvh", other.trajectory, frame)
        if o.biomech and frame is not None:
            markers = poses.joints_world
            biomech_files.write_trc(markers, poses.fps, tmp / "poses3d.trc")
            biomech_files.write_c3d(markers, poses.fps, tmp / "poses3d.c3d")
            angles = joint_angles(markers)
            biomech_files.write_mot(angles, poses.fps, tmp / "poses3d.mot")
            biomech_files.write_angles_csv(angles, poses.fps, tmp / "poses3d_angles.csv")
        viewer.write_html(poses, tmp / "viewer.html", people=people)
    if o.pictures:
        with stage("render"):
            frames = frame_source.frames(o.max_side) if frame_source is not None else None
            render.render_video(poses, frames, tmp / "overlay.mp4", tmp / "overlay.gif", progress=o.progress,
                                people=people)
    files = _commit(tmp, out_dir)
    status = poses.status
    counts = {p.person: int((p.status != MISSING).sum()) for p in people}
    return LiftSummary(out_dir, len(status), int((status == DETECTED).sum()), int((status == INTERPOLATED).sum()),
                       int((status == MISSING).sum()), stage.wall, stage.cpu, files,
                       o.max_side if frame_source is not None else None, counts, str(lifter))


__all__ = ["DEFAULT_WEIGHTS", "DEMO_CLIP", "OUTPUT_FILES", "LiftSummary", "frame_like_training", "lift", "lift_track"]
