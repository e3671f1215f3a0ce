"""Raw SIRENE text rows into typed, checked rows, with Polars; bad rows go to quarantine.

The rules are pure functions over Polars frames so they can be tested row by row; `clean_month`
streams a month of the raw layer through them in batches, so that national files are cleaned
in bounded memory. A row is rejected for the first rule it breaks, with the column, the value
and the reason (`motif`); nothing is dropped without a trace.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import polars as pl

from observatoire.core import warehouse
from observatoire.core.errors import RejectRateError
from observatoire.core.identifiers import luhn_valid_expr, normalise_expr, siret_valid_expr
from observatoire.core.mois import month_end
from observatoire.sources.sirene import RAW_COLUMNS, RAW_TABLES

MARKED_NOT_DIFFUSED = "[ND]"

REJECT_SCHEMA = {
    "mois": pl.String,
    "fichier_source": pl.String,
    "identifiant": pl.String,
    "colonne": pl.String,
    "valeur": pl.String,
    "motif": pl.String,
}


# Shapes of well-formed codes. A code of the right shape that our reference does not know is
# kept and reported (nomenclature drift: INSEE's register carries fifty years of codes); only a
# value that cannot be a code at all is quarantined.
COMMUNE_SHAPE = r"^(?:[0-9]{5}|2[AB][0-9]{3})$"
CJ_SHAPE = r"^[0-9]{4}$"
TRANCHE_SHAPE = r"^(?:NN|[0-9]{2})$"
# any activity code of INSEE's successive nomenclatures (NAP 4 digits, NAF 1993/rév. 1 `52.4Z`,
# NAF rév. 2 `94.99Z`, NAF 2025 `94.99Y`), with or without the dot
ACTIVITY_SHAPE = r"^[0-9]{2}\.?[0-9]{1,2}[0-9A-Z]?$"
NAF_REV2 = "NAFRev2"
# INSEE had not named the value when the stock first carried NAF 2025 as its main code:
# both spellings are read as NAF 2025
NAF_2025 = ("NAF2025", "NAF25")
OLD_ACTIVITY_NOMENCLATURES = ("NAFRev1", "NAF1993", "NAP", "NAPv2")

# Statuses of a code in the drift table (clean.codes_hors_nomenclature)
KNOWN_REMOVED = "supprime"  # in the reference, removed from INSEE's current list
UNKNOWN = "inconnu"  # well formed, in no list we have
FORMER_COMMUNE = "commune_ancienne"  # attributed to today's commune
UNKNOWN_ELSEWHERE = "inconnu_hors_territoire"  # unknown commune outside the territory
OLD_NOMENCLATURE = "nomenclature_ancienne"  # NAF rév. 1, NAF 1993, NAP: not checked

DRIFT_SCHEMA = {
    "colonne": pl.String,
    "code": pl.String,
    "statut": pl.String,
    "code_attribue": pl.String,
    "lignes": pl.Int64,
}


@dataclass(frozen=True)
class Nomenclatures:
    """Reference code lists the rules check against, loaded once per run."""

    communes: frozenset[str]
    naf_rev2: frozenset[str]
    naf_sections: dict[str, str]  # NAF rév. 2 division -> section
    tranches: dict[str, tuple[int | None, int | None]]
    categories_juridiques: frozenset[str]
    # legal categories INSEE removed from its list but that real units still carry
    categories_supprimees: frozenset[str] = frozenset()
    former_communes: dict[str, str] = field(default_factory=dict)  # former code -> today's
    naf_2025: frozenset[str] = frozenset()
    # NAF 2025 code -> (NAF rév. 2 division, section) when all its rév. 2 antecedents agree
    naf_2025_rev2: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # two-character prefixes of the territory's départements (None: not placed)
    departements: frozenset[str] | None = None

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection) -> Nomenclatures:

        def col(sql: str) -> list:
            return [r[0] for r in con.execute(sql).fetchall()]

        removed = frozenset(col("select code_n3 from ref.categories_juridiques_n3 where supprime"))
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
            categories_juridiques=frozenset(col("select code_n3 from ref.categories_juridiques_n3"))
            - removed,
            categories_supprimees=removed,
            former_communes=dict(
                con.execute(
                    "select code_commune_ancienne, code_commune_actuelle "
                    "from ref.cog_communes_anciennes"
                ).fetchall()
            ),
            naf_2025=frozenset(col("select code_naf2025 from ref.naf_2025_niveaux")),
            naf_2025_rev2={
                r[0]: (r[1], r[2])
                for r in con.execute(
                    "select c.code_naf2025, "
                    "case when count(distinct s.code_division) = 1 "
                    "then any_value(s.code_division) end, any_value(s.code_section) "
                    "from ref.naf_rev2_naf_2025 as c "
                    "join ref.naf_rev2_sous_classes as s on s.code_sous_classe = c.code_naf_rev2 "
                    "group by c.code_naf2025 having count(distinct s.code_section) = 1"
                ).fetchall()
            },
            # two characters are enough to place a code: overseas départements share « 97 »;
            # a warehouse cleaned without a territory (the SIAE fixture) places no code
            departements=frozenset(
                col("select distinct left(code_commune, 2) from ref.territoire_communes")
            )
            if warehouse.table_exists(con, "ref", "territoire_communes")
            else None,
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


def _shape_rule(column: str, expr: pl.Expr, shape: str, reason: str) -> tuple[str, pl.Expr, str]:
    return (column, expr.is_not_null() & ~expr.str.contains(shape), reason)


def _treatment_rules(name: str, last_day: dt.date) -> list[tuple[str, pl.Expr, str]]:
    """`dateDernierTraitement*` is a timestamp (AAAA-MM-JJTHH:MM:SS), unlike the other dates."""
    raw = pl.col(name)
    parsed = raw.str.slice(0, 19).str.strptime(pl.Datetime, "%Y-%m-%dT%H:%M:%S", strict=False)
    return [
        (
            name,
            raw.is_not_null() & (parsed.is_null() | (raw.str.len_chars() < 19)),
            "date de dernier traitement invalide (AAAA-MM-JJTHH:MM:SS attendu)",
        ),
        (name, parsed.dt.date() > pl.lit(last_day), "date postérieure au mois du stock"),
    ]


def _year_rule(name: str, last_day: dt.date) -> tuple[str, pl.Expr, str]:
    raw = pl.col(name)
    return (
        name,
        raw.is_not_null()
        & (~raw.str.contains(r"^[0-9]{4}$") | (raw.cast(pl.Int32, strict=False) > last_day.year)),
        "année invalide (AAAA, au plus l'année du stock)",
    )


def _activity_status(code: pl.Expr, nomenclature: pl.Expr, n: Nomenclatures) -> pl.Expr:
    """Drift status of a main activity code, read in the nomenclature the row says it uses."""
    return (
        pl.when(code.is_null())
        .then(None)
        .when(nomenclature == NAF_REV2)
        .then(pl.when(code.is_in(list(n.naf_rev2))).then(None).otherwise(pl.lit(UNKNOWN)))
        .when(nomenclature.is_in(NAF_2025))
        .then(pl.when(code.is_in(list(n.naf_2025))).then(None).otherwise(pl.lit(UNKNOWN)))
        .when(nomenclature.is_in(OLD_ACTIVITY_NOMENCLATURES))
        .then(pl.lit(OLD_NOMENCLATURE))
        .otherwise(pl.lit(UNKNOWN))
    )


def _nomenclature_status(nomenclature: pl.Expr) -> pl.Expr:
    known = [NAF_REV2, *NAF_2025, *OLD_ACTIVITY_NOMENCLATURES]
    return (
        pl.when(nomenclature.is_null() | nomenclature.is_in(known))
        .then(None)
        .otherwise(pl.lit(UNKNOWN))
    )


def _naf25_status(code: pl.Expr, n: Nomenclatures) -> pl.Expr:
    return (
        pl.when(code.is_null() | code.is_in(list(n.naf_2025))).then(None).otherwise(pl.lit(UNKNOWN))
    )


def _known_tranche(code: pl.Expr, n: Nomenclatures) -> pl.Expr:
    """The band when the reference knows it; an unknown one leaves the band unknown (null)."""
    return pl.when(code.is_in(list(n.tranches))).then(code).otherwise(None)


def _tranche_status(code: pl.Expr, n: Nomenclatures) -> pl.Expr:
    return (
        pl.when(code.is_null() | code.is_in(list(n.tranches))).then(None).otherwise(pl.lit(UNKNOWN))
    )


def _drift(
    kept: pl.DataFrame, specs: list[tuple[str, pl.Expr, pl.Expr, pl.Expr | None]]
) -> pl.DataFrame:
    """Rows per (column, code, status) among the rows kept: the month's nomenclature drift.

    Counted on kept rows only: a quarantined row is already reported with its reason.
    """
    parts = [
        kept.select(
            pl.lit(column).alias("colonne"),
            code.alias("code"),
            status.alias("statut"),
            (attributed if attributed is not None else pl.lit(None, dtype=pl.String)).alias(
                "code_attribue"
            ),
        )
        .filter(pl.col("statut").is_not_null())
        .group_by("colonne", "code", "statut", "code_attribue")
        .len("lignes")
        for column, code, status, attributed in specs
    ]
    empty = pl.DataFrame(schema=DRIFT_SCHEMA)
    return pl.concat([empty, *(p.cast(DRIFT_SCHEMA) for p in parts)])  # type: ignore[arg-type]


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


def clean_etablissements(
    raw: pl.DataFrame,
    mois: str,
    nomenclatures: Nomenclatures,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Type and check establishment rows; return (clean rows, rejected rows, drift counts).

    A code of the right shape that the reference does not know keeps its row: a former commune
    is attributed to today's commune, an unknown one to none; an unknown activity or headcount
    band is left unclassified. Each is counted in the drift frame. Copies of one SIRET are
    settled once the whole month is cleaned (`_settle_duplicates`).
    """
    n = nomenclatures
    last_day = month_end(mois)
    raw = _prepare(raw, ("dateCreationEtablissement", "dateDebut"))
    commune = pl.col("codeCommuneEtablissement")
    in_territory_deps = (
        commune.str.slice(0, 2).is_in(list(n.departements))
        if n.departements is not None
        else pl.lit(True)
    )
    # membership of 35,000 codes tested once per row, not once per use
    known = pl.col("_commune_connue")
    df = raw.with_columns(_commune_connue=commune.is_in(list(n.communes))).with_columns(
        _siren=normalise_expr(pl.col("siren"), 9),
        _nic=normalise_expr(pl.col("nic"), 5),
        _siret=normalise_expr(pl.col("siret"), 14),
        _commune=pl.when(known)
        .then(commune)
        .otherwise(commune.replace_strict(n.former_communes, default=None, return_dtype=pl.String)),
        _commune_statut=pl.when(commune.is_null() | known)
        .then(None)
        .when(commune.is_in(list(n.former_communes)))
        .then(pl.lit(FORMER_COMMUNE))
        .when(in_territory_deps)
        .then(pl.lit(UNKNOWN))
        .otherwise(pl.lit(UNKNOWN_ELSEWHERE)),
        _tranche_fichier=pl.col("trancheEffectifsEtablissement"),
        _naf=pl.col("activitePrincipaleEtablissement"),
        _nomenclature=pl.col("nomenclatureActivitePrincipaleEtablissement"),
        _naf25_colonne=pl.col("activitePrincipaleNAF25Etablissement"),
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
        _shape_rule(
            "codeCommuneEtablissement",
            commune,
            COMMUNE_SHAPE,
            "code commune mal formé (5 caractères attendus)",
        ),
        _shape_rule(
            "trancheEffectifsEtablissement",
            pl.col("_tranche_fichier"),
            TRANCHE_SHAPE,
            "tranche d'effectifs mal formée (NN ou 2 chiffres attendus)",
        ),
        (
            "etatAdministratifEtablissement",
            ~pl.col("_etat").is_in(["A", "F"]).fill_null(False),
            "état administratif absent ou inconnu (A ou F attendu)",
        ),
        _shape_rule(
            "activitePrincipaleEtablissement",
            pl.col("_naf"),
            ACTIVITY_SHAPE,
            "code d'activité mal formé",
        ),
        *_date_rules("dateCreationEtablissement", last_day),
        *_date_rules("dateDebut", last_day),
        *_treatment_rules("dateDernierTraitementEtablissement", last_day),
        _year_rule("anneeEffectifsEtablissement", last_day),
    ]
    kept, rejects = _first_failure(df, rules, "siret")
    is_2025 = pl.col("_nomenclature").is_in(NAF_2025)
    kept = kept.with_columns(
        _tranche=_known_tranche(pl.col("_tranche_fichier"), n),
        # the NAF 2025 code of the row: its main code once INSEE switched it, else the column
        # the stock carries beside NAF rév. 2
        _naf2025=pl.when(is_2025).then(pl.col("_naf")).otherwise(pl.col("_naf25_colonne")),
    )
    drift = _drift(
        kept,
        [
            (
                "codeCommuneEtablissement",
                pl.col("codeCommuneEtablissement"),
                pl.col("_commune_statut"),
                pl.col("_commune"),
            ),
            (
                "trancheEffectifsEtablissement",
                pl.col("_tranche_fichier"),
                _tranche_status(pl.col("_tranche_fichier"), n),
                None,
            ),
            (
                "activitePrincipaleEtablissement",
                pl.col("_naf"),
                _activity_status(pl.col("_naf"), pl.col("_nomenclature"), n),
                None,
            ),
            (
                "nomenclatureActivitePrincipaleEtablissement",
                pl.col("_nomenclature"),
                _nomenclature_status(pl.col("_nomenclature")),
                None,
            ),
            (
                "activitePrincipaleNAF25Etablissement",
                pl.col("_naf25_colonne"),
                _naf25_status(pl.col("_naf25_colonne"), n),
                None,
            ),
        ],
    )
    bounds = pl.DataFrame(
        {
            "_tranche": list(n.tranches),
            "effectif_min": [b[0] for b in n.tranches.values()],
            "effectif_max": [b[1] for b in n.tranches.values()],
        },
        schema={"_tranche": pl.String, "effectif_min": pl.Int32, "effectif_max": pl.Int32},
    )
    sections = pl.DataFrame(
        {
            "_division_rev2": list(n.naf_sections),
            "_section_rev2": list(n.naf_sections.values()),
        },
        schema={"_division_rev2": pl.String, "_section_rev2": pl.String},
    )
    from_2025 = pl.DataFrame(
        {
            "_naf2025": list(n.naf_2025_rev2),
            "_division_2025": [v[0] for v in n.naf_2025_rev2.values()],
            "_section_2025": [v[1] for v in n.naf_2025_rev2.values()],
        },
        schema={"_naf2025": pl.String, "_division_2025": pl.String, "_section_2025": pl.String},
    )
    is_rev2 = pl.col("_nomenclature") == NAF_REV2
    clean = (
        kept.with_columns(
            _division_rev2=pl.when(is_rev2).then(pl.col("_naf").str.slice(0, 2)).otherwise(None)
        )
        .join(bounds, on="_tranche", how="left")
        .join(sections, on="_division_rev2", how="left")
        .join(from_2025, on="_naf2025", how="left")
        # sections are published in NAF rév. 2: a row known only in NAF 2025 takes the rév. 2
        # section of its code when every rév. 2 antecedent of that code lies in one section
        .with_columns(
            _division=pl.when(is_rev2)
            .then(pl.col("_division_rev2"))
            .otherwise(pl.col("_division_2025")),
            _section=pl.when(is_rev2)
            .then(pl.col("_section_rev2"))
            .otherwise(pl.col("_section_2025")),
        )
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
            pl.col("_section").alias("naf_section"),
            pl.col("caractereEmployeurEtablissement").alias("caractere_employeur"),
            pl.col("_naf2025").alias("activite_principale_naf25"),
            pl.col("fichier_source"),
        )
    )
    return clean, rejects.cast(REJECT_SCHEMA), drift  # type: ignore[arg-type]


