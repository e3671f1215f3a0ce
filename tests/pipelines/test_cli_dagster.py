"""One month, three ways: `observatoire refresh` (through Dagster), the Dagster job, the steps.

The CLI and Dagster are the same ordered list of steps (`observatoire.steps.STEPS`): on the
same inputs they must publish the same files and the same manifest, and the CLI's run must be
in the Dagster instance of DAGSTER_HOME with every asset of the month materialised and checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from dagster import AssetKey, DagsterInstance
from test_pipelines import MOIS, Territory

from observatoire import refresh, steps
from observatoire.core import fingerprint
from observatoire.core.settings import Settings
from observatoire.publication import publish

# what differs between two runs of the same month by construction
RUN_FIELDS = {"run_id"}


def _inputs(t: Territory, data: Path) -> None:
    t.write_sirene(data)
    t.write_wave(data / "inbox")
    t.write_ressourceries(data / "inbox")


def _env(data: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OBSERVATOIRE_DATA_DIR": str(data),
        "OBSERVATOIRE_REFERENCE_DIR": str(ROOT / "data" / "reference"),
        "DAGSTER_HOME": str(home),
    }


def _published(data: Path) -> tuple[dict[str, str], dict]:
    live = publish.current(data / "publication")
    assert live is not None
    files = {
        p.relative_to(live).as_posix(): p.read_text(encoding="utf-8-sig")
        for p in sorted((live / "csv").glob("*.csv"))
    }
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    for key in RUN_FIELDS:
        manifest.pop(key)
    manifest["secret_statistique"].pop("secondes")
    return files, manifest


def test_cli_dagster_and_steps_publish_the_same_month(tmp_path, monkeypatch):
    same_inputs = {}
    territory = Territory()
    for way in ("cli", "dagster", "steps"):
        same_inputs[way] = tmp_path / way / "data"
        _inputs(territory, same_inputs[way])
    # the generated inputs are identical (the territory's identifiers are fixed)
    assert _listing(same_inputs["cli"]) == _listing(same_inputs["dagster"])

    # 1. the CLI, as the data team types it
    home = tmp_path / "cli" / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(
        [sys.executable, "-m", "observatoire.cli", "refresh", "--mois", MOIS],
        env=_env(same_inputs["cli"], home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Publication (2026-11)" in done.stdout
    assert "STEP_START" not in done.stderr  # Dagster's event log stays in the UI
    # the month's progress on stderr, a pipe here: plain lines, each task's final line once
    # (not again from Dagster's console or the root logger)
    finals = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("Calcul des indicateurs : ") and line.endswith(", terminé")
    ]
    assert len(finals) == 1, done.stderr

    # its run is in the instance: every asset of every step materialised, every check passed
    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "sirene_mensuel"
        assert run.tags["dagster/partition"] == f"{MOIS}-01"
        assert run.tags["observatoire/lance_par"] == "observatoire refresh"
        assert f"Run Dagster              : {run.run_id}" in done.stdout  # where to look
        for step in steps.STEPS:
            for asset in step.assets:
                event = instance.get_latest_materialization_event(AssetKey(asset.split(".")))
                assert event is not None and event.run_id == run.run_id, asset
            for asset in step.checked:
                record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                    [_check_key(asset)]
                ).get(_check_key(asset))
                assert record is not None and record.run_id == run.run_id, asset
                assert record.evaluation.passed, asset
        # the same progress, word for word, in the run's log (the UI's)
        said = [e.user_message for e in instance.all_logs(run.run_id) if e.dagster_event is None]
        assert finals[0] in said, said
        # the publication is named after the run the UI shows
        live = publish.current(same_inputs["cli"] / "publication")
        assert live.name == f"{MOIS}_{run.run_id.replace('-', '')[:12]}"

    # the same month again, nothing changed: the live publication is kept, no run is started;
    # a changed input (a stock file touched) refreshes again
    live = publish.current(same_inputs["cli"] / "publication")

    def again(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "observatoire.cli", "refresh", "--mois", MOIS, *extra],
            env=_env(same_inputs["cli"], home),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )

    done = again()
    assert done.returncode == 0, done.stderr
    assert "Rien n'a changé depuis la publication en ligne de 2026-11" in done.stdout
    assert publish.current(same_inputs["cli"] / "publication") == live
    with DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 1
    # any input touched (a stock file, a setting) is a change: the month is refreshed again
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(same_inputs["cli"]))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    cli_settings = Settings.from_env()  # what the CLI process read
    made_from = publish.live_private(same_inputs["cli"] / "publication")["empreinte_entrees"]
    assert fingerprint.inputs(cli_settings, MOIS) == made_from
    stock = next((same_inputs["cli"] / "sirene").rglob("StockUniteLegale*"))
    os.utime(stock, ns=(stock.stat().st_atime_ns, stock.stat().st_mtime_ns + 1))
    assert fingerprint.inputs(cli_settings, MOIS) != made_from
    assert fingerprint.inputs(cli_settings.with_(max_reject_rate=0.5), MOIS) != made_from

    # 2. the Dagster job, as the schedule or the UI starts it
    from pipelines.definitions import defs

    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(same_inputs["dagster"]))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("sirene_mensuel").execute_in_process(
            partition_key=f"{MOIS}-01", instance=instance
        )
        assert result.success

    # 3. the steps in this process, without an orchestrator (what most tests use)
    settings = Settings.from_env().with_(
        data_dir=same_inputs["steps"],
        warehouse=same_inputs["steps"] / "warehouse" / "observatoire.duckdb",
        download_dir=same_inputs["steps"] / "sources",
        publication_dir=same_inputs["steps"] / "publication",
        inbox_dir=same_inputs["steps"] / "inbox",
        review_dir=same_inputs["steps"] / "revue",
        quality_docs_dir=same_inputs["steps"] / "quality" / "data_docs",
        sirene_etablissements=str(
            same_inputs["steps"] / "sirene" / "{mois}" / "StockEtablissement_utf8.zip"
        ),
        sirene_unites_legales=str(
            same_inputs["steps"] / "sirene" / "{mois}" / "StockUniteLegale_utf8.zip"
        ),
    )
    report = refresh.refresh(settings, MOIS)
    assert report.steps == [s.name for s in steps.STEPS]

    cli_files, cli_manifest = _published(same_inputs["cli"])
    for way in ("dagster", "steps"):
        files, manifest = _published(same_inputs[way])
        assert files.keys() == cli_files.keys(), way
        for name in files:
            assert files[name] == cli_files[name], (way, name)
        assert manifest == cli_manifest, way
    assert cli_manifest["libelle_territoire"] == "EPT Grand-Orly Seine Bièvre"
    # the inbox files read, for the sensor: in the snapshot's private part, not the manifest
    assert "sources_lues" not in cli_manifest
    private = publish.live_private(same_inputs["cli"] / "publication")
    assert set(private["sources_lues"]) == {
        p.relative_to(same_inputs["cli"] / "inbox").as_posix()
        for p in (same_inputs["cli"] / "inbox").rglob("*")
        if p.is_file()
    }


def _check_key(asset: str):
    from dagster import AssetCheckKey

    return AssetCheckKey(AssetKey(asset.split(".")), "great_expectations")


def _listing(data: Path) -> dict[str, bytes]:
    return {
        p.relative_to(data).as_posix(): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file()
    }
