"""Questionnaire waves: the answers of local social-economy structures to a needs survey.

Each wave is exported by whatever form tool the team used that year (LimeSurvey, Framaforms,
Google Forms, KoboToolbox, a spreadsheet), with that tool's encoding, separator and timestamp
format, so the file is described by a mapping (`correspondance.toml`) instead of by code. The
file is copied as it is into `raw.*` (one row per non-empty cell, personal data included, so
that nothing is lost and a wave can be re-cleaned when its mapping is corrected), then
`clean.*` is built from `raw.*` alone, without the respondent's name, e-mail or phone.

Exports are small (thousands of rows) and typed by hand upstream: they are read with Python's
`csv` module, which knows physical line numbers, so every problem can be reported as "file,
line, column" to the person who has to fix the export.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import fastexcel
import polars as pl
import pyarrow as pa

from observatoire import warehouse
from observatoire.adresses import CommuneResolver
from observatoire.contacts import mask_contacts
from observatoire.csvfiles import (
    ENCODINGS,
    SEPARATORS,
    detect_encoding,
    physical_lines,
    read_records,
    sniff_separator,
    xlsx_duplicate_headers,
)
from observatoire.download import fetch
from observatoire.identifiers import normalise, normalise_declared
from observatoire.warehouse import table_exists

__all__ = [
    "NEEDS",
    "QUESTION_TYPES",
    "Question",
    "QuestionnaireError",
    "WaveClean",
    "WaveIngest",
    "WaveMapping",
    "clean_all",
    "clean_wave",
    "create_tables",
    "ingest_all",
    "ingest_wave",
    "load_mapping",
    "mask_contacts",
    "parse_number",
    "parse_timestamp",
    "read_export",
]

MAPPING_FILE = "correspondance.toml"

QUESTION_TYPES = ("choix_unique", "choix_multiple", "nombre", "texte")
NEEDS = (
    "locaux",
    "recrutement",
    "rh_appui",
    "financement",
    "commande_publique",
    "cooperation_mutualisation",
    "visibilite_communication",
    "formation",
    "autre",
)
TOOLS = ("limesurvey", "framaforms", "google_forms", "kobotoolbox", "autre")
IDENTIFICATION_FIELDS = ("horodatage", "siret", "siren", "nom", "adresse", "code_postal", "commune")

_WAVE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_QUESTION_CODE = re.compile(r"[a-z][a-z0-9_]*")
# Time stamps are stored as wall-clock time in France, the time the tools show to the team.
_LOCAL_TZ = ZoneInfo("Europe/Paris")

RAW_TABLES: dict[str, str] = {
    "questionnaire_cellules": (
        "vague varchar, fichier_source varchar, ligne bigint, colonne varchar, valeur varchar"
    ),
    "questionnaire_lectures": (
        "vague varchar, fichier_source varchar, empreinte varchar, encodage varchar, "
        "separateur varchar, outil varchar, lignes_fichier bigint, lignes_lues bigint, "
        "lignes_mal_formees bigint, lu_le timestamp"
    ),
    "questionnaire_rejets_lecture": (
        "vague varchar, fichier_source varchar, ligne bigint, motif varchar"
    ),
}

CLEAN_TABLES: dict[str, str] = {
    "questionnaire_reponses": (
        "vague varchar, reponse_id varchar, ligne bigint, horodatage timestamp, "
        "siret_declare varchar, siren_declare varchar, nom varchar, adresse varchar, "
        "code_postal varchar, code_commune varchar, libelle_commune varchar"
    ),
    "questionnaire_valeurs": (
        "vague varchar, reponse_id varchar, question varchar, type varchar, besoin varchar, "
        "valeur varchar, valeur_nombre double"
    ),
    "questionnaire_questions": (
        "vague varchar, question varchar, colonne varchar, type varchar, besoin varchar"
    ),
    # every need the wave's mapping can record (a question's or one of its options'): the
    # published needs of a wave, cited or not, so that a row never tells that someone cited it
    "questionnaire_besoins": "vague varchar, besoin varchar",
    "questionnaire_vagues": (
        "vague varchar, titre varchar, date_debut date, date_fin date, outil varchar, "
        "fichier_source varchar, nb_reponses bigint"
    ),
    "questionnaire_rejets": ("vague varchar, ligne bigint, colonne varchar, motif varchar"),
}


class QuestionnaireError(ValueError):
    """A wave cannot be read or its mapping is wrong; the message names the file and the place."""


# --------------------------------------------------------------------------------------------
# Mapping


@dataclass(frozen=True)
class Question:
    code: str
    colonne: str
    type: str
    besoin: str | None = None
    cite_si: tuple[str, ...] | None = None
    separateur: str = ";"
    # option label -> need category it cites (None: cites nothing); None when not listed
    options: dict[str, str | None] | None = None


@dataclass(frozen=True)
class WaveMapping:
    path: Path
    titre: str
    outil: str
    date_debut: date | None = None
    date_fin: date | None = None
    encodage: str | None = None
    separateur: str | None = None
    feuille: str | None = None
    fichier: str | None = None
    # standard field (horodatage, siret, ...) -> column of the export
    identification: dict[str, str] = field(default_factory=dict)
    donnees_personnelles: tuple[str, ...] = ()
    questions: tuple[Question, ...] = ()

    def columns(self) -> list[str]:
        """Every column the mapping needs from the export, in mapping order, without repeats."""
        names = [*self.identification.values(), *self.donnees_personnelles]
        names += [q.colonne for q in self.questions]
        return list(dict.fromkeys(names))

    def clean_columns(self) -> list[str]:
        """The columns allowed into clean: personal data is not among them."""
        names = [*self.identification.values(), *(q.colonne for q in self.questions)]
        return list(dict.fromkeys(names))


def _string(value: Any, where: str, key: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise QuestionnaireError(f"{where} : clé « {key} » obligatoire")
        return None
    if not isinstance(value, str) or not value.strip():
        raise QuestionnaireError(f"{where} : « {key} » doit être un texte non vide")
    return value.strip()


def _check_keys(table: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    """Unknown keys are refused: a misspelt `separateur` must not be silently ignored."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise QuestionnaireError(
            f"{where} : clé(s) inconnue(s) {', '.join(unknown)} (attendues : {', '.join(allowed)})"
        )


