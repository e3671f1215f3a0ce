"""Link questionnaire answers and network members to the month's SIRENE establishments.

SIRENE is monthly, so links are too: an establishment closes, a SIRET appears, and a record
linked last month may need a new look. Each record goes through the methods in order of
trust, and the first that concludes wins:

1. `decision`: a reviewer already decided for this exact content (its `empreinte`); a human
   beats every rule, and a rejected candidate must not come back while the record is unchanged;
2. `siret`: a declared SIRET with a valid key that exists in the month;
3. `siren_commune`: a valid SIREN (declared, or taken from a SIRET whose key is wrong or that
   is absent from the month) with an establishment in the record's commune;
4. `nom_commune`: probabilistic linkage with splink on name, address and commune;
   then a link to a closed establishment follows the structure's move within the commune
   (`transfert`, see _follow_moves);
5. `aucune`: nothing; the record stays, as `non_lie`, and goes to the review queue.

Unlinked records are never dropped: every record of `clean.a_rapprocher` has one row in
`clean.rapprochements` per month, and every record that is not linked has one row in
`clean.rapprochements_a_revoir`.

The probabilistic step uses splink 5 on DuckDB with fixed, documented parameters (see
NAME_LEVELS, ADDRESS_LEVELS, PLACE_LEVELS and PRIOR_MATCH) rather than EM: a month brings a
few hundred records, too few for EM to converge to the same values twice, and a score that
moves while nothing changed would move links in and out of the published counts. Fixed values
make every run deterministic and every score explainable level by level.

Privacy: names of establishments whose unit or establishment is not diffusible (statut de
diffusion other than `O`) may be compared (the record declared its own name), but never shown:
`nom_candidat` is NULL for them, in the table and in the CSV. Decisions store no name at all.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from observatoire.core import csvfiles, warehouse
from observatoire.core.contacts import mask_contacts
from observatoire.core.identifiers import normalise, siren_valid, siret_valid

# A link is accepted without review from this splink match probability. With the fixed
# parameters below, an exact (normalised) name in the record's commune scores 0.96, a close
# spelling needs a matching address to pass, and a name that only shares words with the
# candidate needs the exact address. Below 0.9 the cost of a wrong link in published counts
# (an association counted as another) outweighs the reviewer's time.
DEFAULT_THRESHOLD = 0.9
# Candidates between this and DEFAULT_THRESHOLD go to the review queue with the candidate
# shown. 0.2 keeps "same words + same commune" (0.26) and "close spelling, no address" (0.48)
# in front of a reviewer, and drops "same address, unrelated name" (0.02): a business centre
# hosts dozens of structures.
DEFAULT_REVIEW_THRESHOLD = 0.2

# Two candidates whose match weights (log2 of the odds) are closer than this are too close to
# choose between without a human: the same name for two active establishments of one structure
# in a commune is the usual case.
RIVAL_WEIGHT_GAP = 2.0

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
# name of three letters or more (splink's exploding rule on the name's words: "LA PETITE
# REPRISE" must meet "RESSOURCERIE LA PETITE REPRISE", which a first-word or prefix rule would
# miss), or a postal code, a street number and the street's longest word (a name typed
# differently at the right address). Every rule is an equality, so DuckDB joins by hash.
MIN_BLOCKING_WORD = 3
ADDRESS_BLOCKING_RULE = (
    "l.code_postal = r.code_postal and l.numero = r.numero and l.voie_long = r.voie_long"
)

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

STATUSES = ("lie", "a_revoir", "non_lie")
METHODS = ("decision", "siret", "siren_commune", "nom_commune", "transfert", "aucune")
DECISIONS = ("accepte", "rejete")

MOTIF_NONE = "aucun candidat"
MOTIF_LOW = "score sous le seuil de liaison"
MOTIF_RIVALS = "plusieurs candidats proches"
MOTIF_SEVERAL_ACTIVE = "plusieurs établissements actifs de ce SIREN dans la commune"

REVIEW_COLUMNS = (
    "source",
    "cle_source",
    "enregistrement_id",
    "empreinte",
    "nom",
    "code_commune",
    "siret_candidat",
    "nom_candidat",
    "score",
    "motif",
    "decision",
    "siret_retenu",
    "commentaire",
)

_MOIS = re.compile(r"^\d{4}-\d{2}$")
_EMPREINTE = re.compile(r"^[0-9a-f]{40}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_DDL_RAPPROCHEMENTS = """
create table if not exists clean.rapprochements (
    mois varchar, source varchar, cle_source varchar, enregistrement_id varchar,
    empreinte varchar, siret varchar, siren varchar, methode varchar, score double,
    statut varchar, ferme boolean, retenu boolean
)"""
_DDL_A_REVOIR = """
create table if not exists clean.rapprochements_a_revoir (
    mois varchar, source varchar, cle_source varchar, enregistrement_id varchar,
    empreinte varchar, nom varchar, code_commune varchar, siret_candidat varchar,
    nom_candidat varchar, score double, motif varchar
)"""
_DDL_DECISIONS = """
create table if not exists ref.decisions_rapprochement (
    empreinte varchar primary key, source varchar, cle_source varchar, siret varchar,
    decision varchar, decide_le timestamp, commentaire varchar
)"""

_TEMP_TABLES = (
    "_lk_rec",
    "_lk_rec_siren",
    "_lk_etab",
    "_lk_out",
    "_lk_left",
    "_lk_noms",
    "_lk_cand_tous",
    "_lk_cand",
    "_lk_pred",
    "_lk_moves",
)


class DecisionFileError(ValueError):
    """A decision file the data team must fix; the message names the file, line and column."""

    def __init__(self, path: Path, line: int, column: str, message: str, more: int = 0) -> None:
        self.path = path
        self.line = line
        self.column = column
        text = f"{path} : ligne {line}, colonne « {column} » : {message}"
        if more:
            text += f" (et {more} autre(s) erreur(s) dans le fichier)"
        super().__init__(text)


@dataclass
class LinkResult:
    """Counts of one month's linkage, for the asset's metadata and the CLI."""

    mois: str
    records: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_method: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    review_queue: int = 0

    @property
    def linked(self) -> int:
        return self.by_status.get("lie", 0)

    @property
    def to_review(self) -> int:
        return self.by_status.get("a_revoir", 0)

    @property
    def unlinked(self) -> int:
        return self.by_status.get("non_lie", 0)


# --------------------------------------------------------------------------------------------
# Normalisation


def _word_list(words: tuple[str, ...]) -> str:
    """SQL list literal of constant words (checked, since they end up in SQL text)."""
    for w in words:
        if not re.fullmatch(r"[A-Z0-9]+", w):
            raise ValueError(f"mot vide invalide : {w!r}")
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def _install_macros(con: duckdb.DuckDBPyConnection) -> None:
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
        _install_macros(con)
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


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the linkage tables empty, so that indicators and checks run before any link."""
    con.execute(_DDL_RAPPROCHEMENTS)
    con.execute(_DDL_A_REVOIR)
    con.execute(_DDL_DECISIONS)


