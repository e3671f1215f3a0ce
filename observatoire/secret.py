"""Statistical secrecy of every published cell: primary rules, secondary suppression, audit.

French official statistics never publish a cell that reveals one unit (docs/methode.md, part 10.2;
design and sources in docs/design/secret_statistique.md). No maintained pure-Python library
protects linked hierarchical tables (τ-Argus is a Windows program, sdcTable is R), so the mask is
computed here, in three steps over one linear system per group of linked tables:

1. **Primary rule**: a cell built from 1 or 2 units (legal units for Sirene establishment
   tables: two sites of one association are one respondent), or a jobs cell in which one unit
   holds 85 % or more of the estimated jobs, is `primaire`. Empty cells are not stored, hence
   not sensitive.
2. **Secondary suppression**: every published figure is a cell of some table, and the tables
   are tied by equations ("lines": a total equals the sum of its children, along every
   dimension, across geographic levels and between tables such as active = employers +
   non-employers). Knowledge is propagated along lines from the published cells; each
   protected cell that becomes computable gets a partner suppressed in the line that revealed
   it (the cheapest for readers, preferring cells that open no new line), until a fixpoint.
   Figures that depend on secret cells without being cells themselves (jobs of a row with
   secret bands) are published as the interval the published cells allow (`outer_bounds`).
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
ESCALATE_AFTER = 3  # rounds a cell may stay narrow before a perturbation LP protects it
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
    `lines`: lid, cid, coef; each line says Σ coef·x = rhs (`rhs` per lid).
    """

    cells: pl.DataFrame
    lines: pl.DataFrame
    rhs: np.ndarray
    suppressed: np.ndarray = field(init=False)
    excluded: np.ndarray = field(init=False)
    waived: np.ndarray = field(init=False)
    reason: np.ndarray = field(init=False)
    incidence: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = field(
        init=False, default=None
    )
    rounds: int = 0
    lp_solves: int = 0
    unaudited: int = 0

    def __post_init__(self) -> None:
        prim = self.cells["primary"].to_numpy()
        self.suppressed = prim & self.cells["publishable"].to_numpy()
        # a cell the published totals alone determine (a total's only non-empty part, or the
        # non-employers of a territory: its establishments minus its employers) can never be
        # protected while the totals are published: never a partner
        self.excluded = np.zeros(self.n_cells, dtype=bool)
        if "frozen" in self.cells.columns and self.lines.height:
            frozen = self.cells["frozen"].to_numpy()
            derived, _ = _solve_lines(self, frozen.copy())
            self.excluded = derived & ~frozen
        self.reason = np.array(self.cells["motif"].to_list(), dtype=object)
        # hidden cells left unprotected: only a territory's published totals could hide them
        self.waived = self.excluded & ~self.cells["publishable"].to_numpy()

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
        """Cells that must not be computable: every suppressed cell, and hidden primary ones.

        A hidden cell that only a territory's totals could protect (the non-employers of a
        commune are its establishments minus its employers) is waived: it is never published,
        and the totals are what the observatory is for.
        """
        return self.suppressed | (self.cells["primary"].to_numpy() & ~self.waived)


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


def propagate(system: System) -> tuple[np.ndarray, np.ndarray]:
    """Cells an attacker computes by solving lines with one unknown, repeatedly.

    Returns (computable, revealing line per cell or -1). Only single-unknown steps: what the
    propagation finds is certainly disclosed; what it misses is for the LP audit.
    """
    return _solve_lines(system, ~system.unknown())


