"""Probabilistic matching of names and addresses with splink, with fixed parameters.

Records that no identifier linked are compared with the establishments of their commune (or
postal code) that share a blocking key with them. The probabilistic step uses splink 5 on
DuckDB with fixed, documented parameters (see NAME_LEVELS, ADDRESS_LEVELS, PLACE_LEVELS and
PRIOR_MATCH) rather than EM: a month brings a few hundred records, too few for EM to converge
to the same values twice, and a score that moves while nothing changed would move links in and
out of the published counts. Fixed values make every run deterministic and every score
explainable level by level. What a score decides (link, review, nothing) is `link`'s call.

`build_candidates` reads the work tables `link` fills (`_lk_rec`, `_lk_etab`, `_lk_out`) with
the macros of `normalisation`; splink itself runs on a private in-memory DuckDB.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

# Prior of splink's model: the probability that a random (record, establishment) pair of the
# territory is a match, about 1 / the number of establishments a record may be compared with.
PRIOR_MATCH = 1e-5

# Fixed m and u probabilities, per comparison level (see _splink_settings). EM is not used: with
# a few hundred records and blocked candidates it has little to learn from, it drifts towards
# whatever the blocking favours, and its result changes from month to month, so the same record
# would be linked one month and not the next. u from random sampling would be deterministic
# with a seed, but it measures agreement among random establishments of the whole territory,
# which the levels below already encode from the structure of the register (names are nearly
# unique within a territory; many establishments share a postal code). Fixed values keep
# scores explainable to the data team and identical from one run to the next.
NAME_LEVELS = (
    # label, m, u
    ("nom identique", 0.55, 0.00001),
    ("nom très proche (Jaro-Winkler >= 0,92 ou une ou deux fautes de frappe)", 0.20, 0.0001),
    ("mots de l'un contenus dans l'autre", 0.15, 0.0002),
    ("nom proche (Jaro-Winkler >= 0,80 ou moitié des mots en commun)", 0.07, 0.005),
    ("nom différent", 0.03, 0.99469),
)
ADDRESS_LEVELS = (
    ("même numéro et même voie", 0.60, 0.0005),
    ("même voie, autre numéro", 0.20, 0.01),
    ("adresse différente", 0.20, 0.9895),
)
PLACE_LEVELS = (
    ("même commune", 0.95, 0.02),
    ("même code postal", 0.04, 0.03),
    ("autre commune", 0.01, 0.95),
)

# Blocking: splink scores only pairs that share a commune (or a postal code) and a word of the
# name of three letters or more (`normalisation.MIN_BLOCKING_WORD`; splink's exploding rule on
# the name's words: "LA PETITE REPRISE" must meet "RESSOURCERIE LA PETITE REPRISE", which a
# first-word or prefix rule would miss), or a postal code, a street number and the street's
# longest word (a name typed differently at the right address). Every rule is an equality, so
# DuckDB joins by hash.
ADDRESS_BLOCKING_RULE = (
    "l.code_postal = r.code_postal and l.numero = r.numero and l.voie_long = r.voie_long"
)


def build_candidates(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, pa.Table]:
    """Records left and the establishments they could match, as splink's two inputs.

    An establishment has up to four names (the unit's denomination and acronym, the
    establishment's sign and usual name) and a record may use any of them: each name becomes
    its own candidate row, and the best-scoring row stands for the establishment. This keeps
    the comparisons plain string comparisons, which splink explains level by level.

    The blocking rules are applied here too, in the warehouse, so that only establishments
    sharing a key with some record leave it: splink then works on thousands of rows, not on
    the territory.
    """
    con.execute(
        """
        create or replace temp table _lk_left as
        select cast(rid as varchar) as unique_id, nom_norm as nom,
            string_split(nom_norm, ' ') as nom_mots, lk_mots_bloc(nom_norm) as nom_mots_bloc,
            numero, voie, lk_long(voie) as voie_long, code_commune, code_postal
        from _lk_rec
        where rid not in (select rid from _lk_out)
            and (nom_norm is not null or voie is not null)
            and (code_commune is not null or code_postal is not null)
        """
    )
    # names of the establishments of the records' communes, each raw name normalised once
    con.execute(
        """
        create or replace temp table _lk_noms as
        with e as (
            select siret, denomination, sigle, enseigne, denomination_usuelle from _lk_etab
            where code_commune in (select code_commune from _lk_left)
                or code_postal in (select code_postal from _lk_left)
        ),
        raw_names as (
            select siret, denomination as brut from e where denomination is not null
            union all select siret, sigle from e where sigle is not null
            union all select siret, enseigne from e where enseigne is not null
            union all select siret, denomination_usuelle from e
            where denomination_usuelle is not null
        ),
        normalised as (
            select brut, lk_nom(brut) as nom from (select distinct brut from raw_names)
        ),
        names as (
            select distinct r.siret, n.nom
            from raw_names as r join normalised as n using (brut)
            where n.nom is not null
        )
        select * from names
        union all
        -- no usable name: the address may still find it
        select siret, null from e anti join names using (siret)
        """
    )
    con.execute(
        """
        create or replace temp table _lk_cand_tous as
        with streets as (
            select libelle_voie, lk_voie(libelle_voie) as voie
            from (select distinct libelle_voie from _lk_etab)
        )
        select c.siret, c.nom, lk_mots_bloc(c.nom) as nom_mots_bloc,
            lk_numero(e.numero_voie) as numero, s.voie, lk_long(s.voie) as voie_long,
            e.code_commune, e.code_postal
        from _lk_noms as c
        join _lk_etab as e using (siret)
        left join streets as s on s.libelle_voie = e.libelle_voie
        """
    )
    # the blocking rules, applied here first: only candidates sharing a key with a record
    # leave the warehouse
    con.execute(
        """
        create or replace temp table _lk_cand as
        with words as (
            select siret, nom, code_commune, code_postal, unnest(nom_mots_bloc) as mot
            from _lk_cand_tous
        ),
        left_words as (
            select code_commune, code_postal, unnest(nom_mots_bloc) as mot from _lk_left
        ),
        kept as (
            select w.siret, w.nom from words as w
            semi join (select distinct code_commune, mot from left_words) as l
                on l.code_commune = w.code_commune and l.mot = w.mot
            union
            select w.siret, w.nom from words as w
            semi join (select distinct code_postal, mot from left_words) as l
                on l.code_postal = w.code_postal and l.mot = w.mot
            union
            select c.siret, c.nom from _lk_cand_tous as c
            semi join (select distinct code_postal, numero, voie_long from _lk_left) as l
                on l.code_postal = c.code_postal and l.numero = c.numero
                and l.voie_long = c.voie_long
        )
        select c.siret || '#' || row_number() over (order by c.siret, c.nom) as unique_id,
            c.nom, string_split(c.nom, ' ') as nom_mots, c.nom_mots_bloc,
            c.numero, c.voie, c.voie_long, c.code_commune, c.code_postal
        from _lk_cand_tous as c
        semi join kept as k on k.siret = c.siret and k.nom is not distinct from c.nom
        """
    )
    left = con.sql("select * from _lk_left order by unique_id").to_arrow_table()
    right = con.sql("select * from _lk_cand order by unique_id").to_arrow_table()
    return left, right


def _levels(
    null_sql: str, conditions: tuple[str, ...], params: tuple[tuple[str, float, float], ...]
) -> list[dict[str, Any]]:
    levels: list[dict[str, Any]] = [
        {"sql_condition": null_sql, "label_for_charts": "absent", "is_null_level": True}
    ]
    for condition, (label, m, u) in zip(conditions, params, strict=True):
        levels.append(
            {
                "sql_condition": condition,
                "label_for_charts": label,
                "m_probability": m,
                "u_probability": u,
            }
        )
    return levels


def _blocking_rules() -> list[Any]:
    """The same keys build_candidates filters on, for splink to generate the pairs."""
    from splink import block_on

    return [
        block_on("code_commune", "nom_mots_bloc", arrays_to_explode=["nom_mots_bloc"]),
        block_on("code_postal", "nom_mots_bloc", arrays_to_explode=["nom_mots_bloc"]),
        ADDRESS_BLOCKING_RULE,
    ]


def _splink_settings() -> dict[str, Any]:
    jw = "jaro_winkler_similarity(nom_l, nom_r)"
    typos = "damerau_levenshtein(nom_l, nom_r)"
    shared = "len(list_intersect(nom_mots_l, nom_mots_r))"
    union = "len(list_distinct(list_concat(nom_mots_l, nom_mots_r)))"
    name = _levels(
        "nom_l is null or nom_r is null",
        (
            "nom_l = nom_r",
            # one slip of the keyboard, or two in a long name (DuckDB's Jaro-Winkler gives
            # only 0.89 for "THETRE X" against "THEATRE X")
            f"{jw} >= 0.92 or {typos} <= 1 or ({typos} <= 2 and least(length(nom_l), "
            "length(nom_r)) >= 10)",
            "list_has_all(nom_mots_l, nom_mots_r) or list_has_all(nom_mots_r, nom_mots_l)",
            f"{jw} >= 0.80 or {shared} * 2 >= {union}",
            "ELSE",
        ),
        NAME_LEVELS,
    )
    same_street = "jaro_winkler_similarity(voie_l, voie_r) >= 0.92"
    address = _levels(
        "voie_l is null or voie_r is null",
        (
            f"coalesce(numero_l, '') = coalesce(numero_r, '') and {same_street}",
            same_street,
            "ELSE",
        ),
        ADDRESS_LEVELS,
    )
    place = _levels(
        "(code_commune_l is null or code_commune_r is null) "
        "and (code_postal_l is null or code_postal_r is null)",
        ("code_commune_l = code_commune_r", "code_postal_l = code_postal_r", "ELSE"),
        PLACE_LEVELS,
    )
    return {
        "link_type": "link_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": PRIOR_MATCH,
        "blocking_rules_to_generate_predictions": _blocking_rules(),
        "comparisons": [
            {"output_column_name": "nom", "comparison_levels": name},
            {"output_column_name": "adresse", "comparison_levels": address},
            {"output_column_name": "commune", "comparison_levels": place},
        ],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        # a fixed id: splink otherwise draws a random one, and runs must be reproducible
        "linker_uid": "observatoire",
    }


@contextlib.contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink logs every SQL step at INFO: keep the pipeline's logs readable."""
    splink_logger = logging.getLogger("splink")
    level = splink_logger.level
    splink_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        splink_logger.setLevel(level)


def score_with_splink(left: pa.Table, right: pa.Table) -> pa.Table:
    """Score record/establishment pairs with splink on a private in-memory DuckDB.

    Splink creates dozens of work tables: they must not land in the warehouse file, so it gets
    its own connection, offline, spilling (if ever) into a temporary folder removed after.
    """
    empty = pa.table(
        {
            "rid": pa.array([], pa.int64()),
            "siret": pa.array([], pa.string()),
            "score": pa.array([], pa.float64()),
            "poids": pa.array([], pa.float64()),
        }
    )
    if left.num_rows == 0 or right.num_rows == 0:
        return empty
    from splink import DuckDBAPI, Linker

    with (
        tempfile.TemporaryDirectory(prefix="observatoire-splink-") as tmp,
        _quiet_splink(),
    ):
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "temp_directory": tmp,
                "threads": 2,
            },
        )
        try:
            db_api = DuckDBAPI(con)
            records = db_api.register(left, dataset_display_name="enregistrements")
            candidates = db_api.register(right, dataset_display_name="etablissements")
            linker = Linker([records, candidates], _splink_settings(), log_level=None)
            predictions = linker.inference.predict(warning_mode="never")
            result = con.sql(
                f"""
                select
                    cast(case when source_dataset_l = 'enregistrements'
                        then unique_id_l else unique_id_r end as bigint) as rid,
                    split_part(case when source_dataset_l = 'enregistrements'
                        then unique_id_r else unique_id_l end, '#', 1) as siret,
                    match_probability as score,
                    match_weight as poids
                from {predictions.physical_name}
                """
            ).to_arrow_table()
            return result
        finally:
            con.close()
