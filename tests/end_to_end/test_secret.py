"""Statistical secrecy on the demo month: public tables in full, questionnaire cells protected.

The attacker here is independent of `observatoire/secret.py`: it reads the published CSV files
and the published territories only, writes every additive relation of the questionnaire
tables (each margin is the sum of its breakdown, each territory the sum of its communes), the
bounds any reader knows (respondents ≤ ESS establishments of the cell, citing ≤ respondents,
respondents outside the ESS ≤ active establishments outside the ESS, everything ≥ 0) and
integrality, and solves integer programs (HiGHS through scipy) for the smallest and largest
value of each secret cell.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from observatoire.cli import DEMO_MOIS
from observatoire.core import catalogue
from observatoire.publication import publish

ENSEMBLE = "ensemble"
DIMS = ("famille", "section_naf", "tranche_effectifs")
KEY = ("niveau", "code_territoire", *DIMS)


# how many dimensions a published questionnaire row may cross (the catalogue's declaration)
CROSSINGS = catalogue.indicators()["taux_reponse"].croisements_publies or len(DIMS)


def _depth(key: tuple) -> int:
    return sum(k != ENSEMBLE for k in key[2:])


def _csv(live: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(live / "csv" / f"{name}.csv", infer_schema_length=0)


@pytest.fixture(scope="module")
def live(demo) -> Path:
    data, _ = demo
    current = publish.current(data / "publication")
    assert current is not None
    return current


@pytest.fixture(scope="module")
def truth(demo) -> dict[str, pl.DataFrame]:
    """The unprotected indicators of the month, read from the warehouse (never published)."""
    data, _ = demo
    con = duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"), read_only=True)
    try:
        return {
            n: con.execute(f"select * from indicators.{n} where mois = $m", {"m": DEMO_MOIS}).pl()
            for n in ("taux_reponse", "besoins_cites", "emplois_salaries_estimes")
        }
    finally:
        con.close()


def test_the_same_month_gets_the_same_mask_whatever_the_row_order(demo, tmp_path):
    """Rows of an indicator are stored in whatever order the parallel insert gave; the mask
    of a month must not depend on it (a golden bundle once differed between two machines)."""
    from observatoire.secrecy import tables as secret_tables

    data, _ = demo
    copy = tmp_path / "w.duckdb"
    shutil.copy(data / "warehouse" / "observatoire.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        masks = []
        for order in ("random()", "all desc"):
            con.execute("select setseed(0.42)")
            for name in ("taux_reponse", "besoins_cites"):
                con.execute(
                    f"create or replace table indicators.{name} as "
                    f"select * from indicators.{name} order by {order}"
                )
            secret_tables.protect_month(con, DEMO_MOIS)
            masks.append(
                {
                    name: con.execute(
                        f"select * from diffusion.{name} where mois = $m order by all",
                        {"m": DEMO_MOIS},
                    ).fetchall()
                    for name in ("taux_reponse", "besoins_cites")
                }
            )
    finally:
        con.close()
    assert masks[0] == masks[1]
    assert any(r[-2] == "secret" for r in masks[0]["taux_reponse"])


def test_needs_masked_in_worker_processes_get_the_same_mask(demo, tmp_path, monkeypatch):
    """On a région the needs of a wave are masked in worker processes; the mask is the one
    masking them one after the other gives, and where no worker can start it is still made."""
    from observatoire.secrecy import tables as secret_tables

    data, _ = demo
    copy = tmp_path / "w.duckdb"
    shutil.copy(data / "warehouse" / "observatoire.duckdb", copy)
    pools = []

    class Pool(secret_tables.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs) -> None:
            pools.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    class NoPool:
        def __init__(self, *args, **kwargs) -> None:
            raise OSError(38, "Function not implemented")  # no /dev/shm for the semaphores

    con = duckdb.connect(str(copy))
    try:
        masks = []
        for pool in (None, Pool, NoPool):
            if pool is not None:
                monkeypatch.setattr(secret_tables, "PARALLEL_MIN_CELLS", 0)
                monkeypatch.setattr(secret_tables, "ProcessPoolExecutor", pool)
            secret_tables.protect_month(con, DEMO_MOIS)
            masks.append(
                con.execute(
                    "select * from diffusion.besoins_cites where mois = $m order by all",
                    {"m": DEMO_MOIS},
                ).fetchall()
            )
    finally:
        con.close()
    assert pools and all(n >= 2 for n in pools) or secret_tables.cores() < 2
    assert masks[0] == masks[1] == masks[2]  # workers, or none could start: the same mask
    assert sum(r[-2] == "secret" for r in masks[0]) > 100


def test_the_page_shows_secret_only_in_questionnaire_tables_with_the_reason(demo, tmp_path):
    """Staff read « secret » in the questionnaire tables only, with why said once under the
    table; the Sirene tables and key figures of every page show every figure."""
    import re

    from fastapi.testclient import TestClient

    from observatoire.web.app import create_app
    from observatoire.web.model import SECRET_NOTE

    data, _ = demo
    # a copy: the app keeps its snapshot open, the attacker below opens the demo's own
    shutil.copytree(data / "publication", tmp_path / "publication", symlinks=True)
    sirene = ("chiffres-cles", "familles", "sections", "tranches", "evolution", "communes")
    seen_secret = 0
    with TestClient(create_app(tmp_path / "publication")) as client:
        for path in ("/territoire/ept/T12", "/territoire/commune/94081"):
            html = client.get(path).text
            blocks = dict(
                re.findall(r'<section[^>]*id="bloc-([a-z-]+)"(.*?)</section>', html, re.S)
            )
            for table in sirene:
                if table in blocks:
                    assert "obs-secret" not in blocks[table], (path, table)
            key = html[: html.index('id="bloc-')]
            assert "obs-secret" not in key, path  # key figures: public
            for table in ("taux-reponse", "besoins"):
                if "obs-secret" in blocks[table]:
                    seen_secret += 1
                    assert SECRET_NOTE in blocks[table], (path, table)
    assert seen_secret > 0


# --------------------------------------------------------------------------------------------
# Public tables: in full
# --------------------------------------------------------------------------------------------


def test_every_public_table_is_published_in_full(live, demo):
    data, _ = demo
    con = duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"), read_only=True)
    try:
        for name, ind in catalogue.indicators().items():
            if ind.confidentiel or ind.listing:
                continue
            published = _csv(live, name).filter(pl.col("mois") == DEMO_MOIS)
            computed = con.execute(
                f"select count(*) from indicators.{name} where mois = $m", {"m": DEMO_MOIS}
            ).fetchone()[0]
            assert published.height == computed, name
            assert (published["statut_secret"] == "publie").all(), name
            assert published["motif_secret"].is_null().all(), name
            if "fourchette_elargie" in published.columns:
                assert (published["fourchette_elargie"] == "false").all(), name
    finally:
        con.close()


def test_headline_figures_are_back(live, truth):
    jobs = _csv(live, "emplois_salaries_estimes")
    whole = (
        (pl.col("perimetre") == "ess")
        & (pl.col("famille") == ENSEMBLE)
        & (pl.col("section_naf") == ENSEMBLE)
        & (pl.col("tranche_effectifs") == ENSEMBLE)
    )
    exact = truth["emplois_salaries_estimes"].filter(whole)
    for code in ("T12", "94081"):  # the EPT and Vitry-sur-Seine
        row = jobs.filter(whole & (pl.col("code_territoire") == code)).row(0, named=True)
        true = exact.filter(pl.col("code_territoire") == code).row(0, named=True)
        assert float(row["emplois_central"]) == pytest.approx(true["emplois_central"])
        assert float(row["emplois_bas"]) == pytest.approx(true["emplois_bas"])
        assert float(row["emplois_haut"]) == pytest.approx(true["emplois_haut"])
        assert (
            float(row["emplois_bas"]) < float(row["emplois_central"]) < float(row["emplois_haut"])
        )
    actifs = _csv(live, "etablissements_actifs")
    vitry = actifs.filter(
        (pl.col("code_territoire") == "94081")
        & (pl.col("famille") == "association")
        & (pl.col("section_naf") == ENSEMBLE)
        & (pl.col("tranche_effectifs") == ENSEMBLE)
    ).row(0, named=True)
    assert vitry["statut_secret"] == "publie" and int(vitry["nb_etablissements"]) > 100
    # the section × band crossings are back too
    crossed = actifs.filter(
        (pl.col("section_naf") != ENSEMBLE) & (pl.col("tranche_effectifs") != ENSEMBLE)
    )
    assert crossed.height > 1000


# --------------------------------------------------------------------------------------------
# Questionnaire tables: every small cell secret, and reading « secret » only
# --------------------------------------------------------------------------------------------


def test_cells_of_one_or_two_respondents_are_secret(live, truth):
    taux = _csv(live, "taux_reponse").join(
        truth["taux_reponse"].select(
            "vague",
            *KEY,
            pl.col("nb_repondants").alias("vrai"),
            pl.col("nb_repondants_hors_ess").alias("vrai_hors"),
        ),
        on=["vague", *KEY],
    )
    small = taux.filter(pl.col("vrai").is_between(1, 2))
    assert small.height > 100
    assert small["nb_repondants"].is_null().all() and small["taux_reponse"].is_null().all()
    assert (small["statut_secret"] == "secret").all()
    hors = taux.filter(pl.col("vrai_hors").is_between(1, 2) & pl.col("famille").eq(ENSEMBLE))
    hors = hors.filter(
        (pl.col("section_naf") == ENSEMBLE) & (pl.col("tranche_effectifs") == ENSEMBLE)
    )
    assert hors["nb_repondants_hors_ess"].is_null().all()
    besoins = _csv(live, "besoins_cites").join(
        truth["taux_reponse"].select("vague", *KEY, pl.col("nb_repondants").alias("vrai")),
        on=["vague", *KEY],
    )
    small_b = besoins.filter(pl.col("vrai").is_between(1, 2))
    assert small_b.height > 1000
    assert small_b["nb_citant"].is_null().all() and small_b["part_citant"].is_null().all()
    # a secret figure reads « secret » and nothing more
    for df in (taux, besoins):
        assert set(df["statut_secret"].unique()) <= {"publie", "secret"}
        assert df["motif_secret"].is_null().all()


def test_rows_do_not_tell_zero_from_non_zero(live, truth):
    """Every cell of the ESS population has its rows, answered or not, for every need."""
    taux = _csv(live, "taux_reponse")
    besoins = _csv(live, "besoins_cites")
    needs = besoins["besoins"].n_unique() if "besoins" in besoins.columns else None
    assert needs is None
    per_need = besoins.group_by("vague", "besoin").len()
    assert (per_need["len"] == taux.height).all()
    assert (taux["nb_repondants"] == "0").sum() > 100  # cells nobody answered are rows too


def test_questionnaire_tables_break_down_one_dimension_at_a_time(live, truth):
    """Totals and one breakdown per row are published; the crossings, computed in the
    warehouse as the mask's inner cells, are not."""
    crossings = catalogue.indicators()["taux_reponse"].croisements_publies
    assert crossings == 1
    depth = pl.sum_horizontal(*((pl.col(d) != ENSEMBLE).cast(pl.Int32) for d in DIMS))
    for name in ("taux_reponse", "besoins_cites"):
        published = _csv(live, name)
        assert published.select(depth.max()).item() == 1, name
        expected = truth[name].filter(depth <= 1)
        assert published.height == expected.height > 0, name
        assert truth[name].filter(depth > 1).height > published.height, name


