"""The elimination of `observatoire/secret.py` against plain linear algebra, on small cubes."""

from __future__ import annotations

import itertools

import numpy as np

from observatoire.secrecy.engine import Table, protect, suppress


def _cube(rng: np.random.Generator, shape: tuple[int, ...], high: int = 6):
    """Every margin of a random table: cells as lists of inner cells."""
    values = rng.integers(0, high, shape)
    idx = np.arange(values.size).reshape(shape)
    members = []
    for mask in itertools.product((False, True), repeat=len(shape)):
        ranges = [[None] if m else range(n) for n, m in zip(shape, mask, strict=True)]
        for key in itertools.product(*ranges):
            sl = tuple(slice(None) if k is None else k for k in key)
            members.append(idx[sl].ravel())
    ptr = np.cumsum([0] + [m.size for m in members])
    flat = values.ravel()
    value = np.array([flat[m].sum() for m in members])
    return values.size, members, ptr, np.concatenate(members), value


def _table(n_inner, members, ptr, inner, value, rng, upper=None) -> Table:
    return Table(
        n_inner=n_inner,
        cell_ptr=ptr,
        cell_inner=inner,
        value=value,
        primary=(value >= 1) & (value < 3),
        hidden=np.zeros(value.size, dtype=bool),
        priority=np.array([-m.size + 0.1 * rng.random() for m in members]),
        upper=np.full(n_inner, -1) if upper is None else upper,
    )


def test_no_primary_cell_is_a_combination_of_published_ones():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(200):
        shape = tuple(int(x) for x in rng.integers(2, 4, 3))
        n_inner, members, ptr, inner, value = _cube(rng, shape)
        table = _table(n_inner, members, ptr, inner, value, rng)
        result = suppress(table)
        x = np.zeros((n_inner, value.size))
        for k, m in enumerate(members):
            x[m, k] = 1.0
        # published zeros tell their inner cells: those rows are known
        for k in np.nonzero(~result.suppressed & (value == 0))[0]:
            assert result.known_inner[members[k]].all()
        reduced = x[~result.known_inner]
        published = reduced[:, ~result.suppressed]
        rank = np.linalg.matrix_rank(published) if published.size else 0
        for p in np.nonzero(table.primary)[0]:
            column = reduced[:, p]
            assert column.any()
            assert np.linalg.matrix_rank(np.column_stack([published, column])) > rank
            checked += 1
    assert checked > 500


def test_a_two_way_table_gets_the_classic_rectangle():
    rng = np.random.default_rng(0)
    values = np.array([[1, 5, 7], [4, 9, 6], [8, 3, 10]])
    members = [np.array([i * 3 + j]) for i in range(3) for j in range(3)]
    members += [np.array([i * 3 + j for j in range(3)]) for i in range(3)]
    members += [np.array([i * 3 + j for i in range(3)]) for j in range(3)]
    members.append(np.arange(9))
    ptr = np.cumsum([0] + [m.size for m in members])
    value = np.array([values.ravel()[m].sum() for m in members])
    table = _table(9, members, ptr, np.concatenate(members), value, rng)
    result = suppress(table)
    # the total and the margins stay; four inner cells make the rectangle around (0, 0)
    assert not result.suppressed[9:].any()
    assert result.suppressed[:9].sum() == 4 and result.suppressed[0]


def test_bounds_that_pin_a_cell_get_it_a_partner():
    """Two secret cells of a row whose public bounds sum to their total are both pinned."""
    rng = np.random.default_rng(3)
    # a 1 × 3 table: inner values 1, 2, 9 with bounds 1, 2, 20; the row total 12 is published
    members = [np.array([0]), np.array([1]), np.array([2]), np.array([0, 1, 2])]
    ptr = np.cumsum([0] + [m.size for m in members])
    value = np.array([1, 2, 9, 12])
    table = _table(3, members, ptr, np.concatenate(members), value, rng, np.array([1, 2, 20]))
    # elimination alone publishes the 9: then 1 + 2 = 3 with bounds 1 and 2 pins both
    assert not suppress(table).suppressed[2]
    result = protect(table)
    assert result.suppressed[2] or result.suppressed[3]


def _geography(rng: np.random.Generator, groups: int, communes: int, shape=(3, 3)):
    """Communes in groups, each with a small crossing; cells: the margins of one dimension at
    a time, per commune, per group and in total (as the questionnaire tables are published)."""
    n_c = groups * communes
    values = rng.integers(0, 2, (n_c, *shape))
    upper = values + rng.integers(0, 2, values.shape)  # tight public bounds: they matter
    idx = np.arange(values.size).reshape(values.shape)
    members = []
    scopes = [[c] for c in range(n_c)]
    scopes += [list(range(g * communes, (g + 1) * communes)) for g in range(groups)]
    scopes.append(list(range(n_c)))
    for scope in scopes:
        sub = idx[scope]
        members.append(sub.ravel())
        for d, size in enumerate(shape):
            for k in range(size):
                members.append(np.take(sub, k, axis=d + 1).ravel())
    ptr = np.cumsum([0] + [m.size for m in members])
    flat = values.ravel()
    value = np.array([flat[m].sum() for m in members])
    block = np.repeat(np.arange(groups), communes * int(np.prod(shape)))
    return values.size, members, ptr, np.concatenate(members), value, flat, upper.ravel(), block


def _free(table: Table, result, members) -> list[int]:
    """Primary cells an LP over the whole model, independent of the engine, pins."""
    from scipy.optimize import linprog

    n = table.n_inner
    pub = np.nonzero(~result.suppressed)[0]
    a = np.zeros((pub.size, n))
    for r, k in enumerate(pub):
        a[r, members[k]] = 1.0
    lower = np.where(result.known_inner, result.known_value, 0).astype(float)
    upper = np.where(result.known_inner, result.known_value, table.upper).astype(float)
    bounds = np.column_stack([lower, upper])
    pinned = []
    for p in np.nonzero(table.primary)[0]:
        c = np.zeros(n)
        c[members[p]] = 1.0
        lo = linprog(c, A_eq=a, b_eq=table.value[pub], bounds=bounds, method="highs").fun
        hi = -linprog(-c, A_eq=a, b_eq=table.value[pub], bounds=bounds, method="highs").fun
        if np.floor(hi + 1e-7) <= np.ceil(lo - 1e-7):
            pinned.append(int(p))
    return pinned


def test_the_audit_block_by_block_leaves_no_cell_pinned_in_the_whole_model():
    """Tables found inside one block are tables of the whole model: what the block audit
    calls free, an LP over everything must find free too."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(10):
        n_inner, members, ptr, inner, value, truth, upper, block = _geography(rng, 3, 4)
        table = _table(n_inner, members, ptr, inner, value, rng, upper)
        table.inner_value, table.block = truth, block
        result = protect(table)
        assert result.lp_solves > 0
        assert _free(table, result, members) == []
        checked += int(table.primary.sum())
    assert checked > 200
