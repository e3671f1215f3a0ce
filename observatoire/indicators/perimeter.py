"""The month's ESS perimeter: every establishment with the rule that put it in or out.

Built once per month from the cleaned stock (`sql/clean/etablissements_perimetre.sql`); every
indicator reads it, so it belongs to this layer even though it lives in the `clean` schema.
"""

from __future__ import annotations

import duckdb

from observatoire.core import warehouse


def compute_perimeter(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    return warehouse.replace_month(con, "clean", "etablissements_perimetre", mois)
