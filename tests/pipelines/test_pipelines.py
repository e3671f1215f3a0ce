"""Dagster wiring: definitions load, and the whole graph materialises a month on small files.

The month is materialised with a questionnaire wave and a network list in the inbox, so that
the source assets (raw, clean, linkage), their GX checks and the needs and network indicators
run in the same job as SIRENE and end up in the published snapshot.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT
from dagster import AssetKey, DagsterInstance, Definitions
from sirene_builder import etab_row, new_siren, siret_for, ul_row, write_stock

from observatoire.core import catalogue
from observatoire.publication import publish

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

MOIS = "2026-11"
SOURCE_ASSETS = {
    "raw/questionnaire_cellules",
    "raw/reseaux_cellules",
    "clean/questionnaire_reponses",
    "clean/reseaux_membres",
    "clean/rapprochements",
}
SOURCE_INDICATORS = {
    "taux_reponse",
    "besoins_cites",
    "reseaux_couverture",
    "ess_hors_reseau",
    "ressourceries",
}
SIRENE_CHECKED = {
    "raw/sirene_etablissements",
    "raw/sirene_unites_legales",
    "clean/sirene_etablissements",
    "clean/sirene_unites_legales",
    "clean/etablissements_perimetre",
}

# ---------------------------------------------------------------- small sources for the inbox

WAVE_MAPPING = """\
[vague]
titre = "Mieux vous connaître pour mieux répondre à vos besoins"
date_debut = "2026-03-01"
date_fin = "2026-05-31"
outil = "limesurvey"

[identification]
horodatage = "Date de soumission"
siret = "Numéro SIRET"
nom = "Nom de votre structure"
code_postal = "Code postal"
commune = "Commune"
donnees_personnelles = ["Courriel"]

[[questions]]
code = "besoin_locaux"
colonne = "Avez-vous un besoin de locaux ?"
type = "choix_unique"
besoin = "locaux"
cite_si = ["Oui"]

[[questions]]
code = "besoins_prioritaires"
colonne = "Quels sont vos besoins prioritaires ?"
type = "choix_multiple"
separateur = ";"
options = { "Trouver des locaux" = "locaux", "Recruter" = "recrutement", \
"Financer un projet" = "financement", "Se former" = "formation" }
"""
WAVE_HEADER = [
    "Date de soumission",
    "Numéro SIRET",
    "Nom de votre structure",
    "Code postal",
    "Commune",
    "Courriel",
    "Avez-vous un besoin de locaux ?",
    "Quels sont vos besoins prioritaires ?",
]

NETWORK_DECLARATION = """\
nom = "{nom}"
type = "{type}"
fichier = "{reseau}.csv"

