"""Errors raised on bad input: each names the file (or option) and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class BoneliftError(Exception):
    """Base class of every error bonelift raises on purpose."""


class DataError(BoneliftError, ValueError):
    """A file or array is missing, unreadable or malformed; the message names the file and the problem."""

    def __init__(self, source: str | os.PathLike[str] | None, problem: str) -> None:
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)

    def __reduce__(self):
        """Rebuild from (source, problem): the default pickling passes the message as the only argument,
        which does not fit `__init__`, so an error raised in a worker process broke the whole pool."""
        return (type(self), (self.source, self.problem))


class OptionError(BoneliftError, ValueError):
    """An option (Python argument or command-line flag) has a value bonelift cannot use; the message names it."""


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Return `path` as a Path, or raise a DataError if it does not exist."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, f"{what} not found")
    return p


def check_array(
    arr: np.ndarray,
    source: str | os.PathLike[str] | None,
    name: str,
    shape: tuple[int | None, ...],
    allow_nan: bool = False,
) -> np.ndarray:
    """Check rank, fixed dimensions and finiteness of an array read from a file.

    `shape` uses None for free dimensions. Returns the array unchanged so it can be used inline.
    """
    arr = np.asarray(arr)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataError(source, f"{name} has shape {arr.shape}, expected {want}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(source, f"{name} has non-numeric dtype {arr.dtype}")
    if not allow_nan and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(source, f"{name} contains {bad} NaN/inf values")
    return arr
