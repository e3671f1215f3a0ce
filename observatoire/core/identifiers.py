"""SIREN / SIRET normalisation and key checks, in one place.

Identifiers arrive with spaces, dots, lost leading zeros (spreadsheets) or typos. They are text,
never numbers, and every layer relies on the same rules, so the rules live here only. The
Polars expressions are the ones the cleaning step uses on millions of rows; the scalar functions
serve the CLI, questionnaires and tests.
"""

from __future__ import annotations

import re

import polars as pl

# La Poste's establishments share SIREN 356000000 and are numbered sequentially: their SIRETs do
# not satisfy the Luhn key. INSEE documents the exception: their digit sum is a multiple of 5.
LA_POSTE_SIREN = "356000000"

_NON_DIGITS = re.compile(r"[\s.\-_/]")


def normalise(value: str | None, length: int) -> str | None:
    """Strip separators and restore leading zeros lost by spreadsheets; None if not digits."""
    if value is None:
        return None
    digits = _NON_DIGITS.sub("", str(value))
    if not digits or not digits.isdigit() or len(digits) > length:
        return None
    return digits.zfill(length)


def normalise_declared(value: str | None, length: int) -> str | None:
    """An identifier typed by a person: `length` digits, or one fewer (a lost leading zero).

    Stricter than `normalise`, which pads any short number: in a form's SIRET box, ten digits
    are a phone number, not a SIRET to pad, and must not travel further as one.
    """
    if value is None:
        return None
    digits = _NON_DIGITS.sub("", str(value))
    if not digits.isdigit() or len(digits) not in (length, length - 1):
        return None
    return digits.zfill(length)


def luhn_valid(digits: str) -> bool:
    """Luhn key as used by INSEE for SIREN (9 digits) and SIRET (14 digits)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def siren_valid(siren: str | None) -> bool:
    return siren is not None and len(siren) == 9 and luhn_valid(siren)


def siret_valid(siret: str | None) -> bool:
    """SIRET key check, with La Poste's documented exception."""
    if siret is None or len(siret) != 14 or not siret.isdigit():
        return False
    if siret.startswith(LA_POSTE_SIREN):
        return sum(int(c) for c in siret) % 5 == 0 or luhn_valid(siret)
    return luhn_valid(siret)


def _digits(col: pl.Expr, length: int) -> list[pl.Expr]:
    """Digits of a fixed-length digit string, right to left, by integer arithmetic.

    Integer division is cheaper than slicing strings: this runs on every SIRET nationally.
    """
    value = col.cast(pl.Int64, strict=False)
    return [(value // (10**k)) % 10 for k in range(length)]


def _luhn_sum_expr(col: pl.Expr, length: int) -> pl.Expr:
    terms = []
    for k, d in enumerate(_digits(col, length)):
        if k % 2 == 1:
            d = d * 2
            d = d - 9 * (d > 9).cast(pl.Int64)
        terms.append(d)
    return pl.sum_horizontal(terms)


def _well_formed(col: pl.Expr, length: int) -> pl.Expr:
    return (col.str.len_bytes() == length) & col.str.contains(r"^\d+$")


def luhn_valid_expr(col: pl.Expr, length: int) -> pl.Expr:
    """Polars version of `luhn_valid` for a column of `length`-digit strings."""
    return (_well_formed(col, length) & (_luhn_sum_expr(col, length) % 10 == 0)).fill_null(False)


def siret_valid_expr(col: pl.Expr) -> pl.Expr:
    """Polars version of `siret_valid`, La Poste exception included."""
    la_poste = (
        col.str.starts_with(LA_POSTE_SIREN)
        & _well_formed(col, 14)
        & (pl.sum_horizontal(_digits(col, 14)) % 5 == 0)
    )
    return (luhn_valid_expr(col, 14) | la_poste).fill_null(False)


def normalise_expr(col: pl.Expr, length: int) -> pl.Expr:
    """Polars version of `normalise`: separators removed, zero-padded, null if not digits."""
    digits = col.str.replace_all(r"[\s.\-_/]", "")
    ok = digits.str.contains(r"^\d+$") & (digits.str.len_chars() <= length)
    return pl.when(ok).then(digits.str.zfill(length)).otherwise(None)
