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

from observatoire import refresh, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import warehouse
from observatoire.publication import publish
from observatoire.sources import sirene

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


def test_truncated_last_line_is_one_quarantined_record(settings, query):
    uls, ets, _ = _rows(5)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    et.write_bytes(et.read_bytes()[:-40])
    report = refresh.refresh(settings.with_(max_reject_rate=0.5), BAD, run_id="trunc")
    assert report.ingested["etablissements"].malformed == 1
    assert report.ingested["etablissements"].records == 5
    ((line, motif, contenu),) = query("select ligne, motif, contenu from raw.sirene_rejets_lecture")
    assert line == 6
    assert "nombre de colonnes" in motif and "au lieu de 54" in motif
    assert contenu == _lines(et)[5]
    assert query(
        "select lignes_fichier, lignes_mal_formees, lignes_retenues, enregistrements_fichier, "
        "enregistrements_lus, enregistrements_rejetes, lignes_physiques from raw.sirene_lectures "
        "where type_fichier = 'etablissements'"
    ) == [(5, 1, 4, 5, 4, 1, 6)]


def test_malformed_records_over_the_threshold_refuse_the_file(published, settings):
    """Malformed records count against the whole file, not only the territory's rows."""
    uls, ets, _ = _rows(4)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    lines = _lines(et)
    _write_lines(et, [lines[0], lines[1] + ",x", lines[2] + ",x", *lines[3:]])
    with pytest.raises(refresh.RejectRateError, match="2 enregistrements mal formés sur 4"):
        refresh.refresh(settings.with_(max_reject_rate=0.25), BAD, run_id="over")
    assert publish.published_month(settings.publication_dir) == GOOD


def test_bom_and_crlf_files_are_read(run_month, settings, query):
    uls, ets, _ = _rows(3)
    et, ul = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    et.write_bytes(b"\xef\xbb\xbf" + et.read_bytes().replace(b"\n", b"\r\n"))
    report = refresh.refresh(settings, BAD, run_id="bom")
    assert not report.ingested["etablissements"].recovered  # read by the fast path
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
        steps.load_reference_and_territory(con, settings)
        result = clean.process_month(con, "etablissements", et, BAD, block_size=2048).read
    assert result.rows == 12 and result.malformed == 0
    # a clean file is read by the fast path: counted apart, read once, the counts agree
    assert not result.recovered
    assert (result.records, result.records_read, result.physical_lines) == (12, 12, 1 + 12 * 3)
    names = query("select distinct denomination_usuelle from clean.sirene_etablissements")
    assert names == [("Atelier\nvélo\nsolidaire",)]


# --------------------------------------------------------------------------------------------
# No record lost silently (issue 12, point 5): an unclosed quote damages one record, no more
# --------------------------------------------------------------------------------------------


def _named_rows(n: int) -> tuple[list[dict], list[dict], str]:
    """n establishments whose names tell their line apart (record i is on line i + 1)."""
    siren = new_siren()
    ets = [
        etab_row(siren, i, denominationUsuelleEtablissement=f"Café n°{i:04d}")
        for i in range(1, n + 1)
    ]
    return [ul_row(siren)], ets, siren


def _open_quote(path: Path, record: int) -> str:
    """Open a quote in record `record`'s name and never close it; return the damaged line."""
    lines = _lines(path)
    lines[record] = lines[record].replace(f"Café n°{record:04d}", f'"Café n°{record:04d}', 1)
    _write_lines(path, lines)
    return lines[record]


def _read_log(query) -> list[tuple]:
    return query(
        "select enregistrements_fichier, enregistrements_lus, enregistrements_rejetes, "
        "lignes_physiques from raw.sirene_lectures where type_fichier = 'etablissements'"
    )


