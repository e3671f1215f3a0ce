"""Network member lists: declarations, every accepted format, raw and clean layers, bad inputs.

Everything runs on real files: lists written in each encoding and separator, an XLSX written by
polars, JSON, a list served over HTTP by a real server on 127.0.0.1, a real DuckDB file under
tmp_path with the bundled reference data, and the real ASP list of SIAE (2019).
"""

from __future__ import annotations

import csv
import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import polars as pl
import pytest
from siae_fixture import CASES, VERITE_COLUMNS, write_siae_sirene_fixture

from observatoire.cleaning import reseaux as reseaux_clean
from observatoire.cleaning.sirene import process_month
from observatoire.core import warehouse
from observatoire.core.errors import RejectRateError
from observatoire.sources import reseaux, sirene
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25
from observatoire.sources.reference import load_reference
from observatoire.sources.reseaux import NetworkListError, NetworkRejectRateError

TESTS = Path(__file__).resolve().parents[1]
REFERENCE = TESTS.parent / "data" / "reference"
SIAE_CSV = TESTS / "fixtures" / "reseaux" / "siae_liste_asp_2019_07.csv"

# real, Luhn-valid SIRETs (from the SIAE list), and one with a leading zero a spreadsheet drops
SIRET_A = "41071771400035"
SIRET_B = "34356040500023"
SIRET_ZERO = "01675069700050"

HEADER = ["SIRET", "Nom de la structure", "Num", "Voie", "CP", "Ville", "Courriel", "Téléphone"]
ROWS = [
    [SIRET_A, "Régie de quartier « Ivry »", "12", "rue Marat", "94200", "IVRY SUR SEINE",
     "contact@regie.example", "01 45 21 00 00"],
    [SIRET_B, "Ressourcerie; la Collecte", "3", "av. de Verdun", "94470", "BOISSY ST LEGER",
     "info@collecte.example", "06 12 34 56 78"],
]  # fmt: skip

DECLARATION = """\
nom = "Réseau test"
type = "ressourcerie"
fichier = "{fichier}"
{extra}
[colonnes]
siret = "SIRET"
nom = "Nom de la structure"
numero_voie = "Num"
voie = "Voie"
code_postal = "CP"
commune = "Ville"
"""


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with warehouse.connect(tmp_path / "warehouse" / "obs.duckdb") as c:
        load_reference(c, REFERENCE)
        yield c


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox" / "reseaux"
    folder.mkdir(parents=True)
    return tmp_path / "inbox"


def declare(
    inbox: Path, reseau: str, fichier: str, extra: str = "", text: str | None = None
) -> Path:
    path = inbox / "reseaux" / f"{reseau}.toml"
    path.write_text(
        text if text is not None else DECLARATION.format(fichier=fichier, extra=extra),
        encoding="utf-8",
    )
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], sep: str, enc: str) -> Path:
    with path.open("w", encoding=enc, newline="") as f:
        csv.writer(f, delimiter=sep, lineterminator="\r\n").writerows([header, *rows])
    return path


def run(
    con, decl: Path, tmp_path: Path, **kw
) -> tuple[reseaux.NetworkIngest, reseaux_clean.NetworkClean]:
    ingest = reseaux.ingest_network(con, decl, download_dir=tmp_path / "sources", **kw)
    return ingest, reseaux_clean.clean_network(con, decl)


def members(con, reseau: str) -> list[dict]:
    return (
        con.execute(
            "select * from clean.reseaux_membres where reseau = $r order by ligne", {"r": reseau}
        )
        .pl()
        .to_dicts()
    )


# --------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------


def toml(body: str, *, fichier: str = "a.csv", colonnes: str = 'nom = "N"') -> str:
    return f'nom = "x"\ntype = "siae"\nfichier = "{fichier}"\n{body}\n[colonnes]\n{colonnes}\n'


