"""SIRENE stock files into the raw layer: CSV, zipped CSV (as INSEE ships it) or Parquet.

Reading is the expensive part of a refresh (42 M establishment rows nationally, parsing-bound on
two cores), so the files are read once, only the columns the observatory uses are kept, and
establishments are filtered to the territory while reading. Plain CSV and Parquet are read by
DuckDB itself; DuckDB cannot open a zip offline, so a zip is streamed through `zipfile` and
pyarrow's CSV reader into DuckDB (the fastest offline route measured in shared/stack-notes.md).
Malformed CSV lines are never dropped silently: they land in `raw.sirene_rejets_lecture` with
file, line and reason.
"""

from __future__ import annotations

import csv
import errno
import io
import logging
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from observatoire import warehouse
from observatoire.clean import RejectRateError
from observatoire.layouts import CURRENT, Layout, LayoutError, detect_layout

log = logging.getLogger("observatoire.sirene")

# Columns kept in the raw layer (INSEE names, all text). Columns absent from an older layout are
# filled with NULL.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "etablissements": (
        "siren",
        "nic",
        "siret",
        "statutDiffusionEtablissement",
        "dateCreationEtablissement",
        "trancheEffectifsEtablissement",
        "anneeEffectifsEtablissement",
        "etablissementSiege",
        "numeroVoieEtablissement",
        "indiceRepetitionEtablissement",
        "typeVoieEtablissement",
        "libelleVoieEtablissement",
        "codePostalEtablissement",
        "libelleCommuneEtablissement",
        "codeCommuneEtablissement",
        "codePaysEtrangerEtablissement",
        "coordonneeLambertAbscisseEtablissement",
        "coordonneeLambertOrdonneeEtablissement",
        "dateDebut",
        "etatAdministratifEtablissement",
        "enseigne1Etablissement",
        "denominationUsuelleEtablissement",
        "activitePrincipaleEtablissement",
        "nomenclatureActivitePrincipaleEtablissement",
        "caractereEmployeurEtablissement",
        "activitePrincipaleNAF25Etablissement",
        "dateDernierTraitementEtablissement",
    ),
    "unites_legales": (
        "siren",
        "statutDiffusionUniteLegale",
        "dateCreationUniteLegale",
        "sigleUniteLegale",
        "identifiantAssociationUniteLegale",
        "trancheEffectifsUniteLegale",
        "anneeEffectifsUniteLegale",
        "categorieEntreprise",
        "dateDebut",
        "etatAdministratifUniteLegale",
        "denominationUniteLegale",
        "categorieJuridiqueUniteLegale",
        "activitePrincipaleUniteLegale",
        "nomenclatureActivitePrincipaleUniteLegale",
        "nicSiegeUniteLegale",
        "economieSocialeSolidaireUniteLegale",
        "societeMissionUniteLegale",
        "caractereEmployeurUniteLegale",
        "activitePrincipaleNAF25UniteLegale",
        "dateDernierTraitementUniteLegale",
    ),
}

RAW_TABLES = {"etablissements": "sirene_etablissements", "unites_legales": "sirene_unites_legales"}


class SireneFileError(ValueError):
    """A SIRENE file cannot be read; the message names the file and what is wrong."""


@dataclass
class IngestResult:
    kind: str
    path: Path
    layout: str
    rows: int
    malformed: int
    # data lines of the whole file, when known without a second read (always known when some
    # lines are malformed, so that their share can be judged)
    lines_total: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def malformed_rate(self) -> float:
        return self.malformed / self.lines_total if self.malformed and self.lines_total else 0.0


