"""Indicators built on the questionnaire waves and the network lists, on a real DuckDB file.

The clean tables of answers, members and linkage are written by hand here (their producers are
separate modules, see docs/sources_externes.md), so that every expected figure below can be
recomputed on paper from the few rows of this file.

Territory: EPT T12 (Grand-Orly Seine Bièvre), levels commune and ept. Establishments:

    E1 94081 Vitry  active ESS association  Q 01 (1-2)  employer  diffusible
    E2 94081 Vitry  active ESS association  Q 01 (1-2)  employer  partially diffusible (P)
    E3 94081 Vitry  active ESS cooperative  G 11 (10-19) employer
    E4 94041 Ivry   active ESS association  S NN         non-employer
    E5 94041 Ivry   active, not ESS         G 02 (3-5)   employer
    E6 94041 Ivry   CLOSED ESS association  Q 01
    E7 93066 Saint-Denis (outside T12) active ESS association Q 01
    E8 94041 Ivry   active ESS association  G NN         non-employer
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from observatoire import indicators
from observatoire.core import catalogue, territory, warehouse
from observatoire.sources import reference

ROOT = Path(__file__).resolve().parents[2]
MOIS = "2026-11"
AVANT = "2026-10"
NAMES = ("taux_reponse", "besoins_cites", "reseaux_couverture", "ess_hors_reseau", "ressourceries")

E1, E2, E3, E4, E5, E6, E7, E8 = (f"1000000{i}000012" for i in range(1, 9))

# siret, code_commune, actif, employeur, ess, famille_ess, naf_section, tranche, min, max,
# diffusible
ETABLISSEMENTS = [
    (E1, "94081", True, True, True, "association", "Q", "01", 1, 2, True),
    (E2, "94081", True, True, True, "association", "Q", "01", 1, 2, False),
    (E3, "94081", True, True, True, "cooperative", "G", "11", 10, 19, True),
    (E4, "94041", True, False, True, "association", "S", "NN", None, None, True),
    (E5, "94041", True, True, False, None, "G", "02", 3, 5, True),
    (E6, "94041", False, True, True, "association", "Q", "01", 1, 2, True),
    (E7, "93066", True, True, True, "association", "Q", "01", 1, 2, True),
    (E8, "94041", True, False, True, "association", "G", "NN", None, None, True),
]

# mois, source, cle_source, enregistrement_id, siret, statut, ferme, retenu
RAPPROCHEMENTS = [
    # wave v2026: E1 answered twice (the earlier answer, ligne 5, is not retained)
    (MOIS, "questionnaire", "v2026", "v2026:2", E1, "lie", False, True),
    (MOIS, "questionnaire", "v2026", "v2026:5", E1, "lie", False, False),
    (MOIS, "questionnaire", "v2026", "v2026:3", E2, "lie", False, True),  # P unit
    (MOIS, "questionnaire", "v2026", "v2026:4", E5, "lie", False, True),  # not ESS
    (MOIS, "questionnaire", "v2026", "v2026:6", E6, "lie", True, True),  # closed
    (MOIS, "questionnaire", "v2026", "v2026:7", None, "non_lie", False, True),
    (MOIS, "questionnaire", "v2026", "v2026:8", E3, "a_revoir", False, True),
    # another month, another wave: ignored
    (AVANT, "questionnaire", "v2025", "v2025:2", E4, "lie", False, True),
    (AVANT, "reseau", "ressourceries_idf", "ressourceries_idf:4", E4, "lie", False, True),
    # networks
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:2", E3, "lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:3", E3, "lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:4", E6, "lie", True, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:5", None, "non_lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:6", None, "non_lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:7", E1, "a_revoir", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:8", E7, "lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:9", None, "non_lie", False, True),
    (MOIS, "reseau", "ressourceries_idf", "ressourceries_idf:10", E8, "lie", False, True),
    (MOIS, "reseau", "siae_asp", "siae_asp:2", E5, "lie", False, True),
    (MOIS, "reseau", "siae_asp", "siae_asp:3", E2, "lie", False, True),
    (MOIS, "reseau", "siae_asp", "siae_asp:4", E3, "lie", False, True),
    # a link to a list that is no longer declared: ignored
    (MOIS, "reseau", "ancien", "ancien:2", E1, "lie", False, True),
]

# vague, reponse_id, question, type, besoin, valeur
VALEURS = [
    ("v2026", "v2026:2", "besoin_locaux", "choix_unique", "locaux", "Oui"),
    ("v2026", "v2026:2", "besoins_prioritaires", "choix_multiple", "recrutement", "Recruter"),
    ("v2026", "v2026:2", "besoins_prioritaires", "choix_multiple", "locaux", "Trouver des locaux"),
    ("v2026", "v2026:5", "besoins_prioritaires", "choix_multiple", "financement", "Financer"),
    ("v2026", "v2026:3", "besoin_locaux", "choix_unique", None, "Non"),
    ("v2026", "v2026:3", "commentaire", "texte", None, "Merci"),
    ("v2026", "v2026:4", "besoins_prioritaires", "choix_multiple", "formation", "Se former"),
    ("v2026", "v2026:7", "besoins_prioritaires", "choix_multiple", "commande_publique", "Marchés"),
]

# reseau, type_reseau, membre_id, declared code_commune
MEMBRES = [
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:2", "94081"),
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:3", "94081"),  # same SIRET as :2
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:4", "94041"),  # closed
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:5", "94041"),  # not found
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:6", None),  # not found, no place
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:7", "94081"),  # to review
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:8", "94081"),  # found outside T12
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:9", "93066"),  # declared outside
    ("ressourceries_idf", "ressourcerie", "ressourceries_idf:10", "94041"),
    ("siae_asp", "siae", "siae_asp:2", "94041"),
    ("siae_asp", "siae", "siae_asp:3", "94081"),
    ("siae_asp", "siae", "siae_asp:4", "94081"),
]


def _create_sources(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create table clean.etablissements_perimetre (
            mois varchar, siret varchar, code_commune varchar, actif boolean, employeur boolean,
            ess boolean, famille_ess varchar, naf_section varchar, tranche_effectifs varchar,
            effectif_min integer, effectif_max integer, diffusible boolean)
        """
    )
    for mois in (AVANT, MOIS):
        con.executemany(
            "insert into clean.etablissements_perimetre values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(mois, *row) for row in ETABLISSEMENTS],
        )
    con.execute(
        """
        create table clean.rapprochements (
            mois varchar, source varchar, cle_source varchar, enregistrement_id varchar,
            empreinte varchar, siret varchar, siren varchar, methode varchar, score double,
            statut varchar, ferme boolean, retenu boolean)
        """
    )
    con.executemany(
        "insert into clean.rapprochements values "
        "(?, ?, ?, ?, 'x' || ?, ?, left(?, 9), 'siret', 1.0, ?, ?, ?)",
        [(m, s, c, e, e, siret, siret, st, f, r) for m, s, c, e, siret, st, f, r in RAPPROCHEMENTS],
    )
    con.execute(
        """
        create table clean.questionnaire_reponses (
            vague varchar, reponse_id varchar, ligne bigint, horodatage timestamp,
            siret_declare varchar, siren_declare varchar, nom varchar, adresse varchar,
            code_postal varchar, code_commune varchar, libelle_commune varchar)
        """
    )
    con.executemany(
        "insert into clean.questionnaire_reponses (vague, reponse_id, ligne, nom) "
        "values (?, ?, ?, 'Structure ' || ?)",
        sorted(
            {
                (v, r, int(r.split(":")[1]), r)
                for v, r, *_ in VALEURS + [("v2026", "v2026:6"), ("v2026", "v2026:8")]
            }
        ),
    )
    con.execute(
        """
        create table clean.questionnaire_valeurs (
            vague varchar, reponse_id varchar, question varchar, type varchar, besoin varchar,
            valeur varchar, valeur_nombre double)
        """
    )
    con.executemany(
        "insert into clean.questionnaire_valeurs values (?, ?, ?, ?, ?, ?, null)", VALEURS
    )
    # every need the wave's mapping can record, cited or not ('mutualisation' is never cited)
    con.execute("create table clean.questionnaire_besoins (vague varchar, besoin varchar)")
    con.executemany(
        "insert into clean.questionnaire_besoins values ('v2026', ?)",
        [(b,) for b in sorted({v[4] for v in VALEURS if v[4]} | {"mutualisation"})],
    )
    con.execute(
        """
        create table clean.reseaux (
            reseau varchar, nom varchar, type varchar, source varchar, fichier_source varchar,
            nb_membres bigint, confidentiel boolean)
        """
    )
    con.execute(
        "insert into clean.reseaux values "
        "('ressourceries_idf', 'Ressourceries', 'ressourcerie', 'local', 'r.csv', 9, false), "
        "('siae_asp', 'SIAE', 'siae', 'local', 'siae.csv', 3, null)"
    )
    con.execute(
        """
        create table clean.reseaux_membres (
            reseau varchar, type_reseau varchar, membre_id varchar, ligne bigint,
            siret_declare varchar, siren_declare varchar, nom varchar, adresse varchar,
            code_postal varchar, code_commune varchar, libelle_commune varchar,
            categorie varchar)
        """
    )
    con.executemany(
        "insert into clean.reseaux_membres (reseau, type_reseau, membre_id, ligne, nom, "
        "code_commune) values (?, ?, ?, ?, 'Membre ' || ?, ?)",
        [(r, t, m, int(m.split(":")[1]), m, c) for r, t, m, c in MEMBRES],
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "obs.duckdb"
    with warehouse.connect(path) as con:
        reference.load_reference(con, ROOT / "data" / "reference")
        territory.materialise(con, territory.resolve(con, "ept:T12"))
        _create_sources(con)
        # the month's levels, as the step `perimetre` writes them from the cleaned stock
        con.execute(
            "create table clean.sirene_etablissements as "
            "select mois, siret, code_commune from clean.etablissements_perimetre"
        )
        indicators.compute_levels(con, MOIS)
        for name in NAMES:
            indicators.compute_indicator(con, name, MOIS)
    return path


def rows(db: Path, name: str, keys: list[str], values: list[str], where: str = "true") -> dict:
    """{key tuple: value tuple} of one indicator for the month."""
    with warehouse.connect(db, read_only=True) as con:
        data = con.execute(
            f"select {', '.join(keys + values)} from indicators.{name} "
            f"where mois = $mois and {where}",
            {"mois": MOIS},
        ).fetchall()
    out = {r[: len(keys)]: r[len(keys) :] for r in data}
    assert len(out) == len(data), f"{name}: duplicate keys"
    return out


CUBE = ["vague", "niveau", "code_territoire", "famille", "section_naf", "tranche_effectifs"]


def test_columns_are_the_catalogue_columns_and_hold_no_identifier(db):
    sirets = {s for s, *_ in ETABLISSEMENTS}
    with warehouse.connect(db, read_only=True) as con:
        for name in NAMES:
            cols = [r[0] for r in con.execute(f"describe indicators.{name}").fetchall()]
            # the secret status is added on the way to publication (observatoire/secret_tables)
            published = [
                c
                for c in catalogue.indicators()[name].colonnes
                if c not in catalogue.SECRET_COLUMNS
            ]
            assert cols == published, name
            assert not {"siret", "siren", "nom", "adresse"} & set(cols), name
            for row in con.execute(f"select * from indicators.{name}").fetchall():
                assert not sirets & {str(v) for v in row}, (name, row)
            types = dict(
                con.execute(
                    f"select column_name, column_type from (describe indicators.{name})"
                ).fetchall()
            )
            for col, typ in types.items():
                if col.startswith("nb_"):
                    assert typ == "BIGINT", (name, col, typ)


def test_taux_reponse(db):
    got = rows(
        db,
        "taux_reponse",
        CUBE,
        ["nb_etablissements_ess", "nb_repondants", "taux_reponse", "nb_repondants_hors_ess"],
    )
    e = "ensemble"
    # E1 (duplicate answer counted once) and E2 (a P unit) answered: the whole cell did;
    # respondents outside the ESS are given on territory totals only (None elsewhere)
    assert got[("v2026", "commune", "94081", "association", "Q", "01")] == (2, 2, 1.0, None)
    # E3's answer is still to review: not counted
    assert got[("v2026", "commune", "94081", "cooperative", "G", "11")] == (1, 0, 0.0, None)
    assert got[("v2026", "commune", "94081", e, e, e)] == (3, 2, 0.6667, 0)
    # Ivry: E4, E8 did not answer; E5 (not ESS) did; E6 is closed: nowhere
    assert got[("v2026", "commune", "94041", e, e, e)] == (2, 0, 0.0, 1)
    assert got[("v2026", "commune", "94041", e, "G", e)] == (1, 0, 0.0, None)
    # rows are the cells of the ESS population: E5's own cell (G, 02) has no ESS unit, no row
    assert ("v2026", "commune", "94041", e, "G", "02") not in got
    assert got[("v2026", "ept", "T12", e, e, e)] == (5, 2, 0.4, 1)
    assert got[("v2026", "ept", "T12", "association", e, e)] == (4, 2, 0.5, None)
    assert got[("v2026", "ept", "T12", "association", "Q", e)] == (2, 2, 1.0, None)
    assert {v[3] for k, v in got.items() if k[3:] != (e, e, e)} == {None}
    # hors-ESS respondents have no family row; nothing outside T12, no other wave or month
    assert {k[3] for k in got} == {"association", "cooperative", e}
    assert {k[2] for k in got} == {"94081", "94041", "T12"}
    assert {k[0] for k in got} == {"v2026"}
    assert sum(v[1] for k, v in got.items() if k[1] == "commune" and k[3:] == (e, e, e)) == 2


def test_besoins_cites(db):
    got = rows(
        db,
        "besoins_cites",
        ["besoin", *CUBE],
        ["nb_repondants", "nb_citant", "part_citant"],
    )
    e = "ensemble"
    total = {k[0]: v for k, v in got.items() if k[1:] == ("v2026", "ept", "T12", e, e, e)}
    assert total == {
        "locaux": (2, 1, 0.5),  # E1 cites it twice: once
        "recrutement": (2, 1, 0.5),
        "financement": (2, 0, 0.0),  # only in E1's answer that is not retained
        "formation": (2, 0, 0.0),  # only cited by a respondent outside the ESS
        "commande_publique": (2, 0, 0.0),  # only cited by an unlinked answer
        "mutualisation": (2, 0, 0.0),  # in the mapping, cited by nobody: a row all the same
    }
    assert got[("locaux", "v2026", "commune", "94081", "association", "Q", "01")] == (2, 1, 0.5)
    assert got[("locaux", "v2026", "commune", "94081", e, e, e)] == (2, 1, 0.5)
    # no ESS respondent in Ivry: rows all the same (a row's presence tells nothing), with no
    # share; no 'ensemble' need; every need has the same rows
    assert got[("locaux", "v2026", "commune", "94041", e, e, e)] == (0, 0, None)
    assert {k[3] for k in got} == {"94081", "94041", "T12"}
    assert e not in {k[0] for k in got}
    cells = {b: {k[1:] for k in got if k[0] == b} for b in total}
    assert all(c == cells["locaux"] for c in cells.values())


def test_reseaux_couverture(db):
    got = rows(
        db,
        "reseaux_couverture",
        ["reseau", "type_reseau", "niveau", "code_territoire"],
        [
            "nb_membres",
            "nb_trouves_sirene",
            "nb_actifs",
            "nb_fermes",
            "nb_ess",
            "nb_hors_ess",
            "nb_non_trouves",
            "emplois_bas",
            "emplois_central",
            "emplois_haut",
            "nb_etablissements_emplois",
            "emplois_max_unite",
        ],
    )
    r = ("ressourceries_idf", "ressourcerie")
    s = ("siae_asp", "siae")
    assert got == {
        # E3 listed twice counts once; the row to review is placed at its declared commune
        (*r, "commune", "94081"): (2, 1, 1, 0, 1, 0, 1, 10, 14.5, 19, 1, 14.5),
        # E6 closed, E8 active non-employer, one unlinked row declared in Ivry
        (*r, "commune", "94041"): (3, 2, 1, 1, 1, 0, 1, 0, 0.0, 0, 0, None),
        # E7 (outside), the row declared outside and the row with no commune: nowhere
        (*r, "ept", "T12"): (5, 3, 2, 1, 2, 0, 2, 10, 14.5, 19, 1, 14.5),
        # E2 (a P unit) counted like the others
        (*s, "commune", "94081"): (2, 2, 2, 0, 2, 0, 0, 11, 16.0, 21, 2, 14.5),
        (*s, "commune", "94041"): (1, 1, 1, 0, 0, 1, 0, 3, 4.0, 5, 1, 4.0),
        (*s, "ept", "T12"): (3, 3, 3, 0, 2, 1, 0, 14, 20.0, 26, 3, 14.5),
    }


def test_ess_hors_reseau(db):
    got = rows(
        db,
        "ess_hors_reseau",
        ["niveau", "code_territoire", "famille"],
        ["nb_ess_actifs", "nb_dans_un_reseau", "nb_hors_reseau", "part_hors_reseau"],
    )
    assert got == {
        # E1 is only linked from a list no longer declared, E2 from siae_asp, E3 from both
        ("commune", "94081", "association"): (2, 1, 1, 0.5),
        ("commune", "94081", "cooperative"): (1, 1, 0, 0.0),
        ("commune", "94081", "ensemble"): (3, 2, 1, 0.3333),
        # E4 was linked the month before only; E8 is a ressourcerie
        ("commune", "94041", "association"): (2, 1, 1, 0.5),
        ("commune", "94041", "ensemble"): (2, 1, 1, 0.5),
        ("ept", "T12", "association"): (4, 2, 2, 0.5),
        ("ept", "T12", "cooperative"): (1, 1, 0, 0.0),
        ("ept", "T12", "ensemble"): (5, 3, 2, 0.4),
    }


def test_ressourceries(db):
    got = rows(
        db,
        "ressourceries",
        ["niveau", "code_territoire"],
        [
            "nb_ressourceries",
            "emplois_bas",
            "emplois_central",
            "emplois_haut",
            "nb_etablissements_emplois",
            "emplois_max_unite",
        ],
    )
    assert got == {
        # E3 (listed twice); E1 is only a candidate to review; E6 closed; E7 outside T12
        ("commune", "94081"): (1, 10, 14.5, 19, 1, 14.5),
        ("commune", "94041"): (1, 0, 0.0, 0, 0, None),
        ("ept", "T12"): (2, 10, 14.5, 19, 1, 14.5),
    }


def test_recomputing_a_month_gives_the_same_rows(db):
    with warehouse.connect(db) as con:
        before = {
            n: sorted(con.execute(f"select * from indicators.{n}").fetchall(), key=lambda r: str(r))
            for n in NAMES
        }
        for name in NAMES:
            indicators.compute_indicator(con, name, MOIS)
        for name in NAMES:
            after = con.execute(f"select * from indicators.{name}").fetchall()
            assert sorted(after, key=lambda r: str(r)) == before[name], name


def test_without_lists_or_waves_the_source_indicators_are_empty(db, tmp_path):
    copy = tmp_path / "vide.duckdb"
    shutil.copy(db, copy)
    with warehouse.connect(copy) as con:
        for table in ("rapprochements", "questionnaire_valeurs", "reseaux_membres"):
            con.execute(f"delete from clean.{table}")
        counts = {name: indicators.compute_indicator(con, name, MOIS) for name in NAMES}
    # no list declared: ess_hors_reseau would otherwise say "100 % outside networks"
    assert counts == dict.fromkeys(NAMES, 0)


def test_answers_and_lists_stay_at_the_territory_when_its_region_is_published(db, tmp_path):
    """A month whose stock covers the région publishes it for comparison, from SIRENE only:
    answers and network lists describe the territory, their tables keep its levels (and the
    secrecy mask its communes), whatever else is published."""
    copy = tmp_path / "region.duckdb"
    shutil.copy(db, copy)
    with warehouse.connect(copy) as con:
        con.execute("update clean.couverture_niveaux set publie = true")
        warehouse.replace_month(con, "clean", "niveaux_publies", MOIS)
        published = {
            n
            for (n,) in con.execute(
                "select distinct niveau from clean.niveaux_publies where mois = $m", {"m": MOIS}
            ).fetchall()
        }
        assert {"epci", "departement", "region"} <= published
        for name in NAMES:
            indicators.compute_indicator(con, name, MOIS)
            levels = {
                n
                for (n,) in con.execute(
                    f"select distinct niveau from indicators.{name} where mois = $m", {"m": MOIS}
                ).fetchall()
            }
            assert levels <= {"commune", "ept"}, (name, levels)
        # the SIRENE cubes roll up from per-commune cells, which read these columns too
        con.execute("alter table clean.etablissements_perimetre add column prive boolean")
        con.execute("alter table clean.etablissements_perimetre add column annee_effectifs int")
        indicators.compute_indicator(con, "etablissements_actifs", MOIS)
        (regions,) = con.execute(
            "select count(*) from indicators.etablissements_actifs where niveau = 'region'"
        ).fetchone()
        assert regions > 0