# --------------------------------------------------------------------------------------------
# The attacker
# --------------------------------------------------------------------------------------------


@dataclass
class Program:
    """Unknowns, equalities A·x = b, inequalities G·x ≤ h, bounds, all from published files."""

    names: list[tuple] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)
    upper: list[float] = field(default_factory=list)
    eq: list[tuple[dict[int, float], float]] = field(default_factory=list)
    le: list[tuple[dict[int, float], float]] = field(default_factory=list)

    def var(self, name: tuple, upper: float) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
            self.upper.append(upper)
        return self.index[name]

    def _matrix(self, rows: list[tuple[dict[int, float], float]]):
        data, r, c = [], [], []
        for i, (coefs, _) in enumerate(rows):
            for j, v in coefs.items():
                r.append(i)
                c.append(j)
                data.append(v)
        return coo_matrix((data, (r, c)), shape=(len(rows), len(self.names))).tocsr()

    def solve(self, objective: np.ndarray, integral: bool = False) -> np.ndarray:
        """A table consistent with everything published: an LP vertex, or an integer table."""
        n = len(self.names)
        lower, upper = np.zeros(n), np.array(self.upper, dtype=float)
        a_eq = self._matrix(self.eq) if self.eq else None
        b_eq = np.array([rhs for _, rhs in self.eq]) if self.eq else None
        a_le = self._matrix(self.le) if self.le else None
        h = np.array([rhs for _, rhs in self.le]) if self.le else None
        if not integral:
            res = linprog(
                objective,
                A_eq=a_eq,
                b_eq=b_eq,
                A_ub=a_le,
                b_ub=h,
                bounds=np.column_stack([lower, upper]),
                method="highs",
            )
        else:
            cons = []
            if a_eq is not None:
                cons.append(LinearConstraint(a_eq, b_eq, b_eq))
            if a_le is not None:
                cons.append(LinearConstraint(a_le, -np.inf, h))
            res = milp(
                objective,
                constraints=cons,
                integrality=np.ones(n),
                bounds=Bounds(lower, upper),
            )
        assert res.status == 0, res.message  # the true table is always a solution
        return res.x


