"""Bad SIRENE input through the real refresh: a clear error naming file, line and column, or
rows quarantined with a reason; never a silent loss, never a half-replaced month.

Each case starts from a good month already published, damages the next month's file, and
checks both what the refresh says and that the previous publication is still the live one.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sirene_builder import etab_row, new_siren, siret_for, ul_row, write_stock

from observatoire import publish, refresh, sirene, warehouse

GOOD, BAD = "2026-10", "2026-11"


def _rows(n: int = 5) -> tuple[list[dict], list[dict], str]:
    siren = new_siren()
    ets = [
        etab_row(siren, i, denominationUsuelleEtablissement="Café du coin") for i in range(1, n + 1)
    ]
    return [ul_row(siren)], ets, siren


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def to_cp1252(path: Path) -> None:
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))


def unclosed_quote(path: Path) -> None:
    lines = _lines(path)
    lines[2] = lines[2].replace("Café du coin", '"Café du coin', 1)
    _write_lines(path, lines)


def reorder_columns(path: Path) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[r[1], r[0], *r[2:]] for r in rows])
    path.write_text(buf.getvalue(), encoding="utf-8")


def rename_column(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("codeCommuneEtablissement", "codeCommune", 1), encoding="utf-8")


def drop_column(path: Path) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([r[:-1] for r in rows])
    path.write_text(buf.getvalue(), encoding="utf-8")


def add_column(path: Path) -> None:
    lines = _lines(path)
    _write_lines(path, [lines[0] + ",colonneInconnue"] + [x + ",?" for x in lines[1:]])


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def zip_it(path: Path) -> Path:
    target = path.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, path.name)
    path.unlink()
    return target


# (case, damage, expected error type, fragments the message must contain)
REFUSED: list[tuple[str, Callable[[Path], None], type[Exception], list[str]]] = [
    (
        "windows-1252",
        to_cp1252,
        sirene.SireneFileError,
        ["ligne 2", "colonne 50", "denominationUsuelleEtablissement", "0xE9", "UTF-8"],
    ),
    (
        "colonnes réordonnées",
        reorder_columns,
        sirene.SireneFileError,
        ["ordre différent", "colonne 1", "« nic »", "« siren »"],
    ),
    (
        "colonne renommée",
        rename_column,
        sirene.SireneFileError,
        ["manquantes : codeCommuneEtablissement", "en trop : codeCommune"],
    ),
    ("colonne manquante", drop_column, sirene.SireneFileError, ["manquantes"]),
    ("colonne en trop", add_column, sirene.SireneFileError, ["en trop : colonneInconnue"]),
    ("fichier vide", empty_file, sirene.SireneFileError, ["fichier vide"]),
    (
        "guillemet non fermé",
        unclosed_quote,
        refresh.RejectRateError,
        ["ligne 3", "denominationUsuelleEtablissement", "guillemet non fermé", "4 lignes"],
    ),
]


@pytest.fixture
def published(run_month, settings) -> Path:
    """A good month already published: the live state a bad refresh must leave alone."""
    uls, ets, _ = _rows()
    run_month(GOOD, uls, ets)
    live = publish.current(settings.publication_dir)
    assert live is not None
    return live


@pytest.mark.parametrize("zipped", [False, True], ids=["csv", "zip"])
@pytest.mark.parametrize(
    ("case", "damage", "error", "fragments"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_bad_file_is_refused_with_a_clear_error_and_publication_kept(
    published, settings, query, case, damage, error, fragments, zipped
):
    uls, ets, _ = _rows()
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    damage(et)
    if zipped and et.stat().st_size:
        et = zip_it(et)
    s = settings.with_(sirene_etablissements=str(et).replace(BAD, "{mois}"), max_reject_rate=0.5)
    with pytest.raises(error) as caught:
        refresh.refresh(s, BAD, run_id=f"bad-{zipped}")
    message = str(caught.value)
    assert et.name in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert publish.current(settings.publication_dir) == published
    assert publish.published_month(settings.publication_dir) == GOOD
    # the damaged month never reached the warehouse's raw layer
    assert query("select count(*) from raw.sirene_etablissements where mois = ?", [BAD]) == [(0,)]


def test_quoted_newline_and_stray_inner_quote_are_read_as_data(run_month, query):
    """Valid CSV (RFC 4180 quoted newline) and a lone inner quote lose nothing."""
    uls, ets, siren = _rows(3)
    ets[0]["denominationUsuelleEtablissement"] = "Atelier\nvélo"
    ets[1]["denominationUsuelleEtablissement"] = 'Le "bon coin'
    run_month(BAD, uls, ets)
    names = dict(
        query("select siret, denomination_usuelle from clean.sirene_etablissements order by 1")
    )
    assert names[siret_for(siren, 1)] == "Atelier\nvélo"
    assert names[siret_for(siren, 2)] == 'Le "bon coin'
    assert query("select count(*) from raw.sirene_rejets_lecture") == [(0,)]


def test_truncated_last_line_is_one_quarantined_line(settings, query):
    uls, ets, _ = _rows(5)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    et.write_bytes(et.read_bytes()[:-40])
    report = refresh.refresh(settings.with_(max_reject_rate=0.5), BAD, run_id="trunc")
    assert report.ingested["etablissements"].malformed == 1
    assert report.ingested["etablissements"].lines_total == 5
    ((line, motif),) = query("select ligne, motif from raw.sirene_rejets_lecture")
    assert line == 6
    assert "MISSING COLUMNS" in motif and "autres erreurs" in motif
    assert query(
        "select lignes_fichier, lignes_mal_formees, lignes_retenues from raw.sirene_lectures "
        "where type_fichier = 'etablissements'"
    ) == [(5, 1, 4)]


def test_malformed_lines_over_the_threshold_refuse_the_file(published, settings):
    """Malformed lines count against the whole file, not only the territory's rows."""
    uls, ets, _ = _rows(4)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    lines = _lines(et)
    _write_lines(et, [lines[0], lines[1] + ",x", lines[2] + ",x", *lines[3:]])
    with pytest.raises(refresh.RejectRateError, match="2 lignes mal formées sur 4"):
        refresh.refresh(settings.with_(max_reject_rate=0.25), BAD, run_id="over")
    assert publish.published_month(settings.publication_dir) == GOOD


