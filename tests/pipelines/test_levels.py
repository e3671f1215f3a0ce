"""Every level, every refresh: the territory, its communes, and the units containing it.

An EPT's refresh reads the communes of its région (`ref.communes_lues`) and publishes, besides
the EPT and its communes, its EPCI (the Métropole du Grand Paris), its two départements and its
région — when the month's stock covers them. The stocks here are hand-written rows, one or a
few establishments per commune, and every published figure is compared with a count made in
Python from the rows written and the COG file, independently of the SQL.

One warehouse, two months: October's stock holds the EPT's communes only (an extract, like the
demo's stock): no containing unit is published, and the refresh says why. November's covers
the whole région but a few communes (villages with nothing in the stock): all four are
published. `france` publishes every commune, EPCI, EPT, département and région.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_settings
from fastapi.testclient import TestClient
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import cli, refresh, steps
from observatoire.core import warehouse
from observatoire.core.settings import Settings
from observatoire.publication import export, publish
from observatoire.web.app import create_app

REFERENCE = ROOT / "data" / "reference"
GEO = REFERENCE / "geo"
OCTOBER, NOVEMBER = "2026-10", "2026-11"
CITIES = ("75056", "69123", "13055")  # SIRENE locates establishments in their arrondissements
CONTAINING = {
    ("epci", "200054781"),
    ("departement", "94"),
    ("departement", "91"),
    ("region", "11"),
}
TOTAL = (
    "perimetre = $p and famille = 'ensemble' and section_naf = 'ensemble' "
    "and tranche_effectifs = 'ensemble'"
)


def _cog() -> dict[str, dict[str, str]]:
    """The COG's geographic units, read from the file (not from the warehouse)."""
    with (REFERENCE / "cog_communes.csv").open(encoding="utf-8", newline="") as f:
        return {r["code_commune"]: r for r in csv.DictReader(f) if r["code_commune"] not in CITIES}


def _ept() -> dict[str, str]:
    with (REFERENCE / "ept_communes_paris_arrondissements.csv").open(encoding="utf-8") as f:
        return {r["code_commune"]: r["code_ept"] for r in csv.DictReader(f)}


COG = _cog()
EPT = _ept()
T12 = sorted(c for c, e in EPT.items() if e == "T12")


def _unit_of(niveau: str, commune: str) -> str | None:
    row = COG[commune]
    return {
        "commune": commune,
        "ept": EPT.get(commune),
        "epci": row["code_epci"] or None,
        "departement": row["code_departement"],
        "region": row["code_region"],
    }[niveau]


@dataclass
class Stock:
    """Rows written, and what a reader should count in them: per commune, active
    establishments of the ESS and in all."""

    uls: list[dict[str, str]]
    ets: list[dict[str, str]]
    ess: Counter
    all: Counter

    def count(self, niveau: str, code: str, ess: bool) -> int:
        counts = self.ess if ess else self.all
        return sum(n for c, n in counts.items() if _unit_of(niveau, c) == code)


def _stock(communes: list[str]) -> Stock:
    """An association (ESS) in every commune; a company (not ESS) in every third one; a closed
    association in every fifth one (counted nowhere as active, but it locates the commune)."""
    uls, ets = [], []
    ess, everything = Counter(), Counter()
    for i, commune in enumerate(sorted(communes)):
        kinds = [("9220", "O", "A")]
        if i % 3 == 0:
            kinds.append(("5710", "N", "A"))
        if i % 5 == 0:
            kinds.append(("9220", "O", "F"))
        for cj, flag, etat in kinds:
            siren = new_siren()
            naf = "88.10A" if cj == "9220" else "47.11D"
            uls.append(
                ul_row(
                    siren,
                    categorieJuridiqueUniteLegale=cj,
                    economieSocialeSolidaireUniteLegale=flag,
                    activitePrincipaleUniteLegale=naf,
                )
            )
            ets.append(
                etab_row(
                    siren,
                    codeCommuneEtablissement=commune,
                    etatAdministratifEtablissement=etat,
                    activitePrincipaleEtablissement=naf,
                    activitePrincipaleNAF25Etablissement="",
                    dateDebut="2020-01-01" if etat == "F" else "2010-05-01",
                )
            )
            if etat == "A":
                everything[commune] += 1
                ess[commune] += flag == "O"
    return Stock(uls, ets, ess, everything)


