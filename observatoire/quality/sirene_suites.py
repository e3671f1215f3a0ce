"""The suites of the SIRENE layers: raw stock files, clean tables, the ESS perimeter.

Each validates one partition month of one table, with the checks the builder turns into
expectations; the runner (`gx`) runs them. `STOCK_DATE_MIN_ROWS` is defined here only: the
stock-date check reads it, and so does `observatoire.steps` (which refuses a stale stock before
the legal units are read), both as `sirene_suites.STOCK_DATE_MIN_ROWS`.
"""

from __future__ import annotations

import duckdb

from observatoire.cleaning.sirene import raw_view_columns
from observatoire.core import warehouse
from observatoire.core.mois import stock_window
from observatoire.quality.builder import Builder, literal_date, masked, pct
from observatoire.sources.sirene import RAW_TABLES

SIRENE_SUITES: tuple[str, ...] = (
    "raw.sirene_etablissements",
    "raw.sirene_unites_legales",
    "clean.sirene_etablissements",
    "clean.sirene_unites_legales",
    "clean.etablissements_perimetre",
)

# Rules `sql/clean/etablissements_perimetre.sql` can write in `regle` (a test keeps them in step).
PERIMETER_RULES: tuple[str, ...] = (
    "unite_legale_absente",
    "personne_physique",
    "naf_exclu",
    "categorie_juridique",
    "personne_publique",
    "indicateur_ess_insee",
    "hors_perimetre",
)

# Column types of the clean tables as `observatoire/cleaning/sirene.py` writes them: a change
# there must be a deliberate change here, since indicators and exports rely on these types.
CLEAN_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "sirene_etablissements": (
        ("mois", "VARCHAR"),
        ("siret", "VARCHAR"),
        ("siren", "VARCHAR"),
        ("nic", "VARCHAR"),
        ("statut_diffusion", "VARCHAR"),
        ("date_creation", "DATE"),
        ("tranche_effectifs", "VARCHAR"),
        ("effectif_min", "INTEGER"),
        ("effectif_max", "INTEGER"),
        ("annee_effectifs", "INTEGER"),
        ("etablissement_siege", "BOOLEAN"),
        ("numero_voie", "VARCHAR"),
        ("indice_repetition", "VARCHAR"),
        ("type_voie", "VARCHAR"),
        ("libelle_voie", "VARCHAR"),
        ("code_postal", "VARCHAR"),
        ("libelle_commune", "VARCHAR"),
        ("code_commune", "VARCHAR"),
        ("code_pays_etranger", "VARCHAR"),
        ("x_lambert93", "DOUBLE"),
        ("y_lambert93", "DOUBLE"),
        ("date_debut", "DATE"),
        ("etat_administratif", "VARCHAR"),
        ("enseigne", "VARCHAR"),
        ("denomination_usuelle", "VARCHAR"),
        ("activite_principale", "VARCHAR"),
        ("nomenclature_activite", "VARCHAR"),
        ("naf_division", "VARCHAR"),
        ("naf_section", "VARCHAR"),
        ("caractere_employeur", "VARCHAR"),
        ("activite_principale_naf25", "VARCHAR"),
        ("fichier_source", "VARCHAR"),
    ),
    "sirene_unites_legales": (
        ("mois", "VARCHAR"),
        ("siren", "VARCHAR"),
        ("statut_diffusion", "VARCHAR"),
        ("date_creation", "DATE"),
        ("denomination", "VARCHAR"),
        ("sigle", "VARCHAR"),
        ("identifiant_association", "VARCHAR"),
        ("categorie_juridique", "VARCHAR"),
        ("activite_principale", "VARCHAR"),
        ("nomenclature_activite", "VARCHAR"),
        ("etat_administratif", "VARCHAR"),
        ("economie_sociale_solidaire", "VARCHAR"),
        ("societe_mission", "VARCHAR"),
        ("caractere_employeur", "VARCHAR"),
        ("tranche_effectifs", "VARCHAR"),
        ("annee_effectifs", "INTEGER"),
        ("categorie_entreprise", "VARCHAR"),
        ("nic_siege", "VARCHAR"),
        ("date_debut", "DATE"),
        ("activite_principale_naf25", "VARCHAR"),
        ("fichier_source", "VARCHAR"),
    ),
}

# below this many rows of the territory, the stock-date check warns instead of blocking
STOCK_DATE_MIN_ROWS = 5_000


def _reference_volume(
    con: duckdb.DuckDBPyConnection, suite: str, mois: str
) -> tuple[str, int] | None:
    if not warehouse.table_exists(con, "quality", "volumes"):
        return None
    # the last month accepted as a whole: a month refused by any suite never becomes a reference,
    # even for the suites it passed
    row = con.execute(
        "select v.mois, v.lignes from quality.volumes as v where v.suite = $suite "
        "and v.mois < $mois and v.succes and not exists (select 1 from quality.volumes as w "
        "where w.mois = v.mois and not w.succes) order by v.mois desc limit 1",
        {"suite": suite, "mois": mois},
    ).fetchone()
    return (row[0], int(row[1])) if row else None


