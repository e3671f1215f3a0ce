"""Great Expectations suites for the SIRENE layers, built in code and run on the warehouse.

Each suite validates one partition month of one table (its physical month table), so that a
month is judged on its own rows and the checks cost one scan of that month, not of the history.
The suites are plain Python: the Dagster checks only translate a `SuiteResult`.

GX reaches DuckDB through SQLAlchemy (duckdb-engine). Two things make that work in process:

* The warehouse is already open: a second `duckdb.connect` on the same file with another
  configuration is refused by DuckDB. SQLAlchemy is therefore given connections made from the
  caller's connection (`con.cursor()`), which share its database instance. GX reads what is
  committed; it never writes.
* Out of the box every expectation fails with `list index out of range` (GX issues #10738,
  #11579): GX returns a result from `execute_query` after leaving the `with connection` block,
  and the pool's rollback on release runs on the same DuckDB connection, which discards the
  pending result before GX fetches it. `_adapter()` gives every DBAPI cursor its own DuckDB
  connection, so the rollback on release cannot touch a result not yet read; DuckDB keeps that
  result in its own columnar buffer, and nothing is copied into Python rows.

Regex expectations do not exist for the DuckDB dialect; identifier formats and nomenclature
membership are SQL (`UnexpectedRowsExpectation`). Every SQL check returns identifiers and codes
only, and masks the identifiers of units that are not diffusible as `[ND]` (docs/methode.md,
part 10): counts include them, samples and Data Docs never list them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from observatoire import linkage
from observatoire.core import warehouse
from observatoire.core.mois import month_end, stock_window
from observatoire.sources import questionnaire, reseaux
from observatoire.sources.sirene import RAW_COLUMNS, RAW_TABLES

SIRENE_SUITES: tuple[str, ...] = (
    "raw.sirene_etablissements",
    "raw.sirene_unites_legales",
    "clean.sirene_etablissements",
    "clean.sirene_unites_legales",
    "clean.etablissements_perimetre",
)
# Questionnaire waves and network lists are not monthly: their suites validate the tables as
# they stand and record the verdict under the month being published, which the gate asks about.
# Links are monthly. Samples of these suites carry record ids and codes, never a SIRET: a
# declared SIRET may be that of a unit that is not diffusible.
SOURCE_SUITES: tuple[str, ...] = (
    "raw.questionnaire_cellules",
    "raw.reseaux_cellules",
    "clean.questionnaire_reponses",
    "clean.reseaux_membres",
    "clean.rapprochements",
)
SUITES: tuple[str, ...] = SIRENE_SUITES + SOURCE_SUITES

# the vocabularies are the readers' and the linker's own, so a check can never drift from them
NEEDS = questionnaire.NEEDS
NETWORK_KINDS = reseaux.NETWORK_TYPES
LINK_METHODS = linkage.METHODS
LINK_STATUSES = linkage.STATUSES
# (no braces: GX formats these queries with str.format)
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z][A-Za-z]+"
# not inside a longer number: a SIRET starting with 0 holds ten digits that look like a phone
PHONE_PATTERN = r"(^|[^0-9+])(\+33|0)\s?[1-9]" + r"[\s.-]?[0-9][0-9]" * 4 + r"([^0-9]|$)"

# Rules `sql/clean/etablissements_perimetre.sql` can write in `regle` (a test keeps them in step).
PERIMETER_RULES: tuple[str, ...] = (
    "unite_legale_absente",
    "personne_physique",
    "naf_exclu",
    "categorie_juridique",
    "personne_publique",
    "indicateur_ess_insee",
    "hors_perimetre",
)

# Column types of the clean tables as `observatoire/clean.py` writes them: a change there must be
# a deliberate change here, since indicators and exports rely on these types.
CLEAN_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "sirene_etablissements": (
        ("mois", "VARCHAR"),
        ("siret", "VARCHAR"),
        ("siren", "VARCHAR"),
        ("nic", "VARCHAR"),
        ("statut_diffusion", "VARCHAR"),
        ("date_creation", "DATE"),
        ("tranche_effectifs", "VARCHAR"),
        ("effectif_min", "INTEGER"),
        ("effectif_max", "INTEGER"),
        ("annee_effectifs", "INTEGER"),
        ("etablissement_siege", "BOOLEAN"),
        ("numero_voie", "VARCHAR"),
        ("indice_repetition", "VARCHAR"),
        ("type_voie", "VARCHAR"),
        ("libelle_voie", "VARCHAR"),
        ("code_postal", "VARCHAR"),
        ("libelle_commune", "VARCHAR"),
        ("code_commune", "VARCHAR"),
        ("code_pays_etranger", "VARCHAR"),
        ("x_lambert93", "DOUBLE"),
        ("y_lambert93", "DOUBLE"),
        ("date_debut", "DATE"),
        ("etat_administratif", "VARCHAR"),
        ("enseigne", "VARCHAR"),
        ("denomination_usuelle", "VARCHAR"),
        ("activite_principale", "VARCHAR"),
        ("nomenclature_activite", "VARCHAR"),
        ("naf_division", "VARCHAR"),
        ("naf_section", "VARCHAR"),
        ("caractere_employeur", "VARCHAR"),
        ("activite_principale_naf25", "VARCHAR"),
        ("fichier_source", "VARCHAR"),
    ),
    "sirene_unites_legales": (
        ("mois", "VARCHAR"),
        ("siren", "VARCHAR"),
        ("statut_diffusion", "VARCHAR"),
        ("date_creation", "DATE"),
        ("denomination", "VARCHAR"),
        ("sigle", "VARCHAR"),
        ("identifiant_association", "VARCHAR"),
        ("categorie_juridique", "VARCHAR"),
        ("activite_principale", "VARCHAR"),
        ("nomenclature_activite", "VARCHAR"),
        ("etat_administratif", "VARCHAR"),
        ("economie_sociale_solidaire", "VARCHAR"),
        ("societe_mission", "VARCHAR"),
        ("caractere_employeur", "VARCHAR"),
        ("tranche_effectifs", "VARCHAR"),
        ("annee_effectifs", "INTEGER"),
        ("categorie_entreprise", "VARCHAR"),
        ("nic_siege", "VARCHAR"),
        ("date_debut", "DATE"),
        ("activite_principale_naf25", "VARCHAR"),
        ("fichier_source", "VARCHAR"),
    ),
}

# The only keys a sample may carry: identifiers, codes and facts about the table itself. Every
# SQL check selects from this list already; the filter guards against a future check that would
# not (a name or an address must never reach Dagster's UI or the quality tables).
SAMPLE_KEYS = frozenset(
    {
        "siret",
        "siren",
        "nic",
        "mois",
        "code_commune",
        "activite_principale",
        "nomenclature_activite",
        "tranche_effectifs",
        "categorie_juridique",
        "etat_administratif",
        "statut_diffusion",
        "regle",
        "famille_ess",
        "date_creation",
        "colonne",
        # nomenclature drift: a code and its share are facts about the file, never a unit's
        "code",
        "part",
        "part_max",
        "type_attendu",
        "type_observe",
        "lignes",
        "enregistrements",
        "rejets",
        "date_traitement_max",
        "debut_attendu",
        "fin_attendue",
        "vague",
        "reseau",
        "ligne",
        "reponse_id",
        "membre_id",
        "enregistrement_id",
        "source",
        "cle_source",
        "methode",
        "statut",
        "score",
        "type_reseau",
        "besoin",
        "question",
        "nombre",
    }
)
SAMPLE_SIZE = 10
MASK = "[ND]"

# below this many rows of the territory, the stock-date check warns instead of blocking
STOCK_DATE_MIN_ROWS = 5_000

NO_REFERENCE = "aucun mois précédent validé : contrôle du volume sans objet"


@dataclass
class Outcome:
    """One expectation's verdict, small and JSON-safe, ready for Dagster metadata."""

    name: str  # stable key of the check within its suite, e.g. "siret_unique"
    expectation: str  # GX expectation type, e.g. "unexpected_rows_expectation"
    column: str | None
    description: str
    success: bool
    blocking: bool
    observed: dict[str, Any]
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SuiteResult:
    suite: str
    mois: str
    success: bool  # every blocking expectation passed
    outcomes: list[Outcome]
    rows: int = 0
    docs_index: Path | None = None

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def blocking_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.blocking]

    def summary_fr(self) -> str:
        failed = self.failures()
        head = (
            f"Contrôles qualité de {self.suite} pour le mois {self.mois} : "
            f"{len(self.outcomes) - len(failed)} réussis sur {len(self.outcomes)}"
        )
        if not failed:
            return head + "."

        def describe(o: Outcome) -> str:
            count = o.observed.get("unexpected_count", o.observed.get("observed_value"))
            detail = f" (observé : {count})" if isinstance(count, int | float) else ""
            return f"« {o.description} »{detail}"

        blocking = [describe(o) for o in failed if o.blocking]
        informative = [describe(o) for o in failed if not o.blocking]
        parts = [head]
        if blocking:
            parts.append("échecs bloquants : " + " ; ".join(blocking))
        if informative:
            parts.append("alertes informatives : " + " ; ".join(informative))
        verdict = "mois refusé" if blocking else "mois accepté"
        return ", ".join(parts) + f". Verdict : {verdict}."


