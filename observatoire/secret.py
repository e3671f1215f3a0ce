"""Statistical secrecy of every published cell: primary rules, secondary suppression, audit.

French official statistics never publish a cell that reveals one unit (docs/methode.md, part 14;
design and sources in docs/design/secret_statistique.md). No maintained pure-Python library
protects linked hierarchical tables (τ-Argus is a Windows program, sdcTable is R), so the mask is
computed here, in three steps over one linear system per group of linked tables:

1. **Primary rule**: a cell built from 1 or 2 units (legal units for Sirene establishment
   tables: two sites of one association are one respondent), or in which one unit holds 85 % or
   more of the estimated jobs, is `primaire`. Empty cells are not stored, hence not sensitive.
2. **Secondary suppression**: every published figure is a cell of some table, and the tables
   are tied by equations ("lines": a total equals the sum of its children, along every
   dimension, across geographic levels and between tables such as active = employers +
   non-employers, jobs = Σ band bounds × counts). Knowledge is propagated along lines from the
   published cells; each protected cell that becomes computable gets a partner suppressed in
   the line that revealed it (the cheapest one), until a fixpoint.
3. **Audit**: linear programs (HiGHS, through scipy) give, for each suppressed cell, the smallest
   and largest value consistent with everything published, the non-negativity of counts and
   the fact that a secret row is not empty. A cell whose interval is narrower than one unit
   is recomputable: a partner is suppressed next to it and steps 2–3 run again.

The mask is computed once per month over every published territory, so two readers never see
two different masks of the same cell. It only ever adds suppressions, hence terminates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

log = logging.getLogger(__name__)

FREQUENCY_MIN = 3  # a cell needs at least this many units
DOMINANCE_SHARE = 0.85  # one unit holding this share of the jobs or more makes the cell secret
MIN_WIDTH = 1.0  # an attacker's interval on a secret count must be at least this wide
MAX_ROUNDS = 200
ESCALATE_AFTER = 3  # rounds a cell may stay narrow before its whole neighbourhood is hidden
LP_COMPONENT_LIMIT = 60_000  # variables; larger components get propagation checks only
# cells left uncertified in larger components get a partner rather than their own two LPs:
# a slightly larger mask, for a much shorter run
DEDICATED_COMPONENT_LIMIT = 3_000

PUBLIE, PRIMAIRE, SECONDAIRE = "publie", "primaire", "secondaire"
FREQUENCE, DOMINANCE, LIEN = "frequence", "dominance", "lien"

DIMS = ("tab", "geo", "d1", "d2", "d3")
NONE = "-"  # a dimension a table does not have
ENSEMBLE = "ensemble"

ESS_FAMILIES = (
    "association",
    "cooperative",
    "mutuelle",
    "fondation",
    "autre_non_lucratif",
    "societe_commerciale_ess",
)


# --------------------------------------------------------------------------------------------
# The system: cells and lines
# --------------------------------------------------------------------------------------------


@dataclass
class System:
    """Cells of one group of linked tables, the equations between them, and the mask.

    `cells` columns: cid, tab, geo, d1, d2, d3, value, publishable, primary, motif, cost.
    Hidden cells (`publishable` false) are never published but are unknowns of the attacker;
    a hidden primary cell (public employers of a commune, say) must be protected too.
    `lines`: lid, cid, coef; each line says Σ coef·x = rhs (`rhs` per lid), and is active
    only while its `anchor` cell (the published figure the equation comes from, e.g. a jobs
    total) is published; anchor -1 means always active.
    """

    cells: pl.DataFrame
    lines: pl.DataFrame
    rhs: np.ndarray
    anchor: np.ndarray
    suppressed: np.ndarray = field(init=False)
    excluded: np.ndarray = field(init=False)
    reason: np.ndarray = field(init=False)
    rounds: int = 0
    lp_solves: int = 0
    unaudited: int = 0

    def __post_init__(self) -> None:
        prim = self.cells["primary"].to_numpy()
        self.suppressed = prim & self.cells["publishable"].to_numpy()
        # a cell equal to a territory's grand total (the total's only non-empty part) can
        # never be protected while the total is published: never a partner
        self.excluded = np.zeros(self.n_cells, dtype=bool)
        if "frozen" in self.cells.columns and self.lines.height:
            frozen = self.cells["frozen"].to_numpy()
            lid = self.lines["lid"].to_numpy()
            cid = self.lines["cid"].to_numpy()
            size = np.bincount(lid, minlength=self.rhs.size)
            nfrozen = np.bincount(lid, weights=frozen[cid].astype(float), minlength=self.rhs.size)
            pair = (size[lid] == 2) & (nfrozen[lid] == 1) & (self.anchor[lid] < 0)
            self.excluded[cid[pair & ~frozen[cid]]] = True
        self.reason = np.array(self.cells["motif"].to_list(), dtype=object)

    @property
    def n_cells(self) -> int:
        return self.cells.height

    def lower(self) -> np.ndarray:
        """What an attacker knows from a secret row being shown: at least one unit.

        Only where a row exists because its count is not zero (`nonempty`); a row of several
        measures (creations and closures, say) may show a secret zero.
        """
        nonempty = (
            self.cells["nonempty"].to_numpy()
            if "nonempty" in self.cells.columns
            else np.ones(self.n_cells, dtype=bool)
        )
        return np.where(self.cells["publishable"].to_numpy() & nonempty, 1.0, 0.0)

    def frozen(self) -> np.ndarray:
        """Grand totals: never chosen as partners but as a last resort."""
        if "frozen" in self.cells.columns:
            return self.cells["frozen"].to_numpy()
        return np.zeros(self.n_cells, dtype=bool)

    def unknown(self) -> np.ndarray:
        return self.suppressed | ~self.cells["publishable"].to_numpy()

    def protected(self) -> np.ndarray:
        """Cells that must not be computable: every suppressed cell, and hidden primary ones."""
        return self.suppressed | self.cells["primary"].to_numpy()


def _key_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.Utf8) for c in DIMS)


def build_lines(
    cells: pl.DataFrame, decompositions: list[tuple[str, pl.DataFrame, pl.Expr | None]]
) -> pl.DataFrame:
    """One line per (decomposition, values of the other dimensions): parent = Σ children.

    A decomposition is (dimension, frame of dec/parent/child, filter on cells or None). A
    child that has no cell is an empty cell: 0, known to everyone since rows are only shown
    when not empty. A parent without a cell while a child has one would be a false equation,
    so it is an error, not skipped.
    """
    out: list[pl.DataFrame] = []
    next_id = 0
    for dim, dec, where in decompositions:
        scope = cells if where is None else cells.filter(where)
        others = [d for d in DIMS if d != dim]
        children = scope.join(dec, left_on=dim, right_on="child").select(
            "cid", *others, "dec", "parent"
        )
        if children.is_empty():
            continue
        parents = scope.join(
            dec.select("dec", "parent").unique(maintain_order=True), left_on=dim, right_on="parent"
        ).select("cid", *others, "dec")
        keyed = children.select(*others, "dec").unique().sort(*others, "dec")
        keyed = keyed.with_row_index("k").with_columns(pl.col("k").cast(pl.Int64) + next_id)
        next_id += keyed.height
        ch = children.join(keyed, on=[*others, "dec"]).select(
            pl.col("k").alias("lid"), "cid", pl.lit(1.0).alias("coef")
        )
        pa = keyed.join(parents, on=[*others, "dec"], how="left")
        orphan = pa.filter(pl.col("cid").is_null())
        if orphan.height:
            raise ValueError(
                f"secret statistique : {orphan.height} totaux absents pour la dimension {dim} "
                f"(exemple : {orphan.row(0, named=True)})"
            )
        out.append(ch)
        out.append(pa.select(pl.col("k").alias("lid"), "cid", pl.lit(-1.0).alias("coef")))
    if not out:
        return pl.DataFrame(schema={"lid": pl.Int64, "cid": pl.Int64, "coef": pl.Float64})
    return pl.concat(out).with_columns(pl.col("lid").cast(pl.Int64), pl.col("cid").cast(pl.Int64))


def _dec(pairs: Iterable[tuple[str, str, str]]) -> pl.DataFrame:
    rows = list(pairs)
    return pl.DataFrame(
        {
            "dec": [r[0] for r in rows],
            "parent": [r[1] for r in rows],
            "child": [r[2] for r in rows],
        },
        schema={"dec": pl.Utf8, "parent": pl.Utf8, "child": pl.Utf8},
    )


def flat_decomposition(dim: str, codes: Iterable[str], name: str) -> pl.DataFrame:
    """`ensemble` = every other code of the dimension."""
    return _dec((name, ENSEMBLE, c) for c in sorted(set(codes)) if c not in (ENSEMBLE, NONE))


def geo_decompositions(con: duckdb.DuckDBPyConnection, levels: set[str]) -> pl.DataFrame:
    """Every published territory is the sum of its communes; nested levels also sum up.

    Territories of several départements (EPCI, EPT of two départements) make the hierarchy
    non-nested: each parent simply gets its own lines, the mask is checked against all of them.
    """
    terr = con.execute(
        "select niveau, code_territoire, code_commune from ref.territoire_niveaux "
        "where niveau <> 'commune'"
    ).pl()
    terr = terr.filter(pl.col("niveau").is_in(sorted(levels)))
    pairs = terr.select(
        (pl.lit("geo:") + pl.col("niveau") + ":" + pl.col("code_territoire")).alias("dec"),
        (pl.col("niveau") + ":" + pl.col("code_territoire")).alias("parent"),
        (pl.lit("commune:") + pl.col("code_commune")).alias("child"),
    )
    # nested levels: a child territory whose communes all lie in one parent territory
    memb = terr.select(pl.col("niveau"), pl.col("code_territoire"), pl.col("code_commune"))
    nested: list[pl.DataFrame] = []
    for child_level in memb["niveau"].unique().to_list():
        for parent_level in memb["niveau"].unique().to_list():
            if child_level == parent_level:
                continue
            ch = memb.filter(pl.col("niveau") == child_level)
            pa = memb.filter(pl.col("niveau") == parent_level)
            j = ch.join(pa, on="code_commune", suffix="_p")
            per_child = j.group_by("code_territoire").agg(
                pl.col("code_territoire_p").n_unique().alias("np"), pl.len().alias("nj")
            )
            sizes = ch.group_by("code_territoire").agg(pl.len().alias("nc"))
            ok = per_child.join(sizes, on="code_territoire").filter(
                (pl.col("np") == 1) & (pl.col("nj") == pl.col("nc"))
            )
            if ok.is_empty():
                continue
            link = (
                j.join(ok.select("code_territoire"), on="code_territoire")
                .select("code_territoire", "code_territoire_p")
                .unique()
            )
            # the parent must be exactly the union of such children, else it is no line
            covered = (
                link.join(sizes, on="code_territoire")
                .group_by("code_territoire_p")
                .agg(pl.col("nc").sum().alias("cov"))
            )
            psize = pa.group_by("code_territoire").agg(pl.len().alias("n"))
            full = covered.join(
                psize, left_on="code_territoire_p", right_on="code_territoire"
            ).filter(pl.col("cov") == pl.col("n"))
            link = link.join(full.select("code_territoire_p"), on="code_territoire_p")
            if link.is_empty() or link["code_territoire_p"].n_unique() == 0:
                continue
            if link.height == link["code_territoire_p"].n_unique():
                continue  # one child equal to its parent adds no line worth checking
            nested.append(
                link.select(
                    (
                        pl.lit(f"geo:{parent_level}>{child_level}:") + pl.col("code_territoire_p")
                    ).alias("dec"),
                    (pl.lit(f"{parent_level}:") + pl.col("code_territoire_p")).alias("parent"),
                    (pl.lit(f"{child_level}:") + pl.col("code_territoire")).alias("child"),
                )
            )
    return pl.concat([pairs, *nested]) if nested else pairs


# --------------------------------------------------------------------------------------------
# Step 2: propagation along lines, partners in the revealing line
# --------------------------------------------------------------------------------------------


def _rows_with(frame: pl.DataFrame, column: str, ids: np.ndarray) -> pl.DataFrame:
    """Rows whose integer `column` is one of `ids` (a numpy mask: no hashing of big lists)."""
    col = frame[column].to_numpy()
    if col.size == 0:
        return frame
    mask = np.zeros(int(max(col.max(), np.max(ids, initial=0))) + 1, dtype=bool)
    mask[np.asarray(ids, dtype=np.int64)] = True
    return frame.filter(pl.Series(mask[col]))


def _active_lines(system: System) -> pl.DataFrame:
    anchor = system.anchor
    published = ~system.unknown()
    active_lid = np.nonzero((anchor < 0) | published[np.maximum(anchor, 0)])[0]
    return _rows_with(system.lines, "lid", active_lid)


def propagate(system: System) -> tuple[np.ndarray, np.ndarray]:
    """Cells an attacker computes by solving lines with one unknown, repeatedly.

    Returns (computable, revealing line per cell or -1). Only single-unknown steps: what the
    propagation finds is certainly disclosed; what it misses is for the LP audit.
    """
    known = ~system.unknown()
    via = np.full(system.n_cells, -1, dtype=np.int64)
    lines = _active_lines(system)
    lid = lines["lid"].to_numpy()
    cid = lines["cid"].to_numpy()
    while True:
        unk = ~known[cid]
        if not unk.any():
            break
        counts = np.bincount(lid[unk], minlength=int(lid.max()) + 1 if lid.size else 0)
        single = counts[lid] == 1
        hit = single & unk
        if not hit.any():
            break
        newly = cid[hit]
        via[newly] = lid[hit]
        known[newly] = True
    return known, via


def _tight_lines(system: System, known: np.ndarray) -> np.ndarray:
    """Lines whose unknown cells are pinned by their lower bounds (the commonest leak).

    When every unknown of a line has the same sign, their sum S is known; a secret row is at
    least 1 and a hidden cell at least 0, so each unknown lies in [l, S − Σ other l]. If
    S − Σ l < 1, they are all recomputed: two secret cells of 1 whose sum is 2, say.
    """
    lines = _active_lines(system)
    lid = lines["lid"].to_numpy()
    cid = lines["cid"].to_numpy()
    coef = lines["coef"].to_numpy()
    values = system.cells["value"].to_numpy()
    lower = system.lower()
    protected = system.protected()
    unk = ~known[cid]
    size = system.rhs.size
    r = system.rhs.copy()
    np.subtract.at(r, lid[~unk], coef[~unk] * values[cid[~unk]])
    n_unk = np.bincount(lid[unk], minlength=size)
    pos = np.bincount(lid[unk], weights=(coef[unk] > 0).astype(float), minlength=size)
    unit = np.bincount(lid[unk], weights=(np.abs(coef[unk]) != 1).astype(float), minlength=size)
    low = np.bincount(lid[unk], weights=lower[cid[unk]], minlength=size)
    prot = np.bincount(lid[unk], weights=protected[cid[unk]].astype(float), minlength=size)
    same_sign = (pos == n_unk) | (pos == 0)
    sign = np.where(pos == n_unk, 1.0, -1.0)
    slack = r * sign - low
    hit = (n_unk >= 2) & same_sign & (unit == 0) & (prot > 0) & (slack < MIN_WIDTH - 1e-7)
    return np.nonzero(hit)[0]


def _cheapest_partner(
    system: System, line_ids: np.ndarray, exclude: np.ndarray, prefer_value: float = 0.0
) -> dict[int, int]:
    """For each line, its cheapest published cell (not a grand total when avoidable)."""
    if line_ids.size == 0:
        return {}
    published = ~system.unknown()
    cost = system.cells["cost"].to_numpy()
    value = system.cells["value"].to_numpy()
    lines = _rows_with(system.lines, "lid", line_ids)
    lid = lines["lid"].to_numpy()
    cid = lines["cid"].to_numpy()
    ok = published[cid] & ~exclude[cid] & ~system.frozen()[cid] & ~system.excluded[cid]
    ok &= value[cid] > 0
    lid, cid = lid[ok], cid[ok]
    if lid.size == 0:
        return {}
    # partners of 1 pin an attacker's interval at the bound: prefer values above prefer_value
    penalty = np.where(value[cid] > prefer_value, 0.0, 1e12)
    order = np.lexsort((cid, cost[cid] + penalty, lid))
    lid, cid = lid[order], cid[order]
    first = np.ones(lid.size, dtype=bool)
    first[1:] = lid[1:] != lid[:-1]
    return dict(zip(lid[first].tolist(), cid[first].tolist(), strict=True))


def secondary_fixpoint(system: System) -> int:
    """Suppress partners until no protected cell is computable by line propagation."""
    added = 0
    protected_hidden = system.cells["primary"].to_numpy() & ~system.cells["publishable"].to_numpy()
    for _ in range(10_000):
        known, via = propagate(system)
        leaking = np.nonzero(known & (system.suppressed | protected_hidden))[0]
        if leaking.size == 0:
            tight = _tight_lines(system, known)
            if tight.size == 0:
                return added
            partners = _cheapest_partner(
                system, tight, np.zeros(system.n_cells, bool), prefer_value=1.0
            )
            new = np.array(sorted(set(partners.values())), dtype=np.int64)
            new = new[~system.suppressed[new]]
            if new.size == 0:
                return added  # nothing published left in those lines: the LP audit decides
            system.suppressed[new] = True
            system.reason[new] = np.where(system.reason[new] == None, LIEN, system.reason[new])  # noqa: E711
            added += new.size
            continue
        partners = _cheapest_partner(
            system, np.unique(via[leaking]), np.zeros(system.n_cells, bool), prefer_value=1.0
        )
        if not partners:
            # the revealing lines have no published cell left: the figures in them come from
            # other lines; suppress around the leaking cells themselves, further if need be
            partners = _neighbours(system, leaking, prefer_value=1.0)
        if partners:
            new = np.array(sorted(set(partners.values())), dtype=np.int64)
        else:
            new = np.array(sorted(_further_partners(system, leaking)), dtype=np.int64)
        system.suppressed[new] = True
        system.reason[new] = np.where(system.reason[new] == None, LIEN, system.reason[new])  # noqa: E711
        added += new.size
    raise RuntimeError("secret statistique : la suppression secondaire ne converge pas")


def _neighbours(system: System, cells: np.ndarray, prefer_value: float = 1.0) -> dict[int, int]:
    """The cheapest published cell sharing a line with each of `cells`."""
    lines = _active_lines(system)
    lid = _rows_with(lines, "cid", cells)["lid"].unique()
    partners = _cheapest_partner(
        system, lid.to_numpy(), np.zeros(system.n_cells, bool), prefer_value=prefer_value
    )
    # one partner per cell is enough: take, per cell, the cheapest among its lines
    if not partners:
        return {}
    cost = system.cells["cost"].to_numpy()
    memb = _rows_with(lines, "cid", cells)
    best: dict[int, int] = {}
    for line, cell in zip(memb["lid"].to_list(), memb["cid"].to_list(), strict=True):
        p = partners.get(line)
        if p is None:
            continue
        if cell not in best or cost[p] < cost[best[cell]]:
            best[cell] = p
    return best


# --------------------------------------------------------------------------------------------
# Step 3: LP audit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    cid: int
    low: float
    high: float


def attacker_intervals(
    system: System,
    targets: np.ndarray | None = None,
    witnesses: int = 4,
    seed: int = 0,
    dedicated: int = 60,
    component_limit: int = LP_COMPONENT_LIMIT,
) -> tuple[dict[int, Interval], int]:
    """The attacker's interval on each protected cell, from published figures only.

    Unknowns: suppressed and hidden cells. Constraints: every active line, x ≥ 1 on a secret
    row (it is shown, so not empty), x ≥ 0 on hidden cells. Each LP solution is a feasible
    table, so witnesses (solutions of the whole system for a few random objectives, then
    objectives that push the uncertified cells in random directions) certify most cells at
    once: a cell seen at two values at least MIN_WIDTH apart cannot be recomputed. The few
    left get their own min and max LP on their connected component (the exact interval).
    Returns the intervals (witnessed ranges are lower bounds of the true widths, exact for
    cells that got their own LPs) and the number of cells left unaudited.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    unknown = system.unknown()
    if targets is None:
        targets = np.nonzero(system.protected() & unknown)[0]
    if targets.size == 0:
        return {}, 0
    values = system.cells["value"].to_numpy()
    lines = _active_lines(system)
    lid = lines["lid"].to_numpy()
    cid = lines["cid"].to_numpy()
    coef = lines["coef"].to_numpy()
    var_of = np.full(system.n_cells, -1, dtype=np.int64)
    var_cells = np.nonzero(unknown)[0]
    var_of[var_cells] = np.arange(var_cells.size)
    # right-hand sides: rhs − Σ published coef·value
    rhs = system.rhs.copy()
    pub = ~unknown[cid]
    np.subtract.at(rhs, lid[pub], coef[pub] * values[cid[pub]])
    unk = ~pub
    rows_used = np.unique(lid[unk])
    row_of = np.full(system.rhs.size, -1, dtype=np.int64)
    row_of[rows_used] = np.arange(rows_used.size)
    a = coo_matrix(
        (coef[unk], (row_of[lid[unk]], var_of[cid[unk]])),
        shape=(rows_used.size, var_cells.size),
    ).tocsr()
    b = rhs[rows_used]
    lower = system.lower()[var_cells]
    n = var_cells.size
    adj = (a.T @ a).tocsr() if a.shape[0] else coo_matrix((n, n)).tocsr()
    _, label = connected_components(adj, directed=False)
    sizes = np.bincount(label)
    tv = var_of[targets]
    too_big = sizes[label[tv]] > component_limit
    unaudited = int(too_big.sum())
    tv = tv[~too_big]
    # a cell in no equation at all can be anything: certified without an LP
    free = np.asarray(abs(a).sum(axis=0)).ravel() == 0 if a.shape[0] else np.ones(n, bool)
    # the witnesses run on the components that hold targets, all in one LP
    keep = np.isin(label, np.unique(label[tv])) & ~free
    cols = np.nonzero(keep)[0]
    local = np.full(n, -1, dtype=np.int64)
    local[cols] = np.arange(cols.size)
    sub = a[:, cols]
    rows = np.unique(sub.nonzero()[0])
    sub = sub[rows]
    bb = b[rows]
    # a box far above any true value keeps every LP bounded (HiGHS is at its most reliable
    # there); a cell that reaches the box is as good as unbounded
    cap = 10.0 * float(values.max(initial=0.0)) + 10.0
    bounds = np.column_stack([lower[cols], np.full(cols.size, cap)])
    rng = np.random.default_rng(seed)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    solves = 0

    def solve(c: np.ndarray, a_=sub, b_=bb, bounds_=bounds) -> np.ndarray | None:
        nonlocal solves
        solves += 1
        res = linprog(c, A_eq=a_, b_eq=b_, bounds=bounds_, method="highs")
        if res.status == 2:
            # HiGHS's presolve may call an unbounded model infeasible; the true table is a
            # feasible point, so ask again without presolve
            res = linprog(
                c, A_eq=a_, b_eq=b_, bounds=bounds_, method="highs", options={"presolve": False}
            )
        if res.status == 3:  # unbounded in this direction
            return None
        if res.status != 0:
            raise RuntimeError(f"secret statistique : audit impossible ({res.message})")
        return res.x

    def seen(x: np.ndarray | None, where: np.ndarray = cols) -> None:
        if x is not None:
            np.minimum.at(lo, where, x)
            np.maximum.at(hi, where, x)

    def open_targets() -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return tv[~free[tv] & ~(hi[tv] - lo[tv] >= MIN_WIDTH - 1e-7)]

    if rows.size and cols.size:
        for _ in range(witnesses):
            seen(solve(rng.uniform(-1.0, 1.0, cols.size)))
        left, stale = open_targets(), 0
        while left.size and stale < 2:
            # random signs: cells tied in pairs (x + y known) only move in opposite ways
            c = np.zeros(cols.size)
            c[local[left]] = rng.choice([-1.0, 1.0], left.size)
            up = solve(c)
            if up is None:
                hi[left[c[local[left]] < 0]] = np.inf
            seen(up)
            seen(solve(-c))
            still = open_targets()
            stale = stale + 1 if still.size == left.size else 0
            left = still
    # the last ones: exact min and max on their own component, up to a budget; beyond it a
    # cell counts as recomputable, which only adds suppressions
    small = sizes[label] <= DEDICATED_COMPONENT_LIMIT
    for v in [v for v in open_targets().tolist() if small[v]][:dedicated]:
        comp = np.nonzero(label == label[v])[0]
        csub = a[:, comp]
        crow = np.unique(csub.nonzero()[0])
        csub = csub[crow]
        cb = b[crow]
        cbounds = np.column_stack([lower[comp], np.full(comp.size, cap)])
        c = np.zeros(comp.size)
        c[np.searchsorted(comp, v)] = 1.0
        seen(solve(c, csub, cb, cbounds), comp)
        up = solve(-c, csub, cb, cbounds)
        if up is None:
            hi[v] = np.inf
        seen(up, comp)
    system.lp_solves += solves
    out: dict[int, Interval] = {}
    for v in tv.tolist():
        cell = int(var_cells[v])
        if free[v]:
            out[cell] = Interval(cell, float(lower[v]), np.inf)
        else:
            out[cell] = Interval(cell, float(lo[v]), float(hi[v]))
    return out, unaudited