def _raw_checks(
    b: Builder, con: duckdb.DuckDBPyConnection, kind: str, mois: str, rate: float
) -> None:
    # the raw layer is the records read for the territory, each with its verdict: the file
    # itself is not copied (cleaning/sirene.py, `_raw_select`)
    b.columns(raw_view_columns(kind))
    b.not_empty()
    b.month(mois)
    # INSEE extracts the stock of month M at the very end of M-1 or at the start of M
    start, end = stock_window(mois)
    stamp = "date_dernier_traitement"
    # The latest treatment date is read on the territory's rows. Over thousands of rows INSEE
    # always treats some in the month before the stock; over a few hundred a quiet month is
    # possible, so there a stale date only warns instead of refusing the month.
    (rows,) = con.execute(
        f"select count(*) from {warehouse.month_table('raw', RAW_TABLES[kind], mois)}"
    ).fetchone()  # type: ignore[misc]
    decisive = rows >= STOCK_DATE_MIN_ROWS
    b.sql(
        "date_du_stock",
        f"dernier traitement INSEE du stock entre le {start:%d/%m/%Y} et le {end:%d/%m/%Y} "
        "(stock du mois, pas un fichier ancien)"
        + ("" if decisive else f" — informatif : moins de {STOCK_DATE_MIN_ROWS} lignes"),
        stamp,
        f"select date_traitement_max, {literal_date(start)} as debut_attendu, "
        f"{literal_date(end)} as fin_attendue from (select max({stamp}) "
        "as date_traitement_max from {batch}) "
        f"where date_traitement_max is null or date_traitement_max < {literal_date(start)} "
        f"or date_traitement_max > {literal_date(end)}",
        blocking=decisive,
    )
    # Damaged records cannot be placed in the territory: the share is taken over the records of
    # the whole file, as counted apart from the parser (raw.sirene_lectures); a warehouse read
    # before that count existed falls back on its line count, else on what was read. One
    # quarantine row is one damaged record, however many lines the file gave it.
    file_records = "null"
    if warehouse.table_exists(con, "raw", "sirene_lectures"):
        (counted,) = con.execute(
            "select count(*) from information_schema.columns where table_schema = 'raw' "
            "and table_name = 'sirene_lectures' and column_name = 'enregistrements_fichier'"
        ).fetchone()  # type: ignore[misc]
        records = (
            "coalesce(enregistrements_fichier, lignes_fichier)" if counted else "lignes_fichier"
        )
        file_records = (
            f"(select max({records}) from raw.sirene_lectures "
            f"where mois = '{mois}' and type_fichier = '{kind}')"
        )
    b.sql(
        "lignes_mal_formees",
        f"part des enregistrements mal formés du fichier au plus {pct(rate)}",
        None,
        "select rejets, coalesce(fichier, lus + rejets) as enregistrements from (select "
        "(select count(*) from raw.sirene_rejets_lecture "
        f"where mois = '{mois}' and type_fichier = '{kind}') as rejets, "
        f"{file_records} as fichier, (select count(*) from {{batch}}) as lus) "
        f"where rejets > {rate!r} * coalesce(fichier, lus + rejets)",
    )


def _identified_rows(
    b: Builder, table: str, identifier: str, width: int, mois: str, diffusible: str
) -> None:
    """What every clean SIRENE table must hold: its shape, its month, one valid id per row."""
    b.columns([c for c, _ in CLEAN_TYPES[table]])
    b.types(list(CLEAN_TYPES[table]))
    b.not_empty()
    b.month(mois)
    b.add(
        f"{identifier}_renseigne",
        f"{identifier} renseigné",
        identifier,
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column=identifier),
    )
    b.unique(identifier, diffusible)
    b.digits(identifier, width, diffusible)