# SQL files of `sql/clean/` that are views over the cleaned sources, not monthly tables
VIEWS = ("a_rapprocher",)


def create_source_view(con: duckdb.DuckDBPyConnection) -> None:
    """`clean.a_rapprocher`: every answer and member to link, one shape for both sources."""
    con.execute(
        "create or replace view clean.a_rapprocher as "
        + warehouse.sql_text("clean", "a_rapprocher")
    )


# --------------------------------------------------------------------------------------------
# Linking


def _check_mois(mois: str) -> None:
    if not _MOIS.fullmatch(mois):
        raise ValueError(f"mois invalide : {mois!r} (AAAA-MM attendu)")


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for name in _TEMP_TABLES:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists temp.{name}")


def _load_records(con: duckdb.DuckDBPyConnection) -> int:
    """Records with identifiers checked by the project's single identifier module.

    Done in Python: a few thousand rows at most, and the SIREN/SIRET rules must be the ones
    of observatoire.core.identifiers, not a second SQL copy.
    """
    rows = con.execute(
        "select source, cle_source, enregistrement_id, siret_declare, siren_declare, nom, "
        "adresse, code_postal, code_commune, horodatage from clean.a_rapprocher"
    ).fetchall()
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "rid",
            "source",
            "cle_source",
            "enregistrement_id",
            "horodatage",
            "nom_brut",
            "adresse",
            "code_postal",
            "code_commune",
            "siret_n",
            "siret_ok",
            "empreinte",
        )
    }
    sirens: list[tuple[int, str]] = []
    for rid, row in enumerate(rows):
        source, cle, rec_id, siret_d, siren_d, nom, adresse, cp, commune, horodatage = row
        siret_n = normalise(siret_d, 14)
        siret_ok = siret_valid(siret_n)
        cp = normalise(cp, 5) or ((str(cp).strip() or None) if cp is not None else None)
        commune = (str(commune).strip().upper() or None) if commune is not None else None
        candidates = [normalise(siren_d, 9)]
        if siret_n is not None:
            # used only if the SIRET itself does not conclude (wrong key, absent from the month)
            candidates.append(siret_n[:9])
        for s in dict.fromkeys(candidates):
            if siren_valid(s):
                sirens.append((rid, s))  # type: ignore[arg-type]
        for key, value in (
            ("rid", rid),
            ("source", source),
            ("cle_source", cle),
            ("enregistrement_id", rec_id),
            ("horodatage", horodatage),
            ("nom_brut", nom),
            ("adresse", adresse),
            ("code_postal", cp),
            ("code_commune", commune),
            ("siret_n", siret_n),
            ("siret_ok", siret_ok),
            ("empreinte", fingerprint(source, cle, siret_d, nom, adresse, cp, commune)),
        ):
            cols[key].append(value)
    schema = pa.schema(
        [
            ("rid", pa.int64()),
            ("source", pa.string()),
            ("cle_source", pa.string()),
            ("enregistrement_id", pa.string()),
            ("horodatage", pa.timestamp("us")),
            ("nom_brut", pa.string()),
            ("adresse", pa.string()),
            ("code_postal", pa.string()),
            ("code_commune", pa.string()),
            ("siret_n", pa.string()),
            ("siret_ok", pa.bool_()),
            ("empreinte", pa.string()),
        ]
    )
    records = pa.Table.from_pydict(cols, schema=schema)
    siren_table = pa.Table.from_pydict(
        {"rid": [r for r, _ in sirens], "siren": [s for _, s in sirens]},
        schema=pa.schema([("rid", pa.int64()), ("siren", pa.string())]),
    )
    con.register("_lk_rec_py", records)
    con.register("_lk_rec_siren_py", siren_table)
    try:
        con.execute(
            """
            create or replace temp table _lk_rec as
            select *,
                lk_nom(nom_brut) as nom_norm,
                lk_numero(lk_adresse_sans_cp(adresse)) as numero,
                lk_adresse_voie(adresse) as voie
            from _lk_rec_py
            """
        )
        con.execute("create or replace temp table _lk_rec_siren as select * from _lk_rec_siren_py")
    finally:
        con.unregister("_lk_rec_py")
        con.unregister("_lk_rec_siren_py")
    return len(rows)


