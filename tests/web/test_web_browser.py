"""The page in real headless Chromium (Debian's package), served by a real uvicorn server.

Python playwright drives `/usr/bin/chromium` (installed by `.ci/run` when missing). The page is
served on 127.0.0.1 from the COPY of a real refresh's snapshot (real secrecy mask) in which the
rows of Arcueil and section F are also marked secret (see `web_fixture`); the « secret » cell
test uses a cell the real mask hides.
"""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from web_fixture import GEO, MONTHS, SECRET_COMMUNE, SECRET_SECTION, web_data  # noqa: F401

from observatoire.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOIS = MONTHS[-1]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(web_data):  # noqa: F811
    port = free_port()
    config = uvicorn.Config(
        create_app(web_data.secret_publication, GEO),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, locale="fr-FR")
    pg = context.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    yield pg
    context.close()
    assert outside == [], f"requests outside the server: {outside}"


def number(text: str) -> float:
    return float(re.sub(r"[\s\u202f\u00a0%]", "", text).replace(",", "."))


def tab_until(page, selector: str, limit: int = 80) -> int:
    """Press Tab until the element matching `selector` has the focus; the number of presses."""
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return n
    raise AssertionError(f"Tab never reached {selector}")


def test_find_a_territory_with_the_keyboard_and_read_a_key_figure(page, server, web_data):  # noqa: F811
    page.goto(server + "/")
    tab_until(page, "input#q")
    page.keyboard.type("vitry")
    page.keyboard.press("Enter")
    page.wait_for_url(server + "/territoire/commune/94081")
    assert page.title() == "Vitry-sur-Seine — Observatoire ESS"
    assert page.locator("h1").inner_text() == "Vitry-sur-Seine"
    shown = page.locator("#chiffre-etablissements_ess .obs-valeur").inner_text()
    ((expected, statut),) = web_data.query(
        "select nb_etablissements, statut_secret from indicators.etablissements_actifs "
        "where niveau = 'commune' "
        "and code_territoire = '94081' and mois = $m and perimetre = 'ess' "
        "and famille = 'ensemble' and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
        {"m": MOIS},
        publication=web_data.secret_publication,
    )
    if statut == "publie":
        assert number(shown) == expected
    else:  # the real mask hides this figure
        assert expected is None and shown == "secret"
    assert page.locator("#mois-publication").inner_text() == MOIS


def test_search_with_several_results_is_keyboard_navigable(page, server):
    page.goto(server + "/")
    page.locator("#q").fill("Grand-Orly")
    page.keyboard.press("Enter")
    page.wait_for_url(server + "/territoire/ept/T12")
    page.goto(server + "/")
    page.locator("#q").fill("sur")  # Vitry-sur-Seine and Ivry-sur-Seine
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/recherche\?q=sur"))
    tab_until(page, 'a[href="/territoire/commune/94041"]')
    page.keyboard.press("Enter")
    page.wait_for_url(server + "/territoire/commune/94041")


def test_download_a_table_as_csv_by_a_click(page, server, web_data):  # noqa: F811
    page.goto(server + "/territoire/ept/T12")
    with page.expect_download() as info:
        page.locator("#bloc-familles a.obs-csv").click()
    download = info.value
    assert download.suggested_filename == f"familles_ept_T12_{MOIS}.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    expected = dict(
        web_data.query(
            "select famille, nb_etablissements from indicators.etablissements_actifs "
            "where niveau = 'ept' and mois = $m and perimetre = 'ess' "
            "and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
            {"m": MOIS},
            publication=web_data.secret_publication,
        )
    )
    got = {r[0]: r[1] for r in rows[1:]}
    labels = dict(
        web_data.query(
            "select code, libelle from indicators.nomenclatures where dimension = 'famille'",
            publication=web_data.secret_publication,
        )
    )
    for code in ("association", "cooperative", "ensemble"):
        label = labels[code]  # a masked cell (NULL in the snapshot) reads « secret »
        assert got[label] == ("secret" if expected[code] is None else str(expected[code]))
    # the page shows the same rows
    shown = page.locator("#tableau-familles tbody tr").all_inner_texts()
    assert len(shown) == len(rows) - 1

    with page.expect_download() as info:
        page.locator('#bloc-familles a[href$="format=excel"]').click()
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw.splitlines()[0]