@pytest.mark.parametrize("zipped", [False, True], ids=["csv", "zip"])
def test_unclosed_quote_then_a_quoted_newline_loses_no_record(settings, query, zipped):
    """The issue's file: 3,000 records, one opens a quote that never closes and a later one
    legitimately holds a quoted newline. It once published 1,535 records under « 49 lignes mal
    formées »; now exactly the damaged record is quarantined and the 2,999 others are read."""
    uls, ets, siren = _named_rows(3000)
    ets[1999]["denominationUsuelleEtablissement"] = "Atelier\nvélo"
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    damaged = _open_quote(et, 100)
    if zipped:
        et = zip_it(et)
    s = settings.with_(sirene_etablissements=str(et).replace(BAD, "{mois}"), max_reject_rate=0.02)
    report = refresh.refresh(s, BAD, run_id=f"issue12-{zipped}")
    result = report.ingested["etablissements"]
    assert (result.records, result.records_read, result.malformed) == (3000, 2999, 1)
    assert result.records_read + result.malformed == result.records
    assert result.recovered and result.rows == 2999
    assert publish.published_month(settings.publication_dir) == BAD
    assert query("select count(*) from clean.sirene_etablissements") == [(2999,)]
    assert query(
        "select denomination_usuelle from clean.sirene_etablissements where siret = ?",
        [siret_for(siren, 2000)],
    ) == [("Atelier\nvélo",)]
    assert query(
        "select ligne, derniere_ligne, colonne, contenu, contenu_tronque "
        "from raw.sirene_rejets_lecture"
    ) == [(101, 101, "denominationUsuelleEtablissement", damaged, False)]
    # the header, 3,000 records, and the quoted newline's second line
    assert _read_log(query) == [(3000, 2999, 1, 3002)]


@pytest.mark.parametrize("zipped", [False, True], ids=["csv", "zip"])
def test_single_unclosed_quote_quarantines_exactly_one_record(settings, query, zipped):
    """An unclosed quote with no quote after it once swallowed the rest of the file."""
    uls, ets, _ = _named_rows(40)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    damaged = _open_quote(et, 12)
    if zipped:
        et = zip_it(et)
    s = settings.with_(sirene_etablissements=str(et).replace(BAD, "{mois}"), max_reject_rate=0.05)
    report = refresh.refresh(s, BAD, run_id=f"one-{zipped}")
    assert report.ingested["etablissements"].malformed == 1
    assert publish.published_month(settings.publication_dir) == BAD
    assert query("select count(*) from clean.sirene_etablissements") == [(39,)]
    ((line, column, motif, contenu),) = query(
        "select ligne, colonne, motif, contenu from raw.sirene_rejets_lecture"
    )
    assert (line, column, contenu) == (13, "denominationUsuelleEtablissement", damaged)
    assert motif.startswith("guillemet non fermé")
    assert _read_log(query) == [(40, 39, 1, 41)]


@pytest.mark.parametrize("zipped", [False, True], ids=["csv", "zip"])
def test_damaged_records_over_the_threshold_refuse_the_month(published, settings, query, zipped):
    """The gate counts damaged records over the file's records: 1 of 5 is 20 %."""
    uls, ets, _ = _named_rows(5)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    _open_quote(et, 2)
    if zipped:
        et = zip_it(et)
    s = settings.with_(sirene_etablissements=str(et).replace(BAD, "{mois}"), max_reject_rate=0.1)
    with pytest.raises(refresh.RejectRateError) as caught:
        refresh.refresh(s, BAD, run_id=f"gate-{zipped}")
    message = str(caught.value)
    for fragment in (
        et.name,
        "1 enregistrement mal formé sur 5 (20.0%, seuil 10.0%)",
        "ligne 3, colonne denominationUsuelleEtablissement : guillemet non fermé",
    ):
        assert fragment in message, (fragment, message)
    assert publish.current(settings.publication_dir) == published
    assert query("select count(*) from raw.sirene_etablissements where mois = ?", [BAD]) == [(0,)]


def test_read_log_and_quarantine_of_an_older_warehouse_are_migrated(settings, query):
    """Warehouses written before records were counted keep their tables and rows."""
    uls, ets, _ = _named_rows(5)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    damaged = _open_quote(et, 2)
    with warehouse.connect(settings.warehouse) as con:
        steps.load_reference_and_territory(con, settings)
        con.execute(
            "create table raw.sirene_lectures (mois varchar, type_fichier varchar, "
            "fichier varchar, disposition varchar, lignes_fichier bigint, "
            "lignes_mal_formees bigint, lignes_retenues bigint)"
        )
        con.execute(
            "insert into raw.sirene_lectures values "
            "('2026-09', 'etablissements', 'ancien.csv', 'v3.11', 10, 4, 6)"
        )
        con.execute(
            "create table raw.sirene_rejets_lecture (mois varchar, fichier varchar, "
            "type_fichier varchar, ligne bigint, colonne varchar, motif varchar, contenu varchar)"
        )
        con.execute(
            "insert into raw.sirene_rejets_lecture values "
            "('2026-09', 'ancien.csv', 'etablissements', 3, null, 'ancien motif', 'x')"
        )
        result = clean.process_month(con, "etablissements", et, BAD).read
    assert query("select * exclude (fichier, disposition) from raw.sirene_lectures order by 1") == [
        ("2026-09", "etablissements", 10, 4, 6, None, None, None, None),
        (BAD, "etablissements", 5, 1, 4, 5, 4, 1, 6),
    ]
    assert query("select * from raw.sirene_rejets_lecture where mois = '2026-09'") == [
        ("2026-09", "ancien.csv", "etablissements", 3, None, "ancien motif", "x", None, None)
    ]
    ((line, last, column, motif, contenu, cut),) = query(
        "select ligne, derniere_ligne, colonne, motif, contenu, contenu_tronque "
        "from raw.sirene_rejets_lecture where mois = ?",
        [BAD],
    )
    assert (line, last, column, contenu, cut) == (
        3,
        3,
        "denominationUsuelleEtablissement",
        damaged,
        False,
    )
    assert motif.startswith("guillemet non fermé")
    assert result.recovered and (result.records, result.malformed) == (5, 1)