def _load_establishments(con: duckdb.DuckDBPyConnection, mois: str) -> int:
    """The month's establishments with what every method needs, read once."""
    con.execute(
        """
        create or replace temp table _lk_etab as
        select
            e.siret,
            e.siren,
            e.code_commune,
            e.code_postal,
            e.etat_administratif = 'A' as actif,
            coalesce(e.etablissement_siege, false) as siege,
            e.etat_administratif = 'F' as ferme,
            e.date_creation,
            -- for a closed establishment, the start of its closed period: its closing date
            e.date_debut,
            coalesce(e.statut_diffusion = 'O' and u.statut_diffusion = 'O', false) as diffusible,
            -- shown only when both the establishment and its unit are diffusible
            case when e.statut_diffusion = 'O' and u.statut_diffusion = 'O'
                then coalesce(u.denomination, e.denomination_usuelle, e.enseigne, u.sigle)
            end as nom_affiche,
            u.denomination,
            u.sigle,
            e.enseigne,
            e.denomination_usuelle,
            e.numero_voie,
            e.libelle_voie
        from clean.sirene_etablissements as e
        left join clean.sirene_unites_legales as u on u.siren = e.siren and u.mois = $mois
        where e.mois = $mois
        """,
        {"mois": mois},
    )
    return int(con.execute("select count(*) from _lk_etab").fetchone()[0])  # type: ignore[index]