class Relations:
    """A published cube: each figure is known or an unknown, with the relations between them."""

    def __init__(self, program: Program, tag: str, rows: pl.DataFrame, value: str, upper):
        self.program, self.tag = program, tag
        self.known: dict[tuple, float] = {}
        self.unknown: dict[tuple, int] = {}
        self.fine: dict[tuple, int] = {}
        for r in rows.iter_rows(named=True):
            key = tuple(r[k] for k in KEY)
            if r[value] is None:
                self.unknown[key] = program.var((tag, *key), upper(r, key))
            else:
                self.known[key] = float(r[value])

    def term(self, key: tuple) -> tuple[int | None, float]:
        """(variable, constant) of a cell; a cell with no row is an empty cell."""
        if key in self.unknown:
            return self.unknown[key], 0.0
        return None, self.known.get(key, 0.0)

    def add_sum(self, parent: tuple, children: list[tuple]) -> None:
        coefs: dict[int, float] = {}
        rhs = 0.0
        v, k = self.term(parent)
        if v is None:
            rhs += k
        else:
            coefs[v] = coefs.get(v, 0.0) - 1.0
        for child in children:
            v, k = self.term(child)
            if v is None:
                rhs -= k
            else:
                coefs[v] = coefs.get(v, 0.0) + 1.0
        coefs = {j: c for j, c in coefs.items() if c}
        if coefs:
            # Σ children − parent = 0, constants moved to the right-hand side
            self.program.eq.append((coefs, rhs))

    def write_fine(self, fine: dict[tuple, float]) -> dict[tuple, int]:
        """Unknowns for the finest cells (commune × family × section × band), published or
        not: each published commune cell is the sum of those under it, and each is bounded by
        its ESS establishments, public in `etablissements_actifs`."""
        out: dict[tuple, int] = {}
        for key, ess in fine.items():
            name = ("fin", *key)
            if name in self.known or name in self.unknown:
                continue
            v = self.program.var((self.tag + ":fin", *key), ess)
            self.unknown[name] = v
            out[key] = v
        by_commune: dict[str, list[tuple]] = {}
        for key in fine:
            by_commune.setdefault(key[0], []).append(key)
        for key in list(self.known) + list(self.unknown):
            if key[0] != "commune":
                continue
            children = [
                ("fin", *f)
                for f in by_commune.get(key[1], [])
                if all(key[2 + j] in (ENSEMBLE, f[1 + j]) for j in range(len(DIMS)))
            ]
            self.add_sum(key, children)
        return out

    def write(self, communes: dict[tuple[str, str], list[str]], dims: tuple[str, ...]) -> None:
        keys = set(self.known) | set(self.unknown)
        by_rest: dict[tuple, list[tuple]] = {}
        for d_i, d in enumerate(dims):
            pos = 2 + DIMS.index(d)
            by_rest = {}
            for key in keys:
                if key[pos] != ENSEMBLE:
                    rest = key[:pos] + (ENSEMBLE,) + key[pos + 1 :]
                    by_rest.setdefault(rest, []).append(key)
            for parent in keys:
                # a row breaking down as many dimensions as published has its breakdown
                # unpublished, not empty: the finest cells (write_fine) carry it instead
                if parent[pos] == ENSEMBLE and _depth(parent) < CROSSINGS:
                    self.add_sum(parent, by_rest.get(parent, []))
            del d_i
        for key in keys:
            if key[0] == "commune":
                continue
            members = communes.get((key[0], key[1]), [])
            self.add_sum(key, [("commune", c, *key[2:]) for c in members])


