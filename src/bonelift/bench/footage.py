"""Real-footage half of `bench wild` (issue 17): monocular 3D on the Pose2Sim 4-view clip, no ground truth.

Every view is lifted on its own; rotated into the world frame with its camera's rotation, the views'
root-relative 3D should agree up to scale (N-MPJPE between views) or a similarity (P-MPJPE between
views). A reference triangulated from all views' 2D gives a second, per-view score. MediaPipe runs
once per view; its 2D, visibility and own 3D world landmarks are cached as plain arrays.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bonelift.cameras import Camera, reprojection_errors, root_trajectory, triangulate
from bonelift.config import LiftConfig
from bonelift.datasets import default_data_root
from bonelift.errors import DataError, OptionError, check_array
from bonelift.geometry import bone_lengths
from bonelift.io import read_npz_arrays
from bonelift.metrics import bone_length_std, mpjve, n_mpjpe, p_mpjpe, symmetry_error
from bonelift.pipeline.associate import associate, gather
from bonelift.pipeline.lifters import LiftFn
from bonelift.skeletons import H36M17, MEDIAPIPE33, MM, convert

FOOTAGE_DIR = default_data_root().parent / "media" / "pose2sim_multiperson"  # ../shared/media beside the data
VIEWS = ("cam01", "cam02", "cam03", "cam04")
CACHE_DIR = Path("runs/wild_cache")
MAX_PEOPLE = 4
MAX_SIDE = LiftConfig.max_side  # what `bonelift lift` detects at


def detect_views(footage: str | Path = FOOTAGE_DIR, cache_dir: str | Path = CACHE_DIR, views: tuple[str, ...] = VIEWS,
                 progress: bool = False) -> dict[str, Path]:
    """Run MediaPipe (every person, one worker) on each view not cached yet; returns view -> cache file.

    A cache file holds plain arrays only: points (T, K, 33, 2) pixels, conf (T, K, 33), world
    (T, K, 33, 3) MediaPipe world landmarks (metres), slots unassociated (NaN: empty); plus width,
    height, fps, the seconds detection took and the detection settings (max_side, max_people): a
    file written under other settings is detected again.
    """
    from bonelift.pipeline.detect import detect_people
    from bonelift.pipeline.frames import open_frames

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for view in views:
        path = cache / f"{view}.npz"
        if not path.is_file() or _settings(path) != (MAX_SIDE, MAX_PEOPLE):
            source = open_frames(Path(footage) / f"{view}.mp4")
            start = time.perf_counter()
            points, conf, world = detect_people(source, MAX_PEOPLE, max_side=MAX_SIDE, progress=progress, workers=1,
                                                world=True)
            seconds = time.perf_counter() - start
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, points=points, conf=conf, world=world, width=source.width, height=source.height,
                     fps=source.fps, seconds=seconds, max_side=MAX_SIDE, max_people=MAX_PEOPLE)
            tmp.replace(path)
        out[view] = path
    return out


def _settings(path: Path) -> tuple[int, int] | None:
    """(max_side, max_people) a cache file was detected with; None when unreadable or not recorded."""
    try:
        d = read_npz_arrays(path, keys=("max_side", "max_people"))
        return int(d["max_side"]), int(d["max_people"])
    except (DataError, KeyError, ValueError, TypeError):
        return None


# --- one person's 2D in every view -------------------------------------------------------------------------------

GATE_PX = 40.0  # a view's pose this far (median joint, pixels) from the person's triangulation is someone else
REJECT_PX = 50.0  # a joint of one view this far from the first triangulation's projection is left out of the second
MIN_COVER = 0.9  # a view is triangulated and scored when it holds (agrees on) at least this share of the frames
MIN_AGREE = 30  # a track joins a person when it agrees with the other views on at least this many frames
SWAP_PENALTY_PX = 1e-3  # breaks the tie between a choice of left/right swaps and its mirror image: fewer swaps win


@dataclass
class ViewTrack:
    """One person's MediaPipe output in one view: 2D (T, 33, 2) px (NaN: not found), visibility, world (T, 33, 3)."""

    view: str
    keypoints: np.ndarray
    confidence: np.ndarray
    world: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.keypoints).all((1, 2)) & np.isfinite(self.world).all((1, 2))

    def swapped(self, frames: np.ndarray) -> ViewTrack:
        """This track with left and right landmarks exchanged on `frames` (T,) bool."""
        flip = MEDIAPIPE33.flip_permutation
        out = [a.copy() for a in (self.keypoints, self.confidence, self.world)]
        for a in out:
            a[frames] = a[frames][:, flip]
        return ViewTrack(self.view, *out)


