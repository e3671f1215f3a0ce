"""The inbox, `data/inbox/`: questionnaire waves, network lists and review decisions.

The three kinds of files dropped by the data team share one drop zone, and the Dagster sensor,
the CLI and the tests must agree on what "the inbox changed" means. That agreement lives here;
reading each kind is in `questionnaire` and `reseaux`, the steps of a month in
`observatoire.steps`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import duckdb

from observatoire.core import warehouse
from observatoire.sources import questionnaire, reseaux

log = logging.getLogger("observatoire.sources.inbox")

# sub-folders of the inbox that hold sources; anything else there is ignored (and said so)
INBOX_PARTS = ("questionnaires", "reseaux", "decisions")

RAW_SUITES = ("raw.questionnaire_cellules", "raw.reseaux_cellules")
CLEAN_SUITES = ("clean.questionnaire_reponses", "clean.reseaux_membres")


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


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the source tables empty, so that a month with an empty inbox still has them."""
    questionnaire.create_tables(con)
    reseaux.create_tables(con)
    con.execute(
        "create table if not exists raw.inbox_lue (fichier varchar primary key, sha256 varchar)"
    )


def record_read(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> dict[str, str]:
    """Remember which files the month was read from (by content), for the publication.

    The publication's manifest carries it, and the inbox sensor starts a run only for files
    that differ from it: a refresh from the CLI has already read what was dropped before it.
    """
    state = inbox_state(inbox_dir)
    ensure_tables(con)
    with warehouse.transaction(con):
        con.execute("delete from raw.inbox_lue")
        if state:
            con.executemany("insert into raw.inbox_lue values (?, ?)", list(state.items()))
    return state


def read_state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not warehouse.table_exists(con, "raw", "inbox_lue"):
        return {}
    return dict(con.execute("select fichier, sha256 from raw.inbox_lue order by 1").fetchall())
