"""Counting and recovering the records of a SIRENE file apart from the parser (issue 12, point 5).

Pure functions on bytes, table-driven; the same cases go through the real refresh in
tests/test_bad_input.py.
"""

from __future__ import annotations

import csv
import io
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from observatoire.sources import sirene_records as sr

HEADER = "a,b,c\n"
WIDTH = 3


def count(text: str | bytes, chunk_size: int = 16 << 20) -> sr.Count:
    data = text.encode() if isinstance(text, str) else text
    return sr.count_records(io.BytesIO(data), WIDTH, chunk_size=chunk_size)


def recovered(text: str) -> tuple[list[sr.Record | sr.Damaged], sr.RecoveryTally]:
    tally = sr.RecoveryTally()
    items = list(sr.recover(io.BytesIO(text.encode()), "f.csv", ["a", "b", "c"], tally))
    return items, tally


# (case, file body after the header, records, physical lines, blank lines)
CLEAN = [
    ("plain", "1,2,3\n4,5,6\n", 2, 3, 0),
    ("no final line break", "1,2,3\n4,5,6", 2, 3, 0),
    ("quoted comma", '1,"x, y",3\n', 1, 2, 0),
    ("doubled quote", '1,"Le ""bon"" coin",3\n', 1, 2, 0),
    ("quoted line break", '1,"Atelier\nvélo",3\n4,5,6\n', 2, 4, 0),
    ("two quoted line breaks", '1,"a\nb\nc",3\n', 1, 4, 0),
    ("quoted CRLF", '1,"a\r\nb",3\r\n4,5,6\r\n', 2, 4, 0),
    ("blank lines", "1,2,3\n\n4,5,6\n\r\n", 2, 5, 2),
    ("last record spans lines, no final break", '1,2,3\n4,"a\nb",6', 2, 4, 0),
    ("header only", "", 0, 1, 0),
]


@pytest.mark.parametrize(
    ("case", "body", "records", "lines", "blank"), CLEAN, ids=[c[0] for c in CLEAN]
)
def test_clean_files_are_counted_like_a_parser_reads_them(case, body, records, lines, blank):
    for size in (1, 2, 3, 7, 1 << 20):  # chunk boundaries anywhere, even inside a quote
        got = count(HEADER + body, size)
        assert (got.records, got.physical_lines, got.blank_lines) == (records, lines, blank)
        assert got.fault is None, (size, got)
    parsed = pacsv.read_csv(
        io.BytesIO((HEADER + body).encode()),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
    )
    assert parsed.num_rows == records


# (case, body, physical line of the fault)
FAULTY = [
    ("unclosed quote to the end", '1,2,3\n4,"x,6\n7,8,9\n', 3),
    ("unclosed quote closed by a later quoted break", '4,"x,6\n7,8,9\n1,"a\nb",3\n', 2),
    ("record swallowed between two stray quotes", '4,"x,6\n7,8,9\n1,y",3\n', 2),
    ("stray quote in an unquoted field", '1,Le "bon coin,3\n4,5,6\n', 2),
    ("quote open longer than a record can be", '1,"' + "x\n" * 40 + '",3\n', 2),
    ("unclosed quote, then many records", '4,"x,6\n' + "7,8,9\n" * 40, 2),
]


@pytest.mark.parametrize(("case", "body", "line"), FAULTY, ids=[f[0] for f in FAULTY])
def test_damage_is_reported_at_its_first_line_whatever_the_chunks(case, body, line):
    data = (HEADER + body).encode()
    for size in (1, 3, 1 << 20):
        got = count(data, size)
        assert got.fault_line == line, (size, got)
        # fed to the end (as on the way to the recovery), the lines are still all counted
        counter = sr.RecordCounter(WIDTH)
        for start in range(0, len(data), size):
            counter.feed(data[start : start + size])
        assert counter.finish().physical_lines == len(sr.split_lines(data.decode())), size