def check_source(path: Path) -> None:
    """Refuse, in a sentence, a source that is not a readable regular file.

    Called on both files before the long read of the first: a missing legal-unit file must not
    be found after twenty minutes spent reading the establishments, nor end in a traceback.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise SireneFileError(
                f"{path} : lien symbolique cassé, sa cible {os.readlink(path)} n'existe pas"
            ) from None
        missing = next((p for p in path.parents if not p.exists()), None)
        where = f" (le dossier {missing} n'existe pas)" if missing and missing != path else ""
        raise SireneFileError(f"{path} : fichier introuvable{where}") from None
    except PermissionError:
        raise SireneFileError(
            f"{path} : accès refusé (droits insuffisants sur le fichier ou un de ses dossiers)"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SireneFileError(
                f"{path} : boucle de liens symboliques, le fichier ne peut pas être atteint"
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise SireneFileError(
                f"{path} : fichier introuvable (un élément du chemin n'est pas un dossier)"
            ) from None
        raise SireneFileError(f"{path} : fichier inaccessible ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        try:
            found = sorted(
                p.name for p in path.iterdir() if p.suffix.lower() in (".zip", ".csv", ".parquet")
            )
        except OSError:
            found = []
        inside = f" ; il contient : {', '.join(found[:4])}" if found else ""
        raise SireneFileError(
            f"{path} est un dossier, pas un fichier : indiquer le fichier du stock lui-même "
            f"(.zip, .csv ou .parquet){inside}"
        )
    if not stat.S_ISREG(info.st_mode):
        raise SireneFileError(f"{path} : ce n'est pas un fichier ordinaire")
    try:
        with path.open("rb") as f:
            f.read(1)
    except PermissionError:
        raise SireneFileError(
            f"{path} : lecture interdite (droits {stat.filemode(info.st_mode)}, propriétaire "
            f"{info.st_uid}) ; donner le droit de lecture à l'utilisateur qui lance le "
            "rafraîchissement"
        ) from None
    except OSError as exc:
        raise SireneFileError(f"{path} : fichier illisible ({exc.strerror})") from None


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return "zip"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise SireneFileError(f"{path} : format non reconnu (attendu .csv, .zip ou .parquet)")


def _zip_member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
    if len(members) != 1:
        raise SireneFileError(
            f"{path} : l'archive doit contenir exactement un fichier .csv "
            f"(trouvé : {', '.join(i.filename for i in zf.infolist()) or 'aucun'})"
        )
    return members[0]


MAX_HEADER_BYTES = 64 * 1024


def read_header(path: Path, fmt: str | None = None) -> tuple[list[str], str]:
    """Header of a SIRENE file in any accepted format, and the name to report it under.

    Reads at most one bounded line: a binary or newline-free file must not be loaded whole
    just to be refused. `fmt` overrides the format told by the suffix (a download in progress
    is named `*.part`).
    """
    fmt = fmt or file_format(path)
    source = str(path)
    try:
        if fmt == "parquet":
            return list(pq.read_schema(path).names), source
        if fmt == "zip":
            with zipfile.ZipFile(path) as zf:
                member = _zip_member(zf, path)
                source = f"{path}:{member.filename}"
                with zf.open(member) as raw:
                    first = raw.readline(MAX_HEADER_BYTES)
        else:
            with path.open("rb") as f:
                first = f.readline(MAX_HEADER_BYTES)
        if len(first) >= MAX_HEADER_BYTES and not first.endswith(b"\n"):
            raise SireneFileError(
                f"{source} : première ligne de plus de {MAX_HEADER_BYTES} octets, "
                "ce n'est pas un en-tête SIRENE"
            )
        line = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except zipfile.BadZipFile as exc:
        raise SireneFileError(f"{path} : archive zip illisible ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise SireneFileError(
            f"{source}, ligne 1 : en-tête non UTF-8 (octet {exc.start}) ; INSEE publie en UTF-8"
        ) from exc
    if not line.strip():
        raise SireneFileError(f"{source} : fichier vide (pas de ligne d'en-tête)")
    return next(csv.reader([line])), source


def detect(kind: str, path: Path, fmt: str | None = None) -> Layout:
    try:
        return detect_layout(kind, *read_header(path, fmt))
    except LayoutError as exc:
        raise SireneFileError(str(exc)) from exc


def _create_build(con: duckdb.DuckDBPyConnection, kind: str, mois: str) -> str:
    """An empty build table for the month's raw rows, and the shared read-rejects table."""
    build = warehouse.start_build(con, "raw", RAW_TABLES[kind], mois)
    cols = ", ".join(f'"{c}" varchar' for c in RAW_COLUMNS[kind])
    con.execute(f"create table {build} (mois varchar, {cols}, fichier_source varchar)")
    con.execute(
        "create table if not exists raw.sirene_rejets_lecture (mois varchar, fichier varchar, "
        "type_fichier varchar, ligne bigint, colonne varchar, motif varchar, contenu varchar)"
    )
    con.execute(f"drop table if exists {build}_rejets")
    con.execute(f"create table {build}_rejets as select * from raw.sirene_rejets_lecture limit 0")
    return build