def attack(live: Path, targets: dict[tuple, int]) -> dict[tuple, tuple[float, float, bool]]:
    """Range of each target cell from the published files only: (smallest, largest, exact).

    Not exact: two values seen in tables consistent with the files (the cell is not pinned,
    its true range may be wider). Exact: the smallest and largest values themselves."""
    taux = _csv(live, "taux_reponse")
    besoins = _csv(live, "besoins_cites")
    actifs = _csv(live, "etablissements_actifs")
    snap = duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True)
    try:
        terr = snap.execute(
            "select niveau, code_territoire, code_commune from indicators.territoires"
        ).fetchall()
    finally:
        snap.close()
    communes: dict[tuple[str, str], list[str]] = {}
    for niveau, code, commune in terr:
        if niveau != "commune":
            communes.setdefault((niveau, code), []).append(commune)
    hors_actifs = {
        (r["niveau"], r["code_territoire"]): float(r["nb_etablissements"])
        for r in actifs.filter(
            (pl.col("perimetre") == "hors_ess")
            & (pl.col("famille") == "hors_ess")
            & (pl.col("section_naf") == ENSEMBLE)
            & (pl.col("tranche_effectifs") == ENSEMBLE)
        ).iter_rows(named=True)
    }
    # the finest crossing of the ESS, published or not in the questionnaire tables
    fine = {
        (r["code_territoire"], *(r[d] for d in DIMS)): float(r["nb_etablissements"])
        for r in actifs.filter(
            (pl.col("niveau") == "commune")
            & (pl.col("perimetre") == "ess")
            & pl.all_horizontal(pl.col(d) != ENSEMBLE for d in DIMS)
        ).iter_rows(named=True)
    }
    out: dict[tuple, tuple[float, float, bool]] = {}
    for vague in sorted(taux["vague"].unique().to_list()):
        rows = taux.filter(pl.col("vague") == vague)
        ess = {
            tuple(r[k] for k in KEY): float(r["nb_etablissements_ess"])
            for r in rows.iter_rows(named=True)
        }
        programs: list[tuple[Program, list[tuple]]] = []

        def respondents(
            program: Program, vague: str = vague, rows: pl.DataFrame = rows, ess: dict = ess
        ) -> Relations:
            rel = Relations(
                program, "R:" + vague, rows, "nb_repondants", lambda _row, cell: ess[cell]
            )
            rel.write(communes, DIMS)
            rel.fine = rel.write_fine(fine)
            return rel

        p = Program()
        respondents(p)
        programs.append((p, [n for n in p.names]))
        # outside the ESS: territory totals only
        totals = rows.filter(pl.all_horizontal(pl.col(d) == ENSEMBLE for d in DIMS))
        ph = Program()
        hors = Relations(
            ph,
            "RH:" + vague,
            totals,
            "nb_repondants_hors_ess",
            lambda r, key: hors_actifs.get((key[0], key[1]), 0.0),
        )
        for key in list(hors.known) + list(hors.unknown):
            if key[0] == "commune":
                continue
            members = communes.get((key[0], key[1]), [])
            with_row = [
                c
                for c in members
                if ("commune", c, *key[2:]) in hors.known
                or ("commune", c, *key[2:]) in hors.unknown
            ]
            # communes with no row (no ESS establishment) still have respondents outside it
            rest = sum(hors_actifs.get(("commune", c), 0.0) for c in members if c not in with_row)
            children = [("commune", c, *key[2:]) for c in with_row]
            if rest:
                slack = ph.var(("RH-reste:" + vague, *key), rest)
                hors.unknown[("reste", *key)] = slack
                children.append(("reste", *key))
            hors.add_sum(key, children)
        programs.append((ph, list(ph.names)))
        # each need, with the respondents it is bounded by
        for besoin in sorted(besoins.filter(pl.col("vague") == vague)["besoin"].unique()):
            pb = Program()
            rel_r = respondents(pb)
            need = besoins.filter((pl.col("vague") == vague) & (pl.col("besoin") == besoin))
            rel_b = Relations(
                pb, f"B:{vague}:{besoin}", need, "nb_citant", lambda _row, cell, ess=ess: ess[cell]
            )
            rel_b.write(communes, DIMS)
            rel_b.write_fine(fine)  # each bounded by its respondents just below
            for key, v in rel_b.unknown.items():
                rv, rk = rel_r.term(key)
                if rv is None:
                    pb.upper[v] = min(pb.upper[v], rk)
                else:
                    pb.le.append(({v: 1.0, rv: -1.0}, 0.0))
            programs.append((pb, [n for n in pb.names if n[0].startswith("B:")]))
        for program, names in programs:
            wanted = [n for n in names if n in targets]
            if not wanted:
                continue
            out.update(_intervals(program, wanted))
    return out


