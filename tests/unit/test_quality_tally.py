"""The row checks of a suite are counted in one scan; only failing ones run their own query."""

from __future__ import annotations

import duckdb

from observatoire.quality.builder import Builder
from observatoire.quality.gx import _gx


def test_row_checks_are_tallied_in_one_scan_and_failing_ones_keep_their_query():
    con = duckdb.connect()
    con.execute(
        "create table m as select * from (values ('123456789', 'A'), ('12345678X', 'A'), "
        "('987654321', 'Z'), ('987654321', 'A')) as t(siren, etat)"
    )
    b = Builder(_gx())
    b.digits("siren", 9, "true")
    b.codes("etat_administratif", ("A", "C"), "siren", "true")
    b.unique("siren", "true")
    before = {c.name: c.query for c in b.checks}
    con.execute("create view v as select siren, etat as etat_administratif from m")
    counts = b.tally(con, "v")
    assert counts == {"siren_format": 1, "etat_administratif_valeurs": 1, "siren_unique": 1}
    # failing checks keep their own query (GX runs it and samples the rows)
    assert {c.name: c.query for c in b.checks} == before

    con.execute("delete from m where siren in ('12345678X', '987654321')")
    clean = Builder(_gx())
    clean.digits("siren", 9, "true")
    clean.unique("siren", "true")
    assert clean.tally(con, "v") == {"siren_format": 0, "siren_unique": 0}
    for c in clean.checks:
        # a passing check keeps an expectation, on a query answered without reading the month
        assert c.query is not None and c.query.endswith("where false")
        assert c.expectation.unexpected_rows_query == c.query
        assert c.expectation.meta["controle"] == c.name
        assert con.execute(c.query.replace("{batch}", "(select * from v)")).fetchall() == []
