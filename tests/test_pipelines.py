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
        assert {c.check_name for c in checks} == {"great_expectations"}
        gx_checked = {
            c.asset_key.to_user_string() for c in checks if c.check_name == "great_expectations"
        }
        assert gx_checked == {
            "raw/sirene_etablissements",
            "raw/sirene_unites_legales",
            "clean/sirene_etablissements",
            "clean/sirene_unites_legales",
            "clean/etablissements_perimetre",
        }
        assert all(c.passed for c in checks)
        assert (tmp_path / "quality" / "data_docs" / "index.html").exists()
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


def test_a_failed_blocking_check_stops_the_run_and_keeps_the_publication(
    defs, tmp_path, monkeypatch
):
    """A month whose volume collapses fails its GX check: nothing downstream runs, the previous
    publication stays live, and the failure sensor writes why beside it."""
    from dagster import DagsterRunStatus, build_run_status_sensor_context

    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    sirens = [new_siren() for _ in range(10)]
    uls = [ul_row(s) for s in sirens]
    ets = [etab_row(s) for s in sirens]
    write_stock(tmp_path / "sirene" / "2026-10", uls, ets, zipped=True)
    write_stock(tmp_path / "sirene" / "2026-11", uls[:5], ets[:5], zipped=True)
    with DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("referentiels").execute_in_process(instance=instance).success
        job = defs.resolve_job_def("sirene_mensuel")
        assert job.execute_in_process(partition_key="2026-10-01", instance=instance).success
        result = job.execute_in_process(
            partition_key="2026-11-01", instance=instance, raise_on_error=False
        )
        assert not result.success
        failed = [
            c
            for c in result.get_asset_check_evaluations()
            if c.check_name == "great_expectations" and not c.passed
        ]
        # the first blocking failure stops everything downstream, legal units included
        assert {c.asset_key.to_user_string() for c in failed} == {"raw/sirene_etablissements"}
        assert "dernier mois validé (2026-10 : 10 lignes)" in failed[0].metadata["resume"].value
        materialised = {
            e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        }
        assert "publication/observatoire" not in materialised
        assert not any(k.startswith("indicators/") for k in materialised)
        failure = result.get_run_failure_event()
        sensor = defs.resolve_sensor_def("echec_rafraichissement")
        sensor(
            build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=failure,
            ).for_run_failure()
        )
        assert result.dagster_run.status == DagsterRunStatus.FAILURE
    assert publish.published_month(tmp_path / "publication") == "2026-10"
    status = publish.read_status(tmp_path / "publication")
    assert status["dernier_rafraichissement"]["statut"] == "echec"
    assert status["dernier_rafraichissement"]["mois"] == "2026-11"
    assert "reste celle de 2026-10" in status["message"]
