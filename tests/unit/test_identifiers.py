"""SIREN/SIRET normalisation and keys, scalar and vectorised versions agreeing."""

from __future__ import annotations

import polars as pl
import pytest

from observatoire.core.identifiers import (
    luhn_valid,
    luhn_valid_expr,
    normalise,
    normalise_expr,
    siren_valid,
    siret_valid,
    siret_valid_expr,
)

CASES_NORMALISE = [
    ("552 100 554", 9, "552100554"),
    ("552.100.554", 9, "552100554"),
    ("55210055", 9, "055210055"),  # leading zero lost by a spreadsheet
    ("552100554 00017", 14, "55210055400017"),
    ("", 9, None),
    ("ABC", 9, None),
    ("1234567890", 9, None),  # too long
    (None, 9, None),
]


@pytest.mark.parametrize(("raw", "length", "expected"), CASES_NORMALISE)
def test_normalise(raw, length, expected):
    assert normalise(raw, length) == expected
    got = pl.DataFrame({"x": [raw]}, schema={"x": pl.String}).select(
        normalise_expr(pl.col("x"), length)
    )["x"][0]
    assert got == expected


CASES_KEYS = [
    # real SIRENs (Danone 552032534, La Poste 356000000) and SIRETs
    ("552032534", True),
    ("552032535", False),
    ("356000000", True),
    ("55203253400646", True),
    ("55203253400647", False),
    ("732829320", True),
    ("73282932000074", True),
]


@pytest.mark.parametrize(("digits", "valid"), CASES_KEYS)
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid
    got = pl.DataFrame({"x": [digits]}).select(luhn_valid_expr(pl.col("x"), len(digits)))["x"][0]
    assert got is valid


def test_siren_valid_requires_nine_digits():
    assert siren_valid("552032534")
    assert not siren_valid("55203253")
    assert not siren_valid(None)


def _digit_sum(s: str) -> int:
    return sum(int(c) for c in s)


def test_la_poste_exception():
    """La Poste's SIRETs fail the Luhn key; INSEE accepts a digit sum multiple of 5 instead."""
    # find real-shaped La Poste SIRETs: one failing Luhn with digit sum % 5 == 0, one failing both
    accepted = next(
        f"356000000{n:05d}"
        for n in range(1, 10_000)
        if not luhn_valid(f"356000000{n:05d}") and _digit_sum(f"356000000{n:05d}") % 5 == 0
    )
    refused = next(
        f"356000000{n:05d}"
        for n in range(1, 10_000)
        if not luhn_valid(f"356000000{n:05d}") and _digit_sum(f"356000000{n:05d}") % 5 != 0
    )
    assert siret_valid(accepted)
    assert not siret_valid(refused)
    # the exception is La Poste's only: the same NIC on another SIREN is refused
    other = "552032534" + accepted[9:]
    assert siret_valid(other) == luhn_valid(other)
    frame = pl.DataFrame({"s": [accepted, refused, "55203253400646", None, "12"]})
    assert frame.select(siret_valid_expr(pl.col("s")))["s"].to_list() == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_normalise_declared_takes_only_identifier_lengths():
    from observatoire.core.identifiers import normalise_declared

    assert normalise_declared("356 000 000 00048", 14) == "35600000000048"
    assert normalise_declared("1234567890123", 14) == "01234567890123"  # leading zero lost
    assert normalise_declared("06 12 34 56 78", 14) is None  # a phone number, not a SIRET
    assert normalise_declared("12345", 9) is None
    assert normalise_declared("12345678", 9) == "012345678"