def _link_decisions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table _lk_out (rid bigint, siret varchar, methode varchar, "
        "score double, statut varchar, candidat varchar, motif varchar)"
    )
    if not warehouse.table_exists(con, "ref", "decisions_rapprochement"):
        return
    con.execute(
        """
        insert into _lk_out
        select r.rid,
            case when d.decision = 'accepte' then d.siret end,
            'decision', 1.0,
            case when d.decision = 'accepte' then 'lie' else 'non_lie' end,
            null, null
        from _lk_rec as r
        join ref.decisions_rapprochement as d on d.empreinte = r.empreinte
        where d.decision in ('accepte', 'rejete')
        """
    )


def _link_siret(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        insert into _lk_out
        select r.rid, e.siret, 'siret', 1.0, 'lie', null, null
        from _lk_rec as r
        join _lk_etab as e on e.siret = r.siret_n
        where r.siret_ok and r.rid not in (select rid from _lk_out)
        """
    )


def _link_siren_commune(con: duckdb.DuckDBPyConnection) -> None:
    """A SIREN names a structure; the commune picks its establishment.

    An active establishment is preferred to a closed one, and the head office to another; but
    two active establishments of the structure in the commune are a question for a reviewer.
    """
    con.execute(
        """
        insert into _lk_out
        with c as (
            select s.rid, e.siret,
                count(*) filter (where e.actif) over (partition by s.rid) as n_actifs,
                row_number() over (
                    partition by s.rid order by e.actif desc, e.siege desc, e.siret
                ) as rang
            from _lk_rec_siren as s
            join _lk_rec as r on r.rid = s.rid
            join _lk_etab as e on e.siren = s.siren and e.code_commune = r.code_commune
            where s.rid not in (select rid from _lk_out)
        )
        select rid,
            case when n_actifs <= 1 then siret end,
            'siren_commune',
            case when n_actifs <= 1 then 1.0 else 1.0 / n_actifs end,
            case when n_actifs <= 1 then 'lie' else 'a_revoir' end,
            case when n_actifs > 1 then siret end,
            case when n_actifs > 1 then $motif || ' (' || n_actifs || ')' end
        from c
        where rang = 1
        """,
        {"motif": MOTIF_SEVERAL_ACTIVE},
    )


def _build_candidates(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, pa.Table]:
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
    """The same keys _build_candidates filters on, for splink to generate the pairs."""
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


def _score_with_splink(left: pa.Table, right: pa.Table) -> pa.Table:
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


def _link_names(con: duckdb.DuckDBPyConnection, seuil: float, seuil_revue: float) -> None:
    left, right = _build_candidates(con)
    scored = _score_with_splink(left, right)
    con.register("_lk_pred_py", scored)
    try:
        con.execute("create or replace temp table _lk_pred as select * from _lk_pred_py")
    finally:
        con.unregister("_lk_pred_py")
    con.execute(
        """
        insert into _lk_out
        with p as (
            select rid, siret, max(score) as score, max(poids) as poids
            from _lk_pred group by rid, siret
        ),
        ranked as (
            select p.*, e.actif,
                row_number() over (
                    partition by p.rid order by p.poids desc, e.actif desc, e.siege desc, p.siret
                ) as rang
            from p join _lk_etab as e using (siret)
        ),
        top as (select * from ranked where rang = 1),
        rivals as (
            -- as close as the best, and not merely a closed twin of an active best
            select t.rid, count(*) as n
            from top as t join ranked as x on x.rid = t.rid and x.rang > 1
            where x.poids >= t.poids - $ecart and (x.actif or not t.actif)
            group by t.rid
        ),
        decided as (
            select t.rid, t.siret, t.score, coalesce(v.n, 0) as rivaux
            from top as t left join rivals as v using (rid)
            where t.score >= $seuil_revue
        )
        select rid,
            case when score >= $seuil and rivaux = 0 then siret end,
            'nom_commune',
            score,
            case when score >= $seuil and rivaux = 0 then 'lie' else 'a_revoir' end,
            case when not (score >= $seuil and rivaux = 0) then siret end,
            case
                when score >= $seuil and rivaux = 0 then null
                when rivaux > 0 then $rivals || ' (' || (rivaux + 1) || ')'
                else $low
            end
        from decided
        """,
        {
            "ecart": RIVAL_WEIGHT_GAP,
            "seuil": seuil,
            "seuil_revue": seuil_revue,
            "rivals": MOTIF_RIVALS,
            "low": MOTIF_LOW,
        },
    )


def _follow_moves(con: duckdb.DuckDBPyConnection) -> None:
    """A closed establishment whose structure opened one establishment in the commune meanwhile.

    Lists and answers keep a SIRET for years; when a structure moves within its commune, SIRENE
    closes the old SIRET and opens a new one under the same SIREN around the same date (the
    stock carries no successor link). An active establishment created long before the closure
    is another site, not the move's destination. Counting the member as closed would be wrong,
    and a reviewer would only confirm the obvious, so the link follows the move (`transfert`).
    With no such establishment (the structure ceased) or several (which one?), the closed link
    stays and is flagged. A reviewer's decision is never moved.
    """
    con.execute(
        """
        create or replace temp table _lk_moves as
        with closed as (
            select o.rid, e.siren, e.code_commune, e.date_debut as ferme_le
            from _lk_out as o
            join _lk_etab as e on e.siret = o.siret
            where o.statut = 'lie' and o.methode <> 'decision' and e.ferme
        ),
        successors as (
            -- opened around the closure (up to a quarter before it): a move; an establishment
            -- that was already there is another site of the structure, not where it went
            select c.rid, a.siret, count(*) over (partition by c.rid) as n
            from closed as c
            join _lk_etab as a
                on a.siren = c.siren and a.code_commune = c.code_commune and a.actif
            where c.ferme_le is not null and a.date_creation is not null
                and a.date_creation >= c.ferme_le - interval 92 day
        )
        select rid, siret from successors where n = 1
        """
    )
    con.execute(
        "update _lk_out set siret = m.siret, methode = 'transfert' "
        "from _lk_moves as m where _lk_out.rid = m.rid"
    )


def _link_rest(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        insert into _lk_out
        select rid, null, 'aucune', null, 'non_lie', null, $motif
        from _lk_rec where rid not in (select rid from _lk_out)
        """,
        {"motif": MOTIF_NONE},
    )


