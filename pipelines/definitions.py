"""Dagster wiring of the observatory: thin assets over `observatoire`'s library functions.

Asset key = DuckDB table = group (`clean/sirene_etablissements` is `clean.sirene_etablissements`
in group `clean`). SIRENE-derived assets are partitioned by stock month; every asset writes the
same DuckDB file, so runs execute in process and one at a time (dagster.yaml).
"""

from collections.abc import Iterator

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
    TimeWindowPartitionMapping,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
    multi_asset,
    run_failure_sensor,
)

from observatoire import catalogue, indicators, publish, reference, refresh, warehouse
from observatoire.settings import Settings

# INSEE publishes the stock on the first days of each month; the month's key is that month.
# `end_offset=1` makes the current month a partition as soon as it starts.
monthly = MonthlyPartitionsDefinition(
    start_date="2024-01-01", end_offset=1, timezone="Europe/Paris"
)


class ObservatoireResource(ConfigurableResource):
    """Run-time settings: environment variables (see .env.example), optionally overridden."""

    warehouse: str = ""
    territoire: str = ""
    sirene_etablissements: str = ""
    sirene_unites_legales: str = ""
    publication_dir: str = ""

    def settings(self) -> Settings:
        from pathlib import Path

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


def _mois(context: AssetExecutionContext) -> str:
    return context.partition_key[:7]


def _preview(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> MetadataValue:
    frame = con.execute(sql, params).pl()
    if frame.is_empty():
        return MetadataValue.md("_(aucune ligne)_")
    header = "| " + " | ".join(frame.columns) + " |"
    sep = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in frame.rows()]
    return MetadataValue.md("\n".join([header, sep, *rows]))


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


