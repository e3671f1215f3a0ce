"""Publication: a complete, immutable snapshot of one month, switched into place in one step.

Readers (exports, the CLI, the web page to come) only ever open `publication/courant`, a symlink
to a finished snapshot directory. A refresh builds its snapshot in a staging directory and
replaces the symlink atomically (`os.replace`), so a reader sees the previous complete state or
the new one, never a mix; a refresh that fails before the switch leaves the last good
publication untouched.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from observatoire.core import catalogue, csvfiles
from observatoire.secrecy import tables as secret_tables

# The only published table allowed to name or locate units (diffusible ones only).
LISTINGS = {"annuaire_ess"}
IDENTIFYING = {
    "denomination",
    "enseigne",
    "denomination_usuelle",
    "adresse",
    "x_lambert93",
    "y_lambert93",
}

CURRENT = "courant"
KEEP_SNAPSHOTS = 3


class UnverifiedMonthError(RuntimeError):
    """The quality gate refused the month, or never ran on it: nothing is published."""


@dataclass(frozen=True)
class Publication:
    path: Path
    mois: str
    files: dict[str, Path]
    rows: dict[str, int]


def _order_by(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _literal(path: Path) -> str:
    """A path we created, as an SQL string literal (COPY and ATTACH take no parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def _copy_csv(
    con: duckdb.DuckDBPyConnection, name: str, mois: str, standard: Path, excel: Path
) -> int:
    """Write one indicator's month in both dialects, with the catalogue's columns, stably ordered.

    The month is selected and sorted once; DuckDB then streams both files, so national tables
    of millions of rows never sit in Python memory. The French Excel dialect gets `;`, a
    decimal comma and a UTF-8 BOM.
    """
    columns = catalogue.indicators()[name].colonnes
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"create or replace temp table _publication as select {quoted} "
        f"from {secret_tables.SCHEMA}.{name} where mois = $mois order by {quoted}",
        {"mois": mois},
    )
    con.execute(
        f"copy _publication to {_literal(standard)} "
        f"(header, delimiter '{csvfiles.STANDARD.delimiter}')"
    )
    types = dict(
        con.execute("select column_name, column_type from (describe _publication)").fetchall()
    )
    excel_select = ", ".join(
        f"replace(cast(\"{c}\" as varchar), '.', '{csvfiles.EXCEL.decimal}') as \"{c}\""
        if types[c].upper() in ("DOUBLE", "FLOAT", "REAL") or types[c].upper().startswith("DECIMAL")
        else f'"{c}"'
        for c in columns
    )
    body = excel.with_suffix(".tmp")
    con.execute(
        f"copy (select {excel_select} from _publication) to {_literal(body)} "
        f"(header, delimiter '{csvfiles.EXCEL.delimiter}')"
    )
    (n,) = con.execute("select count(*) from _publication").fetchone()  # type: ignore[misc]
    con.execute("drop table _publication")
    with body.open("rb") as src, excel.open("wb") as dst:
        dst.write(codecs.BOM_UTF8)  # csvfiles.EXCEL: French Excel reads UTF-8 with a BOM only
        shutil.copyfileobj(src, dst, 1 << 20)
    body.unlink()
    return int(n)


