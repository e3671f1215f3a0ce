"""From the month's indicators to the secrecy system, and back to protected tables.

`observatoire/secret.py` knows cells and lines; this module knows what each published table
means: which cells a row is made of, which equations tie them, and how a row reads once masked.
Every published figure must be a cell here, or tied to cells by an equation; a table added to
the catalogue without its entry in `ROW_CELLS` makes `protect_month` fail (tested).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from observatoire import catalogue, secret, warehouse
from observatoire.secret import (
    DOMINANCE,
    DOMINANCE_SHARE,
    ENSEMBLE,
    ESS_FAMILIES,
    FREQUENCE,
    FREQUENCY_MIN,
    NONE,
    PRIMAIRE,
    PUBLIE,
    SECONDAIRE,
    System,
    _dec,
    build_lines,
    flat_decomposition,
    geo_decompositions,
    protect,
)

log = logging.getLogger(__name__)

SCHEMA = "diffusion"
STATUS_COLUMNS = ("statut_secret", "motif_secret")
LISTINGS = {"annuaire_ess"}
HIDDEN_FAMILIES = ("hors_ess_prive", "public")
PRIVATE_NODES = ("prive", *HIDDEN_FAMILIES)
GEO_WEIGHT = {"commune": 1, "ept": 4, "epci": 4, "selection": 4, "departement": 16, "region": 64}

# Sirene establishment cells: every active establishment in a commune, by family leaf
# (the six ESS families, private non-ESS, public), section, band and employer flag, with the
# legal unit it belongs to; then rolled up to every published cell of tables A (active),
# E (employers), N (non-employers, never published) in one pass.
ETAB_SQL = """
with base as (
    select
        e.code_commune,
        e.siren,
        case when e.ess then e.famille_ess when e.prive then 'hors_ess_prive' else 'public' end
            as fam,
        coalesce(e.naf_section, 'non_classe') as sec,
        coalesce(e.tranche_effectifs, 'non_renseignee') as tra,
        case when e.employeur then 'E' else 'N' end as emp,
        count(*) as n,
        sum(coalesce((e.effectif_min + coalesce(e.effectif_max, e.effectif_min)) / 2.0, 0))
            as central
    from clean.etablissements_perimetre as e
    where e.mois = $mois and e.actif
    group by all
),
fam_map as (
    select * from (values {fam_values}) as t(leaf, node, employeurs_seulement)
),
expanded as (
    select
        t.niveau || ':' || t.code_territoire as geo,
        f.node as d1,
        s.sec as d2,
        r.tra as d3,
        m.emp as tab,
        b.siren,
        b.n,
        b.central
    from base as b
    join ref.territoire_niveaux as t on t.code_commune = b.code_commune
    join fam_map as f on f.leaf = b.fam
    cross join unnest([b.sec, 'ensemble']) as s(sec)
    cross join unnest([b.tra, 'ensemble']) as r(tra)
    cross join unnest([b.emp, 'A']) as m(emp)
    where (not f.employeurs_seulement or m.emp = 'E')
      and (s.sec = 'ensemble' or r.tra = 'ensemble')
),
per_unit as (
    select tab, geo, d1, d2, d3, siren, sum(n) as n, sum(central) as central
    from expanded
    group by all
)
select
    tab, geo, d1, d2, d3,
    sum(n)::double as value,
    count(*)::bigint as n_unites,
    sum(central)::double as central,
    max(central)::double as max_unite