@dataclass
class Geometry:
    """What the views' tracks of one person say together: world joints, and per view and frame the
    left/right swaps MediaPipe made, the pixel error and whether the view agrees with the triangulation."""

    points: np.ndarray  # (T, 33, 3) world metres, from the agreeing views (swaps undone)
    swapped: np.ndarray  # (V, T) bool: MediaPipe's left and right are exchanged in that view
    error: np.ndarray  # (V, T) median joint reprojection error, pixels (NaN: not found)
    agree: np.ndarray  # (V, T) bool: error <= GATE_PX


@dataclass
class Footage:
    """The cached detections of every view, their cameras, and each person's track per view."""

    cameras: dict[str, Camera]
    tracks: dict[str, list[ViewTrack]]  # view -> its people, longest track first
    width: int
    height: int
    fps: float
    detect_seconds: dict[str, float]
    people: dict[str, dict[str, int]] = field(default_factory=dict)  # person -> {view: index into tracks[view]}
    _geometry: dict[tuple, Geometry] = field(default_factory=dict, repr=False)  # each model scored reuses it
    _segments: dict[Path, tuple] = field(default_factory=dict, repr=False)  # a view's scene lines, for every model

    def scene_segments(self, video: Path, view: str) -> tuple:
        """`pipeline.scene.scene_segments` of one view's video, everybody in it masked out; read once per view."""
        from bonelift.pipeline.frames import open_frames
        from bonelift.pipeline.scene import scene_segments

        if video not in self._segments:
            self._segments[video] = scene_segments(open_frames(video), [t.keypoints for t in self.tracks[view]])
        return self._segments[video]

    def person(self, name: str) -> dict[str, ViewTrack]:
        if name not in self.people:
            raise OptionError(f"person must be one of {sorted(self.people)}, got {name!r}")
        return {v: self.tracks[v][k] for v, k in self.people[name].items()}

    def covering(self, name: str) -> list[str]:
        """The views whose track holds `name` on at least `MIN_COVER` of the frames.

        A partial track is left out of the reference too: the woman's in cam03 (lost from the frame
        where the man passes in front of her) sits 35-40 px off the other views' triangulation, moves
        it by about 50 mm, and made cam01 disagree by 80 px on a third of the frames.
        """
        return [v for v, t in self.person(name).items() if t.found.mean() >= MIN_COVER]

    def geometry(self, name: str) -> Geometry:
        """`person_geometry` of `name` from the views that cover the person (`covering`)."""
        tracks = self.person(name)
        views = self.covering(name)
        key = (name, *(id(tracks[v]) for v in views))  # a replaced track is triangulated anew
        if key not in self._geometry:
            self._geometry[key] = person_geometry([self.cameras[v] for v in views], [tracks[v] for v in views])
        return self._geometry[key]


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    keys = ("points", "conf", "world", "width", "height", "fps", "seconds")
    try:
        d = read_npz_arrays(path, keys=keys)
        out = {k: d[k] for k in keys}
    except (DataError, KeyError) as exc:
        raise DataError(path, f"not a wild-footage detection cache ({exc}); delete it to detect again") from None
    t, k = out["points"].shape[:2]
    check_array(out["points"], path, "points", (t, k, 33, 2), allow_nan=True)
    check_array(out["conf"], path, "conf", (t, k, 33))
    check_array(out["world"], path, "world", (t, k, 33, 3), allow_nan=True)
    return out


