"""Publication: a complete, immutable snapshot of one month, switched into place in one step.

Readers (exports, the CLI, the web page to come) only ever open `publication/courant`, a symlink
to a finished snapshot directory. A refresh builds its snapshot in a staging directory and
replaces the symlink atomically (`os.replace`), so a reader sees the previous complete state or
the new one, never a mix; a refresh that fails before the switch leaves the last good
publication untouched.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from observatoire import catalogue

CURRENT = "courant"
KEEP_SNAPSHOTS = 3


class PrivacyError(RuntimeError):
    """An output would name or locate a partially diffusible unit: publication refused."""


@dataclass(frozen=True)
class Publication:
    path: Path
    mois: str
    files: dict[str, Path]
    rows: dict[str, int]


def check_privacy(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """Refuse to publish if a listing holds a unit that is not diffusible ('O' on both levels).

    The SQL already filters; this is the independent guard that makes the rule hold even if
    a later change to the SQL forgets it.
    """
    leaked = con.execute(
        """
        select a.siret
        from indicators.annuaire_ess as a
        join clean.etablissements_perimetre as p on p.mois = a.mois and p.siret = a.siret
        where a.mois = $mois and not p.diffusible
        limit 5
        """,
        {"mois": mois},
    ).fetchall()
    if leaked:
        raise PrivacyError(
            "annuaire_ess contient des établissements non diffusibles (statut P) : "
            + ", ".join(r[0] for r in leaked)
        )


def _order_by(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def month_frame(con: duckdb.DuckDBPyConnection, name: str, mois: str) -> pl.DataFrame:
    """One indicator's rows for a month, with the catalogue's columns in a stable order."""
    indicator = catalogue.indicators()[name]
    cols = _order_by(indicator.colonnes)
    return con.execute(
        f"select {cols} from indicators.{name} where mois = $mois order by {cols}",
        {"mois": mois},
    ).pl()


def publish(
    con: duckdb.DuckDBPyConnection,
    publication_dir: Path,
    mois: str,
    run_id: str,
    metadata: dict[str, object] | None = None,
) -> Publication:
    check_privacy(con, mois)
    publication_dir = Path(publication_dir)
    publication_dir.mkdir(parents=True, exist_ok=True)
    final = publication_dir / f"{mois}_{run_id}"
    staging = publication_dir / f".staging_{mois}_{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    try:
        csv_dir = staging / "csv"
        csv_dir.mkdir()
        excel_dir = staging / "csv_excel"
        excel_dir.mkdir()
        for name in catalogue.indicators():
            frame = month_frame(con, name, mois)
            path = csv_dir / f"{name}.csv"
            frame.write_csv(path, include_header=True, line_terminator="\n")
            write_excel_fr(frame, excel_dir / path.name)
            files[name] = final / "csv" / path.name
            rows[name] = frame.height
        # a self-contained database of every published month, for readers
        snapshot_db = staging / "indicateurs.duckdb"
        snapshot = duckdb.connect(str(snapshot_db))
        try:
            snapshot.execute("create schema indicators")
            for name in catalogue.indicators():
                table = con.execute(
                    f"select * from indicators.{name} where mois <= $mois order by all",
                    {"mois": mois},
                ).arrow()
                snapshot.register("_incoming", table)
                snapshot.execute(f"create table indicators.{name} as select * from _incoming")
                snapshot.unregister("_incoming")
            snapshot.execute("checkpoint")
        finally:
            snapshot.close()
        manifest = {
            "mois": mois,
            "run_id": run_id,
            "lignes": rows,
            "indicateurs": {
                n: {"titre": i.titre, "unite_de_compte": i.unite_de_compte}
                for n, i in catalogue.indicators().items()
            },
            **(metadata or {}),
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    switch_current(publication_dir, final)
    prune(publication_dir)
    return Publication(final, mois, files, rows)


def write_excel_fr(frame: pl.DataFrame, path: Path) -> None:
    """French Excel dialect: UTF-8 with BOM (so Excel detects the encoding), `;`, decimal comma."""
    body = frame.write_csv(None, separator=";", decimal_comma=True, line_terminator="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))


def switch_current(publication_dir: Path, target: Path) -> None:
    """Point `courant` at `target` atomically (a symlink renamed over the old one)."""
    tmp = publication_dir / f".{CURRENT}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target.name, target_is_directory=True)
    os.replace(tmp, publication_dir / CURRENT)


def current(publication_dir: Path) -> Path | None:
    link = Path(publication_dir) / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def prune(publication_dir: Path, keep: int = KEEP_SNAPSHOTS) -> None:
    """Drop old snapshots, never the current one, nor folders we did not create."""
    live = current(publication_dir)
    snapshots = sorted(
        (
            p
            for p in publication_dir.iterdir()
            if p.is_dir()
            and not p.is_symlink()
            and not p.name.startswith(".")
            and (p / "manifest.json").exists()
        ),
        key=lambda p: p.stat().st_mtime,
    )
    for old in snapshots[:-keep]:
        if live is None or old.resolve() != live:
            shutil.rmtree(old, ignore_errors=True)
