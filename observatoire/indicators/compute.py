"""Compute the catalogue's indicators for one month, from `clean.*` and `ref.*` only."""

from __future__ import annotations

import duckdb

from observatoire.core import catalogue, progress, warehouse
from observatoire.indicators.perimeter import compute_base, has_base


class PrivacyError(RuntimeError):
    """A listing would name or locate a partially diffusible unit: refresh stopped."""


def reads_base(name: str) -> bool:
    return "clean.base_communale" in warehouse.sql_text("indicators", name)


def compute_indicator(con: duckdb.DuckDBPyConnection, name: str, mois: str) -> int:
    # an indicator computed alone (a test, a benchmark) still finds the month's cells; an
    # absent month would make its cube silently empty
    if reads_base(name) and not has_base(con, mois):
        compute_base(con, mois)
    # Row order of an indicator table means nothing (publication sorts), and keeping it makes
    # DuckDB hold aggregates in memory instead of spilling them: measured out of memory
    # nationally. The raw layer keeps the setting (file order decides which copy is first).
    con.execute("set preserve_insertion_order = false")
    try:
        n = warehouse.replace_month(con, "indicators", name, mois)
    finally:
        con.execute("set preserve_insertion_order = true")
    if name == "annuaire_ess":
        check_privacy(con, mois)
    return n


def compute_all(con: duckdb.DuckDBPyConnection, mois: str) -> dict[str, int]:
    """Every indicator of the catalogue, in its order; progress said per indicator done.

    The month's per-commune cells are built first, from the perimeter as it is now. Nationally
    an indicator takes seconds to tens of seconds: the count done, the time so far and the
    time left tell a long step from a stuck one. No rate: « 0,2 indicateurs/s » would say less
    than the elapsed time.
    """
    names = list(catalogue.indicators())
    counts: dict[str, int] = {}
    compute_base(con, mois)
    with progress.task(
        "Calcul des indicateurs", total=len(names), unit="indicateurs", rate=False
    ) as p:
        for name in names:
            counts[name] = compute_indicator(con, name, mois)
            p.advance(note=f"{name} calculé")
    return counts


def check_privacy(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """Refuse a directory holding a unit that is not diffusible at both levels.

    Independent of the SQL that builds the directory: the statuses are read again from the
    cleaned SIRENE rows, so that a later change of the SQL cannot leak a `P` unit unnoticed.
    A failed check empties the month's directory before raising.
    """
    leaked = con.execute(
        """
        select a.siret
        from indicators.annuaire_ess as a
        left join clean.sirene_etablissements as e on e.mois = a.mois and e.siret = a.siret
        left join clean.sirene_unites_legales as u on u.mois = a.mois and u.siren = a.siren
        where a.mois = $mois
          and (e.statut_diffusion is distinct from 'O' or u.statut_diffusion is distinct from 'O')
        limit 5
        """,
        {"mois": mois},
    ).fetchall()
    if leaked:
        con.execute("delete from indicators.annuaire_ess where mois = $mois", {"mois": mois})
        raise PrivacyError(
            "annuaire_ess contenait des établissements non diffusibles (statut P), "
            "annuaire du mois vidé : " + ", ".join(r[0] for r in leaked)
        )
