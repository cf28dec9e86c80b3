"""Atomic file writes (a reader never sees a half-written file, a failed write leaves nothing behind) and bounded
reads (a small hostile file cannot make bonelift allocate more memory than a legitimate file of its size would).

Bounded reads: an npz member's npy header (shape x itemsize) is read from the zip stream, without inflating the
data, and the bytes all members declare must fit `read_budget(file)`: `MIN_BUDGET`, or `MAX_INFLATION` times the
file's size on disk (the real data files inflate 1.0-2.3 times; zeros deflate 1000 times). A JSON file is refused
when larger than `MAX_JSON_BYTES` (checked from its size before it is read: Python's objects take ~10 times the
text) or nested deeper than `MAX_JSON_DEPTH` (real files: 4), before Python's recursive parser sees it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npformat

from bonelift.errors import DataError

MIN_BUDGET = 64 * 2**20  # bytes any file may declare, however well it compresses
MAX_INFLATION = 16  # declared bytes per byte on disk beyond MIN_BUDGET
MAX_JSON_DEPTH = 100
MAX_JSON_BYTES = 32 * 2**20  # a 10,000-frame OpenPose-style keypoint file is ~10 MB; results files are kB


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; flush it to disk and rename it onto `path` only if the block succeeds.

    The fsync before the rename makes the new content durable before it replaces the old one, so a crash
    leaves either the old file or the new one, never an empty file. A failed write (disk full, quota, I/O
    error) is one DataError naming `path`, whose old content is kept.
    """
    dst = Path(path)
    tmp_path = None
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        if tmp_path.is_file():  # mkstemp creates 0600; give the result the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            tmp_path.chmod(0o666 & ~umask)
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, dst)
    except OSError as exc:
        kept = "; the previous file is unchanged" if dst.exists() else ""
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
        raise DataError(dst, f"cannot write ({reason}){kept}") from None
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def writable_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """`path` as a folder this process can write into, made if missing; a DataError naming it otherwise.

    Called before any slow work, so a run writing to a file, a read-only place or /proc fails at once."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DataError(out, f"{what} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(out, f"cannot make the {what} ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise DataError(out, f"{what} is not writable")
    return out


def writable_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """`path` as a file this process can (re)write: not a folder, its folder writable (made if missing)."""
    out = Path(path)
    if out.is_dir():
        raise DataError(out, f"{what} is a folder")
    if out.exists() and not os.access(out, os.W_OK):
        raise DataError(out, f"{what} is not writable")
    writable_dir(out.parent, f"folder of the {what}")
    return out


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically (non-JSON values as strings)."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


class ReadBudget:
    """The bytes a file's arrays may still declare; `take` refuses (naming the file) before anything is allocated."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.left = max(MIN_BUDGET, MAX_INFLATION * self.size)

    def take(self, nbytes: int, what: str) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise DataError(self.path, f"{what} declares {nbytes / 2**20:,.0f} MB, more than a {self.size:,}-byte file "
                                       f"may inflate to (at most {MAX_INFLATION}x its size, or "
                                       f"{MIN_BUDGET // 2**20} MB): a zip bomb or a corrupt file")


