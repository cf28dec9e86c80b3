"""Filters on a noisy synthetic walker: velocity error drops, lag stays bounded, the stream equals the clip."""

from __future__ import annotations

import numpy as np
import pytest

from bonelift.errors import OptionError
from bonelift.filters import OneEuro, smooth
from tests.walker import walk

FPS = 30.0


def _mpjve(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-joint velocity error, m/s."""
    return float(np.linalg.norm(np.diff(a, axis=0) - np.diff(b, axis=0), axis=-1).mean() * FPS)


def _lag(a: np.ndarray, b: np.ndarray) -> int:
    """The shift (frames) of `a` behind `b` that best matches them."""
    errs = [np.abs(a[s:] - b[: len(b) - s]).mean() for s in range(6)]
    return int(np.argmin(errs))


@pytest.fixture
def clean() -> np.ndarray:
    w = walk(300, FPS)
    return w - w[:, :1] + w[:, :1] * [1, 0, 1]  # moves across the floor, as a trajectory + pose would


@pytest.mark.parametrize("kind", ["one-euro", "butterworth"])
def test_noise_drops_and_lag_bounded(kind: str, clean: np.ndarray) -> None:
    noisy = clean + np.random.default_rng(0).normal(0, 0.015, clean.shape)
    out = smooth(noisy, FPS, kind)
    assert _mpjve(out, clean) < (0.5 if kind == "butterworth" else 0.7) * _mpjve(noisy, clean)
    # butterworth also lowers the position error; One-Euro's lag on fast limbs costs about what it removes
    assert np.abs(out - clean).mean() < (1.0 if kind == "butterworth" else 1.15) * np.abs(noisy - clean).mean()
    assert _lag(out[:, 0, 2], clean[:, 0, 2]) <= (0 if kind == "butterworth" else 2)


def test_one_euro_stream_equals_clip_and_restarts_at_gaps(clean: np.ndarray) -> None:
    noisy = clean + np.random.default_rng(1).normal(0, 0.01, clean.shape)
    noisy[100:103] = np.nan
    clip = smooth(noisy, FPS, "one-euro")
    live = OneEuro(FPS)
    stream = np.stack([live.push(x) for x in noisy])
    np.testing.assert_array_equal(np.isnan(clip), np.isnan(noisy))
    np.testing.assert_allclose(stream, clip, equal_nan=True)
    np.testing.assert_allclose(clip[103], noisy[103])  # a new run starts unfiltered


def test_none_constant_and_bad_option(clean: np.ndarray) -> None:
    np.testing.assert_array_equal(smooth(clean, FPS, "none"), clean)
    const = np.ones((50, 17, 3))
    np.testing.assert_allclose(smooth(const, FPS, "butterworth"), const)
    with pytest.raises(OptionError, match="filter"):
        smooth(clean, FPS, "kalman")
