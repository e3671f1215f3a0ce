"""The stock month (AAAA-MM), validated once, where it enters: the CLI, `refresh()`, Dagster.

A month becomes a partition key, a table suffix, a folder name and the « mois » of a manifest:
checked any later, « 2027-13 » is published as a month, and « 2026-13 » makes the cleaning step
blame the data for the user's typo.
"""

from __future__ import annotations

import datetime as dt
import re

_FORMAT = re.compile(r"(\d{4})-(\d{2})")

# SIRENE exists since 1973; past 2999 is a typo, and month arithmetic must never overflow a date.
FIRST_YEAR, LAST_YEAR = 1973, 2999

EXAMPLE = "par exemple 2026-11 pour novembre 2026"


class InvalidMonthError(ValueError):
    """The month asked for is not a calendar month written AAAA-MM."""


def parse_mois(text: object) -> str:
    """The month as the rest of the code writes it, or a French sentence saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidMonthError(f"Mois {text!r} invalide : attendu AAAA-MM ({EXAMPLE}).")
    value = text.strip()
    match = _FORMAT.fullmatch(value)
    if match is None:
        raise InvalidMonthError(
            f"Mois « {text} » mal écrit : attendu AAAA-MM, l'année sur quatre chiffres et le "
            f"mois sur deux ({EXAMPLE})."
        )
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise InvalidMonthError(f"Mois « {text} » impossible : le mois va de 01 à 12 ({EXAMPLE}).")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidMonthError(
            f"Mois « {text} » impossible : l'année doit être comprise entre {FIRST_YEAR} "
            f"(création du répertoire SIRENE) et {LAST_YEAR} ({EXAMPLE})."
        )
    return value


def month_start(mois: str) -> dt.date:
    year, month = (int(x) for x in parse_mois(mois).split("-"))
    return dt.date(year, month, 1)


def month_end(mois: str) -> dt.date:
    """Last day of the month: no date in the stock of that month can be later."""
    start = month_start(mois)
    following = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def stock_window(mois: str) -> tuple[dt.date, dt.date]:
    """Where the latest treatment date of the stock of `mois` falls.

    INSEE extracts the stock of month M at the very end of M-1 or at the start of M, so its
    latest `dateDernierTraitement*` lies between the first day of M-1 and the last day of M.
    """
    start = month_start(mois)
    previous = dt.date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
    return previous, month_end(mois)
