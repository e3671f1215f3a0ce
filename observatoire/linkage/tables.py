"""The linkage tables: their columns, their vocabulary, and the view of records to link.

Linking writes them, the review round trip and the evaluation read them, and the quality suite
of `clean.rapprochements` checks their values against `STATUSES` and `METHODS`: one definition
here keeps all of them in step. Indicators and checks may run before any link, so the tables
can be created empty.
"""

from __future__ import annotations

import re

import duckdb

from observatoire.core import warehouse

STATUSES = ("lie", "a_revoir", "non_lie")
METHODS = ("decision", "siret", "siren_commune", "nom_commune", "transfert", "aucune")

_MOIS = re.compile(r"^\d{4}-\d{2}$")

DDL_RAPPROCHEMENTS = """
create table if not exists clean.rapprochements (
    mois varchar, source varchar, cle_source varchar, enregistrement_id varchar,
    empreinte varchar, siret varchar, siren varchar, methode varchar, score double,
    statut varchar, ferme boolean, retenu boolean
)"""
DDL_A_REVOIR = """
create table if not exists clean.rapprochements_a_revoir (
    mois varchar, source varchar, cle_source varchar, enregistrement_id varchar,
    empreinte varchar, nom varchar, code_commune varchar, siret_candidat varchar,
    nom_candidat varchar, score double, motif varchar
)"""
DDL_DECISIONS = """
create table if not exists ref.decisions_rapprochement (
    empreinte varchar primary key, source varchar, cle_source varchar, siret varchar,
    decision varchar, decide_le timestamp, commentaire varchar
)"""


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the linkage tables empty, so that indicators and checks run before any link."""
    con.execute(DDL_RAPPROCHEMENTS)
    con.execute(DDL_A_REVOIR)
    con.execute(DDL_DECISIONS)


# SQL files of `sql/clean/` that are views over the cleaned sources, not monthly tables
VIEWS = ("a_rapprocher",)


def create_source_view(con: duckdb.DuckDBPyConnection) -> None:
    """`clean.a_rapprocher`: every answer and member to link, one shape for both sources."""
    con.execute(
        "create or replace view clean.a_rapprocher as "
        + warehouse.sql_text("clean", "a_rapprocher")
    )


def check_mois(mois: str) -> None:
    """Refuse a month that is not AAAA-MM before it enters SQL."""
    if not _MOIS.fullmatch(mois):
        raise ValueError(f"mois invalide : {mois!r} (AAAA-MM attendu)")