def _as_insee_text(column: str, column_type: str) -> str:
    """Typed Parquet value -> the text INSEE writes in its CSV files.

    INSEE's Parquet stores dates as DATE, timestamps, years and counts as numbers and the head
    office flag as BOOLEAN; the raw layer is INSEE's text, so that one set of cleaning rules
    serves every format.
    """
    c = f'"{column}"'
    t = column_type.upper()
    if t == "DATE":
        return f"strftime({c}, '%Y-%m-%d')"
    if t.startswith("TIMESTAMP"):
        return f"strftime({c}, '%Y-%m-%dT%H:%M:%S')"
    if t == "BOOLEAN":
        return f"case when {c} then 'true' when not {c} then 'false' end"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return (
            f"case when {c} = floor({c}) then cast(cast({c} as bigint) as varchar) "
            f"else cast({c} as varchar) end"
        )
    return f"cast({c} as varchar)"


def _select_list(kind: str, layout: Layout, types: dict[str, str] | None = None) -> str:
    """Project the kept columns as INSEE text; columns missing from an older layout are NULL.

    `types` are the source's column types (typed Parquet); text sources need none.
    """
    parts = []
    for c in RAW_COLUMNS[kind]:
        if c in layout.columns:
            parts.append(f'{_as_insee_text(c, (types or {}).get(c, "VARCHAR"))} as "{c}"')
        else:
            parts.append(f'cast(null as varchar) as "{c}"')
    return ", ".join(parts)


def _territory_filter(kind: str, communes_table: str | None) -> str:
    """Keep the territory's establishments, those of its former communes, and unknown codes.

    A former commune code (merged since; closed establishments keep it) is attributed to
    today's commune by the cleaning step, so it is kept when that commune is the territory's.
    A code unknown to every list cannot be placed: it is kept so that the cleaning step counts
    it in the drift table (it then belongs to no territory) rather than losing it silently at
    reading. Such codes are rare, so keeping them costs nothing even on a small territory.
    """
    if communes_table is None:
        return "true"
    if kind == "etablissements":
        code = '"codeCommuneEtablissement"'
        return (
            f"{code} in (select code_commune from {communes_table}) "
            f"or {code} in (select code_commune_ancienne from ref.cog_communes_anciennes "
            f"where code_commune_actuelle in (select code_commune from {communes_table})) "
            f"or ({code} not in (select code_commune from ref.communes) "
            f"and {code} not in (select code_commune_ancienne from ref.cog_communes_anciennes))"
        )
    # legal units of the territory's establishments (their head office may be elsewhere)
    return "siren in (select siren from _sirens_du_mois)"


