"""GX suites on real warehouses: a clean month passes, each kind of fault is caught and named.

Every test builds its months from INSEE-shaped files through the real refresh, then damages the
month the way a bad file or a bug would (straight into the month tables), and validates.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sirene_builder import etab_row, new_siren, siret_for, ul_row, write_stock

from observatoire import quality, refresh
from observatoire.core import warehouse

MOIS = "2026-11"
FORBIDDEN = {
    "denomination",
    "denomination_usuelle",
    "enseigne",
    "sigle",
    "numero_voie",
    "type_voie",
    "libelle_voie",
    "code_postal",
    "libelle_commune",
    "x_lambert93",
    "y_lambert93",
}


def treated(mois: str, day_before: int = 1) -> str:
    """A dateDernierTraitement as INSEE writes it in the stock of `mois` (end of month M-1)."""
    first = dt.date.fromisoformat(f"{mois}-01")
    return f"{first - dt.timedelta(days=day_before):%Y-%m-%d}T21:30:00"


def stock(mois: str, n_etablissements: int = 6, when: str | None = None) -> tuple[list, list, dict]:
    """A small territory: an association, a cooperative, a partially diffusible unit."""
    when = when or treated(mois)
    asso, scop, hidden = new_siren(), new_siren(), new_siren()
    uls = [
        ul_row(asso, dateDernierTraitementUniteLegale=when),
        ul_row(scop, categorieJuridiqueUniteLegale="5458", dateDernierTraitementUniteLegale=when),
        ul_row(hidden, statutDiffusionUniteLegale="P", dateDernierTraitementUniteLegale=when),
    ]
    ets = [
        etab_row(hidden, statutDiffusionEtablissement="P", dateDernierTraitementEtablissement=when)
    ]
    ets.append(etab_row(scop, dateDernierTraitementEtablissement=when))
    for n in range(1, n_etablissements - 1):
        ets.append(etab_row(asso, n, dateDernierTraitementEtablissement=when))
    ids = {"asso": asso, "scop": scop, "hidden": hidden}
    return uls, ets, ids


def check(settings, suite: str, mois: str = MOIS, **kwargs) -> quality.SuiteResult:
    kwargs.setdefault("max_reject_rate", 0.02)
    with warehouse.connect(settings.warehouse) as con:
        return quality.validate(con, suite, mois, **kwargs)


def failed(result: quality.SuiteResult) -> set[str]:
    return {o.name for o in result.failures()}


def outcome(result: quality.SuiteResult, name: str) -> quality.Outcome:
    (found,) = [o for o in result.outcomes if o.name == name]
    return found


_MONTH_FILE = re.compile(r"\b(raw|clean)\.((?:sirene_\w+|etablissements_perimetre)__\d{4}_\d{2})\b")


def sql(settings, statement: str, params: dict | None = None) -> list[tuple]:
    """Run a statement; a month it alters is first copied into a table of its name.

    SIRENE and perimeter months are views over the month's Parquet file: to simulate a faulty
    month, the tests tamper with a copy, which the suites then read under the same name.
    """
    with warehouse.connect(settings.warehouse) as con:
        if re.match(r"\s*(insert|update|delete|alter)\b", statement, re.I):
            for schema, name in set(_MONTH_FILE.findall(statement)):
                kind = con.execute(
                    "select table_type from information_schema.tables "
                    "where table_schema = ? and table_name = ?",
                    [schema, name],
                ).fetchone()
                if kind and kind[0] == "VIEW":
                    con.execute(f"create table {schema}._copie as select * from {schema}.{name}")
                    con.execute(f"drop view {schema}.{name}")
                    con.execute(f"alter table {schema}._copie rename to {name}")
        return con.execute(statement, params or {}).fetchall()


def test_a_clean_month_passes_every_suite_and_is_recorded(run_month, settings):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    results = [check(settings, suite) for suite in quality.SUITES]
    for result in results:
        assert result.success, result.summary_fr()
        assert result.failures() == [], result.summary_fr()
        # no wave or list in this month's inbox: their suites pass on empty tables
        assert result.rows > 0 or result.suite in quality.SOURCE_SUITES
    volume = outcome(results[2], "volume")
    assert volume.success and volume.observed == {"note": quality.NO_REFERENCE}
    assert sql(
        settings,
        "select suite, lignes, succes from quality.volumes "
        "where suite like '%sirene%' or suite like '%perimetre' order by suite",
    ) == [
        ("clean.etablissements_perimetre", len(ets), True),
        ("clean.sirene_etablissements", len(ets), True),
        ("clean.sirene_unites_legales", len(uls), True),
        ("raw.sirene_etablissements", len(ets), True),
        ("raw.sirene_unites_legales", len(uls), True),
    ]
    recorded = sql(
        settings,
        "select suite, count(*), bool_and(succes) from quality.resultats group by all",
    )
    assert {s: (n, ok) for s, n, ok in recorded} == {
        r.suite: (len(r.outcomes), True) for r in results
    }


def test_rerun_replaces_the_months_verdicts(run_month, settings):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    first = check(settings, "clean.sirene_unites_legales")
    check(settings, "clean.sirene_unites_legales")
    where = {"suite": "clean.sirene_unites_legales", "mois": MOIS}
    ((n,),) = sql(
        settings,
        "select count(*) from quality.resultats where suite = $suite and mois = $mois",
        where,
    )
    assert n == len(first.outcomes)
    assert sql(
        settings,
        "select count(*) from quality.volumes where suite = $suite and mois = $mois",
        where,
    ) == [(1,)]


def test_duplicate_siret_is_named_and_only_diffusible_identifiers_are_sampled(run_month, settings):
    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "sirene_etablissements", MOIS)
    visible, hidden = siret_for(ids["scop"]), siret_for(ids["hidden"])
    sql(
        settings,
        f"insert into {table} select * from {table} where siret in (?, ?)",
        [visible, hidden],
    )

    result = check(settings, "clean.sirene_etablissements")

    assert not result.success
    assert failed(result) == {"siret_unique"}
    dup = outcome(result, "siret_unique")
    assert dup.blocking and dup.column == "siret"
    assert dup.observed["observed_value"] == 4  # both copies of both units are counted
    assert dup.sample == [{"siret": visible}, {"siret": visible}]
    assert hidden not in str(result.outcomes)  # a P unit is counted, never listed
    assert "siret unique dans le mois" in result.summary_fr()
    assert "mois refusé" in result.summary_fr()
    assert sql(
        settings,
        "select succes from quality.resultats where suite = ? and controle = 'siret_unique'",
        ["clean.sirene_etablissements"],
    ) == [(False,)]


def test_commune_outside_the_cog_is_named_with_its_siret(run_month, settings):
    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "sirene_etablissements", MOIS)
    target = siret_for(ids["asso"], 2)
    sql(settings, f"update {table} set code_commune = '99999' where siret = ?", [target])
    # a foreign establishment has no commune: allowed
    sql(
        settings,
        f"update {table} set code_commune = null where siret = ?",
        [siret_for(ids["scop"])],
    )

    result = check(settings, "clean.sirene_etablissements")

    assert failed(result) == {"commune_cog"}
    assert outcome(result, "commune_cog").sample == [{"siret": target, "code_commune": "99999"}]


def test_samples_never_carry_names_or_addresses(run_month, settings):
    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "sirene_etablissements", MOIS)
    # break every row-level rule at once on a diffusible establishment
    sql(
        settings,
        f"update {table} set siret = left(siret, 13), code_commune = '99999', "
        "activite_principale = 'XX', tranche_effectifs = '77', etat_administratif = 'X', "
        "date_creation = date '2027-01-01' where siren = ?",
        [ids["asso"]],
    )
    result = check(settings, "clean.sirene_etablissements")
    assert {
        "siret_format",
        "commune_cog",
        "activite_principale_forme",
        "tranche_effectifs",
        "etat_administratif_valeurs",
        "date_creation_passee",
    } <= failed(result)
    samples = [row for o in result.failures() for row in o.sample]
    assert samples, "failed checks should show their rows"
    assert all(set(row) <= quality.SAMPLE_KEYS for row in samples)
    assert not {k for row in samples for k in row} & FORBIDDEN
    assert any(row.get("siret", "").startswith(ids["asso"]) for row in samples)


def test_wrong_column_set_and_wrong_types_are_caught(run_month, settings):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    raw = warehouse.month_table("raw", "sirene_etablissements", MOIS)
    sql(settings, f"alter table {raw} drop column statut_diffusion")
    sql(settings, f"alter table {raw} add column nouvelle_colonne integer")
    clean = warehouse.month_table("clean", "sirene_unites_legales", MOIS)
    sql(settings, f"alter table {clean} alter column annee_effectifs type varchar")

    raw_result = check(settings, "raw.sirene_etablissements")
    clean_result = check(settings, "clean.sirene_unites_legales")

    assert failed(raw_result) == {"colonnes"}
    assert failed(clean_result) == {"types"}
    assert outcome(clean_result, "types").sample == [
        {"colonne": "annee_effectifs", "type_attendu": "INTEGER", "type_observe": "VARCHAR"}
    ]


def test_too_many_quarantined_rows_fail_the_clean_suite(run_month, settings):
    uls, ets, ids = stock(MOIS)
    # malformed commune codes: quarantined by cleaning
    ets += [etab_row(ids["asso"], n, codeCommuneEtablissement="9X999") for n in (20, 21)]
    run_month(MOIS, uls, ets)

    strict = check(settings, "clean.sirene_etablissements", max_reject_rate=0.02)
    lenient = check(settings, "clean.sirene_etablissements", max_reject_rate=0.5)

    assert failed(strict) == {"taux_quarantaine"}
    assert outcome(strict, "taux_quarantaine").sample == [{"rejets": 2, "lignes": len(ets) - 2}]
    assert lenient.success


def test_too_many_malformed_records_fail_the_raw_suite(settings):
    uls, ets, _ = stock(MOIS)
    folder = Path(settings.data_dir) / "sirene" / MOIS
    et_path, _ = write_stock(folder, uls, ets)
    lines = et_path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, lines[2] + ",colonne_en_trop")
    et_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refresh.refresh(settings, MOIS, run_id="malformed")

    result = check(settings, "raw.sirene_etablissements", max_reject_rate=0.02)

    assert failed(result) == {"lignes_mal_formees"}
    ((rejets, enregistrements),) = [
        tuple(r.values()) for r in outcome(result, "lignes_mal_formees").sample
    ]
    assert rejets == 1 and enregistrements == len(ets) + 1  # the extra record is a record too
    assert check(settings, "raw.sirene_unites_legales").success


def test_row_count_is_judged_against_the_last_validated_month(run_month, settings):
    for mois in ("2026-09", "2026-10"):
        uls, ets, _ = stock(mois, n_etablissements=10)
        run_month(mois, uls, ets)
        assert all(check(settings, s, mois).success for s in quality.SUITES)
    uls, ets, _ = stock(MOIS, n_etablissements=5)  # half of October's establishments
    run_month(MOIS, uls, ets)

    for suite in ("raw.sirene_etablissements", "clean.sirene_etablissements"):
        result = check(settings, suite)
        assert failed(result) == {"volume"}, suite
        volume = outcome(result, "volume")
        assert volume.observed["observed_value"] == 5
        assert "2026-10 : 10 lignes" in volume.description
    assert check(settings, "clean.sirene_unites_legales").success  # same legal units

    # a refused month is never the reference: December is still compared with October
    uls, ets, _ = stock("2026-12", n_etablissements=5)
    run_month("2026-12", uls, ets)
    december = check(settings, "clean.sirene_etablissements", "2026-12")
    assert failed(december) == {"volume"}
    assert "2026-10 : 10 lignes" in outcome(december, "volume").description


def stamp_stock(settings, mois: str, when: str) -> None:
    """Give the month's raw rows the treatment date of another stock, as a stale file would."""
    for kind in ("etablissements", "unites_legales"):
        table = warehouse.month_table("raw", f"sirene_{kind}", mois)
        # the raw layer holds the date as read: an unreadable stamp is NULL
        date = when[:10] if when[:1].isdigit() else None
        sql(settings, f"update {table} set date_dernier_traitement = ?", [date])


