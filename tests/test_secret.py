"""Statistical secrecy: the rules on known cells, and an attacker who must fail.

The attacker is written here, independently of `observatoire/secret.py`: it reads the published
CSV files only, writes every equation a reader can write (totals of families, sections, bands,
communes; jobs from band bounds; active ≥ employers), and asks linear programs for the smallest
and largest value of each secret cell. The test passes only if no secret cell is pinned.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from conftest import make_settings
from scipy.optimize import linprog
from scipy.sparse import coo_matrix
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import publish, refresh, secret, secret_tables, warehouse

MOIS = "2026-11"
COMMUNES = ("94081", "94003", "94041", "94076", "94078")
# (catégorie juridique, ESS flag of the legal unit)
LEGAL = [("9220", "O")] * 6 + [("5458", "O"), ("8210", "O"), ("5710", "N"), ("5499", "N")]
NAF = [
    ("94.99Z", "94.99Y"),
    ("88.10A", "88.10A"),
    ("47.11B", "47.11D"),
    ("56.10A", "56.11A"),
    ("85.59A", "85.59B"),
]
BANDS = ["NN", "NN", "NN", "00", "01", "01", "02", "03", "11", "12", "21"]


def _unit(rng: random.Random, commune: str, **over: str) -> tuple[list, list]:
    cj, ess = rng.choice(LEGAL)
    naf, naf25 = rng.choice(NAF)
    band = rng.choice(BANDS)
    fields = {"cj": cj, "ess": ess, "naf": naf, "naf25": naf25, "band": band, **over}
    siren = new_siren()
    employer = "N" if fields["band"] == "NN" else "O"
    ul = ul_row(
        siren,
        categorieJuridiqueUniteLegale=fields["cj"],
        economieSocialeSolidaireUniteLegale=fields["ess"],
        activitePrincipaleUniteLegale=fields["naf"],
        caractereEmployeurUniteLegale=employer,
        trancheEffectifsUniteLegale=fields["band"],
        anneeEffectifsUniteLegale="" if employer == "N" else "2024",
    )
    sites = int(fields.get("sites", "1"))
    ets = [
        etab_row(
            siren,
            n=i + 1,
            codeCommuneEtablissement=commune,
            activitePrincipaleEtablissement=fields["naf"],
            activitePrincipaleNAF25Etablissement=fields["naf25"],
            trancheEffectifsEtablissement=fields["band"],
            anneeEffectifsEtablissement="" if employer == "N" else "2024",
            caractereEmployeurEtablissement=employer,
        )
        for i in range(sites)
    ]
    return [ul], ets


def _stock(seed: int = 5) -> tuple[list, list]:
    rng = random.Random(seed)
    uls: list = []
    ets: list = []
    for commune, size in zip(COMMUNES, (90, 45, 60, 30, 0), strict=True):
        for _ in range(size):
            u, e = _unit(rng, commune)
            uls += u
            ets += e
    # Villeneuve-Saint-Georges: a mutual society dominated by one unit (band 21 = 50–99
    # salaried) among three small ones; and a foundation cell of three sites of two units
    for band in ("21", "01", "01", "01"):
        u, e = _unit(rng, "94078", cj="8210", ess="O", naf="88.10A", naf25="88.10A", band=band)
        uls += u
        ets += e
    for sites in ("2", "1"):
        u, e = _unit(
            rng, "94078", cj="9300", ess="O", naf="94.99Z", naf25="94.99Y", band="NN", sites=sites
        )
        uls += u
        ets += e
    for _ in range(12):
        u, e = _unit(rng, "94078", cj="9220", ess="O")
        uls += u
        ets += e
    return uls, ets


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("secret")
    settings = make_settings(tmp)
    uls, ets = _stock()
    write_stock(Path(settings.data_dir) / "sirene" / MOIS, uls, ets)
    refresh.refresh(settings, MOIS, run_id="secret1")
    live = publish.current(settings.publication_dir)
    assert live is not None
    return live


def _read(live: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(live / "csv" / f"{name}.csv", infer_schema_length=0)


def test_every_published_row_carries_its_status(published):
    for name in ("etablissements_actifs", "emplois_salaries_estimes", "taux_reponse"):
        df = _read(published, name)
        assert set(df["statut_secret"].unique()) <= {"publie", "primaire", "secondaire"}
    actifs = _read(published, "etablissements_actifs")
    assert (actifs["statut_secret"] == "primaire").sum() > 0
    assert (actifs["statut_secret"] == "secondaire").sum() > 0
    hidden = actifs.filter(pl.col("statut_secret") != "publie")
    assert hidden["nb_etablissements"].is_null().all()
    assert hidden["motif_secret"].is_in(["frequence", "dominance", "lien"]).all()
    shown = actifs.filter(pl.col("statut_secret") == "publie")
    assert shown["nb_etablissements"].is_not_null().all()
    assert shown["motif_secret"].is_null().all()


def _row(df: pl.DataFrame, **keys: str) -> dict:
    hit = df.filter(pl.all_horizontal(pl.col(k) == v for k, v in keys.items()))
    assert hit.height == 1, (keys, hit)
    return hit.row(0, named=True)


def test_frequency_counts_legal_units_not_establishments(published):
    # three foundation establishments in 94078, but two of them belong to one foundation
    row = _row(
        _read(published, "etablissements_actifs"),
        niveau="commune",
        code_territoire="94078",
        perimetre="ess",
        famille="fondation",
        section_naf="ensemble",
        tranche_effectifs="ensemble",
    )
    assert (row["statut_secret"], row["motif_secret"]) == ("primaire", "frequence")


def test_one_dominant_unit_makes_its_cell_secret(published):
    # four mutual employers: one of 50–99 salaried (central 74.5) and three of 1–2 (1.5 each)
    row = _row(
        _read(published, "emplois_salaries_estimes"),
        niveau="commune",
        code_territoire="94078",
        perimetre="ess",
        famille="mutuelle",
        section_naf="ensemble",
        tranche_effectifs="ensemble",
    )
    assert (row["statut_secret"], row["motif_secret"]) == ("primaire", "dominance")
    assert row["emplois_central"] is None and row["nb_etablissements_employeurs"] is None


def test_dominance_hides_jobs_not_the_count_of_employers(published):
    """One unit holding the jobs is a secret of the jobs; the number of employers is a count."""
    row = _row(
        _read(published, "etablissements_employeurs"),
        niveau="commune",
        code_territoire="94078",
        perimetre="ess",
        famille="mutuelle",
        section_naf="ensemble",
        tranche_effectifs="ensemble",
    )
    assert row["motif_secret"] != "dominance"


def test_jobs_of_rows_with_secret_bands_are_widened_intervals(published):
    """A published jobs total is exact, or an interval around the exact one with no centre."""
    wh = published.parent.parent / "warehouse" / "obs.duckdb"
    keys = ["niveau", "code_territoire", "perimetre", "famille", "section_naf", "tranche_effectifs"]
    with warehouse.connect(wh, read_only=True) as con:
        truth = con.execute(
            f"select {', '.join(keys)}, emplois_bas as vrai_bas, emplois_haut as vrai_haut, "
            "emplois_central as vrai_central from indicators.emplois_salaries_estimes "
            "where mois = $m",
            {"m": MOIS},
        ).pl()
    jobs = _read(published, "emplois_salaries_estimes").filter(
        (pl.col("tranche_effectifs") == "ensemble") & (pl.col("statut_secret") == "publie")
    )
    rows = jobs.join(truth, on=keys).with_columns(
        pl.col("emplois_bas", "emplois_haut", "emplois_central").cast(pl.Float64)
    )
    assert rows.height == jobs.height > 0
    widened = rows.filter(pl.col("fourchette_elargie") == "true")
    exact = rows.filter(pl.col("fourchette_elargie") == "false")
    assert widened.height > 0  # a small fixture: most rows have a secret band
    assert (exact["emplois_central"] == exact["vrai_central"]).all()
    assert (exact["emplois_bas"] == exact["vrai_bas"]).all()
    assert widened["emplois_central"].is_null().all()
    assert (widened["emplois_bas"] <= widened["vrai_bas"]).all()
    assert (widened["emplois_haut"] >= widened["vrai_haut"]).all()
    # wider than the exact interval somewhere, or the widening would not protect anything
    assert (
        (widened["emplois_haut"] - widened["emplois_bas"])
        > (widened["vrai_haut"] - widened["vrai_bas"])
    ).any()


def test_a_protected_table_of_an_older_version_follows_the_new_columns(published, tmp_path):
    """A warehouse masked by an older version: new columns added, types changed, months kept."""
    wh = tmp_path / "ancien.duckdb"
    shutil.copy(published.parent.parent / "warehouse" / "obs.duckdb", wh)
    table = "diffusion.emplois_salaries_estimes"
    with warehouse.connect(wh) as con:
        con.execute(f"alter table {table} drop column fourchette_elargie")
        con.execute(f"alter table {table} alter column emplois_bas type decimal(38, 0)")
        con.execute(
            f"insert into {table} select * replace ('2026-10' as mois) from {table} "
            "where mois = $m limit 3",
            {"m": MOIS},
        )
        secret_tables.protect_month(con, MOIS)
        kinds = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'diffusion' and table_name = 'emplois_salaries_estimes'"
            ).fetchall()
        )
        (earlier,) = con.execute(f"select count(*) from {table} where mois = '2026-10'").fetchone()
        (flagged,) = con.execute(
            f"select count(*) from {table} where mois = $m and statut_secret = 'publie' "
            "and fourchette_elargie is not null",
            {"m": MOIS},
        ).fetchone()
    assert kinds["fourchette_elargie"] == "BOOLEAN" and kinds["emplois_bas"] == "DOUBLE"
    assert earlier == 3 and flagged > 0


def test_territory_totals_stay_published(published):
    """The EPT total is published; a commune total goes only with a partner commune's."""
    actifs = _read(published, "etablissements_actifs")
    totals = actifs.filter(
        (pl.col("famille") == "ensemble")
        & (pl.col("perimetre") == "ensemble")
        & (pl.col("section_naf") == "ensemble")
        & (pl.col("tranche_effectifs") == "ensemble")
    )
    ept = totals.filter(pl.col("niveau") == "ept")
    assert ept["statut_secret"].to_list() == ["publie"]
    communes = totals.filter(pl.col("niveau") == "commune")
    hidden = communes.filter(pl.col("statut_secret") != "publie")
    assert hidden.height != 1
    assert hidden.height <= 2, hidden  # only the tiny commune and its partner
    if hidden.height == 0:
        assert communes["nb_etablissements"].cast(int).sum() == int(ept["nb_etablissements"][0])