from per_unit
group by all
"""


def _fam_values() -> str:
    rows: list[tuple[str, str, bool]] = []
    for f in ESS_FAMILIES:
        rows += [(f, f, False), (f, "ess", False), (f, ENSEMBLE, False), (f, "prive", True)]
    rows += [
        ("hors_ess_prive", "hors_ess", False),
        ("hors_ess_prive", ENSEMBLE, False),
        ("hors_ess_prive", "hors_ess_prive", True),
        ("hors_ess_prive", "prive", True),
        ("public", "hors_ess", False),
        ("public", ENSEMBLE, False),
        ("public", "public", True),
    ]
    return ", ".join(f"('{a}', '{b}', {str(c).lower()})" for a, b, c in rows)


def _fam_node(perimetre: pl.Expr, famille: pl.Expr) -> pl.Expr:
    """(perimetre, famille) of the published cubes → one family node.

    (hors_ess, ensemble) and (hors_ess, hors_ess) are the same cell: both read `hors_ess`.
    """
    return (
        pl.when(famille != ENSEMBLE)
        .then(pl.when(famille == "hors_ess").then(pl.lit("hors_ess")).otherwise(famille))
        .otherwise(perimetre)
    )


def _ess_node(famille: pl.Expr) -> pl.Expr:
    """Questionnaire and network tables: famille = ensemble means the whole ESS."""
    return pl.when(famille == ENSEMBLE).then(pl.lit("ess")).otherwise(famille)


def _geo() -> pl.Expr:
    return (pl.col("niveau") + ":" + pl.col("code_territoire")).alias("geo")


# Published detail: at most two of family, NAF section and size band crossed. A full
# family × section × band cube per commune is mostly secret (38 % of its cells hold 1–2
# units), and tables that share only their family margin can be audited exactly from their
# own cells (any consistent pair of margins has a non-negative table behind it), which keeps
# the audit's linear programs small. Jobs depend on the bands inside each cell, so they are
# published by family and band only (see JOBS_BY_BAND_ONLY).
CROSSED = ("section_naf", "tranche_effectifs")
JOBS_BY_BAND_ONLY = ("emplois_salaries_estimes", "part_ess_emploi_prive")


def published_rows(name: str) -> pl.Expr:
    """Rows of an indicator that are published at all (before the secret mask)."""
    ind = catalogue.indicators()[name]
    if name in JOBS_BY_BAND_ONLY:
        return pl.col("section_naf") == ENSEMBLE
    if all(c in ind.dimensions for c in CROSSED):
        return (pl.col("section_naf") == ENSEMBLE) | (pl.col("tranche_effectifs") == ENSEMBLE)
    return pl.lit(True)


def _read(con: duckdb.DuckDBPyConnection, name: str, mois: str) -> pl.DataFrame:
    df = con.execute(f"select * from indicators.{name} where mois = $mois", {"mois": mois}).pl()
    return df.filter(published_rows(name))


def _cells_from(
    df: pl.DataFrame, tab: pl.Expr, d1: pl.Expr, d2: pl.Expr, d3: pl.Expr, value: str
) -> pl.DataFrame:
    """Cells counted in establishments (or members, respondents): one unit per counted item."""
    return df.select(
        tab.alias("tab"),
        _geo(),
        d1.alias("d1"),
        d2.alias("d2"),
        d3.alias("d3"),
        pl.col(value).cast(pl.Float64).alias("value"),
        pl.col(value).cast(pl.Int64).alias("n_unites"),
        pl.lit(0.0).alias("central"),
        pl.lit(0.0).alias("max_unite"),
    )


NO = pl.lit(NONE)


@dataclass
class Built:
    system: System
    cells: pl.DataFrame  # with keys, for mapping back


def build_system(con: duckdb.DuckDBPyConnection, mois: str) -> Built:
    """Every cell published for the month, and every equation an attacker can write."""
    etab = con.execute(ETAB_SQL.replace("{fam_values}", _fam_values()), {"mois": mois}).pl()
    parts = [etab, _jobs_totals(etab)]
    # unites_legales_siege: legal units at their head office; each is a unit of its own
    ul = _read(con, "unites_legales_siege", mois)
    parts.append(
        _cells_from(
            ul,
            pl.lit("U"),
            _fam_node(pl.col("perimetre"), pl.col("famille")),
            pl.col("section_naf"),
            pl.col("tranche_effectifs"),
            "nb_unites_legales",
        ).unique(subset=["tab", "geo", "d1", "d2", "d3"])
    )
    cf = _read(con, "creations_fermetures", mois)
    for tab, col in (("C", "nb_creations"), ("F", "nb_fermetures")):
        parts.append(
            _cells_from(
                cf,
                pl.lit(tab),
                _fam_node(pl.col("perimetre"), pl.col("famille")),
                pl.col("annee").cast(pl.Utf8),
                NO,
                col,
            ).unique(subset=["tab", "geo", "d1", "d2", "d3"])
        )
    tr = _read(con, "taux_reponse", mois)
    parts.append(
        _cells_from(
            tr,
            pl.lit("R:") + pl.col("vague"),
            _ess_node(pl.col("famille")),
            pl.col("section_naf"),
            pl.col("tranche_effectifs"),
            "nb_repondants",
        )
    )
    parts.append(
        _cells_from(
            tr.filter(pl.col("famille") == ENSEMBLE),
            pl.lit("RH:") + pl.col("vague"),
            NO,
            pl.col("section_naf"),
            pl.col("tranche_effectifs"),
            "nb_repondants_hors_ess",
        )
    )
    bc = _read(con, "besoins_cites", mois)
    parts.append(
        _cells_from(
            bc,
            pl.lit("B:") + pl.col("vague") + ":" + pl.col("besoin"),
            _ess_node(pl.col("famille")),
            pl.col("section_naf"),
            pl.col("tranche_effectifs"),
            "nb_citant",
        )
    )
    ehr = _read(con, "ess_hors_reseau", mois)
    for tab, col in (("D", "nb_dans_un_reseau"), ("O", "nb_hors_reseau")):
        parts.append(
            _cells_from(
                ehr,
                pl.lit(tab),
                _ess_node(pl.col("famille")),
                pl.lit(ENSEMBLE),
                pl.lit(ENSEMBLE),
                col,
            )
        )
    rc = _read(con, "reseaux_couverture", mois)
    for col in RESEAU_COUNTS:
        parts.append(_cells_from(rc, pl.lit(f"M:{col}:") + pl.col("reseau"), NO, NO, NO, col))
    parts.append(_jobs_cells(rc, pl.lit("M:emplois:") + pl.col("reseau")))
    rs = _read(con, "ressourceries", mois)
    parts.append(_cells_from(rs, pl.lit("RS"), NO, NO, NO, "nb_ressourceries"))
    parts.append(_jobs_cells(rs, pl.lit("RS:emplois")))
    rp = _read(con, "rapprochement_perimetre_insee", mois)
    rp_key = pl.col("cas") + "|" + pl.col("regle")
    parts.append(_cells_from(rp, pl.lit("RPE"), rp_key, NO, NO, "nb_etablissements_actifs"))
    # distinct legal units do not add up across communes or cases: no equation, primary only
    parts.append(_cells_from(rp, pl.lit("RPU"), rp_key, NO, NO, "nb_unites_legales"))

    cells = pl.concat([p.select(CELL_COLUMNS) for p in parts], how="vertical_relaxed")
    # ids in a stable order: the same month gives the same mask, run after run
    cells = (
        cells.sort("tab", "geo", "d1", "d2", "d3")
        .with_row_index("cid")
        .with_columns(pl.col("cid").cast(pl.Int64))
    )
    levels = set(cells["geo"].str.split(":").list.first().unique().to_list())
    cells = _primary(cells)
    cells = _costs(cells)
    decs = _decompositions(con, cells, levels)
    lines = build_lines(cells, decs)
    n_lines = int(lines["lid"].max() + 1) if lines.height else 0
    system = System(cells=cells, lines=lines, rhs=np.zeros(n_lines))
    return Built(system=system, cells=cells)


CELL_COLUMNS = ["tab", "geo", "d1", "d2", "d3", "value", "n_unites", "central", "max_unite"]
RESEAU_COUNTS = (
    "nb_membres",
    "nb_trouves_sirene",
    "nb_actifs",
    "nb_fermes",
    "nb_ess",
    "nb_hors_ess",
    "nb_non_trouves",
)


def _jobs_cells(df: pl.DataFrame, tab: pl.Expr) -> pl.DataFrame:
    """Jobs of network members: a magnitude, secret by frequency or by dominance."""
    return df.select(
        tab.alias("tab"),
        _geo(),
        NO.alias("d1"),
        NO.alias("d2"),
        NO.alias("d3"),
        pl.col("emplois_central").cast(pl.Float64).alias("value"),
        pl.col("nb_etablissements_emplois").cast(pl.Int64).alias("n_unites"),
        pl.col("emplois_central").cast(pl.Float64).alias("central"),
        pl.col("emplois_max_unite").cast(pl.Float64).alias("max_unite"),
    )


def _jobs_totals(etab: pl.DataFrame) -> pl.DataFrame:
    """Jobs of an employer row of all bands (`J`): a magnitude, with its own dominance rule.

    Its published figure is not the exact sum of the band estimates but an interval computed
    from the published band rows only (`widen_jobs`), so it adds no equation to the system:
    the cell is in no line. Counting employers and estimating their jobs are separate
    figures: a hospital holding most of a commune's jobs hides the jobs, not the number of
    employers.
    """
    return etab.filter(
        (pl.col("tab") == "E") & (pl.col("d2") == ENSEMBLE) & (pl.col("d3") == ENSEMBLE)
    ).with_columns(pl.lit("J").alias("tab"), pl.col("central").alias("value"))


def _primary(cells: pl.DataFrame) -> pl.DataFrame:
    freq = pl.col("n_unites").is_between(1, FREQUENCY_MIN - 1) & (pl.col("value") > 0)
    # dominance is a rule for magnitudes: jobs totals, network jobs, and employer counts by
    # band (their jobs are the count times the band's bounds, so they publish the jobs too)
    jobs = (
        (pl.col("tab") == "J")
        | pl.col("tab").str.contains("emplois")
        | ((pl.col("tab") == "E") & ~pl.col("d3").is_in([ENSEMBLE, NONE]))
    )
    dom = (
        jobs
        & (pl.col("central") > 0)
        & (pl.col("max_unite") >= DOMINANCE_SHARE * pl.col("central"))
    )
    hidden = (pl.col("tab") == "N") | pl.col("d1").is_in(HIDDEN_FAMILIES)
    return cells.with_columns(
        (~hidden).alias("publishable"),
        # cube rows exist only for non-empty cells; other tables show zeros too
        pl.col("tab").is_in(["A", "E", "U"]).alias("nonempty"),
        (freq | dom).alias("primary"),
        pl.when(freq)
        .then(pl.lit(FREQUENCE))
        .when(dom)
        .then(pl.lit(DOMINANCE))
        .otherwise(None)
        .alias("motif"),
    )


def _costs(cells: pl.DataFrame) -> pl.DataFrame:
    """Suppressing a cell costs what readers lose: a margin ten times a cell it adds up.

    A cell's rank is how far it sits from its territory's total: the ESS and non-ESS totals,
    then a family's total or a whole-territory cell by section or band, then the crossings.
    The number counted matters little (hiding a big interior cell protects as well as hiding
    a small one and loses no more to readers than a small one does, measured in published
    rows), so it only breaks ties, small first. Bigger territories cost more: their figures
    are read more, and every commune cell is protected inside its own commune first.
    """
    level = cells["geo"].str.split(":").list.first()
    weight = level.replace_strict(GEO_WEIGHT, default=4, return_dtype=pl.Float64)
    top = [ENSEMBLE, NONE]
    depth = (
        pl.when(pl.col("d1").is_in(top))
        .then(0)
        .when(pl.col("d1").is_in(["ess", "hors_ess", "prive"]))
        .then(1)
        .otherwise(2)
        + pl.when(pl.col("d2").is_in(top)).then(0).otherwise(2)
        + pl.when(pl.col("d3").is_in(top)).then(0).otherwise(2)
    )
    rank = pl.lit(10.0).pow(pl.lit(4) - depth.clip(0, 4))
    # a territory's totals (all, ESS, non-ESS) are never secondary cells but as a last
    # resort: they are what readers come for, and every secret cell can be protected inside
    # its breakdowns
    grand = (
        pl.col("d1").is_in([ENSEMBLE, "ess", "hors_ess"])
        & pl.col("d2").is_in(top)
        & pl.col("d3").is_in(top)
        & pl.col("tab").is_in(["A", "E", "U"])
    )
    # the Sirene cubes are the observatory's reference figures; the tables read beside them
    # (network membership, questionnaire answers) give way first
    table = pl.when(pl.col("tab").is_in(["A", "E", "U"])).then(1.0).otherwise(0.1)
    return cells.with_columns(
        grand.alias("frozen"),
        (pl.Series(weight) * rank * table * (1.0 + 0.01 * (pl.col("value") + 1.0).log())).alias(
            "cost"
        ),
    )


def _decompositions(
    con: duckdb.DuckDBPyConnection, cells: pl.DataFrame, levels: set[str]
) -> list[tuple[str, pl.DataFrame, pl.Expr | None]]:
    tab = pl.col("tab")
    sirene_tabs = tab.is_in(["A", "E", "N", "U", "C", "F"])
    fam = _dec(
        [("fam:ess", "ess", f) for f in ESS_FAMILIES]
        + [("fam:ensemble", ENSEMBLE, "ess"), ("fam:ensemble", ENSEMBLE, "hors_ess")]
    )
    private = _dec(
        [
            ("fam:prive", "prive", "ess"),
            ("fam:prive", "prive", "hors_ess_prive"),
            ("fam:ensemble_prive", ENSEMBLE, "prive"),
            ("fam:ensemble_prive", ENSEMBLE, "public"),
            ("fam:hors_ess", "hors_ess", "hors_ess_prive"),
            ("fam:hors_ess", "hors_ess", "public"),
        ]
    )
    ess_only = _dec([("fam:ess", "ess", f) for f in ESS_FAMILIES])
    survey = tab.str.starts_with("R:") | tab.str.starts_with("B:")
    with_sec = sirene_tabs.and_(tab != "C").and_(tab != "F") | survey | tab.str.starts_with("RH:")
    sec_codes = cells.filter(with_sec & (pl.col("d2") != NONE))["d2"].unique().to_list()
    tra_codes = cells.filter(with_sec & (pl.col("d3") != NONE))["d3"].unique().to_list()
    emp = _dec([("tab:emp", "A", "E"), ("tab:emp", "A", "N")])
    reseau = _dec([("tab:reseau", "A", "D"), ("tab:reseau", "A", "O")])
    rp = cells.filter(tab == "RPE")["d1"].unique().to_list()
    decs: list[tuple[str, pl.DataFrame, pl.Expr | None]] = [
        ("d1", fam, tab.is_in(["A", "N", "U", "C", "F"])),
        ("d1", fam, (tab == "E") & ~pl.col("d1").is_in(PRIVATE_NODES)),
        ("d1", private, tab == "E"),
        ("d1", ess_only, survey | tab.is_in(["D", "O"])),
        ("d2", flat_decomposition("d2", sec_codes, "sec"), with_sec),
        ("d3", flat_decomposition("d3", tra_codes, "tra"), with_sec),
        ("tab", emp, ~pl.col("d1").is_in(PRIVATE_NODES)),
        (
            "tab",
            reseau,
            (pl.col("d2") == ENSEMBLE)
            & (pl.col("d3") == ENSEMBLE)
            & pl.col("d1").is_in(["ess", *ESS_FAMILIES]),
        ),
        (
            "d1",
            _dec(("rp", "ensemble|ensemble", k) for k in rp if k != "ensemble|ensemble"),
            tab == "RPE",
        ),
        # distinct legal units do not add up; published jobs totals are intervals (no line)
        ("geo", geo_decompositions(con, levels), ~tab.is_in(["RPU", "J"])),
    ]
    # network members: found + not found = members; active + closed = found; ess + non = active
    for parent, children in (
        ("nb_membres", ("nb_trouves_sirene", "nb_non_trouves")),
        ("nb_trouves_sirene", ("nb_actifs", "nb_fermes")),
        ("nb_actifs", ("nb_ess", "nb_hors_ess")),
    ):
        for r in cells.filter(tab.str.starts_with(f"M:{parent}:"))["tab"].unique().to_list():
            reseau_id = r.split(":", 2)[2]
            decs.append(
                (
                    "tab",
                    _dec((f"m:{parent}:{reseau_id}", r, f"M:{c}:{reseau_id}") for c in children),
                    None,
                )
            )
    return decs


def band_bounds(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Lowest and highest headcount of each band code; no usable band counts for nothing."""
    bands = con.execute(
        "select code, coalesce(effectif_min, 0)::double as bas, "
        "coalesce(effectif_max, effectif_min, 0)::double as haut, "
        "effectif_min is null as inconnue from ref.tranches_effectifs"
    ).pl()
    extra = pl.DataFrame(
        {"code": ["non_renseignee"], "bas": [0.0], "haut": [0.0], "inconnue": [True]}
    )
    return pl.concat([bands, extra])