@dataclass(frozen=True)
class _Check:
    name: str
    description: str
    column: str | None
    blocking: bool
    expectation: Any = None  # a GX expectation, or None for a check with nothing to run
    note: str | None = None  # why a check without expectation passes
    query: str | None = None  # the SQL of an unexpected-rows check, to draw its sample


# ---------------------------------------------------------------- GX plumbing


def _gx() -> Any:
    """Import GX only when validating: the import costs seconds that other commands never pay."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    return gx


@functools.cache
def _adapter() -> type:
    """DBAPI connection class giving every cursor its own DuckDB connection (module docstring)."""
    from duckdb_engine import ConnectionWrapper, CursorWrapper

    class OwnConnectionCursor(CursorWrapper):
        def __init__(self, duck: duckdb.DuckDBPyConnection, wrapper: ConnectionWrapper) -> None:
            super().__init__(duck, wrapper)
            self._duck = duck

        def close(self) -> None:
            self._duck.close()

    class WarehouseConnection(ConnectionWrapper):
        def __init__(self, root: duckdb.DuckDBPyConnection) -> None:
            # the pool's begin and rollback run on this cursor of the caller's connection, never
            # on the caller's connection itself (that would end the caller's transaction)
            super().__init__(root.cursor())
            self._root = root

        def cursor(self) -> OwnConnectionCursor:
            return OwnConnectionCursor(self._root.cursor(), self)

    return WarehouseConnection


def _context(gx: Any, docs_dir: Path | None) -> Any:
    """An ephemeral context; with `docs_dir`, results and suites persist there for Data Docs.

    The validation results store is on disk under `docs_dir/_gx` so that the site's index lists
    every suite and month validated so far, not only this call's result.
    """
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    sites: dict[str, Any] = {}
    if docs_dir is not None:
        store = Path(docs_dir).resolve() / "_gx"
        for name, folder in (
            (defaults.expectations_store_name, "expectations"),
            (defaults.validation_results_store_name, "validations"),
        ):
            defaults.stores[name]["store_backend"] = {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(store / folder),
            }
        sites["observatoire"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(docs_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# ---------------------------------------------------------------- checks


def _pct(share: float) -> str:
    """A share as French readers write it: 2 %, 0,5 %."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".").replace(".", ",") + " %"


def _literal_date(d: dt.date) -> str:
    return f"date '{d.isoformat()}'"


def _masked(identifier: str, diffusible: str) -> str:
    """An identifier, or `[ND]` when its unit is not diffusible."""
    return f"case when {diffusible} then {identifier} else '{MASK}' end as {identifier}"


