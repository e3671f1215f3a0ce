"""SIRENE stock files into the raw layer: CSV, zipped CSV (as INSEE ships it) or Parquet.

Reading is the expensive part of a refresh (42 M establishment rows nationally, parsing-bound on
two cores), so the files are read once, only the columns the observatory uses are kept, and
establishments are filtered to the territory while reading. A CSV, or a zip's CSV member
streamed through `zipfile`, is read in record-aligned chunks parsed by Polars; INSEE's Parquet
a slice of rows at a time. The cleaning pulls the batches, so nothing is read ahead of it.

No record is lost silently: the records of a CSV file are counted apart from the parser
(`sirene_records`), and the rows the parser read must add up to that count. A damaged file is
recovered record by record: each damaged record lands in `raw.sirene_rejets_lecture` with its
raw text, lines and reason, the others are read; read + rejected = records in the file, or the
month is refused.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import logging
import os
import re
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, BinaryIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

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
class ReadOutcome:
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


def _insee_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """Typed Parquet value -> the text INSEE writes in its CSV files.

    INSEE's Parquet stores dates as DATE, timestamps, years and counts as numbers and the head
    office flag as BOOLEAN; the rules read INSEE's text, so that one set of cleaning rules
    serves every format.
    """
    c = pl.col(name)
    if dtype == pl.String:
        return c
    if dtype == pl.Date:
        return c.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        return c.dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dtype == pl.Boolean:
        return pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        f = c.cast(pl.Float64)
        return (
            pl.when(f == f.floor())
            .then(f.cast(pl.Int64).cast(pl.String))
            .otherwise(f.cast(pl.String))
        )
    return c.cast(pl.String)


def raw_schema(kind: str) -> dict[str, pl.DataType]:
    """Columns of a raw scan: INSEE's names as text, the month, the file and the record number."""
    return {
        "mois": pl.String(),
        **{c: pl.String() for c in RAW_COLUMNS[kind]},
        "fichier_source": pl.String(),
        RECORD: pl.Int64(),
    }


# Column of a raw scan holding the record's number in the file (1 for the first data record):
# it says where a rejected row came from, and "first copy" of a duplicated identifier.
RECORD = "_enregistrement"


# Bytes read from the file at a time: the counter sees them, then Polars parses the whole
# records among them. A few MB keep the counter's numpy temporaries in cache (16 MB measured
# 20 % faster than 64 MB).
READ_BLOCK = 16 << 20
# Rows handed to the cleaning at a time: memory is bounded by a batch, whatever the file.
BATCH_ROWS = 250_000