@pytest.mark.parametrize(
    ("stem", "text", "expected"),
    [
        ("ok", toml("").replace('"siae"', '"club"'), "type « club »"),
        ("Bad-Name", toml(""), "nom de fichier"),
        ("ok", toml('separteur = ";"'), "separteur"),
        ("ok", toml("", colonnes='sirett = "S"\nnom = "N"'), "sirett"),
        ("ok", toml("", colonnes='commune = "V"'), "au moins siret, siren ou nom"),
        ("ok", toml("").replace('nom = "x"\n', ""), "« nom » obligatoire"),
        ("ok", toml('separateur = "|"'), "séparateur"),
        ("ok", toml("", fichier="a.ods"), "format"),
        ("ok", toml('feuille = "F"'), "feuille"),
        ("ok", toml("").replace("[colonnes]", "[colonnes"), "TOML invalide"),
    ],
)
def test_bad_declarations_are_refused_naming_the_file(
    tmp_path: Path, stem: str, text: str, expected: str
) -> None:
    path = tmp_path / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NetworkListError) as err:
        reseaux.load_declaration(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_declaration_defaults(inbox: Path) -> None:
    decl = reseaux.load_declaration(declare(inbox, "siae_asp", "https://h.example/l.json?x=1"))
    assert (decl.reseau, decl.type, decl.format, decl.is_url) == (
        "siae_asp",
        "ressourcerie",
        "json",
        True,
    )
    assert decl.colonnes["commune"] == "Ville"


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_csv_in_each_encoding_and_separator(
    con, inbox: Path, tmp_path: Path, encoding: str, separator: str
) -> None:
    write_csv(inbox / "reseaux" / "liste.csv", HEADER, ROWS, separator, encoding)
    ingest, cleaned = run(con, declare(inbox, "ressourceries", "liste.csv"), tmp_path)
    assert (ingest.encodage, ingest.separateur) == (encoding, separator)
    assert (ingest.lignes_fichier, ingest.lignes_lues, ingest.lignes_mal_formees) == (3, 2, 0)
    rows = members(con, "ressourceries")
    assert [r["nom"] for r in rows] == ["Régie de quartier « Ivry »", "Ressourcerie; la Collecte"]
    assert [r["membre_id"] for r in rows] == ["ressourceries:2", "ressourceries:3"]
    assert [r["siret_declare"] for r in rows] == [SIRET_A, SIRET_B]
    assert [r["code_commune"] for r in rows] == ["94041", "94004"]
    assert [r["libelle_commune"] for r in rows] == ["Ivry-sur-Seine", "Boissy-Saint-Léger"]
    assert rows[0]["adresse"] == "12 rue Marat"
    assert rows[0]["type_reseau"] == "ressourcerie"
    assert cleaned.nb_membres == 2 and cleaned.nb_code_commune == 2 and cleaned.nb_rejets == 0
    lecture = con.execute(
        "select encodage, separateur, lignes_lues, colonnes from raw.reseaux_lectures"
    ).fetchone()
    assert lecture == (encoding, separator, 2, HEADER)


def test_declared_encoding_and_separator_are_obeyed(con, inbox: Path, tmp_path: Path) -> None:
    # a cp1252 file that happens to be valid UTF-8 would be read as UTF-8 if not declared
    write_csv(inbox / "reseaux" / "liste.txt", HEADER, ROWS, ";", "cp1252")
    decl = declare(inbox, "r", "liste.txt", 'encodage = "cp1252"\nseparateur = ";"')
    ingest, _ = run(con, decl, tmp_path)
    assert (ingest.encodage, ingest.separateur, ingest.lignes_lues) == ("cp1252", ";", 2)


def test_xlsx_every_cell_as_text(con, inbox: Path, tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "SIRET": [int(SIRET_A), int(SIRET_ZERO), None],  # numbers, as spreadsheets hold them
            "Nom de la structure": ["Régie", "Zéro perdu", None],
            "Num": [12, None, None],
            "Voie": ["rue Marat", None, None],
            "CP": [94200, 1500, None],  # the leading zero of 01500 is lost
            "Ville": ["Ivry-sur-Seine", "Ambérieu-en-Bugey", None],
        }
    )
    path = inbox / "reseaux" / "membres.xlsx"
    frame.write_excel(path, worksheet="Adhérents")
    decl = declare(inbox, "xl", "membres.xlsx", 'feuille = "Adhérents"')
    ingest, cleaned = run(con, decl, tmp_path)
    assert (ingest.format, ingest.lignes_lues) == ("xlsx", 2)  # the empty row is not a member
    rows = members(con, "xl")
    assert [r["ligne"] for r in rows] == [2, 3]  # sheet rows
    assert [r["siret_declare"] for r in rows] == [SIRET_A, SIRET_ZERO]
    assert [r["code_postal"] for r in rows] == ["94200", "01500"]
    assert [r["code_commune"] for r in rows] == ["94041", "01004"]
    assert rows[0]["adresse"] == "12 rue Marat"
    assert cleaned.nb_rejets == 0


