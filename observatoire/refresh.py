"""One month's refresh as plain function calls: the steps Dagster's assets run one by one.

Keeping the steps here (not in `pipelines/`) lets the CLI, the tests and the orchestrator run
exactly the same code, and keeps the package free of any Dagster import.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from observatoire import (
    clean,
    indicators,
    publish,
    reference,
    sirene,
    sources,
    territory,
    warehouse,
)
from observatoire.download import (
    DownloadError,
    fetch,
    validate_sirene_csv,
    validate_sirene_zip,
)
from observatoire.settings import Settings

if TYPE_CHECKING:  # GX is imported only when checks run
    from observatoire.quality import SuiteResult

log = logging.getLogger("observatoire.refresh")

KINDS = ("etablissements", "unites_legales")


RejectRateError = clean.RejectRateError


class QualityError(RuntimeError):
    """A blocking quality check failed: the month is not published."""

    def __init__(self, results: list[SuiteResult]) -> None:
        self.results = results
        super().__init__(" | ".join(r.summary_fr() for r in results if not r.success))


# Failures that come from the data (not from a bug): the CLI reports them without a traceback.
REFUSALS: tuple[type[Exception], ...] = (
    RejectRateError,
    QualityError,
    publish.UnverifiedMonthError,
    sirene.SireneFileError,
    indicators.PrivacyError,
    DownloadError,
    # a wave, a network list or a decisions file dropped in the inbox that cannot be used
    sources.questionnaire.QuestionnaireError,
    sources.reseaux.NetworkListError,
    sources.linkage.DecisionFileError,
)


@dataclass
class RefreshReport:
    mois: str
    territoire: str
    ingested: dict[str, sirene.IngestResult] = field(default_factory=dict)
    cleaned: dict[str, clean.CleanResult] = field(default_factory=dict)
    perimetre: int = 0
    indicateurs: dict[str, int] = field(default_factory=dict)
    publication: publish.Publication | None = None
    quality: list[SuiteResult] = field(default_factory=list)
    sources: sources.SourcesReport | None = None


RAW_SUITES = ("raw.sirene_etablissements", "raw.sirene_unites_legales")
CLEAN_SUITES = ("clean.sirene_etablissements", "clean.sirene_unites_legales")


def load_reference_and_territory(
    con: duckdb.DuckDBPyConnection, settings: Settings
) -> territory.Territory:
    reference.load_reference(con, settings.reference_dir)
    selected = territory.resolve(con, settings.territoire)
    territory.materialise(con, selected)
    return selected


def locate_source(settings: Settings, kind: str, mois: str) -> Path:
    """Local path of the month's file, downloading it first when the setting is a URL.

    A download is checked in full (zip CRC, header) before it replaces the previous file; a
    local file is checked while it is read (header first, CRC at the end of the zip member).
    """
    source = settings.source(kind, mois)
    validate: Callable[[Path], None] | None = None
    if source.startswith(("http://", "https://")):
        bare = source.rsplit("?", 1)[0].lower()
        if bare.endswith(".zip"):
            validate = validate_sirene_zip(kind)
        elif bare.endswith(".csv"):
            validate = validate_sirene_csv(kind)
    return fetch(source, Path(settings.download_dir) / mois, validate=validate).path


def ingest(
    con: duckdb.DuckDBPyConnection, settings: Settings, kind: str, mois: str
) -> sirene.IngestResult:
    path = locate_source(settings, kind, mois)
    communes_table = (
        None if settings.territoire.strip().lower() == "france" else ("ref.territoire_communes")
    )
    return sirene.ingest(
        con,
        kind,
        path,
        mois,
        communes_table=communes_table,
        max_malformed_rate=settings.max_reject_rate,
    )


def clean_kind(
    con: duckdb.DuckDBPyConnection, settings: Settings, kind: str, mois: str
) -> clean.CleanResult:
    return clean.clean_month(con, kind, mois, max_reject_rate=settings.max_reject_rate)


def check_quality(
    con: duckdb.DuckDBPyConnection, settings: Settings, suites: tuple[str, ...], mois: str
) -> list[SuiteResult]:
    """Run the Great Expectations suites of one layer; stop the refresh on a blocking failure.

    Called after each layer, so that a bad layer stops what depends on it (as Dagster's
    blocking checks do) and the last good publication stays live.
    """
    from observatoire import quality

    results = [
        quality.validate(
            con,
            suite,
            mois,
            max_reject_rate=settings.max_reject_rate,
            count_band=settings.count_band,
            drift_limits=settings.drift_limits,
            docs_dir=settings.quality_docs_dir,
        )
        for suite in suites
    ]
    failed = [r for r in results if not r.success]
    if failed:
        raise QualityError(failed)
    return results


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def refresh(settings: Settings, mois: str, run_id: str | None = None) -> RefreshReport:
    """Full refresh of one month, from the source files to a switched publication.

    Any failure leaves the live publication as it was and is recorded beside it
    (`etat.json`), so that readers can say the new month was refused and why.
    """
    run_id = run_id or new_run_id()
    try:
        return _refresh(settings, mois, run_id)
    except Exception as exc:
        # on a full disk even this small file may not be written: the original error matters more
        try:
            publish.record_attempt(settings.publication_dir, mois, run_id, _first_line(exc))
        except OSError as status_error:
            log.error("etat.json non écrit : %s", status_error)
        raise


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {sirene.error_summary(exc)}"[:1000]


def _refresh(settings: Settings, mois: str, run_id: str) -> RefreshReport:
    report = RefreshReport(mois=mois, territoire=settings.territoire)
    with warehouse.connect(
        settings.warehouse,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    ) as con:
        dropped = warehouse.drop_stale_builds(con)
        if dropped:
            log.warning("tables de construction abandonnées supprimées : %s", ", ".join(dropped))
        selected = load_reference_and_territory(con, settings)
        log.info("territoire %s : %d communes", selected.label, len(selected.communes))
        # the dropped files first: a broken wave or list is refused before the long SIRENE read
        report.sources = sources.ingest(con, settings)
        report.quality += check_quality(con, settings, sources.RAW_SUITES, mois)
        for kind in KINDS:
            report.ingested[kind] = ingest(con, settings, kind, mois)
        report.quality += check_quality(con, settings, RAW_SUITES, mois)
        for kind in KINDS:
            report.cleaned[kind] = clean_kind(con, settings, kind, mois)
        report.quality += check_quality(con, settings, CLEAN_SUITES, mois)
        report.perimetre = indicators.compute_perimeter(con, mois)
        report.quality += check_quality(con, settings, ("clean.etablissements_perimetre",), mois)
        cleaned = sources.clean(con, settings)
        report.quality += check_quality(con, settings, sources.CLEAN_SUITES, mois)
        linked = sources.link(con, settings, mois)
        report.quality += check_quality(con, settings, sources.LINK_SUITES, mois)
        report.sources.vagues, report.sources.reseaux = cleaned.vagues, cleaned.reseaux
        report.sources.rapprochement = linked.rapprochement
        report.sources.file_a_revoir = sources.export_review(con, settings, mois)
        report.indicateurs = indicators.compute_all(con, mois)
        report.publication = publish.publish(
            con,
            settings.publication_dir,
            mois,
            run_id,
            metadata={
                "territoire": settings.territoire,
                "libelle_territoire": selected.label,
                "synthetique": synthetic_sources(settings, mois),
            },
        )
    return report


def synthetic_sources(settings: Settings, mois: str) -> bool:
    """Generated demo data must say so wherever its figures are read (page, bundles)."""
    return (settings.data_dir / "sirene" / mois / "synthetic_manifest.json").exists()


def headline(con: duckdb.DuckDBPyConnection, mois: str) -> dict[str, object]:
    """Key figures for the territory as a whole (its widest level)."""
    top = con.execute(
        "select niveau, code_territoire, libelle_territoire from indicators.etablissements_actifs "
        "where mois = $mois order by case niveau when 'selection' then 9 when 'region' then 8 "
        "when 'departement' then 7 when 'epci' then 6 when 'ept' then 5 else 0 end desc, "
        "code_territoire limit 1",
        {"mois": mois},
    ).fetchone()
    if top is None:
        return {}
    niveau, code, libelle = top
    key = {"mois": mois, "niveau": niveau, "code": code}

    def one(sql: str) -> object:
        row = con.execute(sql, key).fetchone()
        return row[0] if row else None

    where = "mois = $mois and niveau = $niveau and code_territoire = $code"
    cube_total = "section_naf = 'ensemble' and tranche_effectifs = 'ensemble'"
    return {
        "territoire": libelle,
        "niveau": niveau,
        "etablissements_actifs": one(
            f"select nb_etablissements from indicators.etablissements_actifs where {where} "
            f"and perimetre = 'ensemble' and famille = 'ensemble' and {cube_total}"
        ),
        "etablissements_actifs_ess": one(
            f"select nb_etablissements from indicators.etablissements_actifs where {where} "
            f"and perimetre = 'ess' and famille = 'ensemble' and {cube_total}"
        ),
        "etablissements_employeurs_ess": one(
            f"select nb_etablissements_employeurs from indicators.etablissements_employeurs "
            f"where {where} and perimetre = 'ess' and famille = 'ensemble' and {cube_total}"
        ),
        "emplois_ess": con.execute(
            f"select emplois_bas, emplois_central, emplois_haut, part_tranche_inconnue "
            f"from indicators.emplois_salaries_estimes where {where} and perimetre = 'ess' "
            f"and famille = 'ensemble' and {cube_total}",
            key,
        ).fetchone(),
        "part_ess_emplois_prives": one(
            f"select part_ess_emplois from indicators.part_ess_emploi_prive where {where} "
            f"and {cube_total}"
        ),
    }
