"""ESS perimeter rules, one establishment per case, through the real refresh on DuckDB."""

from __future__ import annotations

import pytest
from sirene_builder import etab_row, new_siren, ul_row

MOIS = "2026-11"

# (case, legal unit fields, establishment fields, expected regle, expected famille, ess)
CASES = [
    (
        "association 9220",
        {"categorieJuridiqueUniteLegale": "9220"},
        {},
        "categorie_juridique",
        "association",
        True,
    ),
    (
        "association RUP 9230",
        {"categorieJuridiqueUniteLegale": "9230"},
        {},
        "categorie_juridique",
        "association",
        True,
    ),
    (
        "association de droit local 9260, flag N",
        {"categorieJuridiqueUniteLegale": "9260", "economieSocialeSolidaireUniteLegale": "N"},
        {},
        "categorie_juridique",
        "association",
        True,
    ),
    (
        "SCOP SARL 5458",
        {"categorieJuridiqueUniteLegale": "5458"},
        {"activitePrincipaleEtablissement": "43.21A"},
        "categorie_juridique",
        "cooperative",
        True,
    ),
    (
        "coopérative agricole 6317",
        {"categorieJuridiqueUniteLegale": "6317"},
        {"activitePrincipaleEtablissement": "01.11Z"},
        "categorie_juridique",
        "cooperative",
        True,
    ),
    (
        "caisse de crédit mutuel 6595 (à vérifier, incluse)",
        {"categorieJuridiqueUniteLegale": "6595"},
        {"activitePrincipaleEtablissement": "64.19Z"},
        "categorie_juridique",
        "cooperative",
        True,
    ),
    (
        "mutuelle 8210",
        {"categorieJuridiqueUniteLegale": "8210"},
        {"activitePrincipaleEtablissement": "65.12Z"},
        "categorie_juridique",
        "mutuelle",
        True,
    ),
    (
        "assurance mutuelle 6411",
        {"categorieJuridiqueUniteLegale": "6411"},
        {},
        "categorie_juridique",
        "mutuelle",
        True,
    ),
    (
        "fondation 9300",
        {"categorieJuridiqueUniteLegale": "9300"},
        {},
        "categorie_juridique",
        "fondation",
        True,
    ),
    (
        "5e famille : CSE 8310",
        {"categorieJuridiqueUniteLegale": "8310", "economieSocialeSolidaireUniteLegale": ""},
        {},
        "categorie_juridique",
        "autre_non_lucratif",
        True,
    ),
    (
        "SAS avec indicateur ESS O",
        {"categorieJuridiqueUniteLegale": "5710", "economieSocialeSolidaireUniteLegale": "O"},
        {"activitePrincipaleEtablissement": "62.01Z"},
        "indicateur_ess_insee",
        "societe_commerciale_ess",
        True,
    ),
    (
        "SAS avec indicateur N",
        {"categorieJuridiqueUniteLegale": "5710", "economieSocialeSolidaireUniteLegale": "N"},
        {"activitePrincipaleEtablissement": "62.01Z"},
        "hors_perimetre",
        None,
        False,
    ),
    (
        "SARL sans indicateur",
        {"categorieJuridiqueUniteLegale": "5499", "economieSocialeSolidaireUniteLegale": ""},
        {"activitePrincipaleEtablissement": "47.11B"},
        "hors_perimetre",
        None,
        False,
    ),
    (
        "entrepreneur individuel avec indicateur O",
        {"categorieJuridiqueUniteLegale": "1000", "economieSocialeSolidaireUniteLegale": "O"},
        {},
        "personne_physique",
        None,
        False,
    ),
    (
        "commune 7210",
        {"categorieJuridiqueUniteLegale": "7210", "economieSocialeSolidaireUniteLegale": "N"},
        {"activitePrincipaleEtablissement": "84.11Z"},
        "personne_publique",
        None,
        False,
    ),
    (
        "GIP avec indicateur O : public, hors ESS",
        {"categorieJuridiqueUniteLegale": "7410", "economieSocialeSolidaireUniteLegale": "O"},
        {"activitePrincipaleEtablissement": "72.19Z"},
        "personne_publique",
        None,
        False,
    ),
    (
        "société étrangère avec indicateur O",
        {"categorieJuridiqueUniteLegale": "3120", "economieSocialeSolidaireUniteLegale": "O"},
        {"activitePrincipaleEtablissement": "62.01Z"},
        "indicateur_ess_insee",
        "societe_commerciale_ess",
        True,
    ),
    (
        "association en 84.11Z",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "84.11Z"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "association en 84.30C",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "84.30C"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "association patronale 94.11Z",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "94.11Z"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "syndicat en 94.20Z",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "94.20Z"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "culte 94.91Z",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "94.91Z"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "parti politique 94.92Z",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "94.92Z"},
        "naf_exclu",
        None,
        False,
    ),
    (
        "organisation professionnelle 94.12Z : conservée",
        {"categorieJuridiqueUniteLegale": "9220"},
        {"activitePrincipaleEtablissement": "94.12Z"},
        "categorie_juridique",
        "association",
        True,
    ),
    (
        "SAS ESS en 94.11Z",
        {"categorieJuridiqueUniteLegale": "5710", "economieSocialeSolidaireUniteLegale": "O"},
        {"activitePrincipaleEtablissement": "94.11Z"},
        "naf_exclu",
        None,
        False,
    ),
]


@pytest.fixture(scope="module")
def ruled(tmp_path_factory):
    """Run all cases in one refresh; map case -> (regle, famille, ess)."""
    from conftest import ROOT
    from sirene_builder import write_stock

    from observatoire import refresh
    from observatoire.core.settings import Settings

    tmp = tmp_path_factory.mktemp("perimeter")
    uls, ets, sirets = [], [], {}
    for case, ul_fields, et_fields, *_ in CASES:
        siren = new_siren()
        uls.append(ul_row(siren, **ul_fields))
        row = etab_row(siren, **et_fields)
        ets.append(row)
        sirets[case] = row["siret"]
    # an establishment whose legal unit is missing from the month's StockUniteLegale
    orphan = etab_row(new_siren())
    ets.append(orphan)
    sirets["orphan"] = orphan["siret"]
    write_stock(tmp / "sirene" / MOIS, uls, ets)
    s = Settings(
        data_dir=tmp,
        warehouse=tmp / "w.duckdb",
        reference_dir=ROOT / "data" / "reference",
        publication_dir=tmp / "pub",
        download_dir=tmp / "dl",
        sirene_etablissements=str(tmp / "sirene" / "{mois}" / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(tmp / "sirene" / "{mois}" / "StockUniteLegale_utf8.csv"),
    )
    refresh.refresh(s, MOIS, run_id="perimeter")
    import duckdb

    con = duckdb.connect(str(s.warehouse), read_only=True)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "select siret, regle, famille_ess, ess, regle_detail "
            "from clean.etablissements_perimetre"
        ).fetchall()
    }
    con.close()
    return {case: rows[siret] for case, siret in sirets.items()}


@pytest.mark.parametrize(
    ("case", "regle", "famille", "ess"), [(c[0], c[3], c[4], c[5]) for c in CASES]
)
def test_rule(ruled, case, regle, famille, ess):
    got_regle, got_famille, got_ess, detail = ruled[case]
    assert (got_regle, got_famille, got_ess) == (regle, famille, ess), detail
    assert detail  # every establishment carries a readable reason


def test_missing_legal_unit_is_traced(ruled):
    assert ruled["orphan"][:3] == ("unite_legale_absente", None, False)
