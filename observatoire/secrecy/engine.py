"""Statistical secrecy of confidential tables: primary rule, secondary suppression by elimination.

Only figures built from data given in confidence are protected (questionnaire answers, a list a
network declared confidential): everything computed from the open Sirene stock can be
recounted by anyone from that file and is published in full (docs/methode.md, part 10).

A protected table is a set of published cells, each the sum of some **inner cells** (the
finest cells: one commune × one family × one section × one band). The attacker knows which
inner cells make each cell, every published value, that counts are non-negative integers, and
an upper bound per inner cell where one is public (respondents ≤ establishments of the cell).

1. **Primary rule**: a cell of 1 or 2 respondents is `primaire`.
2. **Secondary suppression by Gaussian elimination** (Langsrud 2024; R packages SSBtools and
   GaussSuppression of Statistics Norway). Candidates are taken in order of preference, the
   figures readers want most first. The rows of the model matrix (one per inner cell) span
   every change of the inner cells that the published figures cannot see; publishing a cell
   removes the directions that move it (one elimination step). A candidate whose elimination
   would leave a primary cell with no direction left, so that the primary cell becomes a linear
   combination of published ones, is suppressed instead (`secondaire`).
3. **Zeros and full cells** come first: a published cell of 0 (or equal to its public upper
   bound) tells every inner cell under it, which no linear algebra sees. Such a cell is
   published unless the inner cells it tells would leave a primary cell with none unknown.

Elimination is exact: integer rows, fraction-free updates divided by their gcd. What
elimination cannot see, inequalities that pin a cell without any equation, is what the LP
audit in the tests looks for (`tests/end_to_end/test_secret.py`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np

log = logging.getLogger(__name__)
MAX_ROUNDS = 40
WITNESSES = 4

FREQUENCY_MIN = 3  # a cell needs at least this many respondents
ENSEMBLE = "ensemble"
PUBLIE, SECRET = "publie", "secret"


@dataclass
class Table:
    """One additive table to protect: cells as sums of inner cells.

    `cell_ptr`/`cell_inner`: the inner cells of cell k are `cell_inner[cell_ptr[k]:cell_ptr[k+1]]`.
    `upper`: the public upper bound of each inner cell (-1 when there is none).
    `priority`: smaller is published first (what readers want most).
    `hidden`: cells never published that need no protection of their own (already secret
    elsewhere); `primary`: cells that must not be recomputable.
    """

    n_inner: int
    cell_ptr: np.ndarray
    cell_inner: np.ndarray
    value: np.ndarray
    primary: np.ndarray
    hidden: np.ndarray
    priority: np.ndarray
    upper: np.ndarray
    # the true inner cells (one table consistent with everything published) and a block per
    # inner cell (its commune's smallest territory): with both, the audit first looks for
    # other tables that differ inside one block only, a small LP per block (see `_pinned`)
    inner_value: np.ndarray | None = None
    block: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        return self.value.size

    def inner(self, k: int) -> np.ndarray:
        return self.cell_inner[self.cell_ptr[k] : self.cell_ptr[k + 1]]


@dataclass
class Result:
    suppressed: np.ndarray  # primary | hidden | secondary
    secondary: np.ndarray
    known_inner: np.ndarray  # inner cells the published zeros and full cells tell
    known_value: np.ndarray  # their values (0, or the public upper bound)
    rounds: int = 1
    lp_solves: int = 0


def _full(table: Table) -> np.ndarray:
    """Cells equal to the sum of their inner cells' public upper bounds (all inner cells known)."""
    up = table.upper.astype(np.float64)
    has = up >= 0
    bound = np.add.reduceat(np.where(has, up, 0.0)[table.cell_inner], table.cell_ptr[:-1])
    bounded = np.add.reduceat(has[table.cell_inner].astype(np.int64), table.cell_ptr[:-1])
    sizes = np.diff(table.cell_ptr)
    empty = sizes == 0
    bound[empty] = 0.0
    bounded[empty] = 0
    return (bounded == sizes) & (table.value == bound) & ~empty


