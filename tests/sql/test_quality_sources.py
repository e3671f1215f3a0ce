"""Quality suites of questionnaire waves, network lists and links, on a real refreshed warehouse.

One good month is refreshed once for the module (SIRENE stock, one wave, one network list);
each test works on a copy of its DuckDB file, injects one targeted fault straight into the
warehouse and checks that the suite fails on the check made for that fault, and that the
failing sample names records by id and code only (never a SIRET nor a name).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sirene_builder import etab_row, new_siren, siret_for, ul_row, write_stock
from test_bad_input import write_good_inbox

from observatoire import quality, refresh
from observatoire.core import warehouse
from observatoire.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MOIS = "2026-10"
RATE = 0.25
SUITES = quality.SOURCE_SUITES
REPONSES, MEMBRES, LIENS = (
    "clean.questionnaire_reponses",
    "clean.reseaux_membres",
    "clean.rapprochements",
)

SIREN = new_siren()
SIRETS = [siret_for(SIREN, i) for i in (1, 2, 3)]
SIREN_P = new_siren()  # a unit that is not diffusible
SIRET_P = siret_for(SIREN_P)
NAMES = ["Café du coin", "Association sans numéro", "STRUCTURE"]
ABSENT = siret_for(new_siren())  # a SIRET of no establishment of the month
IDENTIFIERS = [*SIRETS, SIREN, SIRET_P, SIREN_P, ABSENT]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """The warehouse of one good month, refreshed through the real refresh."""
    tmp = tmp_path_factory.mktemp("qualite_sources")
    settings = Settings(
        data_dir=tmp,
        warehouse=tmp / "warehouse" / "obs.duckdb",
        reference_dir=ROOT / "data" / "reference",
        download_dir=tmp / "sources",
        publication_dir=tmp / "publication",
        inbox_dir=tmp / "inbox",
        review_dir=tmp / "revue",
        territoire="ept:T12",
        sirene_etablissements=str(tmp / "sirene" / "{mois}" / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(tmp / "sirene" / "{mois}" / "StockUniteLegale_utf8.csv"),
        max_reject_rate=RATE,
        count_band=(0.001, 1000.0),
        drift_share_max=1.0,  # a few hand-written rows: see conftest
        drift_jump_max=1.0,
        quality_docs_dir=None,
    )
    ets = [
        etab_row(SIREN, i, denominationUsuelleEtablissement=f"Café du coin {i - 1}")
        for i in (1, 2, 3)
    ]
    ets.append(etab_row(SIREN_P, 1, statutDiffusionEtablissement="P"))
    uls = [ul_row(SIREN), ul_row(SIREN_P, statutDiffusionUniteLegale="P")]
    write_stock(tmp / "sirene" / MOIS, uls, ets)
    write_good_inbox(settings.inbox_dir, SIRETS)
    report = refresh.refresh(settings, MOIS, run_id="qualite")
    assert report.publication is not None
    return settings.warehouse


@pytest.fixture
def con(good: Path, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private copy of the good warehouse, for a test to damage."""
    copy = tmp_path / "obs.duckdb"
    shutil.copy(good, copy)
    with warehouse.connect(copy) as c:
        yield c


def validate(con: duckdb.DuckDBPyConnection, suite: str) -> quality.SuiteResult:
    return quality.validate(con, suite, MOIS, max_reject_rate=RATE)


def assert_sample_is_anonymous(result: quality.SuiteResult) -> None:
    for outcome in result.failures():
        for row in outcome.sample:
            assert not {"siret", "siren", "nom", "siret_candidat", "nom_candidat"} & set(row), (
                outcome.name,
                row,
            )
            text = " ".join(str(v) for v in row.values())
            for secret in IDENTIFIERS + NAMES:
                assert secret.lower() not in text.lower(), (outcome.name, row)
            assert not re.search(r"\d{9}", text), (outcome.name, row)


