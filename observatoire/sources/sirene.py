"""SIRENE stock files into the raw layer: CSV, zipped CSV (as INSEE ships it) or Parquet.

Reading is the expensive part of a refresh (42 M establishment rows nationally, parsing-bound on
two cores), so the files are read once, only the columns the observatory uses are kept, and
establishments are filtered to the territory while reading. Plain CSV and Parquet are read by
DuckDB itself; DuckDB cannot open a zip offline, so a zip is streamed through `zipfile` and
pyarrow's CSV reader into DuckDB (the fastest offline route measured in shared/stack-notes.md).

No record is lost silently: the records of a CSV file are counted apart from the parser
(`sirene_records`), and the rows the parser read must add up to that count. A damaged file is
recovered record by record: each damaged record lands in `raw.sirene_rejets_lecture` with its
raw text, lines and reason, the others are read; read + rejected = records in the file, or the
month is refused.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from observatoire.core import warehouse
from observatoire.core.errors import RejectRateError
from observatoire.sources.layouts import CURRENT, Layout, LayoutError, detect_layout
from observatoire.sources.sirene_records import (
    MAX_CONTENT_CHARS,
    CountingReader,
    Damaged,
    Record,
    RecordCounter,
    RecordsError,
    RecordsFault,
    RecoveryTally,
    count_records,
    read_records,
    recover,
)

log = logging.getLogger("observatoire.sources.sirene")

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
    rows: int  # rows kept for the territory
    malformed: int  # damaged records, quarantined in raw.sirene_rejets_lecture
    records: int | None = None  # records in the file, counted apart from the parser
    records_read: int | None = None  # records the parser read (before the territory filter)
    physical_lines: int | None = None  # lines of the file, header included (text formats)
    recovered: bool = False  # read record by record, the file being damaged
    notes: list[str] = field(default_factory=list)

    @property
    def malformed_rate(self) -> float:
        return self.malformed / self.records if self.malformed and self.records else 0.0


@dataclass(frozen=True)
class _Read:
    """How a file was read; records_read + rejected must equal records."""

    records: int
    records_read: int
    rejected: int
    physical_lines: int | None
    recovered: bool = False
    notes: tuple[str, ...] = ()


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


# Quarantine of damaged records, one row per record: its first and last physical lines, the
# column at fault when known, the reason and its raw text (cut only beyond
# sirene_records.MAX_CONTENT_CHARS, and then `contenu_tronque` says so).
REJECTS_COLUMNS = (
    ("mois", "varchar"),
    ("fichier", "varchar"),
    ("type_fichier", "varchar"),
    ("ligne", "bigint"),
    ("colonne", "varchar"),
    ("motif", "varchar"),
    ("contenu", "varchar"),
    ("derniere_ligne", "bigint"),
    ("contenu_tronque", "boolean"),
)
# Read log, one row per month and file. The `lignes_*` columns came first and keep their
# meaning for older readers: data lines of the file (physical lines after the header), lines
# of the damaged records (one each: a damaged record is one line), rows kept for the territory.
# The `enregistrements_*` columns are what the gate and the invariant speak of.
READS_COLUMNS = (
    ("mois", "varchar"),
    ("type_fichier", "varchar"),
    ("fichier", "varchar"),
    ("disposition", "varchar"),
    ("lignes_fichier", "bigint"),
    ("lignes_mal_formees", "bigint"),
    ("lignes_retenues", "bigint"),
    ("enregistrements_fichier", "bigint"),
    ("enregistrements_lus", "bigint"),
    ("enregistrements_rejetes", "bigint"),
    ("lignes_physiques", "bigint"),
)


def _ensure_log_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the read log and quarantine, or add the columns an older warehouse lacks."""
    for table, columns in (("sirene_rejets_lecture", REJECTS_COLUMNS),
                           ("sirene_lectures", READS_COLUMNS)):  # fmt: skip
        con.execute(
            f"create table if not exists raw.{table} ({', '.join(f'{c} {t}' for c, t in columns)})"
        )
        for c, t in columns:
            con.execute(f"alter table raw.{table} add column if not exists {c} {t}")