def _clean_etablissements(
    b: Builder, mois: str, rate: float, rejects: str | None, units: str | None
) -> None:
    # listed only when the establishment AND its legal unit are diffusible, as in the directory;
    # before the month's legal units are cleaned, nothing is listed at all
    diffusible = (
        "statut_diffusion = 'O' and siren in "
        f"(select siren from {units} where statut_diffusion = 'O')"
        if units
        else "false"
    )
    _identified_rows(b, "sirene_etablissements", "siret", 14, mois, diffusible)
    b.digits("siren", 9, diffusible)
    b.sql(
        "siret_commence_par_siren",
        "le siret commence par le siren de l'unité légale",
        "siret",
        f"select {masked('siret', diffusible)}, {masked('siren', diffusible)} "
        "from {batch} where left(siret, 9) is distinct from siren",
        failing="left(siret, 9) is distinct from siren",
    )
    b.in_reference(
        "commune_cog",
        "commune attribuée connue du COG (vide permis : établissement à l'étranger, commune "
        "inconnue ; une ancienne commune est attribuée à la commune actuelle)",
        "code_commune",
        "ref.communes.code_commune",
        "siret",
        diffusible,
    )
    b.sql(
        "activite_principale_forme",
        "activité principale bien formée (un code de n'importe quelle nomenclature INSEE ; "
        "inconnu, il est gardé et compté dans clean.codes_hors_nomenclature)",
        "activite_principale",
        f"select {masked('siret', diffusible)}, activite_principale from {{batch}} "
        "where activite_principale is not null and not regexp_full_match(activite_principale, "
        "'[0-9][0-9][.]?[0-9][0-9]?[0-9A-Z]?')",
        failing="activite_principale is not null and not regexp_full_match("
        "activite_principale, '[0-9][0-9][.]?[0-9][0-9]?[0-9A-Z]?')",
    )
    b.in_reference(
        "tranche_effectifs",
        "tranche d'effectifs connue ou vide",
        "tranche_effectifs",
        "ref.tranches_effectifs.code",
        "siret",
        diffusible,
    )
    b.codes("etat_administratif", ("A", "F"), "siret", diffusible)
    b.codes("statut_diffusion", ("O", "P"), "siret", diffusible)
    b.created_before(mois, "siret", diffusible)
    b.quarantine(rejects, mois, rate)


def _clean_unites_legales(b: Builder, mois: str, rate: float, rejects: str | None) -> None:
    diffusible = "statut_diffusion = 'O'"
    _identified_rows(b, "sirene_unites_legales", "siren", 9, mois, diffusible)
    b.sql(
        "categorie_juridique",
        "catégorie juridique renseignée, de 4 chiffres (un code supprimé ou inconnu de la "
        "nomenclature est gardé et compté dans clean.codes_hors_nomenclature)",
        "categorie_juridique",
        f"select {masked('siren', diffusible)}, categorie_juridique from {{batch}} "
        "where categorie_juridique is null "
        "or not regexp_full_match(categorie_juridique, '[0-9][0-9][0-9][0-9]')",
        failing="categorie_juridique is null "
        "or not regexp_full_match(categorie_juridique, '[0-9][0-9][0-9][0-9]')",
    )
    b.in_reference(
        "tranche_effectifs",
        "tranche d'effectifs connue ou vide",
        "tranche_effectifs",
        "ref.tranches_effectifs.code",
        "siren",
        diffusible,
    )
    b.codes("etat_administratif", ("A", "C"), "siren", diffusible)
    b.codes("statut_diffusion", ("O", "P"), "siren", diffusible)
    b.created_before(mois, "siren", diffusible)
    b.quarantine(rejects, mois, rate)


def _drift_shares(
    con: duckdb.DuckDBPyConnection, kind: str, mois: str, rows: int
) -> dict[str, float]:
    """Share of the month's rows per column whose code no list knows (status `inconnu`)."""
    if not rows or not warehouse.table_exists(con, "clean", "codes_hors_nomenclature"):
        return {}
    found = con.execute(
        "select colonne, sum(lignes) from clean.codes_hors_nomenclature "
        "where mois = $mois and type_fichier = $kind and statut = 'inconnu' group by colonne",
        {"mois": mois, "kind": kind},
    ).fetchall()
    return {column: int(n) / rows for column, n in found}


