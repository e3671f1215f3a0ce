"""One real refresh of two months, shared by the web tests (TestClient and headless Chromium).

The stock is small but shaped like INSEE's files: associations, SCOP and companies in three
communes of EPT 12, employers with effectif bands, and units whose diffusion status is `P`,
given distinctive names (« ZORGLUB … ») so that a leak of a `P` name would be caught. Arcueil
holds only two associations (one of them `P`): its cells are the small ones.

The real publication carries the secrecy stream's mask: on a stock this small most cells, key
figures included, are genuinely secret, and the tests read each cell's status from the snapshot.
`secret_publication` is a COPY of it in which the rows of Arcueil and of the SCOP section (F) are
also marked secret (`primaire`, `frequence`, measures NULL), for the tests that need a known
secret cell whatever the mask decides; every other row keeps its real status.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import refresh
from observatoire.core import warehouse
from observatoire.core.settings import Settings
from observatoire.publication import publish
from observatoire.web.snapshot import CONFIG

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "data" / "reference" / "geo"
MONTHS = ("2026-10", "2026-11")
P_NAMES = ("ZORGLUB CONFIDENTIELLE", "ENSEIGNE ZORGLUB", "ZORGLUB DISCRETE")


def _unit(commune: str, cj: str, naf: str, naf25: str, tranche: str, **extra: str) -> tuple:
    siren = new_siren()
    employer = "O" if tranche not in ("NN", "") else "N"
    ul = ul_row(
        siren,
        categorieJuridiqueUniteLegale=cj,
        activitePrincipaleUniteLegale=naf,
        economieSocialeSolidaireUniteLegale="O" if cj[0] in "59" and cj != "5710" else "N",
        trancheEffectifsUniteLegale=tranche,
        anneeEffectifsUniteLegale="2024" if employer == "O" else "",
        caractereEmployeurUniteLegale=employer,
        **{k: v for k, v in extra.items() if k.endswith("UniteLegale")},
    )
    et = etab_row(
        siren,
        codeCommuneEtablissement=commune,
        activitePrincipaleEtablissement=naf,
        activitePrincipaleNAF25Etablissement=naf25,
        trancheEffectifsEtablissement=tranche,
        anneeEffectifsEtablissement="2024" if employer == "O" else "",
        caractereEmployeurEtablissement=employer,
        **{k: v for k, v in extra.items() if k.endswith("Etablissement")},
    )
    return ul, et


def build_stock() -> dict[str, tuple[list, list]]:
    """Units of both months: November has two more associations in Vitry than October."""
    base: list[tuple] = []
    for i in range(10):
        base.append(
            _unit("94081", "9220", "94.99Z", "94.99Y", ("11", "12", "01")[i % 3])
            if i % 2
            else _unit("94081", "9220", "88.10A", "88.10G", ("02", "03")[i % 2])
        )
    for _ in range(5):
        base.append(_unit("94081", "5710", "47.11D", "47.11H", "21"))
    for i in range(6):
        base.append(_unit("94041", "9220", "94.99Z", "94.99Y", ("01", "11")[i % 2]))
    for _ in range(3):
        base.append(_unit("94041", "5458", "43.21A", "43.21G", "02"))
    base.append(_unit("94003", "9220", "94.99Z", "94.99Y", "01"))
    # units with diffusion status P: counted, never named
    for i in range(2):
        base.append(
            _unit(
                "94081",
                "9220",
                "94.99Z",
                "94.99Y",
                "11",
                statutDiffusionUniteLegale="P",
                denominationUniteLegale=f"{P_NAMES[0]} {i}",
                statutDiffusionEtablissement="P",
                enseigne1Etablissement=f"{P_NAMES[1]} {i}",
            )
        )
    base.append(
        _unit(
            "94003",
            "9220",
            "94.99Z",
            "94.99Y",
            "02",
            statutDiffusionUniteLegale="P",
            denominationUniteLegale=f"{P_NAMES[2]} ARCUEIL",
            statutDiffusionEtablissement="P",
            denominationUsuelleEtablissement=f"{P_NAMES[2]} USUELLE",
        )
    )
    november = base + [_unit("94081", "9220", "94.99Z", "94.99Y", "11") for _ in range(2)]
    return {
        MONTHS[0]: ([u for u, _ in base], [e for _, e in base]),
        MONTHS[1]: ([u for u, _ in november], [e for _, e in november]),
    }


@dataclass(frozen=True)
class WebData:
    settings: Settings
    publication: Path  # the real publication of the last refresh
    secret_publication: Path  # a copy with secret rows (see the module's docstring)
    p_names: list[str]  # names of the P units, read from the warehouse

    def snapshot_db(self, publication: Path | None = None) -> Path:
        return (publication or self.publication) / publish.CURRENT / "indicateurs.duckdb"

    def query(self, sql: str, params: dict | None = None, publication: Path | None = None):
        con = duckdb.connect(str(self.snapshot_db(publication)), read_only=True, config=CONFIG)
        try:
            return con.execute(sql, params or {}).fetchall()
        finally:
            con.close()


def make_settings(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp,
        warehouse=tmp / "warehouse" / "obs.duckdb",
        reference_dir=ROOT / "data" / "reference",
        download_dir=tmp / "sources",
        publication_dir=tmp / "publication",
        inbox_dir=tmp / "inbox",
        review_dir=tmp / "revue",
        territoire="ept:T12",
        sirene_etablissements=str(tmp / "sirene" / "{mois}" / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(tmp / "sirene" / "{mois}" / "StockUniteLegale_utf8.csv"),
        max_reject_rate=1.0,
        count_band=(0.001, 1000.0),
        drift_share_max=1.0,  # a few hand-written rows: see conftest
        drift_jump_max=1.0,
        quality_docs_dir=None,
    )


SECRET_COMMUNE = "94003"  # Arcueil
SECRET_SECTION = "F"


def mark_secret(db: Path) -> None:
    """Mark rows secret in a copied snapshot, as the secrecy contract describes them."""
    con = duckdb.connect(str(db))
    try:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'indicators'"
            ).fetchall()
            if t not in publish.LISTINGS | {"territoires", "nomenclatures"}
        ]
        for table in tables:
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'indicators' and table_name = $t",
                {"t": table},
            ).fetchall()
            names = [c for c, _ in cols]
            if "statut_secret" not in names:
                con.execute(
                    f"alter table indicators.{table} add column statut_secret varchar "
                    "default 'publie'"
                )
                con.execute(f"alter table indicators.{table} add column motif_secret varchar")
            measures = [c for c, kind in cols if kind.upper() != "VARCHAR" and c not in ("annee",)]
            where = "code_territoire = $commune"
            if "section_naf" in names:
                where += " or section_naf = $section"
            params = {"commune": SECRET_COMMUNE}
            if "section_naf" in names:
                params["section"] = SECRET_SECTION
            nulls = ", ".join(f'"{c}" = null' for c in measures)
            con.execute(
                f"update indicators.{table} set statut_secret = 'primaire', "
                f"motif_secret = 'frequence'{', ' + nulls if nulls else ''} where {where}",
                params,
            )
    finally:
        con.close()


@pytest.fixture(scope="session")
def web_data(tmp_path_factory: pytest.TempPathFactory) -> WebData:
    tmp = tmp_path_factory.mktemp("web")
    settings = make_settings(tmp)
    stocks = build_stock()
    for i, (mois, (uls, ets)) in enumerate(stocks.items()):
        write_stock(tmp / "sirene" / mois, uls, ets)
        refresh.refresh(settings, mois, run_id=f"web{i}")
    # the stock files themselves: natural persons' names never reach the warehouse
    in_files = {
        u["denominationUniteLegale"]
        for uls, _ in stocks.values()
        for u in uls
        if u["statutDiffusionUniteLegale"] == "P"
    }
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        names = con.execute(
            "select denomination from clean.sirene_unites_legales where statut_diffusion = 'P' "
            "union select enseigne from clean.sirene_etablissements where statut_diffusion = 'P' "
            "union select denomination_usuelle from clean.sirene_etablissements "
            "where statut_diffusion = 'P'"
        ).fetchall()
    p_names = sorted({n for (n,) in names if n} | {n for n in in_files if n})
    secret = tmp / "publication_secret"
    shutil.copytree(settings.publication_dir, secret, symlinks=True)
    mark_secret(secret / publish.CURRENT / "indicateurs.duckdb")
    return WebData(settings, settings.publication_dir, secret, p_names)