def suppress(table: Table) -> Result:
    """Secondary cells for `table`: no primary cell is left computable from published ones."""
    n = table.n_cells
    primary = table.primary.copy()
    undecided = ~primary & ~table.hidden
    secondary = np.zeros(n, dtype=bool)
    order = np.argsort(table.priority, kind="stable")
    order = order[undecided[order]]

    # 1. zeros and full cells: the inner cells they tell are known
    known = np.zeros(table.n_inner, dtype=bool)
    prim_ids = np.nonzero(primary)[0]
    remaining = np.zeros(n, dtype=np.int64)
    inner_to_prim: dict[int, list[int]] = {}
    for p in prim_ids.tolist():
        inner = table.inner(p)
        remaining[p] = inner.size
        for i in inner.tolist():
            inner_to_prim.setdefault(i, []).append(p)
    zero = table.value == 0
    telling = zero | _full(table)
    known_value = np.zeros(table.n_inner, dtype=np.int64)
    decided = np.zeros(n, dtype=bool)
    for c in order[telling[order]].tolist():
        new = [i for i in table.inner(c).tolist() if not known[i]]
        hits: dict[int, int] = {}
        for i in new:
            for p in inner_to_prim.get(i, ()):
                hits[p] = hits.get(p, 0) + 1
        decided[c] = True
        if any(remaining[p] == h for p, h in hits.items()):
            secondary[c] = True
            continue
        known[new] = True
        if not zero[c]:
            known_value[new] = table.upper[new]
        for p, h in hits.items():
            remaining[p] -= h

    # 2. elimination on the rows of the model matrix, known inner cells left out
    active = primary | (undecided & ~decided)
    rows: dict[int, dict[int, int]] = {}
    cols: dict[int, set[int]] = {}
    for k in np.nonzero(active)[0].tolist():
        for i in table.inner(k).tolist():
            if known[i]:
                continue
            rows.setdefault(i, {})[k] = 1
            cols.setdefault(k, set()).add(i)
    for c in order[~decided[order]].tolist():
        rc = cols.pop(c, set())
        if not rc:
            continue  # already a combination of published cells
        b = min(rc, key=lambda r: (len(rows[r]), r))
        brow = rows[b]
        bc = brow[c]
        if _reveals(c, b, rc, brow, bc, rows, cols, primary):
            secondary[c] = True
            for r in rc:
                del rows[r][c]
            continue
        if bc == -1:
            for k in brow:
                brow[k] = -brow[k]
            bc = 1
        if bc == 1:
            # the usual case (a 0/1 model matrix): row − f·pivot touches only the pivot's
            # entries, the shortest row of the column; no scaling, no gcd over the whole row
            for r in rc:
                if r == b:
                    continue
                row = rows[r]
                f = row.pop(c)
                for k, v in brow.items():
                    if k == c:
                        continue
                    nv = row.get(k, 0) - f * v
                    if nv:
                        if k not in row:
                            cols[k].add(r)
                        row[k] = nv
                    elif k in row:
                        del row[k]
                        cols[k].discard(r)
                if not row:
                    del rows[r]
            for k in brow:
                if k != c:
                    cols[k].discard(b)
            del rows[b]
            continue
        for r in rc:
            if r == b:
                continue
            row = rows[r]
            rc_coef = row.pop(c)
            g = 0
            for k, v in brow.items():
                if k == c:
                    continue
                nv = row.get(k, 0) * bc - rc_coef * v
                if nv:
                    row[k] = nv
                    cols[k].add(r)
                elif k in row:
                    del row[k]
                    cols[k].discard(r)
            for k in row.keys() - brow.keys():
                row[k] *= bc
            for v in row.values():
                g = math.gcd(g, v)
            if g > 1:
                for k in row:
                    row[k] //= g
            if not row:
                del rows[r]
        for k in brow:
            if k != c:
                cols[k].discard(b)
        del rows[b]
    suppressed = primary | table.hidden | secondary
    return Result(
        suppressed=suppressed, secondary=secondary, known_inner=known, known_value=known_value
    )


def _reveals(
    c: int,
    b: int,
    rc: set[int],
    brow: dict[int, int],
    bc: int,
    rows: dict[int, dict[int, int]],
    cols: dict[int, set[int]],
    primary: np.ndarray,
) -> bool:
    """Would eliminating `c` on pivot row `b` zero the whole column of some primary cell?

    After the step, a row r of `rc` reads r·b_c − r_c·b: its entry for p is r_p·b_c − r_c·b_p,
    and a row outside `rc` keeps its entry. So a primary cell p of the pivot row loses its
    last direction exactly when its rows are those of c and proportional to them: p is then
    a multiple of c plus published cells. A primary cell outside the pivot row keeps every
    entry it has (multiplied by b_c).
    """
    for p, bp in brow.items():
        if p == c or not primary[p]:
            continue
        rp = cols[p]
        if len(rp) != len(rc):
            continue
        if all(r in rc and rows[r][p] * bc == rows[r][c] * bp for r in rp):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Inequalities: what elimination cannot see