def _npy_header(fh: IO[bytes], source: Path, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of an npy stream, read without touching its data."""
    version = npformat.read_magic(fh)
    if version == (1, 0):
        return npformat.read_array_header_1_0(fh)
    if version == (2, 0):
        return npformat.read_array_header_2_0(fh)
    raise DataError(source, f"{member}: unsupported npy format version {version[0]}.{version[1]}")


def read_npz_arrays(
    path: str | os.PathLike[str], unpickle: Callable[[IO[bytes], str], np.ndarray] | None = None,
    keys: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of an npz (those named in `keys`, default all), each checked against the file's `ReadBudget`.

    Object (pickled) members are refused unless `unpickle(stream, member)` is given; their stream is bounded by the
    budget too. Unreadable or truncated files are a DataError naming the file.
    """
    path = Path(path)
    try:
        budget = ReadBudget(path)
        with zipfile.ZipFile(path) as zf:
            out = {}
            for info in zf.infolist():
                key = info.filename[: -len(".npy")]
                if not info.filename.endswith(".npy") or (keys is not None and key not in keys):
                    continue
                with zf.open(info) as fh:
                    shape, _, dtype = _npy_header(fh, path, info.filename)
                    if dtype.hasobject:
                        if unpickle is None:
                            raise DataError(path, f"{key} holds pickled objects, which are not read from this file")
                        budget.take(info.file_size, f"{key} (pickled)")
                        value = unpickle(fh, info.filename)
                        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
                            got = f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                            raise DataError(path, f"{key} holds a pickled {got}, its header says an array of shape "
                                                  f"{tuple(shape)}")
                        out[key] = value
                        continue
                    declared = math.prod(shape) * dtype.itemsize
                    budget.take(declared, f"{key} {tuple(shape)} {dtype}")
                    if fh.tell() + declared > info.file_size:
                        raise DataError(path, f"{key} declares {declared:,} bytes of data but holds "
                                              f"{info.file_size - fh.tell():,}: truncated or corrupt")
                    fh.seek(0)
                    out[key] = npformat.read_array(fh, allow_pickle=False)
            return out
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError, OverflowError) as exc:
        raise DataError(path, f"cannot read npz ({type(exc).__name__}: {exc}); file truncated or corrupt?") from None