# --------------------------------------------------------------------------------------------
# Back to tables: which cells each published row is made of
# --------------------------------------------------------------------------------------------


def _keys(df: pl.DataFrame, tab: pl.Expr, d1: pl.Expr, d2: pl.Expr, d3: pl.Expr) -> pl.DataFrame:
    return df.select("_r", tab.alias("tab"), _geo(), d1.alias("d1"), d2.alias("d2"), d3.alias("d3"))


def _cube(tab: str):
    def keys(df: pl.DataFrame) -> list[pl.DataFrame]:
        return [
            _keys(
                df,
                pl.lit(tab),
                _fam_node(pl.col("perimetre"), pl.col("famille")),
                pl.col("section_naf"),
                pl.col("tranche_effectifs"),
            )
        ]

    return keys


def _emplois(df: pl.DataFrame) -> list[pl.DataFrame]:
    """A row of all bands also shows its jobs total (`J`), secret by dominance on its own."""
    totals = df.filter(pl.col("tranche_effectifs") == ENSEMBLE)
    node = _fam_node(pl.col("perimetre"), pl.col("famille"))
    return [
        *_cube("E")(df),
        _keys(totals, pl.lit("J"), node, pl.col("section_naf"), pl.col("tranche_effectifs")),
    ]


def _part_ess(df: pl.DataFrame) -> list[pl.DataFrame]:
    s, t = pl.col("section_naf"), pl.col("tranche_effectifs")
    totals = df.filter(t == ENSEMBLE)
    return [
        _keys(df, pl.lit("E"), pl.lit("prive"), s, t),
        _keys(df, pl.lit("E"), pl.lit("ess"), s, t),
        _keys(totals, pl.lit("J"), pl.lit("prive"), s, t),
        _keys(totals, pl.lit("J"), pl.lit("ess"), s, t),
    ]


