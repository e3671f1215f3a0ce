"""The levels a month is published at: the territory's own, and the units containing it.

A refresh publishes the territory, its communes and its units (`ref.territoire_niveaux`), and,
for comparison, the EPT or EPCI, départements and régions holding part of it (`englobant`) —
but only when the month's stock covers them: a regional extract or the demo's stock holds the
territory's communes and few others, and a région's figure counted over them would be the
territory's. Coverage is judged once the establishments are cleaned
(`sql/clean/couverture_niveaux.sql`); every indicator then rolls up over
`clean.niveaux_publies`, the month's levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from observatoire.core import warehouse

# Share of a containing unit's communes outside the territory where the month's stock must
# locate at least one establishment for the unit to be published. The national stock locates
# establishments in practically every commune (each is a legal unit with its town hall);
# an extract covers a unit entirely or hardly at all. The margin is for the few communes with
# nothing in the stock (villages without inhabitants, a commune created on 1 January).
COVERAGE_MIN = 0.95


@dataclass(frozen=True)
class Coverage:
    """How much of a unit containing the territory the month's stock covers."""

    niveau: str
    code: str
    label: str
    communes: int  # all the unit's communes
    outside: int  # those outside the territory, on which coverage is judged
    covered: int  # of those, communes where the stock locates at least one establishment
    published: bool

    @property
    def key(self) -> str:
        return f"{self.niveau}:{self.code} {self.label}"

    @property
    def share(self) -> float:
        return self.covered / self.outside if self.outside else 1.0

    def reason_fr(self) -> str:
        """Why the unit is published or not, in a sentence for the CLI and Dagster."""
        what = (
            f"{self.label} ({self.niveau}:{self.code}) : établissements dans {self.covered} "
            f"des {self.outside} communes hors du territoire ({_pct(self.share)})"
        )
        if self.published:
            return what + ", publié pour comparaison"
        return (
            what + f", non publié (moins de {_pct(COVERAGE_MIN)} : le stock du mois ne couvre "
            "pas cette unité, son chiffre serait celui du seul territoire)"
        )


def _pct(share: float) -> str:
    """A share as French readers write it, rounded down: 94.9 % is not « 95 % »."""
    return f"{math.floor(share * 100 + 1e-9)}\u202f%"


def compute_levels(
    con: duckdb.DuckDBPyConnection, mois: str, share_min: float = COVERAGE_MIN
) -> list[Coverage]:
    """Write the month's coverage (`clean.couverture_niveaux`) and levels
    (`clean.niveaux_publies`); return the coverage of each unit containing the territory."""
    warehouse.replace_month(con, "clean", "couverture_niveaux", mois, {"part_min": share_min})
    warehouse.replace_month(con, "clean", "niveaux_publies", mois)
    return coverage(con, mois)


def ensure_levels(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """The month's levels, computed now if the step `perimetre` never wrote them (a month
    cleaned by an earlier version, re-run from the indicators in Dagster): without them every
    indicator of the month would be silently empty."""
    if warehouse.table_exists(con, "clean", "niveaux_publies"):
        (n,) = con.execute(  # type: ignore[misc]
            "select count(*) from clean.niveaux_publies where mois = $mois", {"mois": mois}
        ).fetchone()
        if n:
            return
    compute_levels(con, mois)


def coverage(con: duckdb.DuckDBPyConnection, mois: str) -> list[Coverage]:
    """The month's coverage as written, largest units first (nothing before the first run)."""
    if not warehouse.table_exists(con, "clean", "couverture_niveaux"):
        return []
    rows = con.execute(
        "select niveau, code_territoire, libelle_territoire, communes, "
        "communes_hors_territoire, communes_couvertes, publie from clean.couverture_niveaux "
        "where mois = $mois order by rang desc, code_territoire",
        {"mois": mois},
    ).fetchall()
    return [Coverage(*row) for row in rows]