class _Builder:
    """Turns check definitions into GX expectations carrying their name, role and description."""

    def __init__(self, gx: Any) -> None:
        self.gx = gx
        self.checks: list[_Check] = []

    def add(
        self,
        name: str,
        description: str,
        column: str | None,
        expectation: Any,
        *,
        blocking: bool = True,
        query: str | None = None,
    ) -> None:
        # the description is what Data Docs show; the meta ties GX's result back to the check
        expectation.description = description
        expectation.meta = {"controle": name, "bloquant": blocking}
        self.checks.append(_Check(name, description, column, blocking, expectation, query=query))

    def sql(
        self,
        name: str,
        description: str,
        column: str | None,
        query: str,
        *,
        blocking: bool = True,
    ) -> None:
        if "{batch}" not in query:
            query = _side(query)
        self.add(
            name,
            description,
            column,
            self.gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=query),
            blocking=blocking,
            query=query,
        )

    def skip(self, name: str, description: str, column: str | None, note: str) -> None:
        self.checks.append(_Check(name, description, column, True, None, note))

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
            f"nombre de lignes entre {_pct(low)} et {_pct(high)} de celui du dernier mois validé"
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
            f"select {_masked(identifier, diffusible)} from {{batch}} where {identifier} in "
            f"(select {identifier} from {{batch}} group by {identifier} having count(*) > 1)",
        )

    def digits(self, identifier: str, width: int, diffusible: str) -> None:
        self.sql(
            f"{identifier}_format",
            f"{identifier} de {width} chiffres",
            identifier,
            f"select {_masked(identifier, diffusible)} from {{batch}} "
            f"where length({identifier}) <> {width} "
            f"or not regexp_full_match({identifier}, '[0-9]+')",
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
        self.sql(
            name,
            description,
            column,
            f"select {_masked(identifier, diffusible)}, {column} from {{batch}} "
            f"where {column} is not null and ({when}) and {column} not in "
            f"(select {ref_column} from {table} where {ref_column} is not null)",
        )

    def codes(
        self, column: str, allowed: tuple[str, ...], identifier: str, diffusible: str
    ) -> None:
        listed = ", ".join(f"'{c}'" for c in allowed)
        self.sql(
            f"{column}_valeurs",
            f"{column} renseigné et parmi {', '.join(allowed)}",
            column,
            f"select {_masked(identifier, diffusible)}, {column} from {{batch}} "
            f"where {column} is null or {column} not in ({listed})",
        )

    def created_before(self, mois: str, identifier: str, diffusible: str) -> None:
        self.sql(
            "date_creation_passee",
            "date de création au plus tard le dernier jour du mois",
            "date_creation",
            f"select {_masked(identifier, diffusible)}, date_creation from {{batch}} "
            f"where date_creation > {_literal_date(month_end(mois))}",
        )

    def quarantine(self, rejects_table: str | None, mois: str, rate: float) -> None:
        rejects = (
            f"(select count(*) from {rejects_table} where mois = '{mois}')"
            if rejects_table
            else "0"
        )
        self.sql(
            "taux_quarantaine",
            f"part des lignes mises en quarantaine au plus {_pct(rate)}",
            None,
            f"select rejets, lignes from (select {rejects} as rejets, "
            "(select count(*) from {batch}) as lignes) "
            f"where rejets > {rate!r} * (rejets + lignes)",
        )


def _reference_volume(
    con: duckdb.DuckDBPyConnection, suite: str, mois: str
) -> tuple[str, int] | None:
    if not warehouse.table_exists(con, "quality", "volumes"):
        return None
    # the last month accepted as a whole: a month refused by any suite never becomes a reference,
    # even for the suites it passed
    row = con.execute(
        "select v.mois, v.lignes from quality.volumes as v where v.suite = $suite "
        "and v.mois < $mois and v.succes and not exists (select 1 from quality.volumes as w "
        "where w.mois = v.mois and not w.succes) order by v.mois desc limit 1",
        {"suite": suite, "mois": mois},
    ).fetchone()
    return (row[0], int(row[1])) if row else None


def _raw_checks(
    b: _Builder, con: duckdb.DuckDBPyConnection, kind: str, mois: str, rate: float
) -> None:
    columns = ["mois", *RAW_COLUMNS[kind], "fichier_source"]
    b.columns(columns)
    b.sql(
        "texte",
        "toutes les colonnes en texte (VARCHAR), comme dans le fichier INSEE",
        None,
        "select column_name as colonne, column_type as type_observe "
        "from (describe select * from {batch}) where column_type <> 'VARCHAR'",
    )
    b.not_empty()
    b.month(mois)
    # INSEE extracts the stock of month M at the very end of M-1 or at the start of M
    start, end = stock_window(mois)
    stamp = (
        "dateDernierTraitementEtablissement"
        if kind == "etablissements"
        else "dateDernierTraitementUniteLegale"
    )
    # The latest treatment date is read on the territory's rows. Over thousands of rows INSEE
    # always treats some in the month before the stock; over a few hundred a quiet month is
    # possible, so there a stale date only warns instead of refusing the month.
    (rows,) = con.execute(
        f"select count(*) from {warehouse.month_table('raw', RAW_TABLES[kind], mois)}"
    ).fetchone()  # type: ignore[misc]
    decisive = rows >= STOCK_DATE_MIN_ROWS
    b.sql(
        "date_du_stock",
        f"dernier traitement INSEE du stock entre le {start:%d/%m/%Y} et le {end:%d/%m/%Y} "
        "(stock du mois, pas un fichier ancien)"
        + ("" if decisive else f" — informatif : moins de {STOCK_DATE_MIN_ROWS} lignes"),
        stamp,
        f"select date_traitement_max, {_literal_date(start)} as debut_attendu, "
        f'{_literal_date(end)} as fin_attendue from (select max(try_cast(left("{stamp}", 10) '
        "as date)) as date_traitement_max from {batch}) "
        f"where date_traitement_max is null or date_traitement_max < {_literal_date(start)} "
        f"or date_traitement_max > {_literal_date(end)}",
        blocking=decisive,
    )
    # Damaged records cannot be placed in the territory: the share is taken over the records of
    # the whole file, as counted apart from the parser (raw.sirene_lectures); a warehouse read
    # before that count existed falls back on its line count, else on what was read. One
    # quarantine row is one damaged record, however many lines the file gave it.
    file_records = "null"
    if warehouse.table_exists(con, "raw", "sirene_lectures"):
        (counted,) = con.execute(
            "select count(*) from information_schema.columns where table_schema = 'raw' "
            "and table_name = 'sirene_lectures' and column_name = 'enregistrements_fichier'"
        ).fetchone()  # type: ignore[misc]
        records = (
            "coalesce(enregistrements_fichier, lignes_fichier)" if counted else "lignes_fichier"
        )
        file_records = (
            f"(select max({records}) from raw.sirene_lectures "
            f"where mois = '{mois}' and type_fichier = '{kind}')"
        )
    b.sql(
        "lignes_mal_formees",
        f"part des enregistrements mal formés du fichier au plus {_pct(rate)}",
        None,
        "select rejets, coalesce(fichier, lus + rejets) as enregistrements from (select "
        "(select count(*) from raw.sirene_rejets_lecture "
        f"where mois = '{mois}' and type_fichier = '{kind}') as rejets, "
        f"{file_records} as fichier, (select count(*) from {{batch}}) as lus) "
        f"where rejets > {rate!r} * coalesce(fichier, lus + rejets)",
    )


def _identified_rows(
    b: _Builder, table: str, identifier: str, width: int, mois: str, diffusible: str
) -> None:
    """What every clean SIRENE table must hold: its shape, its month, one valid id per row."""
    b.columns([c for c, _ in CLEAN_TYPES[table]])
    b.types(list(CLEAN_TYPES[table]))
    b.not_empty()
    b.month(mois)
    b.add(
        f"{identifier}_renseigne",
        f"{identifier} renseigné",
        identifier,
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column=identifier),
    )
    b.unique(identifier, diffusible)
    b.digits(identifier, width, diffusible)


