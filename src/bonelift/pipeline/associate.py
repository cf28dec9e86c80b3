"""Linking per-frame person detections into one 2D track per person (identities across frames).

A detector that sees several people returns them in no particular order; this module gives each
person an identity that survives crossings. Each frame, every live track predicts where its
keypoints are now (last keypoints moved by the track's smoothed centroid velocity), and detections
are assigned to tracks by the cheapest one-to-one pairing (every pairing tried for a handful of
people; `scipy.optimize.linear_sum_assignment` for more, a greedy matcher when scipy is missing) on
the mean keypoint distance divided by the person's size. The velocity term is what keeps two people
apart when they pass each other: at the crossing their keypoints overlap, but each track's prediction
still lies on its own side.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

GATE = 0.6  # a detection farther than this (mean joint distance / person size) from a prediction is someone else
VELOCITY_SMOOTHING = 0.5  # weight of the newest frame-to-frame motion in a track's velocity


EXACT_LIMIT = 5040  # assignments (7!) up to which `_assign` tries them all rather than import scipy (~0.4 s)


@functools.lru_cache(maxsize=64)
def _pairings(n: int, k: int) -> np.ndarray:
    """(n!/(n-k)!, k) every way to give k rows distinct columns out of n (built once per shape, not per frame)."""
    return np.array(list(itertools.permutations(range(n), k)), dtype=np.int64).reshape(-1, k)


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one pairs (row, column) of `cost`; infinite entries are never paired.

    As many pairs as the shorter side, the cheapest sum (infinite entries counted as 1e9, then dropped):
    by trying every assignment when there are few (a frame's people: a handful), else by the Hungarian method.
    """
    if cost.size == 0:
        return []
    finite = np.where(np.isfinite(cost), cost, 1e9)
    tall = finite.shape[0] > finite.shape[1]
    wide = finite.T if tall else finite  # rows <= columns: each row takes a distinct column
    k, n = wide.shape
    if math.perm(n, k) <= EXACT_LIMIT:
        options = _pairings(n, k)
        best = options[int(np.argmin(wide[np.arange(k), options].sum(1)))]
        pairs = [(c, r) if tall else (r, c) for r, c in enumerate(best.tolist())]
        return [(r, c) for r, c in pairs if np.isfinite(cost[r, c])]
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # greedy: cheapest pair first
        pairs, used_r, used_c = [], set(), set()
        for flat in np.argsort(finite, axis=None):
            r, c = divmod(int(flat), cost.shape[1])
            if r not in used_r and c not in used_c and np.isfinite(cost[r, c]):
                pairs.append((r, c))
                used_r.add(r)
                used_c.add(c)
        return pairs
    rows, cols = linear_sum_assignment(finite)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if np.isfinite(cost[r, c])]


def _size(kp: np.ndarray) -> float:
    """Person size in pixels: the diagonal of the box around its found keypoints (at least 1)."""
    pts = kp[np.isfinite(kp).all(-1)]
    return max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 1.0) if len(pts) else 1.0


class _Track:
    def __init__(self, t: int, kp: np.ndarray) -> None:
        self.frames = [t]
        self.rows = [kp]
        self.last = t
        self.velocity = np.zeros(2)

    def predict(self, t: int) -> np.ndarray:
        return self.rows[-1] + self.velocity * (t - self.last)

    def add(self, t: int, kp: np.ndarray) -> None:
        moved = np.nanmean(kp - self.rows[-1], axis=0) / (t - self.last)
        if np.isfinite(moved).all():
            self.velocity = VELOCITY_SMOOTHING * moved + (1 - VELOCITY_SMOOTHING) * self.velocity
        self.frames.append(t)
        self.rows.append(kp)
        self.last = t


def _cost(track: _Track, t: int, kp: np.ndarray) -> float:
    pred = track.predict(t)
    both = np.isfinite(pred).all(-1) & np.isfinite(kp).all(-1)
    if both.sum() < 3:
        return np.inf
    d = float(np.linalg.norm(pred[both] - kp[both], axis=-1).mean()) / _size(track.rows[-1])
    return d if d <= GATE else np.inf


def associate(points: np.ndarray, max_lost: int, min_frames: int = 1) -> list[np.ndarray]:
    """Tracks from per-frame detections: points (T, K, J, 2), NaN rows where a slot holds nobody.

    Returns a list of (T,) slot-index arrays (one per person, -1 where absent) so the caller can pick
    any per-detection data (keypoints, confidence) with them. A track not matched for more than
    `max_lost` frames ends (a person who returns later gets a new track). Tracks are ordered by the
    number of frames they hold, longest first; tracks shorter than `min_frames` are dropped, except
    the longest, which is always kept.
    """
    t_total, slots = points.shape[:2]
    present = np.isfinite(points).all(-1).any(-1)  # (T, K): the slot holds a person
    live: list[_Track] = []
    done: list[_Track] = []
    index: dict[int, list[tuple[int, int]]] = {}
    for t in range(t_total):
        ended = [tr for tr in live if t - tr.last > max_lost]
        done += ended
        live = [tr for tr in live if tr not in ended]
        dets = np.flatnonzero(present[t])
        cost = np.array([[_cost(tr, t, points[t, k]) for k in dets] for tr in live]).reshape(len(live), len(dets))
        matched = set()
        for r, c in _assign(cost):
            live[r].add(t, points[t, dets[c]])
            index[id(live[r])].append((t, int(dets[c])))
            matched.add(c)
        for c, k in enumerate(dets):
            if c not in matched:
                tr = _Track(t, points[t, k])
                live.append(tr)
                index[id(tr)] = [(t, int(k))]
    tracks = sorted(done + live, key=lambda tr: (-len(tr.frames), tr.frames[0]))
    out = []
    for n, tr in enumerate(tracks):
        if n > 0 and len(tr.frames) < min_frames:
            continue
        rows = np.full(t_total, -1, dtype=np.int64)
        for t, k in index[id(tr)]:
            rows[t] = k
        out.append(rows)
    return out


def gather(values: np.ndarray, rows: np.ndarray, fill: float) -> np.ndarray:
    """(T, ...) the per-detection `values` (T, K, ...) of one track (`rows` from `associate`), `fill` where absent."""
    out = np.full((len(rows),) + values.shape[2:], fill, dtype=np.float64)
    have = rows >= 0
    out[have] = values[np.flatnonzero(have), rows[have]]
    return out