def _write(con: duckdb.DuckDBPyConnection, mois: str) -> None:
    """Replace the month in both tables at once: readers see the old month or the new one."""
    with warehouse.transaction(con):
        con.execute(_DDL_RAPPROCHEMENTS)
        con.execute(_DDL_A_REVOIR)
        con.execute("delete from clean.rapprochements where mois = $mois", {"mois": mois})
        con.execute("delete from clean.rapprochements_a_revoir where mois = $mois", {"mois": mois})
        con.execute(
            """
            insert into clean.rapprochements by name
            with j as (
                select r.*, o.siret, o.methode, o.score, o.statut, e.ferme
                from _lk_out as o
                join _lk_rec as r using (rid)
                left join _lk_etab as e on e.siret = o.siret
            ),
            ranked as (
                select *,
                    row_number() over (
                        partition by source, cle_source, siret, statut
                        order by horodatage desc nulls last,
                            try_cast(regexp_extract(enregistrement_id, '(\\d+)$', 1) as bigint)
                                desc nulls last,
                            enregistrement_id desc
                    ) as ordre
                from j
            )
            select $mois as mois, source, cle_source, enregistrement_id, empreinte,
                siret, left(siret, 9) as siren, methode, score, statut,
                case when statut = 'lie' then coalesce(ferme, false) end as ferme,
                case when source = 'questionnaire' and statut = 'lie' then ordre = 1
                    else true end as retenu
            from ranked
            """,
            {"mois": mois},
        )
        con.execute(
            """
            insert into clean.rapprochements_a_revoir by name
            select $mois as mois, r.source, r.cle_source, r.enregistrement_id, r.empreinte,
                -- next to a candidate that is not diffusible, the record's own name would
                -- name that unit: the reviewer decides on the SIRET alone
                case when e.siret is not null and not e.diffusible then null
                    else r.nom_brut end as nom,
                r.code_commune, o.candidat as siret_candidat,
                e.nom_affiche as nom_candidat, o.score, o.motif
            from _lk_out as o
            join _lk_rec as r using (rid)
            left join _lk_etab as e on e.siret = o.candidat
            where o.statut in ('a_revoir', 'non_lie') and o.methode <> 'decision'
            """,
            {"mois": mois},
        )