[colonnes]
siret = "SIRET"
nom = "Nom"
adresse = "Adresse"
code_postal = "CP"
commune = "Ville"
"""
NETWORK_HEADER = ["SIRET", "Nom", "Adresse", "CP", "Ville", "Courriel"]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    return buffer.getvalue()


def write_wave(inbox: Path, vague: str, rows: list[list[str]]) -> Path:
    folder = inbox / "questionnaires" / vague
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "correspondance.toml").write_text(WAVE_MAPPING, encoding="utf-8")
    export = folder / "export.csv"
    export.write_text(csv_text(WAVE_HEADER, rows), encoding="utf-8", newline="")
    return export


def write_network(
    inbox: Path, reseau: str, rows: list[list[str]], *, type_: str = "ressourcerie"
) -> Path:
    folder = inbox / "reseaux"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{reseau}.toml").write_text(
        NETWORK_DECLARATION.format(nom=f"Réseau {reseau}", type=type_, reseau=reseau),
        encoding="utf-8",
    )
    listing = folder / f"{reseau}.csv"
    listing.write_text(csv_text(NETWORK_HEADER, rows), encoding="utf-8", newline="")
    return listing


class Territory:
    """Three active ESS establishments of EPT T12, with distinct names and addresses.

    A  association, Vitry (94081), employer 3-5: answers the wave twice, member by SIRET
    B  cooperative, Ivry (94041), non-employer: answers the wave once
    C  association, Ivry (94041), non-employer: network member named without a SIRET
    """

    def __init__(self) -> None:
        self.a, self.b, self.c = new_siren(), new_siren(), new_siren()
        self.siret_a, self.siret_b, self.siret_c = (siret_for(s) for s in (self.a, self.b, self.c))

    def write_sirene(self, data_dir: Path, mois: str = MOIS) -> None:
        ivry = {
            "codePostalEtablissement": "94200",
            "libelleCommuneEtablissement": "IVRY-SUR-SEINE",
            "codeCommuneEtablissement": "94041",
        }
        write_stock(
            data_dir / "sirene" / mois,
            [
                ul_row(self.a, denominationUniteLegale="LES AMIS DU QUARTIER"),
                ul_row(
                    self.b,
                    categorieJuridiqueUniteLegale="5458",
                    denominationUniteLegale="COOPERATIVE DES VOISINS",
                ),
                ul_row(self.c, denominationUniteLegale="RESSOURCERIE LA BOUCLE VERTE"),
            ],
            [
                etab_row(
                    self.a, caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="02"
                ),
                etab_row(
                    self.b,
                    numeroVoieEtablissement="3",
                    typeVoieEtablissement="AV",
                    libelleVoieEtablissement="DE VERDUN",
                    **ivry,
                ),
                etab_row(
                    self.c,
                    numeroVoieEtablissement="45",
                    typeVoieEtablissement="RUE",
                    libelleVoieEtablissement="MARAT",
                    **ivry,
                ),
            ],
            zipped=True,
        )

    def write_wave(self, inbox: Path) -> Path:
        vitry = ["94400", "Vitry-sur-Seine"]
        return write_wave(
            inbox,
            "printemps-2026",
            [
                # line 2: A's latest answer, the one retained
                ["2026-03-14 10:00:00", self.siret_a, "Les Amis du quartier", *vitry,
                 "a@example.org", "Oui", "Recruter"],
                ["2026-03-15 09:30:00", self.siret_b, "Coopérative des voisins", "94200",
                 "Ivry-sur-Seine", "b@example.org", "Non", "Financer un projet"],
                # line 4: A's earlier answer, not retained: its need (formation) is not counted
                ["2026-03-02 08:00:00", self.siret_a, "Les Amis du quartier", *vitry,
                 "a@example.org", "Non", "Se former"],
                # line 5: no SIRET and a name SIRENE does not know
                ["2026-03-20 17:45:00", "", "Collectif introuvable", *vitry,
                 "x@example.org", "Oui", ""],
            ],
        )  # fmt: skip

    def write_ressourceries(self, inbox: Path) -> Path:
        return write_network(
            inbox,
            "ressourceries",
            [
                [self.siret_a, "Les Amis du quartier", "12 rue de la République", "94400",
                 "Vitry-sur-Seine", "contact@amis.example"],
                # no SIRET: linked on its exact name in its commune
                ["", "Ressourcerie La Boucle Verte", "45 rue Marat", "94200", "Ivry-sur-Seine",
                 "boucle@example.org"],
            ],
        )  # fmt: skip


def links(warehouse_path: Path, mois: str = MOIS) -> dict[str, tuple]:
    """enregistrement_id -> (siret, methode, statut, retenu) of the month's links."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select enregistrement_id, siret, methode, statut, retenu "
            "from clean.rapprochements where mois = $mois",
            {"mois": mois},
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def published_rows(snapshot: Path, name: str, **where: str) -> list[dict[str, str]]:
    """Rows of a published CSV; a secret row gets its computed values back, for checking.

    These fixtures hold a handful of establishments, so their cells are secret: the file must
    then show empty measures, and the values are read from the warehouse's unmasked table
    (the computation is what these tests check; `statut_secret` stays in the row).
    """
    with (snapshot / "csv" / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[k] == v for k, v in where.items())]
    indicator = catalogue.indicators()[name]
    warehouse_path = snapshot.parent.parent / "warehouse" / "observatoire.duckdb"
    out = []
    for r in rows:
        if r.get("statut_secret", "publie") != "publie":
            # the secret figures are empty (public ones of the row may stay)
            assert any(r[c] == "" for c in indicator.mesures), r
            keys = [c for c in indicator.dimensions if r[c] != ""]
            with duckdb.connect(str(warehouse_path), read_only=True) as con:
                (computed,) = con.execute(
                    f"select {', '.join(indicator.mesures)} from indicators.{name} where "
                    + " and ".join(f"cast({k} as varchar) = ?" for k in keys),
                    [r[k] for k in keys],
                ).fetchall()
            r = {
                **r,
                **{
                    c: "" if v is None else str(v)
                    for c, v in zip(indicator.mesures, computed, strict=True)
                },
            }
        out.append(r)
    return out


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def defs():
    from pipelines.definitions import defs

    return defs


