"""The scene's vertical from a clip's frames: the vanishing point of its vertical lines (door frames, walls,
windows, poles), a cue for the camera's pitch and roll that does not depend on how the person stands.

A lifted person gives the up direction only through the pose (the body's axis in standing frames, planted feet),
and a person who leans, lunges or walks on a treadmill tilts that estimate by 10 degrees or more. Man-made
scenes are full of vertical edges; under a pinhole camera every vertical 3D line lies in a plane through the
camera centre that contains the up direction, so the up direction is the common direction of the segments'
interpretation planes (the vertical vanishing point, Hartley & Zisserman, "Multiple View Geometry", 8.6):

1. line segments (OpenCV's LSD) in a few frames of the clip's first seconds, outside the people's boxes;
2. candidates: segments that point, within `CANDIDATE_DEG`, at the vanishing point the body's estimate predicts
   (the prior only selects segments; it does not enter the result);
3. RANSAC over pairs of candidates, each pair's planes meeting in one direction; a segment supports it when it
   points at that vanishing point within `INLIER_DEG`; support is summed segment length;
4. the direction refined as the length-weighted least-squares null vector of the supporting planes.

It is accepted only with enough support (`MIN_SEGMENTS` segments, `MIN_SUPPORT` image heights of summed length):
a football pitch or a plain wall gives no vertical and the body's estimate stays. Pixels are assumed
undistorted; with an assumed focal length a vanishing point far from the image centre gives a pitch off by
roughly the focal length's relative error times sin(2 pitch) / 2 (about 2 degrees at 30 degrees pitch and 9 %
focal error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bonelift.pipeline.frames import FrameSource, _cv2

SAMPLE_FRAMES = 8  # frames searched for lines
SAMPLE_SECONDS = 10.0  # ... spread over the clip's first seconds (decoding a long clip to its end costs minutes)
MIN_LENGTH = 0.04  # shortest segment used, as a fraction of the image diagonal
CANDIDATE_DEG = 20.0  # a segment may point this far off the prior's vanishing point and still be tried
PRIOR_DEG = 25.0  # a vanishing direction further than this from the prior is another family of lines
INLIER_DEG = 0.5  # a segment supports a vanishing point when it points at it within this angle
MIN_SEGMENTS = 8  # support needed: segments (summed over the sampled frames) ...
MIN_SUPPORT = 1.0  # ... and their summed length in image heights
RANSAC_PAIRS = 2000
MAX_FAMILIES = 4  # other line families (floor and wall edges) looked for ...
FAMILY_DEG = 60.0  # ... among directions at least this far from the prior (a horizontal one is 90 degrees away)
AMBIGUOUS_DEG = 0.75  # a segment pointing this close to another family's vanishing point is left out
ORTHO_DEG = 6.0  # a family this close to perpendicular to a candidate vertical supports it (an assumed focal
# length bends the angles between vanishing directions by a few degrees)
CHUNK = 256  # candidate directions scored at a time
REFIT_LOSS = 0.1
BORDER = 0.01  # segments within this fraction of the width of an image edge are the frame's border, not the scene
BOX_MARGIN = 0.05  # people's keypoint boxes grown by this fraction of their size before masking


@dataclass(frozen=True)
class SceneVertical:
    """The up direction (3,) in camera coordinates (x right, y down, z forward) and the evidence behind it."""

    up: np.ndarray
    segments: int  # supporting segments, summed over the sampled frames
    support: float  # their summed length in image heights
    frames: int


def _segment_planes(lines: np.ndarray, focal: float, principal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) unit normals of the planes through the camera centre and each segment, and (N, 3) homogeneous
    midpoints, from (N, 4) pixel segments x1, y1, x2, y2."""
    p1 = np.concatenate([(lines[:, :2] - principal) / focal, np.ones((len(lines), 1))], 1)
    p2 = np.concatenate([(lines[:, 2:] - principal) / focal, np.ones((len(lines), 1))], 1)
    normals = np.cross(p1, p2)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True), (p1 + p2) / 2


