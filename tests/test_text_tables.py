"""`io.Numbers` / `Text` / `Omit` / `Columns` text tables and `io.write_npz`: the text equals Python's own
formatting cell by cell, whatever the chunking, and the npz reads back member for member."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from bonelift import io
from bonelift.io import Columns, Numbers, Omit, Text, read_npz_arrays, table_chunks


def _python_text(values: np.ndarray, decimals: list[int], seps: list[str], nan: str) -> bytes:
    """The reference: `"%.{d}f"` per cell (rounding numpy's round-half-even of value * 10**d, as `Numbers` says;
    a negative zero without its sign)."""
    out = []
    for row in values:
        for v, d, sep in zip(row, decimals, seps):
            if not np.isfinite(v):
                out.append(nan + sep)
                continue
            scaled = np.round(abs(v) * 10.0 ** d)
            text = f"{scaled / 10.0 ** d:.{d}f}" if scaled < 2**53 else f"{abs(v):.{d}f}"
            out.append(("-" if v < 0 and scaled > 0 else "") + text + sep)
    return "".join(out).encode()


@pytest.mark.parametrize("seed", range(6))
def test_numbers_equal_python_formatting_at_any_chunk(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    n, c = 300, 7
    values = rng.normal(0, 10.0 ** rng.integers(-2, 7, c), (n, c))
    values[rng.random((n, c)) < 0.05] = np.nan
    values[rng.random((n, c)) < 0.02] = -np.inf
    values[rng.random((n, c)) < 0.05] = -1e-12  # a negative zero once rounded
    values[0, 0], values[1, 0], values[2, 0] = -9999.5, 123456789.25, -1000.0  # groups of 4 digits, a lone sign
    decimals = [int(d) for d in rng.integers(0, io.MAX_DECIMALS + 1, c)]
    seps = [str(s) for s in rng.choice([",", "\t", " ", "],["], c - 1)] + ["\n"]
    nan = str(rng.choice(["NaN", "null", ""]))
    for cells in (16, 1000, 2**19):  # a row at a time .. the whole table in one chunk
        monkeypatch.setattr(io, "TABLE_CELLS", cells)
        got = b"".join(table_chunks([Numbers(values, decimals, seps, nan)], n))
        assert got == _python_text(values, decimals, seps, nan)


def test_text_omit_and_columns_make_rows() -> None:
    values = np.array([[1.5, -2.25], [np.nan, 0.0], [3.0, 4.125]])
    made = []

    def rows(a: int, b: int) -> np.ndarray:
        made.append((a, b))
        return values[a:b]

    parts = [Text(["ok:", "bad:"], np.array([0, 1, 0])), Omit(Numbers(Columns(3, 2, rows), 2, [",", ";"], "null"),
                                                                 np.array([False, True, False])), Text(["\n"])]
    assert b"".join(table_chunks(parts, 3)) == b"ok:1.50,-2.25;\nbad:\nok:3.00,4.12;\n"
    assert made == [(0, 3)]  # rows made per chunk, not kept whole


def test_numbers_refuse_what_they_cannot_write() -> None:
    with pytest.raises(ValueError, match="separators"):
        Numbers(np.zeros((2, 3)), 2, [","])
    with pytest.raises(ValueError, match="decimals"):
        Numbers(np.zeros((2, 1)), io.MAX_DECIMALS + 1, ["\n"])


def test_write_npz_is_an_uncompressed_npz_read_back_exactly(tmp_path: Path) -> None:
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "names": np.array(["x", "yz"]), "n": np.int64(7)}
    io.write_npz(tmp_path / "x.npz", iter(arrays.items()))
    with zipfile.ZipFile(tmp_path / "x.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    back = read_npz_arrays(tmp_path / "x.npz")
    assert list(back) == list(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == np.asarray(value).dtype and np.array_equal(back[key], value)
    with np.load(tmp_path / "x.npz") as z:  # numpy's own reader
        assert np.array_equal(z["a"], arrays["a"])