def _need(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in NEEDS:
        raise QuestionnaireError(
            f"{where} : besoin « {value} » hors de la nomenclature (attendu : {', '.join(NEEDS)})"
        )
    return str(value)


def _separator(value: Any, where: str) -> str | None:
    if value is None:
        return None
    sep = {"tab": "\t", "\\t": "\t", "tabulation": "\t"}.get(value, value)
    if sep not in SEPARATORS:
        raise QuestionnaireError(
            f"{where} : séparateur {value!r} non reconnu (attendu : « , », « ; » ou « \\t »)"
        )
    return sep


def _date(value: Any, where: str, key: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QuestionnaireError(
            f"{where} : « {key} » = {value!r} n'est pas une date AAAA-MM-JJ"
        ) from None


def _question(raw: Any, index: int, source: Path) -> Question:
    if not isinstance(raw, dict):
        raise QuestionnaireError(f"{source}, question n°{index} : table [[questions]] attendue")
    code = raw.get("code")
    where = f"{source}, question « {code} »" if code else f"{source}, question n°{index}"
    _check_keys(
        raw, ("code", "colonne", "type", "besoin", "cite_si", "separateur", "options"), where
    )
    code = _string(code, where, "code", required=True)
    assert code is not None
    if not _QUESTION_CODE.fullmatch(code):
        raise QuestionnaireError(
            f"{where} : code invalide (lettres minuscules, chiffres et « _ », sans accent)"
        )
    colonne = _string(raw.get("colonne"), where, "colonne", required=True)
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        raise QuestionnaireError(
            f"{where} : type « {qtype} » inconnu (attendu : {', '.join(QUESTION_TYPES)})"
        )
    besoin = _need(raw.get("besoin"), where)
    choice = qtype in ("choix_unique", "choix_multiple")

    cite_si = raw.get("cite_si")
    if cite_si is not None:
        if isinstance(cite_si, str):
            cite_si = [cite_si]
        if not isinstance(cite_si, list) or not all(isinstance(v, str) for v in cite_si):
            raise QuestionnaireError(f"{where} : « cite_si » doit être une liste de textes")
        if besoin is None:
            raise QuestionnaireError(f"{where} : « cite_si » sans « besoin » (quel besoin cité ?)")
        if qtype == "nombre":
            raise QuestionnaireError(f"{where} : « cite_si » sans objet pour une question nombre")
        cite_si = tuple(cite_si)
    elif besoin is not None and choice:
        # without it, "Non" would cite the need as surely as "Oui"
        raise QuestionnaireError(
            f"{where} : « besoin » sans « cite_si » : indiquez les réponses qui citent ce besoin"
        )

    separateur = raw.get("separateur", ";")
    if "separateur" in raw and qtype != "choix_multiple":
        raise QuestionnaireError(f"{where} : « separateur » réservé aux questions choix_multiple")
    if not isinstance(separateur, str) or not separateur:
        raise QuestionnaireError(f"{where} : « separateur » doit être un texte non vide")

    options: dict[str, str | None] | None = None
    raw_options = raw.get("options")
    if raw_options is not None:
        if not choice:
            raise QuestionnaireError(f"{where} : « options » réservé aux questions à choix")
        if isinstance(raw_options, list) and all(isinstance(o, str) for o in raw_options):
            options = {o.strip(): None for o in raw_options}
        elif isinstance(raw_options, dict):
            options = {
                str(label).strip(): _need(cat, f"{where}, option « {label} »")
                for label, cat in raw_options.items()
            }
        else:
            raise QuestionnaireError(
                f"{where} : « options » doit être une table option = besoin ou une liste"
            )
        if not options:
            raise QuestionnaireError(f"{where} : « options » vide")
    return Question(code, colonne, qtype, besoin, cite_si, separateur, options)  # type: ignore[arg-type]


def load_mapping(path: Path) -> WaveMapping:
    """Read and check a wave's mapping before any file is touched.

    Every mistake is reported with the mapping file and the question, since the mapping is
    written by hand by whoever ran the survey.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionnaireError(f"{path} : fichier de correspondance introuvable") from None
    except UnicodeDecodeError as exc:
        raise QuestionnaireError(
            f"{path} : le fichier de correspondance doit être en UTF-8 (octet {exc.start})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise QuestionnaireError(f"{path} : TOML invalide — {exc}") from None
    _check_keys(data, ("vague", "identification", "questions", "fichier"), str(path))

    vague = data.get("vague")
    if not isinstance(vague, dict):
        raise QuestionnaireError(f"{path} : section [vague] manquante")
    where = f"{path}, [vague]"
    _check_keys(
        vague,
        ("titre", "date_debut", "date_fin", "outil", "encodage", "separateur", "feuille"),
        where,
    )
    titre = _string(vague.get("titre"), where, "titre", required=True)
    outil = vague.get("outil")
    if outil not in TOOLS:
        raise QuestionnaireError(
            f"{where} : outil « {outil} » inconnu (attendu : {', '.join(TOOLS)})"
        )
    debut = _date(vague.get("date_debut"), where, "date_debut")
    fin = _date(vague.get("date_fin"), where, "date_fin")
    if debut and fin and fin < debut:
        raise QuestionnaireError(f"{where} : date_fin ({fin}) avant date_debut ({debut})")
    encodage = vague.get("encodage")
    if encodage is not None:
        encodage = str(encodage).lower().replace("_", "-")
        encodage = {"utf8": "utf-8", "windows-1252": "cp1252", "utf-8-bom": "utf-8-sig"}.get(
            encodage, encodage
        )
        if encodage not in ENCODINGS:
            raise QuestionnaireError(
                f"{where} : encodage « {vague['encodage']} » non pris en charge "
                f"(attendu : {', '.join(ENCODINGS)})"
            )
    separateur = _separator(vague.get("separateur"), where)
    feuille = _string(vague.get("feuille"), where, "feuille")
    fichier = _string(data.get("fichier"), str(path), "fichier")

    ident = data.get("identification")
    where = f"{path}, [identification]"
    if not isinstance(ident, dict):
        raise QuestionnaireError(f"{path} : section [identification] manquante")
    _check_keys(ident, (*IDENTIFICATION_FIELDS, "donnees_personnelles"), where)
    identification = {
        key: str(_string(ident[key], where, key)) for key in IDENTIFICATION_FIELDS if key in ident
    }
    if not {"siret", "siren", "nom"} & set(identification):
        raise QuestionnaireError(
            f"{where} : il faut au moins une colonne siret, siren ou nom pour identifier la "
            "structure"
        )
    personal = ident.get("donnees_personnelles", [])
    if isinstance(personal, str):
        personal = [personal]
    if not isinstance(personal, list) or not all(isinstance(p, str) for p in personal):
        raise QuestionnaireError(f"{where} : « donnees_personnelles » doit être une liste")
    personal_set = {p.strip() for p in personal}
    for key, col in identification.items():
        if col in personal_set:
            raise QuestionnaireError(
                f"{where} : la colonne « {col} » est à la fois « {key} » et une donnée "
                "personnelle : elle ne peut pas aller plus loin que raw"
            )

    raw_questions = data.get("questions", [])
    if not isinstance(raw_questions, list) or not raw_questions:
        raise QuestionnaireError(f"{path} : aucune question [[questions]]")
    questions = [_question(q, i, path) for i, q in enumerate(raw_questions, start=1)]
    seen: set[str] = set()
    for q in questions:
        if q.code in seen:
            raise QuestionnaireError(f"{path}, question « {q.code} » : code en double")
        seen.add(q.code)
        if q.colonne in personal_set:
            raise QuestionnaireError(
                f"{path}, question « {q.code} » : la colonne « {q.colonne} » est déclarée "
                "donnée personnelle"
            )
    return WaveMapping(
        path=path,
        titre=str(titre),
        outil=str(outil),
        date_debut=debut,
        date_fin=fin,
        encodage=encodage,
        separateur=separateur,
        feuille=feuille,
        fichier=fichier,
        identification=identification,
        donnees_personnelles=tuple(p.strip() for p in personal),
        questions=tuple(questions),
    )


# --------------------------------------------------------------------------------------------
# Reading an export


@dataclass
class Export:
    """An export as read: header, good records with their line, broken records' lines."""

    source: Path
    header: list[str]
    records: list[tuple[int, list[str]]]
    rejects: list[tuple[int, str]]
    physical_lines: int
    encodage: str | None = None
    separateur: str | None = None

    @property
    def reject_rate(self) -> float:
        total = len(self.records) + len(self.rejects)
        return len(self.rejects) / total if total else 0.0


def _decode(data: bytes, source: Path, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise QuestionnaireError(
            f"{source}, ligne {line} : octet 0x{data[exc.start]:02X} illisible en {encoding} — "
            "réenregistrez l'export en UTF-8 ou précisez « encodage » dans correspondance.toml"
        ) from None


def read_csv_export(
    path: Path, *, encoding: str | None = None, separator: str | None = None
) -> Export:
    """Read a CSV export record by record, keeping each record's first physical line.

    A broken record is set aside with its line and reason rather than failing the whole file:
    one respondent's stray quote must not hide a hundred good answers.
    """
    data = path.read_bytes()
    encoding = encoding or detect_encoding(data)
    text = _decode(data, path, encoding)
    if text.startswith("\ufeff"):  # a BOM left by an explicit "utf-8"
        text = text[1:]
    lines = physical_lines(text)  # element i is physical line i + 1
    if not lines or not text.strip():
        raise QuestionnaireError(f"{path} : fichier vide (pas de ligne d'en-tête)")
    separator = separator or sniff_separator(lines[0])
    read = read_records(lines, separator)
    if read is None:
        raise QuestionnaireError(f"{path} : fichier vide (pas de ligne d'en-tête)")
    header, records, rejects = read.header, read.records, read.rejects
    if not any(header):
        raise QuestionnaireError(f"{path}, ligne {read.header_line} : ligne d'en-tête vide")
    return Export(path, header, records, rejects, len(lines), encoding, separator)


def read_xlsx_export(path: Path, *, sheet: str | None = None) -> Export:
    """Every cell as text; the row number is the sheet's, as seen by whoever opens the file."""
    try:
        frame = pl.read_excel(
            path,
            engine="calamine",
            sheet_name=sheet,
            sheet_id=None if sheet else 1,
            infer_schema_length=0,
            drop_empty_rows=False,
            drop_empty_cols=False,
            raise_if_empty=False,
        )
    except Exception as exc:  # fastexcel raises its own types, and ValueError for a bad sheet
        text = str(exc).strip().splitlines()
        summary = "classeur illisible — " + (text[0] if text else type(exc).__name__)
        if sheet and "sheet" in summary.lower():
            with contextlib.suppress(Exception):
                names = ", ".join(fastexcel.read_excel(path).sheet_names)
                summary = f"feuille « {sheet} » introuvable (feuilles : {names})"
        raise QuestionnaireError(f"{path} : {summary}") from None
    header = [str(c).strip() for c in frame.columns]
    # Polars renamed a repeated header (`Besoin_1`): give it its name back, so that a mapped
    # column present twice is refused as it is in a CSV export (_check_columns)
    for name in xlsx_duplicate_headers(path, sheet):
        header = [name if re.fullmatch(rf"{re.escape(name)}_\d+", h) else h for h in header]
    if frame.width == 0:
        raise QuestionnaireError(f"{path} : feuille vide (pas de ligne d'en-tête)")
    frame = frame.select(pl.all().cast(pl.String))
    records = [
        (i + 2, ["" if v is None else v for v in row]) for i, row in enumerate(frame.iter_rows())
    ]
    return Export(path, header, records, [], frame.height + 1)


def read_export(path: Path, mapping: WaveMapping) -> Export:
    """The format comes from the extension: form tools name their exports reliably."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv_export(path, encoding=mapping.encodage, separator=mapping.separateur)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx_export(path, sheet=mapping.feuille)
    raise QuestionnaireError(f"{path} : format non reconnu (attendu .csv ou .xlsx)")


def _check_columns(export: Export, mapping: WaveMapping) -> None:
    present = [h for h in export.header if h]
    for column in mapping.columns():
        n = export.header.count(column)
        if n == 0:
            raise QuestionnaireError(
                f"fichier {export.source}, ligne 1 : colonne « {column} » absente "
                f"(colonnes présentes : {', '.join(present)})"
            )
        if n > 1:
            raise QuestionnaireError(
                f"fichier {export.source}, ligne 1 : colonne « {column} » présente {n} fois ; "
                "renommez-la dans l'export"
            )


# --------------------------------------------------------------------------------------------
# Raw layer


@dataclass
class WaveIngest:
    vague: str
    fichier_source: str
    path: Path
    encodage: str | None
    separateur: str | None
    lignes_fichier: int
    lignes_lues: int
    lignes_mal_formees: int
    cellules: int


def wave_id(wave_dir: Path) -> str:
    """The folder name, checked: it becomes part of every `reponse_id` and of download paths."""
    name = Path(wave_dir).name
    if not _WAVE_ID.fullmatch(name):
        raise QuestionnaireError(
            f"{wave_dir} : nom de vague « {name} » invalide (minuscules, chiffres, « _ » et "
            "« - », sans accent ni espace)"
        )
    return name


def _export_path(wave_dir: Path, mapping: WaveMapping, vague: str, download_dir: Path) -> Path:
    if mapping.fichier:
        target = mapping.fichier
        if not target.startswith(("http://", "https://")):
            local = Path(target).expanduser()
            target = str(local if local.is_absolute() else mapping.path.parent / local)
        try:
            return fetch(target, Path(download_dir) / vague).path
        except FileNotFoundError:
            raise QuestionnaireError(
                f"{mapping.path} : fichier « {mapping.fichier} » introuvable"
            ) from None
    found = sorted(
        p for p in wave_dir.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".xlsx")
    )
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "aucun"
        raise QuestionnaireError(
            f"{wave_dir} : il faut exactement un export .csv ou .xlsx (trouvé : {names}), ou "
            "« fichier = ... » dans correspondance.toml"
        )
    return found[0]


def _create_tables(con: duckdb.DuckDBPyConnection, schema: str, tables: dict[str, str]) -> None:
    for table, columns in tables.items():
        con.execute(f"create table if not exists {schema}.{table} ({columns})")


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and clean tables empty, so that readers work before the first wave."""
    with warehouse.transaction(con):
        _create_tables(con, "raw", RAW_TABLES)
        _create_tables(con, "clean", CLEAN_TABLES)


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list[Any]], types: str
) -> None:
    """Bulk insert through Arrow: row-by-row inserts are slow for 100 000 raw cells."""
    schema = pa.schema(
        [
            (name.strip(), _ARROW_TYPES[kind.strip()])
            for name, kind in (c.strip().split(" ", 1) for c in types.split(","))
        ]
    )
    rows = pa.table({name: columns[name] for name in schema.names}, schema=schema)
    view = "_questionnaire_rows"
    con.register(view, rows)
    try:
        con.execute(f"insert into {table} by name select * from {view}")
    finally:
        con.unregister(view)


_ARROW_TYPES = {
    "varchar": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}


def _replace(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    tables: dict[str, str],
    vague: str,
    rows: dict[str, dict[str, list[Any]]],
) -> None:
    """Delete the wave's rows and insert the new ones, in one transaction per layer."""
    with warehouse.transaction(con):
        _create_tables(con, schema, tables)
        for table, columns in rows.items():
            con.execute(f"delete from {schema}.{table} where vague = ?", [vague])
            _insert(con, f"{schema}.{table}", columns, tables[table])


def ingest_wave(
    con: duckdb.DuckDBPyConnection,
    wave_dir: Path,
    *,
    download_dir: Path,
    max_reject_rate: float,
    read_at: datetime | None = None,
) -> WaveIngest:
    """Copy a wave's export into raw, replacing what the previous run wrote for that wave.

    `download_dir` is the folder for questionnaire downloads (`<download_dir>/questionnaires`
    in the settings' terms): an export given by URL lands in `download_dir/<vague>/`.

    Refused (previous state kept) when the mapping is wrong, a mapped column is missing or too
    many rows are broken: a file that is mostly broken was probably exported with the wrong
    settings, and half a wave would skew every share computed on it.
    """
    wave_dir = Path(wave_dir)
    vague = wave_id(wave_dir)
    mapping = load_mapping(wave_dir / MAPPING_FILE)
    path = _export_path(wave_dir, mapping, vague, download_dir)
    export = read_export(path, mapping)
    if not export.records and not export.rejects:
        raise QuestionnaireError(f"{path} : aucune réponse (en-tête seul)")
    if export.rejects and export.reject_rate > max_reject_rate:
        first = ", ".join(str(line) for line, _ in export.rejects[:5])
        raise QuestionnaireError(
            f"{path} : {len(export.rejects)} lignes mal formées sur "
            f"{len(export.records) + len(export.rejects)} ({export.reject_rate:.1%}, seuil "
            f"{max_reject_rate:.1%}) ; premières lignes en cause : {first} ({export.rejects[0][1]})"
            " — vague précédente conservée"
        )
    _check_columns(export, mapping)

    source = path.name
    cells: dict[str, list[Any]] = {
        k: [] for k in ("vague", "fichier_source", "ligne", "colonne", "valeur")
    }
    for line, row in export.records:
        for column, value in zip(export.header, row, strict=True):
            if value is None or not value.strip():
                continue
            cells["vague"].append(vague)
            cells["fichier_source"].append(source)
            cells["ligne"].append(line)
            cells["colonne"].append(column)
            cells["valeur"].append(value)
    lecture = {
        "vague": [vague],
        "fichier_source": [source],
        "empreinte": [hashlib.sha256(path.read_bytes()).hexdigest()],
        "encodage": [export.encodage],
        "separateur": [export.separateur],
        "outil": [mapping.outil],
        "lignes_fichier": [export.physical_lines],
        "lignes_lues": [len(export.records)],
        "lignes_mal_formees": [len(export.rejects)],
        "lu_le": [read_at or datetime.now()],
    }
    rejects = {
        "vague": [vague] * len(export.rejects),
        "fichier_source": [source] * len(export.rejects),
        "ligne": [line for line, _ in export.rejects],
        "motif": [motif for _, motif in export.rejects],
    }
    _replace(
        con,
        "raw",
        RAW_TABLES,
        vague,
        {
            "questionnaire_cellules": cells,
            "questionnaire_lectures": lecture,
            "questionnaire_rejets_lecture": rejects,
        },
    )
    return WaveIngest(
        vague=vague,
        fichier_source=source,
        path=path,
        encodage=export.encodage,
        separateur=export.separateur,
        lignes_fichier=export.physical_lines,
        lignes_lues=len(export.records),
        lignes_mal_formees=len(export.rejects),
        cellules=len(cells["valeur"]),
    )


def wave_dirs(inbox_dir: Path) -> list[Path]:
    root = Path(inbox_dir) / "questionnaires"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def ingest_all(
    con: duckdb.DuckDBPyConnection,
    inbox_dir: Path,
    *,
    download_dir: Path,
    max_reject_rate: float,
    read_at: datetime | None = None,
) -> list[WaveIngest]:
    """Every wave of the inbox; waves only in the warehouse stay there (history).

    One broken wave must not keep the others from being updated; the errors are raised
    together at the end, on one line that names every file at fault (etat.json keeps one line).
    """
    results: list[WaveIngest] = []
    errors: list[str] = []
    dirs = wave_dirs(inbox_dir)
    for d in dirs:
        try:
            results.append(
                ingest_wave(
                    con,
                    d,
                    download_dir=download_dir,
                    max_reject_rate=max_reject_rate,
                    read_at=read_at,
                )
            )
        except QuestionnaireError as exc:
            errors.append(" ".join(str(exc).split()))
    if len(errors) == 1:
        raise QuestionnaireError(errors[0])
    if errors:
        raise QuestionnaireError(
            f"{len(errors)} vagues refusées sur {len(dirs)} : " + " | ".join(errors)
        )
    return results


# --------------------------------------------------------------------------------------------
# Values as typed by respondents and form tools

_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_SPACES = re.compile(r"[\s\u00a0\u202f]")


def parse_number(text: str) -> float | None:
    """'12', '12,5', '12.5', '1 200' (spaces, also non-breaking, as thousands separators)."""
    compact = _SPACES.sub("", text)
    if not _NUMBER.fullmatch(compact):
        return None
    return float(compact.replace(",", "."))


_TZ_SUFFIX = re.compile(r"\s*(?:UTC|GMT)\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?\s*$", re.IGNORECASE)
_WEEKDAY_PREFIX = re.compile(r"^[^\W\d]{2,9}\.?,?\s+(?=\d)")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y - %H:%M:%S",
    "%d/%m/%Y - %H:%M",
    "%d/%m/%Y",
    "%Y/%m/%d %I:%M:%S %p",
    "%Y/%m/%d %I:%M %p",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_timestamp(text: str, *, excel_serial: bool = False) -> datetime | None:
    """A form tool's time stamp as wall-clock time in France (naive), None if unreadable.

    LimeSurvey `2026-03-14 10:22:31`, Google Forms `14/03/2026 10:22:31` or
    `2026/03/14 10:22:31 PM UTC+1`, KoboToolbox `2026-03-14T10:22:31.000+01:00`, Framaforms
    `14/03/2026 - 10:22` (with or without a day name), XLSX date cells; with `excel_serial`, a
    spreadsheet's day number (a date cell formatted as a number).
    """
    value = text.strip()
    if not value:
        return None
    if excel_serial and re.fullmatch(r"\d{5}(?:\.\d+)?", value):
        days = float(value)
        if 20000 <= days <= 80000:
            return (_EXCEL_EPOCH + timedelta(days=days)).replace(microsecond=0)
    tz: timezone | None = None
    match = _TZ_SUFFIX.search(value)
    if match and match.start() > 0:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        tz = timezone(-offset if sign == "-" else offset)
        value = value[: match.start()]
    value = _WEEKDAY_PREFIX.sub("", value)
    parsed: datetime | None = None
    if "T" in value or re.search(r"[+-]\d{2}:?\d{2}$|Z$", value):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed is None:
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if tz is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(_LOCAL_TZ).replace(tzinfo=None)
    return parsed


def _key(text: str) -> str:
    """How answers are compared with options: case, accents' composition and spaces ignored."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def split_choices(cell: str, question: Question) -> list[str]:
    """Split a multi-choice cell; an option whose label contains the separator stays whole.

    Google Forms joins choices with ", " while option labels often contain commas.
    """
    parts = cell.split(question.separateur)
    known = {_key(o) for o in question.options or {}}
    values: list[str] = []
    i = 0
    while i < len(parts):
        taken = 1
        if known:
            for j in range(len(parts), i + 1, -1):
                if _key(question.separateur.join(parts[i:j])) in known:
                    taken = j - i
                    break
        value = question.separateur.join(parts[i : i + taken]).strip()
        if value and value not in values:
            values.append(value)
        i += taken
    return values


def _quote(text: str, limit: int = 60) -> str:
    text = mask_contacts(" ".join(text.split()))
    return f"« {text[:limit]}{'…' if len(text) > limit else ''} »"


# --------------------------------------------------------------------------------------------
# Clean layer


@dataclass
class WaveClean:
    vague: str
    nb_reponses: int
    nb_valeurs: int
    nb_rejets: int


@dataclass
class _Rows:
    """Column-wise buffers for one clean table."""

    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, ddl: str) -> _Rows:
        return cls({c.strip().split(" ", 1)[0]: [] for c in ddl.split(",")})

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


_SEPARATORS_IN_NUMBERS = re.compile(r"[\s.\-_/]")


def _digit_count(text: str | None) -> int:
    """Number of digits once separators are removed; -1 when something else is left."""
    digits = _SEPARATORS_IN_NUMBERS.sub("", text or "")
    return len(digits) if digits.isdigit() else -1


def _identifiers(siret_text: str | None, siren_text: str | None) -> tuple[str | None, str | None]:
    """Normalised SIRET and SIREN as declared; a SIREN typed in the SIRET box is a SIREN.

    Padding a 9-digit SIREN to 14 digits would invent a SIRET that does not exist; the reverse
    mistake (a SIRET in the SIREN box) is as common.
    """
    siret = normalise_declared(siret_text, 14)
    siren = normalise_declared(siren_text, 9)
    if _digit_count(siret_text) in (8, 9):
        siret, siren = None, siren or normalise_declared(siret_text, 9)
    if siret is None and _digit_count(siren_text) in (13, 14):
        siret = normalise_declared(siren_text, 14)
    return siret, siren


def clean_wave(con: duckdb.DuckDBPyConnection, vague: str, mapping: WaveMapping) -> WaveClean:
    """Typed answers of one wave, built from raw only, replacing the wave's previous rows.

    Only the columns the mapping names as identification or questions are even read from raw,
    so the respondent's personal data cannot leak into clean by a later change of this code.
    A malformed value goes to `clean.questionnaire_rejets` and the rest of the answer is kept:
    one mistyped number must not lose a structure's needs.
    """
    lecture = None
    if table_exists(con, "raw", "questionnaire_lectures"):
        lecture = con.execute(
            "select fichier_source from raw.questionnaire_lectures where vague = ?", [vague]
        ).fetchone()
    if lecture is None:
        raise QuestionnaireError(
            f"vague « {vague} » : pas encore lue dans raw (lancez l'ingestion)"
        )
    fichier_source = str(lecture[0])
    excel = fichier_source.lower().endswith((".xlsx", ".xlsm"))
    wanted = mapping.clean_columns()
    answers: dict[int, dict[str, str]] = {}
    for line, column, value in con.execute(
        "select ligne, colonne, valeur from raw.questionnaire_cellules "
        "where vague = $vague and list_contains($cols, colonne) order by ligne",
        {"vague": vague, "cols": wanted},
    ).fetchall():
        answers.setdefault(int(line), {})[column] = value
    # The respondent's own personal data, read only to mask it where they typed it again (a
    # name in a comment, or as the structure's name): it is never stored outside raw.
    personal: dict[int, list[str]] = {}
    if mapping.donnees_personnelles:
        for line, value in con.execute(
            "select ligne, valeur from raw.questionnaire_cellules "
            "where vague = $vague and list_contains($cols, colonne)",
            {"vague": vague, "cols": list(mapping.donnees_personnelles)},
        ).fetchall():
            if value and value.strip():
                personal.setdefault(int(line), []).append(value.strip())
    # answers with only personal data filled in still count as answers
    for (line,) in con.execute(
        "select distinct ligne from raw.questionnaire_cellules where vague = ?", [vague]
    ).fetchall():
        answers.setdefault(int(line), {})

    ident = mapping.identification
    resolver = CommuneResolver.from_con(con)
    labels = dict(con.execute("select code_commune, libelle_commune from ref.communes").fetchall())
    reponses = _Rows.of(CLEAN_TABLES["questionnaire_reponses"])
    valeurs = _Rows.of(CLEAN_TABLES["questionnaire_valeurs"])
    rejets = _Rows.of(CLEAN_TABLES["questionnaire_rejets"])

    def reject(line: int, column: str | None, motif: str) -> None:
        rejets.add(vague=vague, ligne=line, colonne=column, motif=motif)

    for line in sorted(answers):
        cells = {k: v.strip() for k, v in answers[line].items() if v and v.strip()}

        def field_(name: str, cells: dict[str, str] = cells) -> str | None:
            return cells.get(ident[name]) if name in ident else None

        reponse_id = f"{vague}:{line}"
        horodatage = None
        if "horodatage" in ident:
            stamp = field_("horodatage")
            if stamp is None:
                reject(line, ident["horodatage"], "horodatage manquant")
            else:
                horodatage = parse_timestamp(stamp, excel_serial=excel)
                if horodatage is None:
                    reject(line, ident["horodatage"], f"horodatage illisible : {_quote(stamp)}")
        siret, siren = _identifiers(field_("siret"), field_("siren"))
        for name in ("siret", "siren"):
            text = field_(name)
            # either box may hold either identifier (_identifiers); anything else, a phone
            # number typed in the SIRET box for one, is no identifier and goes no further
            if text is not None and _digit_count(text) not in (8, 9, 13, 14):
                reject(line, ident[name], f"{name.upper()} illisible : {_quote(text)}")
        code_postal_text = field_("code_postal")
        code_postal = normalise(code_postal_text, 5) if code_postal_text else None
        if code_postal_text and code_postal is None:
            reject(
                line, ident["code_postal"], f"code postal illisible : {_quote(code_postal_text)}"
            )
        commune = field_("commune")
        code_commune = None
        if commune or code_postal:
            code_commune = resolver.resolve(commune, code_postal)
            if code_commune is None and commune:
                reject(
                    line,
                    ident["commune"],
                    f"commune {_quote(commune)} non reconnue"
                    + (f" (code postal {code_postal})" if code_postal else ""),
                )
        nom, adresse = field_("nom"), field_("adresse")
        reponses.add(
            vague=vague,
            reponse_id=reponse_id,
            ligne=line,
            horodatage=horodatage,
            siret_declare=siret,
            siren_declare=siren,
            nom=mask_person(mask_contacts(nom), personal.get(line, ())) if nom else None,
            adresse=(
                mask_person(mask_contacts(adresse), personal.get(line, ())) if adresse else None
            ),
            code_postal=code_postal,
            code_commune=code_commune,
            libelle_commune=labels.get(code_commune) if code_commune else None,
        )

        for q in mapping.questions:
            cell = cells.get(q.colonne)
            if cell is None:
                continue
            for value, number, besoin in _question_values(q, cell, line, reject):
                if q.type == "texte":
                    value = mask_person(value, personal.get(line, ()), words=True)
                valeurs.add(
                    vague=vague,
                    reponse_id=reponse_id,
                    question=q.code,
                    type=q.type,
                    besoin=besoin,
                    valeur=value,
                    valeur_nombre=number,
                )

    questions = _Rows.of(CLEAN_TABLES["questionnaire_questions"])
    for q in mapping.questions:
        questions.add(vague=vague, question=q.code, colonne=q.colonne, type=q.type, besoin=q.besoin)
    needs = _Rows.of(CLEAN_TABLES["questionnaire_besoins"])
    for need in sorted(
        {q.besoin for q in mapping.questions if q.besoin}
        | {cat for q in mapping.questions for cat in (q.options or {}).values() if cat}
    ):
        needs.add(vague=vague, besoin=need)
    vagues = _Rows.of(CLEAN_TABLES["questionnaire_vagues"])
    vagues.add(
        vague=vague,
        titre=mapping.titre,
        date_debut=mapping.date_debut,
        date_fin=mapping.date_fin,
        outil=mapping.outil,
        fichier_source=fichier_source,
        nb_reponses=len(reponses),
    )
    _replace(
        con,
        "clean",
        CLEAN_TABLES,
        vague,
        {
            "questionnaire_reponses": reponses.columns,
            "questionnaire_valeurs": valeurs.columns,
            "questionnaire_questions": questions.columns,
            "questionnaire_besoins": needs.columns,
            "questionnaire_vagues": vagues.columns,
            "questionnaire_rejets": rejets.columns,
        },
    )
    return WaveClean(vague, len(reponses), len(valeurs), len(rejets))


PERSON_MASK = "[donnée personnelle masquée]"


def mask_person(text: str, values: Sequence[str], *, words: bool = False) -> str:
    """Mask what the respondent gave as personal data wherever they typed it again.

    The whole values always ("Camille Durand" typed as the structure's name); with `words`,
    also each word of three letters or more of those values (a signature "Camille D." in a
    comment). Words are not masked in a structure's name, where "Marie" may belong to
    "Maison Marie Curie" and the name is needed for the linkage.
    """
    pieces = {v for v in values if len(v) >= 3}
    if words:
        pieces |= {w for v in values for w in re.findall(r"[^\W\d_]{3,}", v)}
    for piece in sorted(pieces, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", PERSON_MASK, text, flags=re.I)
    return text


def _question_values(
    q: Question, cell: str, line: int, reject: Callable[[int, str | None, str], None]
) -> list[tuple[str, float | None, str | None]]:
    """(value, number, need cited) for one answered question; bad values are rejected."""
    if q.type == "nombre":
        number = parse_number(cell)
        if number is None:
            reject(line, q.colonne, f"nombre illisible : {_quote(cell)}")
            return []
        return [(cell, number, q.besoin if q.besoin and number > 0 else None)]
    if q.type == "texte":
        text = mask_contacts(cell)
        cited = (
            q.besoin if q.cite_si is None or _key(cell) in {_key(c) for c in q.cite_si} else None
        )
        return [(text, None, cited)]
    values = split_choices(cell, q) if q.type == "choix_multiple" else [cell]
    options = {_key(o): (o, cat) for o, cat in (q.options or {}).items()}
    cite = {_key(c) for c in q.cite_si or ()}
    out: list[tuple[str, float | None, str | None]] = []
    for value in values:
        key = _key(value)
        besoin = None
        if q.options is not None:
            if key not in options:
                reject(line, q.colonne, f"réponse {_quote(value)} absente des options prévues")
                continue
            value, besoin = options[key]
        if besoin is None and key in cite:
            besoin = q.besoin
        out.append((mask_contacts(value), None, besoin))
    return out


def clean_all(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> list[WaveClean]:
    """Every wave of the inbox, with its current mapping; other waves' clean rows are kept."""
    results = []
    for wave_dir in wave_dirs(inbox_dir):
        vague = wave_id(wave_dir)
        results.append(clean_wave(con, vague, load_mapping(wave_dir / MAPPING_FILE)))
    return results