def _flux(df: pl.DataFrame) -> list[pl.DataFrame]:
    node = _fam_node(pl.col("perimetre"), pl.col("famille"))
    annee = pl.col("annee").cast(pl.Utf8)
    return [_keys(df, pl.lit(t), node, annee, NO) for t in ("C", "F")]


def _taux(df: pl.DataFrame) -> list[pl.DataFrame]:
    node, s, t = _ess_node(pl.col("famille")), pl.col("section_naf"), pl.col("tranche_effectifs")
    return [
        _keys(df, pl.lit("R:") + pl.col("vague"), node, s, t),
        _keys(df, pl.lit("A"), node, s, t),
        _keys(df.filter(pl.col("famille") == ENSEMBLE), pl.lit("RH:") + pl.col("vague"), NO, s, t),
    ]


def _besoins(df: pl.DataFrame) -> list[pl.DataFrame]:
    node, s, t = _ess_node(pl.col("famille")), pl.col("section_naf"), pl.col("tranche_effectifs")
    return [
        _keys(df, pl.lit("R:") + pl.col("vague"), node, s, t),
        _keys(df, pl.lit("B:") + pl.col("vague") + ":" + pl.col("besoin"), node, s, t),
    ]


def _hors_reseau(df: pl.DataFrame) -> list[pl.DataFrame]:
    node, e = _ess_node(pl.col("famille")), pl.lit(ENSEMBLE)
    return [_keys(df, pl.lit(t), node, e, e) for t in ("A", "D", "O")]