def publish(
    con: duckdb.DuckDBPyConnection,
    publication_dir: Path,
    mois: str,
    run_id: str,
    metadata: dict[str, object] | None = None,
    private: dict[str, object] | None = None,
) -> Publication:
    """Build the month's snapshot aside, then switch `courant` to it.

    `metadata` goes into the public manifest (served by the page); `private` into a file of
    the snapshot no reader is given (`.prive.json`: what the pipeline itself needs later).
    """
    _check_outputs()  # the directory's content itself is checked by indicators.check_privacy
    from observatoire import quality

    problems = quality.month_problems(con, mois)
    if problems:
        raise UnverifiedMonthError(
            f"{mois} ne peut pas être publié, le contrôle qualité ne l'a pas accepté : "
            + " ; ".join(problems)
        )
    # the month's tables for readers, written by the secrecy step after the indicators
    mask = secret_tables.mask_of(con, mois)
    if mask is None:
        raise UnverifiedMonthError(
            f"{mois} ne peut pas être publié : le secret statistique n'a pas été appliqué aux "
            "indicateurs du mois (étape « secret » à lancer après « indicateurs »)"
        )
    publication_dir = Path(publication_dir)
    publication_dir.mkdir(parents=True, exist_ok=True)
    final = publication_dir / f"{mois}_{run_id}"
    staging = publication_dir / f".staging_{mois}_{run_id}"
    if final.exists():
        raise FileExistsError(
            f"{final} existe déjà : un identifiant d'exécution ne sert qu'une fois"
        )
    # a run killed while publishing leaves its staging folder: the warehouse has one writer at
    # a time, so any staging folder found now is dead
    for stale in publication_dir.glob(".staging_*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir()
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    try:
        csv_dir = staging / "csv"
        csv_dir.mkdir()
        excel_dir = staging / "csv_excel"
        excel_dir.mkdir()
        for name in catalogue.indicators():
            path = csv_dir / f"{name}.csv"
            rows[name] = _copy_csv(con, name, mois, path, excel_dir / path.name)
            files[name] = final / "csv" / path.name
        # a self-contained database of every published month, for readers
        snapshot_db = staging / "indicateurs.duckdb"
        con.execute(f"attach {_literal(snapshot_db)} as _snapshot")
        try:
            con.execute("create schema _snapshot.indicators")
            for name in catalogue.indicators():
                # aggregates of every month up to this one; a listing only for this month, since
                # a unit may since have asked not to be listed (statut de diffusion P)
                months = "mois = $mois" if name in LISTINGS else "mois <= $mois"
                con.execute(
                    f"create table _snapshot.indicators.{name} as "
                    f"select * from {secret_tables.SCHEMA}.{name} where {months} order by all",
                    {"mois": mois},
                )
            write_reference(con, "_snapshot.indicators")
        finally:
            con.execute("detach _snapshot")
        manifest = {
            "mois": mois,
            "run_id": run_id,
            "lignes": rows,
            "secret_statistique": {
                "cases": mask.cells,
                "primaires": mask.primary,
                "secondaires": mask.secondary,
                "secondes": round(mask.seconds, 2),
            },
            "indicateurs": {
                n: {"titre": i.titre, "unite_de_compte": i.unite_de_compte}
                for n, i in catalogue.indicators().items()
            },
            **(metadata or {}),
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        (staging / PRIVATE).write_text(
            json.dumps(private or {}, ensure_ascii=False, indent=2, sort_keys=True),
            encoding="utf-8",
        )
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    live = published_month(publication_dir)
    if live is None or mois >= live:
        switch_current(publication_dir, final)
    prune(publication_dir)
    record_attempt(publication_dir, mois, run_id, None)
    return Publication(final, mois, files, rows)


STATUS = "etat.json"


def write_reference(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """Territories with their communes, and French labels of the codes, for the readers.

    The page and the partner bundles read the snapshot only; without these they would have to
    open the warehouse to know which communes make a territory or what « 88 » means. A unit
    containing the territory (`englobant`: its département, its région…) is listed when the
    snapshot publishes figures for it, in some month: a month whose stock did not cover it
    has none. Its communes are all of its communes; only the territory's have their own rows.
    """
    con.execute(
        f"create table {target}.territoires as "
        "select distinct niveau, code_territoire, libelle_territoire, code_commune, englobant "
        "from ref.territoire_niveaux "
        "where not englobant or (niveau, code_territoire) in ("
        f"  select (niveau, code_territoire) from {target}.etablissements_actifs "
        "  where niveau in (select niveau from ref.territoire_niveaux where englobant)"
        ") order by all"
    )
    families = ", ".join(
        "('famille', '" + k + "', '" + v.replace("'", "''") + "')"
        for k, v in catalogue.FAMILY_LABELS.items()
    )
    con.execute(
        f"create table {target}.nomenclatures as "
        f"select * from (values {families}, "
        "('perimetre', 'ensemble', 'Ensemble'), "
        "('perimetre', 'ess', 'Économie sociale et solidaire'), "
        "('perimetre', 'hors_ess', 'Hors ESS'), "
        "('section_naf', 'ensemble', 'Toutes activités'), "
        "('section_naf', 'non_classe', 'Activité non classée en NAF rév. 2'), "
        "('tranche_effectifs', 'ensemble', 'Toutes tailles'), "
        "('tranche_effectifs', 'non_renseignee', 'Tranche non renseignée')"
        ") as t(dimension, code, libelle) "
        "union all select 'section_naf', code, libelle from ref.naf_rev2_niveaux "
        "where niveau = 'section' "
        "union all select 'tranche_effectifs', code, libelle from ref.tranches_effectifs "
        "order by all"
    )


def record_attempt(publication_dir: Path, mois: str, run_id: str, error: str | None) -> dict:
    """Say what the last refresh did, beside the live publication, for every reader to show.

    A failed refresh leaves the last good publication in place; without this file a reader
    could not tell "no news" from "the new month was refused". Written atomically.
    """
    publication_dir = Path(publication_dir)
    publication_dir.mkdir(parents=True, exist_ok=True)
    live = current(publication_dir)
    live_manifest = (
        json.loads((live / "manifest.json").read_text(encoding="utf-8")) if live else None
    )
    status = {
        "dernier_rafraichissement": {
            "mois": mois,
            "run_id": run_id,
            "statut": "publie" if error is None else "echec",
            "motif": error,
            "horodatage": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "publication_en_ligne": (
            {"mois": live_manifest["mois"], "run_id": live_manifest["run_id"]}
            if live_manifest
            else None
        ),
    }
    if error is not None:
        shown = status["publication_en_ligne"]
        status["message"] = f"Le rafraîchissement de {mois} a échoué ; " + (
            f"la publication en ligne reste celle de {shown['mois']}."
            if shown
            else "aucune publication n'est encore en ligne."
        )
    # a unique name: the Dagster daemon's sensor and a run may write at the same moment
    tmp = publication_dir / f".{STATUS}.{os.getpid()}.{run_id}.tmp"
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, publication_dir / STATUS)
    return status


def read_status(publication_dir: Path) -> dict | None:
    path = Path(publication_dir) / STATUS
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _check_outputs() -> None:
    """Only declared listings may carry names, addresses or coordinates."""
    for name, indicator in catalogue.indicators().items():
        leaking = IDENTIFYING & set(indicator.colonnes)
        if leaking and name not in LISTINGS:
            raise ValueError(f"{name} publierait des colonnes identifiantes : {sorted(leaking)}")


PRIVATE = ".prive.json"


def live_private(publication_dir: Path) -> dict | None:
    """The live snapshot's private part (never served); None without a publication."""
    live = current(publication_dir)
    if live is None:
        return None
    path = live / PRIVATE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def live_manifest(publication_dir: Path) -> dict | None:
    live = current(publication_dir)
    if live is None:
        return None
    return json.loads((live / "manifest.json").read_text(encoding="utf-8"))


def published_month(publication_dir: Path) -> str | None:
    """Month of the current publication; a re-run of an older month must not replace it."""
    manifest = live_manifest(publication_dir)
    return None if manifest is None else str(manifest["mois"])


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
    """Drop old snapshots, never the current one, nor folders we did not create.

    Ordered by (month, creation time): re-running old months never pushes out the latest one.
    """
    live = current(publication_dir)

    def order(p: Path) -> tuple[str, float]:
        manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        return (str(manifest.get("mois", "")), p.stat().st_mtime)

    snapshots = sorted(
        (
            p
            for p in publication_dir.iterdir()
            if p.is_dir()
            and not p.is_symlink()
            and not p.name.startswith(".")
            and (p / "manifest.json").exists()
        ),
        key=order,
    )
    for old in snapshots[:-keep]:
        if live is None or old.resolve() != live:
            shutil.rmtree(old, ignore_errors=True)
