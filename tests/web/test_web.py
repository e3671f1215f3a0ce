"""The web page and the JSON API, through FastAPI's TestClient, on a snapshot from a real refresh.

The snapshot comes from `web_fixture` (two months refreshed for real, with the real secrecy
mask): each figure is checked against its row, the number or « secret ». A copy with extra
secret marks (see that module's docstring) gives known secret cells.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import duckdb
import pytest
from fastapi.testclient import TestClient
from web_fixture import (  # noqa: F401 - the fixture is used by name
    GEO,
    MONTHS,
    SECRET_COMMUNE,
    web_data,
)

from observatoire.core import catalogue
from observatoire.publication import publish
from observatoire.web import geo
from observatoire.web.app import create_app
from observatoire.web.snapshot import normalise, served_indicators

MOIS = MONTHS[-1]
ENSEMBLE = "famille = 'ensemble' and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'"


@pytest.fixture(scope="module")
def client(web_data):  # noqa: F811
    with TestClient(create_app(web_data.publication, GEO)) as c:
        yield c


@pytest.fixture(scope="module")
def secret_client(web_data):  # noqa: F811
    with TestClient(create_app(web_data.secret_publication, GEO)) as c:
        yield c


def number(text: str) -> float:
    """A figure as the page prints it (« 1 234,5 »), back to a number."""
    return float(re.sub(r"[\s\u202f\u00a0%]", "", text).replace(",", "."))


def shown(value: object) -> str:
    """What a CSV cell holds for a snapshot value: the value, or « secret » when masked (NULL
    measure, once the secrecy stream's mask is in the snapshot)."""
    return "secret" if value is None else str(value)


def label(web_data, dimension: str, code: str) -> str:  # noqa: F811
    """A code's label, as the snapshot's `nomenclatures` table gives it to the page."""
    ((libelle,),) = web_data.query(
        "select libelle from indicators.nomenclatures where dimension = $d and code = $c",
        {"d": dimension, "c": code},
    )
    return libelle


def expect_figure(html: str, figure: str, value: object, statut: str, scale: float = 1) -> bool:
    """The page shows the snapshot's value, or « secret » (linked to its explanation) when the
    snapshot's row is secret; True when it was secret."""
    text = key_figure(html, figure)
    if statut != "publie":
        assert value is None, (figure, value)  # a secret row carries no measure
        assert text == "secret", (figure, text)
        return True
    assert value is not None and number(text) == pytest.approx(float(value) * scale, abs=0.05)
    return False


def fr(value: float) -> str:
    """A count of jobs as the page prints it: thousands split by a narrow no-break space."""
    return f"{value:,.0f}".replace(",", "\u202f")


def key_figure(html: str, figure: str) -> str:
    m = re.search(rf'id="chiffre-{figure}".*?class="obs-valeur"[^>]*>(.*?)</p>', html, re.S)
    assert m, figure
    return re.sub(r"<[^>]+>", "", m.group(1)).strip()


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("vitry", "/territoire/commune/94081"),
        ("VITRY-SUR-SEINE", "/territoire/commune/94081"),
        ("94081", "/territoire/commune/94081"),
        ("t12", "/territoire/ept/T12"),
        ("Grand-Orly", "/territoire/ept/T12"),
        ("grand orly seine bievre", "/territoire/ept/T12"),
        ("arcueil", "/territoire/commune/94003"),
    ],
)
def test_search_finds_a_territory_by_name_or_code(client, query, target):
    r = client.get("/recherche", params={"q": query}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == target


def test_search_lists_several_matches_and_says_when_none(client):
    r = client.get("/recherche", params={"q": "sur"})  # Vitry-sur-Seine, Ivry-sur-Seine
    assert r.status_code == 200
    assert "/territoire/commune/94081" in r.text and "/territoire/commune/94041" in r.text
    r = client.get("/recherche", params={"q": "zzz"})
    assert "Aucun territoire publié ne correspond" in r.text
    assert normalise("L'Haÿ-les-Roses") == "l hay les roses"


def test_key_figures_are_the_snapshots(client, web_data):  # noqa: F811
    secrets = 0
    for niveau, code in (("ept", "T12"), ("commune", "94081"), ("commune", "94041")):
        html = client.get(f"/territoire/{niveau}/{code}").text
        params = {"n": niveau, "c": code, "m": MOIS}
        where = f"niveau = $n and code_territoire = $c and mois = $m and {ENSEMBLE}"
        ((actifs, s_actifs),) = web_data.query(
            "select nb_etablissements, statut_secret from indicators.etablissements_actifs "
            f"where {where} and perimetre = 'ess'",
            params,
        )
        ((employeurs, s_employeurs),) = web_data.query(
            "select nb_etablissements_employeurs, statut_secret "
            f"from indicators.etablissements_employeurs where {where} and perimetre = 'ess'",
            params,
        )
        ((central, bas, haut, widened, s_emplois),) = web_data.query(
            "select emplois_central, emplois_bas, emplois_haut, fourchette_elargie, statut_secret "
            f"from indicators.emplois_salaries_estimes where {where} and perimetre = 'ess'",
            params,
        )
        ((part, part_widened, s_part),) = web_data.query(
            "select part_ess_emplois, fourchette_elargie, statut_secret "
            "from indicators.part_ess_emploi_prive "
            "where niveau = $n "
            "and code_territoire = $c and mois = $m and section_naf = 'ensemble' "
            "and tranche_effectifs = 'ensemble'",
            params,
        )
        secrets += expect_figure(html, "etablissements_ess", actifs, s_actifs)
        secrets += expect_figure(html, "employeurs_ess", employeurs, s_employeurs)
        # public tables (issue 13): exact jobs, never a widened interval
        assert not widened and not part_widened
        # jobs are printed rounded to the unit
        shown_jobs = None if central is None else round(central)
        secrets += expect_figure(html, "emplois_ess", shown_jobs, s_emplois)
        # a share of a territory with no private job is NULL: not a secret, « — »
        if part is None:
            assert key_figure(html, "part_emploi_prive") == "—"
        else:
            secrets += expect_figure(html, "part_emploi_prive", part, s_part, scale=100)
        api = client.get(f"/api/v1/territoires/{niveau}/{code}").json()
        figures = api["chiffres_cles"]
        assert figures["etablissements_ess"]["valeur"] == actifs
        assert figures["etablissements_ess"]["statut_secret"] == (
            "publie" if s_actifs == "publie" else "secret"
        )
        assert figures["emplois_ess"]["bas"]["valeur"] == bas
        assert figures["emplois_ess"]["fourchette_elargie"]["valeur"] == widened
        assert figures["emplois_ess"]["haut"]["valeur"] == haut
        assert f"<title>{api['libelle_territoire']} — Observatoire ESS</title>" in html
    # key figures come from the public Sirene tables: never secret, whatever the size
    assert secrets == 0


def test_evolution_shows_every_month_with_a_chart_and_its_text(client, web_data):  # noqa: F811
    html = client.get("/territoire/ept/T12").text
    rows = web_data.query(
        "select mois, nb_etablissements from indicators.etablissements_actifs where "
        f"niveau = 'ept' and perimetre = 'ess' and {ENSEMBLE} order by mois"
    )
    assert [m for m, _ in rows] == list(MONTHS)
    body = client.get("/territoire/ept/T12/tableaux/evolution.csv").text
    lines = list(csv.reader(io.StringIO(body)))
    assert [(r[0], r[1]) for r in lines[1:]] == [(m, shown(v)) for m, v in rows]
    published = [(m, v) for m, v in rows if v is not None]
    chart = 'role="img" aria-labelledby="graphique-titre graphique-desc"'
    if len(published) >= 2:
        assert chart in html
        assert f"{published[0][1]} en {published[0][0]}" in html  # the chart's text alternative
    else:  # no line through secret months: the table beside it says « secret »
        assert chart not in html
        assert 'id="bloc-evolution"' in html and "obs-secret" in html


def test_breakdown_csv_matches_the_snapshot_in_both_dialects(client, web_data):  # noqa: F811
    rows = web_data.query(
        "select famille, nb_etablissements from indicators.etablissements_actifs where "
        "niveau = 'ept' and mois = $m and perimetre = 'ess' and section_naf = 'ensemble' "
        "and tranche_effectifs = 'ensemble' and famille <> 'ensemble'",
        {"m": MOIS},
    )
    assert {f for f, _ in rows} == {"association", "cooperative"}
    standard = client.get("/territoire/ept/T12/tableaux/familles.csv")
    assert standard.headers["content-type"].startswith("text/csv")
    assert "attachment" in standard.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(standard.content.decode("utf-8"))))
    assert table[0][:2] == ["Famille de l'ESS", "Établissements actifs"]
    got = {r[0]: r[1] for r in table[1:]}
    expected = dict(rows)
    assert got[label(web_data, "famille", "association")] == shown(expected["association"])
    assert got[label(web_data, "famille", "cooperative")] == shown(expected["cooperative"])
    ((total,),) = web_data.query(
        "select nb_etablissements from indicators.etablissements_actifs where niveau = 'ept' "
        f"and mois = $m and perimetre = 'ess' and {ENSEMBLE}",
        {"m": MOIS},
    )
    assert got[label(web_data, "famille", "ensemble")] == shown(total)

    excel = client.get("/territoire/ept/T12/tableaux/familles.csv?format=excel").content
    assert excel.startswith(b"\xef\xbb\xbf")
    xtable = list(csv.reader(io.StringIO(excel[3:].decode("utf-8")), delimiter=";"))
    assert [r[0] for r in xtable] == [r[0] for r in table]
    # the same values, with a decimal comma
    assert [[v.replace(",", ".") for v in r] for r in xtable[1:]] == table[1:]
    assert all("." not in v for row in xtable[1:] for v in row[1:])
    assert client.get("/territoire/ept/T12/tableaux/inconnu.csv").status_code == 404