def _create_build(con: duckdb.DuckDBPyConnection, kind: str, mois: str) -> str:
    """An empty build table for the month's raw rows, and one for its damaged records."""
    build = warehouse.start_build(con, "raw", RAW_TABLES[kind], mois)
    cols = ", ".join(f'"{c}" varchar' for c in RAW_COLUMNS[kind])
    con.execute(f"create table {build} (mois varchar, {cols}, fichier_source varchar)")
    _ensure_log_tables(con)
    con.execute(f"drop table if exists {build}_rejets")
    con.execute(
        f"create table {build}_rejets ({', '.join(f'{c} {t}' for c, t in REJECTS_COLUMNS)})"
    )
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

    The rows are written to a build table, then swapped in with the month's damaged records
    and read log in one short transaction: a failure leaves the previous month untouched.
    Damaged records are judged against the records of the whole file (they cannot be placed in
    a territory): above `max_malformed_rate`, the month is refused.
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
        try:
            if fmt == "csv":
                read = _ingest_csv(con, kind, build, path, mois, layout, where)
            elif fmt == "parquet":
                read = _ingest_parquet(con, kind, build, path, mois, layout, where)
            else:
                read = _ingest_zip(con, kind, build, path, mois, layout, where, block_size)
        except RecordsError as exc:
            raise SireneFileError(str(exc)) from None
        if read.records_read + read.rejected != read.records:
            # never expected: the recovery checks each batch; a last guard before the swap
            raise SireneFileError(
                f"{path} : {read.records} enregistrements dans le fichier, {read.records_read} "
                f"lus et {read.rejected} en quarantaine — le compte ne tombe pas juste, mois "
                "refusé"
            )
        result = IngestResult(
            kind,
            path,
            layout.name,
            0,
            read.rejected,
            read.records,
            read.records_read,
            read.physical_lines,
            read.recovered,
            list(read.notes),
        )
        if max_malformed_rate is not None and result.malformed_rate > max_malformed_rate:
            examples = con.execute(
                f"select ligne, colonne, motif from {build}_rejets order by ligne limit 5"
            ).fetchall()
            detail = " ; ".join(
                f"ligne {li}" + (f", colonne {co}" if co else "") + f" : {mo}"
                for li, co, mo in examples
            )
            raise RejectRateError(
                f"{path} : {_records_fr(read.rejected, 'mal formé')} sur {read.records} "
                f"({result.malformed_rate:.1%}, seuil {max_malformed_rate:.1%}) — {detail} — "
                "mois précédent conservé"
            )
    except BaseException:
        con.execute(f"drop table if exists {build}")
        con.execute(f"drop table if exists {build}_rejets")
        raise
    for note in read.notes:
        log.warning("%s : %s", path, note)

    def replace_rejects() -> None:
        con.execute(
            "delete from raw.sirene_rejets_lecture where mois = $mois and type_fichier = $kind",
            {"mois": mois, "kind": kind},
        )
        names = ", ".join(c for c, _ in REJECTS_COLUMNS)
        con.execute(
            f"insert into raw.sirene_rejets_lecture ({names}) select {names} from {build}_rejets"
        )
        con.execute(
            "delete from raw.sirene_lectures where mois = $mois and type_fichier = $kind",
            {"mois": mois, "kind": kind},
        )
        month = warehouse.month_table("raw", RAW_TABLES[kind], mois)
        names = ", ".join(c for c, _ in READS_COLUMNS)
        con.execute(
            f"insert into raw.sirene_lectures ({names}) select $mois, $kind, $src, $layout, "
            f"$data_lines, $rejected, (select count(*) from {month}), $records, $read, "
            "$rejected, $physical",
            {
                "mois": mois,
                "kind": kind,
                "src": str(path),
                "layout": layout.name,
                "data_lines": (
                    read.records if read.physical_lines is None else read.physical_lines - 1
                ),
                "records": read.records,
                "read": read.records_read,
                "rejected": read.rejected,
                "physical": read.physical_lines,
            },
        )

    result.rows = warehouse.swap_month(con, "raw", RAW_TABLES[kind], mois, also=replace_rejects)
    con.execute(f"drop table if exists {build}_rejets")
    return result


def _records_fr(n: int, adjective: str) -> str:
    """« 1 enregistrement mal formé », « 2 enregistrements mal formés »."""
    plural = "s" if n > 1 else ""
    return f"{n} enregistrement{plural} {adjective}{plural}"


def _ingest_parquet(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    path: Path,
    mois: str,
    layout: Layout,
    where: str,
) -> _Read:
    """Parquet has no record boundaries to get wrong: its row count is in its footer."""
    records = pq.ParquetFile(path).metadata.num_rows
    types = dict(
        con.execute(
            "select column_name, column_type from (describe select * from read_parquet($p))",
            {"p": str(path)},
        ).fetchall()
    )
    con.execute(
        f"insert into {table} select $mois, {_select_list(kind, layout, types)}, "
        f"$src from read_parquet($p) where {where}",
        {"mois": mois, "src": path.name, "p": str(path)},
    )
    return _Read(records, records, 0, None)