def test_xlsx_unknown_sheet_is_named(con, inbox: Path, tmp_path: Path) -> None:
    pl.DataFrame({"Nom de la structure": ["a"]}).write_excel(inbox / "reseaux" / "m.xlsx")
    decl = declare(
        inbox,
        "xl",
        "",
        text='nom = "x"\ntype = "autre"\nfichier = "m.xlsx"\nfeuille = "Nope"\n'
        '[colonnes]\nnom = "Nom de la structure"\n',
    )
    with pytest.raises(NetworkListError, match="m.xlsx, feuille « Nope »"):
        reseaux.ingest_network(con, decl, download_dir=tmp_path / "sources")


JSON_DECL = """\
nom = "Annuaire CRESS"
type = "cress"
fichier = "{fichier}"
{extra}
[colonnes]
siren = "siren"
nom = "raison_sociale"
adresse = "adresse"
commune = "code_insee"
categorie = "famille"
"""

JSON_ITEMS = [
    {"siren": 343560405, "raison_sociale": "Côtière Avenir", "adresse": "7 av. des Écoles",
     "code_insee": "01376", "famille": "association", "contact": {"mail": "a@b.example"}},
    "pas un objet",
    {"siren": "410 717 714", "raison_sociale": "Aintérim'air", "code_insee": "Ambérieu-en-Bugey",
     "famille": "coopérative", "actif": True},
]  # fmt: skip


@pytest.mark.parametrize("under_key", [None, "membres"])
def test_json_list_or_list_under_a_key(con, inbox: Path, tmp_path: Path, under_key) -> None:
    data = JSON_ITEMS if under_key is None else {"total": 3, under_key: JSON_ITEMS}
    (inbox / "reseaux" / "annuaire.json").write_text(json.dumps(data), encoding="utf-8")
    extra = f'cle_json = "{under_key}"' if under_key else ""
    decl = declare(inbox, "cress", "", text=JSON_DECL.format(fichier="annuaire.json", extra=extra))
    ingest, cleaned = run(con, decl, tmp_path)
    assert (ingest.lignes_lues, ingest.lignes_mal_formees) == (2, 1)
    # ligne = position of the object in the list + 1 (line 1 stands for the keys)
    assert con.execute("select ligne, motif from raw.reseaux_rejets_lecture").fetchall() == [
        (3, "élément n° 2 : objet attendu, str")
    ]
    raw = dict(
        con.execute(
            "select colonne, valeur from raw.reseaux_cellules where ligne = 2 order by colonne"
        ).fetchall()
    )
    assert raw["contact"] == '{"mail": "a@b.example"}' and raw["siren"] == "343560405"
    rows = members(con, "cress")
    assert [r["ligne"] for r in rows] == [2, 4]
    assert [r["siren_declare"] for r in rows] == ["343560405", "410717714"]
    assert [r["code_commune"] for r in rows] == ["01376", "01004"]
    assert [r["categorie"] for r in rows] == ["association", "coopérative"]
    assert rows[0]["adresse"] == "7 av. des Écoles"
    assert cleaned.nb_rejets == 0


def test_json_without_the_key_says_which_keys_exist(con, inbox: Path, tmp_path: Path) -> None:
    (inbox / "reseaux" / "a.json").write_text(json.dumps({"data": []}), encoding="utf-8")
    decl = declare(inbox, "cress", "", text=JSON_DECL.format(fichier="a.json", extra=""))
    with pytest.raises(NetworkListError, match="déclarer cle_json parmi : data"):
        reseaux.ingest_network(con, decl, download_dir=tmp_path / "sources")


