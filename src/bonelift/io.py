"""Atomic file writes (a reader never sees a half-written file, a failed write leaves nothing behind), bounded
reads (a small hostile file cannot make bonelift allocate more memory than a legitimate file of its size would),
and fast text tables written a chunk of rows at a time (`Numbers`, `Text`, `Omit`, `Columns`, `write_table`:
the exports' millions of numbers at ~45 ns each, in memory that does not grow with the file).

Bounded reads: an npz member's npy header (shape x itemsize) is read from the zip stream, without inflating the
data, and the bytes all members declare must fit `read_budget(file)`: `MIN_BUDGET`, or `MAX_INFLATION` times the
file's size on disk (the real data files inflate 1.0-2.3 times; zeros deflate 1000 times). A JSON file is refused
when larger than `MAX_JSON_BYTES` (checked from its size before it is read: Python's objects take ~10 times the
text) or nested deeper than `MAX_JSON_DEPTH` (real files: 4), before Python's recursive parser sees it.
"""

from __future__ import annotations

import contextlib
import functools
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


def write_npz(path: str | os.PathLike[str], members: Iterator[tuple[str, np.ndarray]]) -> None:
    """An uncompressed npz (what `np.savez` writes) of `members`, each made as the one before is written: the
    file's arrays are never all held at once."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in members:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                npformat.write_array(fh, np.asanyarray(value), allow_pickle=False)


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


# Text tables (`Numbers`, `Text`, `Omit`, `table_chunks`): every cell is laid out in whole 4-byte words, the bytes a
# cell does not use left NUL, and the NULs deleted once per chunk (`np.compress`). Words come from lookup
# tables (whole part: 4-digit groups; fraction: up to 5 digits at once), so the per-number work is a dozen
# whole-array operations, never a per-byte or per-number Python step: ~45 ns a number, 3x Python's `%` formatting.

def _words(text: bytes, count: int) -> np.ndarray:
    """`text` NUL-padded into `count` uint32 words."""
    return np.frombuffer(text.ljust(4 * count, b"\0"), np.uint32).copy()


def _int_table() -> np.ndarray:
    """Word tables for the whole part, one 4-digit group per word, right-aligned: [0, 1e4) unpadded, [1e4, 2e4)
    unpadded after a minus sign (the sign in the same word when the group has at most 3 digits), [2e4, 3e4)
    zero-padded to 4 digits; 3e4: empty; 3e4 + 1: a lone minus (a 4-digit leading group's sign)."""
    texts = [str(k).encode().rjust(4, b"\0") for k in range(10000)]
    texts += [(b"-" + str(k).encode() if k < 1000 else str(k).encode()).rjust(4, b"\0") for k in range(10000)]
    texts += [b"%04d" % k for k in range(10000)] + [b"\0" * 4, b"\0\0\0-"]
    return np.frombuffer(b"".join(texts), np.uint32)


_INT_WORDS = _int_table()
_EMPTY, _MINUS = 30000, 30001


@functools.lru_cache(maxsize=64)
def _digit_table(prefix: bytes, places: int, suffix: bytes, words: int) -> np.ndarray:
    """(10**places, words) uint32: for every value, `prefix` + its `places` digits (zero-padded) + `suffix`,
    NUL-padded into `words` words."""
    text = prefix + b"0" * places + suffix
    grid = np.tile(np.frombuffer(text.ljust(4 * words, b"\0"), np.uint8), (10 ** places, 1))
    values = np.arange(10 ** places)
    for i in range(places):  # digit i (from the left) of every value
        grid[:, len(prefix) + i] = ord("0") + (values // 10 ** (places - 1 - i)) % 10
    return grid.view(np.uint32)


MAX_DECIMALS = 8  # the fraction takes at most two lookups, of up to 10**5 entries each


class Columns:
    """An (N, C) table whose rows are made a slice at a time by `make(a, b)` (what `Numbers` reads): columns joined
    or interleaved from several arrays per chunk, never as one whole copy."""

    def __init__(self, rows: int, columns: int, make: Callable[[int, int], np.ndarray]) -> None:
        self.shape, self.make = (rows, columns), make

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.make(*rows.indices(self.shape[0])[:2])


class Numbers:
    """(N, C) numbers as text cells: column k with decimals[k] places and seps[k] after it (short texts: ",",
    "],["), a non-finite number written `nan`.

    The text equals `"%.{d}f" % value` cell by cell, except that a negative zero is written without its sign
    (rounding is numpy's round-half-even of value * 10**d). A cell's words: the sign and whole digits (4-digit
    groups, right-aligned), then its tail (point, fraction digits, separator) from one lookup of all its
    fraction digits (up to 5 of them), or two (the first 3 digits, then the rest)."""

    def __init__(self, values: np.ndarray | Columns, decimals, seps: Sequence[str], nan: str = "NaN") -> None:
        c = values.shape[1]
        if len(seps) != c:
            raise ValueError(f"Numbers: {c} columns need {c} separators, got {len(seps)}")
        dec = [int(d) for d in np.broadcast_to(np.asarray(decimals, np.int64), (c,))]
        if c and not 0 <= min(dec) <= max(dec) <= MAX_DECIMALS:
            raise ValueError(f"Numbers: decimals must be 0..{MAX_DECIMALS}, got {sorted(set(dec))}")
        self.values = values
        self.last: tuple[int, int, np.ndarray] | None = None  # the chunk laid out last (`Omit` of it reuses it)
        self.scale = 10.0 ** np.array(dec, np.float64)
        split = [d > 5 for d in dec]  # two lookups: '.' and 3 digits, then the other digits and the separator
        first = [
            (b"." if d else b"", 3 if cut else d, b"" if cut else sp.encode()) for d, sp, cut in zip(dec, seps, split)
        ]
        second = [(b"", d - 3 if cut else 0, sp.encode() if cut else b"") for d, sp, cut in zip(dec, seps, split)]
        self.segments = []  # (divisor per column: the segment's digits are frac // divisor, table, offset per column)
        for specs, div in ((first, [10.0 ** (d - 3) if cut else 1.0 for d, cut in zip(dec, split)]), (second, None)):
            words = max(-(-(len(p) + k + len(x)) // 4) for p, k, x in specs) if c else 0
            if not words:
                continue
            tables: dict[tuple, int] = {}
            for spec in specs:
                tables.setdefault(spec, sum(10 ** k for _, k, _ in tables))
            table = np.concatenate([_digit_table(*spec, words) for spec in tables])
            self.segments.append((None if div is None else np.array(div), table,
                                  np.array([tables[spec] for spec in specs], np.float64)))
        self.tw = sum(len(t[1][0]) for t in self.segments)
        self.nan_texts = [nan.encode() + sp.encode() for sp in seps]
        self.least = max(1, -(-max(len(t) for t in self.nan_texts) // 4) - self.tw)  # whole-part words: `nan` fits
        self.width = c * (self.tw + 2)  # words per row, about (the whole part's words vary by chunk)
        self.nan_words: dict[int, np.ndarray] = {}  # words per cell -> (C, words) of each column's `nan` and separator

    def words(self, a: int, b: int) -> np.ndarray:
        """(b - a, C * words per cell) uint32 of rows a..b."""
        if self.last is None or self.last[:2] != (a, b):
            self.last = (a, b, self._layout(a, b))
        return self.last[2]

    def _layout(self, a: int, b: int) -> np.ndarray:
        v = self.values[a:b]
        with np.errstate(invalid="ignore"):  # non-finite cells index garbage (clipped), then get `nan`
            signed = np.rint(v * self.scale)
            neg = signed < 0  # a negative zero (rint gives -0.0) is not < 0: written without its sign
            frac = np.abs(signed)
            rest = np.floor(frac / self.scale)
            frac -= rest * self.scale
            top = rest.max(initial=0.0)
            bad = None
            if not np.isfinite(top):
                bad = ~np.isfinite(v)
                top = rest.max(where=~bad, initial=0.0)
            iw = max(-(-(len(str(int(top))) + 1) // 4), self.least)  # words for the sign and the whole digits
            out = np.empty(v.shape + (iw + self.tw,), np.uint32)
            if iw == 1:  # the common case: at most 3 whole digits, the sign in the same word
                rest += neg * 10000.0
                out[..., 0] = np.take(_INT_WORDS, rest.astype(np.intp), mode="clip")
            else:
                self._whole(rest, neg, out[..., :iw])
            w = iw
            for div, table, offset in self.segments:
                if div is None:  # the second lookup: the digits the first left
                    q = frac
                elif (div == 1.0).all():
                    q = frac
                else:
                    q = np.floor(frac / div)
                    frac -= q * div
                q += offset
                out[..., w:w + table.shape[1]] = np.take(table, q.astype(np.intp), axis=0, mode="clip")
                w += table.shape[1]
        if bad is not None and bad.any():
            cell = iw + self.tw
            if cell not in self.nan_words:
                self.nan_words[cell] = np.stack([_words(t, cell) for t in self.nan_texts])
            out[bad] = np.broadcast_to(self.nan_words[cell], out.shape)[bad]
        return out.reshape(len(v), -1)

    @staticmethod
    def _whole(rest: np.ndarray, neg: np.ndarray, out: np.ndarray) -> None:
        """Sign and whole digits in `out` (..., iw) words, 4-digit groups, the rightmost word last."""
        iw = out.shape[-1]
        spill = None
        for g in range(iw):  # 4-digit groups of the whole part, the rightmost first
            higher = rest >= 10000.0
            group = rest
            if g + 1 < iw:
                rest = np.floor(group / 10000.0)
                group = group - rest * 10000.0
            # a group with higher digits is zero-padded; the leading one (or the units group) carries the sign
            idx = np.where(higher, group + 20000.0, group + 10000.0 * neg)
            if g:
                idx[~higher & (group == 0)] = _EMPTY
                idx[spill] = _MINUS
            spill = ~higher & neg & (group >= 1000.0)
            out[..., iw - 1 - g] = np.take(_INT_WORDS, idx.astype(np.intp), mode="clip")


class Text:
    """Per row one of a few texts: `texts[codes[row]]` (`codes` None: always texts[0])."""

    def __init__(self, texts: Sequence[str | bytes], codes: np.ndarray | None = None) -> None:
        raw = [t.encode() if isinstance(t, str) else t for t in texts]
        self.width = max(-(-len(t) // 4) for t in raw)
        self.table = np.stack([_words(t, self.width) for t in raw])
        self.codes = codes

    def words(self, a: int, b: int) -> np.ndarray:
        if self.codes is None:
            return np.broadcast_to(self.table[0], (b - a, self.width))
        return self.table[np.asarray(self.codes[a:b], np.intp)]


class Omit:
    """`part` with the rows in `rows` (N,) bool left out (no text at all); the same part left out differently in
    two places of a row is laid out once."""

    def __init__(self, part: Numbers | Text | Omit, rows: np.ndarray) -> None:
        self.part, self.rows, self.width = part, rows, part.width

    def words(self, a: int, b: int) -> np.ndarray:
        words, rows = self.part.words(a, b), self.rows[a:b]
        return np.where(rows[:, None], np.uint32(0), words) if rows.any() else words


Part = Numbers | Text | Omit


TABLE_CELLS = 2 ** 20  # words laid out at a time (4 MB): the text of a chunk is a few MB, whatever the clip length


def table_chunks(parts: Sequence[Part], rows: int) -> Iterator[np.ndarray]:
    """The text of `rows` rows, each the concatenation of `parts` in order, as a few-MB chunk of rows at a time
    (uint8 arrays, bytes-like: write each as it comes, the whole text is never held)."""
    cells = sum(p.width for p in parts) or 1
    step = max(1, TABLE_CELLS // cells)
    for a in range(0, rows, step):
        b = min(rows, a + step)
        grid = np.concatenate([p.words(a, b) for p in parts], axis=1).view(np.uint8).reshape(-1)
        # the padding bytes dropped by numpy, not `bytes.translate`: as fast alone, and numpy lets go of the GIL, so
        # writers in threads (`lift.export_all`) run side by side (2 cores: 2.3x one thread; translate: 1.1x)
        yield np.compress(grid != 0, grid)


def write_table(fh: IO[bytes], parts: Sequence[Part], rows: int) -> None:
    """Write the rows of `parts` to `fh` a chunk at a time (`table_chunks`): memory does not grow with `rows`."""
    for chunk in table_chunks(parts, rows):
        fh.write(chunk)
