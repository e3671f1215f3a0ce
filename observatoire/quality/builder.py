"""The builder that turns each check of a suite into a Great Expectations expectation.

The suites (`sirene_suites`, `source_suites`) state their checks in a few words each; the
builder gives every expectation its stable name, its role (blocking or informative) and the
French description Data Docs and Dagster show, and keeps the SQL of unexpected-rows checks so
that the runner (`gx`) can draw a sample of the failing rows.

Regex expectations do not exist for the DuckDB dialect; identifier formats and nomenclature
membership are SQL (`UnexpectedRowsExpectation`). Every SQL check returns identifiers and codes
only, and masks the identifiers of units that are not diffusible as `[ND]` (docs/methode.md,
part 10): counts include them, samples and Data Docs never list them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any

from observatoire.core.mois import month_end

# what an SQL check selects instead of the identifier of a unit that is not diffusible
MASK = "[ND]"

NO_REFERENCE = "aucun mois précédent validé : contrôle du volume sans objet"


@dataclass(frozen=True)
class Check:
    """One check of a suite, with its GX expectation once built."""

    name: str
    description: str
    column: str | None
    blocking: bool
    expectation: Any = None  # a GX expectation, or None for a check with nothing to run
    note: str | None = None  # why a check without expectation passes
    query: str | None = None  # the SQL of an unexpected-rows check, to draw its sample
    # an aggregate over the month's rows that is 0 when the check holds (`count(*) filter
    # (where …)`): every tally of a suite is computed in one scan (`Builder.tally`)
    tally: str | None = None


def pct(share: float) -> str:
    """A share as French readers write it: 2 %, 0,5 %."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".").replace(".", ",") + " %"


def literal_date(d: dt.date) -> str:
    return f"date '{d.isoformat()}'"


def masked(identifier: str, diffusible: str) -> str:
    """An identifier, or `[ND]` when its unit is not diffusible."""
    return f"case when {diffusible} then {identifier} else '{MASK}' end as {identifier}"


def _side(query: str) -> str:
    """A check on another table of the same asset (its values, its reading log).

    GX wants every unexpected-rows query to name its batch, and prints a warning otherwise; the
    unused CTE names it without changing what the query finds.
    """
    return "with _lot as (select 1 from {batch} limit 1) " + query