def _clean_etablissements(
    b: _Builder, mois: str, rate: float, rejects: str | None, units: str | None
) -> None:
    # listed only when the establishment AND its legal unit are diffusible, as in the directory;
    # before the month's legal units are cleaned, nothing is listed at all
    diffusible = (
        "statut_diffusion = 'O' and siren in "
        f"(select siren from {units} where statut_diffusion = 'O')"
        if units
        else "false"
    )
    _identified_rows(b, "sirene_etablissements", "siret", 14, mois, diffusible)
    b.digits("siren", 9, diffusible)
    b.sql(
        "siret_commence_par_siren",
        "le siret commence par le siren de l'unité légale",
        "siret",
        f"select {_masked('siret', diffusible)}, {_masked('siren', diffusible)} "
        "from {batch} where left(siret, 9) is distinct from siren",
    )
    b.in_reference(
        "commune_cog",
        "commune attribuée connue du COG (vide permis : établissement à l'étranger, commune "
        "inconnue ; une ancienne commune est attribuée à la commune actuelle)",
        "code_commune",
        "ref.communes.code_commune",
        "siret",
        diffusible,
    )
    b.sql(
        "activite_principale_forme",
        "activité principale bien formée (un code de n'importe quelle nomenclature INSEE ; "
        "inconnu, il est gardé et compté dans clean.codes_hors_nomenclature)",
        "activite_principale",
        f"select {_masked('siret', diffusible)}, activite_principale from {{batch}} "
        "where activite_principale is not null and not regexp_full_match(activite_principale, "
        "'[0-9][0-9][.]?[0-9][0-9]?[0-9A-Z]?')",
    )
    b.in_reference(
        "tranche_effectifs",
        "tranche d'effectifs connue ou vide",
        "tranche_effectifs",
        "ref.tranches_effectifs.code",
        "siret",
        diffusible,
    )
    b.codes("etat_administratif", ("A", "F"), "siret", diffusible)
    b.codes("statut_diffusion", ("O", "P"), "siret", diffusible)
    b.created_before(mois, "siret", diffusible)
    b.quarantine(rejects, mois, rate)


def _clean_unites_legales(b: _Builder, mois: str, rate: float, rejects: str | None) -> None:
    diffusible = "statut_diffusion = 'O'"
    _identified_rows(b, "sirene_unites_legales", "siren", 9, mois, diffusible)
    b.sql(
        "categorie_juridique",
        "catégorie juridique renseignée, de 4 chiffres (un code supprimé ou inconnu de la "
        "nomenclature est gardé et compté dans clean.codes_hors_nomenclature)",
        "categorie_juridique",
        f"select {_masked('siren', diffusible)}, categorie_juridique from {{batch}} "
        "where categorie_juridique is null "
        "or not regexp_full_match(categorie_juridique, '[0-9][0-9][0-9][0-9]')",
    )
    b.in_reference(
        "tranche_effectifs",
        "tranche d'effectifs connue ou vide",
        "tranche_effectifs",
        "ref.tranches_effectifs.code",
        "siren",
        diffusible,
    )
    b.codes("etat_administratif", ("A", "C"), "siren", diffusible)
    b.codes("statut_diffusion", ("O", "P"), "siren", diffusible)
    b.created_before(mois, "siren", diffusible)
    b.quarantine(rejects, mois, rate)


def _drift_shares(
    con: duckdb.DuckDBPyConnection, kind: str, mois: str, rows: int
) -> dict[str, float]:
    """Share of the month's rows per column whose code no list knows (status `inconnu`)."""
    if not rows or not warehouse.table_exists(con, "clean", "codes_hors_nomenclature"):
        return {}
    found = con.execute(
        "select colonne, sum(lignes) from clean.codes_hors_nomenclature "
        "where mois = $mois and type_fichier = $kind and statut = 'inconnu' group by colonne",
        {"mois": mois, "kind": kind},
    ).fetchall()
    return {column: int(n) / rows for column, n in found}


def _drift_checks(
    b: _Builder,
    con: duckdb.DuckDBPyConnection,
    kind: str,
    mois: str,
    limits: tuple[float, float],
) -> None:
    """Nomenclature drift warns; only a jump in a column's unknown share blocks.

    A fifty-year register always carries codes today's lists do not know, and INSEE adds codes
    between two releases of its lists: a new unknown code is worth a look, not a refusal. A
    column whose unknown share jumps is another matter (a shifted column, a wrong file): against
    the last month every suite accepted, the share may rise by `limits[1]` at most; with no
    such month, it may not exceed `limits[0]`.
    """
    share_max, jump_max = limits
    table = RAW_TABLES[kind]
    month = warehouse.month_table("clean", table, mois)
    (rows,) = con.execute(f"select count(*) from {month}").fetchone()  # type: ignore[misc]
    shares = _drift_shares(con, kind, mois, int(rows))
    reference = _reference_volume(con, f"clean.{table}", mois)
    ref_shares: dict[str, float] = {}
    if reference is not None:
        ref_shares = _drift_shares(con, kind, reference[0], reference[1])
    too_high = []
    for column, share in sorted(shares.items()):
        allowed = ref_shares.get(column, 0.0) + jump_max if reference else share_max
        if share > allowed:
            too_high.append((column, share, allowed))
    values = (
        ", ".join(f"('{c}', {share!r}, {allowed!r})" for c, share, allowed in too_high)
        or "(null, null, null)"
    )
    base = (
        f"le mois précédent validé ({reference[0]}) + {_pct(jump_max)}"
        if reference
        else f"{_pct(share_max)} (aucun mois précédent validé)"
    )
    b.sql(
        "part_codes_inconnus",
        "part des lignes dont un code est inconnu de toute nomenclature, par colonne, au plus "
        + base,
        None,
        f"select colonne, part, part_max from (values {values}) as t(colonne, part, part_max) "
        "where colonne is not null",
    )
    b.sql(
        "nouveaux_codes_inconnus",
        "informatif : codes inconnus de toute nomenclature vus pour la première fois ce mois "
        "(clean.codes_hors_nomenclature)",
        None,
        "select colonne, code, lignes from clean.codes_hors_nomenclature "
        f"where mois = '{mois}' and type_fichier = '{kind}' and statut = 'inconnu' "
        f"and premier_mois = '{mois}'"
        if warehouse.table_exists(con, "clean", "codes_hors_nomenclature")
        else "select 1 as colonne where false",
        blocking=False,
    )


