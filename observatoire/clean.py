"""Raw SIRENE text rows into typed, checked rows, with Polars; bad rows go to quarantine.

The rules are pure functions over Polars frames so they can be tested row by row; `clean_month`
streams a month of the raw layer through them in batches, so that national files are cleaned
in bounded memory. A row is rejected for the first rule it breaks, with the column, the value
and the reason (`motif`); nothing is dropped without a trace.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from observatoire.identifiers import luhn_valid_expr, normalise_expr, siret_valid_expr

MARKED_NOT_DIFFUSED = "[ND]"

REJECT_SCHEMA = {
    "mois": pl.String,
    "fichier_source": pl.String,
    "identifiant": pl.String,
    "colonne": pl.String,
    "valeur": pl.String,
    "motif": pl.String,
}


@dataclass(frozen=True)
class Nomenclatures:
    """Reference code lists the rules check against, loaded once per run."""

    communes: frozenset[str]
    naf_rev2: frozenset[str]
    naf_sections: dict[str, str]  # NAF division -> section
    tranches: dict[str, tuple[int | None, int | None]]
    categories_juridiques: frozenset[str]

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection) -> Nomenclatures:
        def col(sql: str) -> list:
            return [r[0] for r in con.execute(sql).fetchall()]

        return cls(
            communes=frozenset(col("select code_commune from ref.communes")),
            naf_rev2=frozenset(col("select code_sous_classe from ref.naf_rev2_sous_classes")),
            naf_sections=dict(
                con.execute(
                    "select distinct code_division, code_section from ref.naf_rev2_sous_classes"
                ).fetchall()
            ),
            tranches={
                r[0]: (r[1], r[2])
                for r in con.execute(
                    "select code, effectif_min, effectif_max from ref.tranches_effectifs"
                ).fetchall()
            },
            categories_juridiques=frozenset(
                col("select code_n3 from ref.categories_juridiques_n3")
            ),
        )


def _prepare(raw: pl.DataFrame, dates: tuple[str, ...]) -> pl.DataFrame:
    """Trim every text column once, turn "" and INSEE's "[ND]" into null, parse the dates once.

    Done up front so that the rules and the output reuse the same columns: on national files
    every redundant pass over 42 M rows costs seconds.
    """
    text_cols = [c for c, t in raw.schema.items() if t == pl.String]
    trimmed = [pl.col(c).str.strip_chars() for c in text_cols]
    df = raw.with_columns(trimmed).with_columns(
        pl.when(pl.col(c).is_in(["", MARKED_NOT_DIFFUSED])).then(None).otherwise(pl.col(c)).alias(c)
        for c in text_cols
    )
    return df.with_columns(
        pl.col(c).str.strptime(pl.Date, "%Y-%m-%d", strict=False).alias(f"_date_{c}") for c in dates
    )


def _date(name: str) -> pl.Expr:
    return pl.col(f"_date_{name}")


def _date_rules(name: str, last_day: dt.date) -> list[tuple[str, pl.Expr, str]]:
    raw = pl.col(name)
    parsed = _date(name)
    return [
        (name, raw.is_not_null() & parsed.is_null(), "date invalide (AAAA-MM-JJ attendu)"),
        (name, parsed > pl.lit(last_day), "date postérieure au mois du stock"),
    ]


def month_end(mois: str) -> dt.date:
    """Last day of the stock's month: no date in the stock can be later."""
    year, month = (int(x) for x in mois.split("-"))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


class DuplicateTracker:
    """Identifiers occurring more than once in a month's file, and those already met.

    Only the (few) duplicated identifiers are remembered across batches: remembering every
    SIRET of a national file would cost gigabytes.
    """

    def __init__(self, candidates: set[str]) -> None:
        self.candidates = candidates
        self.seen: set[str] = set()


def _duplicates(df: pl.DataFrame, col: str, tracker: DuplicateTracker | None) -> pl.Series:
    ids = df[col]
    within = ids.is_duplicated() & ~ids.is_first_distinct()
    if tracker is None:
        return within.fill_null(False)
    earlier = (
        ids.is_in(list(tracker.seen)) if tracker.seen else pl.repeat(False, len(ids), eager=True)
    )
    flagged = (within | earlier) & ids.is_in(list(tracker.candidates))
    tracker.seen.update(x for x in ids.filter(ids.is_in(list(tracker.candidates))).to_list())
    return flagged.fill_null(False)


