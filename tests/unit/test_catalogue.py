"""Docs kept honest: catalogue <-> SQL files <-> exported columns; layers read only downwards."""

from __future__ import annotations

import re

import pytest
from sirene_builder import etab_row, new_siren, ul_row

from observatoire import linkage
from observatoire.core import catalogue, warehouse

SQL = warehouse.sql_dir()


def test_every_indicator_has_sql_and_every_sql_has_an_entry():
    assert set(catalogue.indicators()) == set(warehouse.sql_tables("indicators"))


def test_every_exported_column_is_in_the_data_dictionary():
    definitions = catalogue.column_definitions()
    for indicator in catalogue.indicators().values():
        missing = [c for c in indicator.colonnes if c not in definitions]
        assert not missing, (indicator.name, missing)


def test_catalogue_columns_are_the_sql_output_columns(run_month, settings):
    siren = new_siren()
    run_month("2026-11", [ul_row(siren)], [etab_row(siren)])
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        for name, indicator in catalogue.indicators().items():
            cols = [r[0] for r in con.execute(f"describe indicators.{name}").fetchall()]
            # the secret status (and widened jobs intervals) are added on the way to publication
            published = [c for c in indicator.colonnes if c not in catalogue.MASK_COLUMNS]
            assert cols == published, name
            assert set(indicator.dimensions) <= set(cols), name


_READS = re.compile(r"\b(?:from|join)\s+([a-z_]+)\.([a-z_]+)", re.IGNORECASE)


@pytest.mark.parametrize(
    ("schema", "allowed"),
    [("indicators", {"clean", "ref"}), ("clean", {"clean", "ref"}), ("ref", {"ref"})],
)
def test_layers_read_only_the_layer_below(schema, allowed):
    for path in sorted((SQL / schema).glob("*.sql")):
        read = {m.group(1).lower() for m in _READS.finditer(path.read_text(encoding="utf-8"))}
        assert read <= allowed, (path.name, read - allowed)


def test_sql_files_use_parameters_for_the_month():
    for path in sorted(SQL.glob("*/*.sql")):
        text = path.read_text(encoding="utf-8")
        assert "{" not in text.replace("{}", ""), f"{path.name}: no string formatting in SQL"
        if path.parent.name in {"indicators", "clean"} and path.stem not in linkage.VIEWS:
            assert "$mois" in text, path.name


_INBOX = re.compile(r"\bclean\.(?:rapprochements|questionnaire_\w+|reseaux\w*)\b")
_LEVELS_JOIN = re.compile(
    r"join\s+clean\.niveaux_publies\s+as\s+n\s+on\s+([^)]*?)(?:\n\s*\)|\n\s*where|\n\s*group)"
)


def test_indicators_roll_up_over_the_month_levels_and_inbox_ones_over_the_territory():
    """Every indicator rolls up over the month's published levels (`clean.niveaux_publies`,
    where a unit containing the territory appears only when the stock covers it). Those built
    on answers or network lists describe the territory only: every such roll-up leaves the
    containing units out (`not n.englobant`), so that the secrecy mask (its communes) and the
    survey's population (its establishments) stay the territory's."""
    for path in sorted((SQL / "indicators").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        assert "ref.territoire_niveaux" not in text, path.name
        joins = _LEVELS_JOIN.findall(text)
        if path.stem == "annuaire_ess":  # the directory lists the territory's communes
            assert not joins and "ref.territoire_communes" in text
            continue
        assert joins, path.name
        for condition in joins:
            assert "n.mois = $mois" in condition, (path.name, condition)
            if _INBOX.search(text):
                assert "not n.englobant" in condition, (path.name, condition)