def test_counts_agree_with_pyarrow_on_random_valid_files():
    """Random RFC 4180 files (quotes, doubled quotes, quoted breaks, CRLF), random chunks.

    As in SIRENE, the first field never holds a line break. With three columns, the closing
    line of a quoted break sometimes reads as a record of its own: the scan then refuses to
    vouch and the recovery decides; the check is that a vouched count is never wrong.
    """
    rnd = random.Random(12)
    alphabet = ["x", "é", ",", '"', " ", "\n", "\r\n"]
    vouched_multiline = 0
    for _ in range(300):
        rows = [
            ["".join(rnd.choice(alphabet[:5] if i == 0 else alphabet)
                     for _ in range(rnd.randint(0, 4))) for i in range(3)]
            for _ in range(rnd.randint(1, 8))
        ]  # fmt: skip
        buf = io.StringIO()
        csv.writer(buf, lineterminator=rnd.choice(["\n", "\r\n"])).writerows(
            [["a", "b", "c"], *rows]
        )
        data = buf.getvalue().encode()
        got = count(data, rnd.randint(1, 64))
        if got.fault is not None:
            continue
        table = pacsv.read_csv(
            io.BytesIO(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys("abc", pa.string())),
        )
        assert got.records == table.num_rows == len(rows), data
        vouched_multiline += got.physical_lines - 1 > got.records
    assert vouched_multiline > 150


def test_one_unclosed_quote_damages_one_record_and_a_later_quoted_break_is_kept():
    body = "1,2,3\n" + '4,"x,6\n' + "7,8,9\n" * 3 + '1,"a\nb",3\n' + "5,5,5\n"
    items, tally = recovered(HEADER + body)
    damaged = [i for i in items if isinstance(i, sr.Damaged)]
    good = [i for i in items if isinstance(i, sr.Record)]
    assert [(d.line, d.last_line, d.field, d.text) for d in damaged] == [(3, 3, 1, '4,"x,6')]
    assert "guillemet non fermé" in damaged[0].reason
    assert [(g.line, g.last_line) for g in good] == [(2, 2), (4, 4), (5, 5), (6, 6), (7, 8), (9, 9)]
    assert (tally.good, tally.damaged, tally.physical_lines) == (6, 1, 9)
    assert tally.physical_lines == count(HEADER + body).physical_lines


RECOGNISED = [
    ("record", ["1,2,3\n"], 1, True, None),
    ("too many columns", ["1,2,3,4\n"], 1, False, "nombre de colonnes : 4 au lieu de 3"),
    ("too few columns, quoted", ['1,"2"\n'], 1, False, "nombre de colonnes : 2 au lieu de 3"),
    ("quoted line break", ['1,"a\n', 'b",3\n'], 2, True, None),
    ("unclosed, next line is a record", ['1,"a,3\n', "4,5,6\n"], 1, False, "guillemet non fermé"),
    ("text after a closing quote", ['1,"a"b,3\n'], 1, False, "ligne illisible"),
    ("stray inner quote", ['1,Le "bon coin,3\n'], 1, True, None),
    ("mirrored stray quotes", ['1,"a,3\n', '4,b",6\n'], 1, False, "guillemet non fermé"),
]


@pytest.mark.parametrize(
    ("case", "lines", "n", "ok", "reason"), RECOGNISED, ids=[r[0] for r in RECOGNISED]
)
def test_recognise_one_record(case, lines, n, ok, reason):
    got = sr.recognise(lines, WIDTH)
    assert (got.lines, got.ok) == (n, ok)
    if reason:
        assert got.reason is not None and reason in got.reason


def test_open_quote_field():
    assert sr.open_quote_field('1,"a,3') == 1
    assert sr.open_quote_field('1,"a""b",3') is None
    assert sr.open_quote_field('"x",2,"abc') == 2
    assert sr.open_quote_field('1,Le "bon,3') is None


