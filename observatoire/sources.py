"""Questionnaire waves, network lists and review decisions: from `data/inbox/` to links.

The three kinds of files dropped by the data team share one drop zone and one life cycle
(read into raw, cleaned, linked to the month's SIRENE), and the Dagster sensor, the CLI and
the tests must agree on what "the inbox changed" means. That agreement lives here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from observatoire import linkage, questionnaire, reseaux, warehouse
from observatoire.settings import Settings

log = logging.getLogger("observatoire.sources")

# sub-folders of the inbox that hold sources; anything else there is ignored (and said so)
INBOX_PARTS = ("questionnaires", "reseaux", "decisions")

# SQL files of `sql/clean/` that are views over the sources, not monthly tables
VIEWS = ("a_rapprocher",)

RAW_SUITES = ("raw.questionnaire_cellules", "raw.reseaux_cellules")
CLEAN_SUITES = ("clean.questionnaire_reponses", "clean.reseaux_membres")
LINK_SUITES = ("clean.rapprochements",)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inbox_state(inbox_dir: Path) -> dict[str, str]:
    """Content fingerprint of every source file in the inbox, by path relative to it.

    Content, not modification time: a file copied again unchanged must not start a run, and a
    file replaced within the same second must.
    """
    inbox_dir = Path(inbox_dir)
    state: dict[str, str] = {}
    for part in INBOX_PARTS:
        folder = inbox_dir / part
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith((".", "~$")):
                state[path.relative_to(inbox_dir).as_posix()] = _sha256(path)
    return state


def describe_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed in the inbox, in French, for the run's tags and the sensor's log."""
    changes = [f"nouveau fichier {p}" for p in sorted(after.keys() - before.keys())]
    changes += [
        f"fichier modifié {p}" for p in sorted(after) if p in before and before[p] != after[p]
    ]
    changes += [f"fichier retiré {p}" for p in sorted(before.keys() - after.keys())]
    return changes


@dataclass
class SourcesReport:
    lectures_vagues: list[Any] = field(default_factory=list)  # questionnaire.WaveIngest
    lectures_reseaux: list[Any] = field(default_factory=list)  # reseaux.NetworkIngest
    vagues: list[Any] = field(default_factory=list)  # questionnaire.WaveClean
    reseaux: list[Any] = field(default_factory=list)  # reseaux.NetworkClean
    decisions: int = 0
    rapprochement: Any = None
    file_a_revoir: Path | None = None


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the source tables empty, so that indicators and checks work with an empty inbox."""
    questionnaire.create_tables(con)
    reseaux.create_tables(con)
    linkage.create_tables(con)
    con.execute(
        "create or replace view clean.a_rapprocher as "
        + warehouse.sql_text("clean", "a_rapprocher")
    )


def ingest(con: duckdb.DuckDBPyConnection, settings: Settings) -> SourcesReport:
    """Read every wave and network list of the inbox into raw, and import review decisions."""
    ensure_tables(con)
    report = SourcesReport()
    download = Path(settings.download_dir)
    report.lectures_vagues = questionnaire.ingest_all(
        con,
        settings.inbox_dir,
        download_dir=download / "questionnaires",
        max_reject_rate=settings.max_reject_rate,
    )
    report.lectures_reseaux = reseaux.ingest_all(
        con, settings.inbox_dir, download_dir=download, max_reject_rate=settings.max_reject_rate
    )
    report.decisions = import_inbox_decisions(con, settings.inbox_dir)
    return report


def import_inbox_decisions(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> int:
    """Import every decisions file of `inbox/decisions/`, oldest name first.

    Importing again is harmless (an upsert keyed by fingerprint), so the files can stay there;
    the decisions are kept in the warehouse even once the files are removed.
    """
    folder = Path(inbox_dir) / "decisions"
    if not folder.is_dir():
        return 0
    return sum(linkage.import_decisions(con, path) for path in sorted(folder.glob("*.csv")))


def clean(con: duckdb.DuckDBPyConnection, settings: Settings) -> SourcesReport:
    ensure_tables(con)
    report = SourcesReport()
    report.vagues = questionnaire.clean_all(con, settings.inbox_dir)
    report.reseaux = reseaux.clean_all(con, settings.inbox_dir)
    return report


def link(con: duckdb.DuckDBPyConnection, settings: Settings, mois: str) -> SourcesReport:
    """Link the month's records to SIRENE (the review queue is exported once it is checked)."""
    ensure_tables(con)
    report = SourcesReport()
    report.rapprochement = linkage.link_month(con, mois)
    return report


def export_review(con: duckdb.DuckDBPyConnection, settings: Settings, mois: str) -> Path:
    """Write the month's review queue for the data team.

    Called only after the links' quality suite passed: that suite checks that the queue names
    no unit that is not diffusible, and a file on disk cannot be taken back.
    """
    path = Path(settings.review_dir) / f"a_revoir_{mois}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    linkage.export_review_queue(con, mois, path)
    return path