def test_definitions_load_with_the_full_graph(defs):
    # what `dagster dev` does on start: every job, op and asset name must be unique
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert SOURCE_INDICATORS.issubset(catalogue.indicators())
    expected = {
        "ref/communes",
        "ref/territoire_niveaux",
        *SIRENE_CHECKED,
        *SOURCE_ASSETS,
        "publication/observatoire",
        *(f"indicators/{n}" for n in catalogue.indicators()),
    }
    assert expected <= keys
    schedule = defs.resolve_schedule_def("sirene_mensuel_schedule")
    assert schedule.cron_schedule == "0 6 3 * *"
    assert schedule.execution_timezone == "Europe/Paris"
    # the sources job re-links the published month and re-publishes: the inbox's steps, the
    # indicators (one step), the mask, the publication; never SIRENE nor the reference
    sources_job = defs.resolve_job_def("sources_externes")
    selected = {k.to_user_string() for k in sources_job.asset_layer.selected_asset_keys}
    assert selected == {
        *SOURCE_ASSETS,
        "ref/decisions_rapprochement",
        *(f"indicators/{n}" for n in catalogue.indicators()),
        "secret/masques",
        "publication/observatoire",
    }
    assert defs.resolve_sensor_def("depot_inbox").job_name == "sources_externes"