@dataclass
class StockScan:
    """One SIRENE file as batches of INSEE text, every record accounted for once consumed.

    `batches()` yields the territory's records (all of them for `france`), pulled one batch
    at a time: nothing is read ahead of what the cleaning consumes. It counts the records the
    parser produced, before the territory filter, in `parsed`. `outcome()` then says whether
    the read is whole: parsed + damaged = records of the file, counted apart from the parser.
    When it is not, `recovered()` gives the scan that reads the file record by record instead,
    its damaged records in `damaged`.
    """

    kind: str
    path: Path
    mois: str
    layout: Layout
    fmt: str
    keep: pl.Expr | None
    records: int | None = None  # counted apart from the parser (None: counted while streaming)
    physical_lines: int | None = None
    parsed: int = 0
    damaged: list[Damaged] = field(default_factory=list)
    recovery: bool = False
    why: str | None = None  # why the strict read cannot be trusted (None: it can)
    block_size: int = READ_BLOCK  # bytes read at a time
    counter: RecordCounter | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.source = self.source or str(self.path)

    on_batch: Callable[[int], None] | None = None  # told the records of each batch parsed
    # bytes of CSV to read (the file, or the zip member uncompressed) and read so far: the
    # records still to come are estimated from them while the count is not known
    size: int | None = None
    consumed: int = 0

    def expected_records(self) -> int | None:
        """The file's records: counted, or estimated from the bytes read so far."""
        if self.records is not None:
            return self.records
        if self.size and self.consumed and self.parsed:
            return max(self.parsed, round(self.parsed * self.size / self.consumed))
        return None

    def batches(self, rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
        """The territory's records, about `rows` at a time, as INSEE's text plus the month,
        the file and the record number (`raw_schema`). Consume it once."""
        if self.recovery:
            raw = self._recover_batches()
        elif self.fmt == "parquet":
            raw = self._parquet_batches(rows)
        else:
            raw = self._chunk_batches(rows)
        for df in raw:
            yield self._finish(df)

    def _finish(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Project INSEE's columns (NULL where an older layout lacks one), count, then filter."""
        present = set(raw.columns)
        df = raw.select(
            pl.lit(self.mois).alias("mois"),
            *(
                pl.col(c) if c in present else pl.lit(None, dtype=pl.String).alias(c)
                for c in RAW_COLUMNS[self.kind]
            ),
            pl.lit(self.path.name).alias("fichier_source"),
            pl.col(RECORD).cast(pl.Int64),
        )
        self.parsed += df.height
        if self.on_batch is not None:
            self.on_batch(df.height)
        return df if self.keep is None else df.filter(self.keep)

    def _chunk_batches(self, rows: int) -> Iterator[pl.DataFrame]:
        """The CSV (or a zip's CSV member) in record-aligned chunks, each parsed by Polars.

        Pulled by the cleaning, nothing is parsed ahead: Polars' own streaming reader ran ahead
        of the cleaning and held gigabytes of parsed rows (2.5 GB on 1 GB of CSV, measured).
        The chunks themselves are read and counted in a thread (`_chunks`), at most two ahead.
        """
        columns = list(self.layout.columns)
        wanted = sorted((columns.index(c), c) for c in RAW_COLUMNS[self.kind] if c in columns)
        number = 0
        pending: list[pl.DataFrame] = []
        pending_rows = 0
        for chunk, consumed in _prefetched(self._chunks()):
            self.consumed = consumed
            df = pl.read_csv(
                chunk,
                has_header=False,
                separator=",",
                quote_char='"',
                columns=[i for i, _ in wanted],
                new_columns=[c for _, c in wanted],
                infer_schema=False,
                encoding="utf8",
                raise_if_empty=False,
            )
            df = df.with_columns(
                pl.int_range(number + 1, number + 1 + df.height, dtype=pl.Int64).alias(RECORD)
            )
            number += df.height
            pending.append(df)
            pending_rows += df.height
            if pending_rows >= rows:
                yield pl.concat(pending) if len(pending) > 1 else pending[0]
                pending, pending_rows = [], 0
        if pending:
            yield pl.concat(pending) if len(pending) > 1 else pending[0]

    def _chunks(self) -> Iterator[tuple[bytes, int]]:
        """Record-aligned pieces of the file's data, with the bytes read up to their end.

        The counter sees every byte first and says where the last whole record read ends, so
        no piece cuts a record (quoted line breaks included). A damaged file stops the read at
        once (`RecordsFault`); the caller reads it again record by record.
        """
        self.counter = counter = RecordCounter(len(self.layout.columns))
        stream, _, closing = self._open_stream()
        try:
            header = stream.readline()
            counter.feed(header)
            base = len(header)  # offset in the stream of data[0]
            data = b""
            while block := stream.read(self.block_size):
                counter.feed(block)
                if counter.fault is not None:
                    raise RecordsFault(counter.fault)
                data += block
                cut = counter.last_record_end - base
                if cut <= 0:  # no record ends in what was read yet
                    continue
                chunk, data = data[:cut], data[cut:]
                base += cut
                if chunk.strip(b"\r\n"):
                    yield chunk, base
            if data.strip(b"\r\n"):  # the end: a last record may lack its line break
                yield data, base + len(data)
        finally:
            for c in closing:
                c.close()

    def _parquet_batches(self, rows: int) -> Iterator[pl.DataFrame]:
        """INSEE's typed Parquet, a row group's slice at a time, turned into INSEE's text."""
        file = pq.ParquetFile(self.path)
        schema = pl.from_arrow(file.schema_arrow.empty_table()).schema  # type: ignore[union-attr]
        names = [c for c in RAW_COLUMNS[self.kind] if c in schema]
        number = 0
        for batch in file.iter_batches(batch_size=rows, columns=names):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            yield df.select(
                *(_insee_text(c, schema[c]).alias(c) for c in names),
                pl.int_range(number + 1, number + 1 + df.height, dtype=pl.Int64).alias(RECORD),
            )
            number += df.height

    def outcome(self) -> ReadOutcome:
        """How the file was read, once `batches()` was consumed; raises if a record is missing."""
        if self.recovery:
            assert self.counter is not None
            count = self.counter.finish()
            return ReadOutcome(
                self.parsed + len(self.damaged),
                self.parsed,
                len(self.damaged),
                count.physical_lines,
                recovered=True,
                notes=(f"fichier endommagé ({self.why}) : relu enregistrement par enregistrement",),
            )
        if self.counter is not None:  # a zip, counted on the way to the parser
            count = self.counter.finish()
            self.records, self.physical_lines = count.records, count.physical_lines
            if count.fault is not None:
                self.why = f"ligne {count.fault_line} : {count.fault}"
        if self.why is None and self.parsed != self.records:
            self.why = f"{self.records} enregistrements comptés, {self.parsed} lus par Polars"
        if self.why is not None:
            raise _Untrusted(self.why)
        return ReadOutcome(self.records or 0, self.parsed, 0, self.physical_lines)

    def recovered(self, why: str) -> StockScan:
        """The same file, read record by record (its damaged records set aside)."""
        scan = StockScan(
            self.kind, self.path, self.mois, self.layout, self.fmt, self.keep, recovery=True,
            why=why, block_size=self.block_size,
        )  # fmt: skip
        scan.counter = RecordCounter(len(self.layout.columns))
        return scan

    def _open_stream(self) -> tuple[BinaryIO, str, list]:
        """The file's bytes (a zip's CSV member, decompressed), its name, what to close."""
        if self.fmt == "zip":
            zf = zipfile.ZipFile(self.path)
            member = _zip_member(zf, self.path)
            raw = zf.open(member)
            self.size = member.file_size
            return raw, f"{self.path}:{member.filename}", [raw, zf]
        f = self.path.open("rb")
        self.size = os.fstat(f.fileno()).st_size
        return f, str(self.path), [f]

    def _recover_batches(self) -> Iterator[pl.DataFrame]:
        """Good records parsed again by pyarrow, in batches; damaged ones kept aside."""
        assert self.counter is not None
        stream, source, closing = self._open_stream()
        try:
            lines = io.BufferedReader(CountingReader(stream, self.counter), buffer_size=1 << 20)
            tally = RecoveryTally()
            header = (",".join(self.layout.columns) + "\n").encode()
            keep = [c for c in RAW_COLUMNS[self.kind] if c in self.layout.columns]
            good: list[Record] = []
            numbers: list[int] = []
            size = 0
            for ordinal, item in enumerate(recover(lines, source, self.layout.columns, tally), 1):
                if isinstance(item, Record):
                    good.append(item)
                    numbers.append(ordinal)
                    size += len(item.raw)
                    if size >= RECOVERY_BATCH_BYTES:
                        yield _numbered(read_records(good, header, keep, source), numbers)
                        good, numbers, size = [], [], 0
                else:
                    self.damaged.append(item)
            if good:
                yield _numbered(read_records(good, header, keep, source), numbers)
            count = self.counter.finish()
            if count.physical_lines != tally.physical_lines:
                raise RecordsError(
                    f"{source} : {count.physical_lines} lignes dans le fichier, "
                    f"{tally.physical_lines} parcourues par la relecture — mois refusé"
                )
        finally:
            for c in closing:
                c.close()


def _prefetched(items: Iterator[tuple[bytes, int]], depth: int = 2) -> Iterator[tuple[bytes, int]]:
    """`items` produced in a thread, at most `depth` ahead of the consumer.

    Reading a block and counting its records (numpy, which releases the GIL) then overlap with
    parsing and cleaning the previous one. An error of the producer is raised in the consumer;
    a consumer that stops early stops the producer.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(("error", exc))
        finally:
            if stop.is_set() and hasattr(items, "close"):
                items.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=produce, name="lecture-sirene", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get_nowait()
            thread.join(timeout=0.1)


class _Untrusted(Exception):
    """The strict read of a file cannot be trusted; it must be recovered record by record."""


def _numbered(table: pa.Table, numbers: list[int]) -> pl.DataFrame:
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df.with_columns(pl.Series(RECORD, numbers, dtype=pl.Int64))


def territory_filter(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    communes_table: str | None,
    sirens: pl.Series | None = None,
) -> pl.Expr | None:
    """Keep the territory's establishments, those of its former communes, and unknown codes.

    A former commune code (merged since; closed establishments keep it) is attributed to
    today's commune by the cleaning rules, so it is kept when that commune is the territory's.
    A code unknown to every list cannot be placed: it is kept so that cleaning counts it in the
    drift table (it then belongs to no territory) rather than losing it silently at reading.
    Legal units are those of the territory's establishments (their head office may be
    elsewhere): `sirens`. None keeps everything (`france`).
    """
    if communes_table is None:
        return None
    if kind == "unites_legales":
        found = sirens if sirens is not None else pl.Series([], dtype=pl.String)
        return pl.col("siren").is_in(found.implode())

    def col(sql: str) -> list[str]:
        return [r[0] for r in con.execute(sql).fetchall()]

    inside = col(
        f"select code_commune from {communes_table} union "
        "select code_commune_ancienne from ref.cog_communes_anciennes "
        f"where code_commune_actuelle in (select code_commune from {communes_table})"
    )
    known = col(
        "select code_commune from ref.communes union "
        "select code_commune_ancienne from ref.cog_communes_anciennes"
    )
    code = pl.col("codeCommuneEtablissement")
    return code.is_in(inside) | ~code.is_in(known)


def open_stock(
    kind: str,
    path: Path,
    mois: str,
    *,
    keep: pl.Expr | None = None,
    block_size: int = READ_BLOCK,
) -> StockScan:
    """One stock file, checked and its layout known, ready to be read in batches.

    A CSV or a zip's CSV member is counted on its way to the parser (`_chunk_batches`), in
    the same pass; Parquet has its row count in its footer. A file the count finds damaged is
    read record by record from the start.
    """
    path = Path(path)
    check_source(path)
    layout = detect(kind, path)
    if not layout.current:
        log.warning("%s : disposition ancienne reconnue (%s)", path, layout.name)
    fmt = file_format(path)
    scan = StockScan(kind, path, mois, layout, fmt, keep, block_size=block_size)
    if fmt == "parquet":
        scan.records = pq.ParquetFile(path).metadata.num_rows
    return scan


def consume(scan: StockScan, run: Callable[[StockScan], None]) -> tuple[StockScan, ReadOutcome]:
    """Run `run(scan)` (one pass over `scan.batches()`), then account for every record.

    When the strict read cannot be trusted (the count found damage, the parser read another
    number of records, or it failed on a damaged record), the file is read again record by
    record and `run` is called on that scan instead: what the first run wrote must be
    overwritten by the second.
    """

    try:
        try:
            run(scan)
            return scan, scan.outcome()
        except _Untrusted as exc:
            why = str(exc)
        except (
            pl.exceptions.PolarsError,
            pa.ArrowInvalid,
            UnicodeDecodeError,
            RecordsFault,
        ) as exc:
            if scan.recovery:
                raise SireneFileError(f"{scan.source} : {error_summary(exc)}") from None
            counter = scan.counter
            why = (
                f"ligne {counter.fault_line} : {counter.fault}"
                if counter is not None and counter.fault is not None
                else f"lecture stricte impossible ({error_summary(exc)})"
            )
        if scan.recovery:
            raise SireneFileError(f"{scan.source} : {why}")
        again = scan.recovered(why)
        run(again)
        return again, again.outcome()
    except RecordsError as exc:
        raise SireneFileError(str(exc)) from None
    except zipfile.BadZipFile as exc:
        raise SireneFileError(f"{scan.path} : archive zip corrompue ({exc})") from exc


def record_read(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    mois: str,
    path: Path,
    scan: StockScan,
    read: ReadOutcome,
    rows_kept: int,
) -> None:
    """Replace the month's read log and damaged records of one file (inside the swap).

    The `lignes_*` columns came first and keep their meaning for older readers: data lines of
    the file, lines of the damaged records (one each), rows kept for the territory. The
    `enregistrements_*` columns are what the gate and the invariant speak of.
    """
    _ensure_log_tables(con)
    params = {"mois": mois, "kind": kind}
    con.execute(
        "delete from raw.sirene_rejets_lecture where mois = $mois and type_fichier = $kind", params
    )
    if scan.damaged:
        bad = scan.damaged
        r = pa.table(  # noqa: F841 - read by DuckDB by name
            {
                "ligne": [d.line for d in bad],
                "derniere_ligne": [d.last_line for d in bad],
                "colonne": [
                    scan.layout.columns[d.field] if d.field is not None else None for d in bad
                ],
                "motif": [
                    d.reason
                    + (
                        f" ; contenu tronqué à {MAX_CONTENT_CHARS} caractères"
                        if d.truncated
                        else ""
                    )
                    for d in bad
                ],
                "contenu": [d.text for d in bad],
                "contenu_tronque": [d.truncated for d in bad],
            }
        )
        con.execute(
            "insert into raw.sirene_rejets_lecture (mois, fichier, type_fichier, ligne, colonne, "
            "motif, contenu, derniere_ligne, contenu_tronque) select $mois, $src, $kind, ligne, "
            "colonne, motif, contenu, derniere_ligne, contenu_tronque from r order by ligne",
            {**params, "src": path.name},
        )
    con.execute(
        "delete from raw.sirene_lectures where mois = $mois and type_fichier = $kind", params
    )
    names = ", ".join(c for c, _ in READS_COLUMNS)
    con.execute(
        f"insert into raw.sirene_lectures ({names}) values ($mois, $kind, $src, $layout, "
        "$data_lines, $rejected, $kept, $records, $read, $rejected, $physical)",
        {
            **params,
            "src": str(path),
            "layout": scan.layout.name,
            "data_lines": read.records if read.physical_lines is None else read.physical_lines - 1,
            "kept": rows_kept,
            "records": read.records,
            "read": read.records_read,
            "rejected": read.rejected,
            "physical": read.physical_lines,
        },
    )


def records_fr(n: int, adjective: str) -> str:
    """« 1 enregistrement mal formé », « 2 enregistrements mal formés »."""
    plural = "s" if n > 1 else ""
    return f"{n} enregistrement{plural} {adjective}{plural}"


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


RECOVERY_BATCH_BYTES = 16 << 20


def current_layout(kind: str) -> Layout:
    return CURRENT[kind]
