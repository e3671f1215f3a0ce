"""The inbox sensor: a file dropped in data/inbox/ starts the sources job on the published month.

One warehouse is materialised once (SIRENE month + a network list), then the sensor is
evaluated step by step as the data team would drop files, and the last run it asks for is
executed for real: the dropped files reach the links, the indicators and the publication.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
from conftest import ROOT
from dagster import DagsterInstance, build_sensor_context
from test_pipelines import MOIS, SOURCE_ASSETS, Territory, links, published_rows, write_network

from observatoire.publication import publish
from observatoire.sources.inbox import inbox_state

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

TAG = "observatoire/declencheur"


@pytest.fixture(scope="module")
def defs():
    from pipelines.definitions import defs

    return defs


def test_a_dropped_file_triggers_the_sources_job(defs, tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    inbox = tmp_path / "inbox"
    warehouse_path = tmp_path / "warehouse" / "observatoire.duckdb"
    sensor = defs.resolve_sensor_def("depot_inbox")
    assert sensor.job_name == "sources_externes"
    t = Territory()
    t.write_sirene(tmp_path)

    with DagsterInstance.ephemeral() as instance:

        def tick(cursor: str | None):
            context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
            return sensor.evaluate_tick(context)

        # (a) nothing dropped yet (the inbox does not even exist)
        data = tick(None)
        assert not data.run_requests
        assert data.skip_message.startswith("aucun changement dans ")

        # (b) a list dropped before any month is published: wait, and keep the cursor
        t.write_wave(inbox)
        t.write_ressourceries(inbox)
        data = tick(None)
        assert not data.run_requests
        assert "aucun mois publié" in data.skip_message
        assert "sirene_mensuel" in data.skip_message
        assert data.cursor is None

        assert (
            defs.resolve_job_def("chargement_referentiels")
            .execute_in_process(instance=instance)
            .success
        )
        monthly = defs.resolve_job_def("sirene_mensuel").execute_in_process(
            partition_key=f"{MOIS}-01", instance=instance
        )
        assert monthly.success
        first_live = publish.current(tmp_path / "publication")
        assert first_live is not None

        # the files waiting since (b) were read by the monthly run itself (its step `sources`):
        # the publication says so, and the sensor starts nothing for them
        assert publish.live_private(tmp_path / "publication")["sources_lues"] == (
            inbox_state(inbox)
        )
        data = tick(None)
        assert not data.run_requests
        assert "déjà lus par la publication en ligne" in data.skip_message
        cursor = data.cursor
        assert cursor is not None
        data = tick(cursor)
        assert not data.run_requests

        # (c) a new network list: one run of sources_externes on the published month
        siae = write_network(
            inbox,
            "siae",
            [[t.siret_b, "Coopérative des voisins", "3 av. de Verdun", "94200", "Ivry", ""]],
            type_="siae",
        )
        data = tick(cursor)
        (request,) = data.run_requests
        assert request.job_name in (None, "sources_externes")
        assert request.partition_key == f"{MOIS}-01"
        assert request.tags[TAG] == (
            "nouveau fichier reseaux/siae.csv ; nouveau fichier reseaux/siae.toml"
        )
        assert request.tags["observatoire/nb_fichiers_changes"] == "2"
        assert request.run_key.startswith(f"inbox-{MOIS}-")
        # the run key depends on the inbox's content only: a second tick asks for the same run,
        # which Dagster's daemon would not launch twice
        assert tick(cursor).run_requests[0].run_key == request.run_key
        cursor = data.cursor
        data = tick(cursor)
        assert not data.run_requests and data.skip_message.startswith("aucun changement")

        # (d) the same bytes copied again: no run; new content: a run naming the change
        siae.write_bytes(siae.read_bytes())
        assert not tick(cursor).run_requests
        with siae.open("a", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\r\n").writerow(
                ["", "Atelier fantôme", "1 place Inconnue", "94200", "Ivry-sur-Seine", ""]
            )
        data = tick(cursor)
        (modified,) = data.run_requests
        assert modified.tags[TAG] == "fichier modifié reseaux/siae.csv"
        assert modified.run_key != request.run_key
        cursor = data.cursor

        # (e) a reviewer's decisions file: the unlinked answer is C, says the reviewer
        queue = tmp_path / "revue" / f"a_revoir_{MOIS}.csv"
        with queue.open(encoding="utf-8-sig", newline="") as f:
            (row,) = [
                r
                for r in csv.DictReader(f, delimiter=";")
                if r["enregistrement_id"] == "printemps-2026:5"
            ]
        decisions = inbox / "decisions" / f"decisions_{MOIS}.csv"
        decisions.parent.mkdir()
        decisions.write_text(
            f"empreinte;decision;siret_retenu\r\n{row['empreinte']};accepte;{t.siret_c}\r\n",
            encoding="utf-8",
        )
        data = tick(cursor)
        (request,) = data.run_requests
        assert request.tags[TAG] == f"nouveau fichier decisions/decisions_{MOIS}.csv"
        assert not tick(data.cursor).run_requests

        # the requested run, executed: the dropped files reach links, indicators, publication
        result = defs.resolve_job_def("sources_externes").execute_in_process(
            partition_key=request.partition_key, instance=instance, tags=request.tags
        )
        assert result.success
        assert result.dagster_run.tags[TAG] == request.tags[TAG]
        checks = result.get_asset_check_evaluations()
        assert {c.asset_key.to_user_string() for c in checks} == SOURCE_ASSETS
        assert all(c.passed for c in checks)
        materialised = {
            e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        }
        assert "publication/observatoire" in materialised
        assert not any("sirene" in k for k in materialised)

    linked = links(warehouse_path)
    assert linked["siae:2"] == (t.siret_b, "siret", "lie", True)
    assert linked["siae:3"] == (None, "aucune", "non_lie", True)
    assert linked["printemps-2026:5"] == (t.siret_c, "decision", "lie", True)
    assert linked["ressourceries:2"] == (t.siret_a, "siret", "lie", True)

    live = publish.current(tmp_path / "publication")
    assert live is not None and live != first_live
    assert publish.published_month(tmp_path / "publication") == MOIS
    ept = {"niveau": "ept", "code_territoire": "T12"}
    (hors,) = published_rows(live, "ess_hors_reseau", **ept, famille="ensemble")
    # A and C are ressourceries, B now an SIAE: every ESS establishment is in a network
    assert (hors["nb_ess_actifs"], hors["nb_dans_un_reseau"], hors["nb_hors_reseau"]) == (
        "3",
        "3",
        "0",
    )
    (taux,) = published_rows(
        live, "taux_reponse", **ept, famille="ensemble", section_naf="ensemble",
        tranche_effectifs="ensemble",
    )  # fmt: skip
    assert taux["nb_repondants"] == "3"  # C, through the reviewer's decision
    couverture = {r["reseau"]: r for r in published_rows(live, "reseaux_couverture", **ept)}
    assert (couverture["siae"]["nb_membres"], couverture["siae"]["nb_non_trouves"]) == ("2", "1")


def _fake_publication(publication_dir, mois: str) -> None:
    """A published month as the sensor sees it (the live snapshot's manifest), without a run."""
    snapshot = publication_dir / f"{mois}_test"
    snapshot.mkdir(parents=True)
    (snapshot / "manifest.json").write_text(json.dumps({"mois": mois}), encoding="utf-8")
    publish.switch_current(publication_dir, snapshot)


@pytest.fixture
def tick(defs, tmp_path, monkeypatch):
    """Evaluate the sensor on an inbox under tmp_path, a month being published."""
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    _fake_publication(tmp_path / "publication", MOIS)
    sensor = defs.resolve_sensor_def("depot_inbox")
    with DagsterInstance.ephemeral() as instance:

        def _tick(cursor: str | None):
            context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
            return sensor.evaluate_tick(context)

        yield _tick


def test_removed_files_trigger_and_office_lock_files_do_not(tick, tmp_path):
    t = Territory()
    listing = t.write_ressourceries(tmp_path / "inbox")
    data = tick(None)
    assert len(data.run_requests) == 1
    cursor = data.cursor
    # Excel's lock file and hidden files are not sources
    (listing.parent / "~$ressourceries.csv").write_bytes(b"lock")
    (listing.parent / ".ressourceries.csv.swp").write_bytes(b"swap")
    assert not tick(cursor).run_requests
    # a list withdrawn by the data team must leave the indicators too
    listing.unlink()
    (request,) = tick(cursor).run_requests
    assert request.tags[TAG] == "fichier retiré reseaux/ressourceries.csv"
    assert request.partition_key == f"{MOIS}-01"


def test_a_file_put_back_to_its_earlier_content_gets_a_new_run_key(tick, tmp_path):
    t = Territory()
    listing = t.write_ressourceries(tmp_path / "inbox")
    first = listing.read_bytes()
    data = tick(None)
    keys = [data.run_requests[0].run_key]
    listing.write_bytes(first.replace(b"Les Amis du quartier", b"Les Amis du quartier (AQ)"))
    data = tick(data.cursor)
    keys.append(data.run_requests[0].run_key)
    listing.write_bytes(first)  # the data team reverts the edit
    data = tick(data.cursor)
    (request,) = data.run_requests
    assert request.tags[TAG] == "fichier modifié reseaux/ressourceries.csv"
    assert request.run_key not in keys