def _first_failure(
    df: pl.DataFrame, rules: list[tuple[str, pl.Expr, str]], id_col: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into (kept, rejected); a rejected row names its first broken rule.

    Each rule is evaluated once; only the (few) rejected rows get their reason spelt out.
    """
    first = pl.coalesce(
        [
            pl.when(failed.fill_null(False)).then(pl.lit(i, dtype=pl.Int16))
            for i, (_, failed, _) in enumerate(rules)
        ]
    )
    marked = df.with_columns(_regle=first)
    kept = marked.filter(pl.col("_regle").is_null()).drop("_regle")
    reasons = {i: r for i, (_, _, r) in enumerate(rules)}
    columns = {i: c for i, (c, _, _) in enumerate(rules)}
    rejected = marked.filter(pl.col("_regle").is_not_null()).with_columns(
        _motif=pl.col("_regle").replace_strict(reasons, return_dtype=pl.String),
        _colonne=pl.col("_regle").replace_strict(columns, return_dtype=pl.String),
    )
    value = pl.lit(None, dtype=pl.String)
    for column, _, _ in rules:
        if column in df.columns:
            value = pl.when(pl.col("_colonne") == column).then(pl.col(column)).otherwise(value)
    rejects = rejected.select(
        pl.col("mois"),
        pl.col("fichier_source"),
        pl.col(id_col).alias("identifiant"),
        pl.col("_colonne").alias("colonne"),
        value.cast(pl.String).alias("valeur"),
        pl.col("_motif").alias("motif"),
    )
    return kept, rejects


def _deduplicate(
    kept: pl.DataFrame,
    rejects: pl.DataFrame,
    id_col: str,
    column: str,
    tracker: DuplicateTracker | None,
    reason: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Among rows that passed every other rule, keep the first copy of each identifier.

    Deduplicating after the other rules means a broken first copy cannot take a valid second
    copy down with it; "first" is the order of the file (the raw layer keeps it).
    """
    dup = _duplicates(kept, id_col, tracker)
    if not dup.any():
        return kept, rejects
    extra = kept.filter(dup).select(
        pl.col("mois"),
        pl.col("fichier_source"),
        pl.col(id_col).alias("identifiant"),
        pl.lit(column).alias("colonne"),
        pl.col(id_col).alias("valeur"),
        pl.lit(reason).alias("motif"),
    )
    return kept.filter(~dup), pl.concat([rejects, extra.cast(rejects.schema)])


def clean_etablissements(
    raw: pl.DataFrame,
    mois: str,
    nomenclatures: Nomenclatures,
    duplicates: DuplicateTracker | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type and check establishment rows; return (clean rows, rejected rows with motif).

    A later copy of a SIRET is rejected and the first kept, so that each establishment counts
    once; `duplicates` carries what earlier batches saw.
    """
    last_day = month_end(mois)
    tranche_codes = list(nomenclatures.tranches)
    raw = _prepare(raw, ("dateCreationEtablissement", "dateDebut"))
    df = raw.with_columns(
        _siren=normalise_expr(pl.col("siren"), 9),
        _nic=normalise_expr(pl.col("nic"), 5),
        _siret=normalise_expr(pl.col("siret"), 14),
        _commune=pl.col("codeCommuneEtablissement"),
        _tranche=pl.col("trancheEffectifsEtablissement"),
        _naf=pl.col("activitePrincipaleEtablissement"),
        _nomenclature=pl.col("nomenclatureActivitePrincipaleEtablissement"),
        _etat=pl.col("etatAdministratifEtablissement"),
    )
    rules: list[tuple[str, pl.Expr, str]] = [
        ("siren", pl.col("_siren").is_null(), "siren absent ou mal formé (9 chiffres attendus)"),
        ("siren", ~luhn_valid_expr(pl.col("_siren"), 9), "siren invalide (clé de Luhn)"),
        ("siret", pl.col("_siret").is_null(), "siret absent ou mal formé (14 chiffres attendus)"),
        (
            "siret",
            pl.col("_siret") != (pl.col("_siren") + pl.col("_nic").fill_null("")),
            "siret différent de siren + nic",
        ),
        ("siret", ~siret_valid_expr(pl.col("_siret")), "siret invalide (clé de Luhn)"),
        (
            "codeCommuneEtablissement",
            pl.col("_commune").is_not_null()
            & ~pl.col("_commune").is_in(list(nomenclatures.communes)),
            "commune inconnue du COG",
        ),
        (
            "trancheEffectifsEtablissement",
            pl.col("_tranche").is_not_null() & ~pl.col("_tranche").is_in(tranche_codes),
            "tranche d'effectifs inconnue",
        ),
        (
            "etatAdministratifEtablissement",
            ~pl.col("_etat").is_in(["A", "F"]).fill_null(False),
            "état administratif absent ou inconnu (A ou F attendu)",
        ),
        (
            "activitePrincipaleEtablissement",
            (pl.col("_nomenclature") == "NAFRev2")
            & pl.col("_naf").is_not_null()
            & ~pl.col("_naf").is_in(list(nomenclatures.naf_rev2)),
            "code NAF rév. 2 inconnu",
        ),
        *_date_rules("dateCreationEtablissement", last_day),
        *_date_rules("dateDebut", last_day),
    ]
    kept, rejects = _first_failure(df, rules, "siret")
    kept, rejects = _deduplicate(
        kept, rejects, "_siret", "siret", duplicates, "siret en double dans le fichier"
    )
    bounds = pl.DataFrame(
        {
            "_tranche": list(nomenclatures.tranches),
            "effectif_min": [b[0] for b in nomenclatures.tranches.values()],
            "effectif_max": [b[1] for b in nomenclatures.tranches.values()],
        },
        schema={"_tranche": pl.String, "effectif_min": pl.Int32, "effectif_max": pl.Int32},
    )
    sections = pl.DataFrame(
        {
            "_division": list(nomenclatures.naf_sections),
            "naf_section": list(nomenclatures.naf_sections.values()),
        },
        schema={"_division": pl.String, "naf_section": pl.String},
    )
    is_rev2 = pl.col("_nomenclature") == "NAFRev2"
    clean = (
        kept.with_columns(
            _division=pl.when(is_rev2).then(pl.col("_naf").str.slice(0, 2)).otherwise(None)
        )
        .join(bounds, on="_tranche", how="left")
        .join(sections, on="_division", how="left")
        .select(
            pl.col("mois"),
            pl.col("_siret").alias("siret"),
            pl.col("_siren").alias("siren"),
            pl.col("_nic").alias("nic"),
            pl.col("statutDiffusionEtablissement").alias("statut_diffusion"),
            _date("dateCreationEtablissement").alias("date_creation"),
            pl.col("_tranche").alias("tranche_effectifs"),
            pl.col("effectif_min"),
            pl.col("effectif_max"),
            pl.col("anneeEffectifsEtablissement")
            .cast(pl.Int32, strict=False)
            .alias("annee_effectifs"),
            (pl.col("etablissementSiege") == "true").alias("etablissement_siege"),
            pl.col("numeroVoieEtablissement").alias("numero_voie"),
            pl.col("indiceRepetitionEtablissement").alias("indice_repetition"),
            pl.col("typeVoieEtablissement").alias("type_voie"),
            pl.col("libelleVoieEtablissement").alias("libelle_voie"),
            pl.col("codePostalEtablissement").alias("code_postal"),
            pl.col("libelleCommuneEtablissement").alias("libelle_commune"),
            pl.col("_commune").alias("code_commune"),
            pl.col("codePaysEtrangerEtablissement").alias("code_pays_etranger"),
            pl.col("coordonneeLambertAbscisseEtablissement")
            .cast(pl.Float64, strict=False)
            .alias("x_lambert93"),
            pl.col("coordonneeLambertOrdonneeEtablissement")
            .cast(pl.Float64, strict=False)
            .alias("y_lambert93"),
            _date("dateDebut").alias("date_debut"),
            pl.col("_etat").alias("etat_administratif"),
            pl.col("enseigne1Etablissement").alias("enseigne"),
            pl.col("denominationUsuelleEtablissement").alias("denomination_usuelle"),
            pl.col("_naf").alias("activite_principale"),
            pl.col("_nomenclature").alias("nomenclature_activite"),
            pl.col("_division").alias("naf_division"),
            pl.col("naf_section"),
            pl.col("caractereEmployeurEtablissement").alias("caractere_employeur"),
            pl.col("activitePrincipaleNAF25Etablissement").alias("activite_principale_naf25"),
            pl.col("fichier_source"),
        )
    )
    return clean, rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def clean_unites_legales(
    raw: pl.DataFrame,
    mois: str,
    nomenclatures: Nomenclatures,
    duplicates: DuplicateTracker | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type and check legal-unit rows; natural persons' names are not carried over at all."""
    last_day = month_end(mois)
    tranche_codes = list(nomenclatures.tranches)
    raw = _prepare(raw, ("dateCreationUniteLegale", "dateDebut"))
    df = raw.with_columns(
        _siren=normalise_expr(pl.col("siren"), 9),
        # INSEE's Parquet stores the category as a number: restore its 4 characters
        _cj=pl.col("categorieJuridiqueUniteLegale").str.zfill(4),
        _tranche=pl.col("trancheEffectifsUniteLegale"),
        _etat=pl.col("etatAdministratifUniteLegale"),
    )
    rules: list[tuple[str, pl.Expr, str]] = [
        ("siren", pl.col("_siren").is_null(), "siren absent ou mal formé (9 chiffres attendus)"),
        ("siren", ~luhn_valid_expr(pl.col("_siren"), 9), "siren invalide (clé de Luhn)"),
        (
            "categorieJuridiqueUniteLegale",
            ~pl.col("_cj").is_in(list(nomenclatures.categories_juridiques)).fill_null(False),
            "catégorie juridique absente ou inconnue",
        ),
        (
            "trancheEffectifsUniteLegale",
            pl.col("_tranche").is_not_null() & ~pl.col("_tranche").is_in(tranche_codes),
            "tranche d'effectifs inconnue",
        ),
        (
            "etatAdministratifUniteLegale",
            ~pl.col("_etat").is_in(["A", "C"]).fill_null(False),
            "état administratif absent ou inconnu (A ou C attendu)",
        ),
        *_date_rules("dateCreationUniteLegale", last_day),
        *_date_rules("dateDebut", last_day),
    ]
    kept, rejects = _first_failure(df, rules, "siren")
    kept, rejects = _deduplicate(
        kept, rejects, "_siren", "siren", duplicates, "siren en double dans le fichier"
    )
    natural_person = pl.col("_cj") == "1000"
    clean = kept.select(
        pl.col("mois"),
        pl.col("_siren").alias("siren"),
        pl.col("statutDiffusionUniteLegale").alias("statut_diffusion"),
        _date("dateCreationUniteLegale").alias("date_creation"),
        pl.when(natural_person)
        .then(None)
        .otherwise(pl.col("denominationUniteLegale"))
        .alias("denomination"),
        pl.when(natural_person).then(None).otherwise(pl.col("sigleUniteLegale")).alias("sigle"),
        pl.col("identifiantAssociationUniteLegale").alias("identifiant_association"),
        pl.col("_cj").alias("categorie_juridique"),
        pl.col("activitePrincipaleUniteLegale").alias("activite_principale"),
        pl.col("nomenclatureActivitePrincipaleUniteLegale").alias("nomenclature_activite"),
        pl.col("_etat").alias("etat_administratif"),
        pl.col("economieSocialeSolidaireUniteLegale").alias("economie_sociale_solidaire"),
        pl.col("societeMissionUniteLegale").alias("societe_mission"),
        pl.col("caractereEmployeurUniteLegale").alias("caractere_employeur"),
        pl.col("_tranche").alias("tranche_effectifs"),
        pl.col("anneeEffectifsUniteLegale").cast(pl.Int32, strict=False).alias("annee_effectifs"),
        pl.col("categorieEntreprise").alias("categorie_entreprise"),
        normalise_expr(pl.col("nicSiegeUniteLegale"), 5).alias("nic_siege"),
        _date("dateDebut").alias("date_debut"),
        pl.col("activitePrincipaleNAF25UniteLegale").alias("activite_principale_naf25"),
        pl.col("fichier_source"),
    )
    return clean, rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]


CLEANERS = {"etablissements": clean_etablissements, "unites_legales": clean_unites_legales}


@dataclass
class CleanResult:
    kind: str
    rows_in: int
    rows_clean: int
    rows_rejected: int
    rejects_by_reason: dict[str, int]

    @property
    def reject_rate(self) -> float:
        return self.rows_rejected / self.rows_in if self.rows_in else 0.0


def _append(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append a batch to a build table, creating it from the first batch's schema."""
    con.register("_batch", frame.to_arrow())
    try:
        con.execute(f"create table if not exists {table} as select * from _batch limit 0")
        con.execute(f"insert into {table} by name select * from _batch")
    finally:
        con.unregister("_batch")


class RejectRateError(RuntimeError):
    """Too many rows rejected: the file is probably not what we think it is."""


def clean_month(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    mois: str,
    *,
    batch_rows: int = 500_000,
    max_reject_rate: float | None = None,
) -> CleanResult:
    """Replace month `mois` of `clean.sirene_<kind>` and its `_rejets` rows.

    Batches are committed one by one into a build table, then the month is swapped in with its
    rejects in one short transaction. With `max_reject_rate`, a month rejecting more rows than
    that is never swapped in: the previous clean month stays in place and nothing downstream
    sees the bad file.
    """
    from observatoire import warehouse
    from observatoire.sirene import RAW_COLUMNS, RAW_TABLES

    table = RAW_TABLES[kind]
    source = warehouse.month_table("raw", table, mois)
    nomenclatures = Nomenclatures.from_warehouse(con)
    cleaner = CLEANERS[kind]
    cols = ", ".join(f'"{c}"' for c in ("mois", *RAW_COLUMNS[kind], "fichier_source"))
    if not warehouse.table_exists(con, "raw", source.split(".", 1)[1]):
        raise LookupError(f"{source} absente : le mois {mois} n'a pas été lu (étape raw)")
    # Batches are ranges of the month table's row ids, in file order: one bounded query at a
    # time (a streaming reader left open beside the writes was measured to hold the whole month
    # in memory).
    # bounds of the row ids, not the count: robust even if rows were ever deleted
    (n_raw,) = con.execute(f"select coalesce(max(rowid) + 1, 0) from {source}").fetchone()  # type: ignore[misc]
    id_col = "siret" if kind == "etablissements" else "siren"
    candidates = {
        r[0]
        for r in con.execute(
            f"select lpad(trim({id_col}), {14 if kind == 'etablissements' else 9}, '0') "
            f"from {source} group by all having count(*) > 1"
        ).fetchall()
    }
    tracker = DuplicateTracker(candidates)
    rows_in = rows_clean = 0
    reasons: dict[str, int] = {}
    build = warehouse.start_build(con, "clean", table, mois)
    build_rejects = f"{build}_rejets"
    con.execute(f"drop table if exists {build_rejects}")
    try:
        for start in range(0, max(n_raw, 1), batch_rows):
            # an empty month still goes through the cleaner once, for well-formed empty tables
            df = con.execute(
                f"select {cols} from {source} where rowid >= $start and rowid < $end "
                "order by rowid",
                {"start": start, "end": start + batch_rows},
            ).pl()
            clean_df, rejects_df = cleaner(df, mois, nomenclatures, tracker)
            rows_in += df.height
            rows_clean += clean_df.height
            for reason, n in rejects_df.group_by("motif").len().iter_rows():
                reasons[reason] = reasons.get(reason, 0) + n
            _append(con, build, clean_df)
            _append(con, build_rejects, rejects_df)
        result = CleanResult(kind, rows_in, rows_clean, rows_in - rows_clean, reasons)
        if max_reject_rate is not None and result.reject_rate > max_reject_rate:
            raise RejectRateError(
                f"{kind} {mois} : {result.rows_rejected} lignes rejetées sur {result.rows_in} "
                f"({result.reject_rate:.1%}, seuil {max_reject_rate:.1%}) ; motifs : "
                f"{result.rejects_by_reason} — mois précédent conservé"
            )

        def replace_rejects() -> None:
            con.execute(
                f"create table if not exists clean.{table}_rejets as "
                f"select * from {build_rejects} limit 0"
            )
            con.execute(f"delete from clean.{table}_rejets where mois = $mois", {"mois": mois})
            con.execute(f"insert into clean.{table}_rejets by name select * from {build_rejects}")

        warehouse.swap_month(con, "clean", table, mois, also=replace_rejects)
    except BaseException:
        con.execute(f"drop table if exists {build}")
        raise
    finally:
        con.execute(f"drop table if exists {build_rejects}")
    return result
