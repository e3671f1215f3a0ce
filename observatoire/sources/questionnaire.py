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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import fastexcel
import polars as pl
import pyarrow as pa

from observatoire.core import warehouse
from observatoire.core.contacts import mask_contacts
from observatoire.core.csvfiles import (
    ENCODINGS,
    SEPARATORS,
    detect_encoding,
    physical_lines,
    read_records,
    sniff_separator,
    xlsx_duplicate_headers,
)
from observatoire.sources.download import fetch

__all__ = [
    "NEEDS",
    "QUESTION_TYPES",
    "Question",
    "QuestionnaireError",
    "WaveIngest",
    "WaveMapping",
    "create_tables",
    "ingest_all",
    "ingest_wave",
    "load_mapping",
    "mask_contacts",
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
