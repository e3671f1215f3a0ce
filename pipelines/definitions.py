"""Dagster wiring of the observatory: one multi-asset per step of `observatoire.steps.STEPS`.

Asset key = DuckDB table (`clean/sirene_etablissements` is `clean.sirene_etablissements`); a
step's assets are the tables it writes, its Great Expectations suites are blocking checks.
SIRENE-derived steps are partitioned by stock month; every asset writes the same DuckDB file,
so runs execute in process and one at a time (dagster.yaml). `observatoire refresh` runs the
job `sirene_mensuel` through this instance (`pipelines/run.py`).
"""

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    ConfigurableResource,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionMapping,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
    multi_asset,
    run_failure_sensor,
    sensor,
)
from dagster._utils.warnings import BetaWarning

from observatoire import refresh, steps
from observatoire.core import catalogue, progress, runlock, warehouse
from observatoire.core.mois import parse_mois
from observatoire.core.settings import Settings
from observatoire.publication import publish
from observatoire.sources import inbox

if TYPE_CHECKING:
    from observatoire.quality import SuiteResult

# INSEE publishes the stock on the first days of each month; the month's key is that month.
# `end_offset=1` makes the current month a partition as soon as it starts.
# The calendar starts with the first stock files INSEE published as open data (2017): an
# archived month can be refreshed again, from the CLI or the UI.
monthly = MonthlyPartitionsDefinition(
    start_date="2017-01-01", end_offset=1, timezone="Europe/Paris"
)


class ObservatoireResource(ConfigurableResource):
    """Run-time settings: environment variables (see .env.example), optionally overridden."""

    warehouse: str = ""
    territoire: str = ""
    sirene_etablissements: str = ""
    sirene_unites_legales: str = ""
    publication_dir: str = ""
    # every setting at once (`Settings.to_json`): what `observatoire refresh` passes, so that
    # its run uses exactly the CLI's settings
    reglages: str = ""

    def settings(self) -> Settings:
        if self.reglages:
            return Settings.from_json(self.reglages)
        s = Settings.from_env()
        overrides: dict[str, object] = {}
        if self.warehouse:
            overrides["warehouse"] = Path(self.warehouse)
        if self.territoire:
            overrides["territoire"] = self.territoire
        if self.sirene_etablissements:
            overrides["sirene_etablissements"] = self.sirene_etablissements
        if self.sirene_unites_legales:
            overrides["sirene_unites_legales"] = self.sirene_unites_legales
        if self.publication_dir:
            overrides["publication_dir"] = Path(self.publication_dir)
        return s.with_(**overrides) if overrides else s

    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        s = self.settings()
        return warehouse.connect(  # type: ignore[return-value]
            s.warehouse, memory_limit=s.duckdb_memory_limit, threads=s.duckdb_threads
        )


GX_CHECK = "great_expectations"


def _gx_spec(schema: str, table: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        GX_CHECK,
        asset=[schema, table],
        blocking=True,
        description=(
            "Suite Great Expectations du mois (colonnes, types, identifiants, nomenclatures, "
            "part de rejets, volume par rapport au dernier mois validé, date du stock). "
            "Bloquant : un échec arrête le rafraîchissement avant la publication."
        ),
    )


# ---------------------------------------------------------------- the steps of a month

# Results of the steps of a run started by the CLI in this process, by Dagster run id:
# `pipelines/run.py` reads them back to print its report (in_process_executor, dagster.yaml).
RESULTS: dict[str, list[tuple[str, steps.StepResult]]] = {}
CLI_TAG = "observatoire/lance_par"  # set on the runs `observatoire refresh` starts


def _key(asset: str) -> AssetKey:
    return AssetKey(asset.split("."))


def _metadata_value(value: object) -> object:
    if isinstance(value, steps.Markdown):
        return MetadataValue.md(str(value))
    if isinstance(value, Path):
        return MetadataValue.path(str(value))
    if isinstance(value, dict | list | tuple):
        return MetadataValue.json(value)
    if value is None:
        return "—"
    return value


def _run_month(context: AssetExecutionContext, step: steps.Step, s: Settings) -> str:
    """The month of the run: its partition. A source step materialised alone from the UI (no
    partition) works on the published month, as the inbox sensor's runs do."""
    tag = context.run.tags.get("dagster/partition")
    if tag:
        return parse_mois(tag[:7])
    if not step.checked:  # the reference data: no verdict to record under a month
        return dt.date.today().strftime("%Y-%m")
    mois = publish.published_month(s.publication_dir)
    if mois is None:
        raise RuntimeError(
            "aucun mois publié : lancer d'abord le rafraîchissement mensuel (job "
            "sirene_mensuel), puis les sources déposées seront rapprochées de ce mois"
        )
    return mois