def test_damaged_record_longer_than_the_cap_says_it_was_cut(settings, query):
    uls, ets, _ = _named_rows(3)
    et, _ = write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    lines = _lines(et)
    lines[2] += "," + "x" * 70_000  # one column too many, and a very long one
    _write_lines(et, lines)
    with warehouse.connect(settings.warehouse) as con:
        steps.load_reference_and_territory(con, settings)
        result = clean.process_month(con, "etablissements", et, BAD).read
    assert (result.records, result.records_read, result.malformed) == (3, 2, 1)
    ((line, motif, contenu, cut),) = query(
        "select ligne, motif, contenu, contenu_tronque from raw.sirene_rejets_lecture"
    )
    assert (line, cut, len(contenu)) == (3, True, 65_536)
    assert lines[2].startswith(contenu)
    assert motif == "nombre de colonnes : 55 au lieu de 54 ; contenu tronqué à 65536 caractères"


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


# --------------------------------------------------------------------------------------------
# Questionnaire waves and network lists dropped in the inbox (issue 3, docs/sources_externes.md)
# --------------------------------------------------------------------------------------------

WAVE = "v2026"
WAVE_HEADER = [
    "Horodatage",
    "SIRET",
    "Structure",
    "Code postal",
    "Commune",
    "Courriel",
    "Besoin de locaux ?",
    "Besoins",
    "Salariés",
]
WAVE_MAPPING = """\
[vague]
titre = "Vos besoins 2026"
date_debut = "2026-03-01"
date_fin = "2026-05-31"
outil = "limesurvey"

[identification]
horodatage = "Horodatage"
siret = "SIRET"
nom = "Structure"
code_postal = "Code postal"
commune = "Commune"
donnees_personnelles = ["Courriel"]

[[questions]]
code = "besoin_locaux"
colonne = "Besoin de locaux ?"
type = "choix_unique"
besoin = "locaux"
cite_si = ["Oui"]

[[questions]]
code = "besoins"
colonne = "Besoins"
type = "choix_multiple"
options = { "Recruter" = "recrutement", "Financer" = "financement" }

[[questions]]
code = "nb_salaries"
colonne = "Salariés"
type = "nombre"
"""
NETWORK = "ressourceries"
NETWORK_HEADER = ["SIRET", "Nom", "CP", "Ville", "Courriel"]
NETWORK_DECLARATION = """\
nom = "Ressourceries du territoire"
type = "ressourcerie"
fichier = "{fichier}"
[colonnes]
{colonnes}
"""
NETWORK_COLUMNS = 'siret = "SIRET"\nnom = "Nom"\ncode_postal = "CP"\ncommune = "Ville"'


def wave_answer(siret: str, nom: str, **changes: str) -> list[str]:
    row = {
        "Horodatage": "2026-03-14 10:22:31",
        "SIRET": siret,
        "Structure": nom,
        "Code postal": "94400",
        "Commune": "Vitry-sur-Seine",
        "Courriel": "camille.durand@example.org",
        "Besoin de locaux ?": "Oui",
        "Besoins": "Recruter;Financer",
        "Salariés": "3",
    }
    row.update(changes)
    return [row[c] for c in WAVE_HEADER]


def csv_text(header: list[str], rows: list[list[str]], sep: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


def write_wave(inbox: Path, text: str, vague: str = WAVE) -> Path:
    """The wave's mapping and its export (`export.csv`), replacing a previous export."""
    folder = inbox / "questionnaires" / vague
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "correspondance.toml").write_text(WAVE_MAPPING, encoding="utf-8")
    export = folder / "export.csv"
    export.write_text(text, encoding="utf-8")
    return export


