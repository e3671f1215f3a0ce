"""The elimination of `observatoire/secret.py` against plain linear algebra, on small cubes."""

from __future__ import annotations

import itertools

import numpy as np

from observatoire.secret import Table, protect, suppress


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