@dataclass
class Refreshed:
    settings: Settings
    stocks: dict[str, Stock]
    reports: dict[str, refresh.RefreshReport]
    missing: list[str]  # Île-de-France communes November's stock has nothing in

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with warehouse.connect(self.settings.warehouse, read_only=True) as con:
            return con.execute(sql, params or {}).fetchall()


@pytest.fixture(scope="module")
def ept_months(tmp_path_factory) -> Refreshed:
    settings = make_settings(tmp_path_factory.mktemp("niveaux"))
    idf = sorted(c for c, r in COG.items() if r["code_region"] == "11")
    # ten communes of Seine-et-Marne (outside the EPT, its départements and its EPCI) with
    # nothing in the stock, as a few villages have in the real one: 99 % of the région stays
    missing = [c for c in idf if c.startswith("77")][::50][:10]
    stocks = {
        OCTOBER: _stock(T12),
        NOVEMBER: _stock([c for c in idf if c not in missing]),
    }
    reports = {}
    for mois, stock in stocks.items():
        write_stock(Path(settings.data_dir) / "sirene" / mois, stock.uls, stock.ets)
        reports[mois] = refresh.refresh(settings, mois, run_id=f"niveaux{mois[-2:]}")
    return Refreshed(settings, stocks, reports, missing)


def _published(data: Refreshed, mois: str) -> set[tuple[str, str]]:
    return set(
        data.query(
            "select distinct niveau, code_territoire from indicators.etablissements_actifs "
            "where mois = $mois",
            {"mois": mois},
        )
    )


def test_an_extract_of_the_ept_publishes_no_containing_unit_and_says_why(ept_months):
    published = _published(ept_months, OCTOBER)
    assert published == {("ept", "T12"), *(("commune", c) for c in T12)}
    coverage = ept_months.reports[OCTOBER].couverture
    assert {(u.niveau, u.code) for u in coverage} == CONTAINING
    assert not any(u.published for u in coverage)
    # judged on the communes outside the EPT, where an extract of the EPT has nothing
    assert all(u.covered == 0 and 0 < u.outside < u.communes for u in coverage)
    lines = cli._format_coverage(ept_months.reports[OCTOBER])
    assert len(lines) == 5 and all("non publié" in line for line in lines[1:])
    assert any(
        line.startswith("  Île-de-France (region:11) : établissements dans 0 des 1261 communes")
        for line in lines
    ), lines
    # the step says it in its metadata too (Dagster shows it)
    with warehouse.connect(ept_months.settings.warehouse) as con:
        ctx = steps.StepContext(ept_months.settings, OCTOBER, "meta", con)
        meta = steps.run_perimeter(ctx).metadata["clean.couverture_niveaux"]
    assert meta["publies"] == []
    assert set(meta["non_publies"]) == {
        "region:11 Île-de-France",
        "departement:91 Essonne",
        "departement:94 Val-de-Marne",
        "epci:200054781 Métropole du Grand Paris",
    }
    assert "ne couvre pas" in meta["non_publies"]["region:11 Île-de-France"]


def test_a_stock_covering_the_region_publishes_every_unit_containing_the_ept(ept_months):
    published = _published(ept_months, NOVEMBER)
    # the EPT and its 24 communes, not the région's 1,300: only the units containing it
    assert published == {("ept", "T12"), *(("commune", c) for c in T12), *CONTAINING}
    coverage = {(u.niveau, u.code): u for u in ept_months.reports[NOVEMBER].couverture}
    assert set(coverage) == CONTAINING and all(u.published for u in coverage.values())
    region = coverage[("region", "11")]
    assert region.outside == region.communes - len(T12)
    assert region.covered == region.outside - len(ept_months.missing)  # 99 %: published