def test_good_month_holds_every_kind_of_source_row(good: Path):
    with warehouse.connect(good, read_only=True) as con:
        counts = {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
            for t in ("raw.questionnaire_cellules", "raw.reseaux_cellules", REPONSES, MEMBRES)
        }
        linked = con.execute(
            f"select count(*) filter (statut = 'lie'), count(*) from {LIENS} where mois = ?",
            [MOIS],
        ).fetchone()
    # the fixture is what the faults below assume: every table holds rows
    assert all(counts.values()), counts
    assert linked == (6, 7)
    # the refresh validated each suite and recorded a passing verdict under the month
    with warehouse.connect(good, read_only=True) as con:
        assert quality.month_problems(con, MOIS) == []


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_passes_on_good_data(con, suite):
    result = validate(con, suite)
    assert result.success, result.summary_fr()
    assert not result.failures(), result.summary_fr()


FIRST_LIE = (
    f"(select enregistrement_id from {LIENS} where statut = 'lie' and source = 'questionnaire' "
    "order by enregistrement_id limit 1)"
)

# (case, suite, fault as SQL, check that must fail, key the sample must carry)
FAULTS: list[tuple[str, str, list[str], str, str | None]] = [
    (
        "courriel dans une valeur",
        REPONSES,
        [
            "update clean.questionnaire_valeurs set valeur = 'écrire à camille.durand@example.org'"
            " where reponse_id = 'v2026:3' and question = 'besoin_locaux'"
        ],
        "valeurs_sans_contact",
        "reponse_id",
    ),
    (
        "téléphone dans une valeur",
        REPONSES,
        [
            "update clean.questionnaire_valeurs set valeur = 'appelez le 06 12 34 56 78' "
            "where reponse_id = 'v2026:3' and question = 'besoin_locaux'"
        ],
        "valeurs_sans_contact",
        "reponse_id",
    ),
    (
        "courriel dans le nom d'une réponse",
        REPONSES,
        [
            "update clean.questionnaire_reponses set nom = 'contact@cafe.example' "
            "where reponse_id = 'v2026:2'"
        ],
        "reponses_sans_contact",
        "reponse_id",
    ),
    (
        "reponse_id en double",
        REPONSES,
        [
            "insert into clean.questionnaire_reponses select * from clean.questionnaire_reponses "
            "where reponse_id = 'v2026:2'"
        ],
        "reponse_id_unique",
        "reponse_id",
    ),
    (
        "besoin hors taxonomie",
        REPONSES,
        [
            "update clean.questionnaire_valeurs set besoin = 'logement' "
            "where reponse_id = 'v2026:2' and besoin = 'locaux'"
        ],
        "besoins_taxonomie",
        "besoin",
    ),
    (
        "type de réseau inconnu",
        MEMBRES,
        [
            "update clean.reseaux_membres set type_reseau = 'amap' "
            "where membre_id = 'ressourceries:2'"
        ],
        "type_reseau",
        "type_reseau",
    ),
    (
        "téléphone dans le nom d'un membre",
        MEMBRES,
        [
            "update clean.reseaux_membres set nom = 'Tél. 01 45 21 00 00' "
            "where membre_id = 'ressourceries:3'"
        ],
        "membres_sans_contact",
        "membre_id",
    ),
    (
        "enregistrement sans ligne de rapprochement",
        LIENS,
        [f"delete from {LIENS} where enregistrement_id = 'ressourceries:2'"],
        "aucun_enregistrement_perdu",
        "enregistrement_id",
    ),
    (
        "enregistrement avec deux lignes de rapprochement",
        LIENS,
        [f"insert into {LIENS} select * from {LIENS} where enregistrement_id = 'v2026:5'"],
        "aucun_enregistrement_perdu",
        "enregistrement_id",
    ),
    (
        "lien vers un siret absent du mois",
        LIENS,
        [
            f"update {LIENS} set siret = '{ABSENT}', siren = '{ABSENT[:9]}' "
            "where enregistrement_id = 'ressourceries:4'"
        ],
        "lien_vers_le_mois",
        "enregistrement_id",
    ),
    (
        "deux réponses retenues d'une structure dans une vague",
        LIENS,
        [
            f"update {LIENS} set siret = (select siret from {LIENS} "
            "where enregistrement_id = 'v2026:2') where enregistrement_id = 'v2026:3'"
        ],
        "une_reponse_retenue",
        "cle_source",
    ),
    (
        "file de revue nommant un établissement non diffusible",
        LIENS,
        [
            "insert into clean.rapprochements_a_revoir values ('2026-10', 'questionnaire', "
            f"'v2026', 'v2026:5', 'x', 'Association sans numéro', '94081', '{SIRET_P}', "
            "'STRUCTURE CACHEE', 0.7, 'score sous le seuil')"
        ],
        "file_de_revue_sans_nom_non_diffusible",
        "enregistrement_id",
    ),
    (
        "trop de lignes mal formées dans une vague",
        "raw.questionnaire_cellules",
        ["update raw.questionnaire_lectures set lignes_mal_formees = 2"],
        "taux_lignes_mal_formees",
        "vague",
    ),
    (
        "trop de lignes mal formées dans une liste",
        "raw.reseaux_cellules",
        ["update raw.reseaux_lectures set lignes_mal_formees = 2"],
        "taux_lignes_mal_formees",
        "reseau",
    ),
    (
        "rejet de lecture sans motif",
        "raw.questionnaire_cellules",
        ["insert into raw.questionnaire_rejets_lecture values ('v2026', 'export.csv', 9, null)"],
        "rejets_de_lecture_motives",
        "vague",
    ),
]