def _pointing_error(normals: np.ndarray, mids: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(N,) angle (radians) between each segment and the image line from its midpoint to the vanishing point of
    `direction`: the segment's plane and the plane through its midpoint and the direction, compared."""
    to_vp = np.cross(mids, direction)
    to_vp /= np.maximum(np.linalg.norm(to_vp, axis=1, keepdims=True), 1e-12)
    return np.arccos(np.clip(np.abs((normals * to_vp).sum(1)), 0.0, 1.0))


def _supports(normals: np.ndarray, mids: np.ndarray, length: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(C,) summed length of the segments pointing at each candidate direction within `INLIER_DEG`
    (`_pointing_error` for many directions at once, `CHUNK` candidates at a time to bound memory)."""
    cos_inlier = np.cos(np.radians(INLIER_DEG))
    out = np.empty(len(candidates))
    for s in range(0, len(candidates), CHUNK):
        to_vp = np.cross(mids[None], candidates[s:s + CHUNK, None])  # (C, N, 3)
        to_vp /= np.maximum(np.linalg.norm(to_vp, axis=2, keepdims=True), 1e-12)
        out[s:s + CHUNK] = (np.abs(np.einsum("nk,cnk->cn", normals, to_vp)) > cos_inlier) @ length
    return out


def _pair_directions(normals: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """(C, 3) unit directions where the planes of random pairs of segments meet: RANSAC's hypotheses."""
    pairs = rng.integers(0, len(normals), (count, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    found = np.cross(normals[pairs[:, 0]], normals[pairs[:, 1]])
    norms = np.linalg.norm(found, axis=1)
    return found[norms > 1e-9] / norms[norms > 1e-9, None]


def _null_direction(normals: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The unit direction most nearly in every plane: the smallest eigenvector of sum w n n^T."""
    return np.linalg.eigh((normals * weights[:, None]).T @ normals)[1][:, 0]


def _refit(normals: np.ndarray, mids: np.ndarray, length: np.ndarray, direction: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """The direction refitted on its supporters, twice (the supporters re-chosen around each refit), and the
    supporters' mask; None when fewer than two support it."""
    for _ in range(2):
        inliers = _pointing_error(normals, mids, direction) < np.radians(INLIER_DEG)
        if inliers.sum() < 2:
            return None
        direction = _null_direction(normals[inliers], length[inliers])
    return direction, _pointing_error(normals, mids, direction) < np.radians(INLIER_DEG)


def _other_families(
    normals: np.ndarray, mids: np.ndarray, length: np.ndarray, prior: np.ndarray, image_height: float,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, float]]:
    """The scene's line families far from the prior's vertical (floor and wall edges, each with its vanishing
    direction and summed length in pixels; not slanted ones near the vertical), strongest first: each found by
    RANSAC among the segments no earlier family took, kept with `MIN_SEGMENTS` segments and `MIN_SUPPORT` image
    heights."""
    away = np.cos(np.radians(FAMILY_DEG))
    left = np.ones(len(normals), bool)
    found: list[tuple[np.ndarray, float]] = []
    while len(found) < MAX_FAMILIES and left.sum() >= MIN_SEGMENTS:
        n, m, w = normals[left], mids[left], length[left]
        candidates = _pair_directions(n, rng, RANSAC_PAIRS)
        candidates = candidates[np.abs(candidates @ prior) < away]
        if not len(candidates):
            break
        fit = _refit(n, m, w, candidates[int(np.argmax(_supports(n, m, w, candidates)))])
        if fit is None or fit[1].sum() < MIN_SEGMENTS or w[fit[1]].sum() < MIN_SUPPORT * image_height:
            break
        found.append((fit[0], float(w[fit[1]].sum())))
        left[np.flatnonzero(left)[fit[1]]] = False
    return found


def _scores(normals: np.ndarray, mids: np.ndarray, length: np.ndarray, candidates: np.ndarray,
            others: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """(C,) support of each candidate vertical: its own segments' length, plus each other family's, the more the
    nearer it is to perpendicular (full at 90 degrees, none `ORTHO_DEG` off); -1 without segments of its own.

    A man-made scene's vertical is perpendicular to its floor and wall edges: a slanted family that happens to
    point near the prior (a floor edge seen from above) has little of that support.
    """
    own = _supports(normals, mids, length, candidates)
    square = np.zeros(len(candidates))
    for direction, weight in others:
        off = np.degrees(np.arcsin(np.clip(np.abs(candidates @ direction), 0.0, 1.0)))
        square += weight * np.clip(1.0 - off / ORTHO_DEG, 0.0, None)
    return np.where(own > 0, own + square, -1.0)


def vertical_from_segments(
    lines: np.ndarray, focal: float, principal: np.ndarray, prior_up: np.ndarray, image_height: float,
    frames: int = 1, seed: int = 0,
) -> SceneVertical | None:
    """The vertical vanishing direction of (N, 4) pixel segments (x1, y1, x2, y2), signed like `prior_up`;
    None without enough support.

    Directions are searched near the prior only: a level camera's vertical as a second prior found the edges of a
    floor seen from above in one of the Pose2Sim views (87 degrees off).
    """
    if len(lines) < 2:
        return None
    prior = np.asarray(prior_up, np.float64) / np.linalg.norm(prior_up)
    length = np.hypot(lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1])
    normals, mids = _segment_planes(np.asarray(lines, np.float64), focal, principal)
    rng = np.random.default_rng(seed)
    others = _other_families(normals, mids, length, prior, image_height, rng)
    usable = _pointing_error(normals, mids, prior) < np.radians(CANDIDATE_DEG)
    for direction, _ in others:  # a segment that points at another family's vanishing point as well is not evidence
        usable &= _pointing_error(normals, mids, direction) > np.radians(AMBIGUOUS_DEG)
    normals, mids, length = normals[usable], mids[usable], length[usable]
    if len(normals) < MIN_SEGMENTS:
        return None
    candidates = _pair_directions(normals, rng, RANSAC_PAIRS)
    # lines towards a horizontal vanishing point (a floor's edges, a corridor) also pass the candidate test
    # where they look upright in the image; only directions near the prior are the vertical
    candidates = candidates[np.abs(candidates @ prior) > np.cos(np.radians(PRIOR_DEG))]
    if not len(candidates):
        return None
    best = candidates[int(np.argmax(_scores(normals, mids, length, candidates, others)))]
    # the refit moves onto its supporters' own vanishing point; a slanted family next to the vertical can draw it
    # away from the perpendicular to the floor's edges (5 degrees in a Pose2Sim view, its score halved), so a
    # refit that loses more than `REFIT_LOSS` of the score is not taken
    fit = _refit(normals, mids, length, best)
    if fit is None:
        return None
    refit_score, score = _scores(normals, mids, length, np.stack([fit[0], best]), others)
    if refit_score < (1.0 - REFIT_LOSS) * score:
        fit = best, _pointing_error(normals, mids, best) < np.radians(INLIER_DEG)
    best, inliers = fit
    up = best if best @ prior > 0 else -best
    support = float(length[inliers].sum()) / image_height
    if inliers.sum() < MIN_SEGMENTS or support < MIN_SUPPORT:
        return None
    return SceneVertical(up, int(inliers.sum()), support, frames)


def _outside_boxes(lines: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N,) segments with neither end inside any (x0, y0, x1, y1) box: people's limbs are not the scene."""
    ok = np.ones(len(lines), bool)
    for x0, y0, x1, y1 in boxes:
        for a, b in ((0, 1), (2, 3)):
            ok &= ~((lines[:, a] >= x0) & (lines[:, a] <= x1) & (lines[:, b] >= y0) & (lines[:, b] <= y1))
    return ok


def _inside_border(lines: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) segments not running along an image edge (black bars of a cropped or stabilised video are perfectly
    straight and upright, and would outvote the scene)."""
    margin = BORDER * width
    xs, ys = lines[:, [0, 2]], lines[:, [1, 3]]
    along = ((xs < margin).all(1) | (xs > width - 1 - margin).all(1) | (ys < margin).all(1)
             | (ys > height - 1 - margin).all(1))
    return ~along


def people_boxes(keypoints: list[np.ndarray], frame: int) -> np.ndarray:
    """(K, 4) grown pixel boxes of each person's finite keypoints (T, J, 2) at `frame`."""
    boxes = []
    for kp in keypoints:
        if frame >= len(kp):
            continue
        pts = kp[frame][np.isfinite(kp[frame]).all(-1)]
        if len(pts) < 2:
            continue
        lo, hi = pts.min(0), pts.max(0)
        grow = BOX_MARGIN * (hi - lo)
        boxes.append([*(lo - grow), *(hi + grow)])
    return np.asarray(boxes, np.float64).reshape(-1, 4)


def scene_segments(
    source: FrameSource, keypoints: list[np.ndarray] | None = None,
    undistort: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """(N, 4) pixel line segments of up to `SAMPLE_FRAMES` frames of the clip's first `SAMPLE_SECONDS` (static camera
    assumed, as for the whole world frame), and the number of frames read. `keypoints` (per person (T, J, 2) pixels)
    mask the people out; `undistort` maps (N, 2) pixels to the ideal pinhole camera the caller uses (a calibrated
    lens bends straight lines)."""
    cv2 = _cv2()
    span = max(1, min(source.num_frames, round(SAMPLE_SECONDS * source.fps)))
    picks = set(np.linspace(0, span - 1, min(SAMPLE_FRAMES, span)).round().astype(int).tolist())
    detector = cv2.createLineSegmentDetector()
    diagonal = float(np.hypot(source.width, source.height))
    found = []
    for i, rgb in enumerate(source.frames(stop=max(picks) + 1)):
        if i not in picks:
            continue
        lines = detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))[0]
        if lines is None:
            continue
        lines = lines.reshape(-1, 4).astype(np.float64)
        if undistort is not None:
            lines = undistort(lines.reshape(-1, 2)).reshape(-1, 4)
        lines = lines[np.hypot(lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1]) >= MIN_LENGTH * diagonal]
        lines = lines[_inside_border(lines, source.width, source.height)]
        if keypoints:
            lines = lines[_outside_boxes(lines, people_boxes(keypoints, i))]
        found.append(lines)
    return (np.concatenate(found) if found else np.empty((0, 4))), len(found)


def scene_vertical(
    source: FrameSource, focal: float, principal: np.ndarray, prior_up: np.ndarray,
    keypoints: list[np.ndarray] | None = None, undistort: Callable[[np.ndarray], np.ndarray] | None = None,
) -> SceneVertical | None:
    """The clip's vertical (`scene_segments`, then `vertical_from_segments` near `prior_up`); None when not found."""
    lines, frames = scene_segments(source, keypoints, undistort)
    if not frames:
        return None
    return vertical_from_segments(lines, focal, principal, prior_up, source.height, frames)


__all__ = ["SceneVertical", "people_boxes", "scene_segments", "scene_vertical", "vertical_from_segments"]
