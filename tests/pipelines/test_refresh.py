"""The SIRENE path end to end on small files: cleaning, quarantine, jobs, privacy, re-runs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES
from sirene_builder import etab_row, new_siren, siret_for, ul_row, write_stock

from observatoire import indicators, refresh, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import warehouse
from observatoire.publication import publish
from observatoire.sources import sirene

MOIS = "2026-11"


def test_quarantine_reasons(run_month, query):
    """Every malformed row lands in quarantine with its reason; well-formed codes our
    reference does not know keep their row (and are counted in the drift table)."""
    good = new_siren()
    uls = [ul_row(good)]
    wrong_key = siret_for(good, 2)[:-1] + str((int(siret_for(good, 2)[-1]) + 1) % 10)
    bad_luhn = etab_row(good, 2, siret=wrong_key, nic=wrong_key[9:])
    ets = [
        etab_row(good, 1),
        bad_luhn,
        etab_row(good, 3, codeCommuneEtablissement="9A999"),
        etab_row(good, 4, dateCreationEtablissement="2023-02-30"),
        etab_row(good, 5, dateCreationEtablissement="2027-01-01"),
        etab_row(good, 6, trancheEffectifsEtablissement="9"),
        etab_row(good, 7, activitePrincipaleEtablissement="ABC"),
        etab_row(good, 8, nic="00099"),  # siret is not siren + nic
        etab_row(good, 9, etatAdministratifEtablissement="X"),
        etab_row(good, 10),
        etab_row(good, 10),  # identical copy: one kept
        etab_row(good, 12, dateDernierTraitementEtablissement="2026-10-31 18h"),
        etab_row(good, 13, anneeEffectifsEtablissement="20233"),
        etab_row(good, 14),
        etab_row(good, 14, trancheEffectifsEtablissement="01"),  # two versions: none kept
        # well formed but unknown: kept
        etab_row(good, 20, codeCommuneEtablissement="94999"),
        etab_row(good, 21, codeCommuneEtablissement="13999"),
        etab_row(good, 22, trancheEffectifsEtablissement="99"),
        etab_row(good, 23, activitePrincipaleEtablissement="99.99Z"),
    ]
    # legal units are read for the territory's establishments only: give them one each
    unknown_cj, bad_cj = new_siren(), new_siren()
    uls.append(ul_row("123456789"))  # bad siren key
    uls.append(ul_row(unknown_cj, categorieJuridiqueUniteLegale="1234"))
    uls.append(ul_row(bad_cj, categorieJuridiqueUniteLegale="12X4"))
    ets.append(etab_row(unknown_cj))
    ets.append(etab_row(bad_cj))
    ets.append(etab_row("123456789", siret="12345678900011", nic="00011"))
    report = run_month(MOIS, uls, ets)
    rejects = sorted(
        query(
            "select identifiant, motif from clean.sirene_etablissements_rejets where mois = ?",
            [MOIS],
        )
    )
    conflict = "siret en double dans le fichier avec des versions différentes"
    assert rejects == sorted(
        [
            (bad_luhn["siret"], "siret invalide (clé de Luhn)"),
            (siret_for(good, 3), "code commune mal formé (5 caractères attendus)"),
            (siret_for(good, 4), "date invalide (AAAA-MM-JJ attendu)"),
            (siret_for(good, 5), "date postérieure au mois du stock"),
            (siret_for(good, 6), "tranche d'effectifs mal formée (NN ou 2 chiffres attendus)"),
            (siret_for(good, 7), "code d'activité mal formé"),
            (siret_for(good, 8), "siret différent de siren + nic"),
            (siret_for(good, 9), "état administratif absent ou inconnu (A ou F attendu)"),
            (
                siret_for(good, 10),
                "siret en double dans le fichier (copie identique : une seule gardée)",
            ),
            (
                siret_for(good, 12),
                "date de dernier traitement invalide (AAAA-MM-JJTHH:MM:SS attendu)",
            ),
            (siret_for(good, 13), "année invalide (AAAA, au plus l'année du stock)"),
            (siret_for(good, 14), conflict + " (toutes les versions en quarantaine)"),
            (siret_for(good, 14), conflict + " (toutes les versions en quarantaine)"),
            ("12345678900011", "siren invalide (clé de Luhn)"),
        ]
    )
    kept = dict(query("select siret, code_commune from clean.sirene_etablissements"))
    assert kept == {
        siret_for(good, 1): "94081",
        siret_for(good, 10): "94081",
        siret_for(good, 20): None,  # unknown commune: no territory
        siret_for(good, 21): None,
        siret_for(good, 22): "94081",
        siret_for(good, 23): "94081",
        siret_for(unknown_cj): "94081",
        siret_for(bad_cj): "94081",  # its legal unit is quarantined, not the establishment
    }
    ul_rejects = {
        r[1] for r in query("select identifiant, motif from clean.sirene_unites_legales_rejets")
    }
    assert ul_rejects == {
        "siren invalide (clé de Luhn)",
        "catégorie juridique absente ou mal formée (4 chiffres attendus)",
    }
    drift = {
        (r[0], r[1]): r[2]
        for r in query(
            "select colonne, code, statut from clean.codes_hors_nomenclature where mois = ?",
            [MOIS],
        )
    }
    assert drift == {
        ("codeCommuneEtablissement", "94999"): "inconnu",
        ("codeCommuneEtablissement", "13999"): "inconnu_hors_territoire",
        ("trancheEffectifsEtablissement", "99"): "inconnu",
        ("activitePrincipaleEtablissement", "99.99Z"): "inconnu",
        ("categorieJuridiqueUniteLegale", "1234"): "inconnu",
    }
    assert report.cleaned["etablissements"].rows_in == len(ets)
    assert report.cleaned["etablissements"].rows_rejected == 14


def test_malformed_csv_line_is_quarantined_with_line_number(settings, query):
    siren = new_siren()
    folder = Path(settings.data_dir) / "sirene" / MOIS
    et, _ = write_stock(folder, [ul_row(siren)], [etab_row(siren, 1), etab_row(siren, 2)])
    lines = et.read_text(encoding="utf-8").splitlines()
    lines.insert(2, lines[2] + ",colonne_en_trop")
    et.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = refresh.refresh(settings, MOIS, run_id="malformed")
    assert report.ingested["etablissements"].malformed == 1
    ((line, reason),) = query("select ligne, motif from raw.sirene_rejets_lecture")
    assert line == 3
    assert reason == "nombre de colonnes : 55 au lieu de 54"


def test_reject_rate_above_threshold_stops_before_publication(run_month, settings):
    siren = new_siren()
    ets = [etab_row(siren, 1)] + [
        etab_row(siren, n, codeCommuneEtablissement="9X999") for n in range(2, 6)
    ]
    with pytest.raises(refresh.RejectRateError, match="seuil"):
        run_month(MOIS, [ul_row(siren)], ets, max_reject_rate=0.02)
    assert publish.current(settings.publication_dir) is None


# (tranche, expected low, high, central contribution)
BANDS = [
    ("NN", None, None),
    ("00", 0, 0),
    ("01", 1, 2),
    ("03", 6, 9),
    ("12", 20, 49),
    ("53", 10000, None),
]


def test_tranche_bounds_and_jobs_interval(run_month, query):
    uls, ets = [], []
    for code, _, _ in BANDS:
        siren = new_siren()
        uls.append(ul_row(siren))
        ets.append(
            etab_row(
                siren,
                trancheEffectifsEtablissement=code,
                anneeEffectifsEtablissement="2023",
                caractereEmployeurEtablissement="O",
            )
        )
    run_month(MOIS, uls, ets)
    got = {
        r[0]: (r[1], r[2])
        for r in query(
            "select tranche_effectifs, effectif_min, effectif_max from clean.sirene_etablissements"
        )
    }
    assert got == {code: (lo, hi) for code, lo, hi in BANDS}
    (row,) = query(
        "select nb_etablissements_employeurs, emplois_bas, emplois_central, emplois_haut, "
        "nb_tranche_inconnue, part_tranche_inconnue, annee_effectifs_min "
        "from indicators.emplois_salaries_estimes where niveau = 'ept' and perimetre = 'ess' "
        "and famille = 'ensemble' and section_naf = 'ensemble' and tranche_effectifs = 'ensemble'"
    )
    low = 0 + 1 + 6 + 20 + 10000
    high = 0 + 2 + 9 + 49 + 10000
    central = 0 + 1.5 + 7.5 + 34.5 + 10000
    assert row == (6, low, central, high, 1, round(1 / 6, 4), 2023)


def test_partially_diffusible_units_counted_but_never_listed(run_month, query, settings):
    public, hidden, hidden_etab = new_siren(), new_siren(), new_siren()
    uls = [
        ul_row(public, denominationUniteLegale="ASSOCIATION PUBLIQUE"),
        ul_row(hidden, statutDiffusionUniteLegale="P", denominationUniteLegale="[ND]"),
        ul_row(hidden_etab, denominationUniteLegale="ASSO AU SIEGE PUBLIC"),
    ]
    ets = [
        etab_row(public),
        etab_row(
            hidden,
            statutDiffusionEtablissement="P",
            libelleVoieEtablissement="[ND]",
            coordonneeLambertAbscisseEtablissement="[ND]",
            enseigne1Etablissement="SECRET",
        ),
        etab_row(hidden_etab, statutDiffusionEtablissement="P", enseigne1Etablissement="CACHE"),
    ]
    report = run_month(MOIS, uls, ets)
    (count,) = query(
        "select nb_etablissements from indicators.etablissements_actifs where niveau = 'ept' "
        "and perimetre = 'ess' and famille = 'ensemble' and section_naf = 'ensemble' "
        "and tranche_effectifs = 'ensemble'"
    )[0]
    assert count == 3  # all three counted
    listed = {r[0] for r in query("select siren from indicators.annuaire_ess")}
    assert listed == {public}
    # nothing identifying the P units anywhere in the published files
    published = report.publication.path
    for path in published.rglob("*.csv"):
        text = path.read_text(encoding="utf-8-sig")
        for needle in (hidden, hidden_etab, "SECRET", "CACHE", siret_for(hidden)):
            assert needle not in text, (path.name, needle)


def test_privacy_guard_refuses_a_leaking_listing(run_month, settings):
    hidden = new_siren()
    run_month(MOIS, [ul_row(hidden, statutDiffusionUniteLegale="P")], [etab_row(hidden)])
    with warehouse.connect(settings.warehouse) as con:
        # simulate a faulty change of the SQL that would list the P unit
        con.execute(
            "insert into indicators.annuaire_ess (mois, siret, siren, denomination) "
            "select mois, siret, siren, 'FUITE' from clean.etablissements_perimetre"
        )
        with pytest.raises(indicators.PrivacyError):
            indicators.check_privacy(con, MOIS)
        (n,) = con.execute("select count(*) from indicators.annuaire_ess").fetchone()
        assert n == 0


def test_republishing_an_older_month_keeps_the_latest_publication(run_month, settings):
    a = new_siren()
    run_month(MOIS, [ul_row(a)], [etab_row(a)])
    latest = publish.current(settings.publication_dir)
    run_month("2026-10", [ul_row(a)], [etab_row(a)])
    assert publish.current(settings.publication_dir) == latest
    assert publish.published_month(settings.publication_dir) == MOIS
    with warehouse.connect(settings.warehouse) as con, pytest.raises(FileExistsError):
        publish.publish(con, settings.publication_dir, MOIS, latest.name.split("_", 1)[1])
    assert publish.current(settings.publication_dir) == latest


def _snapshot(settings) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        out = {}
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'clean', 'indicators') order by all"
        ).fetchall():
            out[f"{schema}.{table}"] = con.execute(
                f"select * from {schema}.{table} order by all"
            ).fetchall()
        return out
    finally:
        con.close()


def test_rerun_of_a_month_is_idempotent_and_other_months_are_kept(run_month, settings, query):
    a, b = new_siren(), new_siren()
    run_month("2026-10", [ul_row(a)], [etab_row(a)])
    run_month(MOIS, [ul_row(a), ul_row(b)], [etab_row(a), etab_row(b)])
    first = _snapshot(settings)
    run_month(MOIS, [ul_row(a), ul_row(b)], [etab_row(a), etab_row(b)])
    assert _snapshot(settings) == first
    months = dict(query("select mois, count(*) from clean.etablissements_perimetre group by all"))
    assert months == {"2026-10": 1, MOIS: 2}
    # a corrected file for a month replaces that month only
    run_month(MOIS, [ul_row(a)], [etab_row(a)])
    months = dict(query("select mois, count(*) from clean.etablissements_perimetre group by all"))
    assert months == {"2026-10": 1, MOIS: 1}


def test_zip_csv_and_parquet_give_the_same_raw_rows(settings, tmp_path):
    siren = new_siren()
    uls = [ul_row(siren)]
    ets = [etab_row(siren, 1), etab_row(siren, 2, codeCommuneEtablissement="94041")]
    et_csv, _ = write_stock(tmp_path / "csv", uls, ets)
    et_zip, _ = write_stock(tmp_path / "zip", uls, ets, zipped=True)
    et_parquet = tmp_path / "StockEtablissement.parquet"
    # INSEE's Parquet has typed columns; text columns are what our reader must cope with first
    header = et_csv.read_text(encoding="utf-8").splitlines()[0].split(",")
    table = pacsv.read_csv(
        et_csv,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
        ),
    )
    pq.write_table(table, et_parquet)
    results = []
    for path in (et_csv, et_zip, et_parquet):
        with warehouse.connect(tmp_path / f"{path.suffix[1:]}.duckdb") as con:
            steps.load_reference_and_territory(con, settings)
            clean.process_month(con, "etablissements", path, MOIS)
            results.append(
                con.execute(
                    "select * exclude (fichier_source) from clean.sirene_etablissements "
                    "order by siret"
                ).fetchall()
            )
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 2


def test_real_2020_layout_is_recognised_and_read(settings, tmp_path):
    path = FIXTURES / "sirene" / "sirene_stock_etablissement_sample_2020_v3_9.csv"
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        steps.load_reference_and_territory(con, settings.with_(territoire="france"))
        result = clean.process_month(con, "etablissements", path, "2020-01").read
        assert result.layout.startswith("v3.9")
        assert result.rows == 10
        # the column the 2020 layout lacks is read as NULL on every row kept
        nulls, kept = con.execute(
            "select count(*) filter (where activite_principale_naf25 is null), count(*) "
            "from clean.sirene_etablissements"
        ).fetchone()
        assert (
            nulls
            == kept
            == 10 - len(con.execute("select * from clean.sirene_etablissements_rejets").fetchall())
        )


def test_unknown_layout_is_refused_with_a_diagnosis(tmp_path, settings):
    path = tmp_path / "StockEtablissement_utf8.csv"
    path.write_text("siren,nic,siret,foo\n", encoding="utf-8")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        steps.load_reference_and_territory(con, settings)
        with pytest.raises(sirene.SireneFileError, match="non reconnu.*manquantes"):
            clean.process_month(con, "etablissements", path, MOIS)


def test_truncated_zip_is_refused(tmp_path, settings):
    siren = new_siren()
    et_zip, _ = write_stock(tmp_path, [ul_row(siren)], [etab_row(siren)], zipped=True)
    data = et_zip.read_bytes()
    et_zip.write_bytes(data[: len(data) // 2])
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        steps.load_reference_and_territory(con, settings)
        with pytest.raises(sirene.SireneFileError, match="zip"):
            clean.process_month(con, "etablissements", et_zip, MOIS)


def test_layout_of_real_unite_legale_sample(tmp_path):
    with zipfile.ZipFile(tmp_path / "ul.zip", "w") as zf:
        zf.write(
            FIXTURES / "sirene" / "sirene_stock_unite_legale_sample_2026.csv",
            "StockUniteLegale_utf8.csv",
        )
    layout = sirene.detect("unites_legales", tmp_path / "ul.zip")
    assert layout.current and len(layout.columns) == 35


def test_evolution_against_the_previous_month(run_month, query):
    a, b, c = new_siren(), new_siren(), new_siren()
    run_month("2026-10", [ul_row(a), ul_row(b)], [etab_row(a), etab_row(b)])
    run_month(
        MOIS,
        [ul_row(a), ul_row(b), ul_row(c)],
        [
            etab_row(a),
            etab_row(b, etatAdministratifEtablissement="F"),
            etab_row(c),
            etab_row(c, 2, caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="01"),
        ],
    )
    rows = query(
        "select mois, mois_precedent, nb_etablissements, nb_etablissements_precedent, "
        "variation_etablissements, variation_etablissements_employeurs "
        "from indicators.evolution_mensuelle where niveau = 'ept' and perimetre = 'ensemble' "
        "order by mois"
    )
    assert rows == [("2026-10", None, 2, None, None, None), (MOIS, "2026-10", 3, 2, 1, 1)]


def test_a_broken_first_copy_does_not_take_the_valid_duplicate_down(run_month, query):
    siren = new_siren()
    broken = etab_row(siren, dateCreationEtablissement="2023-02-30")
    valid = etab_row(siren)
    run_month(MOIS, [ul_row(siren)], [broken, valid])
    assert query("select siret from clean.sirene_etablissements") == [(valid["siret"],)]
    assert query("select motif from clean.sirene_etablissements_rejets") == [
        ("date invalide (AAAA-MM-JJ attendu)",)
    ]


def test_a_month_over_the_reject_threshold_keeps_the_previous_clean_month(run_month, query):
    siren = new_siren()
    run_month(MOIS, [ul_row(siren)], [etab_row(siren)], max_reject_rate=0.02)
    bad = [etab_row(siren, n, codeCommuneEtablissement="9X999") for n in range(1, 4)]
    with pytest.raises(refresh.RejectRateError, match="mois précédent conservé"):
        run_month(MOIS, [ul_row(siren)], bad, max_reject_rate=0.02)
    assert query("select siret from clean.sirene_etablissements where mois = ?", [MOIS]) == [
        (siret_for(siren),)
    ]


def test_typed_parquet_as_insee_publishes_it_cleans_like_the_csv(settings, tmp_path):
    """INSEE's Parquet has DATE, BIGINT, BOOLEAN columns: same clean rows as from the CSV."""
    siren = new_siren()
    uls = [ul_row(siren)]
    ets = [
        etab_row(siren, 1, trancheEffectifsEtablissement="03", anneeEffectifsEtablissement="2023"),
        etab_row(siren, 2, etatAdministratifEtablissement="F", dateDebut="2024-03-31"),
    ]
    et_csv, _ = write_stock(tmp_path / "csv", uls, ets)
    typed = tmp_path / "StockEtablissement.parquet"
    con = duckdb.connect()
    con.execute(
        "create table t as select * replace ("
        "cast(dateCreationEtablissement as date) as dateCreationEtablissement, "
        "cast(dateDebut as date) as dateDebut, "
        "cast(anneeEffectifsEtablissement as bigint) as anneeEffectifsEtablissement, "
        "cast(etablissementSiege as boolean) as etablissementSiege, "
        "cast(coordonneeLambertAbscisseEtablissement as double) "
        "as coordonneeLambertAbscisseEtablissement, "
        "cast(dateDernierTraitementEtablissement as timestamp) "
        "as dateDernierTraitementEtablissement) "
        "from read_csv($p, all_varchar = true)",
        {"p": str(et_csv)},
    )
    con.table("t").to_parquet(str(typed))
    con.close()
    results = []
    for path in (et_csv, typed):
        with warehouse.connect(tmp_path / f"{path.suffix[1:]}.duckdb") as w:
            steps.load_reference_and_territory(w, settings)
            clean.process_month(w, "etablissements", path, MOIS)
            results.append(
                w.execute(
                    "select * exclude (fichier_source) from clean.sirene_etablissements "
                    "order by siret"
                ).fetchall()
            )
    assert results[0] == results[1]
    assert len(results[0]) == 2


