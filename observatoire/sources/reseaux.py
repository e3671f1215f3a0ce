"""Member lists of networks (ressourceries, SIAE, ESUS, SCOP/SCIC, CRESS...) into raw and clean.

Networks publish their members as whatever their tool exports: a CSV saved by Excel in
Windows-1252 with `;`, an XLSX, a JSON from an API, sometimes behind a URL. Rather than one reader
per network, each list comes with a small TOML declaration (docs/sources_externes.md) saying
where the file is and which of its columns hold the few standard fields the linker needs. So:

* the raw layer keeps everything the file had, in long format (one row per non-empty cell), so a
  list whose columns change from one year to the next is still loaded and can be inspected;
* broken CSV records (wrong number of fields, unterminated quote) are quarantined with their
  physical line number and the reason, never silently dropped nor copied (they may hold
  contact data); above a rejection rate the whole list is refused and the previous load kept;
* only declared standard fields reach the clean layer: contact columns (e-mail, phone) that
  lists often carry stay in raw;
* identifiers are normalised but kept even with a wrong key, because the linker, not the reader,
  decides what a near-miss SIRET is worth.

`ligne` means the physical line where a record starts (header = 1) for CSV, the sheet row for
XLSX (header row = 1), and for JSON the position of the object in the list plus one (the first
object is ligne 2): line 1 then always stands for the column names (JSON: the keys), so one
message format serves every format.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import polars as pl

from observatoire.core import warehouse
from observatoire.core.csvfiles import (
    ENCODINGS,
    SEPARATORS,
    detect_encoding,
    physical_lines,
    read_records,
    sniff_separator,
    xlsx_duplicate_headers,
)
from observatoire.core.errors import RejectRateError
from observatoire.sources.download import DownloadError, fetch

__all__ = [
    "NETWORK_TYPES",
    "STANDARD_FIELDS",
    "NetworkDeclaration",
    "NetworkIngest",
    "NetworkListError",
    "NetworkRejectRateError",
    "ListRead",
    "create_tables",
    "declarations",
    "ingest_all",
    "ingest_network",
    "load_declaration",
    "read_list",
]

NETWORK_TYPES = ("ressourcerie", "siae", "esus", "scop_scic", "cress", "autre")
STANDARD_FIELDS = (
    "siret",
    "siren",
    "nom",
    "adresse",
    "numero_voie",
    "voie",
    "code_postal",
    "commune",
    "code_commune",
    "categorie",
)
# fields that make a row linkable: an identifier or a name
LINK_FIELDS = ("siret", "siren", "nom")
FORMATS = ("csv", "xlsx", "json")
_TOP_KEYS = frozenset(
    ("nom", "type", "fichier", "format", "encodage", "separateur", "feuille", "cle_json")
    + ("confidentiel", "colonnes")
)
_NETWORK_ID = re.compile(r"[a-z0-9_]+")
_SUFFIX_FORMAT = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".json": "json"}
_SPACES = re.compile(r"\s+")


log = logging.getLogger("observatoire.sources.reseaux")


class NetworkListError(ValueError):
    """A declaration or a list cannot be used; the message names the file (and line, column)."""


class NetworkRejectRateError(NetworkListError, RejectRateError):
    """Too many broken records: probably not the file, or not the format, the network declared.

    Also a `RejectRateError`, so callers that already stop a refresh on SIRENE's rejection rate
    treat a list the same way.
    """


# --------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkDeclaration:
    """A validated `reseaux/<reseau>.toml`."""

    path: Path
    reseau: str
    nom: str
    type: str
    fichier: str  # as declared: a path relative to the declaration, or an http(s) URL
    format: str
    colonnes: dict[str, str]  # standard field -> column of the file
    encodage: str | None = None
    separateur: str | None = None
    feuille: str | None = None
    cle_json: str | None = None
    # a list given privately: figures built on it are protected by statistical secrecy
    confidentiel: bool = False

    @property
    def is_url(self) -> bool:
        return _is_url(self.fichier)

    def local_path(self) -> Path:
        """The list's path when it is a local file (relative paths start at the declaration)."""
        path = Path(self.fichier).expanduser()
        return path if path.is_absolute() else self.path.parent / path


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def load_declaration(path: Path | str) -> NetworkDeclaration:
    """Read and check a declaration, refusing anything the reader would otherwise guess at.

    Unknown keys are errors rather than ignored: a misspelt `separteur` or `sirett` would
    otherwise silently change how the list is read or linked.
    """
    path = Path(path)
    where = f"déclaration de réseau {path}"

    def fail(message: str) -> NetworkListError:
        return NetworkListError(f"{where} : {message}")

    if not _NETWORK_ID.fullmatch(path.stem):
        raise fail(
            f"nom de fichier « {path.stem} » invalide : l'identifiant du réseau est le nom du "
            "fichier, en minuscules, chiffres et _ seulement (exemple : siae_asp.toml)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail("fichier introuvable") from None
    except UnicodeDecodeError as exc:
        raise fail(f"le fichier n'est pas en UTF-8 (octet {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"TOML invalide : {exc}") from None

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(
            f"clé(s) inconnue(s) : {', '.join(unknown)} ; clés possibles : "
            f"{', '.join(sorted(_TOP_KEYS))}"
        )

    def text(key: str, *, required: bool) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise fail(f"clé « {key} » obligatoire manquante")
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(f"« {key} » doit être un texte non vide (trouvé : {value!r})")
        return value.strip() if key != "separateur" else value

    nom = text("nom", required=True)
    kind = text("type", required=True)
    fichier = text("fichier", required=True)
    assert nom is not None and kind is not None and fichier is not None
    if kind not in NETWORK_TYPES:
        raise fail(f"type « {kind} » inconnu ; types possibles : {', '.join(NETWORK_TYPES)}")

    fmt = text("format", required=False)
    if fmt is None:
        name = PurePosixPath(urlsplit(fichier).path).name if _is_url(fichier) else fichier
        fmt = _SUFFIX_FORMAT.get(Path(unquote(name)).suffix.lower())
        if fmt is None:
            raise fail(
                f"format de « {fichier} » non reconnu à son extension : préciser "
                f"format = {' | '.join(FORMATS)}"
            )
    elif fmt not in FORMATS:
        raise fail(f"format « {fmt} » inconnu ; formats possibles : {', '.join(FORMATS)}")

    encodage = text("encodage", required=False)
    if encodage is not None:
        encodage = encodage.lower().replace("_", "-")
        encodage = {"utf8": "utf-8", "windows-1252": "cp1252"}.get(encodage, encodage)
        if encodage not in ENCODINGS:
            raise fail(f"encodage « {encodage} » non pris en charge ; possibles : {ENCODINGS}")
    separateur = text("separateur", required=False)
    if separateur is not None and separateur not in SEPARATORS:
        raise fail(f"séparateur {separateur!r} non pris en charge ; possibles : , ; \\t")
    feuille = text("feuille", required=False)
    cle_json = text("cle_json", required=False)
    for key, value, allowed in (
        ("encodage", encodage, ("csv", "json")),
        ("separateur", separateur, ("csv",)),
        ("feuille", feuille, ("xlsx",)),
        ("cle_json", cle_json, ("json",)),
    ):
        if value is not None and fmt not in allowed:
            raise fail(f"« {key} » ne s'applique pas au format {fmt}")

    confidentiel = data.get("confidentiel", False)
    if not isinstance(confidentiel, bool):
        raise fail(f"« confidentiel » doit valoir true ou false (trouvé : {confidentiel!r})")

    columns = data.get("colonnes")
    if not isinstance(columns, dict) or not columns:
        raise fail("table [colonnes] manquante ou vide (champ standard = colonne du fichier)")
    unknown = sorted(set(columns) - set(STANDARD_FIELDS))
    if unknown:
        raise fail(
            f"[colonnes] : champ(s) inconnu(s) : {', '.join(unknown)} ; champs possibles : "
            f"{', '.join(STANDARD_FIELDS)}"
        )
    for key, value in columns.items():
        if not isinstance(value, str) or not value.strip():
            raise fail(f"[colonnes] : « {key} » doit nommer une colonne (trouvé : {value!r})")
    if not any(f in columns for f in LINK_FIELDS):
        raise fail(
            "[colonnes] : déclarer au moins siret, siren ou nom — sans identifiant ni nom, les "
            "membres ne peuvent pas être rapprochés de SIRENE"
        )
    return NetworkDeclaration(
        path=path,
        reseau=path.stem,
        nom=nom,
        type=kind,
        fichier=fichier,
        format=fmt,
        colonnes={k: v.strip() for k, v in columns.items()},
        encodage=encodage,
        separateur=separateur,
        feuille=feuille,
        cle_json=cle_json,
        confidentiel=confidentiel,
    )


def declarations(inbox_dir: Path) -> list[Path]:
    """The declarations of an inbox, in a stable order (sorted by file name)."""
    folder = Path(inbox_dir) / "reseaux"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


# --------------------------------------------------------------------------------------------
# Reading a list
# --------------------------------------------------------------------------------------------


@dataclass
class ListRead:
    """What a list file holds, every value as text, with the line each record came from."""

    path: Path
    columns: list[str]
    records: list[tuple[int, list[str]]]  # (ligne, values aligned on columns)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (ligne, motif)
    encoding: str | None = None
    separator: str | None = None
    header_line: int = 1
    file_lines: int = 0  # physical lines (CSV), sheet rows (XLSX), objects + 1 (JSON)


def _decode(data: bytes, declared: str | None, source: str) -> tuple[str, str]:
    """Text of the file and the encoding used: the declared one, else detected."""
    encoding = declared or detect_encoding(data)
    try:
        return data.decode(encoding).removeprefix("\ufeff"), encoding
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        # detection falls back to cp1252 only once strict UTF-8 has failed
        tried = "utf-8 ni en cp1252" if not declared and encoding == "cp1252" else encoding
        raise NetworkListError(
            f"fichier {source}, ligne {line} : octet 0x{data[error.start]:02X} illisible en "
            f"{tried} ; réenregistrer le fichier en UTF-8 ou déclarer son encodage"
        ) from None


def _header_names(raw: list[str]) -> list[str]:
    """Column names stripped, blanks named by position, repeats numbered: raw needs unique keys."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, value in enumerate(raw, start=1):
        name = value.strip() or f"colonne_{i}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def _read_csv(path: Path, decl: NetworkDeclaration, source: str) -> ListRead:
    text, encoding = _decode(path.read_bytes(), decl.encodage, source)
    lines = physical_lines(text)
    if not any(line.strip() for line in lines):
        raise NetworkListError(f"fichier {source} : fichier vide (pas de ligne d'en-tête)")
    header_index = next(i for i, line in enumerate(lines) if line.strip())
    separator = decl.separateur or sniff_separator(lines[header_index])
    read = read_records(lines, separator)
    if read is None:
        raise NetworkListError(f"fichier {source} : ligne d'en-tête illisible")
    return ListRead(
        path=path,
        columns=_header_names(read.header),
        records=read.records,
        rejects=read.rejects,
        encoding=encoding,
        separator=separator,
        header_line=read.header_line,
        file_lines=len(lines),
    )


def _read_xlsx(path: Path, decl: NetworkDeclaration, source: str) -> ListRead:
    """Every cell as text (no type guessing: a SIRET must not become a float)."""
    options: dict[str, Any] = (
        {"sheet_name": decl.feuille} if decl.feuille is not None else {"sheet_id": 1}
    )
    try:
        frame = pl.read_excel(
            path, engine="calamine", infer_schema_length=0, drop_empty_rows=False, **options
        )
    except Exception as exc:  # calamine raises several types for unreadable workbooks
        sheet = f", feuille « {decl.feuille} »" if decl.feuille else ""
        raise NetworkListError(f"fichier {source}{sheet} : classeur illisible ({exc})") from None
    raw_names = list(frame.columns)
    # Polars renamed a repeated header (`SIRET_1`): name it as the CSV reader does, `SIRET (2)`
    for name in xlsx_duplicate_headers(path, decl.feuille):
        k = 1
        for i, h in enumerate(raw_names):
            if re.fullmatch(rf"{re.escape(name)}_\d+", h):
                k += 1
                raw_names[i] = f"{name} ({k})"
    columns = _header_names(raw_names)
    records = []
    for index, row in enumerate(frame.iter_rows()):
        values = ["" if v is None else str(v) for v in row]
        if any(v.strip() for v in values):
            records.append((index + 2, values))  # sheet row: header is row 1
    return ListRead(path=path, columns=columns, records=records, file_lines=frame.height + 1)


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _read_json(path: Path, decl: NetworkDeclaration, source: str) -> ListRead:
    text, encoding = _decode(path.read_bytes(), decl.encodage, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetworkListError(
            f"fichier {source}, ligne {exc.lineno}, colonne {exc.colno} : JSON invalide ({exc.msg})"
        ) from None
    if decl.cle_json is not None:
        if not isinstance(data, dict) or decl.cle_json not in data:
            keys = ", ".join(data) if isinstance(data, dict) else "aucune (pas un objet)"
            raise NetworkListError(
                f"fichier {source} : clé « {decl.cle_json} » (cle_json) absente ; clés de "
                f"premier niveau : {keys}"
            )
        data = data[decl.cle_json]
    if not isinstance(data, list):
        hint = f" ; déclarer cle_json parmi : {', '.join(data)}" if isinstance(data, dict) else ""
        raise NetworkListError(
            f"fichier {source} : une liste d'objets est attendue, trouvé {type(data).__name__}"
            + hint
        )
    columns: dict[str, None] = {}
    for item in data:
        if isinstance(item, dict):
            columns.update(dict.fromkeys(str(k) for k in item))
    names = list(columns)
    records = []
    rejects = []
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            rejects.append(
                (position + 1, f"élément n° {position} : objet attendu, {type(item).__name__}")
            )
            continue
        values = [_json_text(item.get(name)) for name in names]
        if any(v.strip() for v in values):
            records.append((position + 1, values))
    return ListRead(
        path=path,
        columns=names,
        records=records,
        rejects=rejects,
        encoding=encoding,
        file_lines=len(data) + 1,
    )


def _check_columns(decl: NetworkDeclaration, columns: list[str], header_line: int, source: str):
    twice = [c for c in decl.colonnes.values() if f"{c} (2)" in columns]
    if twice:
        raise NetworkListError(
            f"réseau {decl.reseau} ({decl.path.name}) : fichier {source}, ligne {header_line} : "
            f"colonne déclarée « {twice[0]} » présente plusieurs fois ; renommez-la dans le fichier"
        )
    missing = [(f, c) for f, c in decl.colonnes.items() if c not in columns]
    if not missing:
        return
    listed = ", ".join(f"« {c} » ({f})" for f, c in missing)
    label = "colonne déclarée" if len(missing) == 1 else "colonnes déclarées"
    verb = "absente" if len(missing) == 1 else "absentes"
    message = (
        f"fichier {source}, ligne {header_line} : {label} {listed} {verb} ; colonnes présentes : "
        f"{', '.join(columns) or 'aucune'}"
    )
    if not any(f in decl.colonnes and decl.colonnes[f] in columns for f in LINK_FIELDS):
        message += (
            " — la liste n'a aucune colonne d'identifiant (siret, siren) ni de nom : ses membres "
            "ne peuvent pas être rapprochés de SIRENE"
        )
    raise NetworkListError(f"réseau {decl.reseau} ({decl.path.name}) : {message}")


def read_list(decl: NetworkDeclaration, path: Path) -> ListRead:
    """Read the list file at `path` as `decl` says, and check its declared columns exist."""
    path = Path(path)
    source = path.name
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "json": _read_json}[decl.format]
    result = reader(path, decl, source)
    _check_columns(decl, result.columns, result.header_line, source)
    return result


# --------------------------------------------------------------------------------------------
# Raw layer
# --------------------------------------------------------------------------------------------

RAW_TABLES: dict[str, str] = {
    "reseaux_cellules": (
        "reseau varchar, fichier_source varchar, ligne bigint, colonne varchar, valeur varchar"
    ),
    "reseaux_lectures": (
        "reseau varchar, fichier_source varchar, source varchar, empreinte varchar, "
        "format varchar, encodage varchar, separateur varchar, colonnes varchar[], "
        "lignes_fichier bigint, lignes_lues bigint, lignes_mal_formees bigint, lu_le timestamp"
    ),
    "reseaux_rejets_lecture": "reseau varchar, fichier_source varchar, ligne bigint, motif varchar",
}


@dataclass(frozen=True)
class NetworkIngest:
    reseau: str
    fichier_source: str
    source: str
    format: str
    encodage: str | None
    separateur: str | None
    lignes_fichier: int
    lignes_lues: int
    lignes_mal_formees: int
    cellules: int

    @property
    def reject_rate(self) -> float:
        total = self.lignes_lues + self.lignes_mal_formees
        return self.lignes_mal_formees / total if total else 0.0


def _obtain(decl: NetworkDeclaration, download_dir: Path) -> Path:
    """Local path of the list, downloading it first when it is a URL.

    Each network downloads into its own folder under `<download_dir>/reseaux/`: two networks
    whose URLs end with the same file name (`export.csv`) must not overwrite each other.
    """
    try:
        if decl.is_url:
            return fetch(decl.fichier, Path(download_dir) / "reseaux" / decl.reseau).path
        return fetch(str(decl.local_path()), Path(download_dir)).path
    except (DownloadError, FileNotFoundError, ValueError) as exc:
        raise NetworkListError(
            f"réseau {decl.reseau} ({decl.path.name}) : liste « {decl.fichier} » non obtenue — "
            f"{exc}"
        ) from exc


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and clean tables empty, so that checks and indicators run on no list."""
    for schema, tables in (("raw", RAW_TABLES), ("clean", CLEAN_TABLES)):
        for table, columns in tables.items():
            con.execute(f"create table if not exists {schema}.{table} ({columns})")
    # warehouses written before lists could be declared confidential
    con.execute("alter table clean.reseaux add column if not exists confidentiel boolean")


def ingest_network(
    con: duckdb.DuckDBPyConnection,
    declaration_path: Path | str,
    *,
    download_dir: Path,
    max_reject_rate: float | None = None,
    read_at: datetime | None = None,
) -> NetworkIngest:
    """Replace the network's rows of the raw layer with what its list holds now.

    The file is read and judged before anything is written, and the three tables are replaced
    in one transaction: a refused or broken list leaves the previous load in place.
    """
    decl = load_declaration(declaration_path)
    path = _obtain(decl, download_dir)
    read = read_list(decl, path)
    total = len(read.records) + len(read.rejects)
    rate = len(read.rejects) / total if total else 0.0
    if max_reject_rate is not None and rate > max_reject_rate:
        shown = ", ".join(str(line) for line, _ in read.rejects[:10])
        more = "…" if len(read.rejects) > 10 else ""
        first_reason = read.rejects[0][1]
        raise NetworkRejectRateError(
            f"réseau {decl.reseau} ({decl.path.name}) : fichier {path.name} : "
            f"{len(read.rejects)} enregistrement(s) mal formé(s) sur {total} ({rate:.1%}, seuil "
            f"{max_reject_rate:.1%}) — lignes {shown}{more} (ligne {read.rejects[0][0]} : "
            f"{first_reason}) — chargement précédent conservé"
        )

    cells = pl.DataFrame(
        [
            (line, name, value)
            for line, values in read.records
            for name, value in zip(read.columns, values, strict=True)
            if value.strip()
        ],
        schema={"ligne": pl.Int64, "colonne": pl.String, "valeur": pl.String},
        orient="row",
    )
    rejects = pl.DataFrame(
        read.rejects, schema={"ligne": pl.Int64, "motif": pl.String}, orient="row"
    )
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    params = {"reseau": decl.reseau, "fichier": path.name}
    create_tables(con)
    try:
        with warehouse.transaction(con):
            for table in RAW_TABLES:
                con.execute(
                    f"delete from raw.{table} where reseau = $reseau", {"reseau": decl.reseau}
                )
            con.register("_reseau_cellules", cells)
            con.register("_reseau_rejets", rejects)
            con.execute(
                "insert into raw.reseaux_cellules select $reseau, $fichier, ligne, colonne, valeur "
                "from _reseau_cellules order by ligne",
                params,
            )
            con.execute(
                "insert into raw.reseaux_rejets_lecture select $reseau, $fichier, ligne, motif "
                "from _reseau_rejets order by ligne",
                params,
            )
            con.execute(
                "insert into raw.reseaux_lectures values ($reseau, $fichier, $source, $empreinte, "
                "$format, $encodage, $separateur, $colonnes, $lignes_fichier, $lignes_lues, "
                "$mal_formees, coalesce($lu_le, current_timestamp::timestamp))",
                {
                    **params,
                    "source": decl.fichier,
                    "empreinte": fingerprint,
                    "format": decl.format,
                    "encodage": read.encoding,
                    "separateur": read.separator,
                    "colonnes": read.columns,
                    "lignes_fichier": read.file_lines,
                    "lignes_lues": len(read.records),
                    "mal_formees": len(read.rejects),
                    "lu_le": read_at,
                },
            )
    finally:
        con.unregister("_reseau_cellules")
        con.unregister("_reseau_rejets")
    return NetworkIngest(
        reseau=decl.reseau,
        fichier_source=path.name,
        source=decl.fichier,
        format=decl.format,
        encodage=read.encoding,
        separateur=read.separator,
        lignes_fichier=read.file_lines,
        lignes_lues=len(read.records),
        lignes_mal_formees=len(read.rejects),
        cellules=cells.height,
    )


def _run_all(paths: list[Path], step) -> list:
    """Run `step` on every declaration; one broken list must not stop the others' update.

    The errors are raised together at the end, so the run still fails loudly.
    """
    results = []
    errors = []
    for path in paths:
        try:
            results.append(step(path))
        except NetworkListError as exc:
            errors.append(str(exc))
    if errors:
        # one line: etat.json and the CLI keep the first line of an error, and it must name
        # the files at fault
        raise NetworkListError(
            f"{len(errors)} liste(s) de réseau refusée(s) sur {len(paths)} : "
            + " | ".join(" ".join(e.split()) for e in errors)
        )
    return results


def ingest_all(
    con: duckdb.DuckDBPyConnection,
    inbox_dir: Path,
    *,
    download_dir: Path,
    max_reject_rate: float | None = None,
    read_at: datetime | None = None,
) -> list[NetworkIngest]:
    """Ingest every `inbox_dir/reseaux/*.toml`, sorted by name.

    The declarations in the inbox are the networks the territory follows: a network whose
    declaration was removed is withdrawn from raw and clean too, once every declared list has
    been read (a list is current state, unlike a questionnaire wave, which is a record of its
    time and stays). The files are the data team's: putting the declaration back restores it.
    """
    paths = declarations(inbox_dir)
    create_tables(con)
    results = _run_all(
        paths,
        lambda p: ingest_network(
            con, p, download_dir=download_dir, max_reject_rate=max_reject_rate, read_at=read_at
        ),
    )
    withdraw_undeclared(con, [p.stem for p in paths])
    return results


def withdraw_undeclared(con: duckdb.DuckDBPyConnection, declared: list[str]) -> list[str]:
    """Remove the networks not in `declared` from every raw and clean table, in one step."""
    known = {
        r[0]
        for r in con.execute(
            "select distinct reseau from raw.reseaux_lectures "
            "union select distinct reseau from clean.reseaux"
        ).fetchall()
    }
    gone = sorted(known - set(declared))
    if not gone:
        return []
    with warehouse.transaction(con):
        for schema, tables in (("raw", RAW_TABLES), ("clean", CLEAN_TABLES)):
            for table in tables:
                con.execute(
                    f"delete from {schema}.{table} where reseau in (select unnest($gone))",
                    {"gone": gone},
                )
    log.warning("réseaux retirés (déclaration absente de la boîte de dépôt) : %s", ", ".join(gone))
    return gone


# --------------------------------------------------------------------------------------------
# Clean layer
# --------------------------------------------------------------------------------------------

CLEAN_TABLES: dict[str, str] = {
    "reseaux": (
        "reseau varchar, nom varchar, type varchar, source varchar, fichier_source varchar, "
        "nb_membres bigint, confidentiel boolean"
    ),
    "reseaux_membres": (
        "reseau varchar, type_reseau varchar, membre_id varchar, ligne bigint, "
        "siret_declare varchar, siren_declare varchar, nom varchar, adresse varchar, "
        "code_postal varchar, code_commune varchar, libelle_commune varchar, categorie varchar"
    ),
    "reseaux_rejets": "reseau varchar, ligne bigint, colonne varchar, motif varchar",
}
_MEMBER_SCHEMA = {
    "reseau": pl.String,
    "type_reseau": pl.String,
    "membre_id": pl.String,
    "ligne": pl.Int64,
    "siret_declare": pl.String,
    "siren_declare": pl.String,
    "nom": pl.String,
    "adresse": pl.String,
    "code_postal": pl.String,
    "code_commune": pl.String,
    "libelle_commune": pl.String,
    "categorie": pl.String,
}
