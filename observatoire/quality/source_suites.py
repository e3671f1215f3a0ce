"""The suites of the other sources: questionnaire answers, network members, and their links.

Questionnaire waves and network lists are not monthly: their suites validate the tables as
they stand and record the verdict under the month being published, which the gate asks about.
Links are monthly. Samples of these suites carry record ids and codes, never a SIRET: a
declared SIRET may be that of a unit that is not diffusible.
"""

from __future__ import annotations

import duckdb

from observatoire import linkage
from observatoire.core import warehouse
from observatoire.quality.builder import Builder, pct
from observatoire.sources import questionnaire, reseaux

SOURCE_SUITES: tuple[str, ...] = (
    "raw.questionnaire_cellules",
    "raw.reseaux_cellules",
    "clean.questionnaire_reponses",
    "clean.reseaux_membres",
    "clean.rapprochements",
)

# the vocabularies are the readers' and the linker's own, so a check can never drift from them
NEEDS = questionnaire.NEEDS
NETWORK_KINDS = reseaux.NETWORK_TYPES
LINK_METHODS = linkage.METHODS
LINK_STATUSES = linkage.STATUSES
# (no braces: GX formats these queries with str.format)
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z][A-Za-z]+"
# not inside a longer number: a SIRET starting with 0 holds ten digits that look like a phone
PHONE_PATTERN = r"(^|[^0-9+])(\+33|0)\s?[1-9]" + r"[\s.-]?[0-9][0-9]" * 4 + r"([^0-9]|$)"


def _no_contact(b: Builder, name: str, table: str, key: str, columns: tuple[str, ...]) -> None:
    """Personal contact data must stop at the raw layer: look for it where it must not be."""
    tests = " or ".join(
        f"regexp_matches(coalesce({c}, ''), '{EMAIL_PATTERN}') "
        f"or regexp_matches(coalesce({c}, ''), '{PHONE_PATTERN}')"
        for c in columns
    )
    b.sql(
        name,
        f"aucun courriel ni numéro de téléphone dans {table} ({', '.join(columns)})",
        None,
        f"select {key} from {table} where {tests}",
    )


def _raw_cells(b: Builder, table: str, key: str, reads: str, rejects: str, rate: float) -> None:
    b.columns([key, "fichier_source", "ligne", "colonne", "valeur"])
    b.sql(
        "cellules_identifiees",
        f"chaque cellule porte {key}, fichier, ligne et colonne",
        None,
        f"select {key}, ligne from {{batch}} where {key} is null or fichier_source is null "
        "or ligne is null or colonne is null",
    )
    b.sql(
        "taux_lignes_mal_formees",
        f"part des lignes mal formées au plus {pct(rate)} par fichier",
        None,
        f"select {key}, lignes_mal_formees as rejets, lignes_lues as lignes from {reads} "
        f"where lignes_mal_formees > {rate!r} * (lignes_mal_formees + lignes_lues)",
    )
    b.sql(
        "rejets_de_lecture_motives",
        "chaque ligne mise en quarantaine à la lecture a un motif et un numéro de ligne",
        None,
        f"select {key}, ligne from {rejects} where motif is null or ligne is null",
    )


def _identifiers_declared(b: Builder, key: str) -> None:
    b.sql(
        "siret_declare_format",
        "siret déclaré de 14 chiffres quand il est donné (la clé est vérifiée au rapprochement)",
        "siret_declare",
        f"select {key} from {{batch}} where siret_declare is not null "
        "and (length(siret_declare) <> 14 or not regexp_full_match(siret_declare, '[0-9]+'))",
    )
    b.sql(
        "siren_declare_format",
        "siren déclaré de 9 chiffres quand il est donné",
        "siren_declare",
        f"select {key} from {{batch}} where siren_declare is not null "
        "and (length(siren_declare) <> 9 or not regexp_full_match(siren_declare, '[0-9]+'))",
    )
    b.in_reference(
        "commune_cog",
        "commune connue du COG ou vide",
        "code_commune",
        "ref.communes.code_commune",
        key,
        "true",
    )
    b.sql(
        "rapprochable",
        "chaque enregistrement donne un siret, un siren ou un nom à rapprocher",
        None,
        f"select {key} from {{batch}} where siret_declare is null and siren_declare is null "
        "and nullif(trim(nom), '') is null",
    )