# ---------------------------------------------------------------------------------------------
# The attacker: from the published CSV files only
# ---------------------------------------------------------------------------------------------

FAMILIES = (
    "association",
    "cooperative",
    "mutuelle",
    "fondation",
    "autre_non_lucratif",
    "societe_commerciale_ess",
)
BAND_BOUNDS = {
    "00": (0, 0),
    "01": (1, 2),
    "02": (3, 5),
    "03": (6, 9),
    "11": (10, 19),
    "12": (20, 49),
    "21": (50, 99),
    "22": (100, 199),
    "31": (200, 249),
    "32": (250, 499),
    "41": (500, 999),
    "42": (1000, 1999),
    "51": (2000, 4999),
    "52": (5000, 9999),
    "53": (10000, 10000),
}


class Attacker:
    """Unknowns are the secret rows; every other published row is a known number."""

    def __init__(self) -> None:
        self.var: dict[tuple, int] = {}
        self.known: dict[tuple, float] = {}
        self.eq: list[tuple[dict[tuple, float], float]] = []
        self.ge: list[tuple[dict[tuple, float], float]] = []  # Σ coef·x ≥ b

    def load(self, tab: str, df: pl.DataFrame, measure: str) -> None:
        for r in df.iter_rows(named=True):
            fam = r["famille"] if r["famille"] != "ensemble" else r["perimetre"]
            key = (
                tab,
                r["niveau"],
                r["code_territoire"],
                fam,
                r["section_naf"],
                r["tranche_effectifs"],
            )
            if r["statut_secret"] == "publie":
                self.known[key] = float(r[measure])
            else:
                self.var.setdefault(key, len(self.var))

    def term(self, key: tuple) -> tuple[dict[tuple, float], float]:
        if key in self.var:
            return {key: 1.0}, 0.0
        return {}, self.known.get(key, 0.0)  # no row: an empty cell

    def equation(self, plus: list[tuple], minus: list[tuple], const: float = 0.0) -> None:
        coefs: dict[tuple, float] = {}
        rhs = const
        for sign, keys in ((1.0, plus), (-1.0, minus)):
            for k in keys:
                c, v = self.term(k)
                for kk, cc in c.items():
                    coefs[kk] = coefs.get(kk, 0.0) + sign * cc
                rhs -= sign * v
        if coefs:
            self.eq.append((coefs, rhs))

    def intervals(self) -> dict[tuple, tuple[float, float]]:
        n = len(self.var)

        def matrix(rows):
            i, j, v = [], [], []
            for r, (coefs, _) in enumerate(rows):
                for k, c in coefs.items():
                    i.append(r)
                    j.append(self.var[k])
                    v.append(c)
            return coo_matrix((v, (i, j)), shape=(len(rows), n)).tocsr()

        a_eq, b_eq = matrix(self.eq), np.array([b for _, b in self.eq])
        a_ub = -matrix(self.ge) if self.ge else None
        b_ub = -np.array([b for _, b in self.ge]) if self.ge else None
        out = {}
        for key, j in self.var.items():
            c = np.zeros(n)
            c[j] = 1.0
            lo = linprog(
                c, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(1, None), method="highs"
            )
            hi = linprog(
                -c, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(1, None), method="highs"
            )
            assert lo.status == 0, lo.message
            out[key] = (lo.fun, np.inf if hi.status == 3 else -hi.fun)
        return out


