"""Names and addresses as linkage compares them, and the fingerprint of a record.

The comparison rules (stop words, punctuation, street types) are DuckDB macros: they apply to
every establishment of the records' communes, hundreds of thousands of names. The fingerprint
is deliberately lighter and written in Python: it keys reviewers' decisions for years, so it
must not move when the comparison rules are tuned.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import duckdb

from observatoire.core.identifiers import normalise

# Words of a name this long or longer are blocking keys (`lk_mots_bloc`, see `scoring`).
MIN_BLOCKING_WORD = 3

# Words that carry no identity: legal forms (a structure registered as "ASSOCIATION X" answers
# "X"), articles and link words. Apostrophes become spaces first, so "L'ESCALE" -> "ESCALE".
NAME_STOP_WORDS = (
    "ASSOCIATION", "ASSOCIATIONS", "ASSOC", "ASSO", "ASS", "LOI", "1901",
    "SARL", "SAS", "SASU", "SA", "EURL", "SCOP", "SCIC", "SCI", "SNC", "SCA", "SCM", "GIE",
    "SEM", "SPL", "STE", "SOCIETE", "EI", "EIRL",
    "LE", "LA", "LES", "L", "DE", "DU", "DES", "D", "ET", "EN", "AU", "AUX", "A", "UN", "UNE",
    "THE", "OF",
)  # fmt: skip
# Street types are a separate field in SIRENE and abbreviated freely in answers: compare the
# street's name only.
STREET_STOP_WORDS = (
    "LE", "LA", "LES", "L", "DE", "DU", "DES", "D", "ET", "AU", "AUX", "A",
    "RUE", "R", "AVENUE", "AV", "AVE", "BOULEVARD", "BD", "BLD", "BLVD", "PLACE", "PL",
    "ALLEE", "ALL", "CHEMIN", "CHE", "CH", "IMPASSE", "IMP", "ROUTE", "RTE", "QUAI", "QU",
    "COURS", "CRS", "SQUARE", "SQ", "PASSAGE", "PAS", "VOIE", "SENTIER", "SEN", "VILLA", "VLA",
    "CITE", "CIT", "RESIDENCE", "RES", "HAMEAU", "HAM", "LIEU", "DIT", "LD", "PARVIS", "PRV",
    "ESPLANADE", "ESP", "PROMENADE", "PROM", "RUELLE", "RLE", "ZA", "ZI", "ZAC", "FAUBOURG",
    "FG", "CHAUSSEE", "CHS", "ROND", "POINT", "RPT", "TRAVERSE", "TRA", "PORTE", "PTE",
)  # fmt: skip


def _word_list(words: tuple[str, ...]) -> str:
    """SQL list literal of constant words (checked, since they end up in SQL text)."""
    for w in words:
        if not re.fullmatch(r"[A-Z0-9]+", w):
            raise ValueError(f"mot vide invalide : {w!r}")
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Name and address normalisation as DuckDB macros: the single definition of the rules.

    It runs in SQL because it applies to every establishment of the records' communes (hundreds
    of thousands of names); `normalise_name` calls the same macro for Python callers.
    """
    con.execute(
        # dotted acronyms first ("S.A.S." -> "SAS"), then any other punctuation is a space
        "create or replace temp macro lk_texte(s) as trim(regexp_replace(regexp_replace("
        "upper(strip_accents(replace(replace(replace(replace(coalesce(s, ''), "
        "'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'))), '\\b([A-Z])\\.', '\\1', 'g'), "
        "'[^A-Z0-9]+', ' ', 'g'))"
    )
    con.execute(
        "create or replace temp macro lk_mots(s, vides) as list_filter("
        "string_split(lk_texte(s), ' '), lambda t: t <> '' and not list_contains(vides, t))"
    )
    con.execute(
        "create or replace temp macro lk_nom(s) as "
        f"nullif(array_to_string(lk_mots(s, {_word_list(NAME_STOP_WORDS)}), ' '), '')"
    )
    con.execute(
        "create or replace temp macro lk_voie(s) as "
        f"nullif(array_to_string(lk_mots(s, {_word_list(STREET_STOP_WORDS)}), ' '), '')"
    )
    # a free-text address: "12 bis, rue de la Paix 94400 Vitry" -> number 12, street "PAIX"
    con.execute(
        "create or replace temp macro lk_adresse_sans_cp(s) as "
        "regexp_replace(lk_texte(s), '(^|\\s)\\d{5}(\\s.*)?$', '')"
    )
    con.execute(
        "create or replace temp macro lk_numero(s) as "
        "cast(try_cast(nullif(regexp_extract(s, '^\\s*(\\d+)', 1), '') as integer) as varchar)"
    )
    con.execute(
        "create or replace temp macro lk_adresse_voie(s) as lk_voie(regexp_replace("
        "lk_adresse_sans_cp(s), '^\\d+\\s*(BIS|TER|QUATER|[A-Z])?\\s+', ''))"
    )
    # words of a name used as blocking keys, and the longest word of a street
    con.execute(
        "create or replace temp macro lk_mots_bloc(s) as list_distinct(list_filter("
        f"string_split(coalesce(s, ''), ' '), lambda t: length(t) >= {MIN_BLOCKING_WORD}))"
    )
    con.execute(
        "create or replace temp macro lk_long(s) as case when s is not null then "
        "list_reduce(string_split(s, ' '), "
        "lambda a, b: case when length(b) > length(a) then b else a end) end"
    )


def normalise_name(value: str | None) -> str | None:
    """The name as linkage compares it (upper case, no accents, punctuation or legal form)."""
    con = duckdb.connect(":memory:")
    try:
        install_macros(con)
        return con.execute("select lk_nom(?)", [value]).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()


def _light(value: Any) -> str:
    """Case, accents and punctuation folded: what a fingerprint must ignore.

    Deliberately lighter than normalise_name and written in Python: the fingerprint keys
    reviewers' decisions for years, so it must not move when the matching rules are tuned
    (stop words) or when DuckDB's accent folding changes.
    """
    if value is None:
        return ""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^A-Z0-9]+", " ", text).split())


def fingerprint(
    source: str | None,
    cle_source: str | None,
    siret: str | None,
    nom: str | None,
    adresse: str | None,
    code_postal: str | None,
    code_commune: str | None,
) -> str:
    """Key of reviewers' decisions: the record's identifying content, not its position.

    A record moved to another line, or re-read next month, keeps its fingerprint; a record
    whose SIRET, name or address changes gets a new one, so an old decision no longer applies.
    """
    parts = [
        (source or "").strip(),
        (cle_source or "").strip(),
        normalise(siret, 14) or "",
        _light(nom),
        _light(adresse),
        (code_postal or "").strip(),
        (code_commune or "").strip(),
    ]
    return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
