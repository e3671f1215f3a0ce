"""Dagster wiring of the observatory: thin assets over `observatoire`'s library functions.

Asset key = DuckDB table = group (`clean/sirene_etablissements` is `clean.sirene_etablissements`
in group `clean`). SIRENE-derived assets are partitioned by stock month; every asset writes the
same DuckDB file, so runs execute in process and one at a time (dagster.yaml).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

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
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
    multi_asset,
    run_failure_sensor,
    sensor,
)

from observatoire import catalogue, indicators, publish, reference, refresh, sources, warehouse
from observatoire.mois import parse_mois
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
    """The partition's month (keys are days, `2026-11-01`), checked as the CLI checks `--mois`."""
    return parse_mois(context.partition_key[:7])


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
        drift_limits=s.drift_limits,
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
        deps=[["ref", "territoire_communes"], ["ref", "cog_communes_anciennes"], *extra_deps],
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
                "enregistrements_fichier": result.records,
                "enregistrements_lus": result.records_read,
                "enregistrements_mal_formes": result.malformed,
                "lignes_physiques": result.physical_lines,
                "lecture_enregistrement_par_enregistrement": result.recovered,
                "fichier": str(result.path),
                "disposition": result.layout,
                "enregistrements_mal_formes_apercu": preview,
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
            ["ref", "cog_communes_anciennes"],
            ["ref", "naf_2025_niveaux"],
            ["ref", "naf_rev2_naf_2025"],
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
                # codes kept although no current list knows them (clean.codes_hors_nomenclature)
                "codes_hors_nomenclature": MetadataValue.json(result.drift_summary()),
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
        ["ref", "naf_rev2_naf_2025"],
        ["ref", "categories_juridiques_n3"],
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


# ---------------------------------------------------------------- questionnaires and networks

# Waves and lists are not monthly: they are read from data/inbox/ as they stand when a run
# starts. Their checks are recorded under the month being published (the run's partition), which
# is what the publication gate asks about.


def _run_month(context: AssetExecutionContext, con: duckdb.DuckDBPyConnection) -> str:
    """The month a source's verdict is recorded for: the run's partition, else the latest one."""
    tag = context.run.tags.get("dagster/partition")
    if tag:
        return parse_mois(tag[:7])
    row = None
    if warehouse.table_exists(con, "clean", "etablissements_perimetre"):
        row = con.execute("select max(mois) from clean.etablissements_perimetre").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(
            "aucun mois SIRENE dans l'entrepôt : lancer d'abord le rafraîchissement mensuel "
            "(job sirene_mensuel), puis les sources déposées seront rapprochées de ce mois"
        )
    return str(row[0])