# --------------------------------------------------------------------------------------------
# URL source, served by a real HTTP server
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_url_source_is_downloaded_then_read(con, inbox: Path, tmp_path: Path, http_root) -> None:
    root, base = http_root
    write_csv(root / "export.csv", HEADER, ROWS, ";", "cp1252")
    url = f"{base}/export.csv"
    ingest, cleaned = run(con, declare(inbox, "ressourceries", url), tmp_path)
    assert (tmp_path / "sources" / "reseaux" / "ressourceries" / "export.csv").is_file()
    assert (ingest.source, ingest.fichier_source, ingest.lignes_lues) == (url, "export.csv", 2)
    assert con.execute(
        "select source, fichier_source, nb_membres from clean.reseaux"
    ).fetchall() == [(url, "export.csv", 2)]
    missing = declare(inbox, "autre", f"{base}/absent.csv")
    with pytest.raises(NetworkListError, match="absent.csv"):
        reseaux.ingest_network(con, missing, download_dir=tmp_path / "sources")


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def test_missing_declared_column_names_file_line_and_column(
    con, inbox: Path, tmp_path: Path
) -> None:
    header = ["Numéro SIRET", *HEADER[1:]]
    write_csv(inbox / "reseaux" / "liste.csv", header, ROWS, ";", "utf-8")
    with pytest.raises(NetworkListError) as err:
        reseaux.ingest_network(
            con, declare(inbox, "r", "liste.csv"), download_dir=tmp_path / "sources"
        )
    message = str(err.value)
    assert "fichier liste.csv, ligne 1 : colonne déclarée « SIRET » (siret) absente" in message
    assert "colonnes présentes : Numéro SIRET, Nom de la structure" in message
    assert "r.toml" in message


def test_list_without_identifier_nor_name_column(con, inbox: Path, tmp_path: Path) -> None:
    """The bad-input case "a network list with no identifier column": refused, nothing written."""
    write_csv(inbox / "reseaux" / "liste.csv", HEADER, ROWS, ";", "utf-8")
    decl = declare(inbox, "r", "liste.csv")
    run(con, decl, tmp_path)
    write_csv(
        inbox / "reseaux" / "liste.csv",
        ["Structure", "Ville", "Courriel"],
        [["La Collecte", "Ivry", "a@b.example"]],
        ";",
        "utf-8",
    )
    with pytest.raises(NetworkListError) as err:
        run(con, decl, tmp_path)
    message = str(err.value)
    assert "« SIRET » (siret), « Nom de la structure » (nom)" in message
    assert "aucune colonne d'identifiant (siret, siren) ni de nom" in message
    # the previous load is still there
    assert con.execute("select count(distinct ligne) from raw.reseaux_cellules").fetchone() == (2,)
    assert len(members(con, "r")) == 2


BROKEN = (
    "SIRET;Nom de la structure;Num;Voie;CP;Ville\r\n"
    f"{SIRET_A};Régie;12;rue Marat;94200;Ivry-sur-Seine\r\n"  # 2
    f"{SIRET_B};Trop;de;champs;94470;Boissy;en trop\r\n"  # 3: 7 fields
    f'{SIRET_B};"Adresse\r\nsur deux lignes";3;av;94470;Boissy-Saint-Léger\r\n'  # 4-5: fine
    f'{SIRET_A};"Guillemet jamais fermé;1;rue;94200;Ivry\r\n'  # 6: unterminated quote
    "\r\n"  # 7: blank
    f"{SIRET_B};Après la casse;2;rue;94470;Boissy-Saint-Léger\r\n"  # 8: must survive
    f"{SIRET_A};Pas assez\r\n"  # 9: 2 fields
)


def test_broken_rows_are_quarantined_with_their_line(con, inbox: Path, tmp_path: Path) -> None:
    (inbox / "reseaux" / "liste.csv").write_text(BROKEN, encoding="utf-8", newline="")
    text = DECLARATION.format(fichier="liste.csv", extra="")
    text = text.replace('numero_voie = "Num"\n', "").replace('voie = "Voie"\n', "")
    decl = declare(inbox, "r", "", text=text)
    ingest, _ = run(con, decl, tmp_path)
    assert (ingest.lignes_lues, ingest.lignes_mal_formees, ingest.lignes_fichier) == (3, 3, 9)
    rejects = con.execute(
        "select ligne, motif from raw.reseaux_rejets_lecture order by 1"
    ).fetchall()
    assert [line for line, _ in rejects] == [3, 6, 9]
    assert rejects[0][1] == "nombre de champs : 7 au lieu de 6"
    assert rejects[1][1].startswith("guillemet non fermé : l'enregistrement court de la ligne 6")
    assert rejects[2][1] == "nombre de champs : 2 au lieu de 6"
    assert [r["ligne"] for r in members(con, "r")] == [2, 4, 8]
    assert members(con, "r")[1]["nom"] == "Adresse sur deux lignes"
    # contents of broken rows are not copied (they may hold contact data)
    assert "Trop" not in str(con.execute("select * from raw.reseaux_rejets_lecture").fetchall())


