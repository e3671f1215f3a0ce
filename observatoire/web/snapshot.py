"""Read side of the page and the API: the published snapshot, opened once, read-only.

Readers only ever see `publication/courant` (contract of issue 5). The link is re-resolved on
every request, so a new publication is served without a restart; each snapshot directory is
opened once (one read-only DuckDB connection, a cursor per request, which DuckDB makes
thread-safe) and its territory list is built once. Table and column names put into SQL come
from the catalogue and from the snapshot's own schema, never from the request; values are
always bound parameters.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from observatoire.core import catalogue, territory
from observatoire.core.territory import Territory
from observatoire.publication import publish

log = logging.getLogger(__name__)

# Listings name units: the page and the API never serve them (contract, point 4).
NOT_SERVED = frozenset(publish.LISTINGS)
SECRET_COLUMNS = ("statut_secret", "motif_secret")
PUBLISHED = "publie"
# offline (no extension download) and two threads; a reader in the same process must open the
# file with the same configuration (DuckDB refuses two configurations of one file)
CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "threads": 2,
    "memory_limit": "1GB",
    # scans return rows in the order the snapshot wrote them (the API pages on that order)
    "preserve_insertion_order": True,
}

LEVELS: dict[str, str] = territory.LEVEL_LABELS  # the levels, smallest first


def normalise(text: str) -> str:
    """Lower case, no accents, words separated by one space: « L'Haÿ » and « l hay » match."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


@dataclass
class Snapshot:
    """One published snapshot directory, with its connection and what is worth caching."""

    path: Path
    manifest: dict[str, Any]
    con: duckdb.DuckDBPyConnection
    columns: dict[str, list[tuple[str, str]]]
    territories: list[Territory]
    by_key: dict[tuple[str, str], Territory]
    search_keys: dict[tuple[str, str], str]  # normalised names, for the search
    months: list[str]
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mois(self) -> str:
        return str(self.manifest["mois"])

    @property
    def synthetic(self) -> bool:
        """The manifest says whether its sources are synthetic (key `synthetique`), if it does."""
        return bool(self.manifest.get("synthetique") or self.manifest.get("donnees_synthetiques"))

    def has_table(self, name: str) -> bool:
        return name in self.columns

    def column_names(self, name: str) -> list[str]:
        return [c for c, _ in self.columns[name]]

    def secret_applied(self, name: str) -> bool:
        """Whether the secrecy stream's status columns are in this table (contract, point 1)."""
        return "statut_secret" in self.column_names(name)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        # DuckDB refuses unused named parameters: pass only those the statement names
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        cur = self.con.cursor()
        try:
            result = cur.execute(sql, used)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cur.close()

    def cached(self, key: str, build):  # noqa: ANN001, ANN201 - a tiny memo per snapshot
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            self._cache[key] = value
        return value

    def close(self) -> None:
        self.con.close()


class OutdatedSnapshot(Exception):
    """A snapshot published by a version before `indicators.territoires`: the page cannot tell
    which communes make a territory; the next refresh publishes it again."""


def _open(path: Path) -> Snapshot:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    con = duckdb.connect(str(path / "indicateurs.duckdb"), read_only=True, config=CONFIG)
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'indicators' order by table_name, ordinal_position"
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        columns.setdefault(table, []).append((column, kind))
    if "territoires" not in columns:
        con.close()
        raise OutdatedSnapshot(path)
    # a unit containing the territory (its département, its région…) is `englobant`; a
    # snapshot published before the column had none
    parent = "bool_or(englobant)" if ("englobant", "BOOLEAN") in columns["territoires"] else "false"
    found = con.execute(
        "select niveau, code_territoire, libelle_territoire, "
        f"list(code_commune order by code_commune), {parent} "
        "from indicators.territoires group by all"
    ).fetchall()
    keys = {(n, str(c)): normalise(str(lib)) for n, c, lib, _, _ in found}
    order = {n: i for i, n in enumerate(LEVELS)}
    territories = sorted(
        (
            Territory(n, str(c), str(lib), tuple(communes), parent=bool(p))
            for n, c, lib, communes, p in found
        ),
        key=lambda t: (order.get(t.level, 99), keys[(t.level, t.code)], t.code),
    )
    months = [
        m
        for (m,) in con.execute(
            "select distinct mois from indicators.etablissements_actifs order by mois"
        ).fetchall()
    ]
    return Snapshot(
        path=path,
        manifest=manifest,
        con=con,
        columns=columns,
        territories=territories,
        by_key={(t.level, t.code): t for t in territories},
        search_keys=keys,
        months=months,
    )


class SnapshotStore:
    """The live snapshot, re-resolved at each call; each snapshot directory opened once."""

    KEEP_OPEN = 2  # the live one and the previous one, for requests still running on it

    def __init__(self, publication_dir: Path) -> None:
        self.publication_dir = Path(publication_dir)
        self._open: dict[Path, Snapshot] = {}
        self._lock = threading.Lock()

    def current(self) -> Snapshot | None:
        live = publish.current(self.publication_dir)
        if live is None or not (live / "indicateurs.duckdb").exists():
            return None
        with self._lock:
            snap = self._open.get(live)
            if snap is None:
                try:
                    snap = _open(live)
                except OutdatedSnapshot:
                    log.warning(
                        "publication %s antérieure à la table des territoires : relancez "
                        "`observatoire refresh` pour la publier de nouveau",
                        live,
                    )
                    return None
                self._open[live] = snap
                for old in list(self._open)[: -self.KEEP_OPEN]:
                    self._open.pop(old).close()
            return snap

    def status(self) -> dict | None:
        """`etat.json`: what the last refresh did (its message when it failed)."""
        try:
            return publish.read_status(self.publication_dir)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        with self._lock:
            for snap in self._open.values():
                snap.close()
            self._open.clear()


def search(snapshot: Snapshot, q: str, niveau: str | None = None, limit: int = 50) -> list:
    """Territories whose name or code matches `q`, best first (code, then name start, then in)."""
    needle = normalise(q)
    code = q.strip().upper()
    if not needle:
        return []
    order = {n: i for i, n in enumerate(LEVELS)}
    found: list[tuple[int, int, str, Territory]] = []
    for t in snapshot.territories:
        if niveau and t.level != niveau:
            continue
        key = snapshot.search_keys[(t.level, t.code)]
        if t.code.upper() == code:
            rank = 0
        elif key == needle:
            rank = 1
        elif key.startswith(needle):
            rank = 2
        elif f" {needle}" in f" {key}":
            rank = 3
        elif needle in key or t.code.upper().startswith(code):
            rank = 4
        else:
            continue
        found.append((rank, order.get(t.level, 99), key, t))
    found.sort(key=lambda x: x[:3])
    return [t for *_, t in found[:limit]]


def served_indicators() -> dict[str, catalogue.Indicator]:
    return {n: i for n, i in catalogue.indicators().items() if n not in NOT_SERVED}


def dimensions(snapshot: Snapshot, name: str) -> list[str]:
    """Key columns of an indicator: the catalogue's, those the snapshot's table has."""
    declared = catalogue.indicators()[name].dimensions
    return [c for c in declared if c in snapshot.column_names(name)]
