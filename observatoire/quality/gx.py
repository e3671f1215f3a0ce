"""The Great Expectations runner: every suite, built in code and run on the warehouse.

Each suite validates one partition month of one table (its physical month table), so that a
month is judged on its own rows and the checks cost one scan of that month, not of the history.
The suites are plain Python: the Dagster checks only translate a `SuiteResult`. Their checks are
defined in `sirene_suites` and `source_suites` (through the `builder`); this module runs them,
records the verdicts in `quality.*`, builds the Data Docs, and tells the publication whether a
month passed (`month_problems`).

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

Samples list identifiers and codes only, never those of a unit that is not diffusible (the
builder masks them as `[ND]`, `_keep` drops them).
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

from observatoire.core import warehouse
from observatoire.quality import sirene_suites, source_suites
from observatoire.quality.builder import MASK, Builder, Check
from observatoire.quality.sirene_suites import SIRENE_SUITES
from observatoire.quality.source_suites import SOURCE_SUITES

SUITES: tuple[str, ...] = SIRENE_SUITES + SOURCE_SUITES

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
    con: duckdb.DuckDBPyConnection, source: str, checks: list[Check], validation: Any
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
    previous accepted month, rise of that share allowed against it): see `_drift_checks` in
    `sirene_suites`.

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
    rate = float(max_reject_rate)
    gx = _gx()
    b = Builder(gx)
    if suite in SOURCE_SUITES:
        source = source_suites.prepare(con, suite, mois)
        source_suites.add_checks(b, suite, mois, rate)
    else:
        schema, table = suite.split(".")
        source = warehouse.month_table(schema, table, mois)
        if not warehouse.table_exists(con, schema, source.split(".", 1)[1]):
            raise LookupError(f"{source} absente : le mois {mois} de {suite} n'a pas été produit")
        sirene_suites.add_checks(
            b, con, suite, mois, rate, count_band=count_band, drift_limits=drift_limits
        )

    (rows,) = con.execute(f"select count(*) from {source}").fetchone()  # type: ignore[misc]
    b.tally(con, source)  # the row checks' failing rows counted in one scan of the month
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
    checks: list[Check],
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
