"""Smoothing of joint trajectories over time: none, One-Euro (causal, live) and Butterworth (zero-lag, offline).

- **one-euro** (Casiez et al., CHI 2012): a first-order low-pass whose cutoff rises with speed,
  fc = `min_cutoff` + `beta` |dx/dt| (Hz; the speed of the low-passed derivative, cutoff `d_cutoff`), so
  a still joint is smoothed hard and a fast one follows with little lag. Causal: `OneEuro.push` filters
  a stream frame by frame, and `smooth(..., "one-euro")` over a clip gives the same numbers.
- **butterworth**: a 2nd-order low-pass at `cutoff` Hz run forwards and backwards (zero lag, 4th-order
  roll-off; the biomechanics default, Winter's 6 Hz for gait), its cutoff corrected for the double pass.
  Needs the whole clip (offline only).

Every filter works along axis 0 on any trailing shape and restarts at each missing (NaN) frame: each run
of finite frames is filtered on its own, NaN frames stay NaN.
"""

from __future__ import annotations

import math

import numpy as np

from bonelift.errors import OptionError

FILTERS = ("none", "one-euro", "butterworth")
ONE_EURO_MIN_CUTOFF = 1.0  # Hz
ONE_EURO_BETA = 5.0  # 1/m: the cutoff rises 5 Hz per m/s of joint speed (walking: about 7 Hz)
ONE_EURO_D_CUTOFF = 1.0  # Hz
BUTTERWORTH_CUTOFF = 6.0  # Hz


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


class OneEuro:
    """The causal One-Euro filter over a stream of arrays of one shape; `reset()` forgets the past."""

    def __init__(self, fps: float, min_cutoff: float = ONE_EURO_MIN_CUTOFF, beta: float = ONE_EURO_BETA,
                 d_cutoff: float = ONE_EURO_D_CUTOFF) -> None:
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def push(self, x: np.ndarray) -> np.ndarray:
        """The filtered value of `x` (a frame with a NaN passes through and restarts the filter)."""
        x = np.asarray(x, np.float64)
        if not np.isfinite(x).all():
            self.reset()
            return x.copy()
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self.fps
        self._dx = self._dx + _alpha(self.d_cutoff, self.fps) * (dx - self._dx)
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True) if x.ndim else np.abs(self._dx)
        a = _alpha(self.min_cutoff + self.beta * speed, self.fps)
        self._x = self._x + a * (x - self._x)
        return self._x.copy()


def _butter2(cutoff: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the 2nd-order Butterworth low-pass, bilinear transform with pre-warping."""
    w = math.tan(math.pi * cutoff / fps)
    k = 1 + math.sqrt(2) * w + w * w
    b = np.array([w * w, 2 * w * w, w * w]) / k
    a = np.array([1.0, 2 * (w * w - 1) / k, (1 - math.sqrt(2) * w + w * w) / k])
    return b, a


def _lfilter(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Direct-form filter along axis 0, started in the steady state of the first value."""
    y = np.empty_like(x)
    gain = b.sum() / a.sum()
    x1 = x2 = x[0]
    y1 = y2 = x[0] * gain
    for t in range(len(x)):
        y[t] = b[0] * x[t] + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, x[t], y1, y[t]
    return y


def _butterworth_run(x: np.ndarray, fps: float, cutoff: float) -> np.ndarray:
    """Zero-lag Butterworth of one run of finite frames, its ends padded by odd reflection."""
    if len(x) < 2:
        return x.copy()
    corrected = cutoff / (math.sqrt(2) - 1) ** 0.25  # two passes: -3 dB stays at `cutoff` (Winter 2009, 2.2.4.4)
    b, a = _butter2(min(corrected, 0.45 * fps), fps)
    pad = min(len(x) - 1, max(3, round(fps / cutoff)))
    ext = np.concatenate([2 * x[:1] - x[pad:0:-1], x, 2 * x[-1:] - x[-2:-pad - 2:-1]])
    y = _lfilter(b, a, ext)
    y = _lfilter(b, a, y[::-1])[::-1]
    return y[pad:pad + len(x)]


def _runs(finite: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def check_filter(kind: str, option: str = "filter (--filter)") -> str:
    if kind not in FILTERS:
        raise OptionError(f"{option} must be one of {', '.join(FILTERS)}, got {kind!r}")
    return kind


def smooth(x: np.ndarray, fps: float, kind: str, cutoff: float | None = None, beta: float | None = None) -> np.ndarray:
    """`x` (T, ...) smoothed along time by filter `kind` (`FILTERS`); `cutoff` (Hz) is the Butterworth cutoff or
    the One-Euro minimum cutoff, `beta` the One-Euro speed coefficient (None: the defaults above)."""
    check_filter(kind)
    x = np.asarray(x, np.float64)
    if kind == "none" or not len(x):
        return x.copy()
    out = np.full_like(x, np.nan)
    finite = np.isfinite(x.reshape(len(x), -1)).all(-1)
    for s, e in _runs(finite):
        if kind == "butterworth":
            out[s:e] = _butterworth_run(x[s:e], fps, cutoff or BUTTERWORTH_CUTOFF)
        else:
            f = OneEuro(fps, ONE_EURO_MIN_CUTOFF if cutoff is None else cutoff, ONE_EURO_BETA if beta is None else beta)
            out[s:e] = np.stack([f.push(v) for v in x[s:e]])
    return out