def test_every_table_has_caption_scope_download_and_definition_links(client):
    html = client.get("/territoire/ept/T12").text
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert len(tables) >= 5  # the fixture has no questionnaire nor network list
    for t in tables:
        assert "<caption" in t
        assert '<th scope="col">' in t
    ids = re.findall(r'href="/territoire/ept/T12/tableaux/([\w-]+)\.csv"', html)
    assert {"evolution", "familles", "sections", "tranches", "communes"} <= set(ids)
    for table_id in set(ids):
        assert client.get(f"/territoire/ept/T12/tableaux/{table_id}.csv").status_code == 200
    for anchor in set(re.findall(r'href="/methode#(\w+)"', html)):
        assert anchor == "secret" or anchor in catalogue.indicators()
    assert html.count("<h1") == 1
    assert '<html lang="fr"' in html


def test_method_page_defines_every_served_indicator_and_the_secret(client):
    html = client.get("/methode").text
    for name, indicator in served_indicators().items():
        assert f'id="{name}"' in html
        assert indicator.definition.replace("'", "&#39;") in html
    assert 'id="secret"' in html
    assert "moins de 3 structures" in html and "secret secondaire" in html
    assert "publics" in html and "confié" in html


def test_map_draws_each_commune_with_a_title_and_lists_those_without_outline(
    client,
    web_data,  # noqa: F811
):
    html = client.get("/territoire/ept/T12").text
    communes = web_data.query(
        "select code_commune from indicators.territoires "
        "where niveau = 'ept' and code_territoire = 'T12'"
    )
    assert len(communes) > 3  # every commune of the EPT, not only those with a unit
    paths = re.findall(r'<path d="[^"]+" fill="[^"]+"[^>]*data-code="(\d+)"><title>', html)
    assert sorted(paths) == sorted(c for (c,) in communes)
    assert 'aria-labelledby="carte-titre carte-desc"' in html
    assert "Légende" in html
    # a commune with no outline (not in Île-de-France) is listed, not dropped
    view = geo.draw(geo.Outlines(GEO), [("97101", "Les Abymes", geo_cell(5))])
    assert view is not None and view.without_outline == [("97101", "Les Abymes")]