def _drift_checks(
    b: Builder,
    con: duckdb.DuckDBPyConnection,
    kind: str,
    mois: str,
    limits: tuple[float, float],
) -> None:
    """Nomenclature drift warns; only a jump in a column's unknown share blocks.

    A fifty-year register always carries codes today's lists do not know, and INSEE adds codes
    between two releases of its lists: a new unknown code is worth a look, not a refusal. A
    column whose unknown share jumps is another matter (a shifted column, a wrong file): against
    the last month every suite accepted, the share may rise by `limits[1]` at most; with no
    such month, it may not exceed `limits[0]`.
    """
    share_max, jump_max = limits
    table = RAW_TABLES[kind]
    month = warehouse.month_table("clean", table, mois)
    (rows,) = con.execute(f"select count(*) from {month}").fetchone()  # type: ignore[misc]
    shares = _drift_shares(con, kind, mois, int(rows))
    reference = _reference_volume(con, f"clean.{table}", mois)
    ref_shares: dict[str, float] = {}
    if reference is not None:
        ref_shares = _drift_shares(con, kind, reference[0], reference[1])
    too_high = []
    for column, share in sorted(shares.items()):
        allowed = ref_shares.get(column, 0.0) + jump_max if reference else share_max
        if share > allowed:
            too_high.append((column, share, allowed))
    values = (
        ", ".join(f"('{c}', {share!r}, {allowed!r})" for c, share, allowed in too_high)
        or "(null, null, null)"
    )
    base = (
        f"le mois précédent validé ({reference[0]}) + {pct(jump_max)}"
        if reference
        else f"{pct(share_max)} (aucun mois précédent validé)"
    )
    b.sql(
        "part_codes_inconnus",
        "part des lignes dont un code est inconnu de toute nomenclature, par colonne, au plus "
        + base,
        None,
        f"select colonne, part, part_max from (values {values}) as t(colonne, part, part_max) "
        "where colonne is not null",
    )
    b.sql(
        "nouveaux_codes_inconnus",
        "informatif : codes inconnus de toute nomenclature vus pour la première fois ce mois "
        "(clean.codes_hors_nomenclature)",
        None,
        "select colonne, code, lignes from clean.codes_hors_nomenclature "
        f"where mois = '{mois}' and type_fichier = '{kind}' and statut = 'inconnu' "
        f"and premier_mois = '{mois}'"
        if warehouse.table_exists(con, "clean", "codes_hors_nomenclature")
        else "select 1 as colonne where false",
        blocking=False,
    )


def _perimetre(b: Builder, con: duckdb.DuckDBPyConnection, mois: str) -> None:
    diffusible = "diffusible"
    b.month(mois)
    b.add(
        "siret_renseigne",
        "siret renseigné",
        "siret",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="siret"),
    )
    b.unique("siret", diffusible)
    b.sql(
        "regle_renseignee",
        "chaque établissement porte la règle qui l'a classé",
        "regle",
        f"select {masked('siret', diffusible)} from {{batch}} where regle is null",
    )
    b.add(
        "regle_connue",
        "règle parmi celles de sql/clean/etablissements_perimetre.sql",
        "regle",
        b.gx.expectations.ExpectColumnValuesToBeInSet(
            column="regle", value_set=list(PERIMETER_RULES)
        ),
    )
    b.sql(
        "famille_ess",
        "tout établissement de l'ESS a une famille",
        "famille_ess",
        f"select {masked('siret', diffusible)}, regle from {{batch}} "
        "where ess and famille_ess is null",
    )
    clean = warehouse.month_table("clean", "sirene_etablissements", mois)
    if warehouse.table_exists(con, "clean", clean.split(".", 1)[1]):
        (n_clean,) = con.execute(f"select count(*) from {clean}").fetchone()  # type: ignore[misc]
        b.add(
            "aucun_etablissement_perdu",
            f"autant de lignes que d'établissements nettoyés du mois ({n_clean})",
            None,
            b.gx.expectations.ExpectTableRowCountToEqual(value=int(n_clean)),
        )
    else:
        b.sql(
            "aucun_etablissement_perdu",
            "autant de lignes que d'établissements nettoyés du mois (table absente)",
            None,
            "select count(*) as lignes from {batch}",
        )
    b.sql(
        "unites_legales_presentes",
        "informatif : moins de 1 % d'établissements sans unité légale dans le stock du mois "
        "(au-delà, le fichier des unités légales est peut-être incomplet)",
        None,
        "select absents as rejets, lignes from (select count(*) filter "
        "(where regle = 'unite_legale_absente') as absents, count(*) as lignes from {batch}) "
        "where absents > 0.01 * lignes",
        blocking=False,
    )


def add_checks(
    b: Builder,
    con: duckdb.DuckDBPyConnection,
    suite: str,
    mois: str,
    rate: float,
    *,
    count_band: tuple[float, float],
    drift_limits: tuple[float, float],
) -> None:
    """The checks of SIRENE suite `suite` for month `mois`, in the order they are reported."""
    schema, table = suite.split(".")
    if schema == "raw":
        kind = next(k for k, t in RAW_TABLES.items() if t == table)
        _raw_checks(b, con, kind, mois, rate)
    elif table == "etablissements_perimetre":
        _perimetre(b, con, mois)
    else:
        rejects = (
            f"clean.{table}_rejets"
            if warehouse.table_exists(con, "clean", f"{table}_rejets")
            else None
        )
        if table == "sirene_etablissements":
            units = warehouse.month_table("clean", "sirene_unites_legales", mois)
            present = warehouse.table_exists(con, "clean", units.split(".", 1)[1])
            _clean_etablissements(b, mois, rate, rejects, units if present else None)
        else:
            _clean_unites_legales(b, mois, rate, rejects)
        kind = next(k for k, t in RAW_TABLES.items() if t == table)
        _drift_checks(b, con, kind, mois, drift_limits)
    if table != "etablissements_perimetre":
        b.volume(_reference_volume(con, suite, mois), count_band)
