"""The shared CSV reader of waves and lists: every record kept, or set aside with its line."""

from __future__ import annotations

import pytest

from observatoire.core.csvfiles import physical_lines, read_records


def lines_of(*rows: str) -> list[str]:
    return physical_lines("".join(r + "\r\n" for r in rows))


HEADER = "siret,nom,reponse"


def test_a_stray_quote_cannot_swallow_the_records_after_it():
    """The csv module alone would return record 5 holding lines 6-15 as its name, no error."""
    rows = [HEADER] + [f"{i},Asso {i},oui" for i in range(2, 5)]
    rows.append('5,"Asso stray,oui')  # line 5: a quote opened, never closed
    rows += [f"{i},Asso {i},oui" for i in range(6, 15)]
    rows.append('15,"Asso, avec virgule",non')  # line 15: closes the stray quote's field
    rows += [f"{i},Asso {i},oui" for i in range(16, 40)]
    read = read_records(lines_of(*rows), ",")
    assert read is not None
    assert [line for line, _ in read.rejects] == [5]
    assert read.rejects[0][1].startswith(
        "guillemet non fermé : l'enregistrement court de la ligne 5"
    )
    kept = [line for line, _ in read.records]
    assert kept == [n for n in range(2, 40) if n != 5]
    assert dict(read.records)[15] == ["15", "Asso, avec virgule", "non"]


def test_a_quoted_line_break_is_one_record():
    read = read_records(lines_of(HEADER, '2,"Deux\nlignes",oui', "3,Asso,non"), ",")
    assert read is not None and read.rejects == []
    assert read.records == [(2, ["2", "Deux\nlignes", "oui"]), (4, ["3", "Asso", "non"])]


@pytest.mark.parametrize(
    ("rows", "rejects", "kept"),
    [
        # one field too many on a line of its own
        ([HEADER, "2,a,oui,en trop", "3,b,non"], [(2, "nombre de champs : 4 au lieu de 3")], [3]),
        # trailing empty fields, as spreadsheets write them, are not an error
        ([HEADER, "2,a,oui,,", "3,b,non"], [], [2, 3]),
        # a quote open at the end of the file: the record is set aside, nothing else lost
        ([HEADER, "2,a,oui", '3,"b,non', "suite"], [(3, "guillemet non fermé")], [2]),
        ([HEADER, "2,a,oui", '3,b,"non'], [(3, "guillemet non fermé en fin de fichier")], [2]),
    ],
)
def test_broken_records_are_named_by_line(rows, rejects, kept):
    read = read_records(lines_of(*rows), ",")
    assert read is not None
    assert [
        (line, motif[: len(expected)])
        for (line, motif), (_, expected) in zip(read.rejects, rejects, strict=True)
    ] == rejects
    assert [line for line, _ in read.records] == kept


def test_empty_text_has_no_header():
    assert read_records(physical_lines(""), ",") is None
    assert read_records(lines_of("", ""), ",") is None
