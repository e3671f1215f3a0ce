"""The month's ESS perimeter: every establishment with the rule that put it in or out.

Built once per month from the cleaned stock (`sql/clean/etablissements_perimetre.sql`); every
indicator reads it, so it belongs to this layer even though it lives in the `clean` schema.
"""

from __future__ import annotations

import duckdb

from observatoire.core import warehouse


def compute_perimeter(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    return warehouse.replace_month(con, "clean", "etablissements_perimetre", mois)


def compute_base(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    """The month's per-commune cells (`sql/clean/base_communale.sql`), from its perimeter.

    Four cubes roll up from them instead of each re-reading the perimeter (42 M rows
    nationally). They are built as the indicators start, not with the perimeter, so that they
    always come from the perimeter the indicators read: a re-run of the indicators alone in
    Dagster, or a month whose perimeter an earlier version built, gets them too.
    """
    return warehouse.replace_month(con, "clean", "base_communale", mois)


def has_base(con: duckdb.DuckDBPyConnection, mois: str) -> bool:
    if not warehouse.table_exists(con, "clean", "base_communale"):
        return False
    (n,) = con.execute(  # type: ignore[misc]
        "select count(*) from clean.base_communale where mois = $mois", {"mois": mois}
    ).fetchone()
    return bool(n)