def geo_cell(value: int):
    from observatoire.web.model import Cell

    return Cell(value)


def test_secret_cells_read_secret_everywhere(secret_client, web_data):  # noqa: F811
    html = secret_client.get(f"/territoire/commune/{SECRET_COMMUNE}").text
    assert key_figure(html, "etablissements_ess") == "secret"
    assert 'href="/methode#secret" class="obs-secret">secret</a>' in html
    body = secret_client.get(f"/territoire/commune/{SECRET_COMMUNE}/tableaux/familles.csv").text
    assert "secret" in body
    # the SCOP's section F is secret in the section breakdown of the EPT, not its neighbours
    sections = secret_client.get("/territoire/ept/T12/tableaux/sections.csv").text
    rows = {r[0]: r[1] for r in csv.reader(io.StringIO(sections))}
    assert rows[label(web_data, "section_naf", "F")] == "secret"
    # its neighbour S reads what the snapshot holds for it (the real mask's status)
    ((s_value,),) = web_data.query(
        "select nb_etablissements from indicators.etablissements_actifs where niveau = 'ept' "
        "and mois = $m and perimetre = 'ess' and famille = 'ensemble' and section_naf = 'S' "
        "and tranche_effectifs = 'ensemble'",
        {"m": MOIS},
        publication=web_data.secret_publication,
    )
    assert rows[label(web_data, "section_naf", "S")] == shown(s_value)
    api = secret_client.get(
        "/api/v1/indicateurs/etablissements_actifs",
        params={"code_territoire": SECRET_COMMUNE, "mois": MOIS, "famille": "ensemble"},
    ).json()
    assert api["secret_applique"] is True
    assert api["lignes"] and all(
        r["statut_secret"] == "primaire" and r["nb_etablissements"] is None for r in api["lignes"]
    )
    assert "alerte-secret" not in html