def _keys(att: Attacker, tab: str) -> set[tuple]:
    return {k for k in (*att.var, *att.known) if k[0] == tab}


def _lines(att: Attacker, tab: str, communes: dict[str, list[str]]) -> None:
    keys = _keys(att, tab)
    sections = sorted({k[4] for k in keys} - {"ensemble"})
    bands = sorted({k[5] for k in keys} - {"ensemble"})
    places = sorted({(k[1], k[2]) for k in keys})
    for niv, code in places:
        for sec, band in {(k[4], k[5]) for k in keys}:
            base = (tab, niv, code)
            att.equation(
                [(*base, "ensemble", sec, band)],
                [(*base, "ess", sec, band), (*base, "hors_ess", sec, band)],
            )
            att.equation([(*base, "ess", sec, band)], [(*base, f, sec, band) for f in FAMILIES])
        for fam in {k[3] for k in keys}:
            base = (tab, niv, code, fam)
            att.equation(
                [(*base, "ensemble", "ensemble")], [(*base, s, "ensemble") for s in sections]
            )
            att.equation([(*base, "ensemble", "ensemble")], [(*base, "ensemble", b) for b in bands])
    for (niv, code), members in communes.items():
        for fam, sec, band in {k[3:] for k in keys}:
            att.equation(
                [(tab, niv, code, fam, sec, band)],
                [(tab, "commune", m, fam, sec, band) for m in members],
            )