def _perimetre(b: _Builder, con: duckdb.DuckDBPyConnection, mois: str) -> None:
    diffusible = "diffusible"
    b.month(mois)
    b.add(
        "siret_renseigne",
        "siret renseigné",
        "siret",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="siret"),
    )
    b.unique("siret", diffusible)
    b.sql(
        "regle_renseignee",
        "chaque établissement porte la règle qui l'a classé",
        "regle",
        f"select {_masked('siret', diffusible)} from {{batch}} where regle is null",
    )
    b.add(
        "regle_connue",
        "règle parmi celles de sql/clean/etablissements_perimetre.sql",
        "regle",
        b.gx.expectations.ExpectColumnValuesToBeInSet(
            column="regle", value_set=list(PERIMETER_RULES)
        ),
    )
    b.sql(
        "famille_ess",
        "tout établissement de l'ESS a une famille",
        "famille_ess",
        f"select {_masked('siret', diffusible)}, regle from {{batch}} "
        "where ess and famille_ess is null",
    )
    clean = warehouse.month_table("clean", "sirene_etablissements", mois)
    if warehouse.table_exists(con, "clean", clean.split(".", 1)[1]):
        (n_clean,) = con.execute(f"select count(*) from {clean}").fetchone()  # type: ignore[misc]
        b.add(
            "aucun_etablissement_perdu",
            f"autant de lignes que d'établissements nettoyés du mois ({n_clean})",
            None,
            b.gx.expectations.ExpectTableRowCountToEqual(value=int(n_clean)),
        )
    else:
        b.sql(
            "aucun_etablissement_perdu",
            "autant de lignes que d'établissements nettoyés du mois (table absente)",
            None,
            "select count(*) as lignes from {batch}",
        )
    b.sql(
        "unites_legales_presentes",
        "informatif : moins de 1 % d'établissements sans unité légale dans le stock du mois "
        "(au-delà, le fichier des unités légales est peut-être incomplet)",
        None,
        "select absents as rejets, lignes from (select count(*) filter "
        "(where regle = 'unite_legale_absente') as absents, count(*) as lignes from {batch}) "
        "where absents > 0.01 * lignes",
        blocking=False,
    )


# ---------------------------------------------------------------- questionnaires, networks, links


def _side(query: str) -> str:
    """A check on another table of the same asset (its values, its reading log).

    GX wants every unexpected-rows query to name its batch, and prints a warning otherwise; the
    unused CTE names it without changing what the query finds.
    """
    return "with _lot as (select 1 from {batch} limit 1) " + query


def _no_contact(b: _Builder, name: str, table: str, key: str, columns: tuple[str, ...]) -> None:
    """Personal contact data must stop at the raw layer: look for it where it must not be."""
    tests = " or ".join(
        f"regexp_matches(coalesce({c}, ''), '{EMAIL_PATTERN}') "
        f"or regexp_matches(coalesce({c}, ''), '{PHONE_PATTERN}')"
        for c in columns
    )
    b.sql(
        name,
        f"aucun courriel ni numéro de téléphone dans {table} ({', '.join(columns)})",
        None,
        f"select {key} from {table} where {tests}",
    )


def _raw_cells(b: _Builder, table: str, key: str, reads: str, rejects: str, rate: float) -> None:
    b.columns([key, "fichier_source", "ligne", "colonne", "valeur"])
    b.sql(
        "cellules_identifiees",
        f"chaque cellule porte {key}, fichier, ligne et colonne",
        None,
        f"select {key}, ligne from {{batch}} where {key} is null or fichier_source is null "
        "or ligne is null or colonne is null",
    )
    b.sql(
        "taux_lignes_mal_formees",
        f"part des lignes mal formées au plus {_pct(rate)} par fichier",
        None,
        f"select {key}, lignes_mal_formees as rejets, lignes_lues as lignes from {reads} "
        f"where lignes_mal_formees > {rate!r} * (lignes_mal_formees + lignes_lues)",
    )
    b.sql(
        "rejets_de_lecture_motives",
        "chaque ligne mise en quarantaine à la lecture a un motif et un numéro de ligne",
        None,
        f"select {key}, ligne from {rejects} where motif is null or ligne is null",
    )


def _identifiers_declared(b: _Builder, key: str) -> None:
    b.sql(
        "siret_declare_format",
        "siret déclaré de 14 chiffres quand il est donné (la clé est vérifiée au rapprochement)",
        "siret_declare",
        f"select {key} from {{batch}} where siret_declare is not null "
        "and (length(siret_declare) <> 14 or not regexp_full_match(siret_declare, '[0-9]+'))",
    )
    b.sql(
        "siren_declare_format",
        "siren déclaré de 9 chiffres quand il est donné",
        "siren_declare",
        f"select {key} from {{batch}} where siren_declare is not null "
        "and (length(siren_declare) <> 9 or not regexp_full_match(siren_declare, '[0-9]+'))",
    )
    b.in_reference(
        "commune_cog",
        "commune connue du COG ou vide",
        "code_commune",
        "ref.communes.code_commune",
        key,
        "true",
    )
    b.sql(
        "rapprochable",
        "chaque enregistrement donne un siret, un siren ou un nom à rapprocher",
        None,
        f"select {key} from {{batch}} where siret_declare is null and siren_declare is null "
        "and nullif(trim(nom), '') is null",
    )