@pytest.mark.parametrize(
    ("case", "suite", "fault", "check", "key"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_targeted_fault_fails_the_right_check(con, case, suite, fault, check, key):
    for sql in fault:
        con.execute(sql)
    result = validate(con, suite)
    assert not result.success, (case, result.summary_fr())
    failed = {o.name: o for o in result.blocking_failures()}
    assert set(failed) == {check}, (case, sorted(failed))
    assert check in result.summary_fr() or failed[check].description in result.summary_fr()
    outcome = failed[check]
    assert outcome.sample, (case, outcome)
    assert all(key in row for row in outcome.sample), outcome.sample
    assert_sample_is_anonymous(result)
    # the verdict is recorded under the month: the publication gate will refuse it
    assert f"{suite} : refusé" in quality.month_problems(con, MOIS)


def test_the_other_suites_still_pass_on_a_fault_of_one_table(con):
    """A fault is reported by the suite of its table, not smeared over the others."""
    con.execute(f"delete from {LIENS} where enregistrement_id = 'ressourceries:2'")
    verdicts = {s: validate(con, s).success for s in SUITES}
    assert verdicts == {s: s != LIENS for s in SUITES}


def test_an_empty_inbox_passes_every_source_suite(con):
    """No wave, no list yet: the tables exist and are empty, and nothing is wrong with that."""
    tables = [
        "raw.questionnaire_cellules",
        "raw.questionnaire_lectures",
        "raw.questionnaire_rejets_lecture",
        "raw.reseaux_cellules",
        "raw.reseaux_lectures",
        "raw.reseaux_rejets_lecture",
        "clean.questionnaire_reponses",
        "clean.questionnaire_valeurs",
        "clean.questionnaire_questions",
        "clean.questionnaire_vagues",
        "clean.questionnaire_rejets",
        "clean.reseaux",
        "clean.reseaux_membres",
        "clean.reseaux_rejets",
        "clean.rapprochements",
        "clean.rapprochements_a_revoir",
    ]
    for table in tables:
        con.execute(f"delete from {table}")
    for suite in SUITES:
        result = validate(con, suite)
        assert result.success, result.summary_fr()
        assert result.rows == 0, suite