def test_suppressed_cells_read_secret(page, server, web_data):  # noqa: F811
    # Sirene tables are public: the real publication hides none of their cells
    rows = web_data.query(
        "select count(*) from indicators.etablissements_actifs "
        "where mois = $m and statut_secret <> 'publie' and code_territoire <> $arcueil "
        "and section_naf <> $section",
        {"m": MOIS, "arcueil": SECRET_COMMUNE, "section": SECRET_SECTION},
    )
    assert rows == [(0,)]
    # a cell marked secret in the copy (Arcueil) reads « secret », with its explanation
    page.goto(server + f"/territoire/commune/{SECRET_COMMUNE}")
    figure = page.locator("#chiffre-etablissements_ess .obs-valeur")
    assert figure.inner_text() == "secret"
    assert figure.locator('a.obs-secret[href="/methode#secret"]').count() == 1
    figure.locator("a.obs-secret").click()
    page.wait_for_url(server + "/methode#secret")
    assert "moins de 3 structures" in page.locator("#secret ~ ul").first.inner_text()
    # the copy's own marks still read « secret » too
    page.goto(server + f"/territoire/commune/{SECRET_COMMUNE}")
    assert page.locator("#chiffre-etablissements_ess .obs-valeur").inner_text() == "secret"
    cells = page.locator("#tableau-familles td").all_inner_texts()
    assert cells and all(c == "secret" for c in cells)


def test_no_p_unit_name_in_any_page_api_answer_or_download(page, server, web_data):  # noqa: F811
    names = [n.upper() for n in web_data.p_names]
    assert names, "the fixture must hold P units with names"
    seen: list[str] = []

    def check(text: str, where: str) -> None:
        upper = text.upper()
        for name in names:
            assert name not in upper, (where, name)
        seen.append(where)

    territories = page.request.get(server + "/api/v1/territoires").json()["territoires"]
    for url in ("/", "/methode", "/api", "/recherche?q=sur"):
        page.goto(server + url)
        check(page.content(), url)
    for t in territories:
        base = f"/territoire/{t['niveau']}/{t['code_territoire']}"
        page.goto(server + base)
        check(page.content(), base)
        for link in page.locator("a.obs-csv").all():
            with page.expect_download() as info:
                link.click()
            check(Path(info.value.path()).read_text(encoding="utf-8"), link.get_attribute("href"))
        api = f"/api/v1/territoires/{t['niveau']}/{t['code_territoire']}"
        check(page.request.get(server + api).text(), api)
    for indicator in page.request.get(server + "/api/v1/indicateurs").json()["indicateurs"]:
        url = f"/api/v1/indicateurs/{indicator['nom']}?limite=10000"
        check(page.request.get(server + url).text(), url)
    assert len(seen) > 20


def test_basic_accessibility(page, server):
    for url in ("/", "/territoire/ept/T12", "/methode", "/api", "/recherche?q=sur"):
        page.goto(server + url)
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert page.locator("h1").count() == 1, url
        assert page.title().endswith("Observatoire ESS")
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(e => e.type !== 'hidden')
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                              && !e.getAttribute('aria-labelledby'))
                 .map(e => e.outerHTML)"""
        )
        assert unlabelled == [], (url, unlabelled)
        no_alt = page.evaluate(
            """() => [...document.querySelectorAll('img:not([alt]), svg')]
                 .filter(e => !e.closest('[aria-hidden="true"]'))
                 .filter(e => e.tagName === 'IMG' || !(e.getAttribute('role') === 'img'
                     && (e.getAttribute('aria-labelledby') || e.getAttribute('aria-label'))))
                 .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert no_alt == [], (url, no_alt)
        bad_tables = page.evaluate(
            """() => [...document.querySelectorAll('table')]
                 .filter(t => !t.querySelector('caption')
                              || [...t.querySelectorAll('th')].some(h => !h.getAttribute('scope')))
                 .length"""
        )
        assert bad_tables == 0, url
    # keyboard: the skip link comes first, then the search; on a territory page, Tab reaches
    # the first table's download link, and the focus is visible
    page.goto(server + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.goto(server + "/territoire/ept/T12")
    tab_until(page, "#bloc-evolution a.obs-csv", limit=120)
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and outline[1] != "0px"
    assert page.locator("svg[role=img] > title").count() >= 1
    assert page.locator("svg[role=img] path > title").count() >= 1  # one per commune