def test_reconciliation_shows_the_final_decision_and_a_total(run_month, query):
    agree, excluded, flag_n = new_siren(), new_siren(), new_siren()
    run_month(
        MOIS,
        [ul_row(agree), ul_row(excluded), ul_row(flag_n, economieSocialeSolidaireUniteLegale="N")],
        [
            etab_row(agree),
            etab_row(excluded, activitePrincipaleEtablissement="94.91Z"),
            etab_row(flag_n),
        ],
    )
    rows = query(
        "select cas, regle, desaccord, nb_etablissements_actifs "
        "from indicators.rapprochement_perimetre_insee where niveau = 'ept' order by cas, regle"
    )
    assert rows == [
        ("categorie_ess_indicateur_n", "categorie_juridique", True, 1),
        ("categorie_ess_indicateur_o", "categorie_juridique", False, 1),
        ("categorie_ess_indicateur_o", "naf_exclu", False, 1),
        ("ensemble", "ensemble", None, 3),
    ]


def test_reconciliation_counts_a_legal_unit_once_per_territory(run_month, query):
    """A unit with establishments in two communes counts once in its EPT, once in each commune;
    its establishments all count (the per-commune shortcut must not lose or double them)."""
    spread, local = new_siren(), new_siren()
    run_month(
        MOIS,
        [ul_row(spread), ul_row(local)],
        [
            etab_row(spread, 1, codeCommuneEtablissement="94081"),
            etab_row(spread, 2, codeCommuneEtablissement="94041"),
            etab_row(spread, 3, codeCommuneEtablissement="94081",
                     activitePrincipaleEtablissement="94.91Z"),
            etab_row(local, 1, codeCommuneEtablissement="94081"),
        ],
    )  # fmt: skip
    rows = query(
        "select niveau, code_territoire, cas, regle, nb_etablissements_actifs, nb_unites_legales "
        "from indicators.rapprochement_perimetre_insee "
        "where niveau in ('ept', 'commune') order by niveau, code_territoire, cas, regle"
    )
    assert rows == [
        ("commune", "94041", "categorie_ess_indicateur_o", "categorie_juridique", 1, 1),
        ("commune", "94041", "ensemble", "ensemble", 1, 1),
        ("commune", "94081", "categorie_ess_indicateur_o", "categorie_juridique", 2, 2),
        ("commune", "94081", "categorie_ess_indicateur_o", "naf_exclu", 1, 1),
        ("commune", "94081", "ensemble", "ensemble", 3, 2),
        ("ept", "T12", "categorie_ess_indicateur_o", "categorie_juridique", 3, 2),
        ("ept", "T12", "categorie_ess_indicateur_o", "naf_exclu", 1, 1),
        ("ept", "T12", "ensemble", "ensemble", 4, 2),
    ]


def test_a_cube_computed_without_its_month_cells_builds_them(run_month, query, settings):
    """The establishment cubes roll up from clean.base_communale: an indicator computed alone
    on a month without cells (built by an earlier version, or re-run alone) must not come out
    empty."""
    siren = new_siren()
    run_month(MOIS, [ul_row(siren)], [etab_row(siren, 1), etab_row(siren, 2)])
    sql = "select * from indicators.etablissements_actifs order by all"
    before = query(sql)
    assert any(row[-1] == 2 for row in before)
    with warehouse.connect(settings.warehouse) as con:
        con.execute("drop table clean.base_communale")
        indicators.compute_indicator(con, "etablissements_actifs", MOIS)
    assert query(sql) == before
