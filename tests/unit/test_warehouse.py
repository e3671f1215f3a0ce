"""Month tables behind views: building aside, swapping, and upgrading an old warehouse."""

from __future__ import annotations

import duckdb
import pytest

from observatoire.core import warehouse

SQL = "select $mois as mois, x from (values (1), (2), (3)) as t(x) where x <= $n"


def _months(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select mois, count(*) from clean.etablissements_perimetre group by all order by 1"
    ).fetchall()


def test_a_month_is_replaced_and_the_others_kept(tmp_path):
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        for mois, n in (("2026-10", 3), ("2026-11", 2), ("2026-11", 1)):
            warehouse.replace_month(
                con, "clean", "etablissements_perimetre", mois, {"n": n}, sql=SQL
            )
        assert _months(con) == [("2026-10", 3), ("2026-11", 1)]
        kind = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'clean' and table_name = 'etablissements_perimetre'"
        ).fetchone()
        assert kind == ("VIEW",)


def test_an_old_single_table_warehouse_is_split_and_the_rerun_month_replaced(tmp_path):
    """Upgrade path: all months in one table. Re-running a month must keep the new rows."""
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        con.execute(
            "create table clean.etablissements_perimetre as "
            "select * from (values ('2026-10', 1), ('2026-10', 2), ('2026-11', 7)) t(mois, x)"
        )
        warehouse.replace_month(
            con, "clean", "etablissements_perimetre", "2026-11", {"n": 3}, sql=SQL
        )
        assert _months(con) == [("2026-10", 2), ("2026-11", 3)]
        assert con.execute(
            "select list(x order by x) from clean.etablissements_perimetre where mois = '2026-11'"
        ).fetchone() == ([1, 2, 3],)
        leftovers = con.execute(
            "select table_name from information_schema.tables where table_name like '%ancien%'"
        ).fetchall()
        assert leftovers == []


def test_stale_build_tables_of_any_month_are_dropped(tmp_path):
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        stale = warehouse.build_table("raw", "sirene_etablissements", "2025-01")
        con.execute(f"create table {stale} (x int)")
        con.execute("create table clean._buildings (x int)")  # not one of ours: kept
        assert warehouse.drop_stale_builds(con) == ["raw._build_sirene_etablissements__2025_01"]
        assert warehouse.table_exists(con, "clean", "_buildings")


@pytest.mark.parametrize("mois", ["2026-1", "2026-11\n", "2026_11", "x; drop table t"])
def test_month_names_are_validated_before_becoming_identifiers(mois):
    with pytest.raises(ValueError, match="mois invalide"):
        warehouse.month_table("raw", "sirene_etablissements", mois)