def test_reject_rate_above_threshold_refuses_the_list(con, inbox: Path, tmp_path: Path) -> None:
    write_csv(inbox / "reseaux" / "liste.csv", HEADER, ROWS, ";", "utf-8")
    decl = declare(inbox, "r", "liste.csv")
    run(con, decl, tmp_path, max_reject_rate=0.1)
    (inbox / "reseaux" / "liste.csv").write_text(BROKEN, encoding="utf-8", newline="")
    with pytest.raises(NetworkRejectRateError) as err:
        reseaux.ingest_network(con, decl, download_dir=tmp_path / "sources", max_reject_rate=0.1)
    assert isinstance(err.value, RejectRateError)
    assert "liste.csv : 3 enregistrement(s) mal formé(s) sur 6" in str(err.value)
    assert "lignes 3, 6, 9" in str(err.value)
    assert con.execute("select lignes_lues from raw.reseaux_lectures").fetchall() == [(2,)]


def test_undecodable_file_names_the_line(con, inbox: Path, tmp_path: Path) -> None:
    data = b"SIRET;Nom de la structure\r\n" + SIRET_A.encode() + b";Caf\x81\r\n"
    (inbox / "reseaux" / "liste.csv").write_bytes(data)
    decl = declare(inbox, "r", "", text='nom = "x"\ntype = "autre"\nfichier = "liste.csv"\n'
                   '[colonnes]\nnom = "Nom de la structure"\n')  # fmt: skip
    with pytest.raises(NetworkListError, match=r"liste.csv, ligne 2 : octet 0x81"):
        reseaux.ingest_network(con, decl, download_dir=tmp_path / "sources")


def test_missing_local_file(con, inbox: Path, tmp_path: Path) -> None:
    with pytest.raises(NetworkListError, match="liste « absent.csv » non obtenue"):
        reseaux.ingest_network(
            con, declare(inbox, "r", "absent.csv"), download_dir=tmp_path / "sources"
        )


# --------------------------------------------------------------------------------------------
# Clean layer
# --------------------------------------------------------------------------------------------


def test_contact_columns_never_leave_raw(con, inbox: Path, tmp_path: Path) -> None:
    write_csv(inbox / "reseaux" / "liste.csv", HEADER, ROWS, ";", "utf-8")
    run(con, declare(inbox, "r", "liste.csv"), tmp_path)
    raw_columns = {r[0] for r in con.execute("select colonne from raw.reseaux_cellules").fetchall()}
    assert {"Courriel", "Téléphone"} <= raw_columns  # raw keeps everything the file had
    for (table,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'clean'"
    ).fetchall():
        content = str(con.execute(f"select * from clean.{table}").fetchall())
        for secret in ("contact@regie.example", "info@collecte.example", "06 12 34 56 78", "01 45"):
            assert secret not in content, (table, secret)


def test_clean_rejects_keep_linkable_rows(con, inbox: Path, tmp_path: Path) -> None:
    bad_key = SIRET_A[:-1] + ("0" if SIRET_A[-1] != "0" else "1")
    rows = [
        [bad_key, "Clé fausse", "", "", "94200", "Ivry-sur-Seine", "", ""],  # 2 kept
        ["12 AB", "Siret illisible", "", "", "94200", "Ivry-sur-Seine", "", ""],  # 3 kept
        ["", "", "5", "rue X", "94200", "Ivry", "seul@contact.example", ""],  # 4 dropped
        [SIRET_B, "", "", "", "1500", "Atlantide-sur-Mer", "", ""],  # 5 kept, commune unknown
        ["343 560 405 00023", "Espaces", "", "", "94470", "", "", ""],  # 6 kept, no commune
    ]
    write_csv(inbox / "reseaux" / "liste.csv", HEADER, rows, ";", "utf-8")
    _, cleaned = run(con, declare(inbox, "r", "liste.csv"), tmp_path)
    kept = members(con, "r")
    assert [r["ligne"] for r in kept] == [2, 3, 5, 6]
    assert [r["siret_declare"] for r in kept] == [bad_key, None, SIRET_B, SIRET_B]
    assert kept[2]["code_postal"] == "01500" and kept[2]["code_commune"] is None
    assert kept[2]["libelle_commune"] == "Atlantide-sur-Mer"
    rejects = con.execute(
        "select ligne, colonne, motif from clean.reseaux_rejets order by ligne, colonne"
    ).fetchall()
    assert rejects == [
        (2, "SIRET", f"SIRET {bad_key} : clé de contrôle invalide (conservé, à rapprocher)"),
        (3, "SIRET", "SIRET « 12 AB » illisible : 14 chiffres attendus"),
        (4, None, "ni SIRET/SIREN utilisable ni nom : ligne non rapprochable, écartée"),
        (5, "Ville", "commune « Atlantide-sur-Mer » (code postal 01500) non reconnue"),
        (6, "Ville", "commune absente"),
    ]
    assert (cleaned.nb_membres, cleaned.nb_ecartes, cleaned.nb_rejets) == (4, 1, 5)