def _check_result(asset: str, result: "SuiteResult", docs_dir: Path | None) -> AssetCheckResult:
    """A suite's verdict as Dagster shows it; the logic stays in observatoire.quality."""
    failed = result.failures()
    metadata: dict[str, object] = {
        "mois": result.mois,
        "attentes": len(result.outcomes),
        "echecs": len(failed),
        "resume": result.summary_fr(),
        "attentes_en_echec": MetadataValue.json(
            [
                {
                    "attente": o.name,
                    "type": o.expectation,
                    "colonne": o.column,
                    "description": o.description,
                    "bloquant": o.blocking,
                    "observe": o.observed,
                }
                for o in failed
            ]
        ),
        # identifiers and codes only; units that are not diffusible are masked by the suite
        "lignes_en_echec_exemples": MetadataValue.json(
            {o.name: o.sample for o in failed if o.sample}
        ),
    }
    if docs_dir is not None:
        metadata["data_docs"] = MetadataValue.path(str(docs_dir / "index.html"))
    return AssetCheckResult(
        check_name=GX_CHECK,
        asset_key=_key(asset),
        passed=result.success,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def _dep(asset: str, previous_month: bool = False) -> AssetDep:
    if previous_month:
        # compares with the previous month: that partition is an input too (the first month
        # has none). The parameter is "beta" in Dagster 1.13 and says so on every import.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BetaWarning)
            mapping = TimeWindowPartitionMapping(
                start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
            )
        return AssetDep(_key(asset), partition_mapping=mapping)
    return AssetDep(_key(asset))


def _spec(step: steps.Step, asset: str) -> AssetSpec:
    """An asset of a step: the step's inputs, except for an indicator, which says its own."""
    schema, table = asset.split(".")
    group = "ref" if schema == "ref" else step.group
    if schema != "indicators":
        return AssetSpec(
            _key(asset),
            group_name=group,
            deps=[_dep(d, d in step.previous_month) for d in step.deps],
            description=step.description,
        )
    entry = catalogue.indicators()[table]
    deps = [
        # the evolution compares with the previous month's perimeter and published levels
        _dep("clean.etablissements_perimetre", previous_month=table == "evolution_mensuelle"),
        _dep("clean.niveaux_publies", previous_month=table == "evolution_mensuelle"),
    ]
    if "clean.rapprochements" in warehouse.sql_text("indicators", table):
        deps.append(_dep("clean.rapprochements"))  # needs and networks read the links
    return AssetSpec(
        _key(asset),
        group_name=group,
        deps=deps,
        description=f"{entry.titre}. {entry.definition} Unité de compte : {entry.unite_de_compte}.",
        metadata={"sql": f"sql/indicators/{table}.sql", "unite": entry.unite},
    )


def _step_asset(step: steps.Step):  # noqa: ANN202 - dagster decorator
    """One multi-asset per step: its tables, its blocking checks, the step's own function."""
    specs = [_spec(step, asset) for asset in step.assets]

    @multi_asset(
        name=step.name,
        specs=specs,
        check_specs=[_gx_spec(*asset.split(".")) for asset in step.checked],
        partitions_def=monthly if step.monthly else None,
        can_subset=False,
        description=step.description,
        # steps ready together run in the order of STEPS (the inbox before the long SIRENE
        # read, so that a broken wave is refused first), as `observatoire refresh` says
        op_tags={"dagster/priority": str(len(steps.STEPS) - steps.STEPS.index(step))},
    )
    def _asset(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN202
        s = observatoire.settings()
        mois = _run_month(context, step, s)
        started_by_cli = CLI_TAG in context.run.tags
        # the CLI holds the refresh lock for its whole run; a run of the schedule, the sensor
        # or the UI takes it for each step, so that it never interleaves with a CLI's month
        lock = (
            contextlib.nullcontext() if started_by_cli else runlock.refresh_lock(s.warehouse, mois)
        )
        # the step's progress (rows read, indicators done) goes to the run's log, in the UI
        with lock, observatoire.connect() as con, progress.forward_to(context.log):
            ctx = steps.StepContext(s, mois, context.run.run_id.replace("-", "")[:12], con)
            result = step.run(ctx)
        if started_by_cli:
            RESULTS.setdefault(context.run.run_id, []).append((step.name, result))
        elif result.failed or step is steps.STEPS[-1]:
            # the Data Docs after a failed check (what to look at) and at the end of a month;
            # the CLI builds them once at its end. They never fail a month.
            refresh.build_docs(s, [r.suite for r in result.checks] or [step.name])
        for asset in step.assets:
            yield MaterializeResult(
                asset_key=_key(asset),
                metadata={k: _metadata_value(v) for k, v in result.metadata.get(asset, {}).items()},
            )
        for suite in result.checks:
            yield _check_result(suite.suite, suite, s.quality_docs_dir)

    return _asset


STEP_ASSETS = [_step_asset(step) for step in steps.STEPS]
# the inbox's steps and every step after them that reads them, whole (a step's assets are
# materialised together): never the reference, SIRENE or the perimeter
SOURCES_JOB_STEPS = (
    "sources",
    "sources_propres",
    "rapprochement",
    "indicateurs",
    "secret",
    "publication",
)


sirene_monthly_job = define_asset_job(
    "sirene_mensuel",
    # every step of the month, reference and inbox included, as `observatoire refresh` runs it
    selection=AssetSelection.all(),
    description="Rafraîchissement mensuel : stock SIRENE du mois -> indicateurs -> publication.",
)
reference_job = define_asset_job(
    "chargement_referentiels", selection=AssetSelection.assets(*STEP_ASSETS[0].keys)
)

# INSEE puts the new stock online on the first working days of the month: run on the 3rd.
sirene_monthly_schedule = build_schedule_from_partitioned_job(
    sirene_monthly_job,
    day_of_month=3,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.STOPPED,
)


sources_job = define_asset_job(
    "sources_externes",
    selection=AssetSelection.assets(
        *(
            key
            for asset, step in zip(STEP_ASSETS, steps.STEPS, strict=True)
            if step.name in SOURCES_JOB_STEPS
            for key in asset.keys
        )
    ),
    description=(
        "Questionnaires, listes de réseaux et décisions de revue déposés dans data/inbox/ -> "
        "rapprochement SIRENE du mois publié -> indicateurs de besoins et de réseaux -> "
        "publication."
    ),
)


@sensor(
    job=sources_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Surveille data/inbox/ (questionnaires/, reseaux/, decisions/) : un fichier nouveau, "
        "modifié ou retiré lance le job sources_externes sur le dernier mois publié ; le run "
        "porte en étiquette la liste des fichiers en cause."
    ),
)
def depot_inbox(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    import hashlib
    import json

    settings = Settings.from_env()
    state = inbox.inbox_state(settings.inbox_dir)
    # cursor: the inbox as last seen, and how many runs it started; the count goes into the
    # run key, so a file put back to an earlier content still gets a run of its own (Dagster
    # starts one run per key, ever)
    cursor = json.loads(context.cursor) if context.cursor else {}
    count = int(cursor.get("n", 0)) if "etat" in cursor else 0
    manifest = publish.live_manifest(settings.publication_dir) or {}
    read = (publish.live_private(settings.publication_dir) or {}).get("sources_lues")
    if read is not None and read == state:
        # the live publication was built from these very files (a refresh from the CLI or the
        # monthly job read them): nothing to re-link
        return SensorResult(
            skip_reason=SkipReason(
                f"fichiers de {settings.inbox_dir} déjà lus par la publication en ligne "
                f"({manifest['mois']})"
            ),
            cursor=json.dumps({"etat": state, "n": count}, sort_keys=True),
        )
    before = cursor.get("etat", read or {})
    changes = inbox.describe_changes(before, state)
    if not changes:
        return SkipReason("aucun changement dans " + str(settings.inbox_dir))
    mois = manifest.get("mois")
    if mois is None:
        # keep the old cursor: the change is taken up once a month has been published
        return SkipReason(
            "fichiers déposés, mais aucun mois publié : lancer d'abord le job sirene_mensuel"
        )
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
    reason = " ; ".join(changes)
    context.log.info("dépôt dans %s : %s", settings.inbox_dir, reason)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"inbox-{mois}-{count + 1}-{digest}",
                partition_key=f"{mois}-01",
                tags={
                    "observatoire/declencheur": reason[:4000],
                    "observatoire/nb_fichiers_changes": str(len(changes)),
                },
            )
        ],
        cursor=json.dumps({"etat": state, "n": count + 1}, sort_keys=True),
    )


@run_failure_sensor(
    monitored_jobs=[sirene_monthly_job, sources_job],
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Note dans publication/etat.json qu'un rafraîchissement a échoué et que la publication "
        "en ligne reste la précédente, pour que les lecteurs (CLI, page web) le disent."
    ),
)
def echec_rafraichissement(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    if not partition or CLI_TAG in run.tags:
        # the CLI records its own failures, in French, in its own publication folder
        return
    settings = Settings.from_env()
    message = context.failure_event.message or "échec du run Dagster"
    publish.record_attempt(
        settings.publication_dir,
        partition[:7],
        run.run_id.replace("-", "")[:12],
        message.splitlines()[0],
    )


defs = Definitions(
    assets=STEP_ASSETS,
    jobs=[sirene_monthly_job, reference_job, sources_job],
    schedules=[sirene_monthly_schedule],
    sensors=[echec_rafraichissement, depot_inbox],
    resources={"observatoire": ObservatoireResource()},
    executor=in_process_executor,
)

__all__ = ["defs", "AssetKey"]