def check_zip_budget(path: str | os.PathLike[str]) -> None:
    """Refuse a zip archive (such as a torch checkpoint) whose members declare more than its `ReadBudget`."""
    budget = ReadBudget(path)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            budget.take(info.file_size, info.filename)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def load_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file a user gave; unreadable, malformed, larger than `MAX_JSON_BYTES` or nested deeper than
    `MAX_JSON_DEPTH` is one DataError naming the file, raised before the file is read or parsed."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise DataError(path, f"JSON file of {size / 2**20:,.0f} MB (at most {MAX_JSON_BYTES // 2**20} MB): "
                                  "not a keypoint, configuration or results file")
        return loads_json(path.read_bytes(), path)
    except OSError as exc:
        raise DataError(path, f"not a readable JSON file ({type(exc).__name__}: {exc})") from None


def loads_json(raw: bytes | str, source: str | os.PathLike[str]) -> Any:
    """Parse JSON text read from `source` (a file, or a member of one), refusing nesting deeper than
    `MAX_JSON_DEPTH` before Python's recursive parser sees it; any defect is one DataError naming `source`."""
    raw = raw.encode() if isinstance(raw, str) else raw
    try:
        codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
        depth = np.cumsum((codes == ord("[")) | (codes == ord("{")), dtype=np.int32)
        depth -= np.cumsum((codes == ord("]")) | (codes == ord("}")), dtype=np.int32)
        if depth.size and depth.max() > MAX_JSON_DEPTH:
            raise DataError(source, f"JSON nested {int(depth.max())} levels deep (at most {MAX_JSON_DEPTH}): "
                                    "not a keypoint, configuration or results file")
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DataError(source, f"not a readable JSON file ({type(exc).__name__}: {exc})") from None


# "0000" .. "9999" as one 4-byte word each: a lookup moves four digits at once
_DIGITS4 = np.frombuffer("".join(f"{k:04d}" for k in range(10000)).encode(), np.uint32)


def _digits(n: np.ndarray, places: int) -> np.ndarray:
    """(..., places) ASCII digits of non-negative integers `n`, zero-padded on the left; four digits per lookup
    (one division per four places instead of one per place)."""
    groups = -(-places // 4)
    words = np.empty(n.shape + (groups,), np.uint32)
    rest = n
    for g in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10000)
        words[..., g] = _DIGITS4[low]
    return words.view(np.uint8)[..., 4 * groups - places:]


TABLE_CHUNK = 4096  # rows `format_table` lays out at a time (each cell's text does not depend on the others)


def format_table(values: np.ndarray, decimals, sep: str | Sequence[str] = "\t", nan: str = "NaN") -> bytes:
    """(N, C) numbers as text lines: column k with decimals[k] places, NaN written `nan`; `sep` between columns
    (one text, or C - 1 texts: sep[k] after column k, so JSON brackets can be built in), a newline after each row.

    Every cell is laid out right-aligned in a fixed-width byte grid (sign, whole digits, point, fraction,
    separator), built with whole-array operations per group of columns sharing their places and separator
    width, and the unused left part of each cell masked out: a table of millions of numbers takes a fraction
    of a second (Python's per-number formatting takes seconds). The text equals `"%.{d}f" % value` cell by
    cell, except that a negative zero is written without its sign.
    """
    v = np.asarray(values, np.float64)
    if len(v) > TABLE_CHUNK:  # bounded working memory: the byte grid and its int64 companions take ~40 bytes a cell
        return b"".join(format_table(v[i:i + TABLE_CHUNK], decimals, sep, nan) for i in range(0, len(v), TABLE_CHUNK))
    n, c = v.shape
    dec = np.broadcast_to(np.asarray(decimals, np.int64), (c,))
    seps = [sep] * (c - 1) if isinstance(sep, str) else list(sep)
    if len(seps) != c - 1:
        raise ValueError(f"format_table: {c} columns need {c - 1} separators, got {len(seps)}")
    tails = [s.encode() for s in seps] + [b"\n"]
    finite = np.isfinite(v)
    scaled = np.round(np.where(finite, np.abs(v), 0.0) * 10.0 ** dec).astype(np.int64)
    whole = np.maximum(1, [len(str(int(m))) for m in (scaled.max(0, initial=0) // 10 ** dec)])
    cell = 1 + whole + (dec > 0) + dec  # sign, whole digits, point, fraction
    lens = np.array([len(t) for t in tails])
    width = int(max((cell + lens).max(), (len(nan.encode()) + lens).max()))
    chars = np.empty((n, c, width), np.uint8)  # bytes left of a cell's text are masked out, never read
    lo = np.zeros((n, c), np.int64)  # first byte of each cell's text
    for key in sorted({(int(d), int(w), int(k)) for d, w, k in zip(dec, whole, lens)}):
        d, w, k = key
        cols = np.flatnonzero((dec == d) & (whole == w) & (lens == k))
        end = width - k  # the number ends here, its separator after
        s = scaled[:, cols]
        spot = slice(cols[0], cols[-1] + 1) if cols[-1] - cols[0] == len(cols) - 1 else cols
        block = chars[:, spot] if isinstance(spot, slice) else np.zeros((n, len(cols), width), np.uint8)  # a view
        ints, frac = np.divmod(s, 10 ** d)
        if d:
            block[..., end - d:end] = _digits(frac, d)
            block[..., end - d - 1] = ord(".")
        block[..., end - d - (d > 0) - w:end - d - (d > 0)] = _digits(ints, w)
        for j, col in enumerate(cols):  # separators of equal width may still differ in text
            block[:, j, end:] = np.frombuffer(tails[col], np.uint8)
        places = 1 + sum((ints >= 10 ** e).astype(np.int64) for e in range(1, w))  # whole digits written
        first = end - d - (d > 0) - places  # the first significant whole digit (the units digit at least)
        neg = (v[:, cols] < 0) & (s > 0)
        first -= neg
        r, q = np.nonzero(neg)
        block[r, q, first[r, q]] = ord("-")
        bad = ~finite[:, cols]
        if bad.any():
            block[bad, end - len(nan):end] = np.frombuffer(nan.encode(), np.uint8)
            first = np.where(bad, end - len(nan), first)
        chars[:, spot] = block
        lo[:, spot] = first
    keep = np.arange(width) >= lo[..., None]
    return chars[keep].tobytes()