def write_network(
    inbox: Path,
    text: str,
    reseau: str = NETWORK,
    colonnes: str = NETWORK_COLUMNS,
) -> Path:
    """A declaration `reseaux/<reseau>.toml` and its list `<reseau>.csv`; returns the list."""
    folder = inbox / "reseaux"
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / f"{reseau}.csv"
    (folder / f"{reseau}.toml").write_text(
        NETWORK_DECLARATION.format(fichier=listing.name, colonnes=colonnes), encoding="utf-8"
    )
    listing.write_text(text, encoding="utf-8")
    return listing


def write_good_inbox(inbox: Path, sirets: list[str]) -> tuple[Path, Path]:
    """One wave (an answer per SIRET, plus one giving only a name) and one network list."""
    answers = [wave_answer(s, f"Café du coin {i}") for i, s in enumerate(sirets)]
    answers.append(wave_answer("", "Association sans numéro", Besoins="Financer"))
    members = [[s, f"Café du coin {i}", "94400", "VITRY SUR SEINE", "a@b.fr"]
               for i, s in enumerate(sirets)]  # fmt: skip
    return (
        write_wave(inbox, csv_text(WAVE_HEADER, answers)),
        write_network(inbox, csv_text(NETWORK_HEADER, members, sep=";")),
    )


@pytest.fixture
def published_sources(run_month, settings) -> tuple[Path, list[dict], list[dict]]:
    """A good month published with one wave and one network list, and its SIRENE rows."""
    uls, ets, siren = _rows(3)
    write_good_inbox(settings.inbox_dir, [siret_for(siren, i) for i in (1, 2, 3)])
    run_month(GOOD, uls, ets)
    live = publish.current(settings.publication_dir)
    assert live is not None
    return live, uls, ets


def _sources_snapshot(query) -> dict[str, list[tuple]]:
    """What the warehouse holds of the sources, to show that a refused file changed nothing."""
    return {
        table: query(f"select * exclude (lu_le) from {table} order by all")
        if table.endswith("lectures")
        else query(f"select * from {table} order by all")
        for table in (
            "raw.questionnaire_cellules",
            "raw.questionnaire_lectures",
            "raw.reseaux_cellules",
            "raw.reseaux_lectures",
            "clean.questionnaire_reponses",
            "clean.reseaux_membres",
        )
    }


def _cli_reports_it_cleanly(exc: Exception, settings) -> list[str]:
    """Bugs that make a refused source file worse to read than a refused SIRENE file."""
    bugs = []
    if not isinstance(exc, refresh.REFUSALS):
        bugs.append(
            f"{type(exc).__name__} absent de refresh.REFUSALS : la CLI afficherait une trace"
        )
    status = publish.read_status(settings.publication_dir)
    assert status is not None
    motif = status["dernier_rafraichissement"]["motif"]
    if not any(name in motif for name in ("export.csv", "ressourceries.")):
        bugs.append(f"etat.json ne nomme pas le fichier refusé : {motif!r}")
    return bugs


def _broken_export(sirets: list[str], good: int, layout: str) -> tuple[str, list[int]]:
    """An export whose records follow `layout` (g: good, l: quoted line break, +/-: a field
    too many / missing); returns the text and the physical lines of the broken records."""
    header = csv_text(WAVE_HEADER, []).splitlines()
    lines, broken = [*header], []
    for i, kind in enumerate(layout):
        row = wave_answer(sirets[i % len(sirets)], f"Café {i}", Horodatage=f"2026-03-{10 + i}")
        if kind == "l":
            row[2] = "Café\ndu coin"
        elif kind == "+":
            row.append("champ en trop")
        elif kind == "-":
            row = row[:-1]
        if kind in "+-":
            broken.append(len(lines) + 1)
        lines.extend(csv_text(row, []).splitlines())
    assert layout.count("g") + layout.count("l") == good
    return "\n".join(lines) + "\n", broken


def test_few_broken_wave_rows_are_quarantined_and_the_month_published(
    published_sources, settings, query
):
    _, uls, ets = published_sources
    sirets = [e["siret"] for e in ets]
    text, broken = _broken_export(sirets, 8, "gg+lg-gggg")
    assert broken == [4, 8]  # physical lines: the record at line 5 spans lines 5 and 6
    write_wave(settings.inbox_dir, text)
    write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    report = refresh.refresh(settings.with_(max_reject_rate=0.25), BAD, run_id="quelques")
    assert report.publication is not None
    assert publish.published_month(settings.publication_dir) == BAD
    assert [w.vague for w in report.vagues] == [WAVE]
    rejets = query(
        "select vague, fichier_source, ligne, motif from raw.questionnaire_rejets_lecture"
    )
    assert [(v, f, ligne) for v, f, ligne, _ in rejets] == [
        (WAVE, "export.csv", 4),
        (WAVE, "export.csv", 8),
    ]
    motifs = [m for *_, m in rejets]
    assert "nombre de champs : 10 au lieu de 9" in motifs[0]
    assert "nombre de champs : 8 au lieu de 9" in motifs[1]
    assert not any("example.org" in m or "Café" in m for m in motifs)  # content not copied
    assert query("select lignes_lues, lignes_mal_formees from raw.questionnaire_lectures") == [
        (8, 2)
    ]
    kept = [r[0] for r in query("select ligne from clean.questionnaire_reponses order by 1")]
    assert kept == [2, 3, 5, 7, 9, 10, 11, 12]
    assert query("select nom from clean.questionnaire_reponses where ligne = 5") == [
        ("Café\ndu coin",)
    ]


