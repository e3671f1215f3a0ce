"""The DuckDB warehouse: connections and SQL files.

SQL lives in `sql/<schema>/<table>.sql`, one SELECT per file, run with named DuckDB parameters
(`$mois`), never formatted into strings. This module decides how a SELECT is materialised
(replace a whole table, or replace one month of it), so SQL files stay plain queries that tests
can run on fixture databases.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
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


class WarehouseLockedError(RuntimeError):
    """Another process (a refresh, a Dagster run, a DuckDB shell) holds the warehouse file."""


_LOCK_HELD = re.compile(
    r"Could not set lock on file .*?held in (?P<program>.+?) \(PID (?P<pid>\d+)\)"
)


def _locked(path: Path, read_only: bool, exc: duckdb.Error) -> WarehouseLockedError | None:
    """DuckDB's English lock message as a French sentence naming the process that holds it."""
    found = _LOCK_HELD.search(str(exc))
    if found is None:
        return None
    who = f"processus {found['pid']}, {found['program']}"
    doing = "lu" if read_only else "ouvert en écriture"
    return WarehouseLockedError(
        f"L'entrepôt {path} ne peut pas être {doing} : un autre processus le tient ouvert "
        f"({who}), sans doute un rafraîchissement ou un run Dagster en cours. "
        "Relancez quand il sera terminé ; rien n'a été modifié."
    )


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, memory_limit: str = "3GB", threads: int = 2
) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        locked = _locked(path, read_only, exc)
        if locked is None:
            raise
        raise locked from None
    try:
        if read_only:
            con.execute("set autoinstall_known_extensions = false")
            con.execute("set autoload_known_extensions = false")
        else:
            configure(con, memory_limit, threads)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back if it raises.

    After a failed commit (a full disk) DuckDB may refuse even the rollback: the original error
    is the one to report, so a refused rollback is not raised over it.
    """
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise


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


# SQL tables of one row per establishment (42 M rows nationally) keep each month apart, behind
# a view of the same name: the month is written by DuckDB as a Parquet file beside the
# warehouse (`COPY`, in parallel: 4.7 s for 5.1 M perimeter rows against 8.5 s of persistent
# inserts, measured) and swapped in like the SIRENE months (`swap_month_file`). Replacing it
# atomically never holds 42 M uncommitted rows in DuckDB's transaction-local storage
# (1.4 GB per 5 M rows, measured).
MONTHLY_TABLES = frozenset({("clean", "etablissements_perimetre")})

_MOIS = re.compile(r"^\d{4}-\d{2}$")


def _suffix(mois: str) -> str:
    """Month as a table-name suffix; validated, since it becomes part of an identifier."""
    if not _MOIS.fullmatch(mois):
        raise ValueError(f"mois invalide : {mois!r} (AAAA-MM attendu)")
    return mois.replace("-", "_")


def month_table(schema: str, table: str, mois: str) -> str:
    """Qualified name of the physical table holding one month of a monthly table."""
    _check_ident(schema, table)
    return f"{schema}.{table}__{_suffix(mois)}"


def build_table(schema: str, table: str, mois: str) -> str:
    """Qualified name of the table a month is built in before it is swapped in."""
    _check_ident(schema, table)
    return f"{schema}._build_{table}__{_suffix(mois)}"


def drop_stale_builds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop every build table and file: with one writer at a time, any found is a dead run's.

    A killed national run can leave gigabytes in a build of a month nobody re-runs.
    """
    names = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where table_name like '\\_build\\_%' escape '\\' and not temporary"
    ).fetchall()
    for (name,) in names:
        con.execute(f"drop table if exists {name}")
    files = sorted(parquet_dir(con).glob("*/*/_build_*.parquet"))
    for f in files:
        f.unlink(missing_ok=True)
    return [n for (n,) in names] + [str(f) for f in files]


# Tables of one row per establishment or legal unit are written once per month as a Parquet
# file by the streaming SIRENE pass (Polars writes it faster than DuckDB inserts it, and the
# month is never copied again); DuckDB reads each month through a view of the same name as a
# month table, so every query, suite and export reads them as before. The files live next to
# the warehouse file, in `<warehouse>.parquet/<schema>/<table>/<mois>-<token>.parquet`.
_TEMP_PARQUET: dict[int, Path] = {}


def parquet_dir(con: duckdb.DuckDBPyConnection) -> Path:
    """Where the warehouse's Parquet months live (a temporary folder for an in-memory one)."""
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()  # type: ignore[misc]
    if path and path != ":memory:":
        file = Path(path).resolve()
        return file.parent / f"{file.stem}.parquet"
    import tempfile

    key = id(con)
    if key not in _TEMP_PARQUET:
        _TEMP_PARQUET[key] = Path(tempfile.mkdtemp(prefix="observatoire-parquet-"))
    return _TEMP_PARQUET[key]


def build_file(con: duckdb.DuckDBPyConnection, schema: str, table: str, mois: str) -> Path:
    """The file a month is written to before it is swapped in (any older one removed)."""
    _check_ident(schema, table)
    folder = parquet_dir(con) / schema / table
    folder.mkdir(parents=True, exist_ok=True)
    build = folder / f"_build_{table}__{_suffix(mois)}.parquet"
    build.unlink(missing_ok=True)
    return build


def sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _drop_month_object(con: duckdb.DuckDBPyConnection, qualified: str) -> None:
    schema, name = qualified.split(".", 1)
    kinds = con.execute(
        "select table_type from information_schema.tables where table_schema = ? "
        "and table_name = ?",
        [schema, name],
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {qualified}")


def swap_month_file(
    con: duckdb.DuckDBPyConnection,
    mois: str,
    build: Path,
    views: list[tuple[str, str, str]],
    also: Callable[[Path], None] | None = None,
) -> Path:
    """Put a month's built file in place: its month views point at it, in one transaction.

    `views` are (schema, table, select) with `{file}` where the file's path goes: several
    layers may read one file (the rows read and the rows kept). `also` runs in the same
    transaction, given the file's final path. The previous file of the month is deleted once
    the views no longer read it; if anything fails, the views still read the previous file and
    the new one is deleted.
    """
    token = uuid.uuid4().hex[:8]
    final = build.with_name(f"{_suffix(mois)}-{token}.parquet")
    os.replace(build, final)
    con.execute("begin transaction")
    try:
        for schema, table, select in views:
            _check_ident(schema, table)
            target = month_table(schema, table, mois)
            _drop_month_object(con, target)
            con.execute(f"create view {target} as {select.format(file=sql_path(final))}")
            refresh_view(con, schema, table)
        if also is not None:
            also(final)
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        final.unlink(missing_ok=True)
        raise
    for old in final.parent.glob(f"{_suffix(mois)}-*.parquet"):
        if old != final:
            old.unlink(missing_ok=True)
    return final


def _month_tables(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Qualified names of the month tables behind `schema.table`, oldest first."""
    names = con.execute(
        "select table_name from information_schema.tables where table_schema = ? "
        "and table_type in ('BASE TABLE', 'VIEW') order by table_name",
        [schema],
    ).fetchall()
    pattern = re.compile(rf"^{re.escape(table)}__\d{{4}}_\d{{2}}$")
    return [f"{schema}.{n}" for (n,) in names if pattern.match(n)]


def migrate_legacy(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """Split a table written before month tables existed (all months in one table).

    Runs before any build, never inside a swap: the old table is first renamed aside, then each
    month is copied in its own committed statement (months that already have a table are left
    alone), so an interruption is resumed by the next run and nothing is copied twice.
    """
    _check_ident(schema, table)
    kinds = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = ? and table_name in (?, ?)",
            [schema, table, f"{table}__ancien"],
        ).fetchall()
    )
    if kinds.get(table) == "BASE TABLE" and f"{table}__ancien" not in kinds:
        con.execute(f"alter table {schema}.{table} rename to {table}__ancien")
    elif f"{table}__ancien" not in kinds:
        return
    existing = set(_month_tables(con, schema, table))
    for (mois,) in con.execute(f"select distinct mois from {schema}.{table}__ancien").fetchall():
        target = month_table(schema, table, mois)
        if target not in existing:
            con.execute(
                f"create table {target} as select * from {schema}.{table}__ancien "
                "where mois = $mois",
                {"mois": mois},
            )
    con.execute(f"drop table {schema}.{table}__ancien")
    refresh_view(con, schema, table)


def refresh_view(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """(Re)create `schema.table` as the union of its month tables."""
    parts = _month_tables(con, schema, table)
    if not parts:
        con.execute(f"drop view if exists {schema}.{table}")
        return
    union = " union all by name ".join(f"select * from {p}" for p in parts)
    con.execute(f"create or replace view {schema}.{table} as {union}")


def replace_month(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    mois: str,
    params: Mapping[str, Any] | None = None,
    sql: str | None = None,
) -> int:
    """Replace one month of a monthly table; other months are kept.

    Re-running a month therefore gives the same table (idempotent), and a failure half-way
    leaves the previous state of that month in place. Large tables are built aside and swapped
    in (see MONTHLY_TABLES); small ones are replaced by delete and insert in one transaction.
    """
    _check_ident(schema, table)
    sql = sql if sql is not None else sql_text(schema, table)
    all_params = {"mois": mois, **(params or {})}
    used = _used_params(sql, all_params)
    if (schema, table) in MONTHLY_TABLES:
        migrate_legacy(con, schema, table)
        build = build_file(con, schema, table, mois)
        try:
            con.execute(
                f"copy ({sql}) to {sql_path(build)} (format parquet, compression zstd)", used
            )
        except BaseException:
            build.unlink(missing_ok=True)
            raise
        final = swap_month_file(
            con, mois, build, [(schema, table, "select * from read_parquet({file})")]
        )
        (n,) = con.execute(f"select count(*) from read_parquet({sql_path(final)})").fetchone()  # type: ignore[misc]
        return int(n)
    with transaction(con):
        con.execute(
            f"create table if not exists {schema}.{table} as select * from ({sql}) limit 0",
            used,
        )
        con.execute(f"delete from {schema}.{table} where mois = $mois", {"mois": mois})
        con.execute(f"insert into {schema}.{table} by name select * from ({sql})", used)
        n = con.execute(
            f"select count(*) from {schema}.{table} where mois = $mois", {"mois": mois}
        ).fetchone()[0]  # type: ignore[index]
    return int(n)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]  # type: ignore[index]
    )
