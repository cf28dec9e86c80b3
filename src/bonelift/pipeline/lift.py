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
import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bonelift.biomech import joint_angles
from bonelift.cameras import Camera, assumed_intrinsics, read_intrinsics, root_trajectory
from bonelift.config import LiftConfig, configure
from bonelift.errors import DataError, OptionError
from bonelift.filters import smooth
from bonelift.io import writable_dir
from bonelift.pipeline import biomech_files, bvh, export, render, viewer
from bonelift.pipeline.frames import READ_AHEAD
from bonelift.pipeline.gaps import fill_gaps
from bonelift.pipeline.keypoint_io import is_keypoint_input, read_people
from bonelift.pipeline.lifters import (
    DEFAULT_WEIGHTS,
    Lifter,
    check_fusion,
    check_reframe,
    check_skeleton,
    choose_lifter,
    frame_like_training,
    fusion_inputs,
    lift_track,
)
from bonelift.pipeline.scene import scene_vertical
from bonelift.pipeline.track import DETECTED, INTERPOLATED, MISSING, Track2D
from bonelift.skeletons import H36M17, convert
from bonelift.world import estimate_world

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEMO_CLIP = PACKAGE_DIR / "assets" / "demo_walk.mp4"
OUTPUT_FILES = ("poses3d.npz", "poses3d.json", "poses3d.csv", "poses3d.bvh", "poses3d.trc", "poses3d.c3d",
                "poses3d.mot", "poses3d_angles.csv", "viewer.html", "overlay.mp4", "overlay.gif")
# each further person's BVH and biomechanics files (the main person's keep the names in OUTPUT_FILES)
PERSON_FILE = re.compile(r"poses3d_person(\d+)(\.bvh|\.trc|\.c3d|\.mot|_angles\.csv)")
DEFAULT_OUT = "bonelift_out"  # `lift`'s output folder when none is named (`bonelift lift -o`)


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
            f"frames: {self.frames}  detected: {self.detected}  interpolated: {self.interpolated}  "
            f"no person: {self.missing}",
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
        world = None if track.world is None else convert(track.world, track.layout, H36M17)[0]
    except DataError as exc:
        raise DataError(track.source, exc.problem) from None
    return Track2D(kp, conf, H36M17, track.width, track.height, track.fps, track.source, track.status, world)


def _two_d(
    src: Path, layout: str | None, image_size: tuple[int, int] | None, fps: float | None, max_side: int | None,
    max_frames: int | None, progress: bool, workers: int | None, max_people: int, camera: Camera | None = None,
) -> tuple[list[Track2D], object]:
    """The 2D tracks of `src`, one per person (videos: longest first; keypoint files: the file's order), and its
    frame source (None for keypoint files).

    `max_people` 1 runs the single-person MediaPipe tracker exactly as before multi-person support. A `camera`
    calibrated for another image size is refused before detection.
    """
    if is_keypoint_input(src):
        tracks = read_people(src, layout=layout, image_size=image_size, fps=fps)[:max_people]
        _check_size(camera, tracks[0].width, tracks[0].height, src)
        if max_frames is not None:
            tracks = [Track2D(t.keypoints[:max_frames], t.confidence[:max_frames], t.layout, t.width, t.height, t.fps,
                              t.source, t.status[:max_frames]) for t in tracks]
        return tracks, None
    from bonelift.pipeline.detect import detect, detect_people
    from bonelift.pipeline.frames import open_frames

    frame_source = open_frames(src, fps)
    _check_size(camera, frame_source.width, frame_source.height, src)
    if max_people == 1:
        track = detect(frame_source, max_side=max_side, max_frames=max_frames, progress=progress, workers=workers)[0]
        return [track], frame_source
    from bonelift.pipeline.associate import associate, gather
    from bonelift.skeletons import MEDIAPIPE33

    points, confs, world = detect_people(frame_source, max_people, max_side=max_side, max_frames=max_frames,
                                         progress=progress, workers=workers, world=True)
    rate = frame_source.fps
    # A person seen on fewer frames than half a second is a false detection, except in a clip that short (a photo)
    rows = associate(points, max_lost=max(1, round(rate)), min_frames=min(max(3, round(rate / 2)), len(points)))
    tracks = [Track2D(gather(points, r, np.nan), gather(confs, r, 0.0), MEDIAPIPE33, frame_source.width,
                      frame_source.height, rate, str(frame_source.path), world=gather(world, r, np.nan)) for r in rows]
    return tracks, frame_source


