"""The README's main command on the bundled default data, checked against the files themselves."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
from conftest import ROOT

from observatoire import quality
from observatoire.cli import DEMO_MOIS
from observatoire.publication import publish


def _read_zip_csv(path: Path) -> pl.DataFrame:
    """Well-formed rows of a zipped stock, read with the csv module (independent of our reader)."""
    with zipfile.ZipFile(path) as zf:
        (name,) = zf.namelist()
        rows = list(csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8", newline="")))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    return pl.DataFrame(body, schema=dict.fromkeys(header, pl.String), orient="row")


def test_demo_prints_figures_and_where_results_are(demo):
    data, out = demo
    assert "établissements actifs de l'ESS" in out
    assert "SYNTHÉTIQUES" in out
    live = publish.current(data / "publication")
    assert live is not None
    assert str(live) in out
    assert (live / "csv" / "etablissements_actifs.csv").exists()
    docs = data / "quality" / "data_docs" / "index.html"
    assert str(docs.resolve()) in out
    # built once at the end of the refresh, from every suite's stored result
    index = docs.read_text(encoding="utf-8")
    for suite in quality.SUITES:
        assert suite in index, suite
    assert (
        (live / "csv_excel" / "etablissements_actifs.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    )


def test_published_total_matches_the_source_file(demo):
    """Active establishments of the EPT = active rows of the file in its communes - quarantine."""
    data, _ = demo
    folder = data / "sirene" / DEMO_MOIS
    etab = _read_zip_csv(folder / "StockEtablissement_utf8.zip")
    communes = pl.read_csv(
        ROOT / "data" / "reference" / "ept_t12_grand_orly_seine_bievre_communes.csv",
        infer_schema=False,
    )["code_commune"]
    in_file = etab.filter(
        pl.col("codeCommuneEtablissement").is_in(communes.implode())
        & (pl.col("etatAdministratifEtablissement") == "A")
    )
    import duckdb

    con = duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"), read_only=True)
    quarantined_active = con.execute(
        "select count(*) from clean.sirene_etablissements_rejets r where exists ("
        "select 1 from raw.sirene_etablissements e where e.identifiant = r.identifiant "
        "and e.mois = r.mois and e.etat_administratif = 'A' "
        "and e.code_commune in (select code_commune from ref.territoire_communes))"
    ).fetchone()[0]
    con.close()
    published = pl.read_csv(
        publish.current(data / "publication") / "csv" / "etablissements_actifs.csv",
        infer_schema=False,
    ).filter(
        (pl.col("niveau") == "ept")
        & (pl.col("perimetre") == "ensemble")
        & (pl.col("famille") == "ensemble")
        & (pl.col("section_naf") == "ensemble")
        & (pl.col("tranche_effectifs") == "ensemble")
    )
    assert published.height == 1
    assert int(published["nb_etablissements"][0]) == in_file.height - quarantined_active
    # the commune rows add up to the EPT
    communes_rows = pl.read_csv(
        publish.current(data / "publication") / "csv" / "etablissements_actifs.csv",
        infer_schema=False,
    ).filter(
        (pl.col("niveau") == "commune")
        & (pl.col("perimetre") == "ensemble")
        & (pl.col("famille") == "ensemble")
        & (pl.col("section_naf") == "ensemble")
        & (pl.col("tranche_effectifs") == "ensemble")
    )
    assert communes_rows["nb_etablissements"].cast(pl.Int64).sum() == int(
        published["nb_etablissements"][0]
    )


def test_no_partially_diffusible_unit_in_any_published_file(demo):
    data, _ = demo
    folder = data / "sirene" / DEMO_MOIS
    etab = _read_zip_csv(folder / "StockEtablissement_utf8.zip")
    hidden = etab.filter(pl.col("statutDiffusionEtablissement") == "P")
    assert hidden.height > 0, "the demo data must contain partially diffusible units"
    hidden_sirets = set(hidden["siret"].to_list())
    live = publish.current(data / "publication")
    for path in list(live.rglob("*.csv")):
        frame = pl.read_csv(
            path, infer_schema=False, separator=";" if "excel" in str(path) else ","
        )
        if "siret" in frame.columns:
            assert not hidden_sirets & set(frame["siret"].to_list()), path


def test_export_command_writes_a_partner_bundle(demo, tmp_path):
    data, _ = demo
    env = {**os.environ, "OBSERVATOIRE_DATA_DIR": str(data)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "observatoire.cli",
            "export",
            "--territoire",
            "ept:T12",
            "--sortie",
            str(tmp_path),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "observatoire-ess_ept-T12_2026-11.zip"
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        readme = zf.read("LISEZMOI.md").decode("utf-8")
    assert {"LISEZMOI.md", "manifest.json", "datapackage.json"} <= names
    assert "csv_excel/etablissements_actifs.csv" in names
    assert "DONNÉES SYNTHÉTIQUES" in readme
