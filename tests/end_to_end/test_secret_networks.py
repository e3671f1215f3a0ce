"""A network list declared confidential: its rows masked by the questionnaire's rules, and the
public tables no longer built on it.

The demo's SIAE list is declared confidential on a copy of the demo's warehouse; the attacker
reads the masked rows only (with the public tables' bounds) and must pin none of the cells of
1 or 2 members.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy.optimize import linprog

from observatoire import indicators
from observatoire.cli import DEMO_MOIS
from observatoire.secrecy import tables as secret_tables

PARTS = ("nb_ess", "nb_hors_ess", "nb_fermes", "nb_non_trouves")
SUMS = {
    "nb_actifs": ("nb_ess", "nb_hors_ess"),
    "nb_trouves_sirene": ("nb_ess", "nb_hors_ess", "nb_fermes"),
    "nb_membres": ("nb_ess", "nb_hors_ess", "nb_fermes", "nb_non_trouves"),
}
COUNTS = (*PARTS, *SUMS)


@pytest.fixture(scope="module")
def masked(demo, tmp_path_factory) -> dict:
    data, _ = demo
    copy = Path(tmp_path_factory.mktemp("reseau_confidentiel")) / "w.duckdb"
    shutil.copy(data / "warehouse" / "observatoire.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        before = con.execute(
            "select * from indicators.ess_hors_reseau where mois = $m", {"m": DEMO_MOIS}
        ).pl()
        con.execute("update clean.reseaux set confidentiel = true where reseau = 'siae'")
        for name in ("ess_hors_reseau", "ressourceries", "reseaux_couverture"):
            indicators.compute_indicator(con, name, DEMO_MOIS)
        secret_tables.protect_month(con, DEMO_MOIS)

        def q(sql: str) -> pl.DataFrame:
            return con.execute(sql, {"m": DEMO_MOIS} if "$m" in sql else {}).pl()

        return {
            "before": before,
            "true": q("select * from indicators.reseaux_couverture where mois = $m"),
            "published": q("select * from diffusion.reseaux_couverture where mois = $m"),
            "hors": q("select * from diffusion.ess_hors_reseau where mois = $m"),
            "territories": q(
                "select distinct niveau, code_territoire, code_commune from ref.territoire_niveaux "
                "where not englobant"
            ),
            "ess": q(
                "select code_territoire, nb_etablissements from indicators.etablissements_actifs "
                "where mois = $m and niveau = 'commune' and perimetre = 'ess' "
                "and famille = 'ensemble' and section_naf = 'ensemble' "
                "and tranche_effectifs = 'ensemble'"
            ),
            "in_public_list": con.execute(
                "select count(distinct r.siret) from clean.rapprochements as r "
                "join clean.reseaux_membres as m on m.reseau = r.cle_source "
                "and m.membre_id = r.enregistrement_id "
                "join clean.etablissements_perimetre as e on e.mois = r.mois and e.siret = r.siret "
                "where r.mois = $m and r.source = 'reseau' and r.statut = 'lie' "
                "and m.reseau <> 'siae' and e.actif and e.ess",
                {"m": DEMO_MOIS},
            ).fetchone()[0],
        }
    finally:
        con.close()


def test_small_territories_of_a_confidential_list_are_secret(masked):
    siae = masked["published"].filter(pl.col("reseau") == "siae")
    true = masked["true"].filter(pl.col("reseau") == "siae")
    # a row for every territory, members or not: a row's presence tells nothing
    n_territories = masked["territories"].select("niveau", "code_territoire").unique().height
    assert siae.height == n_territories > true.height
    small = siae.join(
        true.filter(pl.col("nb_membres").is_between(1, 2)).select(
            "niveau", "code_territoire", pl.col("nb_membres").alias("vrai")
        ),
        on=["niveau", "code_territoire"],
    )
    assert small.height >= 3
    for c in (*COUNTS, "emplois_central"):
        assert small[c].is_null().all(), c
    assert (small["statut_secret"] == "secret").all()
    assert siae["emplois_max_unite"].is_null().all()  # one member's jobs: never published
    assert siae["motif_secret"].is_null().all()
    # and the list still says something: its large territories are published
    shown = siae.filter(pl.col("statut_secret") == "publie")
    assert shown.filter(pl.col("nb_membres") >= 3).height >= 1
    # public lists' rows are published as computed
    others = masked["published"].filter(pl.col("reseau") != "siae")
    assert others.height > 0 and (others["statut_secret"] == "publie").all()
    assert others["emplois_max_unite"].is_not_null().any()


def test_public_tables_are_built_on_public_lists_only(masked):
    hors = masked["hors"]
    total = hors.filter((pl.col("niveau") == "ept") & (pl.col("famille") == "ensemble")).row(
        0, named=True
    )
    assert total["nb_dans_un_reseau"] == masked["in_public_list"]
    before = (
        masked["before"]
        .filter((pl.col("niveau") == "ept") & (pl.col("famille") == "ensemble"))
        .row(0, named=True)
    )
    assert before["nb_dans_un_reseau"] > total["nb_dans_un_reseau"]
    assert (hors["statut_secret"] == "publie").all()


def test_no_cell_of_one_or_two_members_can_be_pinned(masked):
    """Unknowns: the list's secret cells. Known: every published cell, each territory as the
    sum of its communes, the sums between measures, ESS members ≤ ESS establishments."""
    siae = masked["published"].filter(pl.col("reseau") == "siae")
    true = masked["true"].filter(pl.col("reseau") == "siae")
    members = {
        (r["niveau"], r["code_territoire"]): r["nb_membres"] for r in true.iter_rows(named=True)
    }
    ess = dict(masked["ess"].iter_rows())
    communes: dict[tuple, list[str]] = {}
    for niveau, code, commune in masked["territories"].iter_rows():
        if niveau != "commune":
            communes.setdefault((niveau, code), []).append(commune)
    index: dict[tuple, int] = {}
    upper: list[float] = []
    known: dict[tuple, float] = {}
    for r in siae.iter_rows(named=True):
        key = (r["niveau"], r["code_territoire"])
        for c in COUNTS:
            if r[c] is None:
                index[(*key, c)] = len(upper)
                bound = ess.get(key[1], np.inf) if c == "nb_ess" and key[0] == "commune" else None
                upper.append(np.inf if bound is None else float(bound))
            else:
                known[(*key, c)] = float(r[c])
    rows: list[tuple[dict[int, float], float]] = []

    def equation(terms: list[tuple[tuple, float]]) -> None:
        coefs: dict[int, float] = {}
        rhs = 0.0
        for name, sign in terms:
            if name in index:
                coefs[index[name]] = coefs.get(index[name], 0.0) + sign
            else:
                rhs -= sign * known[name]
        if coefs:
            rows.append((coefs, rhs))

    for (niveau, code), members_of in communes.items():
        for c in COUNTS:
            equation([((niveau, code, c), -1.0)] + [(("commune", m, c), 1.0) for m in members_of])
    for r in siae.iter_rows(named=True):
        key = (r["niveau"], r["code_territoire"])
        for total, parts in SUMS.items():
            equation([((*key, total), -1.0)] + [((*key, p), 1.0) for p in parts])
    n = len(upper)
    a = np.zeros((len(rows), n))
    b = np.zeros(len(rows))
    for i, (coefs, rhs) in enumerate(rows):
        for j, v in coefs.items():
            a[i, j] = v
        b[i] = rhs
    bounds = [(0, None if np.isinf(u) else u) for u in upper]
    targets = [(*key, c) for key, m in members.items() if 1 <= m <= 2 for c in COUNTS]
    assert len(targets) >= 3 * len(COUNTS)
    pinned = []
    for t in targets:
        assert t in index, t  # every count of a small territory is an unknown
        c = np.zeros(n)
        c[index[t]] = 1.0
        low = linprog(c, A_eq=a, b_eq=b, bounds=bounds, method="highs")
        high = linprog(-c, A_eq=a, b_eq=b, bounds=bounds, method="highs")
        assert low.status == 0 and high.status in (0, 3)  # 3: unbounded, as free as can be
        top = np.inf if high.status == 3 else -high.fun
        if np.floor(top + 1e-7) <= np.ceil(low.fun - 1e-7):
            pinned.append(t)
    assert not pinned, pinned[:5]