def _scan_rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> int | None:
    """Run an insert from `read_csv` and return how many rows the CSV scan produced.

    The territory filter keeps a fraction of the rows, so the insert's own count says nothing
    about the file; a second `count(*)` scan would double the read. DuckDB's query profile
    holds the scan's output cardinality for free. None when the profile has no single CSV scan
    (another DuckDB version): the caller then recovers the file record by record, which is
    slow but right, and the tests that expect a clean file to take the fast path fail.
    """
    con.execute("set enable_profiling = 'no_output'")
    try:
        con.execute(sql, params)
        profile = json.loads(con.get_profiling_information(format="json"))
    finally:
        con.execute("reset enable_profiling")
    scans: list[int] = []
    stack = [profile]
    while stack:
        node = stack.pop()
        if node.get("operator_name") == "READ_CSV":
            scans.append(int(node.get("operator_cardinality", -1)))
        stack.extend(node.get("children", []))
    return scans[0] if len(scans) == 1 and scans[0] >= 0 else None


def _ingest_csv(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    path: Path,
    mois: str,
    layout: Layout,
    where: str,
) -> _Read:
    """Read a CSV stock into `table`, every record accounted for.

    The records are counted first (a numpy pass, a fraction of the read), then DuckDB reads
    the file strictly: INSEE's files are well formed, and then the two counts agree. When the
    count finds damage, the strict read fails, or the counts differ, the file is recovered
    record by record instead, and DuckDB's partial read is thrown away.
    """
    with path.open("rb") as f:
        count = count_records(f, len(layout.columns))
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in layout.columns) + "}"
    options = (
        f"header = true, delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
        "max_line_size = 1048576"
    )
    if count.fault is None:
        try:
            rows = _scan_rows(
                con,
                f"insert into {table} select $mois, {_select_list(kind, layout)}, $src "
                f"from read_csv($p, {options}) where {where}",
                {"mois": mois, "src": path.name, "p": str(path)},
            )
        except duckdb.Error as exc:
            why = f"lecture stricte impossible ({error_summary(exc)})"
        else:
            if rows == count.records:
                return _Read(count.records, count.records, 0, count.physical_lines)
            why = f"{count.records} enregistrements comptés, {rows} lus par DuckDB"
        con.execute(f"delete from {table}")
    else:
        why = f"ligne {count.fault_line} : {count.fault}"
    with path.open("rb") as f:
        return _recover_into(con, kind, table, f, str(path), path.name, mois, layout, where, why)


# pyarrow's « Expected 54 columns, got 55: <the record> » quotes the record on its first line
_QUOTED_RECORD = re.compile(r"(columns, got \d+)\s*:.*$")


def error_summary(exc: BaseException) -> str:
    """The first line of a reader's error, without the record it may quote.

    Readers quote the faulty record (DuckDB on the following lines, pyarrow after « got N: »),
    and that record may name a unit with partial diffusion (`P`): it must reach neither the
    console, nor the logs, nor etat.json.
    """
    text = str(exc).strip().splitlines()
    return _QUOTED_RECORD.sub(r"\1", text[0]) if text else type(exc).__name__