def _reseaux(df: pl.DataFrame) -> list[pl.DataFrame]:
    return [
        _keys(df, pl.lit(f"M:{c}:") + pl.col("reseau"), NO, NO, NO)
        for c in (*RESEAU_COUNTS, "emplois")
    ]


def _ressourceries(df: pl.DataFrame) -> list[pl.DataFrame]:
    return [_keys(df, pl.lit(t), NO, NO, NO) for t in ("RS", "RS:emplois")]


def _rapprochement(df: pl.DataFrame) -> list[pl.DataFrame]:
    key = pl.col("cas") + "|" + pl.col("regle")
    return [_keys(df, pl.lit(t), key, NO, NO) for t in ("RPE", "RPU")]


def _evolution(df: pl.DataFrame) -> list[pl.DataFrame]:
    node, e = _fam_node(pl.col("perimetre"), pl.col("famille")), pl.lit(ENSEMBLE)
    return [_keys(df, pl.lit(t), node, e, e) for t in ("A", "E")]


ROW_CELLS = {
    "etablissements_actifs": _cube("A"),
    "etablissements_employeurs": _cube("E"),
    "emplois_salaries_estimes": _emplois,
    "unites_legales_siege": _cube("U"),
    "part_ess_emploi_prive": _part_ess,
    "creations_fermetures": _flux,
    "taux_reponse": _taux,
    "besoins_cites": _besoins,
    "ess_hors_reseau": _hors_reseau,
    "reseaux_couverture": _reseaux,
    "ressourceries": _ressourceries,
    "rapprochement_perimetre_insee": _rapprochement,
    "evolution_mensuelle": _evolution,
}
_RANK = {PUBLIE: 0, SECONDAIRE: 1, PRIMAIRE: 2}


@dataclass(frozen=True)
class MaskReport:
    mois: str
    cells: int
    primary: int
    secondary: int
    rounds: int
    lp_solves: int
    unaudited: int
    seconds: float