def test_a_stock_two_years_older_than_its_partition_is_refused(run_month, settings, monkeypatch):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    stamp_stock(settings, MOIS, "2024-10-31T21:30:00")
    # a territory of thousands of rows: a stale date refuses the month
    monkeypatch.setattr(quality.sirene_suites, "STOCK_DATE_MIN_ROWS", 1)

    for suite in ("raw.sirene_etablissements", "raw.sirene_unites_legales"):
        result = check(settings, suite)
        assert failed(result) == {"date_du_stock"}, suite
        assert not result.success, suite
        assert outcome(result, "date_du_stock").sample == [
            {
                "date_traitement_max": "2024-10-31",
                "debut_attendu": "2026-10-01",
                "fin_attendue": "2026-11-30",
            }
        ]


def test_stale_date_only_warns_on_a_territory_of_a_few_rows(run_month, settings):
    """Over a few hundred rows a quiet month is possible: the check warns, the month passes."""
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    stamp_stock(settings, MOIS, "2024-10-31T21:30:00")
    result = check(settings, "raw.sirene_etablissements")
    assert failed(result) == {"date_du_stock"}
    assert not outcome(result, "date_du_stock").blocking
    assert "informatif" in outcome(result, "date_du_stock").description
    assert result.success


def test_stock_date_window_bounds(run_month, settings):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    for when, ok in [
        (treated(MOIS, day_before=31), True),  # 1 October: start of the window
        (f"{MOIS}-30T08:00:00", True),  # extracted late in the month itself
        (treated(MOIS, day_before=32), False),  # 30 September: the stock of the month before
        ("2026-12-01T00:10:00", False),  # after the partition month
        ("[ND]", False),  # no readable date at all
    ]:
        stamp_stock(settings, MOIS, when)
        result = check(settings, "raw.sirene_etablissements")
        assert outcome(result, "date_du_stock").success is ok, when