def protect(system: System, audit: bool = True) -> System:
    """Primary cells are already set; add secondary ones until propagation and LP agree.

    Suppressing more only removes constraints from the attacker's problem, so an interval can
    only widen from one round to the next: a cell certified once stays certified, and each
    round audits only the cells not certified yet.
    """
    t0 = time.monotonic()
    certified = np.zeros(system.n_cells, dtype=bool)
    stuck = np.zeros(system.n_cells, dtype=np.int64)
    for rnd in range(MAX_ROUNDS):
        system.rounds = rnd + 1
        secondary_fixpoint(system)
        if not audit:
            return system
        targets = np.nonzero(system.protected() & system.unknown() & ~certified)[0]
        intervals, unaudited = attacker_intervals(system, targets=targets)
        system.unaudited = unaudited
        wide = [i.cid for i in intervals.values() if i.high - i.low >= MIN_WIDTH - 1e-7]
        certified[np.array(wide, dtype=np.int64)] = True
        narrow = np.array(
            [i.cid for i in intervals.values() if i.high - i.low < MIN_WIDTH - 1e-7],
            dtype=np.int64,
        )
        log.info(
            "secret, tour %d : %d cases supprimées, %d auditées, %d étroites, %d LP, %.1f s",
            system.rounds,
            int(system.suppressed.sum()),
            len(intervals),
            narrow.size,
            system.lp_solves,
            time.monotonic() - t0,
        )
        if narrow.size == 0:
            return system
        stuck[narrow] += 1
        stubborn = narrow[stuck[narrow] >= ESCALATE_AFTER]
        if stubborn.size:
            # narrow round after round: everything published in their lines goes at once,
            # totals and jobs anchors included (a handful of cells, always enough to end)
            around = _escalate(system, stubborn)
            if around:
                add = np.array(sorted(around), dtype=np.int64)
                system.suppressed[add] = True
                system.reason[add] = np.where(system.reason[add] == None, LIEN, system.reason[add])  # noqa: E711
                continue
        partners = _neighbours(system, narrow, prefer_value=1.0)
        new = set(partners.values())
        lonely = np.array([c for c in narrow.tolist() if c not in partners], dtype=np.int64)
        for cell in lonely.tolist():
            # every line of the cell is secret: what pins it is a published jobs total (the
            # anchor of an equation) on it or next to it, or a cell further out
            one = np.array([cell], dtype=np.int64)
            lines = _active_lines(system)
            ring = _rows_with(lines, "lid", _rows_with(lines, "cid", one)["lid"].to_numpy())
            near = ring["cid"].unique().to_numpy()
            new |= _anchors_of(system, near) or _further_partners(system, one)
        if not new:
            keys = system.cells[narrow[:3].tolist()].select("tab", "geo", "d1", "d2", "d3")
            raise RuntimeError(
                "secret statistique : cases recalculables sans partenaire : "
                + "; ".join(str(r) for r in keys.rows())
            )
        add = np.array(sorted(new), dtype=np.int64)
        system.suppressed[add] = True
        system.reason[add] = np.where(system.reason[add] == None, LIEN, system.reason[add])  # noqa: E711
    raise RuntimeError("secret statistique : l'audit ne converge pas")


