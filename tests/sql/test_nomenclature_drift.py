"""Nomenclature drift (issue 12): codes today's lists do not know keep their rows.

INSEE's register is fifty years of history: legal categories removed from the current list
(5720, 5498, 1100–1900…), NAF rév. 1 and NAF 2025 codes, communes merged since. Such a code is
kept, classified with what can be known and counted in `clean.codes_hors_nomenclature`; the
gate only warns on new codes and blocks when a column's unknown share jumps.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, make_settings
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import indicators, refresh, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import warehouse
from observatoire.publication import publish

MOIS = "2026-11"
FLAG = "economieSocialeSolidaireUniteLegale"

# (legal category in the stock, ESS flag, a current code a person would classify it as)
CATEGORIES = [
    ("5720", "N", "5710"),  # SASU -> SAS
    ("5720", "O", "5710"),  # SASU with the ESS flag -> commercial ESS company
    ("5498", "", "5499"),  # SARL unipersonnelle -> SARL
    ("1300", "", "1000"),  # former code of natural persons
    ("1900", "O", "1000"),  # a natural person stays out, whatever its flag
    ("6412", "", "6411"),  # former mutual insurance company: a mutuelle
    ("6413", "", "6411"),
    ("6414", "", "5599"),  # other non-commercial insurance: not ESS by category
    ("6588", "", "6540"),
    ("7130", "O", "7210"),  # public law, even with the flag
    ("7510", "", "7210"),
    ("7520", "", "7210"),
    ("5799", "O", "5710"),  # in no list: non classée, in the ESS by its flag
    ("6593", "N", "6540"),  # in no list, no flag: out
    ("4999", "O", "4110"),  # in no list, public law by its niveau I
]

# (establishment fields as the stock carries them, the same establishment classified by hand,
#  or None when a person would drop it: an unknown commune belongs to no territory)
ESTABLISHMENTS: list[tuple[dict[str, str], dict[str, str] | None]] = [
    (
        {
            "activitePrincipaleEtablissement": "84.11Y",
            "nomenclatureActivitePrincipaleEtablissement": "NAF2025",
            "activitePrincipaleNAF25Etablissement": "84.11Y",
        },
        {
            "activitePrincipaleEtablissement": "84.11Z",
            "activitePrincipaleNAF25Etablissement": "84.11Y",
        },
    ),
    (
        {
            "activitePrincipaleEtablissement": "88.10G",
            "nomenclatureActivitePrincipaleEtablissement": "NAF2025",
            "activitePrincipaleNAF25Etablissement": "88.10G",
        },
        {
            "activitePrincipaleEtablissement": "88.10A",
            "activitePrincipaleNAF25Etablissement": "88.10G",
        },
    ),
    (
        {
            "activitePrincipaleEtablissement": "75.1A",
            "nomenclatureActivitePrincipaleEtablissement": "NAFRev1",
            "activitePrincipaleNAF25Etablissement": "84.11Y",
        },
        {
            "activitePrincipaleEtablissement": "84.11Z",
            "activitePrincipaleNAF25Etablissement": "84.11Y",
        },
    ),
    (
        {
            "activitePrincipaleEtablissement": "52.4Z",
            "nomenclatureActivitePrincipaleEtablissement": "NAFRev1",
            "activitePrincipaleNAF25Etablissement": "",
        },
        {
            "activitePrincipaleEtablissement": "",
            "nomenclatureActivitePrincipaleEtablissement": "",
            "activitePrincipaleNAF25Etablissement": "",
        },
    ),
    ({"codeCommuneEtablissement": "75081"}, {"codeCommuneEtablissement": "94081"}),
    ({"codeCommuneEtablissement": "94999"}, None),
    (
        {"trancheEffectifsEtablissement": "54", "caractereEmployeurEtablissement": "O"},
        {"trancheEffectifsEtablissement": "", "caractereEmployeurEtablissement": "O"},
    ),
    (
        {"trancheEffectifsEtablissement": "12", "caractereEmployeurEtablissement": "O"},
        {"trancheEffectifsEtablissement": "12", "caractereEmployeurEtablissement": "O"},
    ),
]

CUBES = (
    "etablissements_actifs",
    "etablissements_employeurs",
    "emplois_salaries_estimes",
    "part_ess_emploi_prive",
)


def _twin_stocks() -> tuple[tuple[list, list], tuple[list, list]]:
    """The stock as INSEE ships it, and the same units classified by hand with current codes.

    Every legal unit gets one establishment of each kind in ESTABLISHMENTS, so that each
    category meets each activity, commune and band case.
    """
    stock: tuple[list, list] = ([], [])
    by_hand: tuple[list, list] = ([], [])
    for cj, flag, hand_cj in CATEGORIES:
        siren = new_siren()
        stock[0].append(
            ul_row(
                siren, categorieJuridiqueUniteLegale=cj, economieSocialeSolidaireUniteLegale=flag
            )
        )
        by_hand[0].append(
            ul_row(
                siren,
                categorieJuridiqueUniteLegale=hand_cj,
                economieSocialeSolidaireUniteLegale=flag,
            )
        )
        for n, (as_shipped, hand) in enumerate(ESTABLISHMENTS, 1):
            stock[1].append(etab_row(siren, n, **as_shipped))
            if hand is not None:
                by_hand[1].append(etab_row(siren, n, **hand))
    return stock, by_hand


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, Path]:
    stock, by_hand = _twin_stocks()
    warehouses = {}
    for name, (uls, ets) in {"stock": stock, "main": by_hand}.items():
        s = make_settings(tmp_path_factory.mktemp(name))
        write_stock(Path(s.data_dir) / "sirene" / MOIS, uls, ets)
        refresh.refresh(s, MOIS, run_id=name)
        warehouses[name] = s.warehouse
    return warehouses


def _rows(path: Path, sql: str) -> list[tuple]:
    with warehouse.connect(path, read_only=True) as con:
        return con.execute(sql, {"mois": MOIS} if "$mois" in sql else {}).fetchall()


def test_drifted_stock_publishes_with_nothing_quarantined(twins):
    for table in ("sirene_etablissements_rejets", "sirene_unites_legales_rejets"):
        assert _rows(twins["stock"], f"select * from clean.{table}") == []
    assert _rows(twins["stock"], "select * from raw.sirene_rejets_lecture") == []
    n_stock = len(CATEGORIES) * len(ESTABLISHMENTS)
    assert _rows(twins["stock"], "select count(*) from clean.sirene_etablissements") == [(n_stock,)]
    assert publish.published_month(twins["stock"].parent.parent / "publication") == MOIS


@pytest.mark.parametrize("table", CUBES)
def test_same_figures_as_when_classified_by_hand(twins, table):
    sql = f"select * from indicators.{table} where mois = $mois order by all"
    got, expected = _rows(twins["stock"], sql), _rows(twins["main"], sql)
    assert got == expected
    assert len(got) >= 10  # a real cube, with ESS families and sections in it


def test_families_of_removed_and_unknown_categories(twins):
    rows = dict(
        _rows(
            twins["stock"],
            "select u.categorie_juridique || '/' || coalesce(u.economie_sociale_solidaire, ''), "
            "any_value(p.regle || ':' || coalesce(p.famille_ess, '-')) "
            "from clean.etablissements_perimetre as p join clean.sirene_unites_legales as u "
            "using (siren) where p.code_commune = '94081' "
            "and p.activite_principale = '94.99Z' group by all",
        )
    )
    assert rows == {
        "5720/N": "hors_perimetre:-",
        "5720/O": "indicateur_ess_insee:societe_commerciale_ess",
        "5498/": "hors_perimetre:-",
        "1300/": "personne_physique:-",
        "1900/O": "personne_physique:-",
        "6412/": "categorie_juridique:mutuelle",
        "6413/": "categorie_juridique:mutuelle",
        "6414/": "hors_perimetre:-",
        "6588/": "hors_perimetre:-",
        "7130/O": "personne_publique:-",
        "7510/": "personne_publique:-",
        "7520/": "personne_publique:-",
        "5799/O": "indicateur_ess_insee:societe_commerciale_ess",
        "6593/N": "hors_perimetre:-",
        "4999/O": "personne_publique:-",
    }
    details = [
        r[0]
        for r in _rows(
            twins["stock"],
            "select distinct regle_detail from clean.etablissements_perimetre "
            "where categorie_juridique in ('5799', '5720')",
        )
    ]
    assert any("inconnue des nomenclatures INSEE : non classée" in d for d in details)
    assert any("supprimée de la nomenclature INSEE" in d for d in details)


def test_drift_table_names_each_code(twins):
    drift = {
        (r[0], r[1], r[2]): (r[3], r[4], r[5])
        for r in _rows(
            twins["stock"],
            "select colonne, code, statut, code_attribue, lignes, premier_mois "
            "from clean.codes_hors_nomenclature where mois = $mois",
        )
    }
    n = len(ESTABLISHMENTS)
    per_unit = len(CATEGORIES)
    for code in ("5720", "5498", "1300", "1900", "6412", "6413", "6414", "6588", "7130"):
        assert ("categorieJuridiqueUniteLegale", code, "supprime") in drift, code
    assert drift[("categorieJuridiqueUniteLegale", "5720", "supprime")] == (None, 2, MOIS)
    for code in ("5799", "6593", "4999"):
        assert drift[("categorieJuridiqueUniteLegale", code, "inconnu")] == (None, 1, MOIS)
    assert drift[("codeCommuneEtablissement", "75081", "commune_ancienne")] == (
        "94081",
        per_unit,
        MOIS,
    )
    assert drift[("codeCommuneEtablissement", "94999", "inconnu")][1] == per_unit
    assert drift[("trancheEffectifsEtablissement", "54", "inconnu")][1] == per_unit
    assert drift[("activitePrincipaleEtablissement", "75.1A", "nomenclature_ancienne")][1] == (
        per_unit
    )
    assert drift[("activitePrincipaleEtablissement", "52.4Z", "nomenclature_ancienne")][1] == (
        per_unit
    )
    # NAF 2025 codes in the main column are known codes: not drift
    assert not [k for k in drift if k[1] in ("84.11Y", "88.10G")]
    total = sum(v[1] for k, v in drift.items() if k[0].endswith("Etablissement"))
    assert total < per_unit * n  # most rows carry no drift at all


def test_former_commune_is_attributed_to_todays_commune(twins):
    rows = _rows(
        twins["stock"],
        "select e.code_commune, p.code_commune from clean.sirene_etablissements as e "
        "join clean.etablissements_perimetre as p using (siret) "
        "where e.libelle_commune = 'VITRY-SUR-SEINE' and e.siret in (select identifiant from "
        "raw.sirene_etablissements where code_commune_fichier = '75081')",
    )
    assert rows and set(rows) == {("94081", "94081")}


# ------------------------------------------------------------------------ NAF 2025 switch


def _naf2025_image() -> dict[str, str]:
    """NAF rév. 2 codes whose NAF 2025 image is one code (INSEE's correspondence)."""
    images: dict[str, list[str]] = {}
    with (ROOT / "data" / "reference" / "naf_rev2_naf_2025.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            images.setdefault(row["code_naf_rev2"], []).append(row["code_naf2025"])
    return {k: v[0] for k, v in images.items() if len(v) == 1}


def test_rows_moved_to_naf_2025_keep_their_perimeter_and_section(tmp_path):
    """Half the establishments carry their main activity in NAF 2025: nothing else moves."""
    image = _naf2025_image()
    codes = [
        "84.11Z", "84.30C", "94.11Z", "94.20Z", "94.91Z", "94.92Z", "94.12Z", "94.99Z",
        "88.10A", "85.59A", "62.01Z", "56.10A", "43.21A", "01.11Z",
    ]  # fmt: skip
    categories = [("9220", ""), ("5710", "O"), ("5710", "N"), ("8210", "")]
    uls, before, after = [], [], []
    for cj, flag in categories:
        siren = new_siren()
        uls.append(
            ul_row(
                siren, categorieJuridiqueUniteLegale=cj, economieSocialeSolidaireUniteLegale=flag
            )
        )
        for n, code in enumerate(codes, 1):
            row = etab_row(
                siren, n, activitePrincipaleEtablissement=code,
                activitePrincipaleNAF25Etablissement=image[code],
            )  # fmt: skip
            before.append(row)
            moved = dict(row)
            if n % 2:
                moved.update(
                    activitePrincipaleEtablissement=image[code],
                    nomenclatureActivitePrincipaleEtablissement="NAF2025",
                )
            after.append(moved)
    perimeters = []
    for name, ets in (("avant", before), ("apres", after)):
        s = make_settings(tmp_path / name)
        write_stock(Path(s.data_dir) / "sirene" / MOIS, uls, ets)
        with warehouse.connect(s.warehouse) as con:
            steps.load_reference_and_territory(con, s)
            for kind in refresh.KINDS:
                steps.ingest(con, s, kind, MOIS)
            indicators.compute_perimeter(con, MOIS)
            perimeters.append(
                con.execute(
                    "select siret, ess, famille_ess, regle, naf_section "
                    "from clean.etablissements_perimetre order by siret"
                ).fetchall()
            )
            moved = con.execute(
                "select count(*) from clean.sirene_etablissements "
                "where nomenclature_activite = 'NAF2025'"
            ).fetchone()
        assert moved == ((len(codes) + 1) // 2 * len(categories) if name == "apres" else 0,)
    assert perimeters[0] == perimeters[1]
    excluded = [r for r in perimeters[1] if r[3] == "naf_exclu"]
    assert len(excluded) == 6 * 3  # six excluded codes, three ESS categories
    assert all(r[4] is not None for r in perimeters[1])


# ------------------------------------------------------------------------------ the gate


def _month_with_unknown_naf(n_rows: int, unknown: list[str]) -> tuple[list, list]:
    siren = new_siren()
    ets = [etab_row(siren, n) for n in range(1, n_rows + 1)]
    for row, code in zip(ets, unknown, strict=False):
        row["activitePrincipaleEtablissement"] = code
    return [ul_row(siren)], ets


@pytest.fixture
def gated(settings):
    """Real drift limits (conftest relaxes them for hand-written months)."""
    return settings.with_(drift_share_max=0.05, drift_jump_max=0.02)


def _run(s, mois: str, uls: list, ets: list) -> refresh.RefreshReport:
    write_stock(Path(s.data_dir) / "sirene" / mois, uls, ets)
    return refresh.refresh(s, mois, run_id=f"gate-{mois}")


def _outcome(report: refresh.RefreshReport, suite: str, name: str):
    (result,) = [r for r in report.quality if r.suite == suite]
    (found,) = [o for o in result.outcomes if o.name == name]
    return found


def test_a_new_unknown_code_warns_and_the_month_publishes(gated):
    first = _run(gated, "2026-10", *_month_with_unknown_naf(50, ["00.00Z"]))
    assert _outcome(first, "clean.sirene_etablissements", "part_codes_inconnus").success
    report = _run(gated, MOIS, *_month_with_unknown_naf(50, ["00.00Z", "99.98Z"]))
    warned = _outcome(report, "clean.sirene_etablissements", "nouveaux_codes_inconnus")
    assert not warned.success and not warned.blocking
    assert [r["code"] for r in warned.sample] == ["99.98Z"]
    assert _outcome(report, "clean.sirene_etablissements", "part_codes_inconnus").success
    assert publish.published_month(gated.publication_dir) == MOIS


def test_a_jump_in_a_columns_unknown_share_refuses_the_month(gated):
    _run(gated, "2026-10", *_month_with_unknown_naf(50, ["00.00Z"]))
    live = publish.current(gated.publication_dir)
    with pytest.raises(refresh.QualityError, match="inconnu de toute nomenclature"):
        _run(gated, MOIS, *_month_with_unknown_naf(50, ["00.00Z"] * 5))  # 2 % -> 10 %
    assert publish.current(gated.publication_dir) == live


def test_a_first_month_with_many_unknown_codes_is_refused(gated):
    with pytest.raises(refresh.QualityError, match="au plus 5 %"):
        _run(gated, MOIS, *_month_with_unknown_naf(20, ["99.98Z"] * 4))
    assert publish.current(gated.publication_dir) is None


# --------------------------------------------------------------------- real rows conform


def test_every_real_sample_row_reads_cleans_and_is_classified(tmp_path):
    """3,372 real ESS legal units (INSEE stock, 2026): none quarantined, each classified."""
    with (FIXTURES / "sirene" / "sirene_ul_ess_flag_numerique_sample.csv").open(
        encoding="utf-8"
    ) as f:
        real = list(csv.DictReader(f))
    image = _naf2025_image()
    uls, ets = [], []
    for r in real:
        uls.append(
            ul_row(
                r["siren"],
                denominationUniteLegale=r["denominationUniteLegale"],
                activitePrincipaleUniteLegale=r["activitePrincipaleUniteLegale"],
                economieSocialeSolidaireUniteLegale=r["economieSocialeSolidaireUniteLegale"],
                categorieJuridiqueUniteLegale=r["categorieJuridiqueUniteLegale"],
                trancheEffectifsUniteLegale=r["trancheEffectifsUniteLegale"],
            )
        )
        code = r["activitePrincipaleUniteLegale"]
        ets.append(
            etab_row(
                r["siren"],
                activitePrincipaleEtablissement=code,
                activitePrincipaleNAF25Etablissement=image.get(code, ""),
                trancheEffectifsEtablissement=r["trancheEffectifsUniteLegale"],
            )
        )
    s = make_settings(tmp_path)
    write_stock(Path(s.data_dir) / "sirene" / MOIS, uls, ets)
    with warehouse.connect(s.warehouse) as con:
        steps.load_reference_and_territory(con, s)
        for kind in refresh.KINDS:
            month = steps.ingest(con, s, kind, MOIS)
            read, cleaned = month.read, month.cleaned
            assert read.malformed == 0
            assert cleaned.rows_rejected == 0, cleaned.rejects_by_reason
            assert cleaned.rows_clean == len(real)
        indicators.compute_perimeter(con, MOIS)
        classified = con.execute(
            "select regle, count(*) from clean.etablissements_perimetre group by all"
        ).fetchall()
    expected_public = sum(r["categorieJuridiqueUniteLegale"][0] in "47" for r in real)
    rules = dict(classified)
    assert sum(rules.values()) == len(real)
    assert rules.get("personne_publique", 0) == expected_public
    assert rules["categorie_juridique"] + rules.get("indicateur_ess_insee", 0) == (
        len(real) - expected_public
    )


def test_real_stock_samples_of_two_layouts_clean_without_quarantine(tmp_path):
    """INSEE's own rows (legal units of 2026, establishments in the 2020 v3.9 layout)."""
    s = make_settings(tmp_path).with_(territoire="france")
    folder = FIXTURES / "sirene"
    with warehouse.connect(s.warehouse) as con:
        steps.load_reference_and_territory(con, s)
        months = {
            kind: clean.process_month(con, kind, folder / name, "2026-04", communes_table=None)
            for kind, name in (
                ("etablissements", "sirene_stock_etablissement_sample_2020_v3_9.csv"),
                ("unites_legales", "sirene_stock_unite_legale_sample_2026.csv"),
            )
        }
        for kind, n in (("etablissements", 10), ("unites_legales", 9)):
            cleaned = months[kind].cleaned
            assert (cleaned.rows_clean, cleaned.rows_rejected) == (n, 0), cleaned.rejects_by_reason