def _clean_reponses(b: Builder, rate: float) -> None:
    b.add(
        "reponse_id_renseigne",
        "identifiant de réponse renseigné",
        "reponse_id",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="reponse_id"),
    )
    b.unique("reponse_id", "true")
    _identifiers_declared(b, "reponse_id")
    listed = ", ".join(f"'{n}'" for n in NEEDS)
    b.sql(
        "besoins_taxonomie",
        "chaque besoin cité appartient à la taxonomie des besoins",
        "besoin",
        "select vague, question, besoin from clean.questionnaire_valeurs "
        f"where besoin is not null and besoin not in ({listed})",
    )
    b.sql(
        "valeurs_rattachees",
        "chaque valeur appartient à une réponse et à une question de la vague",
        None,
        "select v.vague, v.reponse_id, v.question from clean.questionnaire_valeurs as v "
        "where v.reponse_id not in (select reponse_id from clean.questionnaire_reponses) "
        "or not exists (select 1 from clean.questionnaire_questions as q "
        "where q.vague = v.vague and q.question = v.question)",
    )
    b.sql(
        "nombres_lus",
        "les réponses numériques sont des nombres",
        "valeur_nombre",
        "select v.vague, v.reponse_id, v.question from clean.questionnaire_valeurs as v "
        "join clean.questionnaire_questions as q using (vague, question) "
        "where q.type = 'nombre' and v.valeur_nombre is null",
    )
    _no_contact(b, "valeurs_sans_contact", "clean.questionnaire_valeurs", "reponse_id", ("valeur",))
    _no_contact(b, "rejets_sans_contact", "clean.questionnaire_rejets", "vague", ("motif",))
    _no_contact(
        b,
        "reponses_sans_contact",
        "clean.questionnaire_reponses",
        "reponse_id",
        ("nom", "adresse"),
    )
    b.sql(
        "taux_reponses_en_quarantaine",
        "informatif : au plus "
        f"{pct(rate)} des réponses ont une valeur mise en quarantaine (la réponse est gardée)",
        None,
        "select vague, rejets, lignes from (select r.vague, count(distinct q.ligne) as rejets, "
        "count(distinct r.ligne) as lignes from clean.questionnaire_reponses as r "
        "left join clean.questionnaire_rejets as q on q.vague = r.vague and q.ligne = r.ligne "
        f"group by r.vague) where rejets > {rate!r} * lignes",
        blocking=False,
    )


def _clean_membres(b: Builder, rate: float) -> None:
    b.add(
        "membre_id_renseigne",
        "identifiant de membre renseigné",
        "membre_id",
        b.gx.expectations.ExpectColumnValuesToNotBeNull(column="membre_id"),
    )
    b.unique("membre_id", "true")
    b.add(
        "type_reseau",
        "type de réseau parmi " + ", ".join(NETWORK_KINDS),
        "type_reseau",
        b.gx.expectations.ExpectColumnValuesToBeInSet(
            column="type_reseau", value_set=list(NETWORK_KINDS)
        ),
    )
    _identifiers_declared(b, "membre_id")
    _no_contact(b, "membres_sans_contact", "clean.reseaux_membres", "membre_id", ("nom", "adresse"))
    _no_contact(b, "rejets_sans_contact", "clean.reseaux_rejets", "reseau", ("motif",))
    b.sql(
        "taux_membres_en_quarantaine",
        f"part des lignes de liste écartées au plus {pct(rate)} par réseau",
        None,
        "select reseau, rejets, lignes from (select r.reseau, "
        "(select count(distinct x.ligne) from clean.reseaux_rejets as x "
        "where x.reseau = r.reseau and x.ligne not in (select m.ligne from "
        "clean.reseaux_membres as m where m.reseau = r.reseau)) as rejets, "
        "(select count(*) from clean.reseaux_membres as m where m.reseau = r.reseau) as lignes "
        f"from clean.reseaux as r) where rejets > {rate!r} * (rejets + lignes)",
    )