def ingest(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    path: Path,
    mois: str,
    *,
    communes_table: str | None = "ref.territoire_communes",
    block_size: int = 64 << 20,
    max_malformed_rate: float | None = None,
) -> IngestResult:
    """Replace month `mois` of `raw.sirene_<kind>` with the rows of `path`.

    The rows are written to a build table, then swapped in with the month's malformed lines in
    one short transaction: a failure leaves the previous month untouched. Malformed lines are
    judged against the whole file (they cannot be placed in a territory): above
    `max_malformed_rate`, the month is refused.
    """
    path = Path(path)
    check_source(path)
    layout = detect(kind, path)
    if not layout.current:
        log.warning("%s : disposition ancienne reconnue (%s)", path, layout.name)
    fmt = file_format(path)
    if kind == "unites_legales" and communes_table is not None:
        con.execute(
            "create or replace temp table _sirens_du_mois as "
            "select distinct siren from raw.sirene_etablissements where mois = $mois",
            {"mois": mois},
        )
    where = _territory_filter(kind, communes_table)
    build = _create_build(con, kind, mois)
    try:
        if fmt == "csv":
            malformed, total = _ingest_csv(con, kind, build, path, mois, layout, where)
        elif fmt == "parquet":
            malformed, total = 0, pq.ParquetFile(path).metadata.num_rows
            types = dict(
                con.execute(
                    "select column_name, column_type "
                    "from (describe select * from read_parquet($p))",
                    {"p": str(path)},
                ).fetchall()
            )
            con.execute(
                f"insert into {build} select $mois, {_select_list(kind, layout, types)}, "
                f"$src from read_parquet($p) where {where}",
                {"mois": mois, "src": path.name, "p": str(path)},
            )
        else:
            malformed, total = _ingest_zip(con, kind, build, path, mois, layout, where, block_size)
        result = IngestResult(kind, path, layout.name, 0, malformed, total)
        if max_malformed_rate is not None and result.malformed_rate > max_malformed_rate:
            examples = con.execute(
                f"select ligne, colonne, motif from {build}_rejets order by ligne limit 5"
            ).fetchall()
            detail = " ; ".join(
                f"ligne {li}" + (f", colonne {co}" if co else "") + f" : {mo}"
                for li, co, mo in examples
            )
            raise RejectRateError(
                f"{path} : {malformed} lignes mal formées sur {total} "
                f"({result.malformed_rate:.1%}, seuil {max_malformed_rate:.1%}) — {detail} — "
                "mois précédent conservé"
            )
    except BaseException:
        con.execute(f"drop table if exists {build}")
        con.execute(f"drop table if exists {build}_rejets")
        raise

    def replace_rejects() -> None:
        con.execute(
            "delete from raw.sirene_rejets_lecture where mois = $mois and type_fichier = $kind",
            {"mois": mois, "kind": kind},
        )
        con.execute(f"insert into raw.sirene_rejets_lecture select * from {build}_rejets")
        con.execute(
            "create table if not exists raw.sirene_lectures (mois varchar, type_fichier varchar, "
            "fichier varchar, disposition varchar, lignes_fichier bigint, "
            "lignes_mal_formees bigint, lignes_retenues bigint)"
        )
        con.execute(
            "delete from raw.sirene_lectures where mois = $mois and type_fichier = $kind",
            {"mois": mois, "kind": kind},
        )
        month = warehouse.month_table("raw", RAW_TABLES[kind], mois)
        con.execute(
            f"insert into raw.sirene_lectures select $mois, $kind, $src, $layout, $total, "
            f"$malformed, (select count(*) from {month})",
            {
                "mois": mois,
                "kind": kind,
                "src": str(path),
                "layout": layout.name,
                "total": total,
                "malformed": malformed,
            },
        )

    result.rows = warehouse.swap_month(con, "raw", RAW_TABLES[kind], mois, also=replace_rejects)
    con.execute(f"drop table if exists {build}_rejets")
    return result