def _clean_reponses(b: _Builder, rate: float) -> None:
    b.add(
        "reponse_id_renseigne",
        "identifiant de réponse renseigné",
        "reponse_id",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="reponse_id"),
    )
    b.unique("reponse_id", "true")
    _identifiers_declared(b, "reponse_id")
    listed = ", ".join(f"'{n}'" for n in NEEDS)
    b.sql(
        "besoins_taxonomie",
        "chaque besoin cité appartient à la taxonomie des besoins",
        "besoin",
        "select vague, question, besoin from clean.questionnaire_valeurs "
        f"where besoin is not null and besoin not in ({listed})",
    )
    b.sql(
        "valeurs_rattachees",
        "chaque valeur appartient à une réponse et à une question de la vague",
        None,
        "select v.vague, v.reponse_id, v.question from clean.questionnaire_valeurs as v "
        "where v.reponse_id not in (select reponse_id from clean.questionnaire_reponses) "
        "or not exists (select 1 from clean.questionnaire_questions as q "
        "where q.vague = v.vague and q.question = v.question)",
    )
    b.sql(
        "nombres_lus",
        "les réponses numériques sont des nombres",
        "valeur_nombre",
        "select v.vague, v.reponse_id, v.question from clean.questionnaire_valeurs as v "
        "join clean.questionnaire_questions as q using (vague, question) "
        "where q.type = 'nombre' and v.valeur_nombre is null",
    )
    _no_contact(b, "valeurs_sans_contact", "clean.questionnaire_valeurs", "reponse_id", ("valeur",))
    _no_contact(b, "rejets_sans_contact", "clean.questionnaire_rejets", "vague", ("motif",))
    _no_contact(
        b,
        "reponses_sans_contact",
        "clean.questionnaire_reponses",
        "reponse_id",
        ("nom", "adresse"),
    )
    b.sql(
        "taux_reponses_en_quarantaine",
        "informatif : au plus "
        f"{_pct(rate)} des réponses ont une valeur mise en quarantaine (la réponse est gardée)",
        None,
        "select vague, rejets, lignes from (select r.vague, count(distinct q.ligne) as rejets, "
        "count(distinct r.ligne) as lignes from clean.questionnaire_reponses as r "
        "left join clean.questionnaire_rejets as q on q.vague = r.vague and q.ligne = r.ligne "
        f"group by r.vague) where rejets > {rate!r} * lignes",
        blocking=False,
    )


def _clean_membres(b: _Builder, rate: float) -> None:
    b.add(
        "membre_id_renseigne",
        "identifiant de membre renseigné",
        "membre_id",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="membre_id"),
    )
    b.unique("membre_id", "true")
    b.add(
        "type_reseau",
        "type de réseau parmi " + ", ".join(NETWORK_KINDS),
        "type_reseau",
        b.gx.expectations.ExpectColumnValuesToBeInSet(
            column="type_reseau", value_set=list(NETWORK_KINDS)
        ),
    )
    _identifiers_declared(b, "membre_id")
    _no_contact(b, "membres_sans_contact", "clean.reseaux_membres", "membre_id", ("nom", "adresse"))
    _no_contact(b, "rejets_sans_contact", "clean.reseaux_rejets", "reseau", ("motif",))
    b.sql(
        "taux_membres_en_quarantaine",
        f"part des lignes de liste écartées au plus {_pct(rate)} par réseau",
        None,
        "select reseau, rejets, lignes from (select r.reseau, "
        "(select count(distinct x.ligne) from clean.reseaux_rejets as x "
        "where x.reseau = r.reseau and x.ligne not in (select m.ligne from "
        "clean.reseaux_membres as m where m.reseau = r.reseau)) as rejets, "
        "(select count(*) from clean.reseaux_membres as m where m.reseau = r.reseau) as lignes "
        f"from clean.reseaux as r) where rejets > {rate!r} * (rejets + lignes)",
    )


def _rapprochements(b: _Builder, mois: str) -> None:
    b.month(mois)
    for column, allowed in (("methode", LINK_METHODS), ("statut", LINK_STATUSES)):
        b.add(
            f"{column}_connu",
            f"{column} parmi " + ", ".join(allowed),
            column,
            b.gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)),
        )
    b.add(
        "score_entre_0_et_1",
        "score entre 0 et 1",
        "score",
        b.gx.expectations.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1),
    )
    b.sql(
        "aucun_enregistrement_perdu",
        "chaque réponse et chaque membre a exactement une ligne de rapprochement "
        "(rien n'est écarté sans trace)",
        None,
        "select a.source, a.enregistrement_id, count(r.enregistrement_id) as lignes "
        "from clean.a_rapprocher as a left join (select * from {batch}) as r "
        "on r.source = a.source and r.enregistrement_id = a.enregistrement_id "
        "group by all having count(r.enregistrement_id) <> 1",
    )
    b.sql(
        "lien_vers_le_mois",
        "chaque lien trouvé par le rapprochement désigne un établissement du stock SIRENE du "
        "mois (une décision de revue peut désigner un établissement hors du territoire)",
        None,
        "select r.source, r.enregistrement_id from (select * from {batch}) as r "
        "where r.statut = 'lie' "
        "and r.methode <> 'decision' "
        "and (r.siret is null or r.siret not in (select siret from "
        f"clean.sirene_etablissements where mois = '{mois}'))",
    )
    b.sql(
        "une_reponse_retenue",
        "une seule réponse retenue par structure et par vague",
        None,
        "select cle_source, count(*) as lignes from {batch} where source = 'questionnaire' "
        "and statut = 'lie' and retenu group by cle_source, siret having count(*) > 1",
    )
    b.sql(
        "file_de_revue_sans_nom_non_diffusible",
        "la file de revue ne nomme aucun établissement non diffusible (ni par son nom dans "
        "SIRENE, ni par celui que l'enregistrement déclare à côté de lui)",
        None,
        "select q.enregistrement_id from clean.rapprochements_a_revoir as q "
        "join clean.sirene_etablissements as e on e.mois = q.mois and e.siret = q.siret_candidat "
        "left join clean.sirene_unites_legales as u on u.mois = e.mois and u.siren = e.siren "
        f"where q.mois = '{mois}' and (q.nom_candidat is not null or q.nom is not null) and "
        "(e.statut_diffusion is distinct from 'O' or u.statut_diffusion is distinct from 'O')",
    )


