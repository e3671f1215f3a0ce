"""One month's refresh: the ordered steps of `observatoire.steps`, under the refresh lock.

The CLI runs them through Dagster (`pipelines/run.py`), so that its run, materialisations and
checks show in the UI; tests and benchmarks may run them directly (`run_direct`), which is the
same list without an orchestrator. Either way a failure leaves the live publication as it was
and is recorded beside it (`etat.json`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from observatoire import indicators, linkage, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import errors, runlock, territory, warehouse
from observatoire.core.mois import InvalidMonthError, parse_mois
from observatoire.core.settings import Settings
from observatoire.publication import publish
from observatoire.sources import questionnaire, reference, reseaux, sirene
from observatoire.sources.download import DownloadError

if TYPE_CHECKING:  # GX is imported only when checks run
    from observatoire.quality import SuiteResult

log = logging.getLogger(__name__)

KINDS = steps.KINDS
RejectRateError = errors.RejectRateError
QualityError = steps.QualityError
StaleStockError = steps.StaleStockError

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
    territory.TerritoryError,
    RejectRateError,
    QualityError,
    publish.UnverifiedMonthError,
    sirene.SireneFileError,
    indicators.PrivacyError,
    DownloadError,
    # a wave, a network list or a decisions file dropped in the inbox that cannot be used
    questionnaire.QuestionnaireError,
    reseaux.NetworkListError,
    linkage.DecisionFileError,
)


@dataclass
class RefreshReport:
    """The month's step results, gathered for the CLI's summary."""

    mois: str
    territoire: str
    ingested: dict[str, sirene.IngestResult] = field(default_factory=dict)
    cleaned: dict[str, clean.CleanResult] = field(default_factory=dict)
    perimetre: int = 0
    # units containing the territory: published or not this month, and why (indicators.Coverage)
    couverture: list[Any] = field(default_factory=list)
    indicateurs: dict[str, int] = field(default_factory=dict)
    publication: publish.Publication | None = None
    quality: list[SuiteResult] = field(default_factory=list)
    # inbox: questionnaire.WaveIngest / WaveClean, reseaux.NetworkIngest / NetworkClean
    lectures_vagues: list[Any] = field(default_factory=list)
    lectures_reseaux: list[Any] = field(default_factory=list)
    vagues: list[Any] = field(default_factory=list)
    reseaux: list[Any] = field(default_factory=list)
    decisions: int = 0
    rapprochement: linkage.LinkResult | None = None
    file_a_revoir: Path | None = None
    secret: Any = None  # secrecy.tables.MaskReport
    steps: list[str] = field(default_factory=list)  # names of the steps run, in order
    dagster_run_id: str | None = None  # when run through Dagster (the CLI): its run in the UI

    def add(self, name: str, result: steps.StepResult) -> None:
        self.steps.append(name)
        self.quality += result.checks
        for key, value in result.values.items():
            if key == "territoire":  # the resolved territory; the report keeps the setting
                continue
            if key not in _REPORTED:
                raise KeyError(f"étape {name} : valeur « {key} » inconnue du rapport")
            setattr(self, key, value)


# what a step may report (not the bookkeeping fields the runner fills)
_REPORTED = {f.name for f in fields(RefreshReport)} - {
    "mois",
    "territoire",
    "quality",
    "steps",
    "dagster_run_id",
}

Executor = Callable[[Settings, str, str], RefreshReport]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_direct(settings: Settings, mois: str, run_id: str) -> RefreshReport:
    """The steps in order in this process, one connection, stopping at a failed check."""
    report = RefreshReport(mois=mois, territoire=settings.territoire)
    validated: list[str] = []
    try:
        with warehouse.connect(
            settings.warehouse,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        ) as con:
            ctx = steps.StepContext(settings, mois, run_id, con, validated)
            for step in steps.STEPS:
                result = step.run(ctx)
                report.add(step.name, result)
                if result.failed:
                    raise QualityError(result.failed)
    finally:
        # the Data Docs once for the whole refresh, passed or stopped by a check
        build_docs(settings, validated)
    return report


def build_docs(settings: Settings, validated: list[str]) -> None:
    if not validated or settings.quality_docs_dir is None:
        return
    from observatoire import quality

    try:
        quality.build_docs(settings.quality_docs_dir)
    except Exception as exc:  # the docs are a view: they never fail a month
        log.warning("Data Docs non reconstruites : %s", exc)


def refresh(
    settings: Settings,
    mois: str,
    run_id: str | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    executor: Executor = run_direct,
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
        record_failure(settings, mois, run_id, exc)
        raise
    # a refusal to take the lock is not recorded (BUSY); a failure under it is, before release
    with runlock.refresh_lock(settings.warehouse, mois, wait=wait, on_wait=on_wait):
        try:
            return executor(settings, mois, run_id)
        except BUSY:
            raise
        except Exception as exc:
            record_failure(settings, mois, run_id, exc)
            raise


def record_failure(settings: Settings, mois: str, run_id: str, exc: BaseException) -> None:
    # on a full disk even this small file may not be written: the original error matters more
    try:
        publish.record_attempt(settings.publication_dir, mois, run_id, _first_line(exc))
    except OSError as status_error:
        log.error("etat.json non écrit : %s", status_error)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {sirene.error_summary(exc)}"[:1000]
