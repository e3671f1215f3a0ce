"""Dagster wiring: definitions load, and the whole graph materialises a month on small files."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT
from dagster import AssetKey, DagsterInstance
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import catalogue, publish

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def defs():
    from pipelines.definitions import defs

    return defs


def test_definitions_load_with_the_full_graph(defs):
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    expected = {
        "ref/communes",
        "ref/territoire_niveaux",
        "raw/sirene_etablissements",
        "raw/sirene_unites_legales",
        "clean/sirene_etablissements",
        "clean/sirene_unites_legales",
        "clean/etablissements_perimetre",
        "publication/observatoire",
        *(f"indicators/{n}" for n in catalogue.indicators()),
    }
    assert expected <= keys
    schedule = defs.resolve_schedule_def("sirene_mensuel_schedule")
    assert schedule.cron_schedule == "0 6 3 * *"
    assert schedule.execution_timezone == "Europe/Paris"


def test_materialise_a_month_in_process(defs, tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    a, b = new_siren(), new_siren()
    write_stock(
        tmp_path / "sirene" / "2026-11",
        [ul_row(a), ul_row(b, categorieJuridiqueUniteLegale="5710")],
        [
            etab_row(a, caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="02"),
            etab_row(b),
        ],
        zipped=True,
    )
    with DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("referentiels").execute_in_process(instance=instance).success
        result = defs.resolve_job_def("sirene_mensuel").execute_in_process(
            partition_key="2026-11-01", instance=instance
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {"taux_de_rejet"}
        assert all(c.passed for c in checks)
        mats = {
            e.event_specific_data.materialization.asset_key: (
                e.event_specific_data.materialization.metadata
            )
            for e in result.get_asset_materialization_events()
        }
    assert mats[AssetKey(["raw", "sirene_etablissements"])]["lignes"].value == 2
    assert mats[AssetKey(["clean", "sirene_etablissements"])]["rejets"].value == 0
    live = publish.current(tmp_path / "publication")
    assert live is not None and (live / "csv" / "etablissements_actifs.csv").exists()