def test_materialise_a_month_in_process(defs, tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_REFERENCE_DIR", str(ROOT / "data" / "reference"))
    t = Territory()
    t.write_sirene(tmp_path)
    t.write_wave(tmp_path / "inbox")
    t.write_ressourceries(tmp_path / "inbox")
    with DagsterInstance.ephemeral() as instance:
        assert (
            defs.resolve_job_def("chargement_referentiels")
            .execute_in_process(instance=instance)
            .success
        )
        result = defs.resolve_job_def("sirene_mensuel").execute_in_process(
            partition_key=f"{MOIS}-01", instance=instance
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {"great_expectations"}
        gx_checked = {c.asset_key.to_user_string() for c in checks}
        assert gx_checked == SIRENE_CHECKED | SOURCE_ASSETS
        assert len(checks) == 10
        assert all(c.passed for c in checks), [c.metadata["resume"].value for c in checks]
        assert (tmp_path / "quality" / "data_docs" / "index.html").exists()
        # the steps' progress is in the run's log (the UI's), under the step that made it
        said = [
            (e.step_key, e.user_message)
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is None and e.user_message.startswith("Calcul des indicateurs")
        ]
        n = len(catalogue.indicators())
        assert said and said[-1][0] == "indicateurs", said
        assert said[-1][1].startswith(f"Calcul des indicateurs : {n} indicateurs en "), said
        mats = {
            e.event_specific_data.materialization.asset_key: (
                e.event_specific_data.materialization.metadata
            )
            for e in result.get_asset_materialization_events()
        }
    assert mats[AssetKey(["raw", "sirene_etablissements"])]["lignes"].value == 3
    assert mats[AssetKey(["clean", "sirene_etablissements"])]["rejets"].value == 0
    assert mats[AssetKey(["raw", "questionnaire_cellules"])]["vagues"].value == 1
    assert mats[AssetKey(["raw", "reseaux_cellules"])]["reseaux"].value == 1
    assert mats[AssetKey(["clean", "questionnaire_reponses"])]["reponses"].value == {
        "printemps-2026": 4
    }
    assert mats[AssetKey(["clean", "reseaux_membres"])]["membres"].value == {"ressourceries": 2}
    assert links(tmp_path / "warehouse" / "observatoire.duckdb") == {
        "printemps-2026:2": (t.siret_a, "siret", "lie", True),
        "printemps-2026:3": (t.siret_b, "siret", "lie", True),
        "printemps-2026:4": (t.siret_a, "siret", "lie", False),
        "printemps-2026:5": (None, "aucune", "non_lie", True),
        "ressourceries:2": (t.siret_a, "siret", "lie", True),
        "ressourceries:3": (t.siret_c, "nom_commune", "lie", True),
    }
    # the unlinked answer waits for a reviewer in data/revue/
    queue = (tmp_path / "revue" / f"a_revoir_{MOIS}.csv").read_text(encoding="utf-8-sig")
    assert "printemps-2026:5" in queue and "Collectif introuvable" in queue
    # no personal data past raw, and no respondent's e-mail in the review queue
    assert "@example.org" not in queue

    live = publish.current(tmp_path / "publication")
    assert live is not None and (live / "csv" / "etablissements_actifs.csv").exists()
    manifest_rows = mats[AssetKey(["publication", "observatoire"])]["lignes"].value
    assert all(manifest_rows[n] > 0 for n in SOURCE_INDICATORS)
    assert all((live / "csv" / f"{n}.csv").exists() for n in SOURCE_INDICATORS)
    ept = {"niveau": "ept", "code_territoire": "T12"}
    (taux,) = published_rows(
        live, "taux_reponse", **ept, famille="ensemble", section_naf="ensemble",
        tranche_effectifs="ensemble",
    )  # fmt: skip
    assert taux["vague"] == "printemps-2026"
    assert taux["statut_secret"] == "secret"  # two respondents: never published
    assert (taux["nb_etablissements_ess"], taux["nb_repondants"]) == ("3", "2")
    assert float(taux["taux_reponse"]) == pytest.approx(0.6667)
    besoins = {
        r["besoin"]: (r["nb_repondants"], r["nb_citant"])
        for r in published_rows(
            live, "besoins_cites", **ept, famille="ensemble", section_naf="ensemble",
            tranche_effectifs="ensemble",
        )
    }  # fmt: skip
    # A cited locaux and recrutement, B financement; A's earlier answer (formation) is not
    # retained, and the unlinked answer cannot be placed
    cited = {
        "locaux": ("2", "1"),
        "recrutement": ("2", "1"),
        "financement": ("2", "1"),
        "formation": ("2", "0"),
    }
    assert {k: besoins[k] for k in cited} == cited
    # every need the wave's mapping can record has its row, cited or not
    assert all(v == ("2", "0") for k, v in besoins.items() if k not in cited)
    (couverture,) = published_rows(live, "reseaux_couverture", **ept)
    assert couverture["reseau"] == "ressourceries"
    assert (couverture["nb_membres"], couverture["nb_trouves_sirene"]) == ("2", "2")
    assert (couverture["nb_ess"], couverture["nb_non_trouves"]) == ("2", "0")
    (hors,) = published_rows(live, "ess_hors_reseau", **ept, famille="ensemble")
    assert (hors["nb_ess_actifs"], hors["nb_dans_un_reseau"], hors["nb_hors_reseau"]) == (
        "3",
        "2",
        "1",
    )
    (ressourceries,) = published_rows(live, "ressourceries", **ept)
    assert ressourceries["nb_ressourceries"] == "2"
    # A employs 3 to 5, C none
    assert (ressourceries["emplois_bas"], ressourceries["emplois_haut"]) == ("3", "5")


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
        assert (
            defs.resolve_job_def("chargement_referentiels")
            .execute_in_process(instance=instance)
            .success
        )
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
        # both files of the month are read, then checked together (the step `sirene_brut`):
        # both volumes collapsed, and the failure stops everything downstream
        by_asset = {c.asset_key.to_user_string(): c for c in failed}
        assert set(by_asset) == {"raw/sirene_etablissements", "raw/sirene_unites_legales"}
        resume = by_asset["raw/sirene_etablissements"].metadata["resume"].value
        assert "dernier mois validé (2026-10 : 10 lignes)" in resume
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