def test_reingest_replaces_only_that_network(con, inbox: Path, tmp_path: Path) -> None:
    write_csv(inbox / "reseaux" / "a.csv", HEADER, ROWS, ";", "utf-8")
    write_csv(inbox / "reseaux" / "b.csv", HEADER, ROWS, ",", "utf-8")
    run(con, declare(inbox, "a", "a.csv"), tmp_path)
    run(con, declare(inbox, "b", "b.csv"), tmp_path)
    write_csv(inbox / "reseaux" / "a.csv", HEADER, ROWS[1:], ";", "utf-8")
    run(con, declare(inbox, "a", "a.csv"), tmp_path)
    run(con, declare(inbox, "a", "a.csv"), tmp_path)  # twice: same state
    assert [r["nom"] for r in members(con, "a")] == ["Ressourcerie; la Collecte"]
    assert len(members(con, "b")) == 2
    counts = con.execute(
        "select reseau, count(*) from raw.reseaux_lectures group by 1 order by 1"
    ).fetchall()
    assert counts == [("a", 1), ("b", 1)]
    assert con.execute("select reseau, nb_membres from clean.reseaux order by 1").fetchall() == [
        ("a", 1),
        ("b", 2),
    ]


def test_ingest_all_and_clean_all_go_on_past_a_broken_list(
    con, inbox: Path, tmp_path: Path
) -> None:
    write_csv(inbox / "reseaux" / "b.csv", HEADER, ROWS, ";", "utf-8")
    declare(inbox, "b_bon", "b.csv")
    declare(inbox, "a_casse", "absent.csv")
    with pytest.raises(NetworkListError) as err:
        reseaux.ingest_all(con, inbox, download_dir=tmp_path / "sources", max_reject_rate=0.05)
    assert "1 liste(s) de réseau refusée(s) sur 2" in str(err.value)
    assert "a_casse" in str(err.value)
    (inbox / "reseaux" / "a_casse.toml").unlink()
    assert [c.reseau for c in reseaux_clean.clean_all(con, inbox)] == ["b_bon"]
    assert len(members(con, "b_bon")) == 2


def test_clean_before_ingest_is_an_error(con, inbox: Path) -> None:
    with pytest.raises(NetworkListError, match="jamais lue"):
        reseaux_clean.clean_network(con, declare(inbox, "r", "liste.csv"))


# --------------------------------------------------------------------------------------------
# The real SIAE list (ASP, July 2019)
# --------------------------------------------------------------------------------------------

SIAE_DECL = f"""\
nom = "Liste des SIAE conventionnées (ASP)"
type = "siae"
fichier = "{SIAE_CSV}"
[colonnes]
siret = "SIRET"
nom = "DENOMINATION_SOCIALE"
numero_voie = "NUM_RUE"
voie = "NOM_RUE"
code_postal = "CODE_POSTAL"
commune = "COMMUNE"
categorie = "MESURE"
"""
# Measured with observatoire.cleaning.adresses.CommuneResolver on 2026 COG: 3,901 of 3,932 rows. The
# 31 others: "VANDOEUVRE" (œ), communes merged or renamed since 2019, Saint-Pierre-et-Miquelon
# and Saint-Martin (outside the COG's communes).
SIAE_RESOLVED_MIN = 3_890


