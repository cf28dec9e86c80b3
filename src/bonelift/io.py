"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; flush it to disk and rename it onto `path` only if the block succeeds.

    The fsync before the rename makes the new content durable before it replaces the old one, so a crash
    leaves either the old file or the new one, never an empty file.
    """
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():  # mkstemp creates 0600; give the result the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            tmp_path.chmod(0o666 & ~umask)
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, dst)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically (non-JSON values as strings)."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def format_table(values: np.ndarray, decimals, sep: str = "\t", nan: str = "NaN") -> bytes:
    """(N, C) numbers as text lines: column k with decimals[k] places, `sep` between, NaN written `nan`.

    The digits of every cell are built as whole arrays and the unused places masked out, so a table of
    millions of numbers takes a fraction of a second (Python's per-number formatting takes seconds); the
    text equals `"%.{d}f" % value` cell by cell, except that a negative zero is written without its sign.
    """
    v = np.asarray(values, np.float64)
    n, c = v.shape
    dec = np.broadcast_to(np.asarray(decimals, np.int64), (c,))
    top = int(dec.max())
    finite = np.isfinite(v)
    scaled = (np.round(np.where(finite, np.abs(v), 0.0) * 10.0 ** dec) * 10.0 ** (top - dec)).astype(np.int64)
    whole = max(1, len(str(int(scaled.max(initial=0)) // 10**top)))
    end = 2 + whole + top  # sign, whole digits, point, fraction, then the separator
    width = max(end + len(sep), len(nan) + len(sep))
    chars = np.zeros((n, c, width), np.uint8)
    keep = np.zeros((n, c, width), bool)
    chars[..., 0] = ord("-")
    keep[..., 0] = finite & (v < 0) & (scaled > 0)
    rest = scaled.copy()
    for pos in range(end - 1, 0, -1):  # least significant first
        if pos == 1 + whole:
            chars[..., pos] = ord(".")
            keep[..., pos] = dec > 0
            continue
        chars[..., pos] = rest % 10 + ord("0")
        rest //= 10
        if pos > 1 + whole:
            keep[..., pos] = pos - 1 - whole <= dec
        else:  # a whole digit: kept from the first non-zero one, the units always
            keep[..., pos] = (scaled >= 10 ** (top + whole - pos)) | (pos == whole)
    chars[..., end:end + len(sep)] = np.frombuffer(sep.encode(), np.uint8)
    keep[..., end:end + len(sep)] = True
    chars[:, -1, end] = ord("\n")
    keep[:, -1, end + 1:] = False
    bad = ~finite
    keep[bad, :end] = False
    chars[bad, :len(nan)] = np.frombuffer(nan.encode(), np.uint8)
    keep[bad, :len(nan)] = True
    return chars[keep].tobytes()
