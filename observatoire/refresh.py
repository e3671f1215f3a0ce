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
    errors,
    indicators,
    publish,
    reference,
    runlock,
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
from observatoire.mois import InvalidMonthError, parse_mois, stock_window
from observatoire.settings import Settings

if TYPE_CHECKING:  # GX is imported only when checks run
    from observatoire.quality import SuiteResult

log = logging.getLogger("observatoire.refresh")

KINDS = ("etablissements", "unites_legales")


RejectRateError = errors.RejectRateError


class QualityError(RuntimeError):
    """A blocking quality check failed: the month is not published."""

    def __init__(self, results: list[SuiteResult]) -> None:
        self.results = results
        super().__init__(" | ".join(r.summary_fr() for r in results if not r.success))


class StaleStockError(ValueError):
    """The stock read is older than the month asked: it cannot be that month's stock."""


# Another refresh or a Dagster run holds the warehouse: this run did nothing, and the one that
# runs will say how it ended (recording a failure now would show readers a refused month while
# it is being refreshed).
BUSY: tuple[type[Exception], ...] = (runlock.RefreshRunningError, warehouse.WarehouseLockedError)

# Failures that come from the data or from what the user asked (not from a bug): the CLI reports
# them in one French sentence, without a traceback.
REFUSALS: tuple[type[Exception], ...] = (
    InvalidMonthError,
    StaleStockError,
    *BUSY,
    reference.ReferenceFileError,
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


# what the user changes to point at another file (.env.example)
SOURCE_SETTINGS = {
    "etablissements": "OBSERVATOIRE_SIRENE_ETABLISSEMENTS",
    "unites_legales": "OBSERVATOIRE_SIRENE_UNITES_LEGALES",
}
LABELS = {"etablissements": "établissements", "unites_legales": "unités légales"}


def locate_source(settings: Settings, kind: str, mois: str) -> Path:
    """Local path of the month's file, downloading it first when the setting is a URL.

    A download is checked in full (zip CRC, header) before it replaces the previous file; a
    local file is checked while it is read (header first, CRC at the end of the zip member).
    Either way the file must be a readable regular file, said in a sentence naming the setting.
    """
    source = settings.source(kind, mois)
    validate: Callable[[Path], None] | None = None
    url = source.startswith(("http://", "https://"))
    if url:
        bare = source.rsplit("?", 1)[0].lower()
        if bare.endswith(".zip"):
            validate = validate_sirene_zip(kind)
        elif bare.endswith(".csv"):
            validate = validate_sirene_csv(kind)
    else:
        _check_source(Path(source).expanduser(), kind, mois)
    path = fetch(source, Path(settings.download_dir) / mois, validate=validate).path
    if url:
        _check_source(path, kind, mois)
    return path


def _check_source(path: Path, kind: str, mois: str) -> None:
    try:
        sirene.check_source(path)
    except sirene.SireneFileError as exc:
        raise sirene.SireneFileError(
            f"Stock SIRENE des {LABELS[kind]} de {mois} : {exc} "
            f"(chemin réglé par {SOURCE_SETTINGS[kind]})"
        ) from None


def locate_sources(settings: Settings, mois: str) -> dict[str, Path]:
    """Both files of the month, present and readable, before the long read of the first."""
    return {kind: locate_source(settings, kind, mois) for kind in KINDS}


def ingest(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    kind: str,
    mois: str,
    path: Path | None = None,
) -> sirene.IngestResult:
    path = path or locate_source(settings, kind, mois)
    communes_table = (
        None if settings.territoire.strip().lower() == "france" else ("ref.territoire_communes")
    )
    result = sirene.ingest(
        con,
        kind,
        path,
        mois,
        communes_table=communes_table,
        max_malformed_rate=settings.max_reject_rate,
    )
    if kind == "etablissements":
        check_stock_date(con, mois, path)
    return result


def check_stock_date(con: duckdb.DuckDBPyConnection, mois: str, path: Path | None = None) -> None:
    """Refuse a month later than the establishment stock can be, before the legal units are read.

    The stock of month M was extracted at the end of M-1 or the start of M: a latest treatment
    date before M-1 means an older file, or a month mistyped (2027-03 for 2026-03). Judged on
    the rows read, with the tolerance of the quality check `date_du_stock`: under
    `STOCK_DATE_MIN_ROWS` rows a quiet territory may have had no treatment for months, and that
    check only warns. A stock newer than the month is left to that check.
    """
    from observatoire import quality

    rows, latest = con.execute(
        'select count(*), max(try_cast(left("dateDernierTraitementEtablissement", 10) as date)) '
        f"from {warehouse.month_table('raw', sirene.RAW_TABLES['etablissements'], mois)}"
    ).fetchone()  # type: ignore[misc]
    start, end = stock_window(mois)
    if rows < quality.STOCK_DATE_MIN_ROWS or latest is None or latest >= start:
        return
    where = f" ({path})" if path else ""
    raise StaleStockError(
        f"Le stock d'établissements lu{where} date du {latest:%d/%m/%Y} (dernier traitement "
        f"INSEE sur {rows} lignes), il ne peut pas être celui de {mois} : le stock d'un mois a "
        f"son dernier traitement entre le {start:%d/%m/%Y} et le {end:%d/%m/%Y}. Vérifier le "
        "mois demandé ou le fichier ; rien n'a été publié."
    )


def clean_kind(
    con: duckdb.DuckDBPyConnection, settings: Settings, kind: str, mois: str
) -> clean.CleanResult:
    return clean.clean_month(con, kind, mois, max_reject_rate=settings.max_reject_rate)


def check_quality(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    suites: tuple[str, ...],
    mois: str,
    validated: list[str] | None = None,
) -> list[SuiteResult]:
    """Run the Great Expectations suites of one layer; stop the refresh on a blocking failure.

    Called after each layer, so that a bad layer stops what depends on it (as Dagster's
    blocking checks do) and the last good publication stays live.
    """
    from observatoire import quality

    if validated is not None:
        validated.extend(suites)
    results = [
        quality.validate(
            con,
            suite,
            mois,
            max_reject_rate=settings.max_reject_rate,
            count_band=settings.count_band,
            drift_limits=settings.drift_limits,
            docs_dir=settings.quality_docs_dir,
            build_docs=False,  # once at the end of the refresh (`_refresh`)
        )
        for suite in suites
    ]
    failed = [r for r in results if not r.success]
    if failed:
        raise QualityError(failed)
    return results


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def refresh(
    settings: Settings,
    mois: str,
    run_id: str | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Full refresh of one month, from the source files to a switched publication.

    Any failure leaves the live publication as it was and is recorded beside it
    (`etat.json`), so that readers can say the new month was refused and why. One refresh runs
    at a time per warehouse: another one is refused (or, with `wait`, waited for).
    """
    run_id = run_id or new_run_id()
    try:
        mois = parse_mois(mois)
    except InvalidMonthError as exc:
        _record_failure(settings, mois, run_id, exc)
        raise
    # a refusal to take the lock is not recorded (BUSY); a failure under it is, before release
    with runlock.refresh_lock(settings.warehouse, mois, wait=wait, on_wait=on_wait):
        try:
            return _refresh(settings, mois, run_id)
        except BUSY:
            raise
        except Exception as exc:
            _record_failure(settings, mois, run_id, exc)
            raise


def _record_failure(settings: Settings, mois: str, run_id: str, exc: BaseException) -> None:
    # on a full disk even this small file may not be written: the original error matters more
    try:
        publish.record_attempt(settings.publication_dir, mois, run_id, _first_line(exc))
    except OSError as status_error:
        log.error("etat.json non écrit : %s", status_error)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {sirene.error_summary(exc)}"[:1000]


def _refresh(settings: Settings, mois: str, run_id: str) -> RefreshReport:
    validated: list[str] = []
    try:
        return _steps(settings, mois, run_id, validated)
    finally:
        # the Data Docs once for the whole refresh, passed or stopped by a check: rebuilding
        # the site after each suite cost half a second per suite on the demo
        if validated and settings.quality_docs_dir is not None:
            from observatoire import quality

            try:
                quality.build_docs(settings.quality_docs_dir)
            except Exception as exc:  # the docs are a view: they never fail a month
                log.warning("Data Docs non reconstruites : %s", exc)


def _steps(settings: Settings, mois: str, run_id: str, validated: list[str]) -> RefreshReport:
    report = RefreshReport(mois=mois, territoire=settings.territoire)
    # both files found and readable (downloaded if need be) before anything is read
    paths = locate_sources(settings, mois)
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
        report.quality += check_quality(con, settings, sources.RAW_SUITES, mois, validated)
        for kind in KINDS:
            report.ingested[kind] = ingest(con, settings, kind, mois, paths[kind])
        report.quality += check_quality(con, settings, RAW_SUITES, mois, validated)
        for kind in KINDS:
            report.cleaned[kind] = clean_kind(con, settings, kind, mois)
        report.quality += check_quality(con, settings, CLEAN_SUITES, mois, validated)
        report.perimetre = indicators.compute_perimeter(con, mois)
        report.quality += check_quality(
            con, settings, ("clean.etablissements_perimetre",), mois, validated
        )
        cleaned = sources.clean(con, settings)
        report.quality += check_quality(con, settings, sources.CLEAN_SUITES, mois, validated)
        linked = sources.link(con, settings, mois)
        report.quality += check_quality(con, settings, sources.LINK_SUITES, mois, validated)
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