def _rapprochements(b: Builder, mois: str) -> None:
    b.month(mois)
    for column, allowed in (("methode", LINK_METHODS), ("statut", LINK_STATUSES)):
        b.add(
            f"{column}_connu",
            f"{column} parmi " + ", ".join(allowed),
            column,
            b.gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)),
        )
    b.add(
        "score_entre_0_et_1",
        "score entre 0 et 1",
        "score",
        b.gx.expectations.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1),
    )
    b.sql(
        "aucun_enregistrement_perdu",
        "chaque réponse et chaque membre a exactement une ligne de rapprochement "
        "(rien n'est écarté sans trace)",
        None,
        "select a.source, a.enregistrement_id, count(r.enregistrement_id) as lignes "
        "from clean.a_rapprocher as a left join (select * from {batch}) as r "
        "on r.source = a.source and r.enregistrement_id = a.enregistrement_id "
        "group by all having count(r.enregistrement_id) <> 1",
    )
    b.sql(
        "lien_vers_le_mois",
        "chaque lien trouvé par le rapprochement désigne un établissement du stock SIRENE du "
        "mois (une décision de revue peut désigner un établissement hors du territoire)",
        None,
        "select r.source, r.enregistrement_id from (select * from {batch}) as r "
        "where r.statut = 'lie' "
        "and r.methode <> 'decision' "
        "and (r.siret is null or r.siret not in (select siret from "
        f"clean.sirene_etablissements where mois = '{mois}'))",
    )
    b.sql(
        "une_reponse_retenue",
        "une seule réponse retenue par structure et par vague",
        None,
        "select cle_source, count(*) as lignes from {batch} where source = 'questionnaire' "
        "and statut = 'lie' and retenu group by cle_source, siret having count(*) > 1",
    )
    b.sql(
        "file_de_revue_sans_nom_non_diffusible",
        "la file de revue ne nomme aucun établissement non diffusible (ni par son nom dans "
        "SIRENE, ni par celui que l'enregistrement déclare à côté de lui)",
        None,
        "select q.enregistrement_id from clean.rapprochements_a_revoir as q "
        "join clean.sirene_etablissements as e on e.mois = q.mois and e.siret = q.siret_candidat "
        "left join clean.sirene_unites_legales as u on u.mois = e.mois and u.siren = e.siren "
        f"where q.mois = '{mois}' and (q.nom_candidat is not null or q.nom is not null) and "
        "(e.statut_diffusion is distinct from 'O' or u.statut_diffusion is distinct from 'O')",
    )


def _relation(suite: str, mois: str) -> str:
    if suite == "clean.rapprochements":
        return f"(select * from clean.rapprochements where mois = '{mois}')"
    return suite


def prepare(con: duckdb.DuckDBPyConnection, suite: str, mois: str) -> str:
    """Make sure the tables suite `suite` reads exist; the relation it validates for `mois`."""
    from observatoire.sources import inbox

    # an empty inbox is valid: its tables are empty, not absent
    inbox.ensure_tables(con)
    linkage.create_tables(con)
    linkage.create_source_view(con)
    schema, table = suite.split(".")
    warehouse.month_table(schema, table, mois)  # validates the month before it enters SQL
    return _relation(suite, mois)


def add_checks(b: Builder, suite: str, mois: str, rate: float) -> None:
    """The checks of source suite `suite`, in the order they are reported."""
    if suite == "raw.questionnaire_cellules":
        _raw_cells(
            b,
            suite,
            "vague",
            "raw.questionnaire_lectures",
            "raw.questionnaire_rejets_lecture",
            rate,
        )
    elif suite == "raw.reseaux_cellules":
        _raw_cells(b, suite, "reseau", "raw.reseaux_lectures", "raw.reseaux_rejets_lecture", rate)
    elif suite == "clean.questionnaire_reponses":
        _clean_reponses(b, rate)
    elif suite == "clean.reseaux_membres":
        _clean_membres(b, rate)
    else:
        _rapprochements(b, mois)
