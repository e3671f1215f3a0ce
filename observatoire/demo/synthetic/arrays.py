"""Vectorised builders of string columns: digits and Luhn keys, dictionaries, masks, dates.

A national stock has ~42 M establishment rows, so no column is built row by row in Python:
values are numpy arrays of integers turned into pyarrow strings through dictionaries, byte
matrices and pyarrow.compute. The legal units, the establishments and the defects share these.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from observatoire.demo.synthetic.context import _Context

_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int32)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of non-negative integers, zero-padded.

    One divmod pass per digit on a 1-D array (uint32 when it fits) is ~10x faster than
    broadcasting divisions over an (n, width) int64 matrix.
    """
    out = np.empty((len(values), width), dtype=np.uint8)
    x = values.astype(np.uint32 if width <= 9 else np.uint64)
    ten = x.dtype.type(10)
    for i in range(width - 1, -1, -1):
        x, r = np.divmod(x, ten)
        out[:, i] = r
    return out


def _from_matrix(m: np.ndarray, keep: np.ndarray | None = None) -> pa.StringArray:
    """StringArray whose i-th value is row i of an ASCII byte matrix (only `keep` bytes)."""
    n, width = m.shape
    if keep is None:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        data = np.ascontiguousarray(m).ravel()
    else:
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        data = m[keep]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _fixed(values: np.ndarray, width: int) -> pa.StringArray:
    """Zero-padded decimal strings (denomination numbers, NIC sequences...)."""
    return _from_matrix(_digits(values, width) + 48)


def _plain(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Decimal strings without leading zeros; null (written empty) where not `valid`."""
    mask = None if valid is None else ~valid
    return pc.cast(pa.array(values, mask=mask), pa.string())


_DIGIT_DICT = pa.array([str(d) for d in range(10)])


def _decimal1(tenths: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Numbers with one decimal ("652345.1") from integer tenths; null where not `valid`."""
    return pc.binary_join_element_wise(
        _plain(tenths // 10, valid), _take(_DIGIT_DICT, tenths % 10), "."
    )


def _sparse(mask: np.ndarray, build: Callable[[np.ndarray], pa.Array]) -> pa.Array | pa.Scalar:
    """A column filled only where `mask` holds, built from those rows alone (`build(rows)`).

    Rare fields (cedex, enseignes, RNA numbers...) cost a pass over a few rows instead of all.
    """
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return pa.scalar("")
    values = pa.concat_arrays([pa.array([""]), build(rows).cast(pa.string())])
    idx = np.zeros(len(mask), dtype=np.int32)
    idx[rows] = np.arange(1, rows.size + 1, dtype=np.int32)
    return pc.take(values, pa.array(idx))


def _letters(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(65, 91, size=(n, width), dtype=np.uint8)


def _take(dictionary: pa.Array, idx: np.ndarray) -> pa.Array:
    return pc.take(dictionary, pa.array(idx.astype(np.int32, copy=False)))


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Small code arrays (0, 1, 2...) to their labels ("O"/"P", "A"/"F"...)."""
    return _take(pa.array(labels, pa.string()), codes)


def _where(mask: np.ndarray, value: str | pa.Array, other: pa.Array) -> pa.Array:
    if not mask.any():
        return other
    return pc.if_else(pa.array(mask), value, other)


def _csv_escape(arr: pa.Array) -> pa.Array:
    """Quote the values that need it (comma, quote, line break), as INSEE's files do."""
    needs = pc.match_substring_regex(arr, r'[,"\r\n]')
    if not pc.any(needs).as_py():
        return arr
    quoted = pc.binary_join_element_wise(
        pa.scalar('"'), pc.replace_substring(arr, '"', '""'), pa.scalar('"'), ""
    )
    return pc.if_else(needs, quoted, arr)


def _days_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform day in [lo, hi] (hi >= lo)."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _days(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


def _years(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _luhn_key(m: np.ndarray) -> np.ndarray:
    """Key digit making the payload digit matrix `m` (n, k) Luhn-valid once appended."""
    k = m.shape[1]
    total = np.zeros(len(m), dtype=np.int32)
    for j in range(k):
        total += _LUHN_DOUBLE[m[:, j]] if (k - 1 - j) % 2 == 0 else m[:, j]
    return ((10 - total % 10) % 10).astype(np.uint8)


def _timestamps(ctx: _Context, rng: np.random.Generator, debut: np.ndarray) -> pa.Array:
    """dateDernierTraitement: within the last years, never before the last period's start.

    40 % of the rows share one mass-update day (INSEE reprocesses the whole stock at times).
    """
    n = len(debut)
    end = ctx.end_day
    lo = np.clip(np.maximum(debut, end - 6 * 365), None, end)
    day = _days_between(rng, lo, np.full(n, end))
    mass_day = end - 180
    mass = (rng.random(n) < 0.4) & (debut <= mass_day)
    day = np.where(mass, mass_day, day)
    secs = np.where(mass, rng.integers(5 * 3600, 9 * 3600, n), rng.integers(0, 86_400, n))
    return pc.binary_join_element_wise(
        _take(ctx.date_dict, day - ctx.day0 + 1), _take(ctx.time_dict, secs), "T"
    )


def _nd(p: np.ndarray, arr: pa.Array) -> pa.Array:
    """INSEE masks the address and name fields of partially diffusible units with [ND]."""
    return _where(p, "[ND]", arr)