def attack(live: Path) -> tuple[Attacker, dict[tuple, tuple[float, float]]]:
    att = Attacker()
    att.load("A", _read(live, "etablissements_actifs"), "nb_etablissements")
    att.load("E", _read(live, "etablissements_employeurs"), "nb_etablissements_employeurs")
    att.load("U", _read(live, "unites_legales_siege"), "nb_unites_legales")
    territories = pl.read_csv(live / "csv" / "etablissements_actifs.csv", infer_schema_length=0)
    con = duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True)
    memb = con.execute(
        "select niveau, code_territoire, list(code_commune) from indicators.territoires "
        "where niveau <> 'commune' group by all"
    ).fetchall()
    con.close()
    published_places = set(zip(territories["niveau"], territories["code_territoire"], strict=True))
    communes = {(n, c): m for n, c, m in memb if (n, c) in published_places}
    for tab in ("A", "E", "U"):
        _lines(att, tab, communes)
    # active = employers + non-employers ≥ employers
    for k in _keys(att, "E"):
        a, e = ("A", *k[1:]), k
        ca, va = att.term(a)
        ce, ve = att.term(e)
        coefs = {**ca, **{kk: -1.0 for kk in ce}}
        if coefs:
            att.ge.append((coefs, ve - va))
    # jobs: the published band bounds of every published employer total; a widened interval
    # (fourchette_elargie) still holds the exact one: Σ min·n ≥ its low, Σ max·n ≤ its high
    jobs = _read(live, "emplois_salaries_estimes").filter(
        (pl.col("tranche_effectifs") == "ensemble") & (pl.col("statut_secret") == "publie")
    )
    for r in jobs.iter_rows(named=True):
        fam = r["famille"] if r["famille"] != "ensemble" else r["perimetre"]
        base = ("E", r["niveau"], r["code_territoire"], fam, r["section_naf"])
        widened = r["fourchette_elargie"] == "true"
        for idx, col in ((0, "emplois_bas"), (1, "emplois_haut")):
            coefs: dict[tuple, float] = {}
            rhs = float(r[col])
            for band, bounds in BAND_BOUNDS.items():
                c, v = att.term((*base, band))
                for kk in c:
                    coefs[kk] = bounds[idx]
                rhs -= bounds[idx] * v
            coefs = {k: v for k, v in coefs.items() if v}
            if not coefs:
                continue
            if not widened:
                att.eq.append((coefs, rhs))
            elif idx == 0:
                att.ge.append((coefs, rhs))
            else:
                att.ge.append(({k: -v for k, v in coefs.items()}, -rhs))
        if r["nb_tranche_inconnue"] is None:
            continue  # a secret band without a usable headcount: not published
        coefs = {}
        rhs = float(r["nb_tranche_inconnue"])
        for band in ("NN", "non_renseignee"):
            c, v = att.term((*base, band))
            coefs.update(c)
            rhs -= v
        if coefs:
            att.eq.append((coefs, rhs))
    return att, att.intervals()