def test_real_siae_list_reads_in_full(con, inbox: Path, tmp_path: Path) -> None:
    decl = declare(inbox, "siae_asp", "", text=SIAE_DECL)
    ingest, cleaned = run(con, decl, tmp_path, max_reject_rate=0.0)
    assert (ingest.encodage, ingest.separateur) == ("utf-8", ";")
    assert (ingest.lignes_fichier, ingest.lignes_lues, ingest.lignes_mal_formees) == (3933, 3932, 0)
    assert (cleaned.lignes, cleaned.nb_membres, cleaned.nb_ecartes) == (3932, 3932, 0)
    print(f"SIAE : {cleaned.nb_code_commune} lignes sur 3932 avec un code commune")
    assert cleaned.nb_code_commune >= SIAE_RESOLVED_MIN
    by_line = {r["ligne"]: r for r in members(con, "siae_asp")}
    assert by_line[3]["code_commune"] == "01376"  # ST MAURICE DE BEYNOST
    assert by_line[3]["adresse"] == "7 Avenue DES ECOLES"
    assert by_line[3]["categorie"] == "ACI"
    communes = {(r["nom"], r["code_commune"]) for r in by_line.values()}
    with SIAE_CSV.open(encoding="utf-8") as f:
        listed = list(csv.DictReader(f, delimiter=";"))
    for name in ("BOISSY ST LEGER", "IVRY SUR SEINE"):
        row = next(r for r in listed if r["COMMUNE"] == name)
        assert (
            row["DENOMINATION_SOCIALE"],
            {"BOISSY ST LEGER": "94004"}.get(name, "94041"),
        ) in communes
    mesures = dict(
        con.execute("select categorie, count(*) from clean.reseaux_membres group by 1").fetchall()
    )
    assert mesures == {"ACI": 1978, "EI": 992, "AI": 666, "ETTI": 296}
    assert con.execute(
        "select count(*) from clean.reseaux_rejets where colonne = 'SIRET'"
    ).fetchone() == (0,)