def link_month(
    con: duckdb.DuckDBPyConnection,
    mois: str,
    *,
    seuil: float = DEFAULT_THRESHOLD,
    seuil_revue: float = DEFAULT_REVIEW_THRESHOLD,
) -> LinkResult:
    """Link every record of `clean.a_rapprocher` to the month's establishments.

    Re-running a month gives the same rows (fixed model, stable ordering), so the review queue
    does not reshuffle between two refreshes.
    """
    _check_mois(mois)
    if not 0 < seuil_revue <= seuil <= 1:
        raise ValueError(
            f"seuils incohérents : 0 < seuil_revue ({seuil_revue}) <= seuil ({seuil}) <= 1 attendu"
        )
    for schema, name in (
        ("clean", "a_rapprocher"),
        ("clean", "sirene_etablissements"),
        ("clean", "sirene_unites_legales"),
    ):
        if not warehouse.table_exists(con, schema, name):
            raise ValueError(f"table {schema}.{name} absente : rapprochement impossible")
    _install_macros(con)
    try:
        n_records = _load_records(con)
        if _load_establishments(con, mois) == 0:
            raise ValueError(f"aucun établissement SIRENE pour le mois {mois}")
        _link_decisions(con)
        _link_siret(con)
        _link_siren_commune(con)
        _link_names(con, seuil, seuil_revue)
        _follow_moves(con)
        _link_rest(con)
        _write(con, mois)
    finally:
        _drop_temp(con)
    by_status = dict(
        con.execute(
            "select statut, count(*) from clean.rapprochements where mois = ? group by statut",
            [mois],
        ).fetchall()
    )
    by_method = dict(
        con.execute(
            "select methode, count(*) from clean.rapprochements where mois = ? group by methode",
            [mois],
        ).fetchall()
    )
    closed, queue = con.execute(
        "select (select count(*) from clean.rapprochements where mois = $mois and ferme), "
        "(select count(*) from clean.rapprochements_a_revoir where mois = $mois)",
        {"mois": mois},
    ).fetchone()  # type: ignore[misc]
    return LinkResult(
        mois=mois,
        records=n_records,
        by_status={s: int(by_status.get(s, 0)) for s in STATUSES},
        by_method={m: int(by_method.get(m, 0)) for m in METHODS},
        closed=int(closed),
        review_queue=int(queue),
    )


# --------------------------------------------------------------------------------------------
# Review round trip