def test_perimeter_faults_are_each_named(run_month, settings):
    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "etablissements_perimetre", MOIS)
    lost, odd, orphan = (siret_for(ids["asso"], n) for n in (1, 2, 3))
    sql(settings, f"delete from {table} where siret = ?", [lost])
    sql(settings, f"update {table} set regle = 'regle_inventee' where siret = ?", [odd])
    sql(settings, f"update {table} set famille_ess = null where siret = ?", [orphan])

    result = check(settings, "clean.etablissements_perimetre")

    assert failed(result) == {"aucun_etablissement_perdu", "regle_connue", "famille_ess"}
    assert outcome(result, "aucun_etablissement_perdu").observed["observed_value"] == len(ets) - 1
    assert outcome(result, "regle_connue").sample == [{"regle": "regle_inventee"}]
    assert outcome(result, "famille_ess").sample == [
        {"siret": orphan, "regle": "categorie_juridique"}
    ]


def test_missing_legal_units_only_warn(run_month, settings):
    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "etablissements_perimetre", MOIS)
    sql(
        settings,
        f"update {table} set regle = 'unite_legale_absente', ess = false, famille_ess = null "
        "where siren = ?",
        [ids["scop"]],
    )
    result = check(settings, "clean.etablissements_perimetre")
    assert failed(result) == {"unites_legales_presentes"}
    assert not outcome(result, "unites_legales_presentes").blocking
    assert result.success
    assert "alertes informatives" in result.summary_fr()