def view_tracks(view: str, points: np.ndarray, conf: np.ndarray, world: np.ndarray, fps: float) -> list[ViewTrack]:
    """The people of one view, linked over frames as `bonelift lift` links them (`associate`)."""
    rows = associate(points, max_lost=max(1, round(fps)), min_frames=max(3, round(fps / 2)))
    return [ViewTrack(view, gather(points, r, np.nan), gather(conf, r, 0.0), gather(world, r, np.nan)) for r in rows]


def _frame_errors(cameras: list[Camera], pixels: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(V, T) median reprojection error over each view's weighted joints (NaN: the view has none)."""
    err = np.where(weights > 0, reprojection_errors(cameras, points, pixels), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: the view misses the person
        return np.nanmedian(err, axis=-1)


def _swaps(cameras: list[Camera], pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(V, T) bool: per frame, the views whose left/right labels to exchange so that all views fit best.

    MediaPipe exchanges left and right now and then (a side view of a lunge, say); every choice of
    exchanged views is triangulated and the one with the lowest summed median error kept (of a
    choice and its mirror image, which fit alike, the one exchanging fewer views).
    """
    flip = MEDIAPIPE33.flip_permutation
    best = np.full(pixels.shape[1], np.inf)
    out = np.zeros(pixels.shape[:2], bool)
    for choice in itertools.product((False, True), repeat=len(cameras)):
        pix = np.stack([p[:, flip] if s else p for p, s in zip(pixels, choice)])
        wts = np.stack([w[:, flip] if s else w for w, s in zip(weights, choice)])
        err = _frame_errors(cameras, pix, wts, triangulate(cameras, pix, wts))
        total = np.nansum(err, axis=0) + SWAP_PENALTY_PX * sum(choice)
        total[~np.isfinite(err).any(0)] = np.inf
        better = total < best
        best[better] = total[better]
        out[:, better] = np.array(choice)[:, None]
    return out


def person_geometry(cameras: list[Camera], tracks: list[ViewTrack]) -> Geometry:
    """Triangulate one person from its tracks in several views (weighted by visibility), robustly.

    Left/right swaps are undone per view and frame (`_swaps`); a joint landing more than `REJECT_PX`
    from the first triangulation's projection is dropped; a view whose median joint error on a frame
    exceeds `GATE_PX` (MediaPipe mixing in someone else's limbs, say) is left out of that frame's
    final triangulation (a joint is kept as first triangulated where fewer than two views remain).
    """
    pixels = np.stack([t.keypoints for t in tracks])
    weights = np.stack([t.confidence for t in tracks])
    swapped = _swaps(cameras, pixels, weights)
    tracks = [t.swapped(s) for t, s in zip(tracks, swapped)]
    pixels = np.stack([t.keypoints for t in tracks])
    weights = np.stack([t.confidence for t in tracks])
    first = triangulate(cameras, pixels, weights)
    err = reprojection_errors(cameras, first, pixels)
    kept = np.where(np.nan_to_num(err, nan=np.inf) <= REJECT_PX, weights, 0.0)
    second = triangulate(cameras, pixels, kept)
    second = np.where(np.isfinite(second), second, first)
    error = _frame_errors(cameras, pixels, weights, second)
    agree = np.nan_to_num(error, nan=np.inf) <= GATE_PX
    points = triangulate(cameras, pixels, np.where(agree[..., None], kept, 0.0))
    points = np.where(np.isfinite(points), points, second)
    return Geometry(points, swapped, _frame_errors(cameras, pixels, weights, points), agree)


def _compatible(footage: Footage, a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Two views' tracks can show one person: their two-view triangulation fits on `MIN_AGREE` common frames."""
    geo = person_geometry([footage.cameras[a[0]], footage.cameras[b[0]]], [footage.tracks[v][k] for v, k in (a, b)])
    return int(geo.agree.all(0).sum()) >= MIN_AGREE


def follow_people(footage: Footage, count: int = 2) -> list[dict[str, int]]:
    """Up to `count` people, each as {view: track index}: tracks of several views that triangulate consistently.

    Pairs of tracks in two views are tested first (`_compatible`); every choice of one track (or
    none) per view whose pairs all fit is triangulated (`person_geometry`), and each chosen track must
    agree with it on `MIN_AGREE` frames. The choice with the most views wins (then the most agreeing
    frames); its tracks are set aside and the next person is chosen among the rest.
    """
    views = list(footage.tracks)
    nodes = [(v, k) for v in views for k in range(len(footage.tracks[v]))]
    fits = {(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :] if a[0] != b[0] and _compatible(footage, a, b)}
    used: set[tuple[str, int]] = set()
    people = []
    for _ in range(count):
        best, best_key = None, None
        options = [[None] + [k for k in range(len(footage.tracks[v])) if (v, k) not in used] for v in views]
        for choice in itertools.product(*options):
            chosen = [(v, k) for v, k in zip(views, choice) if k is not None]
            if len(chosen) < 2 or any((a, b) not in fits for i, a in enumerate(chosen) for b in chosen[i + 1 :]):
                continue
            geo = person_geometry([footage.cameras[v] for v, _ in chosen], [footage.tracks[v][k] for v, k in chosen])
            counts = geo.agree.sum(1)
            if (counts < MIN_AGREE).any():
                continue
            key = (len(chosen), int(counts.sum()))
            if best_key is None or key > best_key:
                best, best_key = dict(chosen), key
        if best is None:
            break
        people.append(best)
        used |= set(best.items())
    return people


def name_people(footage: Footage, people: list[dict[str, int]]) -> dict[str, dict[str, int]]:
    """Names for the people `follow_people` found: of two, the man stands on the treadmill, so his triangulated
    ankles are the higher ones; the other is the woman. Other counts are named person0, person1, ..."""
    if len(people) != 2:
        return {f"person{i}": p for i, p in enumerate(people)}
    feet = MEDIAPIPE33.indices(["LFoot", "RFoot"])
    height = []
    for p in people:
        geo = person_geometry([footage.cameras[v] for v in p], [footage.tracks[v][k] for v, k in p.items()])
        height.append(float(np.nanmedian(geo.points[:, feet, 2])))
    man = int(np.argmax(height))
    return {"woman": people[1 - man], "man": people[man]}


def load_footage(cache_dir: str | Path = CACHE_DIR, footage: str | Path = FOOTAGE_DIR,
                 progress: bool = False) -> Footage:
    """The footage's cameras and cached detections (running MediaPipe on views not cached yet), people followed."""
    from bonelift.datasets.pose2sim import read_qualisys_calibration

    footage = Path(footage)
    cameras = read_qualisys_calibration(footage / "Calib.qca.txt")
    files = detect_views(footage, cache_dir, tuple(cameras), progress)
    tracks, seconds, sizes = {}, {}, set()
    for view, path in files.items():
        d = _read_cache(path)
        tracks[view] = view_tracks(view, d["points"], d["conf"], d["world"], float(d["fps"]))
        seconds[view] = float(d["seconds"])
        sizes.add((int(d["width"]), int(d["height"]), float(d["fps"])))
    if len(sizes) != 1:
        raise DataError(footage, f"the views differ in frame size or rate: {sorted(sizes)}")
    width, height, fps = sizes.pop()
    out = Footage(cameras, tracks, width, height, fps, seconds)
    out.people = name_people(out, follow_people(out))
    return out


# --- scores --------------------------------------------------------------------------------------------------------

MEDIAPIPE_WORLD = "mediapipe-world"  # in place of a lift function: score MediaPipe's own world landmarks
# MediaPipe's world landmarks use the image's axes (x right, y down, z away from the camera): OpenCV's camera frame.
# Checked on the footage (woman, 3 views): as they are, the views agree to 106 mm N-MPJPE; with any axis flipped,
# 325-381 mm.
MEDIAPIPE_TO_CAMERA = np.eye(3)


# Limbs-only scores align and measure the 12 joints of the arms and legs (shoulders to wrists, hips to feet), so
# that the hip, spine, neck and head, whose definitions differ between MediaPipe, Human3.6M and the reference's
# conversion, play no part.
LIMB_JOINTS = sorted({j for _, a, b in H36M17.limbs for j in (a, b)})


def _root_relative(pose: np.ndarray) -> np.ndarray:
    return pose - pose[..., H36M17.root : H36M17.root + 1, :]


def _h36m(points33: np.ndarray, conf33: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    return convert(points33, MEDIAPIPE33, H36M17, conf33)


def _pairs_mean(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], poses: list[np.ndarray]) -> float:
    """Mean of fn over frames and over ordered pairs of views (both directions: N- and P-MPJPE fit one side's scale)."""
    vals = [fn(a, b).mean() for i, a in enumerate(poses) for j, b in enumerate(poses) if i != j]
    return float(np.mean(vals))


def _asymmetry(seq: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Mean over frames and mirrored bone pairs of |left length - right length|."""
    lengths = bone_lengths(seq, H36M17)
    return float(np.mean([np.abs(lengths[:, a] - lengths[:, b]).mean() for a, b in pairs]))


def _mm(x: float) -> float:
    return round(MM * float(x), 2)


def score_footage(lift_fn: LiftFn | str, cache: Footage | str | Path = CACHE_DIR, person: str = "woman",
                  fix_swaps: bool = True) -> dict:
    """Scores of one lifter on one person of the footage, without ground truth (millimetres).

    lift_fn(keypoints_px (T, 17, 2) H36M17, confidence (T, 17), width, height, fps) -> (T, 17, 3)
    root-relative metres in the view's camera frame (NaN rows: no pose), or `MEDIAPIPE_WORLD`.
    frames_tracked: per view, the frames where the person's track (`follow_people`) holds them; the
    views tracking them on `MIN_COVER` of the frames (`Footage.covering`) are triangulated
    (`person_geometry`); frames_found: per such view, the frames where it agrees with that
    triangulation; frames_swapped: where MediaPipe had left and right exchanged. `fix_swaps`
    exchanges them back before lifting (MediaPipe's world landmarks alike); otherwise swapped frames
    are not scored. Views that agree on `MIN_COVER` of the frames are scored, on the frames where all
    of them do. Each view's 3D is rotated into the world frame (R.T @ p) and root-centred:
    - n_mpjpe_views_mm / p_mpjpe_views_mm: N-MPJPE (scale fit) / P-MPJPE (similarity) between every
      ordered pair of views, averaged over pairs and frames;
    - mpjve_views_mm: velocity disagreement between views: mean per-joint norm of the difference of two
      views' velocities (first differences, mm per frame at the footage's rate), over pairs and frames;
    - n_mpjpe_ref_mm / p_mpjpe_ref_mm / mpjve_ref_mm: the same against that triangulation;
    - bone_std_all_mm: std over time of each bone's length, mean over all 16 bones; bone_std_mm: the
      same over the eight limbs (`metrics.bone_length_std`, as in the other suites);
    - asymmetry_all_mm: mean |left - right| length over all six mirrored bone pairs (hips, shoulders and
      limbs); symmetry_mm: over the four limb pairs (`metrics.symmetry_error`, as elsewhere);
    the per-view ones averaged over views; `*_per_view_mm` entries give each view's value;
    - p_mpjpe_ref_own_mm / n_mpjpe_ref_own_mm (frames_own): every view that tracks the person, scored on its own
      agreeing frames (so a view that agrees on too few frames for the common set, cam03 for the man, is scored
      too). The issue-17 figures match bone_std_all_mm, asymmetry_all_mm and mpjve_views_mm.
    """
    footage = cache if isinstance(cache, Footage) else load_footage(cache)
    everywhere = footage.person(person)
    given = {v: everywhere[v] for v in footage.covering(person)}
    if len(given) < 2:
        counts = {v: int(t.found.sum()) for v, t in everywhere.items()}
        raise DataError(None, f"{person} is tracked on {counts} frames per view: fewer than two views to compare")
    geo = footage.geometry(person)
    tracks = {v: t.swapped(s) if fix_swaps else t for (v, t), s in zip(given.items(), geo.swapped)}
    agree = {v: a if fix_swaps else a & ~s for v, a, s in zip(given, geo.agree, geo.swapped)}
    found = {v: int(a.sum()) for v, a in agree.items()}
    views = [v for v, a in agree.items() if a.mean() >= MIN_COVER]
    if len(views) < 2:
        raise DataError(None, f"{person} is followed on {found} frames per view: fewer than two views to compare")
    ref = _root_relative(_h36m(geo.points)[0])
    poses = {}
    for v in given:  # every view that tracks the person; `views` are the ones scored on common frames
        t, cam = tracks[v], footage.cameras[v]
        if isinstance(lift_fn, str):
            if lift_fn != MEDIAPIPE_WORLD:
                raise OptionError(f"lift_fn must be a function or {MEDIAPIPE_WORLD!r}, got {lift_fn!r}")
            pose = _root_relative(_h36m(t.world)[0]) @ MEDIAPIPE_TO_CAMERA.T
        else:
            kp, conf = _h36m(t.keypoints, t.confidence)
            extra = (
                {"world": _h36m(t.world)[0] @ MEDIAPIPE_TO_CAMERA.T} if getattr(lift_fn, "takes_world", False) else {}
            )
            pose = np.asarray(lift_fn(kp, conf, footage.width, footage.height, footage.fps, **extra), np.float64)
            if pose.shape != kp.shape[:2] + (3,):
                raise DataError(None, f"lift_fn returned shape {pose.shape} for {v}, expected {kp.shape[:2] + (3,)}")
        poses[v] = _root_relative(pose) @ cam.R  # rows: R.T @ p, camera frame -> world axes
    own = {}  # each tracking view on its own agreeing frames (a view under MIN_COVER too: cam03 for the man)
    for v in given:
        mine = np.isfinite(ref).all((1, 2)) & agree[v] & np.isfinite(poses[v]).all((1, 2))
        if mine.sum() >= 3:
            own[v] = (
                int(mine.sum()),
                p_mpjpe(poses[v][mine], ref[mine]).mean(),
                n_mpjpe(poses[v][mine], ref[mine]).mean(),
            )
    frames = np.isfinite(ref).all((1, 2))
    for v in views:
        frames &= agree[v] & np.isfinite(poses[v]).all((1, 2))
    if frames.sum() < 3:
        raise DataError(None, f"{person}: fewer than 3 frames with a pose in all of {views}")
    seqs = [poses[v][frames] for v in views]
    ref = ref[frames]
    row: dict = {"person": person, "views": views, "frames": int(frames.sum()), "frames_found": found,
                 "frames_swapped": {v: int(s.sum()) for v, s in zip(given, geo.swapped)},
                 "frames_tracked": {v: int(t.found.sum()) for v, t in everywhere.items()}, "fix_swaps": fix_swaps}
    row["n_mpjpe_views_mm"] = _mm(_pairs_mean(n_mpjpe, seqs))
    row["p_mpjpe_views_mm"] = _mm(_pairs_mean(p_mpjpe, seqs))
    row["mpjve_views_mm"] = _mm(_pairs_mean(mpjve, seqs))
    pairs = H36M17.mirrored_bones
    limbs = LIMB_JOINTS
    per_view = {
        "n_mpjpe_ref_mm": [n_mpjpe(s, ref).mean() for s in seqs],
        "p_mpjpe_ref_mm": [p_mpjpe(s, ref).mean() for s in seqs],
        "p_mpjpe_limbs_ref_mm": [p_mpjpe(s[:, limbs], ref[:, limbs]).mean() for s in seqs],
        "mpjve_ref_mm": [mpjve(s, ref).mean() for s in seqs],
        "bone_std_all_mm": [bone_lengths(s, H36M17).std(0).mean() for s in seqs],
        "bone_std_mm": [bone_length_std([s], H36M17)["average"] for s in seqs],
        "asymmetry_all_mm": [_asymmetry(s, pairs) for s in seqs],
        "symmetry_mm": [symmetry_error(s, H36M17)["average"] for s in seqs],
    }
    for name, vals in per_view.items():
        row[name] = _mm(np.mean(vals))
    for name, vals in per_view.items():
        row[name.replace("_mm", "_per_view_mm")] = {v: _mm(x) for v, x in zip(views, vals)}
    row["frames_own"] = {v: o[0] for v, o in own.items()}
    row["p_mpjpe_ref_own_mm"] = {v: _mm(o[1]) for v, o in own.items()}
    row["n_mpjpe_ref_own_mm"] = {v: _mm(o[2]) for v, o in own.items()}
    return row


def footage_rows(lifters: dict[str, LiftFn | str], cache_dir: str | Path = CACHE_DIR,
                 persons: tuple[str, ...] = ("woman", "man"), mediapipe_world: bool = True, seed: int = 0,
                 footage: str | Path = FOOTAGE_DIR) -> list[dict]:
    """Results rows (the suites' schema) of every lifter, and of MediaPipe's world landmarks, on each person.

    All lifters read MediaPipe's 2D (input "mediapipe"); `person` is also the row's "variant" so a
    suite file keeps one row per model and person. A person not followed in two views is skipped.
    """
    data = load_footage(cache_dir, footage)
    models = dict(lifters)
    if mediapipe_world:
        models.setdefault(MEDIAPIPE_WORLD, MEDIAPIPE_WORLD)
    rows = []
    for person in persons:
        if person not in data.people:
            continue
        for name, fn in models.items():
            scores = score_footage(fn, data, person)
            rows.append({"model": name, "variant": person, "input": "mediapipe", "seed": seed, **scores})
    return rows


# --- the world frame (issue 24) ------------------------------------------------------------------------------------


def _yaw_aligned_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean joint distance (metres) between root-relative world-frame clips a, b (T, J, 3) after the one rotation
    about the vertical (y) that fits a to b best over the whole clip (closed form on the x-z components)."""
    ax, az, bx, bz = a[..., 0], a[..., 2], b[..., 0], b[..., 2]
    theta = np.arctan2((az * bx - ax * bz).sum(), (ax * bx + az * bz).sum())
    c, s = np.cos(theta), np.sin(theta)
    turned = np.stack([c * ax + s * az, a[..., 1], -s * ax + c * az], -1)
    return float(np.linalg.norm(turned - b, axis=-1).mean())


def world_rows(lift_fn: LiftFn, cache: Footage | str | Path = CACHE_DIR, person: str = "man",
               videos: str | Path | None = None) -> dict:
    """How well `bonelift.world` finds the floor from one view's lift of `person` (every view that tracks them):

    - up_error_deg: angle between the estimated up direction and the calibrated one (the world's z axis seen from
      the camera), per view and the worst;
    - feet_floor_cm: per view, the median |height above the estimated floor - ankle height| of the planted ankles
      (the contact frames the estimate finds), in cm;
    - yaw_only_mm: the views' world-frame poses compared pairwise after a rotation about the vertical only
      (mean over pairs and frames where both have a pose), against `any_rotation_mm`, the same after the best
      rotation of any kind (per clip): near-equal values mean the views share their vertical.

    With `videos` (the folder of `<view>.mp4`), the scene's vertical lines set the up direction where they are
    found (`pipeline.scene`), as `bonelift lift` does; without, the body cues alone.
    """
    from bonelift.cameras import assumed_intrinsics
    from bonelift.pipeline.scene import vertical_from_segments
    from bonelift.world import _contacts, estimate_world

    footage = cache if isinstance(cache, Footage) else load_footage(cache)
    tracks = {v: t for v, t in footage.person(person).items() if t.found.mean() >= MIN_COVER}
    up_err, feet, posed = {}, {}, {}
    for v, t in tracks.items():
        kp, conf = _h36m(t.keypoints, t.confidence)
        extra = {"world": _h36m(t.world)[0] @ MEDIAPIPE_TO_CAMERA.T} if getattr(lift_fn, "takes_world", False) else {}
        joints = np.asarray(lift_fn(kp, conf, footage.width, footage.height, footage.fps, **extra), np.float64)
        f, c = assumed_intrinsics(footage.width, footage.height)
        traj = root_trajectory(joints, kp, conf, f, c)
        frame = estimate_world([(joints, traj)], footage.fps)
        if frame is None:
            continue
        if videos is not None:  # the scene's vertical lines, everybody in the view masked out
            lines, frames = footage.scene_segments(Path(videos) / f"{v}.mp4", v)
            vertical = vertical_from_segments(lines, f, c, frame.up, footage.height, frames) if frames else None
            if vertical is not None:
                frame = estimate_world([(joints, traj)], footage.fps, scene_up=vertical.up)
        cam = footage.cameras[v]
        true_up = cam.R @ np.array([0.0, 0.0, 1.0])
        up = frame.world_from_camera[1]
        up_err[v] = float(np.degrees(np.arccos(np.clip(up @ true_up, -1.0, 1.0))))
        absolute = joints + traj[:, None]
        world = frame.to_world(absolute)
        feet_cam = absolute[:, [H36M17.index("LFoot"), H36M17.index("RFoot")]]
        planted = _contacts(feet_cam, footage.fps, up)
        heights = planted @ up - frame.floor_height
        feet[v] = round(100 * float(np.median(np.abs(heights - frame.ankle_height))), 1) if len(heights) else None
        posed[v] = world - world[:, H36M17.root : H36M17.root + 1]
    pairs = [(a, b) for a in posed for b in posed if a < b]
    yaw, anyrot = [], []
    for a, b in pairs:
        both = np.isfinite(posed[a]).all((1, 2)) & np.isfinite(posed[b]).all((1, 2))
        if both.sum() < 3:
            continue
        yaw.append(_yaw_aligned_error(posed[a][both], posed[b][both]))
        anyrot.append(_best_rotation_error(posed[a][both], posed[b][both]))
    return {
        "person": person,
        "views": sorted(up_err),
        "up_error_deg": {v: round(x, 2) for v, x in up_err.items()},
        "up_error_worst_deg": round(max(up_err.values()), 2) if up_err else None,
        "feet_floor_cm": feet,
        "yaw_only_mm": _mm(np.mean(yaw)) if yaw else None,
        "any_rotation_mm": _mm(np.mean(anyrot)) if anyrot else None,
    }


def _best_rotation_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean joint distance after the one best rotation of a onto b over the whole clip (Kabsch, no scale)."""
    pa, pb = a.reshape(-1, 3), b.reshape(-1, 3)
    u, _, vt = np.linalg.svd(pa.T @ pb)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.linalg.norm(pa @ rot - pb, axis=-1).mean())