class Builder:
    """Turns check definitions into GX expectations carrying their name, role and description."""

    def __init__(self, gx: Any) -> None:
        self.gx = gx
        self.checks: list[Check] = []

    def add(
        self,
        name: str,
        description: str,
        column: str | None,
        expectation: Any,
        *,
        blocking: bool = True,
        query: str | None = None,
        tally: str | None = None,
    ) -> None:
        self.checks.append(
            Check(
                name,
                description,
                column,
                blocking,
                self._described(expectation, name, description, blocking),
                query=query,
                tally=tally,
            )
        )

    @staticmethod
    def _described(expectation: Any, name: str, description: str, blocking: bool) -> Any:
        # the description is what Data Docs show; the meta ties GX's result back to the check
        expectation.description = description
        expectation.meta = {"controle": name, "bloquant": blocking}
        return expectation

    def tally(self, con: Any, source: str) -> dict[str, int]:
        """Count the failing rows of every tallied check in one scan of the month.

        Each SQL check used to scan the month on its own (a dozen scans of 5 M rows: 9 s on a
        région, measured). A check whose tally is 0 keeps its expectation, on its query made
        empty (`where false`, answered without reading the month): GX still runs and records
        it. A check with failing rows keeps its own query, which GX runs and samples.
        """
        tallied = [i for i, c in enumerate(self.checks) if c.tally is not None]
        if not tallied:
            return {}
        batch = f"(select * from {source})"
        row = con.execute(
            "select "
            + ", ".join(str(self.checks[i].tally).replace("{batch}", batch) for i in tallied)
            + f" from {source}"
        ).fetchone()
        counts = {}
        for i, n in zip(tallied, row, strict=True):
            c = self.checks[i]
            counts[c.name] = int(n or 0)
            if counts[c.name] == 0 and c.query is not None:
                empty = f"select * from ({c.query}) where false"
                expectation = self.gx.expectations.UnexpectedRowsExpectation(
                    unexpected_rows_query=empty
                )
                self.checks[i] = replace(
                    c,
                    expectation=self._described(expectation, c.name, c.description, c.blocking),
                    query=empty,
                )
        return counts

    def sql(
        self,
        name: str,
        description: str,
        column: str | None,
        query: str,
        *,
        blocking: bool = True,
        failing: str | None = None,
    ) -> None:
        """An unexpected-rows check; `failing` is its condition on one row of the month, when
        it has one, so that it is tallied with the others in one scan."""
        if "{batch}" not in query:
            query = _side(query)
        self.add(
            name,
            description,
            column,
            self.gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=query),
            blocking=blocking,
            query=query,
            tally=f"count(*) filter (where {failing})" if failing is not None else None,
        )

    def skip(self, name: str, description: str, column: str | None, note: str) -> None:
        self.checks.append(Check(name, description, column, True, None, note))

    # shared checks ------------------------------------------------------------------

    def columns(self, expected: list[str]) -> None:
        self.add(
            "colonnes",
            "colonnes attendues, dans l'ordre",
            None,
            self.gx.expectations.ExpectTableColumnsToMatchOrderedList(column_list=expected),
        )

    def types(self, expected: list[tuple[str, str]]) -> None:
        values = ", ".join(f"('{c}', '{t}')" for c, t in expected)
        self.sql(
            "types",
            "types de colonnes attendus",
            None,
            "select a.column_name as colonne, e.type_attendu, a.column_type as type_observe "
            "from (describe select * from {batch}) as a "
            f"join (values {values}) as e(colonne, type_attendu) on e.colonne = a.column_name "
            "where a.column_type <> e.type_attendu",
        )

    def month(self, mois: str) -> None:
        self.add(
            "mois",
            "toutes les lignes portent le mois de la partition",
            "mois",
            self.gx.expectations.ExpectColumnValuesToBeInSet(column="mois", value_set=[mois]),
        )

    def not_empty(self) -> None:
        self.add(
            "non_vide",
            "au moins une ligne",
            None,
            self.gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        )

    def volume(self, reference: tuple[str, int] | None, band: tuple[float, float]) -> None:
        low, high = band
        description = (
            f"nombre de lignes entre {pct(low)} et {pct(high)} de celui du dernier mois validé"
        )
        if reference is None:
            self.skip("volume", description, None, NO_REFERENCE)
            return
        ref_mois, ref_rows = reference
        self.add(
            "volume",
            description + f" ({ref_mois} : {ref_rows} lignes)",
            None,
            self.gx.expectations.ExpectTableRowCountToBeBetween(
                min_value=math.ceil(ref_rows * low), max_value=math.floor(ref_rows * high)
            ),
        )

    def unique(self, identifier: str, diffusible: str) -> None:
        self.sql(
            f"{identifier}_unique",
            f"{identifier} unique dans le mois",
            identifier,
            f"select {masked(identifier, diffusible)} from {{batch}} where {identifier} in "
            f"(select {identifier} from {{batch}} group by {identifier} having count(*) > 1)",
        )
        self.checks[-1] = replace(
            self.checks[-1], tally=f"count({identifier}) - count(distinct {identifier})"
        )

    def digits(self, identifier: str, width: int, diffusible: str) -> None:
        failing = (
            f"length({identifier}) <> {width} or not regexp_full_match({identifier}, '[0-9]+')"
        )
        self.sql(
            f"{identifier}_format",
            f"{identifier} de {width} chiffres",
            identifier,
            f"select {masked(identifier, diffusible)} from {{batch}} where {failing}",
            failing=failing,
        )

    def in_reference(
        self,
        name: str,
        description: str,
        column: str,
        ref: str,
        identifier: str,
        diffusible: str,
        *,
        when: str = "true",
    ) -> None:
        table, ref_column = ref.rsplit(".", 1)
        failing = (
            f"{column} is not null and ({when}) and {column} not in "
            f"(select {ref_column} from {table} where {ref_column} is not null)"
        )
        self.sql(
            name,
            description,
            column,
            f"select {masked(identifier, diffusible)}, {column} from {{batch}} where {failing}",
            failing=failing,
        )

    def codes(
        self, column: str, allowed: tuple[str, ...], identifier: str, diffusible: str
    ) -> None:
        listed = ", ".join(f"'{c}'" for c in allowed)
        self.sql(
            f"{column}_valeurs",
            f"{column} renseigné et parmi {', '.join(allowed)}",
            column,
            f"select {masked(identifier, diffusible)}, {column} from {{batch}} "
            f"where {column} is null or {column} not in ({listed})",
            failing=f"{column} is null or {column} not in ({listed})",
        )

    def created_before(self, mois: str, identifier: str, diffusible: str) -> None:
        self.sql(
            "date_creation_passee",
            "date de création au plus tard le dernier jour du mois",
            "date_creation",
            f"select {masked(identifier, diffusible)}, date_creation from {{batch}} "
            f"where date_creation > {literal_date(month_end(mois))}",
            failing=f"date_creation > {literal_date(month_end(mois))}",
        )

    def quarantine(self, rejects_table: str | None, mois: str, rate: float) -> None:
        rejects = (
            f"(select count(*) from {rejects_table} where mois = '{mois}')"
            if rejects_table
            else "0"
        )
        self.sql(
            "taux_quarantaine",
            f"part des lignes mises en quarantaine au plus {pct(rate)}",
            None,
            f"select rejets, lignes from (select {rejects} as rejets, "
            "(select count(*) from {batch}) as lignes) "
            f"where rejets > {rate!r} * (rejets + lignes)",
        )