@pytest.mark.parametrize("niveau_code", [("ept", "T12"), *sorted(CONTAINING)])
def test_figures_of_every_level_are_the_independent_count(ept_months, niveau_code):
    niveau, code = niveau_code
    stock = ept_months.stocks[NOVEMBER]
    for perimetre, ess in (("ess", True), ("ensemble", False)):
        ((n,),) = ept_months.query(
            "select nb_etablissements from indicators.etablissements_actifs where mois = $mois "
            f"and niveau = $n and code_territoire = $c and {TOTAL}",
            {"mois": NOVEMBER, "n": niveau, "c": code, "p": perimetre},
        )
        assert n == stock.count(niveau, code, ess) > 0, (niveau, code, perimetre)


def test_commune_figures_are_the_ept_communes_only(ept_months):
    stock = ept_months.stocks[NOVEMBER]
    rows = dict(
        ept_months.query(
            "select code_territoire, nb_etablissements from indicators.etablissements_actifs "
            f"where mois = $mois and niveau = 'commune' and {TOTAL}",
            {"mois": NOVEMBER, "p": "ess"},
        )
    )
    assert rows == {c: stock.ess[c] for c in T12}


def test_the_evolution_compares_a_containing_unit_only_with_a_month_that_published_it(
    ept_months,
):
    rows = {
        (n, c): (prev, var)
        for n, c, prev, var in ept_months.query(
            "select niveau, code_territoire, nb_etablissements_precedent, "
            "variation_etablissements from indicators.evolution_mensuelle where mois = $mois "
            "and perimetre = 'ess' and famille = 'ensemble'",
            {"mois": NOVEMBER},
        )
    }
    # October published the EPT: compared; it did not publish the région: not compared
    assert rows[("ept", "T12")] == (ept_months.stocks[OCTOBER].count("ept", "T12", True), 0)
    for unit in CONTAINING:
        assert rows[unit] == (None, None), unit


def test_indicators_run_alone_find_their_levels(ept_months, tmp_path):
    """A month whose levels were never written (cleaned by an earlier version, indicators
    re-run alone from Dagster) gets them before its indicators, not empty tables."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(ept_months.settings.warehouse, copy)
    with warehouse.connect(copy) as con:
        con.execute("drop table clean.niveaux_publies")
        con.execute("drop table clean.couverture_niveaux")
        ctx = steps.StepContext(ept_months.settings.with_(warehouse=copy), NOVEMBER, "seul", con)
        counts = steps.run_indicators(ctx).values["indicateurs"]
        levels = {
            n
            for (n,) in con.execute(
                "select distinct niveau from indicators.etablissements_actifs where mois = $m",
                {"m": NOVEMBER},
            ).fetchall()
        }
    assert counts["etablissements_actifs"] > 0
    assert levels == {"commune", "ept", "epci", "departement", "region"}


def test_the_headline_is_the_territory_not_its_region(ept_months):
    with warehouse.connect(ept_months.settings.warehouse, read_only=True) as con:
        h = steps.headline(con, NOVEMBER)
    assert (h["niveau"], h["territoire"]) == ("ept", "Grand-Orly Seine Bièvre")


def test_the_publication_tells_a_containing_unit_from_the_territory(ept_months):
    live = publish.current(ept_months.settings.publication_dir)
    assert live is not None
    with duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True) as con:
        units = dict(
            con.execute(
                "select niveau || ':' || code_territoire, bool_or(englobant) "
                "from indicators.territoires where niveau <> 'commune' group by all"
            ).fetchall()
        )
        communes = con.execute(
            "select count(*) from indicators.territoires where niveau = 'commune'"
        ).fetchone()[0]
        # answers and lists describe the territory only: no containing unit in their tables
        for table in ("taux_reponse", "besoins_cites", "reseaux_couverture"):
            (n,) = con.execute(
                f"select count(*) from indicators.{table} where niveau in "
                "('region', 'departement', 'epci')"
            ).fetchone()
            assert n == 0, table
    assert units == {
        "ept:T12": False,
        "epci:200054781": True,
        "departement:94": True,
        "departement:91": True,
        "region:11": True,
    }
    assert communes == 24


def test_page_api_and_bundle_of_a_containing_unit(ept_months, tmp_path):
    """The région's page shows its figures and details the EPT's communes only (never a zero
    for a commune nobody counted); the API says `englobant`; the bundle's README says so."""
    publication = ept_months.settings.publication_dir
    stock = ept_months.stocks[NOVEMBER]
    # the bundle first: the web app keeps the snapshot open in this process
    (bundle,) = export.export(publication, tmp_path, territoires=["departement:94"])
    with zipfile.ZipFile(bundle.path) as zf:
        readme = zf.read("LISEZMOI.md").decode("utf-8")
    assert "publié que pour comparaison" in readme
    assert bundle.territoire.communes == tuple(c for c in T12 if c.startswith("94"))
    with TestClient(create_app(publication, GEO)) as client:
        units = client.get("/api/v1/territoires").json()["territoires"]
        flags = {(t["niveau"], t["code_territoire"]): t["englobant"] for t in units}
        assert flags[("region", "11")] is True and flags[("ept", "T12")] is False
        api = client.get("/api/v1/territoires/region/11").json()
        assert api["englobant"] is True
        assert api["chiffres_cles"]["etablissements_ess"]["valeur"] == stock.count(
            "region", "11", True
        )
        page = client.get("/territoire/region/11")
        assert page.status_code == 200 and 'id="territoire-englobant"' in page.text
        table = client.get("/territoire/region/11/tableaux/communes.csv").text
        listed = {line.split(",")[0] for line in table.splitlines()[1:]}
        assert listed == set(T12)
        assert 'id="territoire-englobant"' not in client.get("/territoire/ept/T12").text