# --------------------------------------------------------------------------------------------
# SIRENE fixture derived from the SIAE list
# --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_siae_sirene_fixture_matches_its_truth(tmp_path: Path) -> None:
    mois = "2026-03"
    truth = write_siae_sirene_fixture(SIAE_CSV, tmp_path / "a", mois, departements=("94", "93"))
    again = write_siae_sirene_fixture(SIAE_CSV, tmp_path / "b", mois, departements=("94", "93"))
    for name in ("StockEtablissement_utf8.csv", "StockUniteLegale_utf8.csv", "verite.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (again.cases, again.rows, again.leurres) == (truth.cases, truth.rows, truth.leurres)

    # INSEE's layouts, recognised by the reader the refresh uses
    assert (
        sirene.detect("etablissements", truth.etablissements).columns == ETABLISSEMENT_V3_11_NAF25
    )
    assert sirene.detect("unites_legales", truth.unites_legales).columns == UNITE_LEGALE_V3_11_NAF25

    with warehouse.connect(tmp_path / "w.duckdb") as con:
        load_reference(con, REFERENCE)
        for kind, path in (
            ("etablissements", truth.etablissements),
            ("unites_legales", truth.unites_legales),
        ):
            month = process_month(con, kind, path, mois, communes_table=None)
            assert month.read.malformed == 0
            cleaned = month.cleaned
            assert cleaned.rows_rejected == 0, cleaned.rejects_by_reason
        etabs = {
            r[0]: r[1:]
            for r in con.execute(
                "select identifiant, etat_administratif, coalesce(code_commune_fichier, "
                "code_commune), statut_diffusion from raw.sirene_etablissements"
            ).fetchall()
        }
        units = dict(
            con.execute(
                "select identifiant, etat_administratif from raw.sirene_unites_legales"
            ).fetchall()
        )

    verite = read_rows(truth.verite)
    assert tuple(verite[0]) == VERITE_COLUMNS
    assert len(verite) == truth.rows == sum(truth.cases.values())
    assert {v["cas"] for v in verite} <= set(CASES)
    assert truth.cases["actif"] > truth.cases["demenage"] > 0
    assert truth.cases["absent"] > 0 and truth.cases["cessee"] > 0
    with SIAE_CSV.open(encoding="utf-8") as f:
        listed = {i: r for i, r in enumerate(csv.DictReader(f, delimiter=";"), start=2)}
    for v in verite:
        listed_row = listed[int(v["ligne"])]
        assert listed_row["SIRET"] == v["siret_liste"]
        here, expected, case = etabs.get(v["siret_liste"]), v["siret_attendu"], v["cas"]
        if case == "actif":
            assert expected == v["siret_liste"] and here[0] == "A"
            assert units[expected[:9]] == "A"
        elif case == "demenage":
            assert here[0] == "F" and etabs[expected][0] == "A"
            assert expected[:9] == v["siret_liste"][:9] and expected != v["siret_liste"]
            assert etabs[expected][1] == here[1]  # same commune
        elif case == "cessee":
            assert expected == v["siret_liste"] and here[0] == "F"
            assert units[expected[:9]] == "C"
        elif case in ("absent", "hors_fixture"):
            assert expected == "" and here is None
        if expected:
            assert here[2] == v["diffusion"]
            assert here[1][:2] in ("93", "94")
    # decoys: establishments of legal units absent from the list
    listed_sirens = {r["SIRET"][:9] for r in listed.values()}
    decoys = [s for s in etabs if s[:9] not in listed_sirens]
    assert len(decoys) == truth.leurres > 0
    assert truth.etablissements_ecrits == len(etabs)
    assert truth.unites_legales_ecrites == len(units)
    # P units read "[ND]" where INSEE masks
    nd = [r for r in read_rows(truth.unites_legales) if r["statutDiffusionUniteLegale"] == "P"]
    assert nd and all(r["denominationUniteLegale"] == "[ND]" for r in nd)


def test_a_withdrawn_declaration_withdraws_its_network(con, inbox: Path, tmp_path: Path) -> None:
    write_csv(inbox / "reseaux" / "a.csv", HEADER, ROWS, ";", "utf-8")
    declare(inbox, "a", "a.csv")
    declare(inbox, "b", "a.csv")
    sources = tmp_path / "sources"
    reseaux.ingest_all(con, inbox, download_dir=sources, max_reject_rate=0.05)
    reseaux_clean.clean_all(con, inbox)
    assert {len(members(con, "a")), len(members(con, "b"))} == {2}
    (inbox / "reseaux" / "b.toml").unlink()
    reseaux.ingest_all(con, inbox, download_dir=sources, max_reject_rate=0.05)
    reseaux_clean.clean_all(con, inbox)
    for schema, tables in (("raw", reseaux.RAW_TABLES), ("clean", reseaux.CLEAN_TABLES)):
        for table in tables:
            left = con.execute(f"select distinct reseau from {schema}.{table}").fetchall()
            assert left in ([("a",)], []), (table, left)
    assert len(members(con, "a")) == 2


def test_contacts_typed_in_a_name_or_an_address_are_masked(
    con, inbox: Path, tmp_path: Path
) -> None:
    rows = [
        [SIRET_A, "Régie (contact@regie.example)", "12", "rue Marat 01 45 21 00 00", "94200",
         "IVRY SUR SEINE", "", ""],
    ]  # fmt: skip
    write_csv(inbox / "reseaux" / "a.csv", HEADER, rows, ";", "utf-8")
    run(con, declare(inbox, "a", "a.csv"), tmp_path)
    (member,) = members(con, "a")
    assert member["nom"] == "Régie ([courriel masqué])"
    assert member["adresse"] == "12 rue Marat [téléphone masqué]"


def test_a_phone_number_in_the_siret_column_goes_no_further(
    con, inbox: Path, tmp_path: Path
) -> None:
    rows = [["06 12 34 56 78", "Régie", "12", "rue Marat", "94200", "IVRY SUR SEINE", "", ""]]
    write_csv(inbox / "reseaux" / "a.csv", HEADER, rows, ";", "utf-8")
    run(con, declare(inbox, "a", "a.csv"), tmp_path)
    (member,) = members(con, "a")
    assert member["siret_declare"] is None and member["nom"] == "Régie"
    (motif,) = con.execute("select motif from clean.reseaux_rejets").fetchone()
    assert motif == "SIRET « [téléphone masqué] » illisible : 14 chiffres attendus"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_declared_column_present_twice_is_refused(con, inbox: Path, tmp_path: Path, fmt) -> None:
    header = [*HEADER, "SIRET"]
    rows = [[*ROWS[0], SIRET_B]]
    if fmt == "csv":
        write_csv(inbox / "reseaux" / "a.csv", header, rows, ";", "utf-8")
    else:
        import xlsxwriter

        book = xlsxwriter.Workbook(inbox / "reseaux" / "a.xlsx")
        sheet = book.add_worksheet()
        for r, row in enumerate([header, *rows]):
            sheet.write_row(r, 0, row)
        book.close()
    with pytest.raises(NetworkListError, match="ligne 1 : colonne déclarée « SIRET » présente"):
        run(con, declare(inbox, "a", f"a.{fmt}"), tmp_path)