def test_data_docs_show_the_validation(run_month, settings, tmp_path):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    docs = tmp_path / "qualite"
    result = check(settings, "clean.sirene_etablissements", docs_dir=docs)
    check(settings, "raw.sirene_unites_legales", docs_dir=docs)

    assert result.docs_index == (docs / "index.html").resolve()
    index = result.docs_index.read_text(encoding="utf-8")
    assert "clean.sirene_etablissements" in index
    assert "raw.sirene_unites_legales" in index  # the index lists every validation kept
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2
    page = next(p for p in pages if "sirene_etablissements" in str(p)).read_text(encoding="utf-8")
    assert "siret unique dans le mois" in page


def test_perimeter_rules_are_those_the_sql_can_write():
    text = (warehouse.sql_dir() / "clean" / "etablissements_perimetre.sql").read_text()
    case = re.search(r"case\s+when not ul_presente.*?end as regle", text, re.S)
    assert case is not None
    assert set(re.findall(r"(?:then|else) '(\w+)'", case.group(0))) == set(quality.PERIMETER_RULES)


def test_unknown_suite_or_month_is_refused(run_month, settings):
    uls, ets, _ = stock(MOIS)
    run_month(MOIS, uls, ets)
    with pytest.raises(ValueError, match="suite inconnue"):
        check(settings, "clean.autre_table")
    with pytest.raises(LookupError, match="2026-10"):
        check(settings, "clean.sirene_etablissements", "2026-10")


def test_establishment_of_a_p_legal_unit_is_masked_everywhere(run_month, settings, tmp_path):
    """Diffusible establishment, legal unit `P`: its SIRET (which holds the SIREN) is never
    listed, neither in the samples nor in the Data Docs."""
    uls, ets, ids = stock(MOIS)
    shy = new_siren()
    uls.append(
        ul_row(shy, statutDiffusionUniteLegale="P", dateDernierTraitementUniteLegale=treated(MOIS))
    )
    ets.append(etab_row(shy, dateDernierTraitementEtablissement=treated(MOIS)))
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "sirene_etablissements", MOIS)
    sql(settings, f"insert into {table} select * from {table} where siren = ?", [shy])

    docs = tmp_path / "qualite"
    result = check(settings, "clean.sirene_etablissements", docs_dir=docs)

    dup = outcome(result, "siret_unique")
    assert dup.observed["observed_value"] == 2
    assert dup.sample == []  # counted (2 rows), never listed, not even masked
    assert shy not in str(result.outcomes)
    written = "".join(p.read_text(errors="ignore") for p in docs.rglob("*") if p.is_file())
    assert shy not in written


def test_a_month_refused_by_any_suite_cannot_be_published(run_month, settings):
    from observatoire.publication import publish

    uls, ets, ids = stock(MOIS)
    run_month(MOIS, uls, ets)
    table = warehouse.month_table("clean", "sirene_etablissements", MOIS)
    sql(settings, f"insert into {table} select * from {table} where siren = ?", [ids["scop"]])
    check(settings, "clean.sirene_etablissements")  # refused now
    with warehouse.connect(settings.warehouse) as con:
        assert quality.month_problems(con, MOIS) == ["clean.sirene_etablissements : refusé"]
        with pytest.raises(publish.UnverifiedMonthError, match="refusé"):
            publish.publish(con, settings.publication_dir, MOIS, "apres-refus")
        assert quality.month_problems(con, "2026-12") == [
            f"{s} : non contrôlé" for s in quality.SUITES
        ]