def _source_relation(suite: str, mois: str) -> str:
    if suite == "clean.rapprochements":
        return f"(select * from clean.rapprochements where mois = '{mois}')"
    return suite


def _source_checks(b: _Builder, suite: str, mois: str, rate: float) -> None:
    if suite == "raw.questionnaire_cellules":
        _raw_cells(
            b,
            suite,
            "vague",
            "raw.questionnaire_lectures",
            "raw.questionnaire_rejets_lecture",
            rate,
        )
    elif suite == "raw.reseaux_cellules":
        _raw_cells(b, suite, "reseau", "raw.reseaux_lectures", "raw.reseaux_rejets_lecture", rate)
    elif suite == "clean.questionnaire_reponses":
        _clean_reponses(b, rate)
    elif suite == "clean.reseaux_membres":
        _clean_membres(b, rate)
    else:
        _rapprochements(b, mois)


# ---------------------------------------------------------------- results


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Small JSON values only: GX results can carry row lists and objects Dagster cannot show."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if depth >= 3:
        return str(value)[:200]
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in list(value)[:100]]
    return str(value)[:200]


_ROW_LISTS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
)


def _observed(result: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in result.items() if k not in _ROW_LISTS and k != "details"}
    details = result.get("details") or {}
    if isinstance(details, dict):
        kept.update({k: v for k, v in details.items() if k != "unexpected_rows"})
    return _json_safe(kept)


def _keep(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identifiers and codes of diffusible units only, at most SAMPLE_SIZE rows."""
    sample = []
    for row in rows:
        if MASK in row.values():
            continue  # a unit that is not diffusible is never listed
        kept = {k: _json_safe(v) for k, v in row.items() if k in SAMPLE_KEYS}
        if kept and any(v is not None for v in kept.values()):
            sample.append(kept)
        if len(sample) == SAMPLE_SIZE:
            break
    return sample


def _sql_sample(con: duckdb.DuckDBPyConnection, query: str, source: str) -> list[dict[str, Any]]:
    """The failing rows of an unexpected-rows check, read again for the sample.

    GX is asked for counts only (SUMMARY): its COMPLETE format would also pull whole value lists
    out of the built-in expectations, and would write the rows into the Data Docs. Rows are read
    only for failed checks, and beyond SAMPLE_SIZE to make up for masked ones.
    """
    sql = query.format(batch=f"(select * from {source})")
    cursor = con.cursor()
    try:
        relation = cursor.execute(f"select * from ({sql}) limit {SAMPLE_SIZE * 20}")
        names = [d[0] for d in relation.description or []]
        return _keep([dict(zip(names, r, strict=True)) for r in relation.fetchall()])
    finally:
        cursor.close()


def _error(exception_info: Any) -> str | None:
    """GX's error message, whether it reports one error or one per metric."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message") or "erreur inconnue")
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "erreur inconnue")
    return None


def _outcomes(
    con: duckdb.DuckDBPyConnection, source: str, checks: list[_Check], validation: Any
) -> list[Outcome]:
    by_name = {}
    for r in validation.results if validation is not None else []:
        by_name[(r.expectation_config.meta or {}).get("controle")] = r
    outcomes = []
    for c in checks:
        if c.expectation is None:
            outcomes.append(
                Outcome(
                    c.name, "aucune", c.column, c.description, True, c.blocking, {"note": c.note}
                )
            )
            continue
        r = by_name[c.name]
        kind = r.expectation_config.type
        error = _error(r.exception_info)
        if error is not None:
            # a check that could not run is a failed check: the data was not shown to be right
            outcomes.append(
                Outcome(
                    c.name,
                    kind,
                    c.column,
                    c.description,
                    False,
                    c.blocking,
                    {"erreur": error[:500]},
                )
            )
            continue
        result = dict(r.result or {})
        success = bool(r.success)
        sample: list[dict[str, Any]] = []
        if not success and c.query is not None:
            sample = _sql_sample(con, c.query, source)
        elif not success and c.column and result.get("partial_unexpected_counts"):
            # distinct values only: GX counts them within its partial list, not in the table
            sample = _keep(
                [{c.column: v.get("value")} for v in result["partial_unexpected_counts"]]
            )
        outcomes.append(
            Outcome(
                c.name,
                kind,
                c.column,
                c.description,
                success,
                c.blocking,
                _observed(result),
                sample,
            )
        )
    return outcomes


def _record(con: duckdb.DuckDBPyConnection, result: SuiteResult) -> None:
    """Replace the month's verdicts for this suite (delete then insert, one transaction)."""
    con.execute("create schema if not exists quality")
    con.execute(
        "create table if not exists quality.resultats (mois varchar, suite varchar, "
        "controle varchar, expectation varchar, colonne varchar, description varchar, "
        "succes boolean, bloquant boolean, observe varchar, valide_le timestamp)"
    )
    con.execute(
        "create table if not exists quality.volumes "
        "(mois varchar, suite varchar, lignes bigint, succes boolean)"
    )
    key = {"mois": result.mois, "suite": result.suite}
    with warehouse.transaction(con):
        con.execute("delete from quality.resultats where mois = $mois and suite = $suite", key)
        con.execute("delete from quality.volumes where mois = $mois and suite = $suite", key)
        con.executemany(
            "insert into quality.resultats values (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [
                [
                    result.mois,
                    result.suite,
                    o.name,
                    o.expectation,
                    o.column,
                    o.description,
                    o.success,
                    o.blocking,
                    json.dumps(o.observed, ensure_ascii=False, default=str),
                ]
                for o in result.outcomes
            ],
        )
        con.execute(
            "insert into quality.volumes values ($mois, $suite, $lignes, $succes)",
            {**key, "lignes": result.rows, "succes": result.success},
        )