def statuses(built: Built) -> pl.DataFrame:
    s = built.system
    prim = s.cells["primary"].to_numpy() & s.suppressed
    statut = np.where(prim, PRIMAIRE, np.where(s.suppressed, SECONDAIRE, PUBLIE))
    motif = np.where(s.suppressed, s.reason, None)
    return built.cells.select("tab", "geo", "d1", "d2", "d3", "value").with_columns(
        pl.Series("statut", statut, dtype=pl.Utf8),
        pl.Series("motif", motif.tolist(), dtype=pl.Utf8),
    )


def mask_rows(df: pl.DataFrame, keys: list[pl.DataFrame], status: pl.DataFrame) -> pl.DataFrame:
    """Per row, the worst status of the cells it shows; a cell with no row is an empty cell."""
    joined = pl.concat(keys).join(
        status.select("tab", "geo", "d1", "d2", "d3", "statut", "motif"),
        on=["tab", "geo", "d1", "d2", "d3"],
        how="left",
    )
    joined = joined.with_columns(
        pl.col("statut").fill_null(PUBLIE),
        pl.col("statut").fill_null(PUBLIE).replace_strict(_RANK).alias("_rank"),
    )
    worst = (
        # ties broken on the whole cell key: the same month always reads the same
        joined.sort(
            "_r",
            "_rank",
            "tab",
            "d1",
            "d2",
            "d3",
            descending=[False, True, False, False, False, False],
        )
        .group_by("_r", maintain_order=True)
        .first()
        .select(
            "_r", pl.col("statut").alias("statut_secret"), pl.col("motif").alias("motif_secret")
        )
    )
    return df.join(worst, on="_r", how="left").with_columns(
        pl.col("statut_secret").fill_null(PUBLIE)
    )


# Jobs of a row of all bands, as an interval the published figures allow. The exact sums of
# band bounds would be two more equations on the band counts (Σ min·n, Σ max·n): with the count
# total, any two secret bands of a row could be solved, and protecting them would hide nearly
# every jobs total. So when a band of the row is secret, the row's low is the smallest
# Σ min·n and its high the largest Σ max·n over every table consistent with the published
# counts around those bands (`secret.outer_bounds`: the row's bands, the same bands in the
# other families and in the territories around). The interval holds the exact one and tells
# nothing the published counts do not. Its middle would read as an estimate and can be far
# from the exact central one, so the central estimate is left empty.
WIDENED = "fourchette_elargie"
# lines around the secret bands the interval takes into account: 2 keeps a row's LPs small
# (measured on the demo month, the EPT's ESS jobs high end: 388,667 with 1 ring, 191,017 with
# 2 in 0.05 s, 149,317 with 3 or the whole system, 0.2 s and 3.8 s)
JOBS_RINGS = 2
JOBS_MEASURES = {
    # table: (family node of each population, (low, high, central) per population)
    "emplois_salaries_estimes": (
        (None,),
        (("emplois_bas", "emplois_haut", "emplois_central"),),
    ),
    "part_ess_emploi_prive": (
        ("prive", "ess"),
        (
            ("emplois_prives_bas", "emplois_prives_haut", "emplois_prives_central"),
            ("emplois_ess_bas", "emplois_ess_haut", "emplois_ess_central"),
        ),
    ),
}


def _band_groups(built: Built, bands: pl.DataFrame) -> pl.DataFrame:
    """Employer band cells of each (territory, family node), with bounds and secrecy."""
    per_band = (
        built.cells.filter(
            (pl.col("tab") == "E") & (pl.col("d2") == ENSEMBLE) & (pl.col("d3") != ENSEMBLE)
        )
        .select("cid", "geo", "d1", "d3")
        .join(bands, left_on="d3", right_on="code", how="left")
    )
    if per_band["bas"].null_count():
        code = per_band.filter(pl.col("bas").is_null())["d3"][0]
        raise ValueError(f"tranche d'effectifs sans bornes connues : {code}")
    unknown = built.system.unknown()
    per_band = per_band.with_columns(pl.Series("secret", unknown[per_band["cid"].to_numpy()]))
    return per_band.group_by("geo", "d1").agg("cid", "bas", "haut", "secret", "inconnue")