def _check_size(camera: Camera | None, width: int, height: int, src: Path) -> None:
    """Refuse intrinsics calibrated for another image size (their pixels would not be this input's)."""
    if camera is not None and camera.width and (camera.width, camera.height) != (width, height):
        raise DataError(camera.id, f"intrinsics are for {camera.width}x{camera.height} images, {src.name} is "
                                   f"{width}x{height}")


def _prepare_out_dir(out_dir: Path) -> Path:
    """Make a temporary folder `.OUT.PID.XXXXXXXX.tmp` beside `out_dir` (the resolved folder: same filesystem, so the
    final move is a rename); the owner's pid in its name lets a later run remove it if this one is killed."""
    if out_dir.exists():
        writable_dir(out_dir)
    # the outputs are written beside OUT and moved in when every stage succeeded: the parent must take them
    parent = writable_dir(out_dir.parent, "parent folder of the output folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{os.getpid()}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise DataError(out_dir, f"cannot write a temporary folder in {parent} ({exc.strerror or exc})") from exc
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the final folder should look like any other
    return tmp


def _remove_stale_temps(out_dir: Path) -> None:
    """Remove the temporary folders that killed runs into `out_dir` left (their owner pid is no longer running);
    called holding the lock, so no live run into this folder can be mid-commit."""
    stale = re.compile(rf"\.{re.escape(out_dir.name)}\.(\d+)\.\w+\.tmp")
    for path in out_dir.parent.iterdir():
        match = stale.fullmatch(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass  # alive under another user, or not a pid: not ours to remove


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out_dir` (file `.OUT.lock` beside it) so two runs cannot mix their outputs.

    The lock file is removed on release; a run that locked a file another run just removed retries
    on the new one, so removal never lets two runs in at once. It is opened with O_NOFOLLOW: a planted
    symbolic link is refused, never followed to create or truncate another file.
    """
    import fcntl

    lock = out_dir.parent / f".{out_dir.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DataError(out_dir, f"the lock file {lock} is a symbolic link; refusing to follow it "
                                         "(remove it if no bonelift run is writing there)") from None
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
            if (f.name in OUTPUT_FILES or PERSON_FILE.fullmatch(f.name)) and f.name not in written and f.is_file():
                f.unlink()
    persons = sorted((n for n in written if PERSON_FILE.fullmatch(n)), key=lambda n: int(PERSON_FILE.fullmatch(n)[1]))
    return [out_dir / name for name in OUTPUT_FILES if name in written] + [out_dir / n for n in persons]


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
    out_dir: str | Path = DEFAULT_OUT,
    config: LiftConfig | None = None,
    **overrides: Any,
) -> LiftSummary:
    """Lift `input` (video, image folder or 2D keypoint file; None = the bundled demo clip) to 3D in `out_dir`.

    `config` (default: `LiftConfig()`) holds every option; keyword `overrides` name its fields, e.g.
    `lift(video, out, model="my.pt", max_side=0)` (see `LiftConfig` for each option and its default).
    Everything is checked (`LiftConfig.validate`) before any slow work. The configuration is written into the
    outputs (`poses3d.json` / `poses3d.npz` `config`). World frame, biomechanics files and filters: `world`,
    `biomech`, `filter` (docs/pipeline.md). Returns a `LiftSummary`; raises DataError on bad input,
    OptionError on bad options.
    """
    from bonelift.runtime import resolve_device

    for name, value in (("input", input), ("out_dir", out_dir)):
        if not isinstance(value, str | Path) and not (name == "input" and value is None):
            raise OptionError(f"{name} must be a path (a text or a Path), got {value!r}")
    o = configure(LiftConfig, config, overrides)
    torch_device = resolve_device(o.device)
    src = Path(input) if input is not None else DEMO_CLIP
    out_dir = Path(out_dir).absolute()
    if not src.exists():
        raise DataError(src, "input not found")
    camera = read_intrinsics(o.intrinsics) if o.intrinsics is not None else None  # a bad file fails here, at once
    chosen = choose_lifter(o.model, o.lifter, o.causal, torch_device)
    plan = _Plan(check_reframe(chosen, o.reframe), check_skeleton(chosen, o.skeleton), o.max_side or None,
                 o.people(), check_fusion(chosen, o.fusion), camera)
    if o.pictures:
        try:
            import cv2  # noqa: F401
            import PIL  # noqa: F401
        except ImportError as exc:
            raise DataError(None, "pictures (MP4/GIF) need OpenCV and Pillow: pip install 'bonelift[video]', "
                                  "or pass pictures=False (--no-pictures)") from exc
    with _sigterm_exits():
        return _run(src, out_dir, chosen, o, plan)


@dataclass(frozen=True)
class _Plan:
    """What the checked options resolve to once the lifter is known (its defaults for reframe and skeleton)."""

    reframe: bool
    skeleton: bool
    max_side: int | None  # None: no downscaling
    max_people: int
    fusion: bool
    camera: Camera | None = None  # `--intrinsics`: the calibrated camera (None: focal and principal point assumed)


def _run(src: Path, out_dir: Path, lifter: Lifter, o: LiftConfig, plan: _Plan) -> LiftSummary:
    """The stages of `lift` on checked options, holding the output lock, writing into a temporary folder."""
    stage = _Stages()
    out_dir = out_dir.resolve()  # one lock and one temporary folder per real folder, however `-o` spells it
    tmp = _prepare_out_dir(out_dir)  # before the slow stages: an unwritable OUTDIR fails at once
    try:
        with _locked(out_dir):
            _remove_stale_temps(out_dir)
            return _stages(stage, tmp, src, out_dir, lifter, o, plan)
    except OSError as exc:
        raise DataError(out_dir, f"cannot write outputs ({exc.strerror or exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _stages(
    stage: _Stages, tmp: Path, src: Path, out_dir: Path, lifter: Lifter, o: LiftConfig, plan: _Plan
) -> LiftSummary:
    """2D, gaps, lifting, root trajectory, exports and pictures into `tmp`, then the commit into `out_dir`."""
    with stage("read 2D" if is_keypoint_input(src) else "detect 2D"):
        tracks, frame_source = _two_d(src, o.layout, o.image_size, o.fps, plan.max_side, o.max_frames, o.progress,
                                      o.workers, plan.max_people, plan.camera)
    if plan.camera is not None:  # every later stage assumes an ideal pinhole camera: undistort the 2D first
        tracks = [replace(t, keypoints=plan.camera.ideal_pixels(t.keypoints)) for t in tracks]
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
    info = {**lifter.info(), "skeleton": plan.skeleton and not plan.fusion, "fusion": plan.fusion}
    settings = json.loads(json.dumps(o.to_dict(), default=str))  # plain JSON types (paths as text)
    with stage("lift"):
        for k in ids:
            t = tracks[k]
            focal, principal = (o.focal, None) if plan.camera is None else (plan.camera.f[0], plan.camera.c)
            joints = lift_track(lifter, t, reframe=plan.reframe, skeleton=plan.skeleton, progress=o.progress,
                                fusion=plan.fusion, focal=focal, principal=principal)
            f, c = assumed_intrinsics(t.width, t.height, focal, principal)
            camera = {"focal": f, "principal_point": [float(c[0]), float(c[1])], "focal_assumed": focal is None}
            if plan.camera is not None:
                camera["intrinsics"] = str(o.intrinsics)  # the 2D in the outputs is undistorted, square pixels
            root = root_trajectory(joints, t.keypoints, t.confidence, f, c)
            # what the fit used, per person: a keypoint file has no detector 3D (the 2D-only path)
            used = {"fusion_inputs": "+".join(fusion_inputs(t))} if plan.fusion else {}
            joints = smooth(joints, t.fps, o.filter, o.filter_cutoff, o.filter_beta)
            root = smooth(root, t.fps, o.filter, o.filter_cutoff, o.filter_beta)
            people.append(export.Poses3D(joints, t.keypoints, t.confidence, t.status, t.fps, t.width, t.height,
                                         t.source, k, root, {**info, **used}, camera, settings))
    poses = next((p for p in people if p.person == main), people[0])
    ordered = [poses] + [p for p in people if p is not poses]  # the main person's stature sets the ankle height
    people_world = [(p.joints, p.trajectory) for p in ordered]
    frame = estimate_world(people_world, poses.fps, o.camera_height) if o.world else None
    if frame is not None and o.scene_vertical and frame_source is not None:
        with stage("scene vertical"):
            f, c = poses.camera["focal"], np.asarray(poses.camera["principal_point"])
            undistort = None if plan.camera is None else plan.camera.ideal_pixels
            vertical = scene_vertical(frame_source, f, c, frame.up, [p.keypoints_2d for p in people], undistort)
        if vertical is not None:
            frame = estimate_world(people_world, poses.fps, o.camera_height, scene_up=vertical.up)
    for p in people:
        p.world = frame
    with stage("export"):
        export_all(poses, people, tmp, o.biomech)
    if o.pictures:
        with stage("render"):
            frames = frame_source.frames(plan.max_side, ahead=READ_AHEAD) if frame_source is not None else None
            render.render_video(poses, frames, tmp / "overlay.mp4", tmp / "overlay.gif", progress=o.progress,
                                people=people)
    files = _commit(tmp, out_dir)
    status = poses.status
    counts = {p.person: int((p.status != MISSING).sum()) for p in people}
    return LiftSummary(out_dir, len(status), int((status == DETECTED).sum()), int((status == INTERPOLATED).sum()),
                       int((status == MISSING).sum()), stage.wall, stage.cpu, files,
                       plan.max_side if frame_source is not None else None, counts, _describe(lifter, plan, poses))


EXPORT_THREADS = 2  # writers run side by side: most of their time is in numpy kernels and file writes, which let go
# of the GIL (the 10-minute two-person bench: 1.5x the wall-clock speed of one thread on 2 cores)


def export_all(poses: export.Poses3D, people: list[export.Poses3D], out: Path, biomech: bool = True,
               threads: int = EXPORT_THREADS) -> dict[str, float]:
    """Every file of the export stage into `out`, `threads` writers at a time; returns the CPU seconds each kind
    took (`scripts/bench_exports.py`; each writer's own thread's CPU time, so neither the other writers nor a
    shared machine's load count).

    The main person `poses` gets `poses3d.*`; each further person its own BVH and biomechanics files,
    `poses3d_person<K>.bvh`, `.trc`, `.c3d`, `.mot` and `poses3d_person<K>_angles.csv` (one subject per file: OpenSim
    and C3D tools take one marker set per subject). Biomechanics files need the world frame (`poses.world`).
    """
    def timed(name: str, write: Any, *args: Any) -> Any:
        start = time.thread_time()
        result = write(*args)
        spent.append((name, time.thread_time() - start))  # list.append is atomic: threads may share it
        return result

    def biomechanics(p: export.Poses3D, stem: str) -> None:
        markers = p.joints_world
        timed("trc", biomech_files.write_trc, markers, p.fps, out / f"{stem}.trc")
        timed("c3d", biomech_files.write_c3d, markers, p.fps, out / f"{stem}.c3d")
        angles = timed("angles", joint_angles, markers)
        timed("mot", biomech_files.write_mot, angles, p.fps, out / f"{stem}.mot")
        timed("angles csv", biomech_files.write_angles_csv, angles, p.fps, out / f"{stem}_angles.csv")

    # the longest first (the JSON holds the main person twice), so the last to start are short
    tasks: list[tuple[Any, ...]] = [(timed, "json", export.write_json, poses, out / "poses3d.json", people)]
    for p in [poses] + [p for p in people if p is not poses]:
        stem = "poses3d" if p is poses else f"poses3d_person{p.person}"
        tasks.append((timed, "bvh", bvh.write_bvh, p.joints, p.fps, out / f"{stem}.bvh", p.trajectory, p.world))
        if biomech and p.world is not None:
            tasks.append((biomechanics, p, stem))
    tasks += [(timed, "csv", export.write_csv, poses, out / "poses3d.csv", people),
              (timed, "viewer", viewer.write_html, poses, out / "viewer.html", "", people),
              (timed, "npz", export.write_npz, poses, out / "poses3d.npz", people)]
    spent: list[tuple[str, float]] = []
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="export") as pool:
        for done in [pool.submit(*task) for task in tasks]:
            done.result()  # a writer's error, raised here (the other files are in the temporary folder only)
    seconds: dict[str, float] = {}
    for name, sec in spent:
        seconds[name] = seconds.get(name, 0.0) + sec
    return seconds


def _describe(lifter: Lifter, plan: _Plan, poses: export.Poses3D) -> str:
    """The lifter line of the summary: the network, and what the fusion fit used (2D-only when no detector 3D)."""
    if not plan.fusion:
        return str(lifter)
    used = (poses.lifter or {}).get("fusion_inputs", "lifter")
    return f"{lifter} + fusion ({'lifter and detector 3D' if 'detector-3d' in used else '2D-only path: lifter only'})"


__all__ = ["DEFAULT_OUT", "DEFAULT_WEIGHTS", "DEMO_CLIP", "OUTPUT_FILES", "LiftSummary", "export_all",
           "frame_like_training", "lift", "lift_track"]