# ---------------------------------------------------------------- entry point


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: str,
    mois: str,
    *,
    max_reject_rate: float,
    count_band: tuple[float, float] = (0.98, 1.05),
    docs_dir: Path | None = None,
    drift_limits: tuple[float, float] = (0.20, 0.05),
    build_docs: bool = True,
) -> SuiteResult:
    """Validate month `mois` of `suite`, record the verdict in `quality.*` and return it.

    `drift_limits` are (share of a column's codes unknown to every list allowed without a
    previous accepted month, rise of that share allowed against it): see `_drift_checks`.

    `count_band` bounds the row count relative to the last month this suite accepted, so that
    a bad month never becomes the reference of the next one. With `docs_dir`, the result is
    stored there and GX's HTML Data Docs are (re)built (`docs_dir/index.html`); a caller that
    validates many suites in a row passes `build_docs=False` and calls `build_docs` once at the
    end (each build rewrites the whole site: half a second per suite on the demo, growing with
    the months stored). GX reads through other connections of the same database: it sees what
    is committed, so call this outside a transaction.
    """
    if suite not in SUITES:
        raise ValueError(f"suite inconnue : {suite!r} (attendu : {', '.join(SUITES)})")
    if not 0 <= max_reject_rate <= 1:
        raise ValueError(f"seuil de rejet invalide : {max_reject_rate!r} (entre 0 et 1)")
    low, high = count_band
    if not 0 < low <= 1 <= high:
        raise ValueError(f"bande de volume invalide : {count_band!r} (bas ≤ 1 ≤ haut)")
    schema, table = suite.split(".")
    rate = float(max_reject_rate)
    gx = _gx()
    b = _Builder(gx)
    if suite in SOURCE_SUITES:
        from observatoire.sources import inbox

        # an empty inbox is valid: its tables are empty, not absent
        inbox.ensure_tables(con)
        linkage.create_tables(con)
        linkage.create_source_view(con)
        warehouse.month_table(schema, table, mois)  # validates the month before it enters SQL
        source = _source_relation(suite, mois)
        _source_checks(b, suite, mois, rate)
    else:
        source = warehouse.month_table(schema, table, mois)
        if not warehouse.table_exists(con, schema, source.split(".", 1)[1]):
            raise LookupError(f"{source} absente : le mois {mois} de {suite} n'a pas été produit")
    if suite in SOURCE_SUITES:
        pass  # checks added above
    elif schema == "raw":
        kind = next(k for k, t in RAW_TABLES.items() if t == table)
        _raw_checks(b, con, kind, mois, rate)
    elif table == "etablissements_perimetre":
        _perimetre(b, con, mois)
    else:
        rejects = (
            f"clean.{table}_rejets"
            if warehouse.table_exists(con, "clean", f"{table}_rejets")
            else None
        )
        if table == "sirene_etablissements":
            units = warehouse.month_table("clean", "sirene_unites_legales", mois)
            present = warehouse.table_exists(con, "clean", units.split(".", 1)[1])
            _clean_etablissements(b, mois, rate, rejects, units if present else None)
        else:
            _clean_unites_legales(b, mois, rate, rejects)
        kind = next(k for k, t in RAW_TABLES.items() if t == table)
        _drift_checks(b, con, kind, mois, drift_limits)
    if suite in SIRENE_SUITES and table != "etablissements_perimetre":
        b.volume(_reference_volume(con, suite, mois), count_band)

    (rows,) = con.execute(f"select count(*) from {source}").fetchone()  # type: ignore[misc]
    validation, docs_index = _run(gx, con, suite, mois, source, b.checks, docs_dir, build_docs)
    outcomes = _outcomes(con, source, b.checks, validation)
    result = SuiteResult(
        suite=suite,
        mois=mois,
        success=all(o.success for o in outcomes if o.blocking),
        outcomes=outcomes,
        rows=int(rows),
        docs_index=docs_index,
    )
    _record(con, result)
    return result


def _run(
    gx: Any,
    con: duckdb.DuckDBPyConnection,
    suite: str,
    mois: str,
    source: str,
    checks: list[_Check],
    docs_dir: Path | None,
    build_docs: bool = True,
) -> tuple[Any, Path | None]:
    context = _context(gx, docs_dir)
    connection_class = _adapter()
    datasource = context.data_sources.add_sql(
        "entrepot",
        connection_string="duckdb://",
        kwargs={"creator": lambda: connection_class(con)},
    )
    try:
        asset = datasource.add_query_asset(suite, query=f"select * from {source}")
        batch = asset.add_batch_definition_whole_table(mois)
        gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite))
        for c in checks:
            if c.expectation is not None:
                gx_suite.add_expectation(c.expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite} {mois}", data=batch, suite=gx_suite)
        )
        actions = []
        if docs_dir is not None and build_docs:
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs"))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite} {mois}",
                validation_definitions=[definition],
                actions=actions,
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
            )
        )
        from great_expectations.core.run_identifier import RunIdentifier

        run = checkpoint.run(run_id=RunIdentifier(run_name=mois))
        (validation,) = run.run_results.values()
    finally:
        datasource.get_engine().dispose()
        datasource.get_execution_engine().close()
    index = Path(docs_dir).resolve() / "index.html" if docs_dir is not None else None
    return validation, index


def build_docs(docs_dir: Path) -> Path:
    """Rebuild GX's HTML Data Docs from every result stored under `docs_dir`; its index."""
    _context(_gx(), docs_dir).build_data_docs()
    return Path(docs_dir).resolve() / "index.html"


def validate_all(
    con: duckdb.DuckDBPyConnection,
    mois: str,
    *,
    max_reject_rate: float,
    count_band: tuple[float, float] = (0.98, 1.05),
    docs_dir: Path | None = None,
) -> list[SuiteResult]:
    """Every suite of the month, in layer order; what a failure blocks is the caller's call."""
    return [
        validate(
            con,
            suite,
            mois,
            max_reject_rate=max_reject_rate,
            count_band=count_band,
            docs_dir=docs_dir,
        )
        for suite in SUITES
    ]


def month_problems(con: duckdb.DuckDBPyConnection, mois: str) -> list[str]:
    """Why month `mois` may not be published: suites never run on it, or failed.

    The publication asks this itself, so that no path (a later Dagster run of the publication
    alone, a script) can publish a month the quality gate refused or never saw.
    """
    if not warehouse.table_exists(con, "quality", "volumes"):
        return [f"aucun contrôle qualité enregistré pour {mois}"]
    verdicts = dict(
        con.execute(
            "select suite, succes from quality.volumes where mois = $mois", {"mois": mois}
        ).fetchall()
    )
    problems = [f"{suite} : non contrôlé" for suite in SUITES if suite not in verdicts]
    problems += [f"{suite} : refusé" for suite in SUITES if verdicts.get(suite) is False]
    return problems
