"""The month's ESS perimeter: every establishment with the rule that put it in or out.

Built once per month from the cleaned stock (`sql/clean/etablissements_perimetre.sql`); every
indicator reads it, so it belongs to this layer even though it lives in the `clean` schema.
"""

from __future__ import annotations

import duckdb

from observatoire.core import warehouse


def compute_perimeter(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    """The perimeter, then its per-commune cells (`sql/clean/base_communale.sql`).

    The cells are built here, once, because four indicators roll up from them: each used to
    re-read the month's perimeter (42 M rows nationally) to count the same cells.
    """
    n = warehouse.replace_month(con, "clean", "etablissements_perimetre", mois)
    warehouse.replace_month(con, "clean", "base_communale", mois)
    return n