def _gx_check(
    con: duckdb.DuckDBPyConnection, s: Settings, schema: str, table: str, mois: str
) -> AssetCheckResult:
    """Run the table's GX suite and translate its verdict; the logic stays in observatoire."""
    from observatoire import quality

    result = quality.validate(
        con,
        f"{schema}.{table}",
        mois,
        max_reject_rate=s.max_reject_rate,
        count_band=s.count_band,
        docs_dir=s.quality_docs_dir,
    )
    failed = result.failures()
    metadata: dict[str, object] = {
        "mois": mois,
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
    if result.docs_index is not None:
        metadata["data_docs"] = MetadataValue.path(str(result.docs_index))
    return AssetCheckResult(
        check_name=GX_CHECK,
        asset_key=AssetKey([schema, table]),
        passed=result.success,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


# ---------------------------------------------------------------- reference data (group ref)


@multi_asset(
    specs=[AssetSpec(["ref", t], group_name="ref") for t in reference.REFERENCE_FILES],
    can_subset=False,
)
def ref_nomenclatures(observatoire: ObservatoireResource) -> Iterator[MaterializeResult]:
    """COG, NAF, catégories juridiques, tranches and ESS rules from data/reference/."""
    s = observatoire.settings()
    with observatoire.connect() as con:
        counts = reference.load_reference(con, s.reference_dir)
    for table, n in counts.items():
        yield MaterializeResult(
            asset_key=["ref", table],
            metadata={
                "lignes": n,
                "fichier": str(s.reference_dir / reference.REFERENCE_FILES[table]),
            },
        )


@multi_asset(
    specs=[
        AssetSpec(
            ["ref", "territoire_communes"],
            group_name="ref",
            deps=[["ref", "communes"], ["ref", "ept_communes"]],
        ),
        AssetSpec(["ref", "territoire_niveaux"], group_name="ref", deps=[["ref", "communes"]]),
    ],
    can_subset=False,
)
def ref_territoire(observatoire: ObservatoireResource) -> Iterator[MaterializeResult]:
    """The configured territory's communes and the levels entirely inside it."""
    s = observatoire.settings()
    from observatoire import territory

    with observatoire.connect() as con:
        selected = territory.resolve(con, s.territoire)
        counts = territory.materialise(con, selected)
        levels = con.execute(
            "select niveau, count(distinct code_territoire) from ref.territoire_niveaux "
            "group by all order by min(rang)"
        ).fetchall()
    yield MaterializeResult(
        asset_key=["ref", "territoire_communes"],
        metadata={
            "territoire": s.territoire,
            "libelle": selected.label,
            "communes": counts["communes"],
        },
    )
    yield MaterializeResult(
        asset_key=["ref", "territoire_niveaux"],
        metadata={"niveaux": MetadataValue.json(dict(levels)), "lignes": counts["appartenances"]},
    )


# ---------------------------------------------------------------- SIRENE (groups raw, clean)


def _raw_asset(kind: str, extra_deps: list[list[str]]):  # noqa: ANN202 - dagster decorator
    table = f"sirene_{kind}"

    @asset(
        key=["raw", table],
        group_name="raw",
        partitions_def=monthly,
        deps=[["ref", "territoire_communes"], *extra_deps],
        check_specs=[_gx_spec("raw", table)],
        description=f"Stock SIRENE {kind} du mois, colonnes utiles en texte, limité au territoire.",
    )
    def _raw(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN202
        s = observatoire.settings()
        mois = _mois(context)
        with observatoire.connect() as con:
            warehouse.drop_stale_builds(con)  # left by a killed run, whatever its month
            if not warehouse.table_exists(con, "ref", "territoire_niveaux"):
                # first run on an empty warehouse: the reference job has not run yet
                refresh.load_reference_and_territory(con, s)
            result = refresh.ingest(con, s, kind, mois)
            preview = _preview(
                con,
                # file, line and reason only: the raw line itself may name a P unit
                "select fichier, ligne, colonne, motif from raw.sirene_rejets_lecture "
                "where mois = $mois and type_fichier = $k order by ligne limit 10",
                {"mois": mois, "k": kind},
            )
            check = _gx_check(con, s, "raw", table, mois)
        yield MaterializeResult(
            metadata={
                "mois": mois,
                "lignes": result.rows,
                "lignes_fichier": result.lines_total,
                "lignes_mal_formees": result.malformed,
                "fichier": str(result.path),
                "disposition": result.layout,
                "lignes_mal_formees_apercu": preview,
            }
        )
        yield check

    return _raw


raw_etablissements = _raw_asset("etablissements", [])
raw_unites_legales = _raw_asset("unites_legales", [["raw", "sirene_etablissements"]])


def _clean_asset(kind: str):  # noqa: ANN202 - dagster decorator
    table = f"sirene_{kind}"

    @asset(
        key=["clean", table],
        group_name="clean",
        partitions_def=monthly,
        deps=[
            ["raw", table],
            # the check lists an establishment only if its legal unit is diffusible too
            *([["clean", "sirene_unites_legales"]] if kind == "etablissements" else []),
            ["ref", "communes"],
            ["ref", "naf_rev2_sous_classes"],
            ["ref", "tranches_effectifs"],
            ["ref", "categories_juridiques_n3"],
        ],
        check_specs=[
            # the share of quarantined rows is one of the suite's expectations; over the
            # threshold the month is not even swapped in (clean_month raises)
            _gx_spec("clean", table),
        ],
        description=f"{kind} typés et contrôlés (Polars) ; rejets dans clean.{table}_rejets.",
    )
    def _clean(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN202
        from observatoire import clean

        s = observatoire.settings()
        mois = _mois(context)
        with observatoire.connect() as con:
            result = clean.clean_month(con, kind, mois, max_reject_rate=s.max_reject_rate)
            preview = _preview(
                con,
                f"select identifiant, colonne, motif from clean.{table}_rejets "
                f"where mois = $mois order by identifiant limit 10",
                {"mois": mois},
            )
            check = _gx_check(con, s, "clean", table, mois)
        yield MaterializeResult(
            metadata={
                "mois": mois,
                "lignes": result.rows_clean,
                "rejets": result.rows_rejected,
                "taux_de_rejet": round(result.reject_rate, 5),
                "motifs": MetadataValue.json(result.rejects_by_reason),
                "rejets_apercu": preview,
            }
        )
        yield check

    return _clean


clean_etablissements = _clean_asset("etablissements")
clean_unites_legales = _clean_asset("unites_legales")


@asset(
    key=["clean", "etablissements_perimetre"],
    group_name="clean",
    partitions_def=monthly,
    deps=[
        ["clean", "sirene_etablissements"],
        ["clean", "sirene_unites_legales"],
        ["ref", "ess_categories_juridiques"],
        ["ref", "ess_naf_exclusions"],
    ],
    check_specs=[_gx_spec("clean", "etablissements_perimetre")],
    description="Périmètre ESS décidé et tracé (règle) pour chaque établissement du mois.",
)
def etablissements_perimetre(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN201
    s = observatoire.settings()
    mois = _mois(context)
    with observatoire.connect() as con:
        n = indicators.compute_perimeter(con, mois)
        rules = con.execute(
            "select regle, count(*) from clean.etablissements_perimetre where mois = $mois "
            "group by all order by 2 desc",
            {"mois": mois},
        ).fetchall()
        check = _gx_check(con, s, "clean", "etablissements_perimetre", mois)
    yield MaterializeResult(
        metadata={"mois": mois, "lignes": n, "regles": MetadataValue.json(dict(rules))}
    )
    yield check


# ---------------------------------------------------------------- indicators


def _indicator_asset(name: str):  # noqa: ANN202 - dagster decorator
    entry = catalogue.indicators()[name]

    perimeter: AssetDep | list[str] = ["clean", "etablissements_perimetre"]
    if name == "evolution_mensuelle":
        # compares with the previous month: that partition is an input too
        perimeter = AssetDep(
            AssetKey(["clean", "etablissements_perimetre"]),
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        )

    @asset(
        key=["indicators", name],
        group_name="indicators",
        partitions_def=monthly,
        deps=[perimeter, ["ref", "territoire_niveaux"]],
        description=f"{entry.titre}. {entry.definition} Unité de compte : {entry.unite_de_compte}.",
        metadata={"sql": f"sql/indicators/{name}.sql", "unite": entry.unite},
    )
    def _indicator(
        context: AssetExecutionContext, observatoire: ObservatoireResource
    ) -> MaterializeResult:
        mois = _mois(context)
        with observatoire.connect() as con:
            n = indicators.compute_indicator(con, name, mois)
            preview = _preview(
                con, f"select * from indicators.{name} where mois = $mois limit 10", {"mois": mois}
            )
        return MaterializeResult(metadata={"mois": mois, "lignes": n, "apercu": preview})

    return _indicator


indicator_assets = [_indicator_asset(name) for name in catalogue.indicators()]


@asset(
    key=["publication", "observatoire"],
    group_name="publication",
    partitions_def=monthly,
    deps=[["indicators", name] for name in catalogue.indicators()],
    description="Instantané publié du mois (CSV, base DuckDB), basculé atomiquement.",
)
def publication(
    context: AssetExecutionContext, observatoire: ObservatoireResource
) -> MaterializeResult:
    s = observatoire.settings()
    mois = _mois(context)
    with observatoire.connect() as con:
        pub = publish.publish(
            con,
            s.publication_dir,
            mois,
            context.run.run_id[:12],
            metadata={"territoire": s.territoire},
        )
        figures = refresh.headline(con, mois)
    return MaterializeResult(
        metadata={
            "mois": mois,
            "dossier": str(pub.path.resolve()),
            "lignes": MetadataValue.json(pub.rows),
            "chiffres_cles": MetadataValue.json({k: str(v) for k, v in figures.items()}),
        }
    )


sirene_monthly_job = define_asset_job(
    "sirene_mensuel",
    selection=AssetSelection.groups("raw", "clean", "indicators", "publication"),
    description="Rafraîchissement mensuel : stock SIRENE du mois -> indicateurs -> publication.",
)
reference_job = define_asset_job("referentiels", selection=AssetSelection.groups("ref"))

# INSEE puts the new stock online on the first working days of the month: run on the 3rd.
sirene_monthly_schedule = build_schedule_from_partitioned_job(
    sirene_monthly_job,
    day_of_month=3,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.STOPPED,
)


@run_failure_sensor(
    monitored_jobs=[sirene_monthly_job],
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Note dans publication/etat.json qu'un rafraîchissement a échoué et que la publication "
        "en ligne reste la précédente, pour que les lecteurs (CLI, page web) le disent."
    ),
)
def echec_rafraichissement(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    if not partition:
        return
    settings = Settings.from_env()
    message = context.failure_event.message or "échec du run Dagster"
    publish.record_attempt(
        settings.publication_dir, partition[:7], run.run_id[:12], message.splitlines()[0]
    )


defs = Definitions(
    assets=[
        ref_nomenclatures,
        ref_territoire,
        raw_etablissements,
        raw_unites_legales,
        clean_etablissements,
        clean_unites_legales,
        etablissements_perimetre,
        *indicator_assets,
        publication,
    ],
    jobs=[sirene_monthly_job, reference_job],
    schedules=[sirene_monthly_schedule],
    sensors=[echec_rafraichissement],
    resources={"observatoire": ObservatoireResource()},
    executor=in_process_executor,
)

__all__ = ["defs", "AssetKey"]