def _intervals(program: Program, wanted: list[tuple]) -> dict[tuple, tuple[float, float, bool]]:
    """Each cell's range: LP tables first, then integer programs for the narrow ones.

    Every LP solution is a table consistent with the published files, so the values seen
    bound the range from inside; a cell seen two integers apart is not pinned. For the cells
    left, the LP range (a superset of the integer one) decides when it holds two integers;
    otherwise the integer programs give the exact smallest and largest integer values.
    """
    rng = np.random.default_rng(0)
    n = len(program.names)
    idx = np.array([program.index[w] for w in wanted])
    lo = np.full(idx.size, np.inf)
    hi = np.full(idx.size, -np.inf)

    def see(x: np.ndarray) -> None:
        nonlocal lo, hi
        lo, hi = np.minimum(lo, x[idx]), np.maximum(hi, x[idx])

    def open_() -> np.ndarray:
        return np.nonzero(~(np.floor(hi + 1e-6) > np.ceil(lo - 1e-6)))[0]

    for _ in range(4):
        see(program.solve(rng.uniform(-1.0, 1.0, n)))
    for _ in range(6):
        left = open_()
        if left.size == 0:
            break
        c = np.zeros(n)
        c[idx[left]] = rng.choice([-1.0, 1.0], left.size)
        see(program.solve(c))
        see(program.solve(-c))
    out = {}
    exact = np.zeros(idx.size, dtype=bool)
    for k in open_().tolist():
        c = np.zeros(n)
        c[idx[k]] = 1.0
        low, high = program.solve(c)[idx[k]], program.solve(-c)[idx[k]]
        if np.floor(high + 1e-6) - np.ceil(low - 1e-6) < 1:
            low = program.solve(c, integral=True)[idx[k]]
            high = program.solve(-c, integral=True)[idx[k]]
        lo[k], hi[k], exact[k] = low, high, True
    for k, w in enumerate(wanted):
        out[w] = (float(lo[k]), float(hi[k]), bool(exact[k]))
    return out


