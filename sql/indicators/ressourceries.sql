-- Ressourceries and recycleries of the territory: active establishments linked (statut 'lie' in
-- the month's clean.rapprochements) from a member of a network declared with type
-- 'ressourcerie', each SIRET counted once even when several lists or rows name it. Salaried
-- jobs of the employer ones as an interval (band minima / midpoints / maxima, as
-- emplois_salaries_estimes), with the number of units contributing jobs and the largest unit's
-- central estimate, so that a dominance rule can be applied before publication.
-- Unlinked members cannot be placed on an establishment and are not counted: the count is a
-- lower bound (reseaux_couverture gives the members not found).
-- Only public lists count: a ressourcerie list declared confidential is masked in its own rows
-- of reseaux_couverture, and would tell its members through this public table.
-- Establishments are first counted per commune, then joined to the levels and rolled up.
with sirets as (
    select distinct r.siret
    from clean.rapprochements as r
    join clean.reseaux_membres as m
      on m.reseau = r.cle_source and m.membre_id = r.enregistrement_id
    join clean.reseaux as l on l.reseau = m.reseau and not coalesce(l.confidentiel, false)
    where r.mois = $mois and r.source = 'reseau' and r.statut = 'lie'
      and m.type_reseau = 'ressourcerie'
),
unites as (
    select
        e.code_commune,
        case when e.employeur then e.effectif_min end as bas,
        case when e.employeur
            then (e.effectif_min + coalesce(e.effectif_max, e.effectif_min)) / 2.0 end as central,
        case when e.employeur then coalesce(e.effectif_max, e.effectif_min) end as haut
    from sirets as s
    join clean.etablissements_perimetre as e on e.mois = $mois and e.siret = s.siret
    where e.actif
),
base as (
    select
        code_commune,
        count(*) as n,
        sum(bas) as bas,
        sum(central) as central,
        sum(haut) as haut,
        count(*) filter (where central > 0) as n_emplois,
        max(central) filter (where central > 0) as max_unite
    from unites
    group by all
),
p as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.* exclude (code_commune)
    from base as b
    -- the territory and its own levels only: answers and lists describe the territory
    join clean.niveaux_publies as n
      on n.mois = $mois and n.code_commune = b.code_commune and not n.englobant
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire,
    sum(n)::bigint as nb_ressourceries,
    coalesce(sum(bas), 0)::bigint as emplois_bas,
    coalesce(sum(central), 0)::double as emplois_central,
    coalesce(sum(haut), 0)::bigint as emplois_haut,
    sum(n_emplois)::bigint as nb_etablissements_emplois,
    max(max_unite)::double as emplois_max_unite
from p
group by niveau, rang, code_territoire, libelle_territoire
