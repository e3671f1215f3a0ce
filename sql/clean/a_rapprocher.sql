-- Everything the linkage must place in SIRENE: questionnaire answers and network members, in
-- one shape, so that one linker (observatoire/linkage.py) serves both and a record can never
-- be missed by one path and not the other. Names here are structures' names (organisations),
-- never respondents': personal data stays in raw.*.
select
    'questionnaire' as source,
    r.vague as cle_source,
    r.reponse_id as enregistrement_id,
    r.siret_declare,
    r.siren_declare,
    r.nom,
    r.adresse,
    r.code_postal,
    r.code_commune,
    r.horodatage
from clean.questionnaire_reponses as r
union all
select
    'reseau',
    m.reseau,
    m.membre_id,
    m.siret_declare,
    m.siren_declare,
    m.nom,
    m.adresse,
    m.code_postal,
    m.code_commune,
    null::timestamp
from clean.reseaux_membres as m