def _ingest_csv(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    path: Path,
    mois: str,
    layout: Layout,
    where: str,
) -> tuple[int, int | None]:
    """Read a CSV stock into `table`; return (malformed lines quarantined, data lines).

    A strict read comes first: INSEE's files are well formed, and that read costs nothing extra.
    Only when it fails is the file read again with DuckDB's rejects tables, which keep every
    malformed line with its number. That second reader crashes the whole database on bytes that
    are not UTF-8 (DuckDB 1.5 bug: "Attempted to access index ... within vector"), so encoding
    errors are located by our own pass before it runs and refused with line and column.
    """
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in layout.columns) + "}"
    options = (
        f"header = true, delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
        "max_line_size = 1048576"
    )
    insert = (
        f"insert into {table} select $mois, {_select_list(kind, layout)}, $src "
        "from read_csv($p, {options}) where " + where
    )
    params = {"mois": mois, "src": path.name, "p": str(path)}
    try:
        con.execute(insert.replace("{options}", options), params)
        return 0, None
    except duckdb.Error:
        pass  # malformed somewhere: the careful read below says where
    with path.open("rb") as f:
        problem, physical_lines = utf8_problem(f, str(path), layout.columns)
    if problem:
        # not chained: DuckDB's message quotes the whole record, which may name a P unit
        raise SireneFileError(problem) from None
    # DuckDB appends to an existing rejects table: start each file from empty ones
    con.execute("drop table if exists _rejets_csv")
    con.execute("drop table if exists _rejets_scan")
    con.execute(f"delete from {table}")
    # without the sniffer, which gives up on a file with an unclosed quote (the rejects reader
    # then reports it); only safe once the bytes are known to be UTF-8 (DuckDB internal error)
    with_rejects = (
        f"{options}, auto_detect = false, store_rejects = true, rejects_table = '_rejets_csv', "
        "rejects_scan = '_rejets_scan'"
    )
    try:
        con.execute(insert.replace("{options}", with_rejects), params)
    except duckdb.Error as exc:
        raise SireneFileError(f"{path} : lecture CSV impossible — {error_summary(exc)}") from None
    # One row per malformed record, even when DuckDB reports several errors on it. A record can
    # span several physical lines (an unclosed quote swallows the lines after it): count those
    # lines, so that the rejection rate and the message say how much of the file was lost.
    con.execute(
        "create or replace temp table _rejets_lignes as select line, "
        "arg_min(column_name, column_idx) as colonne, "
        "arg_min(error_type || ': ' || coalesce(error_message, ''), column_idx) as motif, "
        "count(*) as erreurs, any_value(csv_line) as contenu, "
        "length(rtrim(any_value(csv_line), chr(10))) "
        "- length(replace(rtrim(any_value(csv_line), chr(10)), chr(10), '')) + 1 "
        "as lignes from _rejets_csv group by line"
    )
    con.execute(
        f"insert into {table}_rejets "
        "select $mois, $src, $kind, line, colonne, motif "
        "|| case when erreurs > 1 then ' (+' || (erreurs - 1) || ' autres erreurs)' else '' end "
        "|| case when lignes > 1 then ' ; l''enregistrement couvre ' || lignes "
        "|| ' lignes physiques (guillemet non fermé ?)' else '' end, contenu "
        "from _rejets_lignes order by line",
        {"mois": mois, "src": path.name, "kind": kind},
    )
    (n,) = con.execute("select coalesce(sum(lignes), 0) from _rejets_lignes").fetchone()  # type: ignore[misc]
    return int(n), max(physical_lines - 1, 0)