def test_too_many_broken_wave_rows_refuse_the_month_and_keep_the_wave(
    published_sources, settings, query
):
    live, uls, ets = published_sources
    before = _sources_snapshot(query)
    text, broken = _broken_export([e["siret"] for e in ets], 2, "g+g-")
    assert broken == [3, 5]
    export = write_wave(settings.inbox_dir, text)
    write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    with pytest.raises(Exception) as caught:
        refresh.refresh(settings.with_(max_reject_rate=0.25), BAD, run_id="trop")
    message = str(caught.value)
    for fragment in (
        str(export),
        "2 lignes mal formées sur 4",
        "seuil 25.0%",
        "premières lignes en cause : 3, 5",
        "vague précédente conservée",
    ):
        assert fragment in message, (fragment, message)
    assert "example.org" not in message
    assert publish.current(settings.publication_dir) == live
    assert publish.published_month(settings.publication_dir) == GOOD
    status = publish.read_status(settings.publication_dir)
    assert status["dernier_rafraichissement"]["statut"] == "echec"
    assert status["dernier_rafraichissement"]["mois"] == BAD
    assert status["publication_en_ligne"]["mois"] == GOOD
    assert "lignes mal formées" in status["dernier_rafraichissement"]["motif"]
    assert _sources_snapshot(query) == before
    # refused before the long SIRENE read: the month never reached raw
    assert query("select count(*) from raw.sirene_etablissements where mois = ?", [BAD]) == [(0,)]
    assert _cli_reports_it_cleanly(caught.value, settings) == []


# (case, list header, declared [colonnes], fragments the message must contain)
NO_IDENTIFIER: list[tuple[str, list[str], str, list[str]]] = [
    (
        "colonne SIRET déclarée absente",
        ["Numéro", "Nom", "CP", "Ville"],
        NETWORK_COLUMNS,
        ["ressourceries.csv", "ligne 1", "« SIRET » (siret)", "absente", "Numéro"],
    ),
    (
        "ni identifiant ni nom dans le fichier",
        ["CP", "Ville", "Courriel"],
        NETWORK_COLUMNS,
        [
            "ressourceries.csv",
            "ligne 1",
            "« SIRET » (siret)",
            "« Nom » (nom)",
            "aucune colonne d'identifiant (siret, siren) ni de nom",
        ],
    ),
    (
        "ni identifiant ni nom déclarés",
        ["SIRET", "Nom", "CP", "Ville"],
        'code_postal = "CP"\ncommune = "Ville"',
        ["ressourceries.toml", "[colonnes]", "siret, siren ou nom"],
    ),
]


@pytest.mark.parametrize(
    ("case", "header", "colonnes", "fragments"), NO_IDENTIFIER, ids=[c[0] for c in NO_IDENTIFIER]
)
def test_network_list_without_identifier_is_refused_and_publication_kept(
    published_sources, settings, query, case, header, colonnes, fragments
):
    live, uls, ets = published_sources
    before = _sources_snapshot(query)
    rows = [[e["siret"], "Café", "94400", "VITRY"][: len(header)] for e in ets]
    write_network(settings.inbox_dir, csv_text(header, rows, sep=";"), colonnes=colonnes)
    write_stock(Path(settings.data_dir) / "sirene" / BAD, uls, ets)
    with pytest.raises(Exception) as caught:
        refresh.refresh(settings, BAD, run_id="sans-id")
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert publish.current(settings.publication_dir) == live
    assert publish.published_month(settings.publication_dir) == GOOD
    status = publish.read_status(settings.publication_dir)
    assert status["dernier_rafraichissement"]["statut"] == "echec"
    assert status["publication_en_ligne"]["mois"] == GOOD
    assert _sources_snapshot(query) == before  # the previous load of the list is kept
    assert _cli_reports_it_cleanly(caught.value, settings) == []