def widen_jobs(name: str, masked: pl.DataFrame, bands: pl.DataFrame, built: Built) -> pl.DataFrame:
    """Jobs of published rows of all bands with a secret band: outer interval, flagged."""
    nodes, populations = JOBS_MEASURES[name]
    system = built.system
    groups = _band_groups(built, bands)
    lookup = {(r["geo"], r["d1"]): r for r in groups.iter_rows(named=True)}
    shown = pl.col("statut_secret") == PUBLIE
    whole = (pl.col("tranche_effectifs") == ENSEMBLE) & (pl.col("section_naf") == ENSEMBLE)
    targets = masked.filter(shown & whole).with_columns(_geo())
    if name == "emplois_salaries_estimes":
        targets = targets.with_columns(
            _fam_node(pl.col("perimetre"), pl.col("famille")).alias("_node")
        )
    updates: dict[str, list] = {"_r": []}
    for col in (*(c for pop in populations for c in pop), WIDENED, "_inconnue"):
        updates[col] = []
    objectives: list[dict[int, float]] = []
    for row in targets.iter_rows(named=True):
        rows_groups = [lookup.get((row["geo"], node or row["_node"])) for node in nodes]
        if not any(g is not None and any(g["secret"]) for g in rows_groups):
            continue
        updates["_r"].append(row["_r"])
        updates[WIDENED].append(True)
        updates["_inconnue"].append(
            any(
                s and i
                for g in rows_groups
                if g
                for s, i in zip(g["secret"], g["inconnue"], strict=True)
            )
        )
        for g in rows_groups:
            cids = g["cid"] if g else []
            objectives.append(dict(zip(cids, g["bas"] if g else [], strict=True)))
            objectives.append(dict(zip(cids, g["haut"] if g else [], strict=True)))
    ends = secret.outer_bounds(system, objectives, rings=JOBS_RINGS) if objectives else []
    k = 0
    for _ in updates["_r"]:
        for low, high, central in populations:
            lo = math.floor(ends[k][0] + 1e-6)
            hi = math.ceil(ends[k + 1][1] - 1e-6)
            k += 2
            updates[low].append(float(lo))
            updates[high].append(float(hi))
            updates[central].append(None)
    overrides = {"_r": pl.UInt32, "_inconnue": pl.Boolean, WIDENED: pl.Boolean}
    overrides |= {c: pl.Float64 for pop in populations for c in pop}
    fix = pl.DataFrame(updates, schema_overrides=overrides)
    fix = fix.rename({c: f"_w_{c}" for c in fix.columns if c != "_r"})
    out = masked.join(fix, on="_r", how="left")
    hit = pl.col(f"_w_{WIDENED}").fill_null(False)
    # jobs are estimates: always doubles (sums of integer bounds come out of DuckDB as HUGEINT)
    cols = [
        pl.when(hit).then(pl.col(f"_w_{c}")).otherwise(pl.col(c).cast(pl.Float64)).alias(c)
        for pop in populations
        for c in pop
    ]
    if name == "emplois_salaries_estimes":
        # employers without a usable band: their count is a secret band's count
        cols += [
            pl.when(pl.col("_w__inconnue").fill_null(False))
            .then(None)
            .otherwise(pl.col(c))
            .alias(c)
            for c in ("nb_tranche_inconnue", "part_tranche_inconnue")
        ]
    if name == "part_ess_emploi_prive":
        # a share of two intervals is no single figure: only the intervals are published
        cols.append(
            pl.when(hit).then(None).otherwise(pl.col("part_ess_emplois")).alias("part_ess_emplois")
        )
    out = out.with_columns(cols).with_columns(
        pl.when(shown).then(hit).otherwise(None).alias(WIDENED)
    )
    return out.drop([c for c in out.columns if c.startswith("_w_")])


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute("create schema if not exists secret")
    con.execute(
        "create table if not exists secret.cellules (mois varchar, tab varchar, geo varchar, "
        "d1 varchar, d2 varchar, d3 varchar, valeur double, statut varchar, motif varchar)"
    )
    con.execute(
        "create table if not exists secret.masques (mois varchar, cases bigint, "
        "primaires bigint, secondaires bigint, tours integer, programmes_lineaires integer, "
        "non_audites bigint, secondes double, calcule_le timestamp)"
    )


def month_statuses(con: duckdb.DuckDBPyConnection, mois: str) -> pl.DataFrame | None:
    if not warehouse.table_exists(con, "secret", "cellules"):
        return None
    df = con.execute(
        "select tab, geo, d1, d2, d3, valeur as value, statut, motif from secret.cellules "
        "where mois = $mois",
        {"mois": mois},
    ).pl()
    return df if df.height else None


def protect_month(con: duckdb.DuckDBPyConnection, mois: str, audit: bool = True) -> MaskReport:
    """Compute the month's mask and write the protected tables `diffusion.*` for it.

    Readers only ever get `diffusion.*`: a secret row keeps its keys and loses every measure.
    Written in one transaction with the mask itself, so the two never disagree.
    """
    t0 = time.monotonic()
    built = build_system(con, mois)
    protect(built.system, audit=audit)
    status = statuses(built)
    tables: dict[str, pl.DataFrame] = {}
    bands = band_bounds(con)
    for name, ind in catalogue.indicators().items():
        df = _read(con, name, mois)
        if ind.listing:
            tables[name] = df.select(ind.colonnes)
            continue
        if name not in ROW_CELLS:
            raise ValueError(f"secret statistique : table {name} sans correspondance de cases")
        df = df.with_row_index("_r")
        keys = ROW_CELLS[name](df)
        masked = mask_rows(df, keys, status)
        if name == "evolution_mensuelle":
            masked = _mask_previous(con, masked)
        if name in JOBS_MEASURES:
            masked = widen_jobs(name, masked, bands, built)
        secret_row = pl.col("statut_secret") != PUBLIE
        masked = masked.with_columns(
            pl.when(secret_row).then(None).otherwise(pl.col(c)).alias(c) for c in ind.mesures
        )
        tables[name] = masked.select(ind.colonnes)
    report = MaskReport(
        mois=mois,
        cells=built.system.n_cells,
        primary=int((status["statut"] == PRIMAIRE).sum()),
        secondary=int((status["statut"] == SECONDAIRE).sum()),
        rounds=built.system.rounds,
        lp_solves=built.system.lp_solves,
        unaudited=built.system.unaudited,
        seconds=time.monotonic() - t0,
    )
    _ensure_tables(con)
    with warehouse.transaction(con):
        con.execute("delete from secret.cellules where mois = $mois", {"mois": mois})
        con.register("_statuts", status)
        con.execute(
            "insert into secret.cellules select $mois, tab, geo, d1, d2, d3, value, statut, motif "
            "from _statuts",
            {"mois": mois},
        )
        con.unregister("_statuts")
        con.execute("delete from secret.masques where mois = $mois", {"mois": mois})
        con.execute(
            "insert into secret.masques values ($mois, $c, $p, $s, $r, $l, $u, $t, now())",
            {
                "mois": mois,
                "c": report.cells,
                "p": report.primary,
                "s": report.secondary,
                "r": report.rounds,
                "l": report.lp_solves,
                "u": report.unaudited,
                "t": report.seconds,
            },
        )
        for name, df in tables.items():
            con.register("_masque", df)
            con.execute(
                f"create table if not exists {SCHEMA}.{name} as select * from _masque limit 0"
            )
            _follow_columns(con, name)
            con.execute(f"delete from {SCHEMA}.{name} where mois = $mois", {"mois": mois})
            con.execute(f"insert into {SCHEMA}.{name} by name select * from _masque")
            con.unregister("_masque")
    log.info("secret %s : %s", mois, report)
    return report