def _targets(truth: dict[str, pl.DataFrame]) -> dict[tuple, int]:
    """Cells of 1 or 2 respondents, as the attacker names them."""
    crossings = catalogue.indicators()["taux_reponse"].croisements_publies
    t = truth["taux_reponse"]
    if crossings is not None:
        t = t.filter(pl.sum_horizontal(*((pl.col(d) != ENSEMBLE) for d in DIMS)) <= crossings)
    out: dict[tuple, int] = {}
    for r in t.iter_rows(named=True):
        key = tuple(r[k] for k in KEY)
        if 1 <= r["nb_repondants"] <= 2:
            out[("R:" + r["vague"], *key)] = r["nb_repondants"]
        h = r["nb_repondants_hors_ess"]
        if h is not None and 1 <= h <= 2:
            out[("RH:" + r["vague"], *key)] = h
    small = t.filter(pl.col("nb_repondants").is_between(1, 2)).select("vague", *KEY)
    b = truth["besoins_cites"].join(small, on=["vague", *KEY])
    for r in b.iter_rows(named=True):
        out[(f"B:{r['vague']}:{r['besoin']}", *(r[k] for k in KEY))] = r["nb_citant"]
    return out


@pytest.fixture(scope="module")
def attacked(live, truth):
    targets = _targets(truth)
    return targets, attack(live, targets)