# --------------------------------------------------------------------------------------------


def protect(table: Table) -> Result:
    """Elimination, then linear programs for what bounds and integrality pin; repeat.

    A primary cell can be pinned without being a linear combination of published cells: a
    margin of 3 over two secret cells whose public bounds are 1 and 2 tells both. The LPs
    give each primary cell's smallest and largest value over every table consistent with the
    published cells and the bounds; a cell whose range holds a single integer gets a partner
    (the least wanted published cell sharing an inner cell with it), and the audit runs
    again on the pinned cells, with the partners secret too. Elimination runs once: the cells
    published after it only ever lose members, which cannot make a primary cell a linear
    combination of them. Suppressing only ever adds unknowns, so it ends.
    """
    hidden = table.hidden.copy()
    solves = 0
    audited = table.primary.copy()
    result: Result | None = None
    for rnd in range(1, MAX_ROUNDS + 1):
        t0 = time.monotonic()
        if result is None:
            result = suppress(replace(table, hidden=hidden))
        else:
            # the cells published now are a subset of those elimination published: no primary
            # cell can have become a combination of them; only what they tell is recomputed
            result = _published_as_is(table, hidden)
        t1 = time.monotonic()
        pinned, n_lp = _pinned(table, result, audited)
        solves += n_lp
        log.info(
            "secret, tour %d : élimination %.1f s, audit %.1f s (%d LP)",
            rnd,
            t1 - t0,
            time.monotonic() - t1,
            n_lp,
        )
        if pinned.size == 0:
            result.rounds, result.lp_solves = rnd, solves
            # partners chosen after an LP are secondary cells too
            result.secondary = result.suppressed & ~table.primary & ~table.hidden
            return result
        partners = _partners(table, result, pinned)
        if not partners:
            # nothing published around them: hide the whole table rather than refuse a good
            # month (with every cell secret, no equation is left to pin anything)
            log.warning("secret : %d case(s) sans partenaire, tableau entier masqué", pinned.size)
            partners = set(np.nonzero(~result.suppressed)[0].tolist())
        log.info(
            "secret, tour %d : %d cases étroites, %d partenaires", rnd, pinned.size, len(partners)
        )
        # what this round suppressed stays suppressed: the published cells only ever lose
        # equations, so every table consistent with them stays consistent, and a cell freed
        # once stays free; only the pinned cells are audited again
        hidden |= result.suppressed & ~table.primary
        hidden[np.array(sorted(partners), dtype=np.int64)] = True
        audited = np.zeros(table.n_cells, dtype=bool)
        audited[pinned] = True
    raise RuntimeError("secret statistique : l'audit ne converge pas")


def _published_as_is(table: Table, hidden: np.ndarray) -> Result:
    """Every cell but the primary and hidden ones published; the inner cells its published
    zeros and full cells tell."""
    suppressed = table.primary | hidden
    telling = ~suppressed & ((table.value == 0) | _full(table))
    known = np.zeros(table.n_inner, dtype=bool)
    known_value = np.zeros(table.n_inner, dtype=np.int64)
    for c in np.nonzero(telling)[0].tolist():
        inner = table.inner(c)
        known[inner] = True
        if table.value[c] != 0:
            known_value[inner] = table.upper[inner]
    return Result(
        suppressed=suppressed,
        secondary=suppressed & ~table.primary & ~table.hidden,
        known_inner=known,
        known_value=known_value,
    )