def _follow_columns(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """A protected table written by an older version gets the new columns and their types.

    Its earlier months stay (the snapshot publishes every month); a column added since reads
    NULL on them, as it would have then.
    """
    have = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = $s and table_name = $t",
            {"s": SCHEMA, "t": name},
        ).fetchall()
    )
    want = con.execute("select column_name, column_type from (describe _masque)").fetchall()
    for column, kind in want:
        if column not in have:
            con.execute(f'alter table {SCHEMA}.{name} add column "{column}" {kind}')
        elif have[column] != kind:
            con.execute(f'alter table {SCHEMA}.{name} alter column "{column}" type {kind}')


def _mask_previous(con: duckdb.DuckDBPyConnection, masked: pl.DataFrame) -> pl.DataFrame:
    """A change from the previous month shows last month's cells: their mask applies too."""
    out = masked
    for prev in masked["mois_precedent"].drop_nulls().unique().to_list():
        status = month_statuses(con, prev)
        if status is None:
            protect_month(con, prev)
            status = month_statuses(con, prev)
        assert status is not None
        rows = masked.filter(pl.col("mois_precedent") == prev)
        again = mask_rows(rows.drop("statut_secret", "motif_secret"), _evolution(rows), status)
        worse = rows.join(
            again.select(
                "_r", pl.col("statut_secret").alias("p"), pl.col("motif_secret").alias("m")
            ),
            on="_r",
        ).filter(pl.col("statut_secret").replace_strict(_RANK) < pl.col("p").replace_strict(_RANK))
        if worse.height:
            fix = worse.select("_r", "p", "m")
            out = (
                out.join(fix, on="_r", how="left")
                .with_columns(
                    pl.coalesce("p", "statut_secret").alias("statut_secret"),
                    pl.when(pl.col("p").is_not_null())
                    .then(pl.col("m"))
                    .otherwise(pl.col("motif_secret"))
                    .alias("motif_secret"),
                )
                .drop("p", "m")
            )
    return out


def ensure_protected(con: duckdb.DuckDBPyConnection, months: list[str]) -> None:
    """Months published before the mask existed get theirs before they are published again."""
    for m in months:
        if month_statuses(con, m) is None:
            protect_month(con, m)


FAMILY_LABELS = {
    "ensemble": "Ensemble",
    "ess": "Économie sociale et solidaire",
    "hors_ess": "Hors ESS",
    "association": "Associations",
    "cooperative": "Coopératives",
    "mutuelle": "Mutuelles",
    "fondation": "Fondations",
    "autre_non_lucratif": "Autres structures non lucratives de l'ESS",
    "societe_commerciale_ess": "Sociétés commerciales de l'ESS",
}


def write_reference(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """Territories with their communes, and French labels of the codes, for the readers.

    The page and the partner bundles read the snapshot only; without these they would have to
    open the warehouse to know which communes make a territory or what « 88 » means.
    """
    con.execute(
        f"create table {target}.territoires as "
        "select distinct niveau, code_territoire, libelle_territoire, code_commune "
        "from ref.territoire_niveaux order by all"
    )
    families = ", ".join(
        "('famille', '" + k + "', '" + v.replace("'", "''") + "')" for k, v in FAMILY_LABELS.items()
    )
    con.execute(
        f"create table {target}.nomenclatures as "
        f"select * from (values {families}, "
        "('perimetre', 'ensemble', 'Ensemble'), "
        "('perimetre', 'ess', 'Économie sociale et solidaire'), "
        "('perimetre', 'hors_ess', 'Hors ESS'), "
        "('section_naf', 'ensemble', 'Toutes activités'), "
        "('section_naf', 'non_classe', 'Activité non classée en NAF rév. 2'), "
        "('tranche_effectifs', 'ensemble', 'Toutes tailles'), "
        "('tranche_effectifs', 'non_renseignee', 'Tranche non renseignée')"
        ") as t(dimension, code, libelle) "
        "union all select 'section_naf', code, libelle from ref.naf_rev2_niveaux "
        "where niveau = 'section' "
        "union all select 'tranche_effectifs', code, libelle from ref.tranches_effectifs "
        "order by all"
    )