def test_a_snapshot_without_secrecy_columns_says_so(client, web_data, tmp_path):  # noqa: F811
    """The real snapshot carries the secrecy columns: no warning. The page still warns on a
    snapshot without them (an older publication), tested on a COPY whose columns are dropped."""
    assert "alerte-secret" not in client.get("/territoire/ept/T12").text
    pub = tmp_path / "publication"
    shutil.copytree(web_data.publication, pub, symlinks=True)
    con = duckdb.connect(str(pub / publish.CURRENT / "indicateurs.duckdb"))
    for column in ("statut_secret", "motif_secret"):
        con.execute(f"alter table indicators.etablissements_actifs drop column {column}")
    con.close()
    with TestClient(create_app(pub, GEO)) as c:
        html = c.get("/territoire/ept/T12").text
        assert "Secret statistique non appliqué" in html
        assert "etablissements_actifs" in html
        assert c.get("/api/v1/territoires/ept/T12").json()["secret_applique"] is False


def test_api_territories_search_and_filters(client, web_data):  # noqa: F811
    r = client.get("/api/v1/territoires", params={"q": "ivry"}).json()
    assert [t["code_territoire"] for t in r["territoires"]] == ["94041"]
    r = client.get("/api/v1/territoires", params={"niveau": "ept"}).json()
    # the EPT itself: the stock covers none of the units containing it, none is published
    assert r["territoires"] == [
        {
            "niveau": "ept",
            "code_territoire": "T12",
            "libelle_territoire": "Grand-Orly Seine Bièvre",
            "englobant": False,
        }
    ]
    assert not any(t["englobant"] for t in client.get("/api/v1/territoires").json()["territoires"])
    r = client.get(
        "/api/v1/indicateurs/emplois_salaries_estimes",
        params={
            "niveau": "ept",
            "code_territoire": "T12",
            "mois": MONTHS[0],
            "perimetre": "ess",
            "famille": "association",
            "section_naf": "ensemble",
            "tranche_effectifs": "ensemble",
        },
    )
    assert r.status_code == 200
    (row,) = r.json()["lignes"]
    ((central,),) = web_data.query(
        "select emplois_central from indicators.emplois_salaries_estimes where niveau = 'ept' "
        "and mois = $m and perimetre = 'ess' and famille = 'association' "
        "and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
        {"m": MONTHS[0]},
    )
    assert row["emplois_central"] == central and row["mois"] == MONTHS[0]
    # a REAL published number: the EPT's grand total of legal units, which the mask publishes
    ((siege, statut),) = web_data.query(
        "select nb_unites_legales, statut_secret from indicators.unites_legales_siege "
        "where niveau = 'ept' and mois = $m and perimetre = 'ensemble' and famille = 'ensemble' "
        "and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
        {"m": MOIS},
    )
    assert statut == "publie" and siege is not None and siege > 0
    r = client.get(
        "/api/v1/indicateurs/unites_legales_siege",
        params={"niveau": "ept", "mois": MOIS, "perimetre": "ensemble", "famille": "ensemble"},
    ).json()
    (total,) = [
        x
        for x in r["lignes"]
        if x["section_naf"] == "ensemble" and x["tranche_effectifs"] == "ensemble"
    ]
    assert total["nb_unites_legales"] == siege and total["statut_secret"] == "publie"
    page = client.get(
        "/api/v1/indicateurs/etablissements_actifs", params={"limite": 5, "decalage": 5}
    ).json()
    assert page["nb_lignes"] == 5


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/indicateurs/inconnu", 404, "Indicateur inconnu"),
        ("/api/v1/indicateurs/annuaire_ess", 404, "non servi"),
        ("/api/v1/indicateurs/etablissements_actifs?code_territoire=99999", 404, "Territoire"),
        ("/api/v1/indicateurs/etablissements_actifs?niveau=canton", 404, "Niveau inconnu"),
        ("/api/v1/indicateurs/etablissements_actifs?mois=2026-13", 422, "Paramètre invalide"),
        ("/api/v1/indicateurs/etablissements_actifs?mois=novembre", 422, "Paramètre invalide"),
        ("/api/v1/indicateurs/etablissements_actifs?couleur=bleu", 422, "Paramètre inconnu"),
        ("/api/v1/territoires/commune/99999", 404, "Territoire inconnu"),
        ("/territoire/commune/99999", 404, "Territoire inconnu"),
        # past any integer DuckDB takes: a 500 before the offset was bounded (issue 16)
        (
            "/api/v1/indicateurs/etablissements_actifs?decalage=9223372036854775808",
            422,
            "Paramètre invalide",
        ),
        ("/api/v1/territoires?decalage=9223372036854775808", 422, "Paramètre invalide"),
    ],
)
def test_bad_requests_get_a_french_answer(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status
    assert words in r.text


def test_openapi_is_served_in_french_and_the_docs_page_works_offline(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    assert {"/api/v1/territoires", "/api/v1/territoires/{niveau}/{code}"} <= set(paths)
    assert "/api/v1/indicateurs/{nom}" in paths
    op = paths["/api/v1/indicateurs/{nom}"]["get"]
    assert "secret" in op["description"]
    assert any(p["name"] == "mois" and "AAAA-MM" in p["description"] for p in op["parameters"])
    html = client.get("/api").text
    assert "/api/v1/indicateurs/{nom}" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert client.get("/docs").status_code == 404  # no CDN-based Swagger page


def test_pages_load_no_asset_from_the_internet(client):
    for url in ("/", "/territoire/ept/T12", "/methode", "/api", "/recherche?q=sur"):
        html = client.get(url).text
        for ref in re.findall(r'(?:href|src)="([^"]+)"', html):
            assert ref.startswith(("/", "#")), (url, ref)
    css = client.get("/static/dsfr/dsfr.min.css").text
    for asset in {a.strip("\"'") for a in re.findall(r"url\(([^)]+)\)", css)}:
        if asset.startswith("data:"):
            continue
        assert not asset.startswith(("http:", "https:", "//")), asset
        assert client.get(f"/static/dsfr/{asset}").status_code == 200, asset


def test_no_p_unit_name_is_served_anywhere(client, secret_client, web_data):  # noqa: F811
    assert web_data.p_names and all("ZORGLUB" in n for n in web_data.p_names)
    territories = client.get("/api/v1/territoires").json()["territoires"]
    urls = ["/", "/methode", "/api", "/api/openapi.json", "/api/v1/indicateurs"]
    for t in territories:
        base = f"/territoire/{t['niveau']}/{t['code_territoire']}"
        urls += [base, f"/api/v1/territoires/{t['niveau']}/{t['code_territoire']}"]
        html = client.get(base).text
        for table_id in set(re.findall(r'tableaux/([\w-]+)\.csv"', html)):
            urls += [
                f"{base}/tableaux/{table_id}.csv",
                f"{base}/tableaux/{table_id}.csv?format=excel",
            ]
    for name in served_indicators():
        urls.append(f"/api/v1/indicateurs/{name}?limite=10000")
    for c in (client, secret_client):
        for url in urls:
            text = c.get(url).content.decode("utf-8", errors="replace").upper()
            for name in web_data.p_names:
                assert name.upper() not in text, (url, name)
            assert "ZORGLUB" not in text, url


def test_a_new_publication_is_served_without_restart(web_data, tmp_path):  # noqa: F811
    pub = tmp_path / "publication"
    shutil.copytree(web_data.publication, pub, symlinks=True)
    with TestClient(create_app(pub, GEO)) as c:
        before = key_figure(c.get("/territoire/ept/T12").text, "etablissements_ess")
        live = publish.current(pub)
        assert live is not None
        newer = pub / f"{live.name}_bis"
        shutil.copytree(live, newer)
        con = duckdb.connect(str(newer / "indicateurs.duckdb"))
        con.execute(
            "update indicators.etablissements_actifs set nb_etablissements = 987654, "
            "statut_secret = 'publie', motif_secret = null "
            f"where niveau = 'ept' and mois = $m and perimetre = 'ess' and {ENSEMBLE}",
            {"m": MOIS},
        )
        con.close()
        publish.switch_current(pub, newer)
        after = key_figure(c.get("/territoire/ept/T12").text, "etablissements_ess")
        assert before != after and number(after) == 987654
        # a failed refresh: the live publication stays, and the page says why
        publish.record_attempt(pub, "2026-12", "echec1", "fichier illisible")
        html = c.get("/").text
        assert "Dernier rafraîchissement en échec" in html
        assert "la publication en ligne reste celle de 2026-11" in html


def test_the_synthetic_warning_follows_the_manifest(web_data, tmp_path):  # noqa: F811
    pub = tmp_path / "publication"
    shutil.copytree(web_data.publication, pub, symlinks=True)
    with TestClient(create_app(pub, GEO)) as c:
        assert "alerte-synthetique" not in c.get("/").text
    manifest = publish.current(pub) / "manifest.json"  # type: ignore[operator]
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**data, "synthetique": True}), encoding="utf-8")
    with TestClient(create_app(pub, GEO)) as c:
        assert "Données synthétiques" in c.get("/territoire/ept/T12").text