def _solve_lines(system: System, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From the `known` cells, every cell a chain of single-unknown lines determines."""
    via = np.full(system.n_cells, -1, dtype=np.int64)
    lines = system.lines
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
    lines = system.lines
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


# A partner whose other lines hold no unknown yet makes each of them a new leak, to be closed
# by one more partner, and so on: the cascade that hid most of a commune's table. Its cost is
# raised by this factor per such line, and lowered for each other line of the round it closes.
FRESH_LINE_FACTOR = 3.0


def _incidence(
    system: System,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells of each line (with their coefficients) and lines of each cell, as CSR arrays.

    Computed once per system: the lines never change, only which cells are suppressed.
    """
    if system.incidence is None:
        lid = system.lines["lid"].to_numpy()
        cid = system.lines["cid"].to_numpy()
        by_line = np.argsort(lid, kind="stable")
        by_cell = np.argsort(cid, kind="stable")
        line_ptr = np.concatenate([[0], np.cumsum(np.bincount(lid, minlength=system.rhs.size))])
        cell_ptr = np.concatenate([[0], np.cumsum(np.bincount(cid, minlength=system.n_cells))])
        coef = system.lines["coef"].to_numpy()[by_line]
        system.incidence = (line_ptr, cid[by_line], cell_ptr, lid[by_cell], coef)
    return system.incidence


def _segments(ptr: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the CSR segments of `ids`, and for each the index of its id in `ids`."""
    ids = np.asarray(ids, dtype=np.int64)
    starts, lengths = ptr[ids], ptr[ids + 1] - ptr[ids]
    owner = np.repeat(np.arange(ids.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets, owner


def _ring(system: System, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines through `cells`, and every cell of those lines."""
    line_ptr, line_cells, cell_ptr, cell_lines, _ = _incidence(system)
    lines = np.unique(cell_lines[_segments(cell_ptr, cells)[0]])
    return lines, np.unique(line_cells[_segments(line_ptr, lines)[0]])


def _line_matrix(system: System, lines: np.ndarray, local: np.ndarray):
    """Rows: `lines`; columns: cells with a `local` index (the others are left out)."""
    from scipy.sparse import coo_matrix

    line_ptr, line_cells, _, _, line_coefs = _incidence(system)
    pos, row = _segments(line_ptr, lines)
    cells = line_cells[pos]
    keep = local[cells] >= 0
    coefs = line_coefs[pos]
    return coo_matrix(
        (coefs[keep], (row[keep], local[cells[keep]])),
        shape=(lines.size, int(local.max(initial=-1)) + 1),
    )


def _cheapest_partner(
    system: System, line_ids: np.ndarray, prefer_value: float = 0.0
) -> dict[int, int]:
    """A published partner for each line (not a grand total when avoidable).

    Lines are served one after the other, each partner counted at once: a line that the
    partner of an earlier one already opened needs none, and a partner that sits in lines
    already holding an unknown (or in several lines of the round) is preferred to one that
    would open new leaks around it.
    """
    if line_ids.size == 0:
        return {}
    line_ptr, line_cells, cell_ptr, cell_lines, _ = _incidence(system)
    unknown = system.unknown()
    cost = system.cells["cost"].to_numpy()
    value = system.cells["value"].to_numpy()
    ok = ~unknown & ~system.frozen() & ~system.excluded & (value > 0)
    # partners of 1 pin an attacker's interval at the bound: prefer values above prefer_value
    base = cost + np.where(value > prefer_value, 0.0, 1e12)
    lid = system.lines["lid"].to_numpy()
    cid = system.lines["cid"].to_numpy()
    n_unknown = np.bincount(lid[unknown[cid]], minlength=system.rhs.size)
    fresh = np.bincount(cid, weights=(n_unknown[lid] == 0), minlength=system.n_cells)
    todo = np.zeros(system.rhs.size, dtype=bool)
    todo[line_ids] = True
    closes = np.bincount(cid, weights=todo[lid], minlength=system.n_cells)
    chosen: dict[int, int] = {}
    for line in np.unique(line_ids).tolist():
        cells = line_cells[line_ptr[line] : line_ptr[line + 1]]
        if not todo[line]:
            continue  # a partner chosen for an earlier line sits in this one
        cand = cells[ok[cells]]
        if cand.size == 0:
            continue
        score = base[cand] * (1.0 + FRESH_LINE_FACTOR * fresh[cand]) / closes[cand]
        pick = int(cand[np.lexsort((cand, score))[0]])
        chosen[line] = pick
        ok[pick] = False
        for other in cell_lines[cell_ptr[pick] : cell_ptr[pick + 1]].tolist():
            members = line_cells[line_ptr[other] : line_ptr[other + 1]]
            if n_unknown[other] == 0:
                fresh[members] -= 1
            n_unknown[other] += 1
            if todo[other]:
                todo[other] = False
                closes[members] -= 1
    return chosen


def secondary_fixpoint(system: System) -> int:
    """Suppress partners until no protected cell is computable by line propagation."""
    added = 0
    hidden = ~system.cells["publishable"].to_numpy()
    for _ in range(10_000):
        known, via = propagate(system)
        leaking = np.nonzero(known & system.protected() & (system.suppressed | hidden))[0]
        if leaking.size == 0:
            tight = _tight_lines(system, known)
            if tight.size == 0:
                return added
            partners = _cheapest_partner(system, tight, prefer_value=1.0)
            new = np.array(sorted(set(partners.values())), dtype=np.int64)
            new = new[~system.suppressed[new]]
            if new.size == 0:
                return added  # nothing published left in those lines: the LP audit decides
            _suppress(system, new)
            added += new.size
            continue
        partners = _cheapest_partner(system, np.unique(via[leaking]), prefer_value=1.0)
        if not partners:
            # the revealing lines have no published cell left: the figures in them come from
            # other lines; suppress around the leaking cells themselves, further if need be
            partners = _neighbours(system, leaking, prefer_value=1.0)
        if partners:
            new = np.array(sorted(set(partners.values())), dtype=np.int64)
        else:
            moved: set[int] = set()
            carried: set[int] = set()
            for c in leaking.tolist():
                if c not in carried:  # an earlier change may move this one too
                    more, also = _perturbation(system, c)
                    moved |= more
                    carried |= also
            if not moved and not system.waived[leaking].any():
                raise RuntimeError("secret statistique : case recalculable sans partenaire")
            new = np.array(sorted(moved), dtype=np.int64)
        _suppress(system, new)
        added += new.size
    raise RuntimeError("secret statistique : la suppression secondaire ne converge pas")


def _suppress(system: System, cells: np.ndarray) -> None:
    """Hide `cells` as partners; a cell already secret keeps its own reason."""
    system.suppressed[cells] = True
    system.reason[cells] = np.where(system.reason[cells] == None, LIEN, system.reason[cells])  # noqa: E711


def _neighbours(system: System, cells: np.ndarray, prefer_value: float = 1.0) -> dict[int, int]:
    """The cheapest published cell sharing a line with each of `cells`."""
    lines = system.lines
    lid = _rows_with(lines, "cid", cells)["lid"].unique()
    partners = _cheapest_partner(system, lid.to_numpy(), prefer_value=prefer_value)
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
    lines = system.lines
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
        # a partner next to each narrow cell; a cell still narrow after that, or with no
        # published neighbour, gets the cheapest balanced change that moves it (certain)
        partners = _neighbours(system, narrow[stuck[narrow] < ESCALATE_AFTER], prefer_value=1.0)
        new = set(partners.values())
        lonely = [c for c in narrow.tolist() if c not in partners]
        carried: set[int] = set()
        for cell in lonely:
            if cell not in carried:  # an earlier change moves it by a unit too: protected
                more, also = _perturbation(system, cell)
                new |= more
                carried |= also
        if carried:
            certified[np.array(sorted(carried), dtype=np.int64)] = True
        if not new and system.waived[narrow].all():
            continue  # hidden cells waived: the next round audits what is left
        if not new:
            keys = system.cells[narrow[:3].tolist()].select("tab", "geo", "d1", "d2", "d3")
            raise RuntimeError(
                "secret statistique : cases recalculables sans partenaire : "
                + "; ".join(str(r) for r in keys.rows())
            )
        add = np.array(sorted(new), dtype=np.int64)
        _suppress(system, add)
    raise RuntimeError("secret statistique : l'audit ne converge pas")


# a territory's total, or the twin of one, moves in a perturbation only when nothing else can
FROZEN_FACTOR = 1e6
PERTURBATION_RINGS = (3, 6, 10_000)  # tried in turn: the last one is the whole component


def _perturbation(system: System, cell: int) -> tuple[set[int], set[int]]:
    """The published cells a change moving `cell` needs, on a neighbourhood widened as need be.

    Also returns the unknown cells the same change moves by a unit or more: once the published
    ones are hidden, they are protected too.
    """
    for rings in PERTURBATION_RINGS:
        found = _perturbation_within(system, cell, rings)
        if found is not None:
            return found
    if not system.cells["publishable"][cell]:
        system.waived[cell] = True  # nothing can move it: the published figures fix it
        return set(), set()
    raise RuntimeError(
        "secret statistique : aucune case ne peut protéger "
        + str(system.cells.row(cell, named=True))
    )


def _perturbation_within(system: System, cell: int, rings: int) -> tuple[set[int], set[int]] | None:
    """Published cells to hide so that `cell` can move by one unit, at the least cost.

    When no published cell shares a line with a computable cell (what pins it goes through
    hidden cells, or through lines further out), a linear program finds the cheapest balanced
    change of the whole table around it: d = u − v with every line still adding up, d = ±1 on
    the cell, every count staying at or above what a reader knows of it. Unknown cells move
    for free, a published cell costs its suppression cost, a territory's total a million times
    more. Hiding the published cells the change moves lets a reader's table be x or x + d with
    every published figure the same: the cell's interval is then at least one unit wide (the
    solution is the certificate). Cells further than a few lines stay put, which only makes the
    change costlier, never wrong.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack, vstack

    frontier = np.array([cell], dtype=np.int64)
    chosen = frontier
    for _ in range(rings):
        _, members = _ring(system, frontier)
        frontier = np.setdiff1d(members, chosen)
        chosen = np.union1d(chosen, members)
        if frontier.size == 0:
            break
    # every line of every cell that may move must still add up (cells outside stay put)
    lines, _ = _ring(system, chosen)
    local = np.full(system.n_cells, -1, dtype=np.int64)
    local[chosen] = np.arange(chosen.size)
    n = chosen.size
    m = _line_matrix(system, lines, local)
    unknown = system.unknown()[chosen]
    cost = system.cells["cost"].to_numpy()[chosen]
    guarded = (system.frozen() | system.excluded)[chosen]
    price = np.where(unknown, 0.0, np.where(guarded, cost * FROZEN_FACTOR, cost))
    values = system.cells["value"].to_numpy()[chosen]
    room = np.maximum(values - system.lower()[chosen], 0.0)
    cap = 10.0 * float(system.cells["value"].max()) + 10.0
    pick = coo_matrix(([1.0, -1.0], ([0, 0], [int(local[cell]), n + int(local[cell])])), (1, 2 * n))
    a_eq = vstack([hstack([m, -m]), pick]).tocsr()
    best: tuple[float, np.ndarray] | None = None
    for direction in (1.0, -1.0):
        if direction < 0 and room[local[cell]] < 1.0:
            continue
        b_eq = np.concatenate([np.zeros(lines.size), [direction]])
        bounds = np.concatenate(
            [np.column_stack([np.zeros(n), np.full(n, cap)]), np.column_stack([np.zeros(n), room])]
        )
        system.lp_solves += 1
        res = linprog(
            np.concatenate([price, price]), A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
        )
        if res.status == 0 and (best is None or res.fun < best[0]):
            best = (res.fun, res.x[:n] - res.x[n:])
    if best is None:
        return None
    moved = chosen[(np.abs(best[1]) > 1e-7) & ~unknown]
    carried = {int(c) for c in chosen[(np.abs(best[1]) >= 1.0 - 1e-7) & unknown]}
    if guarded[np.isin(chosen, moved)].any() and not system.cells["publishable"][cell]:
        system.waived[cell] = True  # a hidden cell is not worth a territory's total
        return set(), set()
    if guarded[np.isin(chosen, moved)].any():
        keep = system.frozen().copy()
        keep[moved] = False
        system.cells = system.cells.with_columns(pl.Series("frozen", keep))
        system.excluded[moved] = False
    return {int(c) for c in moved}, carried


def outer_bounds(
    system: System, objectives: list[dict[int, float]], rings: int = 1
) -> list[tuple[float, float]]:
    """Smallest and largest value of Σ coef·x that the published figures allow, or wider.

    For each objective, the unknowns it holds and the lines through them (one ring, not the
    whole system): a relaxation of the attacker's problem, so the interval contains the
    attacker's own and tells nothing published figures do not. Used to publish a figure
    that depends on secret cells (jobs of a row with secret bands) as an interval.
    """
    from scipy.optimize import linprog

    unknown = system.unknown()
    values = system.cells["value"].to_numpy()
    lower = system.lower()
    cap = 10.0 * float(values.max(initial=0.0)) + 10.0
    out: list[tuple[float, float]] = []
    for objective in objectives:
        const = sum(c * values[k] for k, c in objective.items() if not unknown[k])
        hidden = np.array([k for k, c in objective.items() if unknown[k] and c != 0], np.int64)
        if not hidden.size:
            out.append((const, const))
            continue
        frontier, lines = hidden, np.zeros(0, dtype=np.int64)
        for _ in range(rings):
            found, members = _ring(system, frontier)
            lines = np.union1d(lines, found)
            frontier = members[unknown[members]]
        # unknowns of those lines are the variables, published cells move to the right side
        line_ptr, line_cells, _, _, _ = _incidence(system)
        cells = np.unique(line_cells[_segments(line_ptr, lines)[0]])
        cells = cells[unknown[cells]]
        local = np.full(system.n_cells, -1, dtype=np.int64)
        local[cells] = np.arange(cells.size)
        a = _line_matrix(system, lines, local).tocsr()
        known = _line_matrix(system, lines, np.where(unknown, -1, np.arange(system.n_cells)))
        rhs = system.rhs[lines] - known.tocsr() @ values[: known.shape[1]]
        n = cells.size
        bounds = np.column_stack([lower[cells], np.full(n, cap)])
        c = np.zeros(n)
        for k, w in objective.items():
            if unknown[k]:
                c[local[k]] += w
        ends = []
        for sign in (1.0, -1.0):
            system.lp_solves += 1
            res = linprog(sign * c, A_eq=a, b_eq=rhs, bounds=bounds, method="highs")
            if res.status != 0:
                raise RuntimeError(f"secret statistique : borne impossible ({res.message})")
            ends.append(sign * res.fun)
        out.append((const + ends[0], const + ends[1]))
    return out