def clean_unites_legales(
    raw: pl.DataFrame,
    mois: str,
    nomenclatures: Nomenclatures,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Type and check legal-unit rows; natural persons' names are not carried over at all.

    A legal category INSEE removed from its list (5720, 5498, 1100–1900…) or one no list knows
    keeps its unit: the perimeter classifies it with what can be known, and the drift frame
    counts it. Only an absent or malformed category is quarantined.
    """
    n = nomenclatures
    last_day = month_end(mois)
    raw = _prepare(raw, ("dateCreationUniteLegale", "dateDebut"))
    df = raw.with_columns(
        _siren=normalise_expr(pl.col("siren"), 9),
        # INSEE's Parquet stores the category as a number: restore its 4 characters
        _cj=pl.col("categorieJuridiqueUniteLegale").str.zfill(4),
        _tranche_fichier=pl.col("trancheEffectifsUniteLegale"),
        _etat=pl.col("etatAdministratifUniteLegale"),
    )
    rules: list[tuple[str, pl.Expr, str]] = [
        ("siren", pl.col("_siren").is_null(), "siren absent ou mal formé (9 chiffres attendus)"),
        ("siren", ~luhn_valid_expr(pl.col("_siren"), 9), "siren invalide (clé de Luhn)"),
        (
            "categorieJuridiqueUniteLegale",
            ~pl.col("_cj").str.contains(CJ_SHAPE).fill_null(False),
            "catégorie juridique absente ou mal formée (4 chiffres attendus)",
        ),
        _shape_rule(
            "trancheEffectifsUniteLegale",
            pl.col("_tranche_fichier"),
            TRANCHE_SHAPE,
            "tranche d'effectifs mal formée (NN ou 2 chiffres attendus)",
        ),
        (
            "etatAdministratifUniteLegale",
            ~pl.col("_etat").is_in(["A", "C"]).fill_null(False),
            "état administratif absent ou inconnu (A ou C attendu)",
        ),
        *_date_rules("dateCreationUniteLegale", last_day),
        *_date_rules("dateDebut", last_day),
        *_treatment_rules("dateDernierTraitementUniteLegale", last_day),
        _year_rule("anneeEffectifsUniteLegale", last_day),
    ]
    kept, rejects = _first_failure(df, rules, "siren")
    nomenclature = pl.col("nomenclatureActivitePrincipaleUniteLegale")
    activity = pl.col("activitePrincipaleUniteLegale")
    naf25 = pl.col("activitePrincipaleNAF25UniteLegale")
    drift = _drift(
        kept,
        [
            (
                "categorieJuridiqueUniteLegale",
                pl.col("_cj"),
                pl.when(pl.col("_cj").is_in(list(n.categories_juridiques)))
                .then(None)
                .when(pl.col("_cj").is_in(list(n.categories_supprimees)))
                .then(pl.lit(KNOWN_REMOVED))
                .otherwise(pl.lit(UNKNOWN)),
                None,
            ),
            (
                "trancheEffectifsUniteLegale",
                pl.col("_tranche_fichier"),
                _tranche_status(pl.col("_tranche_fichier"), n),
                None,
            ),
            (
                "activitePrincipaleUniteLegale",
                activity,
                _activity_status(activity, nomenclature, n),
                None,
            ),
            (
                "nomenclatureActivitePrincipaleUniteLegale",
                nomenclature,
                _nomenclature_status(nomenclature),
                None,
            ),
            ("activitePrincipaleNAF25UniteLegale", naf25, _naf25_status(naf25, n), None),
        ],
    )
    # 1000 and the former codes 1100–1900: every niveau I « 1 » is a natural person
    natural_person = pl.col("_cj").str.starts_with("1")
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
        activity.alias("activite_principale"),
        nomenclature.alias("nomenclature_activite"),
        pl.col("_etat").alias("etat_administratif"),
        pl.col("economieSocialeSolidaireUniteLegale").alias("economie_sociale_solidaire"),
        pl.col("societeMissionUniteLegale").alias("societe_mission"),
        pl.col("caractereEmployeurUniteLegale").alias("caractere_employeur"),
        _known_tranche(pl.col("_tranche_fichier"), n).alias("tranche_effectifs"),
        pl.col("anneeEffectifsUniteLegale").cast(pl.Int32, strict=False).alias("annee_effectifs"),
        pl.col("categorieEntreprise").alias("categorie_entreprise"),
        normalise_expr(pl.col("nicSiegeUniteLegale"), 5).alias("nic_siege"),
        _date("dateDebut").alias("date_debut"),
        pl.when(nomenclature.is_in(NAF_2025))
        .then(activity)
        .otherwise(naf25)
        .alias("activite_principale_naf25"),
        pl.col("fichier_source"),
    )
    return clean, rejects.cast(REJECT_SCHEMA), drift  # type: ignore[arg-type]


CLEANERS = {"etablissements": clean_etablissements, "unites_legales": clean_unites_legales}


@dataclass
class CleanResult:
    kind: str
    rows_in: int
    rows_clean: int
    rows_rejected: int
    rejects_by_reason: dict[str, int]
    # (column, code, status, attributed code, rows) of codes outside the nomenclatures
    drift: list[tuple[str, str, str, str | None, int]] = field(default_factory=list)

    def drift_summary(self) -> dict[str, dict[str, int]]:
        """Rows per column and status, for logs and Dagster metadata."""
        out: dict[str, dict[str, int]] = {}
        for column, _, status, _, rows in self.drift:
            out.setdefault(column, {}).setdefault(status, 0)
            out[column][status] += rows
        return out

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


DRIFT_TABLE = "clean.codes_hors_nomenclature"


def _settle_duplicates(
    con: duckdb.DuckDBPyConnection, build: str, rejects: str, id_col: str
) -> dict[str, int]:
    """Copies of one identifier among the month's valid rows: keep one, or none.

    Identical copies are one record written twice: the first (in file order) is kept. Copies
    that differ are two versions with no telling which is right: every version is quarantined.
    Settled on the whole cleaned month, after the other rules, so that copies in different
    batches are compared and a broken copy (already quarantined for its own reason) cannot take
    a valid one down.
    """
    columns = [
        r[0]
        for r in con.execute(f"select * from {build} limit 0").description or []
        if r[0] not in ("mois", "fichier_source")
    ]
    content = ", ".join(f'"{c}"' for c in columns)
    conflict = (
        f"{id_col} en double dans le fichier avec des versions différentes "
        "(toutes les versions en quarantaine)"
    )
    identical = f"{id_col} en double dans le fichier (copie identique : une seule gardée)"
    # rows are hashed only for the (few) duplicated identifiers: nationally the month has 42 M
    con.execute(
        "create or replace temp table _doubles as select "
        f"{id_col} as id, count(distinct hash({content})) > 1 as conflit, min(rowid) as premier "
        f"from {build} where {id_col} in (select {id_col} from {build} group by {id_col} "
        f"having count(*) > 1) group by {id_col}"
    )
    con.execute(
        f"create or replace temp table _ecartes as select b.rowid as r, b.mois, b.fichier_source, "
        f"b.{id_col} as id, case when d.conflit then $conflict else $identical end as motif "
        f"from {build} as b join _doubles as d on d.id = b.{id_col} "
        "where d.conflit or b.rowid <> d.premier",
        {"conflict": conflict, "identical": identical},
    )
    con.execute(
        f"insert into {rejects} (mois, fichier_source, identifiant, colonne, valeur, motif) "
        f"select mois, fichier_source, id, '{id_col}', id, motif from _ecartes order by r"
    )
    con.execute(f"delete from {build} where rowid in (select r from _ecartes)")
    counts = dict(con.execute("select motif, count(*) from _ecartes group by motif").fetchall())
    con.execute("drop table _doubles")
    con.execute("drop table _ecartes")
    return counts


def record_drift(con: duckdb.DuckDBPyConnection, kind: str, mois: str, drift: pl.DataFrame) -> None:
    """Replace the month's drift rows of one file, and date each code's first sighting.

    `premier_mois` is recomputed over every month kept, so re-running an earlier month moves it
    back; the gate warns on codes first seen in the month it checks.
    """
    con.execute(
        f"create table if not exists {DRIFT_TABLE} (mois varchar, type_fichier varchar, "
        "colonne varchar, code varchar, statut varchar, code_attribue varchar, lignes bigint, "
        "premier_mois varchar)"
    )
    con.execute(
        f"delete from {DRIFT_TABLE} where mois = $mois and type_fichier = $kind",
        {"mois": mois, "kind": kind},
    )
    frame = drift.with_columns(mois=pl.lit(mois), type_fichier=pl.lit(kind))
    con.register("_derive", frame.to_arrow())
    try:
        con.execute(
            f"insert into {DRIFT_TABLE} select mois, type_fichier, colonne, code, statut, "
            "code_attribue, lignes, null from _derive"
        )
    finally:
        con.unregister("_derive")
    con.execute(
        f"update {DRIFT_TABLE} as d set premier_mois = f.premier from (select type_fichier, "
        f"colonne, code, min(mois) as premier from {DRIFT_TABLE} group by all) as f "
        "where f.type_fichier = d.type_fichier and f.colonne = d.colonne "
        "and f.code is not distinct from d.code"
    )


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
    rows_in = rows_clean = 0
    reasons: dict[str, int] = {}
    drifts: list[pl.DataFrame] = []
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
            clean_df, rejects_df, drift_df = cleaner(df, mois, nomenclatures)
            drifts.append(drift_df)
            rows_in += df.height
            rows_clean += clean_df.height
            for reason, n in rejects_df.group_by("motif").len().iter_rows():
                reasons[reason] = reasons.get(reason, 0) + n
            _append(con, build, clean_df)
            _append(con, build_rejects, rejects_df)
        for reason, n in _settle_duplicates(con, build, build_rejects, id_col).items():
            reasons[reason] = reasons.get(reason, 0) + n
            rows_clean -= n
        drift = (
            pl.concat(drifts)
            .group_by("colonne", "code", "statut", "code_attribue")
            .agg(pl.col("lignes").sum())
            .sort("colonne", "lignes", "code", descending=[False, True, False])
        )
        result = CleanResult(
            kind, rows_in, rows_clean, rows_in - rows_clean, reasons, list(drift.iter_rows())
        )
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
            record_drift(con, kind, mois, drift)

        warehouse.swap_month(con, "clean", table, mois, also=replace_rejects)
    except BaseException:
        con.execute(f"drop table if exists {build}")
        raise
    finally:
        con.execute(f"drop table if exists {build_rejects}")
    return result