# ---------------------------------------------------------------- france


@pytest.fixture(scope="module")
def france(tmp_path_factory) -> Refreshed:
    """One commune of every EPCI, EPT and département (and every commune without an EPCI):
    every unit of every level has establishments."""
    settings = make_settings(tmp_path_factory.mktemp("france")).with_(territoire="france")
    chosen: dict[tuple[str, str], str] = {}
    for commune in sorted(COG):
        for niveau in ("epci", "ept", "departement"):
            code = _unit_of(niveau, commune)
            if code is not None or niveau == "epci":  # a commune without an EPCI: itself
                chosen.setdefault((niveau, code or commune), commune)
    stock = _stock(sorted(set(chosen.values())))
    write_stock(Path(settings.data_dir) / "sirene" / NOVEMBER, stock.uls, stock.ets)
    report = refresh.refresh(settings, NOVEMBER, run_id="france")
    return Refreshed(settings, {NOVEMBER: stock}, {NOVEMBER: report}, [])


def test_france_publishes_every_commune_epci_ept_departement_and_region(france):
    stock = france.stocks[NOVEMBER]
    assert france.reports[NOVEMBER].couverture == []  # nothing contains France
    units = {
        niveau: {_unit_of(niveau, c) for c in COG} - {None}
        for niveau in ("commune", "ept", "epci", "departement", "region")
    }
    assert (len(units["ept"]), len(units["departement"]), len(units["region"])) == (12, 101, 18)
    live = publish.current(france.settings.publication_dir)
    assert live is not None
    with duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True) as con:
        listed = {
            niveau: {c for (c,) in rows}
            for niveau in units
            if (
                rows := con.execute(
                    "select distinct code_territoire from indicators.territoires "
                    "where niveau = $n and not englobant",
                    {"n": niveau},
                ).fetchall()
            )
        }
        assert listed == units
        for niveau in ("ept", "epci", "departement", "region"):
            figures = dict(
                con.execute(
                    "select code_territoire, nb_etablissements from "
                    f"indicators.etablissements_actifs where mois = $mois and niveau = $n "
                    f"and {TOTAL}",
                    {"mois": NOVEMBER, "n": niveau, "p": "ess"},
                ).fetchall()
            )
            expected = {code: stock.count(niveau, code, True) for code in units[niveau]}
            assert figures == expected, niveau
        ((whole,),) = con.execute(
            "select nb_etablissements from indicators.etablissements_actifs where mois = $mois "
            f"and niveau = 'selection' and {TOTAL}",
            {"mois": NOVEMBER, "p": "ess"},
        ).fetchall()
    assert whole == sum(stock.ess.values())