def _escalate(system: System, cells: np.ndarray) -> set[int]:
    """Every published cell of the cells' lines, and the anchors of those lines.

    Territory totals only when no other published cell is found within a few lines.
    """
    unknown = system.unknown()
    value = system.cells["value"].to_numpy()
    frozen = system.frozen()
    for allow_frozen in (False, True):
        frontier = cells
        for _ in range(6):
            lines = _active_lines(system)
            lids = _rows_with(lines, "cid", frontier)["lid"].unique().to_numpy()
            ring = _rows_with(lines, "lid", lids)["cid"].unique().to_numpy()
            found = {int(c) for c in ring if not unknown[c] and value[c] > 0}
            found |= {int(a) for a in system.anchor[lids] if a >= 0 and not unknown[a]}
            out = found if allow_frozen else {c for c in found if not frozen[c]}
            if out:
                if allow_frozen:
                    keep = frozen.copy()
                    keep[list(out)] = False
                    system.cells = system.cells.with_columns(pl.Series("frozen", keep))
                return out
            frontier = ring
    return set()


def _further_partners(system: System, cells: np.ndarray) -> set[int]:
    """A partner for cells whose own lines are all secret: one line further, then another.

    As a last resort every published cell around goes, grand totals included: a commune so
    small that nothing else can protect its cells cannot have its total published either.
    """
    frontier = cells
    for _ in range(4):
        lines = _active_lines(system)
        lids = _rows_with(lines, "cid", frontier)["lid"].to_numpy()
        ring = _rows_with(lines, "lid", lids)["cid"].unique().to_numpy()
        found = _neighbours(system, ring, prefer_value=1.0)
        if found:
            cost = system.cells["cost"].to_numpy()
            return {min(found.values(), key=lambda c: cost[c])}
        frontier = ring
    # nothing else: the cheapest published figure nearest to the cells goes, even a total;
    # a territory too small for any of its cells to be protected loses its totals one by one
    unknown = system.unknown()
    cost = system.cells["cost"].to_numpy()
    frontier = cells
    for _ in range(6):
        lines = _active_lines(system)
        lids = _rows_with(lines, "cid", frontier)["lid"].to_numpy()
        ring = _rows_with(lines, "lid", lids)["cid"].unique().to_numpy()
        value = system.cells["value"].to_numpy()
        rest = [c for c in ring.tolist() if not unknown[c] and value[c] > 0]
        if rest:
            pick = min(rest, key=lambda c: cost[c])
            if "frozen" in system.cells.columns:
                keep = system.frozen().copy()
                keep[pick] = False
                system.cells = system.cells.with_columns(pl.Series("frozen", keep))
            system.excluded[pick] = False
            return {pick}
        frontier = ring
    return set()


def _anchors_of(system: System, cells: np.ndarray) -> set[int]:
    """Published jobs totals whose equations hold `cells` (never a territory's grand total)."""
    lines = _active_lines(system)
    lid = _rows_with(lines, "cid", cells)["lid"].unique()
    anchors = system.anchor[lid.to_numpy()]
    frozen = system.frozen()
    cost = system.cells["cost"].to_numpy()
    found = [int(a) for a in anchors[anchors >= 0] if not system.suppressed[a] and not frozen[a]]
    return {min(found, key=lambda c: cost[c])} if found else set()
