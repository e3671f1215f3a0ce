"""Records of a SIRENE stock file, counted and recovered without trusting the parser that reads it.

A CSV parser decides where a record ends by following quotes. One quote opened and never closed
shifts that decision for the rest of the file: the parser reads the next lines as the inside of
a field, and when a later quoted line break flips it back, whole records have been merged into
one without any error (issue 12: 1,535 of 3,000 records published, « 49 lignes mal formées »).
Counting the rejected text after the fact cannot see this, and neither can a volume gate on a
first month or a re-run. So the number of records is established here, apart from the parser:

- `RecordCounter` scans the bytes once, vectorised with numpy: a line break is the end of a
  record when an even number of quotes precede it. Every record that spans several lines (a
  quoted line break) is checked with the same rule as the recovery below, so a clean file whose
  count agrees with the parser's row count is known to be read whole. It also counts the bytes
  of a zip member on the way to the parser (`CountingReader`), without a second decompression.
- `recover` runs only on a damaged file. It walks the physical lines and decides, record by
  record, where each one ends (`recognise`): an unclosed quote then damages exactly one record,
  not the rest of the file. Good records are handed back as raw text, to be parsed again by the
  real reader and counted (`read_records`); damaged ones as raw text with their line and reason.

Line numbers are physical lines of the file, the header being line 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# A record with legitimate quoted line breaks (an address or a sign on several lines) spans a
# few lines; an unclosed quote would swallow everything up to the next quote. Beyond these bounds
# a quote that opens a record is taken as never closed.
MAX_RECORD_LINES = 32
MAX_RECORD_BYTES = 1 << 20  # DuckDB's max_line_size for the strict read
# The raw text of a damaged record is kept whole up to this many characters; beyond, the
# quarantine row says it was cut (a damaged record is one physical line: this is a binary file
# or a file without line breaks, not a SIRENE record).
MAX_CONTENT_CHARS = 65_536
# The strict csv module's message when the text ends inside a quoted field.
_EOF_IN_QUOTES = "unexpected end of data"

_LF, _CR, _QUOTE, _COMMA = 10, 13, 34, 44
_PIECE = 2 << 20


class RecordsError(ValueError):
    """The file cannot be accounted for record by record; the message names the line at fault."""


@dataclass(frozen=True)
class Count:
    """What the independent scan established about a file."""

    physical_lines: int  # header included; a last line without line break counts
    records: int  # data records: header and blank lines excluded
    blank_lines: int
    # first physical line of a record the scan cannot vouch for (an unclosed quote, a record
    # spanning lines that does not read as one): the file must be recovered line by line
    fault_line: int | None = None
    fault: str | None = None


class RecordCounter:
    """Record boundaries of a byte stream fed in chunks, by quote parity.

    With quote = escape = `"` (RFC 4180, INSEE's dialect), a line break ends a record exactly
    when the quotes before it are even in number. The scan only looks at bytes, so a clean file
    costs two numpy comparisons per chunk; Python only runs on the rare records that span lines,
    which are checked with `recognise` like the recovery does: if the two disagree, the file is
    reported faulty and recovered, never trusted.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines = 0  # line breaks seen
        self.boundaries = 0  # line breaks outside quotes (ends of records, blank lines too)
        self.blank = 0
        self.fault_line: int | None = None
        self.fault: str | None = None
        self._odd = False  # inside quotes after what was fed
        self._offset = 0  # bytes fed before the current chunk
        self._prev_nl = -1  # offset of the last line break (-1: start of the file)
        # offset just past the last line break that ends a record: what a reader may parse
        self.last_record_end = 0
        self._prev_boundary = True
        self._last_byte = -1
        self._tail = bytearray()  # bytes since the last line break (the current line)
        self._tail_bytes = 0
        self._span: bytearray | None = None  # the open record spanning lines, from its start
        self._span_line = 0  # its first physical line
        self._span_lines = 0  # its line breaks seen so far
        self._commas = 0  # separators outside quotes since the last end of record
        self._seg_bytes = 0  # bytes since the last end of record
        self._seg_line = 1  # physical line where the current record starts

    def feed(self, data: bytes) -> None:
        # pieces of a few MB keep numpy's temporaries in cache: twice as fast as 64 MB blocks
        for start in range(0, len(data), _PIECE):
            self._feed(data[start : start + _PIECE] if len(data) > _PIECE else data)

    def _feed(self, chunk: bytes) -> None:
        if self.fault is not None:  # the recovery takes over: only lines still matter
            self.lines += chunk.count(b"\n")
            last = chunk.rfind(b"\n")
            self._tail_bytes = len(chunk) - last - 1 if last >= 0 else self._tail_bytes + len(chunk)
            self._offset += len(chunk)
            return
        a = np.frombuffer(chunk, dtype=np.uint8)
        nl = np.flatnonzero(a == _LF)
        q = _quote_positions(chunk, a)
        quotes = len(q)
        if quotes:
            inside = ((np.searchsorted(q, nl) + self._odd) & 1).astype(bool)
        else:
            inside = np.full(len(nl), self._odd)
        boundary = ~inside
        self._check_widths(a, nl, boundary, q)
        if self.fault is not None:  # from here on, as for any fault: only lines matter
            self.lines += len(nl)
            last = chunk.rfind(b"\n")
            self._tail_bytes = len(chunk) - last - 1 if last >= 0 else self._tail_bytes + len(chunk)
            self._offset += len(chunk)
            return
        if len(nl):
            ends = nl[boundary]
            if len(ends):
                self.last_record_end = self._offset + int(ends[-1]) + 1
            self.boundaries += int(np.count_nonzero(boundary))
            self.blank += self._blank_lines(a, nl, boundary)
            if self._span is not None or inside.any():
                self._spans(chunk, nl, inside)
            self._prev_nl = self._offset + int(nl[-1])
            self._prev_boundary = bool(boundary[-1])
            tail = chunk[int(nl[-1]) + 1 :]
            self._tail = bytearray(tail[:MAX_RECORD_BYTES])
            self._tail_bytes = len(tail)
        else:
            if self._span is not None:
                self._grow_span(chunk, 0)
            if len(self._tail) < MAX_RECORD_BYTES:
                self._tail += chunk[: MAX_RECORD_BYTES - len(self._tail)]
            self._tail_bytes += len(chunk)
        self._odd = bool((self._odd + quotes) & 1)
        self._last_byte = int(a[-1])
        self.lines += len(nl)
        self._offset += len(chunk)

    def _check_widths(
        self, a: np.ndarray, nl: np.ndarray, boundary: np.ndarray, q: np.ndarray
    ) -> None:
        """Every record has `width` fields: separators outside quotes, counted per record.

        A parser reading only some columns may not notice a record with a field too many or
        too few (Polars does not): such a record is a fault, so the file is recovered and the
        record quarantined. Blank lines (no separator, nothing but the line break) are skipped
        as readers do. Quotes are few in INSEE's files: the separators inside them are counted
        per quoted region.
        """
        if not len(a):
            return
        eq = a == _COMMA
        ends = nl[boundary]
        starts = np.concatenate(([0], ends + 1)).astype(np.int64)
        starts = starts[starts < len(a)]
        sums = np.add.reduceat(eq, starts, dtype=np.int64)
        sizes = np.diff(np.append(starts, len(a)))
        # separators inside quotes, region by region: [open, close) with the current parity
        regions: list[tuple[int, int]] = []
        qs = q.tolist()
        pos = 0
        if self._odd:
            regions.append((0, qs[0] if qs else len(a)))
            pos = 1
        while pos < len(qs):
            opening = qs[pos]
            closing = qs[pos + 1] if pos + 1 < len(qs) else len(a)
            regions.append((opening, closing))
            pos += 2
        if regions:
            if len(regions) > 64:
                cs = np.concatenate(([0], np.cumsum(eq, dtype=np.int64)))
                r = np.array(regions, dtype=np.int64)
                inner = cs[r[:, 1]] - cs[r[:, 0]]
                seg = np.searchsorted(starts, r[:, 0], side="right") - 1
                np.subtract.at(sums, seg, inner)
            else:
                for lo, hi in regions:
                    n = int(np.count_nonzero(eq[lo:hi]))
                    if n:
                        sums[int(np.searchsorted(starts, lo, side="right")) - 1] -= n
        sums[0] += self._commas
        sizes[0] += self._seg_bytes
        complete = len(ends)
        done = sums[:complete]
        bad = np.flatnonzero((done != self.width - 1) & ~((done == 0) & (sizes[:complete] <= 2)))
        breaks = np.flatnonzero(boundary)
        if len(bad):
            k = int(bad[0])
            # a record is reported at its first line, as the other faults are
            line = self._seg_line if k == 0 else self.lines + int(breaks[k - 1]) + 2
            self._set_fault(
                line, f"{int(done[k]) + 1} champs au lieu de {self.width} dans l'enregistrement"
            )
            return
        if complete:
            self._seg_line = self.lines + int(breaks[-1]) + 2
        if complete < len(starts):
            self._commas, self._seg_bytes = int(sums[-1]), int(sizes[-1])
        else:
            self._commas = self._seg_bytes = 0

    def _blank_lines(self, a: np.ndarray, nl: np.ndarray, boundary: np.ndarray) -> int:
        """Empty lines between records (`\\n` or `\\r\\n` alone), which readers skip."""
        pos = nl + self._offset
        prev = np.empty_like(pos)
        prev[0], prev[1:] = self._prev_nl, pos[:-1]
        prev_boundary = np.empty(len(nl), dtype=bool)
        prev_boundary[0], prev_boundary[1:] = self._prev_boundary, boundary[:-1]
        gap = pos - prev
        byte_before = np.where(nl >= 1, a[np.maximum(nl - 1, 0)], self._last_byte)
        blank = boundary & prev_boundary & ((gap == 1) | ((gap == 2) & (byte_before == _CR)))
        return int(np.count_nonzero(blank))

    def _spans(self, chunk: bytes, nl: np.ndarray, inside: np.ndarray) -> None:
        """Collect and check each record whose line breaks fall inside quotes."""
        runs: list[list[int]] = []
        for i in np.flatnonzero(inside).tolist():
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        if self._span is not None:
            # the record left open by the previous chunk ends at this chunk's first line break
            # outside quotes
            inner = runs.pop(0)[1] + 1 if runs and runs[0][0] == 0 else 0
            if inner < len(nl):
                end = int(nl[inner]) + 1
                if self._grow_span(chunk[:end], inner + 1):
                    self._close_span()
            else:
                self._grow_span(chunk, len(nl))
                return
        for first, last in runs:
            if self.fault is not None:
                return
            start = int(nl[first - 1]) + 1 if first > 0 else 0
            head = bytes(self._tail) if first == 0 else b""
            if first == 0 and self._tail_bytes > len(self._tail):
                self._set_fault(self.lines + 1, "ligne de plus de 1 Mo")
                return
            self._span = bytearray(head)
            self._span_line = self.lines + first + 1
            self._span_lines = 0
            if last + 1 < len(nl):
                end = int(nl[last + 1]) + 1
                if self._grow_span(chunk[start:end], last - first + 2):
                    self._close_span()
            else:
                self._grow_span(chunk[start:], last - first + 1)

    def _grow_span(self, data: bytes, line_breaks: int) -> bool:
        """Add bytes to the open record; False (and a fault) once it is too long to be one."""
        assert self._span is not None
        self._span += data
        self._span_lines += line_breaks
        if self._span_lines > MAX_RECORD_LINES or len(self._span) > MAX_RECORD_BYTES:
            self._set_fault(
                self._span_line,
                f"guillemet ouvert sur plus de {MAX_RECORD_LINES} lignes ou de 1 Mo",
            )
            return False
        return True

    def _close_span(self) -> None:
        assert self._span is not None
        data, first = bytes(self._span), self._span_line
        self._span = None
        try:
            lines = split_lines(data.decode("utf-8"))
        except UnicodeDecodeError:
            self._set_fault(first, "octets non UTF-8")
            return
        got = recognise(lines, self.width)
        if not got.ok or got.lines != len(lines):
            self._set_fault(first, "enregistrement sur plusieurs lignes illisible d'un bloc")

    def _set_fault(self, line: int, why: str) -> None:
        if self.fault is None:
            self.fault_line, self.fault = line, why
        self._span = None

    def finish(self) -> Count:
        if self.fault is None and self._span is not None and not self._odd:
            self._close_span()  # the last record spans lines and has no final line break
        if self.fault is None and self._odd:
            line = self._span_line if self._span is not None else self.lines + 1
            self._set_fault(line, "guillemet non fermé en fin de fichier")
        tail = self._tail_bytes > 0 and bytes(self._tail) not in (b"", b"\r")
        if self.fault is None and tail and self._commas != self.width - 1:
            self._set_fault(
                self._seg_line,
                f"{self._commas + 1} champs au lieu de {self.width} dans l'enregistrement",
            )
        physical = self.lines + (self._tail_bytes > 0)
        records = self.boundaries + tail - self.blank - 1  # the header is not a record
        return Count(physical, max(records, 0), self.blank, self.fault_line, self.fault)


def _quote_positions(chunk: bytes, a: np.ndarray) -> np.ndarray:
    """Offsets of the quotes in a chunk.

    INSEE quotes only the few fields that need it: a `find` loop (memchr) over a handful of
    quotes is five times cheaper than a full numpy pass; a file quoting every field gets the
    numpy pass.
    """
    found: list[int] = []
    i = chunk.find(b'"')
    while i != -1:
        found.append(i)
        if len(found) > 4096:
            return np.flatnonzero(a == _QUOTE)
        i = chunk.find(b'"', i + 1)
    return np.array(found, dtype=np.int64)


class RecordsFault(Exception):
    """Raised through the reader (pyarrow) to stop a read the counter already knows is wrong."""


class CountingReader(io.RawIOBase):
    """A binary stream whose bytes are counted on their way to the reader.

    The zip member is decompressed once: pyarrow reads through this object and the counter sees
    exactly the bytes pyarrow parses. With `stop_on_fault`, the read stops as soon as the
    counter sees damage, since the recovery will read the file again anyway.
    """

    def __init__(self, raw: BinaryIO, counter: RecordCounter, *, stop_on_fault: bool = False):
        super().__init__()
        self._raw = raw
        self.counter = counter
        self._stop = stop_on_fault

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """What pyarrow calls: the bytes as they come, without RawIOBase's two copies."""
        data = self._raw.read(size)
        self.counter.feed(data)
        if self._stop and self.counter.fault is not None:
            raise RecordsFault(self.counter.fault)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Count what the reader left unread (it stops at the last record it needs)."""
        while self.read(16 << 20):
            pass


def count_records(stream: BinaryIO, width: int, *, chunk_size: int = 16 << 20) -> Count:
    """Count the records of a whole stream; stops early once the file is known to be damaged."""
    counter = RecordCounter(width)
    while block := stream.read(chunk_size):
        counter.feed(block)
        if counter.fault is not None:
            break
    return counter.finish()


# --------------------------------------------------------------------------------------------
# One record at a time: where it ends, or why it is damaged
# --------------------------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Physical lines with their `\\n`; only `\\n` ends a line, as for the counter and readers."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _content(text: str) -> str:
    """A line or joined lines without the final line break (`\\n` or `\\r\\n`)."""
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def _parse(text: str) -> tuple[list[str] | None, str | None]:
    """Fields of exactly one strict RFC 4180 record, or the csv module's error."""
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        return None, str(exc)
    if len(rows) != 1:
        return None, "plusieurs enregistrements"
    return rows[0], None


def _loose_width(text: str) -> int:
    """Fields of a line read on its own, a stray quote taken as a character."""
    try:
        rows = list(csv.reader([text], strict=False))
    except csv.Error:
        return -1
    return len(rows[0]) if len(rows) == 1 else -1


def open_quote_field(text: str) -> int | None:
    """0-based field of the line whose opening quote is never closed on that line."""
    field, quoted, start, opened = 0, False, True, None
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"':
                if text[i + 1 : i + 2] == '"':
                    i += 2
                    continue
                quoted = False
        elif c == ",":
            field, start = field + 1, True
            i += 1
            continue
        elif c == '"' and start:
            quoted, opened = True, field
        start = False
        i += 1
    return opened if quoted else None


@dataclass(frozen=True)
class Recognised:
    lines: int  # physical lines the record takes (1 for a damaged record)
    ok: bool
    reason: str | None = None
    field: int | None = None  # 0-based field at fault, when known


def recognise(lines: Sequence[str], width: int) -> Recognised:
    """The record that starts with `lines[0]`: how many lines it takes, or why it is damaged.

    A line that reads as a record of `width` fields is one. A line that ends inside quotes is
    joined with the next ones (at most MAX_RECORD_LINES) until they read as one record of
    `width` fields: a legitimate quoted line break. The join stops at a line that is a record
    of `width` fields by itself, since swallowing it is what loses records silently. Otherwise
    the first line alone is the damaged record, and the next line starts the next record.
    """
    first = _content(lines[0])
    if '"' not in first and "\r" not in first:  # most lines: no need for the csv module
        n = first.count(",") + 1
        if n == width:
            return Recognised(1, True)
        return Recognised(1, False, f"nombre de colonnes : {n} au lieu de {width}")
    fields, error = _parse(first)
    if fields is not None:
        if len(fields) == width:
            return Recognised(1, True)
        return Recognised(1, False, f"nombre de colonnes : {len(fields)} au lieu de {width}")
    if error != _EOF_IN_QUOTES:
        return Recognised(1, False, f"ligne illisible ({error})")
    for j in range(1, min(len(lines), MAX_RECORD_LINES)):
        if _loose_width(_content(lines[j])) == width:
            break  # the next line is a record by itself: the quote was never closed
        fields, error = _parse(_content("".join(lines[: j + 1])))
        if fields is not None:
            if len(fields) == width:
                return Recognised(j + 1, True)
            break
        if error != _EOF_IN_QUOTES:
            break
    return Recognised(
        1,
        False,
        "guillemet non fermé : ouvert dans ce champ, jamais refermé ; seule cette ligne est "
        "écartée",
        open_quote_field(first),
    )


@dataclass(frozen=True)
class Record:
    """A good record, as raw text, to be parsed by the real reader."""

    line: int
    last_line: int
    raw: bytes


@dataclass(frozen=True)
class Damaged:
    line: int
    last_line: int
    field: int | None
    reason: str
    text: str
    truncated: bool


@dataclass
class RecoveryTally:
    physical_lines: int = 0  # header included
    blank_lines: int = 0
    good: int = 0
    damaged: int = 0


def _not_utf8(source: str, line: int, raw: bytes, exc: UnicodeDecodeError, header: Sequence[str]):
    prefix = raw[: exc.start].decode("utf-8", errors="replace")
    field = len(next(csv.reader([prefix + "x"]), [""])) - 1 if prefix else 0
    name = header[field] if field < len(header) else "?"
    return RecordsError(
        f"{source}, ligne {line}, colonne {field + 1} ({name}) : octet 0x{raw[exc.start]:02X} "
        "invalide en UTF-8 — le fichier n'est pas encodé en UTF-8 (Windows-1252 ou Latin-1 ?) ; "
        "INSEE publie en UTF-8, réenregistrez-le ou téléchargez-le à nouveau"
    )


def recover(
    stream: BinaryIO, source: str, header: Sequence[str], tally: RecoveryTally
) -> Iterator[Record | Damaged]:
    """Every record of a damaged file after its header, good or damaged, in file order.

    Each physical line belongs to exactly one record (or is blank): the tally's lines add up to
    the file's. Bytes that are not UTF-8 stop the recovery (`RecordsError` naming line and
    column): a whole file in the wrong encoding must be refused, not quarantined line by line.
    """
    width = len(header)
    raw_lines = iter(stream)
    raws: list[bytes] = []  # lines read ahead, and their text
    texts: list[str] = []
    number = 1  # physical line of raws[0]

    def fill() -> None:
        while len(raws) < MAX_RECORD_LINES:
            raw = next(raw_lines, None)
            if raw is None:
                return
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise _not_utf8(source, number + len(raws), raw, exc, header) from None
            raws.append(raw)

    fill()
    if not raws:
        return
    del raws[0], texts[0]  # the header, checked against the layout before
    tally.physical_lines = 1
    number = 2
    while True:
        fill()
        if not raws:
            return
        text = texts[0]
        if text in ("\n", "\r\n", "\r"):
            del raws[0], texts[0]
            tally.physical_lines += 1
            tally.blank_lines += 1
            number += 1
            continue
        got = recognise(texts, width)
        last = number + got.lines - 1
        if got.ok:
            tally.good += 1
            yield Record(number, last, b"".join(raws[: got.lines]))
        else:
            tally.damaged += 1
            content = _content(text)
            yield Damaged(
                number,
                last,
                got.field,
                got.reason or "enregistrement illisible",
                content[:MAX_CONTENT_CHARS],
                len(content) > MAX_CONTENT_CHARS,
            )
        del raws[: got.lines], texts[: got.lines]
        tally.physical_lines += got.lines
        number = last + 1


# --------------------------------------------------------------------------------------------
# Good records read again by the real reader, counted line by line
# --------------------------------------------------------------------------------------------

LINE_COLUMN = "_ligne"


def read_records(
    records: Sequence[Record],
    header: bytes,
    columns: Iterable[str],
    source: str,
) -> pa.Table:
    """Parse good records with pyarrow and check that it read exactly those records.

    Each record is prefixed with its line number as an extra first column, so the check is not
    only a count: the table's line numbers must be the records' ones, in order. The first line
    that differs (or that Arrow cannot parse, found by halving) refuses the file: the recovery
    and the reader disagree on a record, and nothing must be lost or invented silently.
    """
    keep = [LINE_COLUMN, *columns]
    data = b"".join([b"%d," % r.line + r.raw for r in records])
    try:
        table = _arrow_read(LINE_COLUMN.encode() + b"," + header + data, keep)
    except pa.ArrowInvalid:
        bad = _first_unreadable(records, header, keep)
        raise RecordsError(
            f"{source}, ligne {bad.line} : enregistrement reconnu mais illisible par le lecteur "
            "CSV — le nombre d'enregistrements ne peut pas être garanti, mois refusé"
        ) from None
    got = table.column(LINE_COLUMN).to_pylist()
    expected = [r.line for r in records]
    if got != expected:
        at = next(
            (e for e, g in zip(expected, got, strict=False) if e != g),
            expected[len(got)] if len(got) < len(expected) else expected[-1],
        )
        raise RecordsError(
            f"{source}, ligne {at} : {len(expected)} enregistrements reconnus, {len(got)} lus "
            "par le lecteur CSV — le compte ne tombe pas juste à partir de cette ligne, mois "
            "refusé"
        )
    return table.drop_columns([LINE_COLUMN])


def _arrow_read(data: bytes, keep: list[str]) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(encoding="utf8", use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=",", quote_char='"', newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            include_columns=keep,
            column_types={LINE_COLUMN: pa.int64(), **{c: pa.string() for c in keep[1:]}},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )


def _first_unreadable(records: Sequence[Record], header: bytes, keep: list[str]) -> Record:
    """The first record Arrow cannot parse, by halving (only after a failed read)."""
    lo, hi = 0, len(records)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _arrow_read(
                LINE_COLUMN.encode() + b"," + header
                + b"".join(b"%d," % r.line + r.raw for r in records[lo:mid]),
                keep,
            )  # fmt: skip
        except pa.ArrowInvalid:
            hi = mid
        else:
            lo = mid
    return records[lo]