def _system(table: Table, result: Result):
    """Published cells as equations on the unknown inner cells."""
    from scipy.sparse import csr_matrix

    unknown = ~result.known_inner
    var = np.full(table.n_inner, -1, dtype=np.int64)
    var[unknown] = np.arange(int(unknown.sum()))
    sizes = np.diff(table.cell_ptr)
    cell_of = np.repeat(np.arange(table.n_cells), sizes)
    inner = table.cell_inner
    pub = ~result.suppressed[cell_of]
    known_part = np.bincount(
        cell_of[pub & ~unknown[inner]],
        weights=result.known_value[inner[pub & ~unknown[inner]]],
        minlength=table.n_cells,
    )
    keep = pub & unknown[inner]
    a = csr_matrix(
        (np.ones(int(keep.sum())), (cell_of[keep], var[inner[keep]])),
        shape=(table.n_cells, int(unknown.sum())),
    )
    rows = np.unique(cell_of[keep])
    rhs = table.value.astype(np.float64) - known_part
    cap = 10.0 * float(table.value.max(initial=0)) + 10.0
    upper = np.where(table.upper[unknown] >= 0, table.upper[unknown].astype(float), cap)
    return a[rows], rhs[rows], upper, var, cell_of


_BANNER_SHOWN = [False]