def test_bom_and_crlf_files_are_read(run_month, settings, query):
    uls, ets, _ = _rows(3)
    et, ul = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    et.write_bytes(b"\xef\xbb\xbf" + et.read_bytes().replace(b"\n", b"\r\n"))
    refresh.refresh(settings, BAD, run_id="bom")
    assert query("select count(*) from clean.sirene_etablissements") == [(3,)]
    assert query("select count(*) from raw.sirene_rejets_lecture") == [(0,)]


def test_header_only_month_is_stopped_before_publication(published, settings):
    uls, ets, _ = _rows(3)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    _write_lines(et, _lines(et)[:1])
    with pytest.raises(refresh.QualityError, match="au moins une ligne"):
        refresh.refresh(settings, BAD, run_id="empty")
    assert publish.published_month(settings.publication_dir) == GOOD


@pytest.mark.parametrize("zipped", [False, True], ids=["csv", "zip"])
def test_records_across_read_blocks_keep_their_quoted_newlines(settings, query, zipped):
    """Blocks of 2 KiB (the header is 1.6 KiB): records with quoted newlines straddle them."""
    uls, ets, siren = _rows(12)
    for row in ets:
        row["denominationUsuelleEtablissement"] = "Atelier\nvélo\nsolidaire"
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    if zipped:
        et = zip_it(et)
    with warehouse.connect(settings.warehouse) as con:
        refresh.load_reference_and_territory(con, settings)
        result = sirene.ingest(con, "etablissements", et, BAD, block_size=2048)
    assert result.rows == 12 and result.malformed == 0
    names = query("select distinct denominationUsuelleEtablissement from raw.sirene_etablissements")
    assert names == [("Atelier\nvélo\nsolidaire",)]


def test_unclosed_quote_in_a_zip_is_located_too(settings, query):
    uls, ets, _ = _rows(5)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    unclosed_quote(et)
    et = zip_it(et)
    with warehouse.connect(settings.warehouse) as con:
        refresh.load_reference_and_territory(con, settings)
        result = sirene.ingest(con, "etablissements", et, BAD, block_size=2048)
    assert result.malformed == 4 and result.rows == 1
    ((line, column, motif),) = query("select ligne, colonne, motif from raw.sirene_rejets_lecture")
    assert (line, column) == (3, "denominationUsuelleEtablissement")
    assert "4 lignes physiques" in motif


def test_reader_errors_never_quote_the_record(published, settings):
    """DuckDB's own message quotes the whole line, which may belong to a P unit."""
    uls, ets, _ = _rows(3)
    ets[1]["denominationUsuelleEtablissement"] = "Secret Défense SARL"
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    to_cp1252(et)
    with pytest.raises(sirene.SireneFileError) as caught:
        refresh.refresh(settings, BAD, run_id="secret")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "Secret" not in str(caught.value)