def _source_asset(
    schema: str,
    table: str,
    deps: list[list[str]],
    description: str,
    step: Callable[[duckdb.DuckDBPyConnection, Settings], dict[str, object]],
):  # noqa: ANN202 - dagster decorator
    """An unpartitioned asset over one step of observatoire.sources, with its blocking check."""

    @asset(
        key=[schema, table],
        group_name=schema,
        deps=deps,
        check_specs=[_gx_spec(schema, table)],
        description=description,
    )
    def _source(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN202
        s = observatoire.settings()
        with observatoire.connect() as con:
            mois = _run_month(context, con)
            sources.ensure_tables(con)
            metadata = step(con, s)
            check = _gx_check(con, s, schema, table, mois)
        yield MaterializeResult(metadata={"mois_controle": mois, **metadata})
        yield check

    return _source


def _ingest_waves(con: duckdb.DuckDBPyConnection, s: Settings) -> dict[str, object]:
    from observatoire import questionnaire

    waves = questionnaire.ingest_all(
        con,
        s.inbox_dir,
        download_dir=Path(s.download_dir) / "questionnaires",
        max_reject_rate=s.max_reject_rate,
    )
    return {
        "vagues": len(waves),
        "lectures": _preview(
            con,
            "select vague, fichier_source, encodage, separateur, lignes_lues, "
            "lignes_mal_formees from raw.questionnaire_lectures order by vague",
            {},
        ),
    }


def _ingest_lists(con: duckdb.DuckDBPyConnection, s: Settings) -> dict[str, object]:
    from observatoire import reseaux

    lists = reseaux.ingest_all(
        con, s.inbox_dir, download_dir=Path(s.download_dir), max_reject_rate=s.max_reject_rate
    )
    return {
        "reseaux": len(lists),
        "lectures": _preview(
            con,
            "select reseau, fichier_source, lignes_lues, lignes_mal_formees "
            "from raw.reseaux_lectures order by reseau",
            {},
        ),
    }


def _cleaned(
    con: duckdb.DuckDBPyConnection, table: str, key: str, rejects: str, label: str
) -> dict[str, object]:
    counts = con.execute(f"select {key}, count(*) from clean.{table} group by all order by 1")
    return {
        label: MetadataValue.json(dict(counts.fetchall())),
        "rejets_apercu": _preview(
            con,
            f"select {key}, ligne, colonne, motif from clean.{rejects} "
            f"order by {key}, ligne limit 10",
            {},
        ),
    }


def _clean_waves(con: duckdb.DuckDBPyConnection, s: Settings) -> dict[str, object]:
    from observatoire import questionnaire

    questionnaire.clean_all(con, s.inbox_dir)
    return _cleaned(con, "questionnaire_reponses", "vague", "questionnaire_rejets", "reponses")


def _clean_lists(con: duckdb.DuckDBPyConnection, s: Settings) -> dict[str, object]:
    from observatoire import reseaux

    reseaux.clean_all(con, s.inbox_dir)
    return _cleaned(con, "reseaux_membres", "reseau", "reseaux_rejets", "membres")


raw_questionnaires = _source_asset(
    "raw",
    "questionnaire_cellules",
    [["ref", "communes"]],
    "Réponses des vagues du questionnaire « Mieux vous connaître » déposées dans "
    "data/inbox/questionnaires/, cellule par cellule, telles que dans le fichier (données "
    "personnelles comprises : elles ne vont jamais plus loin que cette couche).",
    _ingest_waves,
)
raw_reseaux = _source_asset(
    "raw",
    "reseaux_cellules",
    [["ref", "communes"]],
    "Listes de membres des réseaux (ressourceries, SIAE, ESUS, SCOP…) déclarées dans "
    "data/inbox/reseaux/*.toml, depuis un fichier ou une URL, cellule par cellule.",
    _ingest_lists,
)
clean_questionnaires = _source_asset(
    "clean",
    "questionnaire_reponses",
    [["raw", "questionnaire_cellules"], ["ref", "communes"]],
    "Réponses nettoyées (sans nom, courriel ni téléphone des répondants), valeurs typées "
    "et rattachées à la taxonomie des besoins ; rejets dans clean.questionnaire_rejets.",
    _clean_waves,
)
clean_reseaux = _source_asset(
    "clean",
    "reseaux_membres",
    [["raw", "reseaux_cellules"], ["ref", "communes"]],
    "Membres des réseaux, champs déclarés seulement (aucune donnée de contact) ; "
    "rejets dans clean.reseaux_rejets.",
    _clean_lists,
)


@asset(
    key=["clean", "rapprochements"],
    group_name="clean",
    partitions_def=monthly,
    deps=[
        ["clean", "questionnaire_reponses"],
        ["clean", "reseaux_membres"],
        ["clean", "sirene_etablissements"],
        ["clean", "sirene_unites_legales"],
    ],
    check_specs=[_gx_spec("clean", "rapprochements")],
    description=(
        "Réponses et membres rapprochés des établissements SIRENE du mois (SIRET, SIREN + "
        "commune, nom + adresse par splink, décisions de revue) ; file de revue exportée en CSV "
        "dans data/revue/."
    ),
)
def rapprochements(context: AssetExecutionContext, observatoire: ObservatoireResource):  # noqa: ANN201
    s = observatoire.settings()
    mois = _mois(context)
    with observatoire.connect() as con:
        sources.ensure_tables(con)
        decisions = sources.import_inbox_decisions(con, s.inbox_dir)
        sources.link(con, s, mois)
        by_method = con.execute(
            "select source, methode, statut, count(*) from clean.rapprochements "
            "where mois = $mois group by all order by all",
            {"mois": mois},
        ).fetchall()
        check = _gx_check(con, s, "clean", "rapprochements", mois)
        # written only once checked: the check says the queue names no non-diffusible unit
        queue = sources.export_review(con, s, mois) if check.passed else None
    yield MaterializeResult(
        metadata={
            "mois": mois,
            "decisions_importees": decisions,
            "liens": MetadataValue.json(
                [{"source": a, "methode": b, "statut": c, "n": n} for a, b, c, n in by_method]
            ),
            "file_a_revoir": MetadataValue.path(str(queue)) if queue else "non écrite",
        }
    )
    yield check


SOURCE_ASSETS = [
    raw_questionnaires,
    raw_reseaux,
    clean_questionnaires,
    clean_reseaux,
    rapprochements,
]


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

    deps: list[AssetDep | list[str]] = [perimeter, ["ref", "territoire_niveaux"]]
    if "clean.rapprochements" in warehouse.sql_text("indicators", name):
        # needs and network indicators read the month's links to SIRENE
        deps.append(["clean", "rapprochements"])

    @asset(
        key=["indicators", name],
        group_name="indicators",
        partitions_def=monthly,
        deps=deps,
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
            metadata={
                "territoire": s.territoire,
                "synthetique": refresh.synthetic_sources(s, mois),
            },
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


sources_job = define_asset_job(
    "sources_externes",
    selection=AssetSelection.assets(*(k for a in SOURCE_ASSETS for k in a.keys)).downstream(),
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
    state = sources.inbox_state(settings.inbox_dir)
    # cursor: the inbox as last seen, and how many runs it started; the count goes into the
    # run key, so a file put back to an earlier content still gets a run of its own (Dagster
    # starts one run per key, ever)
    cursor = json.loads(context.cursor) if context.cursor else {}
    before = cursor.get("etat", {}) if "etat" in cursor else cursor
    count = int(cursor.get("n", 0)) if "etat" in cursor else 0
    changes = sources.describe_changes(before, state)
    if not changes:
        return SkipReason("aucun changement dans " + str(settings.inbox_dir))
    mois = publish.published_month(settings.publication_dir)
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
        *SOURCE_ASSETS,
        *indicator_assets,
        publication,
    ],
    jobs=[sirene_monthly_job, reference_job, sources_job],
    schedules=[sirene_monthly_schedule],
    sensors=[echec_rafraichissement, depot_inbox],
    resources={"observatoire": ObservatoireResource()},
    executor=in_process_executor,
)

__all__ = ["defs", "AssetKey"]