def _quiet(make):
    """`make()` with the process's standard output closed the first time: HiGHS prints its
    banner from C++ when the first solver of the process is built, before any option can turn
    it off, and it would land in the middle of the refresh's report to the user."""
    import os
    import sys

    if _BANNER_SHOWN[0]:
        return make()
    _BANNER_SHOWN[0] = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            return make()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _Audit:
    """One linear program kept in HiGHS and solved again for each objective.

    Only the objective changes between solves: HiGHS keeps the last optimal basis, which
    stays feasible, so each new solve starts from it (a few simplex iterations instead of a
    full solve). scipy's `linprog` rebuilds and solves the model from scratch every time,
    which made the audit of the demo month 20 s instead of seconds.
    """

    def __init__(self, a, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        import highspy

        self.n = upper.size
        self.solves = 0
        self.h = _quiet(highspy.Highs)
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", 1)  # the same solutions on every machine
        lp = highspy.HighsLp()
        lp.num_col_ = self.n
        lp.num_row_ = a.shape[0]
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_ = lower.astype(np.float64)
        lp.col_upper_ = upper.astype(np.float64)
        lp.row_lower_ = b.astype(np.float64)
        lp.row_upper_ = b.astype(np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data.astype(np.float64)
        lp.a_matrix_.num_col_ = self.n
        lp.a_matrix_.num_row_ = a.shape[0]
        self.h.passModel(lp)
        self.cols = np.arange(self.n, dtype=np.int32)
        self.status = highspy.HighsModelStatus.kOptimal

    def solve(self, c: np.ndarray) -> np.ndarray:
        self.solves += 1
        self.h.changeColsCost(self.n, self.cols, np.asarray(c, dtype=np.float64))
        self.h.run()
        status = self.h.getModelStatus()
        if status != self.status:
            raise RuntimeError(
                f"secret statistique : audit impossible ({self.h.modelStatusToString(status)})"
            )
        return np.asarray(self.h.getSolution().col_value)


def _pinned(table: Table, result: Result, audited: np.ndarray) -> tuple[np.ndarray, int]:
    """Cells of `audited` (primary cells) whose range, over every table the published cells
    allow, is one integer.

    A cell is certified free when two tables consistent with everything published give it
    values two integers apart. Such tables are searched first inside one block at a time:
    every inner cell outside the block keeps its true value, so the block's LP is small, and
    each table it finds is a table of the whole model. The few cells no block frees, and the
    cells that span blocks (a département's, a région's), go to the LP of the whole model.
    """
    from scipy.sparse import csr_matrix

    prim = np.nonzero(audited)[0]
    if prim.size == 0:
        return prim, 0
    a, b, upper, var, cell_of = _system(table, result)
    n = upper.size
    # each primary cell as a sum of unknown inner cells (its known ones are constants)
    member = np.isin(cell_of, prim) & (var[table.cell_inner] >= 0)
    pos = np.full(table.n_cells, -1, dtype=np.int64)
    pos[prim] = np.arange(prim.size)
    s = csr_matrix(
        (np.ones(int(member.sum())), (pos[cell_of[member]], var[table.cell_inner[member]])),
        shape=(prim.size, n),
    )
    empty = np.diff(s.indptr) == 0
    if n == 0:
        return prim, 0
    a = a.tocsr()
    low_bound, high_bound = _propagate(a, b, upper)
    # a cell whose implied bounds leave one value is pinned: no LP needed to tell it
    fixed = (s @ (high_bound - low_bound)) < 0.5
    fixed |= _fixed_by_a_margin(s, a, b, low_bound, high_bound)
    lo = np.full(prim.size, np.inf)
    hi = np.full(prim.size, -np.inf)
    solves = 0

    def open_() -> np.ndarray:
        return ~(np.floor(hi + 1e-7) > np.ceil(lo - 1e-7)) & ~empty & ~fixed

    truth = _truth(table, var, a, b, low_bound, high_bound)
    if truth is not None:
        block = table.block[var >= 0]  # type: ignore[index]
        # the block of each cell whose unknown inner cells all lie in one block, else -1
        blocks_of_members = np.append(block[s.indices], 0)  # a tail for empty last rows
        starts = np.minimum(s.indptr[:-1], s.indices.size)
        first = np.minimum.reduceat(blocks_of_members, starts)
        last = np.maximum.reduceat(blocks_of_members, starts)
        cell_block = np.where((first == last) & ~empty, first, -1)
        a_csc = a.tocsc()
        for blk in np.unique(cell_block[open_() & (cell_block >= 0)]).tolist():
            cols = np.nonzero(block == blk)[0]
            sub = a_csc[:, cols].tocsr()
            rows = np.nonzero(np.diff(sub.indptr))[0]
            sub = sub[rows]
            cells = np.nonzero(open_() & (cell_block == blk))[0]
            audit = _Audit(sub, sub @ truth[cols], low_bound[cols], high_bound[cols])
            lo_b, hi_b = _ranges(audit, s[cells][:, cols], np.random.default_rng(blk))
            lo[cells], hi[cells] = np.minimum(lo[cells], lo_b), np.maximum(hi[cells], hi_b)
            solves += audit.solves
        # a cell no table of its own block frees is counted as pinned: other tables may free
        # it through other blocks, but asking the whole model for each such cell costs more
        # than the partner it gets (most are pinned indeed), and a partner too many is safe
        local = cell_block >= 0
    else:
        local = np.zeros(prim.size, dtype=bool)
    left = np.nonzero(open_() & ~local)[0]
    if left.size:
        audit = _Audit(a, b, low_bound, high_bound)
        lo_g, hi_g = _ranges(audit, s[left], np.random.default_rng(0))
        lo[left], hi[left] = np.minimum(lo[left], lo_g), np.maximum(hi[left], hi_g)
        solves += audit.solves
    pinned = open_() | empty | fixed
    return prim[pinned], solves


def _fixed_by_a_margin(s, a, b: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Cells pinned by one published cell that contains them: that cell's value minus the
    bounds of its other inner cells leaves the cell a single integer (a family's respondents
    when the commune's total and every other family's bounds are known, say)."""
    s = s.tocsr()
    overlap = (s @ a.T).tocsr()  # inner cells a primary cell shares with each published one
    size = np.diff(s.indptr).astype(np.float64)
    rows = np.repeat(np.arange(s.shape[0]), np.diff(overlap.indptr))
    cols = overlap.indices
    inside = np.abs(overlap.data - size[rows]) < 0.5  # the published cell contains all of it
    rows, cols = rows[inside], cols[inside]
    if rows.size == 0:
        return np.zeros(s.shape[0], dtype=bool)
    s_lo, s_hi = s @ low, s @ high
    a_lo, a_hi = a @ low, a @ high
    # the cell = b − (the other inner cells of the published cell)
    top = b[cols] - (a_lo[cols] - s_lo[rows])
    bottom = b[cols] - (a_hi[cols] - s_hi[rows])
    cell_hi = s_hi.copy()
    cell_lo = s_lo.copy()
    np.minimum.at(cell_hi, rows, top)
    np.maximum.at(cell_lo, rows, bottom)
    return np.floor(cell_hi + 1e-7) <= np.ceil(cell_lo - 1e-7)


def _truth(table: Table, var, a, b, low, high) -> np.ndarray | None:
    """The true unknown inner cells, when given and consistent with the system, else None."""
    if table.inner_value is None or table.block is None:
        return None
    x = table.inner_value[var >= 0].astype(np.float64)
    if x.size == 0 or np.abs(a @ x - b).max(initial=0.0) > 1e-6:
        return None
    if (x < low - 1e-9).any() or (x > high + 1e-9).any():
        return None
    return x


def _ranges(audit: _Audit, s, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest values of the cells `s` (rows: sums of the LP's columns) seen in
    the LP's tables: random tables first, then tables pushing the cells left in random
    directions, many at once; each cell still narrow gets its own two LPs."""
    n = s.shape[1]
    lo = np.full(s.shape[0], np.inf)
    hi = np.full(s.shape[0], -np.inf)
    solve = audit.solve

    def narrow() -> np.ndarray:
        return ~(np.floor(hi + 1e-7) > np.ceil(lo - 1e-7))

    for _ in range(WITNESSES):
        v = s @ solve(rng.uniform(-1.0, 1.0, n))
        lo, hi = np.minimum(lo, v), np.maximum(hi, v)
    stale = 0
    while stale < 2:
        left = np.nonzero(narrow())[0]
        if left.size == 0:
            break
        signs = rng.choice([-1.0, 1.0], left.size)
        c = np.asarray(s[left].T @ signs).ravel()
        for direction in (c, -c):
            v = s @ solve(direction)
            lo, hi = np.minimum(lo, v), np.maximum(hi, v)
        stale = stale + 1 if int(narrow().sum()) == left.size else 0
    for k in np.nonzero(narrow())[0].tolist():
        c = np.asarray(s[k].todense()).ravel()
        lo[k] = min(lo[k], float(c @ solve(c)))
        if np.floor(hi[k] + 1e-7) > np.ceil(lo[k] - 1e-7):
            continue  # its smallest value is already two integers below one seen: free
        hi[k] = max(hi[k], float(c @ solve(-c)))
    return lo, hi


def _propagate(a, b: np.ndarray, upper: np.ndarray, rounds: int = 200):
    """Bounds every integer table consistent with the published cells must respect.

    Each published cell is an equation Σ x_i = b over its unknown inner cells: x_j is at least
    b minus the others' largest values and at most b minus their smallest ones, rounded to
    integers; repeated until nothing moves. Sound (never excludes the true table), cheap
    (sparse products), and it finds most cells that bounds pin, which the LPs would otherwise
    have to find one by one: a cell of 1 in a margin of 1 whose other cells are all 0, say.
    """
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    cols = a.indices
    lo = np.zeros(upper.size)
    hi = upper.astype(np.float64).copy()
    for _ in range(rounds):
        sum_lo, sum_hi = a @ lo, a @ hi
        new_lo, new_hi = lo.copy(), hi.copy()
        np.maximum.at(new_lo, cols, b[rows] - sum_hi[rows] + hi[cols])
        np.minimum.at(new_hi, cols, b[rows] - sum_lo[rows] + lo[cols])
        new_lo, new_hi = np.ceil(new_lo - 1e-9), np.floor(new_hi + 1e-9)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    return lo, np.maximum(hi, lo)


def _partners(table: Table, result: Result, pinned: np.ndarray) -> set[int]:
    """For each pinned cell, the least wanted published cell sharing an inner cell with it."""
    from scipy.sparse import csr_matrix

    incidence = csr_matrix(
        (
            np.ones(table.cell_inner.size, dtype=np.int32),
            table.cell_inner,
            table.cell_ptr,
        ),
        shape=(table.n_cells, table.n_inner),
    )
    around = (incidence[pinned] @ incidence.T).tocsr()  # cells sharing an inner cell
    containing = incidence.T.tocsr()  # inner cell -> the cells it is part of
    sizes = np.diff(table.cell_ptr)
    free = ~result.suppressed.copy()
    out: set[int] = set()
    for row, p in enumerate(pinned.tolist()):
        near = around.indices[around.indptr[row] : around.indptr[row + 1]]
        best = _least_wanted(table, near, free)
        if best < 0:
            # every cell around it is secret already: one ring further, through its smallest
            # secret neighbours (through a regional total, the ring would be the whole table,
            # and a partner far away frees nothing near the cell)
            near = near[near != p]
            for k in (8, near.size):
                closest = near[np.argsort(sizes[near], kind="stable")[:k]]
                inner = np.unique(incidence[closest].indices)
                mark = np.zeros(table.n_cells, dtype=bool)
                mark[containing[inner].indices] = True
                best = _least_wanted(table, np.nonzero(mark)[0], free)
                if best >= 0:
                    break
        if best >= 0:
            out.add(best)
            free[best] = False
    return out


def _least_wanted(table: Table, candidates: np.ndarray, free: np.ndarray) -> int:
    """The published candidate readers want least (largest priority; first on ties), or -1."""
    cand = np.sort(candidates[free[candidates]])
    if cand.size == 0:
        return -1
    return int(cand[np.argmax(table.priority[cand])])