def test_no_secret_cell_can_be_recomputed_from_the_published_files(published):
    att, intervals = attack(published)
    assert len(intervals) > 50  # the fixture has secret cells in every table attacked
    pinned = {k: v for k, v in intervals.items() if v[1] - v[0] < 1 - 1e-6}
    assert not pinned, (
        f"{len(pinned)} cases secrètes recalculables, par exemple {list(pinned.items())[:3]}"
    )


def test_the_attacker_finds_cells_left_alone(published, tmp_path):
    """The attack can succeed: publish the secondary cells again and primary ones fall."""
    copy = tmp_path / "copie"
    shutil.copytree(published, copy)
    wh = published.parent.parent / "warehouse" / "obs.duckdb"
    keys = ["niveau", "code_territoire", "perimetre", "famille", "section_naf", "tranche_effectifs"]
    for name, measure in (
        ("etablissements_actifs", "nb_etablissements"),
        ("etablissements_employeurs", "nb_etablissements_employeurs"),
        ("unites_legales_siege", "nb_unites_legales"),
    ):
        with warehouse.connect(wh, read_only=True) as con:
            truth = con.execute(
                f"select {', '.join(keys)}, {measure}::varchar as vrai "
                f"from indicators.{name} where mois = $m",
                {"m": MOIS},
            ).pl()
        df = _read(copy, name).join(truth, on=keys, how="left")
        again = pl.col("statut_secret") == "secondaire"
        df = df.with_columns(
            pl.when(again).then(pl.col("vrai")).otherwise(pl.col(measure)).alias(measure),
            pl.when(again)
            .then(pl.lit("publie"))
            .otherwise(pl.col("statut_secret"))
            .alias("statut_secret"),
        ).drop("vrai")
        df.write_csv(copy / "csv" / f"{name}.csv")
    _, intervals = attack(copy)
    pinned = [k for k, v in intervals.items() if v[1] - v[0] < 1 - 1e-6]
    assert len(pinned) > 10, "sans secret secondaire, des cases primaires doivent tomber"


def test_the_mask_is_the_same_run_after_run(published):
    wh = published.parent.parent / "warehouse" / "obs.duckdb"
    with warehouse.connect(wh, read_only=True) as con:
        first = secret_tables.statuses(secret_tables.Built(*_build(con)))
        second = secret_tables.statuses(secret_tables.Built(*_build(con)))
    assert first.equals(second)


def _build(con):
    built = secret_tables.build_system(con, MOIS)
    secret.protect(built.system)
    return built.system, built.cells
