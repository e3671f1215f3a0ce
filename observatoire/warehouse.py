"""The DuckDB warehouse: connections and SQL files.

SQL lives in `sql/<schema>/<table>.sql`, one SELECT per file, run with named DuckDB parameters
(`$mois`), never formatted into strings. This module decides how a SELECT is materialised
(replace a whole table, or replace one month of it), so SQL files stay plain queries that tests
can run on fixture databases.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

SCHEMAS = ("ref", "raw", "clean", "indicators")

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def sql_dir() -> Path:
    """The `sql/` folder, shipped next to the package in the repository and in the wheel."""
    here = Path(str(resources.files("observatoire")))
    for candidate in (here.parent / "sql", here / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("dossier sql/ introuvable à côté du paquet observatoire")


def sql_text(schema: str, table: str) -> str:
    text = (sql_dir() / schema / f"{table}.sql").read_text(encoding="utf-8")
    return text.strip().rstrip(";")


def sql_tables(schema: str) -> list[str]:
    return sorted(p.stem for p in (sql_dir() / schema).glob("*.sql"))


def _check_ident(*names: str) -> None:
    for name in names:
        if not _IDENT.match(name):
            raise ValueError(f"identifiant SQL invalide : {name!r}")


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str = "3GB", threads: int = 2) -> None:
    """Offline, bounded settings: DuckDB must never try to download an extension at run time."""
    con.execute("set autoinstall_known_extensions = false")
    con.execute("set autoload_known_extensions = false")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", memory_limit.strip()):
        raise ValueError(f"limite mémoire DuckDB invalide : {memory_limit!r} (exemple : 3GB)")
    con.execute(f"set memory_limit = '{memory_limit.strip()}'")
    con.execute(f"set threads = {int(threads)}")
    # keep the file's order in the raw layer: "first copy of a duplicated SIRET" must mean the
    # same row on every run
    con.execute("set preserve_insertion_order = true")
    con.execute("set enable_progress_bar = false")
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, memory_limit: str = "3GB", threads: int = 2
) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if read_only:
            con.execute("set autoinstall_known_extensions = false")
            con.execute("set autoload_known_extensions = false")
        else:
            configure(con, memory_limit, threads)
        yield con
    finally:
        con.close()


def _used_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """DuckDB rejects unused named parameters: pass only those the query mentions."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def replace_table(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, params: Mapping[str, Any] | None = None
) -> int:
    """Materialise `sql/<schema>/<table>.sql` as the whole table (reference data, territory)."""
    _check_ident(schema, table)
    sql = sql_text(schema, table)
    con.execute(
        f"create or replace table {schema}.{table} as select * from ({sql})",
        _used_params(sql, params or {}),
    )
    return con.execute(f"select count(*) from {schema}.{table}").fetchone()[0]  # type: ignore[index]


def replace_month(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    mois: str,
    params: Mapping[str, Any] | None = None,
    sql: str | None = None,
) -> int:
    """Replace one month of a monthly table in one transaction; other months are kept.

    Re-running a month therefore gives the same table (idempotent), and a failure half-way
    leaves the previous state of that month in place.
    """
    _check_ident(schema, table)
    sql = sql if sql is not None else sql_text(schema, table)
    all_params = {"mois": mois, **(params or {})}
    used = _used_params(sql, all_params)
    con.execute("begin transaction")
    try:
        con.execute(
            f"create table if not exists {schema}.{table} as select * from ({sql}) limit 0",
            used,
        )
        con.execute(f"delete from {schema}.{table} where mois = $mois", {"mois": mois})
        con.execute(f"insert into {schema}.{table} by name select * from ({sql})", used)
        n = con.execute(
            f"select count(*) from {schema}.{table} where mois = $mois", {"mois": mois}
        ).fetchone()[0]  # type: ignore[index]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return int(n)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]  # type: ignore[index]
    )