def error_summary(exc: BaseException) -> str:
    """The first line of a reader's error: the rest quotes records, which may name a P unit."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def utf8_problem(stream: BinaryIO, source: str, header: tuple[str, ...]) -> tuple[str | None, int]:
    """Where the first byte that is not UTF-8 sits, as a message naming line and column.

    Also returns the number of physical lines read (all of them when the file is clean), which
    the caller needs anyway to judge the share of malformed lines. Chunks are cut at line ends
    so that a line is never split; the column is found by parsing the start of the faulty line
    as CSV.
    """
    lines_before = 0
    carry = b""
    while True:
        block = stream.read(16 << 20)
        chunk = carry + block
        if block:
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                carry = chunk
                continue
            chunk, carry = chunk[:cut], chunk[cut:]
        if not chunk:
            return None, lines_before
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            start = chunk.rfind(b"\n", 0, exc.start) + 1
            line = lines_before + chunk.count(b"\n", 0, exc.start) + 1
            prefix = chunk[start : exc.start].decode("utf-8", errors="replace")
            field = len(next(csv.reader([prefix + "x"]), [""])) - 1 if prefix else 0
            name = header[field] if field < len(header) else "?"
            return (
                f"{source}, ligne {line}, colonne {field + 1} ({name}) : octet "
                f"0x{chunk[exc.start]:02X} invalide en UTF-8 — le fichier n'est pas encodé en "
                "UTF-8 (Windows-1252 ou Latin-1 ?) ; INSEE publie en UTF-8, réenregistrez-le ou "
                "téléchargez-le à nouveau"
            ), line
        lines_before += chunk.count(b"\n") + (not chunk.endswith(b"\n"))
        if not block:
            return None, lines_before


def _ingest_zip(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    path: Path,
    mois: str,
    layout: Layout,
    where: str,
    block_size: int,
) -> tuple[int, int]:
    bad_rows: list[tuple[int, int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.expected_columns, row.actual_columns, row.text))
        return "skip"

    keep = [c for c in RAW_COLUMNS[kind] if c in layout.columns]
    read = 0
    try:
        with zipfile.ZipFile(path) as zf:
            member = _zip_member(zf, path)
            with zf.open(member) as raw:
                reader = pacsv.open_csv(
                    raw,
                    read_options=pacsv.ReadOptions(block_size=block_size, encoding="utf8"),
                    # quoted newlines are valid CSV: without this, Arrow cuts blocks at any
                    # newline and a record spanning a block boundary breaks the read
                    parse_options=pacsv.ParseOptions(
                        delimiter=",",
                        quote_char='"',
                        newlines_in_values=True,
                        invalid_row_handler=on_invalid,
                    ),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=keep,
                        column_types={c: pa.string() for c in keep},
                        strings_can_be_null=True,
                        null_values=[""],
                        quoted_strings_can_be_null=False,
                    ),
                )
                select = _select_list(kind, layout)
                for batch in reader:
                    read += batch.num_rows
                    b = pa.Table.from_batches([batch])  # noqa: F841 - read by DuckDB by name
                    con.execute(
                        f"insert into {table} select $mois, {select}, $src from b where {where}",
                        {"mois": mois, "src": path.name},
                    )
    except zipfile.BadZipFile as exc:
        raise SireneFileError(f"{path} : archive zip corrompue ({exc})") from exc
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        with zipfile.ZipFile(path) as zf, zf.open(member) as raw:
            problem, _ = utf8_problem(raw, f"{path}:{member.filename}", layout.columns)
        raise SireneFileError(
            problem or f"{path} ({member.filename}) : lecture impossible — {error_summary(exc)}"
        ) from None
    physical = 0
    if bad_rows:
        first_lines = {_first_line(text) for _, _, text in bad_rows}
        lines = _locate_lines(path, first_lines)
        for expected, actual, text in bad_rows:
            spans = _physical_lines(text)
            physical += spans
            motif = f"nombre de colonnes : {actual} au lieu de {expected}"
            column = None
            if spans > 1:
                # the last field read is the one whose opening quote never closed
                column = layout.columns[actual - 1] if 0 < actual <= len(layout.columns) else None
                motif += (
                    f" ; l'enregistrement couvre {spans} lignes physiques (guillemet non fermé ?)"
                )
            con.execute(
                f"insert into {table}_rejets values ($mois, $src, $kind, $ligne, $colonne, "
                "$motif, $contenu)",
                {
                    "mois": mois,
                    "src": path.name,
                    "kind": kind,
                    "ligne": lines.get(_first_line(text)),
                    "colonne": column,
                    "motif": motif,
                    "contenu": text[:2000],
                },
            )
    return physical, read + physical


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip("\r")


def _physical_lines(text: str) -> int:
    """Lines of the file a malformed record took (an unclosed quote swallows the next ones)."""
    return text.rstrip("\r\n").count("\n") + 1


def _locate_lines(path: Path, texts: set[str]) -> dict[str, int]:
    """Physical line numbers of malformed rows; a second pass, run only when some exist."""
    found: dict[str, int] = {}
    with zipfile.ZipFile(path) as zf, zf.open(_zip_member(zf, path)) as raw:
        for number, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8", newline=""), 1):
            text = line.rstrip("\r\n")
            if text in texts and text not in found:
                found[text] = number
                if len(found) == len(texts):
                    break
    return found


def current_layout(kind: str) -> Layout:
    return CURRENT[kind]
