"""Reference data (COG, NAF, catégories juridiques, tranches d'effectifs, ESS rules) in DuckDB.

The CSV files under `data/reference/` are versioned with their provenance; loading them as
tables lets every SQL file join on them, and lets a territory replace them (a newer COG, its own
EPT list) without code changes.

They are read by a small validating reader rather than by DuckDB's `read_csv`: a territory
edits these files by hand, and a stray comma, an Excel save in Windows-1252 or a renamed column
must stop the refresh with the file, the line and the column, not with a DuckDB traceback or a
silently shifted table. The files are small (the COG, the largest, is 35,000 lines).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

# table in schema `ref` -> file in the reference folder
REFERENCE_FILES: dict[str, str] = {
    "communes": "cog_communes.csv",
    # the 12 territories of the Métropole du Grand Paris, Paris as its arrondissements (the
    # units SIRENE locates establishments in)
    "ept_communes": "ept_communes_paris_arrondissements.csv",
    "regions_departements": "regions_departements.csv",
    "naf_rev2_niveaux": "naf_rev2_niveaux.csv",
    "naf_rev2_sous_classes": "naf_rev2_sous_classes.csv",
    "naf_2025_sous_classes": "naf_2025_sous_classes.csv",
    "categories_juridiques_n1": "categories_juridiques_n1.csv",
    "categories_juridiques_n2": "categories_juridiques_n2.csv",
    "categories_juridiques_n3": "categories_juridiques_n3.csv",
    "tranches_effectifs": "tranches_effectifs.csv",
    "ess_categories_juridiques": "ess_categories_juridiques.csv",
    "ess_naf_exclusions": "ess_naf_exclusions.csv",
    "cog_communes_anciennes": "cog_communes_anciennes.csv",
    "naf_2025_niveaux": "naf_2025_niveaux.csv",
    "naf_rev2_naf_2025": "naf_rev2_naf_2025.csv",
}

# Columns that are not text, by table; everything else stays text (codes keep their leading
# zeros). Types: "integer", "boolean" (true / false). An empty field is NULL whatever the type.
_TYPED: dict[str, dict[str, str]] = {
    "tranches_effectifs": {"effectif_min": "integer", "effectif_max": "integer"},
    "categories_juridiques_n3": {"supprime": "boolean"},
    "cog_communes_anciennes": {"ambigu": "boolean"},
}

# Columns the SQL and the code join on, by table: a file without them is refused when read,
# not half-way through the indicators. Typed columns are required too. A table not listed here
# only needs a well-formed header.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "communes": ("code_commune", "libelle_commune", "code_departement", "code_region"),
    "ept_communes": ("code_ept", "libelle_ept", "siren_ept", "code_commune"),
    "regions_departements": ("code_region", "code_departement"),
    "naf_rev2_niveaux": ("niveau", "code", "section"),
    "naf_rev2_sous_classes": ("code_sous_classe", "code_division", "code_section"),
    "naf_2025_sous_classes": ("code_naf2025",),
    "categories_juridiques_n1": ("code_n1",),
    "categories_juridiques_n2": ("code_n2",),
    "categories_juridiques_n3": ("code_n3", "libelle_n3"),
    "tranches_effectifs": ("code", "libelle"),
    "ess_categories_juridiques": ("code_cj", "famille_ess"),
    "ess_naf_exclusions": ("code_naf", "statut"),
    "cog_communes_anciennes": ("code_commune_ancienne", "code_commune_actuelle"),
    "naf_2025_niveaux": ("code_naf2025", "code_division", "code_section"),
    "naf_rev2_naf_2025": ("code_naf_rev2", "code_naf2025"),
}

_ARROW_TYPES = {"text": pa.string(), "integer": pa.int32(), "boolean": pa.bool_()}
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_BOOLEANS = {"true": True, "false": False}


class ReferenceFileError(ValueError):
    """A reference file cannot be used: the message names the file, the line and the column."""


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"« {text} » n'est pas un nombre entier")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"« {text} » est hors des bornes d'un entier")
    return value


def _boolean(text: str) -> bool:
    value = _BOOLEANS.get(text.strip().lower())
    if value is None:
        raise ValueError(f"« {text} » n'est pas un booléen (true ou false attendu)")
    return value


_CONVERTERS = {"integer": _integer, "boolean": _boolean}


def _encoding_error(path: Path, data: bytes, exc: UnicodeDecodeError) -> ReferenceFileError:
    """Where the first non-UTF-8 byte is: physical line, and the field it falls in."""
    line = data.count(b"\n", 0, exc.start) + 1
    prefix = data[: exc.start].decode("utf-8-sig")
    # a sentinel character makes the reader open the field the bad byte belongs to
    records = list(csv.reader(io.StringIO(prefix + "x")))
    index = len(records[-1]) - 1 if records else 0
    header = records[0] if len(records) > 1 else []
    if index < len(header):
        column = f", colonne « {header[index]} »"
    else:
        column = f", champ {index + 1}" + (" de l'en-tête" if len(records) <= 1 else "")
    return ReferenceFileError(
        f"{path}, ligne {line}{column} : octet 0x{data[exc.start]:02X} non UTF-8 (fichier "
        "enregistré en Windows-1252 par un tableur ?) ; les fichiers de référence sont en UTF-8"
    )


def _quote_error(path: Path, text: str, start: int, line: int, header: list[str]) -> str:
    """Quotes the csv reader could not close: where, and which column when it can be told."""
    rest = "".join(io.StringIO(text, newline="").readlines()[start - 1 :])
    fields = next(csv.reader(io.StringIO(rest)), [])
    if rest.count('"') % 2:
        # a quote opened and never closed swallows the rest of the file into its field
        index = len(fields) - 1
        column = f", colonne « {header[index]} »" if 0 <= index < len(header) else ""
        problem = "un guillemet ouvert n'est jamais fermé"
        line = start
    else:
        column = ""
        problem = "un guillemet fermant est suivi d'autres caractères dans le même champ"
    return (
        f"{path}, ligne {line}{column} : {problem} ; un texte qui contient une virgule ou un "
        "guillemet s'écrit entre guillemets, un guillemet intérieur doublé"
    )


def read_reference_file(
    path: Path,
    types: Mapping[str, str] | None = None,
    required: Sequence[str] = (),
) -> pa.Table:
    """Read one reference CSV (UTF-8, `,`, header line), checking every line, into Arrow.

    Every column is text unless `types` says otherwise; an empty field is NULL (as DuckDB's
    reader gave it before). Any problem raises ReferenceFileError naming file, line, column.
    """
    path = Path(path)
    types = dict(types or {})
    if not path.exists():
        raise ReferenceFileError(f"Fichier de référence manquant : {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceFileError(
            f"Fichier de référence illisible : {path} ({exc.strerror})"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, data, exc) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] = []
    columns: list[list[object]] = []
    start = 1
    try:
        for record in reader:
            if not record:  # a blank line
                start = reader.line_num + 1
                continue
            if not header:
                header = record
                _check_header(path, start, header, types, required)
                columns = [[] for _ in header]
                converters = [_CONVERTERS.get(types.get(c, "text")) for c in header]
                start = reader.line_num + 1
                continue
            if len(record) != len(header):
                raise ReferenceFileError(_field_count(path, start, header, record))
            for i, value in enumerate(record):
                convert = converters[i]
                if value == "":
                    columns[i].append(None)
                elif convert is None:
                    columns[i].append(value)
                else:
                    try:
                        columns[i].append(convert(value))
                    except ValueError as exc:
                        raise ReferenceFileError(
                            f"{path}, ligne {start}, colonne « {header[i]} » : {exc}"
                        ) from None
            start = reader.line_num + 1
    except csv.Error:
        raise ReferenceFileError(_quote_error(path, text, start, reader.line_num, header)) from None
    if not header:
        raise ReferenceFileError(f"{path} : fichier vide (pas de ligne d'en-tête)")
    return pa.table(
        {
            name: pa.array(values, type=_ARROW_TYPES[types.get(name, "text")])
            for name, values in zip(header, columns, strict=True)
        }
    )


def _check_header(
    path: Path, line: int, header: list[str], types: Mapping[str, str], required: Sequence[str]
) -> None:
    where = f"{path}, ligne {line} (en-tête)"
    for i, name in enumerate(header, start=1):
        if not name.strip():
            raise ReferenceFileError(f"{where} : la colonne {i} n'a pas de nom")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ReferenceFileError(f"{where} : colonne « {name} » présente deux fois")
        seen.add(name)
    unknown = sorted(set(types.values()) - set(_ARROW_TYPES))
    if unknown:  # a programming error in _TYPED, said before any line is read
        raise ValueError(f"type de colonne inconnu : {', '.join(unknown)}")
    missing = [c for c in dict.fromkeys([*required, *types]) if c not in header]
    if missing:
        names = ", ".join(f"« {c} »" for c in missing)
        raise ReferenceFileError(
            f"{where} : colonne{'s' if len(missing) > 1 else ''} {names} absente"
            f"{'s' if len(missing) > 1 else ''} (colonnes trouvées : {', '.join(header)})"
        )


def _field_count(path: Path, line: int, header: list[str], record: list[str]) -> str:
    where = f"{path}, ligne {line}"
    count = f"{len(record)} champs au lieu de {len(header)}"
    if len(record) > len(header):
        return (
            f"{where}, colonne « {header[-1]} » : {count}, un champ de trop après cette colonne "
            "(une virgule dans un texte qui n'est pas entre guillemets ?)"
        )
    return f"{where}, colonne « {header[len(record)]} » : {count}, cette colonne manque"


def load_reference_table(con: duckdb.DuckDBPyConnection, table: str, reference_dir: Path) -> int:
    path = Path(reference_dir) / REFERENCE_FILES[table]
    types = _TYPED.get(table, {})
    frame = read_reference_file(path, types, _REQUIRED.get(table, ()))
    view = f"_reference_{table}"
    con.register(view, frame)
    try:
        con.execute(f"create or replace table ref.{table} as select * from {view}")
    finally:
        con.unregister(view)
    return frame.num_rows


def load_reference(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> dict[str, int]:
    return {table: load_reference_table(con, table, reference_dir) for table in REFERENCE_FILES}