def _ingest_zip(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    path: Path,
    mois: str,
    layout: Layout,
    where: str,
    block_size: int,
) -> _Read:
    """Stream a zipped CSV through pyarrow, counting its records on the same decompressed bytes.

    pyarrow reads through a `CountingReader`, so the count costs no second decompression. A
    damaged file stops the read at once (the counter raises through pyarrow); it is then
    decompressed again and recovered record by record.
    """
    keep = [c for c in RAW_COLUMNS[kind] if c in layout.columns]
    counter = RecordCounter(len(layout.columns))
    rows = 0
    why: str | None = None
    try:
        with zipfile.ZipFile(path) as zf:
            member = _zip_member(zf, path)
            source = f"{path}:{member.filename}"
            try:
                with zf.open(member) as raw:
                    counting = CountingReader(raw, counter, stop_on_fault=True)
                    reader = pacsv.open_csv(
                        counting,
                        read_options=pacsv.ReadOptions(block_size=block_size, encoding="utf8"),
                        # quoted newlines are valid CSV: without this, Arrow cuts blocks at any
                        # newline and a record spanning a block boundary breaks the read
                        parse_options=pacsv.ParseOptions(
                            delimiter=",", quote_char='"', newlines_in_values=True
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
                        rows += batch.num_rows
                        b = pa.Table.from_batches([batch])  # noqa: F841 - read by DuckDB by name
                        con.execute(
                            f"insert into {table} select $mois, {select}, $src from b "
                            f"where {where}",
                            {"mois": mois, "src": path.name},
                        )
                    counting.drain()
                count = counter.finish()
                if count.fault is not None:
                    why = f"ligne {count.fault_line} : {count.fault}"
                elif rows != count.records:
                    why = f"{count.records} enregistrements comptés, {rows} lus par Arrow"
                else:
                    return _Read(count.records, rows, 0, count.physical_lines)
            except (pa.ArrowInvalid, UnicodeDecodeError, RecordsFault) as exc:
                why = (
                    f"ligne {counter.fault_line} : {counter.fault}"
                    if counter.fault is not None
                    else f"lecture stricte impossible ({error_summary(exc)})"
                )
            con.execute(f"delete from {table}")
            with zf.open(member) as raw:
                return _recover_into(
                    con, kind, table, raw, source, path.name, mois, layout, where, why
                )
    except zipfile.BadZipFile as exc:
        raise SireneFileError(f"{path} : archive zip corrompue ({exc})") from exc


RECOVERY_BATCH_BYTES = 16 << 20


def _recover_into(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    table: str,
    stream: BinaryIO,
    source: str,
    name: str,
    mois: str,
    layout: Layout,
    where: str,
    why: str,
) -> _Read:
    """Read a damaged file record by record: good records into `table`, damaged ones aside.

    One path for CSV and zip. Good records are buffered and parsed by pyarrow, which must read
    exactly them (`read_records` checks their line numbers); damaged ones keep their raw text.
    The stream is counted again on the way, and its physical lines must be the recovery's.
    """
    counter = RecordCounter(len(layout.columns))
    lines = io.BufferedReader(CountingReader(stream, counter), buffer_size=1 << 20)
    tally = RecoveryTally()
    header = (",".join(layout.columns) + "\n").encode()
    keep = [c for c in RAW_COLUMNS[kind] if c in layout.columns]
    select = _select_list(kind, layout)
    good: list[Record] = []
    bad: list[Damaged] = []
    size = 0
    rows = 0

    def flush_good() -> None:
        nonlocal rows, size
        if good:
            b = read_records(good, header, keep, source)  # noqa: F841 - read by DuckDB by name
            rows += b.num_rows
            con.execute(
                f"insert into {table} select $mois, {select}, $src from b where {where}",
                {"mois": mois, "src": name},
            )
        good.clear()
        size = 0

    def flush_bad() -> None:
        if bad:
            r = pa.table(  # noqa: F841 - read by DuckDB by name
                {
                    "ligne": [d.line for d in bad],
                    "derniere_ligne": [d.last_line for d in bad],
                    "colonne": [
                        layout.columns[d.field] if d.field is not None else None for d in bad
                    ],
                    "motif": [
                        d.reason
                        + (
                            f" ; contenu tronqué à {MAX_CONTENT_CHARS} caractères"
                            if d.truncated
                            else ""
                        )
                        for d in bad
                    ],  # fmt: skip
                    "contenu": [d.text for d in bad],
                    "contenu_tronque": [d.truncated for d in bad],
                }
            )
            con.execute(
                f"insert into {table}_rejets (mois, fichier, type_fichier, ligne, colonne, "
                "motif, contenu, derniere_ligne, contenu_tronque) select $mois, $src, $kind, "
                "ligne, colonne, motif, contenu, derniere_ligne, contenu_tronque from r",
                {"mois": mois, "src": name, "kind": kind},
            )
        bad.clear()

    for item in recover(lines, source, layout.columns, tally):
        if isinstance(item, Record):
            good.append(item)
            size += len(item.raw)
            if size >= RECOVERY_BATCH_BYTES:
                flush_good()
        else:
            bad.append(item)
            if len(bad) >= 10_000:
                flush_bad()
    flush_good()
    flush_bad()
    count = counter.finish()
    if count.physical_lines != tally.physical_lines:
        raise RecordsError(
            f"{source} : {count.physical_lines} lignes dans le fichier, {tally.physical_lines} "
            "parcourues par la relecture — mois refusé"
        )
    return _Read(
        tally.good + tally.damaged,
        rows,
        tally.damaged,
        tally.physical_lines,
        recovered=True,
        notes=(f"fichier endommagé ({why}) : relu enregistrement par enregistrement",),
    )


def current_layout(kind: str) -> Layout:
    return CURRENT[kind]