def _excel_safe(value: Any) -> str:
    """Text a spreadsheet will not run: answers are typed by the public (CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_review_queue(con: duckdb.DuckDBPyConnection, mois: str, path: Path) -> int:
    """Write the month's review queue for the data team, ready for Excel (French dialect).

    `decision`, `siret_retenu` and `commentaire` are left empty for the reviewer; the file is
    read back by import_decisions.
    """
    _check_mois(mois)
    rows: list[tuple[Any, ...]] = []
    if warehouse.table_exists(con, "clean", "rapprochements_a_revoir"):
        rows = con.execute(
            """
            select source, cle_source, enregistrement_id, empreinte, nom, code_commune,
                siret_candidat, nom_candidat, score, motif
            from clean.rapprochements_a_revoir
            where mois = ?
            order by source, cle_source,
                try_cast(regexp_extract(enregistrement_id, '(\\d+)$', 1) as bigint) nulls last,
                enregistrement_id, empreinte
            """,
            [mois],
        ).fetchall()
    path.parent.mkdir(parents=True, exist_ok=True)
    # the review queue is opened in French Excel by the staff who review it
    dialect = csvfiles.EXCEL
    with path.open("w", encoding=dialect.encoding, newline="") as f:
        writer = csv.writer(f, delimiter=dialect.delimiter, lineterminator=dialect.line_end)
        writer.writerow(REVIEW_COLUMNS)
        for source, cle, rec_id, empreinte, nom, commune, siret, nom_c, score, motif in rows:
            writer.writerow(
                [
                    _excel_safe(source),
                    _excel_safe(cle),
                    _excel_safe(rec_id),
                    empreinte,
                    _excel_safe(nom),
                    _excel_safe(commune),
                    siret or "",
                    _excel_safe(nom_c),
                    "" if score is None else f"{score:.3f}".replace(".", ","),
                    _excel_safe(motif),
                    "",
                    "",
                    "",
                ]
            )
    return len(rows)


def _fold(value: str | None) -> str:
    if not value:
        return ""
    text = unicodedata.normalize("NFKD", value.strip())
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _read_decision_file(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with their physical line, whatever Excel did to the file.

    Excel saves "CSV UTF-8" with a BOM but plain "CSV" in Windows-1252, and with `,` or `;`
    depending on the machine's locale: all are accepted.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        raise DecisionFileError(path, 1, "empreinte", "fichier vide (en-tête attendu)")
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num
    for values in reader:
        start = line + 1
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        rows.append((start, {h: v for h, v in zip(header, values, strict=False)}))
    return header, rows


def _mask_comment(value: str | None) -> str | None:
    """Reviewers' comments may quote an e-mail or a phone number: keep neither."""
    if not value or not value.strip():
        return None
    return mask_contacts(value.strip())


def import_decisions(
    con: duckdb.DuckDBPyConnection, path: Path, *, decide_le: datetime | None = None
) -> int:
    """Read reviewers' decisions from an exported queue file and keep them for good.

    Every filled row is checked before anything is written: a file with one bad row changes
    nothing, and the error says where to look. Rows without a decision are skipped. A
    fingerprint unknown today is kept (the record may come back), and re-importing a file
    replaces the earlier decision on the same fingerprint.
    """
    path = Path(path)
    header, rows = _read_decision_file(path)
    for required in ("empreinte", "decision"):
        if required not in header:
            raise DecisionFileError(path, 1, required, "colonne absente de l'en-tête")
    known: dict[str, tuple[str | None, str | None, str | None]] = {}
    if warehouse.table_exists(con, "clean", "rapprochements_a_revoir"):
        for emp, source, cle, cand in con.execute(
            "select empreinte, source, cle_source, siret_candidat "
            "from clean.rapprochements_a_revoir order by mois"
        ).fetchall():
            known[emp] = (source, cle, cand)  # the latest month wins
    errors: list[tuple[int, str, str]] = []
    decisions: dict[str, tuple[int, tuple[Any, ...]]] = {}
    when = decide_le or datetime.now().replace(microsecond=0)
    for line, row in rows:
        decision = _fold(row.get("decision"))
        if not decision:
            continue
        if decision not in DECISIONS:
            errors.append((line, "decision", f"« {row['decision']} » : accepte ou rejete attendu"))
            continue
        empreinte = (row.get("empreinte") or "").strip().lower()
        if not _EMPREINTE.fullmatch(empreinte):
            errors.append((line, "empreinte", "empreinte absente ou altérée (40 caractères hexa)"))
            continue
        source, cle, queued = known.get(empreinte, (None, None, None))
        source = (row.get("source") or "").strip() or source
        cle = (row.get("cle_source") or "").strip() or cle
        siret = None
        if decision == "accepte":
            retained = (row.get("siret_retenu") or "").strip()
            if retained:
                siret = normalise(retained, 14)
                if not siret_valid(siret):
                    hint = (
                        " (le tableur l'a converti en nombre : formater la colonne en texte)"
                        if re.search(r"[eE][+]", retained)
                        else ""
                    )
                    errors.append(
                        (line, "siret_retenu", f"« {retained} » n'est pas un SIRET valide{hint}")
                    )
                    continue
            else:
                siret = normalise((row.get("siret_candidat") or "").strip(), 14)
                if not siret_valid(siret):
                    # a spreadsheet may have mangled the candidate: the queue still knows it
                    siret = queued
                if not siret_valid(siret):
                    errors.append(
                        (line, "siret_candidat", "aucun SIRET candidat : remplir siret_retenu")
                    )
                    continue
        value = (source, cle, siret, decision, when, _mask_comment(row.get("commentaire")))
        previous = decisions.get(empreinte)
        if previous is not None and previous[1][2:4] != value[2:4]:
            errors.append(
                (line, "empreinte", f"décision contraire à celle de la ligne {previous[0]}")
            )
            continue
        decisions[empreinte] = (line, value)
    if errors:
        line, column, message = errors[0]
        raise DecisionFileError(path, line, column, message, more=len(errors) - 1)
    if not decisions:
        return 0
    table = pa.Table.from_pylist(
        [
            {
                "empreinte": emp,
                "source": v[0],
                "cle_source": v[1],
                "siret": v[2],
                "decision": v[3],
                "decide_le": v[4],
                "commentaire": v[5],
            }
            for emp, (_, v) in sorted(decisions.items())
        ],
        schema=pa.schema(
            [
                ("empreinte", pa.string()),
                ("source", pa.string()),
                ("cle_source", pa.string()),
                ("siret", pa.string()),
                ("decision", pa.string()),
                ("decide_le", pa.timestamp("us")),
                ("commentaire", pa.string()),
            ]
        ),
    )
    con.register("_lk_decisions_py", table)
    try:
        with warehouse.transaction(con):
            con.execute(_DDL_DECISIONS)
            con.execute(
                "delete from ref.decisions_rapprochement "
                "where empreinte in (select empreinte from _lk_decisions_py)"
            )
            con.execute(
                "insert into ref.decisions_rapprochement by name select * from _lk_decisions_py"
            )
    finally:
        con.unregister("_lk_decisions_py")
    return len(decisions)


