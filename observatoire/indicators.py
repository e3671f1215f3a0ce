"""Compute the catalogue's indicators for one month, from `clean.*` and `ref.*` only."""

from __future__ import annotations

import duckdb

from observatoire import catalogue, warehouse


def compute_perimeter(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    return warehouse.replace_month(con, "clean", "etablissements_perimetre", mois)


def compute_indicator(con: duckdb.DuckDBPyConnection, name: str, mois: str) -> int:
    return warehouse.replace_month(con, "indicators", name, mois)


def compute_all(con: duckdb.DuckDBPyConnection, mois: str) -> dict[str, int]:
    return {name: compute_indicator(con, name, mois) for name in catalogue.indicators()}
