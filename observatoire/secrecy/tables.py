"""From the month's indicators to the tables readers get (`diffusion.*`).

Each table of the catalogue declares its confidentiality (`confidentialite`):

* **public** tables are computed from open files (the Sirene stock, lists networks publish):
  anyone can recount them, so they are published in full, every row `publie`;
* **confidential** tables are built on answers to the questionnaire: their cells go through
  the mask of `observatoire/secrecy/engine.py` (primary rule, secondary suppression by elimination).

A network list declared `confidentiel = true` is confidential too: its own rows of
`reseaux_couverture` go through the same mask (`protect_networks`); the public tables built on
lists (`ess_hors_reseau`, `ressourceries`) count public lists only (their SQL).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import product

import duckdb
import numpy as np
import polars as pl

from observatoire.core import catalogue, territory, warehouse
from observatoire.secrecy.engine import ENSEMBLE, FREQUENCY_MIN, PUBLIE, SECRET, Table, protect

log = logging.getLogger(__name__)

SCHEMA = "diffusion"
STATUS_COLUMNS = ("statut_secret", "motif_secret")
WIDENED = "fourchette_elargie"
# bump when the rules change: months protected by an older version are protected again
MASK_VERSION = 3
# cost of suppressing a cell, by level: a commune's figure is worth less than a région's
GEO_WEIGHT = {"commune": 1, "ept": 4, "epci": 4, "selection": 4, "departement": 16, "region": 64}
if set(GEO_WEIGHT) != set(territory.LEVEL_NAMES):  # a new level needs its weight
    raise ValueError(f"GEO_WEIGHT ne couvre pas les niveaux {territory.LEVEL_NAMES}")
DIMS = ("famille", "section_naf", "tranche_effectifs")
PRIMAIRE, SECONDAIRE = "primaire", "secondaire"


def _read(con: duckdb.DuckDBPyConnection, name: str, mois: str) -> pl.DataFrame:
    """The month's rows in one fixed order: a parallel insert stores them in any order, and
    the mask's choices (pivots, ties of priority) follow row order; sorted, the same month
    always gets the same mask, whatever the machine."""
    return con.execute(
        f"select * from indicators.{name} where mois = $mois order by all", {"mois": mois}
    ).pl()


# --------------------------------------------------------------------------------------------
# Public tables
# --------------------------------------------------------------------------------------------


def _public(df: pl.DataFrame, ind: catalogue.Indicator) -> pl.DataFrame:
    """Every row as computed, `publie`: the public rows of a table masked in Python (the
    networks'). Tables published whole are copied by DuckDB (`_public_sql`)."""
    extra = []
    if "statut_secret" in ind.colonnes:
        extra += [
            pl.lit(PUBLIE).alias("statut_secret"),
            pl.lit(None, pl.Utf8).alias("motif_secret"),
        ]
    if WIDENED in ind.colonnes:
        extra.append(pl.lit(False).alias(WIDENED))
    return df.with_columns(*extra)


def _public_sql(ind: catalogue.Indicator, mois: str) -> str:
    """`_public` in SQL, over the month's rows (a listing: its columns as computed). Jobs
    estimates of the Sirene cubes are doubles, as partners' schemas have them (sums of integer
    band bounds come out of DuckDB as HUGEINT)."""
    warehouse.month_table("indicators", ind.name, mois)  # validates the month, then inlined
    jobs = (
        {c for c in ind.colonnes if c.startswith("emplois_")}
        if ind.name in ("emplois_salaries_estimes", "part_ess_emploi_prive")
        else set()
    )
    listing = bool(ind.listing)
    columns = []
    for c in ind.colonnes:
        if c == "statut_secret" and not listing:
            columns.append(f"'{PUBLIE}' as statut_secret")
        elif c == "motif_secret" and not listing:
            columns.append("cast(null as varchar) as motif_secret")
        elif c == WIDENED and not listing:
            columns.append(f"false as {WIDENED}")
        elif c in jobs:
            columns.append(f'cast("{c}" as double) as "{c}"')
        else:
            columns.append(f'"{c}"')
    return f"select {', '.join(columns)} from indicators.{ind.name} where mois = '{mois}'"


def _confidential_lists(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not warehouse.table_exists(con, "clean", "reseaux"):
        return []
    return [
        r
        for (r,) in con.execute(
            "select reseau from clean.reseaux where coalesce(confidentiel, false) order by reseau"
        ).fetchall()
    ]


# --------------------------------------------------------------------------------------------
# Questionnaire tables: the model, the mask, back to rows
# --------------------------------------------------------------------------------------------


def _geo(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The territory's own levels and their communes. The units containing it (`englobant`,
    published for comparison) have no row in the tables protected here: answers and lists
    describe the territory only (their SQL), and their communes outside it no inner cell."""
    return con.execute(
        "select distinct niveau, code_territoire, code_commune from ref.territoire_niveaux "
        "where not englobant"
    ).pl()


def _pairs(cells: pl.DataFrame, inner: pl.DataFrame, geo: pl.DataFrame, dims: tuple[str, ...]):
    """Which inner cells make each cell: every cube margin of every territory's communes."""
    parts = []
    deepest = int(_depth(cells, dims).max() or 0) if cells.height else 0
    for keep in product((True, False), repeat=len(dims)):
        if sum(keep) > deepest:
            continue  # a crossing no cell has
        parts.append(
            inner.select(
                "_i",
                "code_commune",
                *(
                    pl.col(d) if k else pl.lit(ENSEMBLE).alias(d)
                    for d, k in zip(dims, keep, strict=True)
                ),
            )
        )
    expanded = pl.concat(parts).join(geo, on="code_commune").drop("code_commune")
    pairs = (
        cells.select("_c", "niveau", "code_territoire", *dims)
        .join(expanded, on=["niveau", "code_territoire", *dims])
        .select("_c", "_i")
        .sort("_c", "_i")
    )
    counts = np.bincount(pairs["_c"].to_numpy(), minlength=cells.height)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ptr, pairs["_i"].to_numpy().astype(np.int64)


def _priority(cells: pl.DataFrame, value: str, dims: tuple[str, ...]) -> np.ndarray:
    """What readers want most is published first: totals, then one breakdown, then crossings;
    bigger territories before smaller ones; larger figures before smaller ones."""
    weights = {"famille": 1.0, "tranche_effectifs": 1.1, "section_naf": 1.2}
    depth = sum((cells[d] != ENSEMBLE).cast(pl.Float64).to_numpy() * weights[d] for d in dims)
    level = cells["niveau"].replace_strict(GEO_WEIGHT, default=4).to_numpy().astype(float)
    v = cells[value].fill_null(0).to_numpy().astype(float)
    return depth * 100.0 + (6.0 - np.log2(level)) - v / (v.max(initial=0.0) + 1.0)


@dataclass
class Masked:
    """Status of each cell of one protected table, in the order of its rows."""

    statut: np.ndarray  # PUBLIE / PRIMAIRE / SECONDAIRE (internal: readers see SECRET only)
    table: Table


def _protect(
    cells: pl.DataFrame,
    inner: pl.DataFrame,
    geo: pl.DataFrame,
    value: str,
    dims: tuple[str, ...],
    primary: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    inner_value: np.ndarray | None = None,
) -> Masked:
    """`cells` has `_c` 0..n-1 in row order; `inner` has `_i` 0..m-1, `code_commune` and
    `upper`; `inner_value`, when known, the true value of each inner cell."""
    ptr, members = _pairs(cells, inner, geo, dims)
    values = cells[value].fill_null(0).to_numpy().astype(np.int64)
    if primary is None:
        primary = (values >= 1) & (values < FREQUENCY_MIN)
    table = Table(
        n_inner=inner.height,
        cell_ptr=ptr,
        cell_inner=members,
        value=values,
        primary=primary,
        hidden=hidden if hidden is not None else np.zeros(cells.height, dtype=bool),
        priority=_priority(cells, value, dims),
        upper=inner["upper"].fill_null(-1).to_numpy().astype(np.int64),
        inner_value=inner_value,
        block=_blocks(inner, geo) if inner_value is not None else None,
    )
    result = protect(table)
    log.info(
        "secret %s : %d cases, %d primaires, %d secondaires, %d tours, %d LP",
        value,
        table.n_cells,
        int(table.primary.sum()),
        int(result.secondary.sum()),
        result.rounds,
        result.lp_solves,
    )
    statut = np.where(
        table.primary, PRIMAIRE, np.where(result.suppressed, SECONDAIRE, PUBLIE)
    ).astype(object)
    return Masked(statut=statut, table=table)


def _blocks(inner: pl.DataFrame, geo: pl.DataFrame) -> np.ndarray:
    """Each inner cell's block: its commune's smallest territory above the commune (an EPCI or
    an EPT in a région, the territory itself in a small one), or the commune alone."""
    sizes = geo.group_by("niveau", "code_territoire").agg(pl.len().alias("n"))
    parents = (
        geo.filter(pl.col("niveau") != "commune")
        .join(sizes, on=["niveau", "code_territoire"])
        .sort("n", "niveau", "code_territoire")
        .unique("code_commune", keep="first", maintain_order=True)
        .select("code_commune", (pl.col("niveau") + ":" + pl.col("code_territoire")).alias("b"))
    )
    labels = inner.select("_i", "code_commune").join(parents, on="code_commune", how="left")
    labels = labels.sort("_i").with_columns(
        pl.coalesce("b", pl.lit("commune:") + pl.col("code_commune")).alias("b")
    )
    return labels["b"].rank("dense").to_numpy().astype(np.int64) - 1


def _depth(df: pl.DataFrame, dims: tuple[str, ...]) -> pl.Series:
    """How many of `dims` a row breaks down (0: the territory's total row)."""
    if not dims:
        return pl.Series([0] * df.height, dtype=pl.Int32)
    return df.select(
        pl.sum_horizontal(*((pl.col(d) != ENSEMBLE).cast(pl.Int32) for d in dims))
    ).to_series()


def _finest(df: pl.DataFrame, dims: tuple[str, ...]) -> pl.Expr:
    return (pl.col("niveau") == "commune") & pl.all_horizontal(
        *(pl.col(d) != ENSEMBLE for d in dims)
    )


@dataclass
class QuestionnaireMask:
    taux: pl.DataFrame
    besoins: pl.DataFrame
    cells: pl.DataFrame  # secret.cellules rows


def _actifs_per_commune(con: duckdb.DuckDBPyConnection, mois: str, perimetre: str) -> pl.DataFrame:
    """Active establishments of the ESS or outside it per commune: public, a bound on how many
    respondents (or members of a list) the commune can hold."""
    return con.execute(
        "select code_territoire as code_commune, nb_etablissements as upper "
        "from indicators.etablissements_actifs where mois = $mois and niveau = 'commune' "
        "and perimetre = $p and famille = (case when $p = 'ess' then 'ensemble' else $p end) "
        "and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
        {"mois": mois, "p": perimetre},
    ).pl()


def _cell_log(
    df: pl.DataFrame, tab: pl.Expr, statut: np.ndarray, value: str, dims: tuple[str, ...]
) -> pl.DataFrame:
    d = [pl.col(x) if x in df.columns else pl.lit("-") for x in dims]
    d += [pl.lit("-")] * (3 - len(d))
    return df.select(
        tab.alias("tab"),
        (pl.col("niveau") + ":" + pl.col("code_territoire")).alias("geo"),
        d[0].alias("d1"),
        d[1].alias("d2"),
        d[2].alias("d3"),
        pl.col(value).cast(pl.Float64).alias("value"),
        pl.Series("statut", statut.tolist(), dtype=pl.Utf8),
    ).with_columns(
        pl.when(pl.col("statut") == PRIMAIRE)
        .then(pl.lit("frequence"))
        .when(pl.col("statut") == SECONDAIRE)
        .then(pl.lit("lien"))
        .otherwise(None)
        .alias("motif")
    )


def protect_questionnaire(
    con: duckdb.DuckDBPyConnection,
    taux: pl.DataFrame,
    besoins: pl.DataFrame,
    mois: str,
    crossings: int | None = None,
) -> QuestionnaireMask:
    """Mask `taux_reponse` and `besoins_cites` of every wave of the month.

    Rows crossing more than `crossings` of the dimensions are not published (the catalogue's
    `croisements_publies`); the finest rows (one commune × family × section × band) are the
    model's inner cells all the same, published or not: their ESS establishments are public,
    and an attacker bounds respondents by them.

    Per wave, three kinds of protected figures:
    * respondents of the ESS per cell (`R`): 1 or 2 is primary; bounded by the cell's (public)
      ESS establishments;
    * respondents outside the ESS per territory (`RH`), on the territory's total row;
    * per need, respondents citing it (`B`): secret wherever the cell's respondents are (a
      cell of 1 or 2 respondents tells what they answered), and more where a published zero
      would tell it.
    A row shows each of its figures unless that figure's cell is secret; its status is
    « secret » as soon as one is.
    """
    geo = _geo(con)
    dims = DIMS
    whole, whole_b = taux, besoins
    if crossings is not None:
        taux = taux.filter(_depth(taux, dims) <= crossings)
        besoins = besoins.filter(_depth(besoins, dims) <= crossings)
    taux = taux.with_row_index("_r")
    besoins = besoins.with_row_index("_r")
    total_row = pl.all_horizontal(*(pl.col(d) == ENSEMBLE for d in dims))
    taux_secret = {c: np.zeros(taux.height, dtype=bool) for c in ("R", "RH")}
    besoins_r = np.zeros(besoins.height, dtype=bool)
    besoins_b = np.zeros(besoins.height, dtype=bool)
    logs = []
    hors_upper = _actifs_per_commune(con, mois, "hors_ess")
    for vague in sorted(taux["vague"].unique().to_list()):
        rows = taux.filter(pl.col("vague") == vague).with_row_index("_c")
        wave = whole.filter(pl.col("vague") == vague)
        finest = wave.filter(_finest(wave, dims))
        inner = (
            finest.select(
                "code_territoire",
                *dims,
                pl.col("nb_etablissements_ess").alias("upper"),
            )
            .rename({"code_territoire": "code_commune"})
            .with_row_index("_i")
        )
        r = _protect(
            rows,
            inner,
            geo,
            "nb_repondants",
            dims,
            inner_value=finest["nb_repondants"].to_numpy().astype(np.int64),
        )
        # citing ≤ respondents: bounded by the true respondents of each inner cell, an
        # attacker stronger than any reader (who does not know them), hence a safe mask
        inner_b = inner.with_columns(finest["nb_repondants"].alias("upper"))
        taux_secret["R"][rows["_r"].to_numpy()] = r.statut != PUBLIE
        logs.append(_cell_log(rows, pl.lit(f"R:{vague}"), r.statut, "nb_repondants", dims))

        # respondents outside the ESS: territory totals of every commune
        totals = rows.filter(total_row).drop("_c").with_row_index("_c")
        communes = (
            geo.filter(pl.col("niveau") == "commune")
            .select("code_commune")
            .unique()
            .sort("code_commune")
            .join(hors_upper, on="code_commune", how="left")
            .with_row_index("_i")
        )
        h = _protect(totals, communes, geo, "nb_repondants_hors_ess", ())
        taux_secret["RH"][totals["_r"].to_numpy()] = h.statut != PUBLIE
        logs.append(
            _cell_log(totals, pl.lit(f"RH:{vague}"), h.statut, "nb_repondants_hors_ess", ())
        )

        # needs: the same cells, secret wherever respondents are, and zeros handled
        keyed = rows.select("_c", "niveau", "code_territoire", *dims)
        r_prim = r.table.primary
        r_hidden = r.statut == SECONDAIRE
        wave_needs = besoins.filter(pl.col("vague") == vague)
        jobs, aligned = [], []
        for besoin in sorted(wave_needs["besoin"].unique().to_list()):
            b_rows = wave_needs.filter(pl.col("besoin") == besoin).join(
                keyed, on=["niveau", "code_territoire", *dims], how="left"
            )
            if b_rows["_c"].null_count():
                # a need row without its respondents' cell (a month computed before rows
                # were the population's): withheld
                missing = b_rows["_c"].is_null().to_numpy()
                besoins_b[b_rows.filter(pl.col("_c").is_null())["_r"].to_numpy()] = True
                b_rows = b_rows.filter(~pl.Series(missing))
            # the need's cells, aligned on the respondents' ones
            full = keyed.join(
                b_rows.select("_c", "nb_citant", pl.col("_r").alias("_rb")), on="_c", how="left"
            ).sort("_c")
            cited = inner_b.join(
                whole_b.filter(
                    (pl.col("vague") == vague)
                    & (pl.col("besoin") == besoin)
                    & (pl.col("niveau") == "commune")
                ).select(pl.col("code_territoire").alias("code_commune"), *dims, "nb_citant"),
                on=["code_commune", *dims],
                how="left",
            ).sort("_i")["nb_citant"]
            jobs.append(
                (
                    full.drop("_rb").with_columns(pl.col("nb_citant").fill_null(0)),
                    inner_b,
                    geo,
                    dims,
                    r_prim,
                    r_hidden,
                    None if cited.null_count() else cited.to_numpy().astype(np.int64),
                )
            )
            aligned.append((besoin, full))
        for (besoin, full), statut in zip(aligned, _map_needs(jobs), strict=True):
            present = full["_rb"].is_not_null().to_numpy()
            rb = full["_rb"].to_numpy()[present].astype(np.int64)
            besoins_b[rb] = statut[present] != PUBLIE
            besoins_r[rb] = (r.statut != PUBLIE)[full["_c"].to_numpy()[present]]
            logs.append(
                _cell_log(
                    full.filter(pl.Series(present)),
                    pl.lit(f"B:{vague}:{besoin}"),
                    statut[present],
                    "nb_citant",
                    dims,
                )
            )
    t_r = pl.Series(taux_secret["R"])
    t_h = pl.Series(taux_secret["RH"])
    # respondents outside the ESS are given on each territory's total row only
    taux_out = taux.with_columns(
        pl.when(t_r).then(None).otherwise(pl.col("nb_repondants")).alias("nb_repondants"),
        pl.when(t_r).then(None).otherwise(pl.col("taux_reponse")).alias("taux_reponse"),
        pl.when(t_h | ~total_row)
        .then(None)
        .otherwise(pl.col("nb_repondants_hors_ess"))
        .alias("nb_repondants_hors_ess"),
        pl.when(t_r | t_h).then(pl.lit(SECRET)).otherwise(pl.lit(PUBLIE)).alias("statut_secret"),
        pl.lit(None, pl.Utf8).alias("motif_secret"),
    )
    b_r, b_b = pl.Series(besoins_r), pl.Series(besoins_b)
    besoins_out = besoins.with_columns(
        pl.when(b_r).then(None).otherwise(pl.col("nb_repondants")).alias("nb_repondants"),
        pl.when(b_b).then(None).otherwise(pl.col("nb_citant")).alias("nb_citant"),
        pl.when(b_b | b_r).then(None).otherwise(pl.col("part_citant")).alias("part_citant"),
        pl.when(b_r | b_b).then(pl.lit(SECRET)).otherwise(pl.lit(PUBLIE)).alias("statut_secret"),
        pl.lit(None, pl.Utf8).alias("motif_secret"),
    )
    cells = pl.concat(logs, how="vertical_relaxed") if logs else _empty_log()
    return QuestionnaireMask(taux=taux_out, besoins=besoins_out, cells=cells)


# the counts of a list's members that others add up (nb_actifs = nb_ess + nb_hors_ess, ...):
# masked one by one; the sums take the union of their patterns, so that any tables of the parts
# consistent with what is published add up to tables of the sums consistent with it too
NETWORK_PARTS = ("nb_ess", "nb_hors_ess", "nb_fermes", "nb_non_trouves")
NETWORK_SUMS = ("nb_actifs", "nb_trouves_sirene", "nb_membres")
NETWORK_JOBS = ("nb_etablissements_emplois", "emplois_bas", "emplois_central", "emplois_haut")
# dominance (INSEE's usual (1, 85 %) rule): jobs of which one member holds more than 85 %
DOMINANCE = 0.85


def protect_networks(
    con: duckdb.DuckDBPyConnection, df: pl.DataFrame, mois: str, lists: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`reseaux_couverture` with the rows of confidential lists masked; and the cells' log.

    A list given in confidence tells who its members are. Its rows follow the rules of the
    questionnaire's: a territory of 1 or 2 members is secret (primary), and so are its jobs
    where 1 or 2 members employ or one member holds more than 85 % of them (dominance);
    other territories are suppressed where needed so that none of those can be recomputed
    (commune sums, zeros, the public bounds: ESS members ≤ the commune's ESS establishments).
    The largest member's jobs (`emplois_max_unite`) describe one member: never published for
    such a list. Its rows exist for every territory, members or not, so that the presence of
    a row tells nothing. Public lists' rows are published as computed.
    """
    ind = catalogue.indicators()["reseaux_couverture"]
    public = _public(df.filter(~pl.col("reseau").is_in(lists)), ind)
    if not lists:
        return public, _empty_log()
    geo = _geo(con)
    territories = con.execute(
        "select distinct niveau, code_territoire, libelle_territoire from ref.territoire_niveaux "
        "where not englobant"
    ).pl()
    bounds = {
        "nb_ess": _actifs_per_commune(con, mois, "ess"),
        "nb_hors_ess": _actifs_per_commune(con, mois, "hors_ess"),
    }
    declared = dict(
        con.execute(
            "select reseau, type from clean.reseaux where reseau in (select unnest($l))",
            {"l": lists},
        ).fetchall()
    )
    counts = (*NETWORK_PARTS, *NETWORK_SUMS, "nb_etablissements_emplois")
    out, logs = [public], []
    for reseau in lists:
        rows = (
            territories.join(
                df.filter(pl.col("reseau") == reseau).drop(
                    "mois", "reseau", "type_reseau", "libelle_territoire"
                ),
                on=["niveau", "code_territoire"],
                how="left",
            )
            .with_columns(
                *(pl.col(c).fill_null(0) for c in (*counts, "emplois_bas", "emplois_haut")),
                pl.col("emplois_central").fill_null(0.0),
                # central estimates are half-integers: counted in halves, they add up exactly
                (pl.col("emplois_central").fill_null(0.0) * 2).round().alias("_central2"),
            )
            .sort("niveau", "code_territoire")
            .with_row_index("_c")
        )
        inner = (
            rows.filter(pl.col("niveau") == "commune")
            .select(pl.col("code_territoire").alias("code_commune"), "_c")
            .with_row_index("_i")
        )
        members = rows["nb_membres"].to_numpy()
        primary = (members >= 1) & (members < FREQUENCY_MIN)
        employing = rows["nb_etablissements_emplois"].to_numpy()
        central = rows["emplois_central"].to_numpy()
        largest = rows["emplois_max_unite"].fill_null(0.0).to_numpy()
        jobs_primary = (
            primary
            | ((employing >= 1) & (employing < FREQUENCY_MIN))
            | ((central > 0) & (largest > DOMINANCE * central))
        )

        pattern = primary.copy()
        for value in NETWORK_PARTS:
            pattern |= _network_measure(
                rows, inner, geo, bounds, value, primary, pattern, logs, reseau
            )
        jobs = pattern | jobs_primary
        for value in NETWORK_JOBS:
            jobs |= _network_measure(
                rows, inner, geo, bounds, value, jobs_primary, jobs, logs, reseau
            )
        secret_counts = pl.Series(pattern)
        secret_jobs = pl.Series(jobs)
        masked = rows.with_columns(
            *(
                pl.when(secret_counts).then(None).otherwise(pl.col(c)).alias(c)
                for c in (*NETWORK_PARTS, *NETWORK_SUMS)
            ),
            *(pl.when(secret_jobs).then(None).otherwise(pl.col(c)).alias(c) for c in NETWORK_JOBS),
            pl.lit(None, pl.Float64).alias("emplois_max_unite"),
            pl.lit(mois).alias("mois"),
            pl.lit(reseau).alias("reseau"),
            pl.lit(declared.get(reseau)).alias("type_reseau"),
            pl.when(secret_jobs)
            .then(pl.lit(SECRET))
            .otherwise(pl.lit(PUBLIE))
            .alias("statut_secret"),
            pl.lit(None, pl.Utf8).alias("motif_secret"),
        )
        out.append(masked.select(public.columns))
    return pl.concat(out, how="vertical_relaxed"), pl.concat(logs, how="vertical_relaxed")


# below this many cells in a wave's need tables, starting worker processes costs more than
# masking them one after the other saves
PARALLEL_MIN_CELLS = 100_000
MAX_WORKERS = 4  # each worker holds its tables and LPs: a few hundred MB on a région


def cores() -> int:
    """Cores this process may run on (a CI runner or a container may allow fewer than the
    machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _need_statut(job: tuple) -> np.ndarray:
    """One need's mask (a worker's task: everything it needs comes in `job`)."""
    cells, inner, geo, dims, primary, hidden, inner_value = job
    return _protect(
        cells,
        inner,
        geo,
        "nb_citant",
        dims,
        primary=primary,
        hidden=hidden,
        inner_value=inner_value,
    ).statut


def _map_needs(jobs: list[tuple]) -> list[np.ndarray]:
    """The needs of a wave are masked independently of each other (each on the respondents'
    mask): on a région, in worker processes, one per core. Each mask is deterministic, so the
    result does not depend on how many workers ran it."""
    cells = sum(job[0].height for job in jobs)
    workers = min(len(jobs), cores(), MAX_WORKERS)
    if cells < PARALLEL_MIN_CELLS or workers < 2:
        return [_need_statut(job) for job in jobs]
    # spawn, not fork: the parent holds DuckDB's and Polars' threads, which a fork would copy
    # in whatever state they were
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_need_statut, jobs))
    except (OSError, NotImplementedError, BrokenProcessPool) as exc:
        # no worker could start (a container without /dev/shm, a process limit) or one died:
        # the same masks one after the other, only slower
        log.warning("secret : masques des besoins dans ce processus (%s)", exc)
        return [_need_statut(job) for job in jobs]


def _network_measure(
    rows: pl.DataFrame,
    inner: pl.DataFrame,
    geo: pl.DataFrame,
    bounds: dict[str, pl.DataFrame],
    value: str,
    primary: np.ndarray,
    hidden: np.ndarray,
    logs: list[pl.DataFrame],
    reseau: str,
) -> np.ndarray:
    """One measure of a confidential list's rows: which cells are secret (logged in `logs`)."""
    upper = bounds.get(value)
    column = "_central2" if value == "emplois_central" else value
    true = rows[column].to_numpy()[inner["_c"].to_numpy()].astype(np.int64)
    with_upper = (
        inner.join(upper, on="code_commune", how="left").sort("_i")
        if upper is not None
        else inner.with_columns(pl.lit(None, pl.Int64).alias("upper"))
    )
    m = _protect(
        rows.with_columns(pl.col(column).cast(pl.Int64)),
        with_upper,
        geo,
        column,
        (),
        primary=primary,
        hidden=hidden & ~primary,
        inner_value=true,
    )
    logs.append(_cell_log(rows, pl.lit(f"N:{reseau}:{value}"), m.statut, column, ()))
    return m.statut != PUBLIE


def _empty_log() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "tab": pl.Utf8,
            "geo": pl.Utf8,
            "d1": pl.Utf8,
            "d2": pl.Utf8,
            "d3": pl.Utf8,
            "value": pl.Float64,
            "statut": pl.Utf8,
            "motif": pl.Utf8,
        }
    )


# --------------------------------------------------------------------------------------------
# The month
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskReport:
    mois: str
    cells: int
    primary: int
    secondary: int
    seconds: float


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute("create schema if not exists secret")
    con.execute(
        "create table if not exists secret.cellules (mois varchar, tab varchar, geo varchar, "
        "d1 varchar, d2 varchar, d3 varchar, valeur double, statut varchar, motif varchar)"
    )
    con.execute(
        "create table if not exists secret.masques (mois varchar, cases bigint, "
        "primaires bigint, secondaires bigint, secondes double, calcule_le timestamp, "
        "version integer)"
    )
    # tables written by the first mask (issue 5): its extra columns stay, unused
    con.execute("alter table secret.masques add column if not exists version integer")


def protect_month(con: duckdb.DuckDBPyConnection, mois: str) -> MaskReport:
    """Write the month's tables for readers, `diffusion.*`, and the mask of its secret cells.

    Written in one transaction with the mask itself, so the two never disagree.
    """
    t0 = time.monotonic()
    indicators = catalogue.indicators()
    # public tables and listings are copied by DuckDB: nationally they hold tens of millions
    # of rows, and reading every table into Python took 21 GB (measured); only the tables the
    # mask works on are read
    masked = {"reseaux_couverture", *(n for n, i in indicators.items() if i.confidentiel)}
    frames = {name: _read(con, name, mois) for name in indicators if name in masked}
    tables: dict[str, pl.DataFrame | str] = {}
    for name, ind in indicators.items():
        if name not in masked:
            tables[name] = _public_sql(ind, mois)
    networks, network_cells = protect_networks(
        con, frames["reseaux_couverture"], mois, _confidential_lists(con)
    )
    tables["reseaux_couverture"] = networks.select(indicators["reseaux_couverture"].colonnes)
    confidential = {n for n, i in indicators.items() if i.confidentiel}
    if confidential - {"taux_reponse", "besoins_cites"}:
        raise ValueError(
            "secret statistique : table confidentielle sans règle de protection : "
            + ", ".join(sorted(confidential - {"taux_reponse", "besoins_cites"}))
        )
    crossings = {indicators[n].croisements_publies for n in ("taux_reponse", "besoins_cites")}
    if len(crossings) != 1:
        raise ValueError(
            "catalogue.toml : taux_reponse et besoins_cites doivent avoir les mêmes "
            "croisements_publies (les besoins sont masqués sur les cases des répondants)"
        )
    q = protect_questionnaire(
        con, frames["taux_reponse"], frames["besoins_cites"], mois, crossings.pop()
    )
    tables["taux_reponse"] = q.taux.select(indicators["taux_reponse"].colonnes)
    tables["besoins_cites"] = q.besoins.select(indicators["besoins_cites"].colonnes)
    status = pl.concat([q.cells, network_cells], how="vertical_relaxed")
    report = MaskReport(
        mois=mois,
        cells=status.height,
        primary=int((status["statut"] == PRIMAIRE).sum()),
        secondary=int((status["statut"] == SECONDAIRE).sum()),
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
            "insert into secret.masques by name select $mois as mois, $c as cases, "
            "$p as primaires, $s as secondaires, $t as secondes, now() as calcule_le, "
            "$v as version",
            {
                "mois": mois,
                "c": report.cells,
                "p": report.primary,
                "s": report.secondary,
                "t": report.seconds,
                "v": MASK_VERSION,
            },
        )
        for name, table in tables.items():
            if isinstance(table, str):
                con.execute(f"create or replace temp view _masque as {table}")
            else:
                con.register("_masque", table)
            con.execute(
                f"create table if not exists {SCHEMA}.{name} as select * from _masque limit 0"
            )
            _follow_columns(con, name)
            con.execute(f"delete from {SCHEMA}.{name} where mois = $mois", {"mois": mois})
            con.execute(f"insert into {SCHEMA}.{name} by name select * from _masque")
            if isinstance(table, str):
                con.execute("drop view _masque")
            else:
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


def mask_of(con: duckdb.DuckDBPyConnection, mois: str) -> MaskReport | None:
    """The month's mask, if it was computed by today's rules since its indicators were."""
    if not warehouse.table_exists(con, "secret", "masques"):
        return None
    row = con.execute(
        "select cases, primaires, secondaires, secondes from secret.masques "
        "where mois = $mois and version = $v",
        {"mois": mois, "v": MASK_VERSION},
    ).fetchone()
    if row is None:
        return None
    return MaskReport(mois, int(row[0]), int(row[1]), int(row[2]), float(row[3]))


def invalidate(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """New indicators for the month: its mask no longer describes them until recomputed."""
    if warehouse.table_exists(con, "secret", "masques"):
        con.execute("delete from secret.masques where mois = $mois", {"mois": mois})


def ensure_protected(con: duckdb.DuckDBPyConnection, months: list[str]) -> None:
    """Months published under older rules (or none) get today's before being published again."""
    current: set[str] = set()
    if warehouse.table_exists(con, "secret", "masques"):
        _ensure_tables(con)
        current = {
            m
            for (m,) in con.execute(
                "select mois from secret.masques where version = $v", {"v": MASK_VERSION}
            ).fetchall()
        }
    for m in months:
        if m not in current:
            protect_month(con, m)