def test_damaged_record_text_is_kept_whole_or_said_to_be_cut():
    long = "x" * (sr.MAX_CONTENT_CHARS + 10)
    items, _ = recovered(HEADER + f"1,{long}\n4,5,6\n")
    (damaged,) = [i for i in items if isinstance(i, sr.Damaged)]
    assert damaged.truncated and len(damaged.text) == sr.MAX_CONTENT_CHARS
    items, _ = recovered(HEADER + "1,2\n")
    assert items[0] == sr.Damaged(2, 2, None, "nombre de colonnes : 2 au lieu de 3", "1,2", False)


def test_bytes_that_are_not_utf8_refuse_the_file_with_line_and_column():
    data = (HEADER + "1,2,3\n4,").encode() + "é".encode("cp1252") + b",6\n"
    with pytest.raises(sr.RecordsError, match=r"f\.csv, ligne 3, colonne 2 \(b\) : octet 0xE9"):
        list(sr.recover(io.BytesIO(data), "f.csv", ["a", "b", "c"], sr.RecoveryTally()))


def test_reader_reading_other_records_than_recognised_refuses_at_the_first_line_at_fault():
    """The invariant's last guard: what pyarrow reads must be exactly the recognised records."""
    records = [sr.Record(2, 2, b"1,2,3\n"), sr.Record(3, 3, b"4,5,6\n")]
    table = sr.read_records(records, HEADER.encode(), ["a", "c"], "f.csv")
    assert table.to_pylist() == [{"a": "1", "c": "3"}, {"a": "4", "c": "6"}]
    # a "record" that holds two: the reader finds one more row than the recovery recognised
    swallowed = [sr.Record(2, 2, b"1,2,3\n"), sr.Record(3, 3, b"4,5,6\n9,7,8,9\n")]
    with pytest.raises(
        sr.RecordsError, match=r"f\.csv, ligne 3 : 2 enregistrements reconnus, 3 lus"
    ):
        sr.read_records(swallowed, HEADER.encode(), ["a"], "f.csv")
    # a record the reader cannot parse is named, among many
    many = [sr.Record(n, n, b"1,2,3\n") for n in range(2, 200)]
    many[150] = sr.Record(152, 152, b"1,2\n")
    with pytest.raises(sr.RecordsError, match=r"f\.csv, ligne 152 : enregistrement reconnu"):
        sr.read_records(many, HEADER.encode(), ["a"], "f.csv")


def test_reader_errors_are_summarised_without_the_record_they_quote():
    """pyarrow quotes the faulty record after « got N: »: it may name a P unit."""
    from observatoire.sources.sirene import error_summary

    pyarrow_error = ValueError(
        "CSV parse error: Expected 54 columns, got 55: 345598288,00016,34559828800016,P,"
        "1991-01-29,NN,,,2026-09-18T22:29:46,true,2,MADAME DUPONT ..."
    )
    assert error_summary(pyarrow_error) == "CSV parse error: Expected 54 columns, got 55"
    duckdb_error = ValueError("Invalid Input Error: CSV Error on Line: 3\nOriginal Line: DUPONT")
    assert error_summary(duckdb_error) == "Invalid Input Error: CSV Error on Line: 3"


def test_prefetched_reading_hands_on_errors_and_stops_with_its_reader():
    """The chunks read ahead in a thread: an error of the reader is raised to the parser, and a
    parser that stops early closes the reader (its file) instead of leaving it running."""
    from observatoire.sources.sirene import _prefetched

    closed = []

    def chunks(fail_at: int | None):
        try:
            for i in range(100):
                if i == fail_at:
                    raise sr.RecordsFault(f"ligne {i}")
                yield b"x", i
        finally:
            closed.append(True)

    assert [i for _, i in _prefetched(chunks(None))] == list(range(100))
    with pytest.raises(sr.RecordsFault, match="ligne 7"):
        list(_prefetched(chunks(7)))
    taken = _prefetched(chunks(None))
    assert next(taken) == (b"x", 0)
    taken.close()  # the consumer stops after one chunk
    assert closed == [True, True, True]