def test_no_cell_of_one_or_two_respondents_can_be_pinned(attacked):
    targets, intervals = attacked
    # every target is a secret unknown of the attacker, with the true value inside its range
    assert set(intervals) == set(targets)
    pinned = [k for k, (lo, hi, _) in intervals.items() if hi - lo < 1 - 1e-6]
    for k, (lo, hi, is_exact) in intervals.items():
        # a range seen from witness tables only is inside the true range: it need not hold
        # the true value; an exact range (its own LP / integer programs) must
        if is_exact:
            assert lo - 1e-6 <= targets[k] <= hi + 1e-6, k
    assert len(targets) > 1500
    assert not pinned, pinned[:5]


def test_the_attacker_pins_a_cell_left_alone(live, truth, tmp_path):
    """The same attacker on a copy where one secret cell's partners are published again."""
    taux = _csv(live, "taux_reponse")
    true = truth["taux_reponse"]
    secret = taux.filter(pl.col("nb_repondants").is_null() & (pl.col("niveau") == "commune"))
    target = secret.join(
        true.filter(pl.col("nb_repondants").is_between(1, 2)), on=["vague", *KEY]
    ).row(0, named=True)
    copy = tmp_path / "pub"
    shutil.copytree(live, copy)
    key = {k: target[k] for k in ("vague", *KEY)}
    is_target = pl.all_horizontal(pl.col(k) == v for k, v in key.items())
    revealed = (
        taux.join(
            true.select("vague", *KEY, pl.col("nb_repondants").cast(pl.Utf8).alias("v")),
            on=["vague", *KEY],
        )
        .with_columns(
            pl.when(is_target)
            .then(pl.col("nb_repondants"))
            .otherwise(pl.coalesce("nb_repondants", "v"))
            .alias("nb_repondants")
        )
        .drop("v")
    )
    revealed.write_csv(copy / "csv" / "taux_reponse.csv")
    name = ("R:" + target["vague"], *(target[k] for k in KEY))
    intervals = attack(copy, {name: 1})
    lo, hi, exact = intervals[name]
    assert exact and hi - lo < 1 - 1e-6