def test_a_snapshot_older_than_its_territories_table_is_not_served(web_data, tmp_path):  # noqa: F811
    """Without `indicators.territoires` the page cannot tell which communes make a territory:
    it serves nothing rather than guess, until a refresh publishes the month again."""
    pub = tmp_path / "publication"
    shutil.copytree(web_data.publication, pub, symlinks=True)
    with duckdb.connect(str(web_data.snapshot_db(pub))) as con:
        con.execute("drop table indicators.territoires")
    with TestClient(create_app(pub, GEO)) as c:
        assert "Aucune publication" in c.get("/").text
        assert c.get("/api/v1/territoires").status_code == 503


def test_no_publication_yet(tmp_path):
    with TestClient(create_app(tmp_path / "vide", GEO)) as c:
        assert "Aucune publication" in c.get("/").text
        assert c.get("/api/v1/territoires").status_code == 503


def test_the_page_command_defaults_to_localhost():
    from observatoire.cli import build_parser, cmd_page

    args = build_parser().parse_args(["page"])
    assert (args.hote, args.port, args.func) == ("127.0.0.1", 8000, cmd_page)


def test_needs_and_networks_tables_show_the_snapshot_rows(web_data, tmp_path):  # noqa: F811
    """The fixture has no questionnaire nor network list: rows shaped like a real refresh's
    (the demo's columns) are added to a COPY of its snapshot, one of them secret."""
    pub = tmp_path / "publication"
    shutil.copytree(web_data.publication, pub, symlinks=True)
    con = duckdb.connect(str(pub / publish.CURRENT / "indicateurs.duckdb"))
    t12 = {"mois": MOIS, "niveau": "ept", "code_territoire": "T12"}
    t12["libelle_territoire"] = "Grand-Orly Seine Bièvre"
    ens = {"famille": "ensemble", "section_naf": "ensemble", "tranche_effectifs": "ensemble"}
    rows = {
        "taux_reponse": [
            {
                **t12,
                **ens,
                "vague": "2026-printemps",
                "nb_etablissements_ess": 25,
                "nb_repondants": 5,
                "taux_reponse": 0.2,
                "nb_repondants_hors_ess": 1,
            },
        ],
        "besoins_cites": [
            {
                **t12,
                **ens,
                "vague": "2026-printemps",
                "besoin": "locaux",
                "nb_repondants": 5,
                "nb_citant": 3,
                "part_citant": 0.6,
            },
            {
                **t12,
                **ens,
                "vague": "2026-printemps",
                "besoin": "formation",
                "nb_repondants": 5,
                "nb_citant": 1,
                "part_citant": 0.2,
            },
        ],
        "reseaux_couverture": [
            {
                **t12,
                "reseau": "ressourceries",
                "type_reseau": "ressourcerie",
                "nb_membres": 4,
                "nb_trouves_sirene": 4,
                "nb_actifs": 4,
                "nb_fermes": 0,
                "nb_ess": 4,
                "nb_hors_ess": 0,
                "nb_non_trouves": 0,
                "emplois_bas": 10,
                "emplois_central": 14.5,
                "emplois_haut": 19,
                "nb_etablissements_emplois": 3,
                "emplois_max_unite": 7.5,
            },
        ],
        "ressourceries": [
            {
                **t12,
                "nb_ressourceries": 4,
                "emplois_bas": 10,
                "emplois_central": 14.5,
                "emplois_haut": 19,
                "nb_etablissements_emplois": 3,
                "emplois_max_unite": 7.5,
            },
        ],
    }
    for table, items in rows.items():
        for item in items:
            names = ", ".join(item)
            values = ", ".join(f"${k}" for k in item)
            con.execute(f"insert into indicators.{table} ({names}) values ({values})", item)
    # the least-cited need is secret, as the secrecy stream would mark it
    con.execute(
        "update indicators.besoins_cites set statut_secret = case when besoin = 'formation' "
        "then 'primaire' else 'publie' end, motif_secret = case when besoin = 'formation' "
        "then 'frequence' end, nb_citant = case when besoin = 'formation' then null "
        "else nb_citant end"
    )
    con.close()
    with TestClient(create_app(pub, GEO)) as c:
        html = c.get("/territoire/ept/T12").text
        assert "Aucune vague de questionnaire" not in html
        needs = list(
            csv.reader(io.StringIO(c.get("/territoire/ept/T12/tableaux/besoins.csv").text))
        )
        assert needs[1] == ["2026-printemps", "Locaux", "5", "3", "0.6"]
        assert needs[2][:2] == ["2026-printemps", "Formation"] and needs[2][3] == "secret"
        rate = list(
            csv.reader(io.StringIO(c.get("/territoire/ept/T12/tableaux/taux-reponse.csv").text))
        )
        assert rate[1] == ["2026-printemps", "25", "5", "0.2"]
        nets = c.get("/territoire/ept/T12/tableaux/reseaux.csv?format=excel").content.decode()
        assert "ressourceries;Ressourceries;4;4;4;4;0;14,5" in nets
        shops = c.get("/territoire/ept/T12/tableaux/ressourceries.csv").text
        assert shops.splitlines()[1] == "4,14.5,10,19"
        assert "60,0\u202f%" in html  # the share of respondents citing « locaux »


def test_api_pages_follow_the_snapshots_order(client, web_data):  # noqa: F811
    full = client.get("/api/v1/indicateurs/etablissements_actifs?limite=10000").json()["lignes"]
    pages = []
    for offset in range(0, len(full), 100):
        url = f"/api/v1/indicateurs/etablissements_actifs?limite=100&decalage={offset}"
        pages += client.get(url).json()["lignes"]
    assert pages == full
    (n,) = web_data.query("select count(*) from indicators.etablissements_actifs")[0]
    assert len(full) == n
    keys = [(r["mois"], r["niveau"], r["code_territoire"]) for r in full]
    assert keys == sorted(keys)