# --------------------------------------------------------------------------------------------
# Quality on a labelled set


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def evaluate(
    con: duckdb.DuckDBPyConnection, mois: str, truth: dict[str, str | None]
) -> dict[str, Any]:
    """Linkage quality on records whose right answer is known (enregistrement_id -> SIRET).

    `None` in `truth` means "not in SIRENE": leaving it unlinked is right. Review-queue
    figures use the candidate shown to the reviewer, so they say how often a reviewer would
    only have to confirm.
    """
    _check_mois(mois)
    rows = con.execute(
        """
        select r.enregistrement_id, r.statut, r.siret, q.siret_candidat
        from clean.rapprochements as r
        left join clean.rapprochements_a_revoir as q
            on q.mois = r.mois and q.empreinte = r.empreinte
            and q.enregistrement_id = r.enregistrement_id
        where r.mois = ?
        """,
        [mois],
    ).fetchall()
    seen: dict[str, tuple[str, str | None, str | None]] = {}
    for rec_id, statut, siret, candidate in rows:
        if rec_id in truth:
            seen[rec_id] = (statut, siret, candidate)
    expected_links = sum(1 for v in truth.values() if v is not None)
    linked = [(k, v) for k, v in seen.items() if v[0] == "lie"]
    linked_ok = sum(1 for k, v in linked if v[1] == truth[k])
    review = [(k, v) for k, v in seen.items() if v[0] == "a_revoir"]
    review_ok = sum(1 for k, v in review if truth[k] is not None and v[2] == truth[k])
    unlinked = [(k, v) for k, v in seen.items() if v[0] == "non_lie"]
    unlinked_ok = sum(1 for k, _ in unlinked if truth[k] is None)
    n = len(seen)
    return {
        "mois": mois,
        "labelled": len(truth),
        "found": n,
        "missing": sorted(set(truth) - set(seen)),
        "expected_links": expected_links,
        "lie": len(linked),
        "lie_correct": linked_ok,
        "lie_wrong": len(linked) - linked_ok,
        "a_revoir": len(review),
        "a_revoir_correct": review_ok,
        "non_lie": len(unlinked),
        "non_lie_correct": unlinked_ok,
        "match_rate": _ratio(len(linked), n),
        "precision": _ratio(linked_ok, len(linked)),
        "recall": _ratio(linked_ok, expected_links),
        "review_rate": _ratio(len(review), n),
        "review_precision": _ratio(review_ok, len(review)),
        "recall_with_review": _ratio(linked_ok + review_ok, expected_links),
    }
