"""CSV files written by people and their tools (form exports, network lists), record by record.

These files are small, hand-edited and often broken in the same ways: a stray or unclosed quote,
a row with a separator too many, a quoted cell over several lines. The csv module alone gets one
case silently wrong: an unclosed quote makes it read the following lines as the rest of a field,
and when the record happens to end with the right number of fields, the swallowed records
vanish without an error. Questionnaire waves and network lists read CSV through this one reader
so that both keep every record or say which line was set aside and why.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# --------------------------------------------------------------------------------------------
# The two dialects we write (publication, partner bundles, page downloads, review queue)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """One way we write CSV. Every file we write is in one of the two below, with one line
    ending: readers (and partners' scripts) need not guess which file came from where."""

    delimiter: str
    decimal: str
    bom: bool  # French Excel only reads UTF-8 accents when the file starts with a BOM
    line_end: str = "\n"

    @property
    def encoding(self) -> str:
        """As the Table Schema `encoding` of a data package names it."""
        return "utf-8-sig" if self.bom else "utf-8"

    def number(self, text: str) -> str:
        return text.replace(".", self.decimal) if self.decimal != "." else text

    def write(self, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, delimiter=self.delimiter, lineterminator=self.line_end)
        writer.writerow(columns)
        writer.writerows(rows)
        data = buf.getvalue().encode("utf-8")
        return codecs.BOM_UTF8 + data if self.bom else data


STANDARD = Dialect(delimiter=",", decimal=".", bom=False)  # `csv/`: for scripts
EXCEL = Dialect(delimiter=";", decimal=",", bom=True)  # `csv_excel/`: French Excel


def dialect(excel: bool) -> Dialect:
    return EXCEL if excel else STANDARD


# what the form tools and spreadsheets write: French Excel saves CSV in Windows-1252
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252")
SEPARATORS = (",", ";", "\t")


def detect_encoding(data: bytes) -> str:
    """BOM, else UTF-8 if the bytes decode strictly, else Windows-1252 (French Excel).

    Strict UTF-8 almost never accepts a cp1252 file with accented letters by accident, so the
    order is safe.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def sniff_separator(header_line: str) -> str:
    """The most frequent of `,` `;` tab outside quotes in the header line (`,` if none)."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else ","


def physical_lines(text: str) -> list[str]:
    """Lines with their terminators; only CR, LF and CRLF end a line (as in the csv module)."""
    lines = []
    start = 0
    for m in _LINE_BREAK.finditer(text):
        lines.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def _records(
    lines: list[str], separator: str
) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """(first line, last line, fields or None, csv error) for each record, blank lines skipped.

    The caller `send`s back the line after which to resume (a broken record's first line) to
    read its swallowed lines again as records of their own, or calls `next` to go on.
    """
    i = 0
    while i < len(lines):
        reader = csv.reader(
            itertools.islice(lines, i, None), delimiter=separator, quotechar='"', strict=False
        )
        consumed = 0
        restart: int | None = None
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                first = i + consumed + 1
                restart = yield first, first, None, str(exc)
                if restart is None:
                    restart = first
                break
            first, last = i + consumed + 1, i + reader.line_num
            consumed = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            restart = yield first, last, fields, None
            if restart is not None:
                break
        i = restart


def _trimmed(fields: list[str], width: int) -> list[str]:
    """Trailing empty fields beyond the header's width, as spreadsheets write them, dropped."""
    if len(fields) > width and all(not f.strip() for f in fields[width:]):
        return fields[:width]
    return fields


def _alone(line: str, separator: str) -> list[str] | None:
    try:
        return next(csv.reader([line], delimiter=separator, quotechar='"', strict=False), None)
    except csv.Error:
        return None


def _open_at_end(lines: list[str], first: int, last: int, separator: str) -> bool:
    """Whether the record is still inside quotes when the file ends."""
    try:
        for _ in csv.reader(lines[first - 1 : last], delimiter=separator, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


@dataclass
class CsvRead:
    header: list[str]
    header_line: int
    records: list[tuple[int, list[str]]] = field(default_factory=list)  # (first line, fields)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (first line, reason)


def read_records(lines: list[str], separator: str) -> CsvRead | None:
    """Header and records of a CSV text; None when it holds no record at all (empty file).

    A record spanning several physical lines is legitimate (a quoted cell with a line break)
    unless it ends with the wrong number of fields, is still open at the end of the file, or
    one of the lines it swallowed is a record by itself (an unclosed quote). Such a record is set
    aside with its reason, and when it swallowed records, they are read again on their own.
    """
    read: CsvRead | None = None
    gen = _records(lines, separator)
    restart: int | None = None
    while True:
        try:
            first, last, fields, error = gen.send(restart) if restart is not None else next(gen)
        except StopIteration:
            break
        restart = None
        if read is None:
            if error is not None or fields is None:
                continue  # a header that cannot be read is reported by the caller
            read = CsvRead(header=[h.strip() for h in fields], header_line=first)
            continue
        if error is not None:
            read.rejects.append((first, f"ligne illisible : {error}"))
            restart = first
            continue
        assert fields is not None
        width = len(read.header)
        fields = _trimmed(fields, width)
        swallowed = [
            k
            for k in range(first + 1, last + 1)
            if (alone := _alone(lines[k - 1], separator)) is not None
            and len(_trimmed(alone, width)) == width
        ]
        at_end = last == len(lines) and _open_at_end(lines, first, last, separator)
        if last > first and (len(fields) != width or swallowed or at_end):
            detail = (
                f" dont la ligne {swallowed[0]}, relue à part"
                if swallowed
                else f" et compte {len(fields)} champs au lieu de {width}"
                if len(fields) != width
                else " jusqu'à la fin du fichier"
            )
            read.rejects.append(
                (
                    first,
                    f"guillemet non fermé : l'enregistrement court de la ligne {first} à la "
                    f"ligne {last}{detail}",
                )
            )
            if swallowed:
                restart = first  # the swallowed records are read again on their own
        elif at_end:
            read.rejects.append((first, "guillemet non fermé en fin de fichier"))
        elif len(fields) != width:
            read.rejects.append((first, f"nombre de champs : {len(fields)} au lieu de {width}"))
        else:
            read.records.append((first, fields))
    return read


def xlsx_duplicate_headers(path: Path, sheet: str | None = None) -> list[str]:
    """Column names present twice in a sheet's header row.

    The spreadsheet counterpart of a CSV header check: Polars' reader renames a repeated header
    (`Besoin`, `Besoin_1`) and the second column would be ignored without a word, so the header
    row is read as plain cells first.
    """
    import fastexcel

    try:
        cells = (
            fastexcel.read_excel(path)
            .load_sheet(sheet if sheet is not None else 0, header_row=None, n_rows=1)
            .to_polars()
            .row(0)
        )
    except Exception:  # an unreadable workbook is reported by the main read, with its context
        return []
    names = [str(c).strip() for c in cells if c is not None and str(c).strip()]
    return sorted({n for n in names if names.count(n) > 1})
