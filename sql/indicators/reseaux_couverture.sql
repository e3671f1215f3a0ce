-- What each declared network's member list covers in the territory: members found in SIRENE
-- (linked, statut 'lie' in the month's clean.rapprochements), among them active or closed, the
-- active ones ESS or not, members not found, and the salaried jobs of the active employer
-- members as an interval (band minima / midpoints / maxima, as emplois_salaries_estimes).
-- A unit is a distinct linked SIRET within a network (several list rows linked to the same
-- establishment count once), or an unlinked list row (cannot be de-duplicated).
-- Linked members are placed where SIRENE locates the establishment; unlinked members at their
-- declared commune (clean.reseaux_membres.code_commune) when it is a commune of the territory.
-- Unlinked members without a declared commune, and members located outside the territory, are
-- counted nowhere: lists are often national, so a member of unknown place cannot be assumed in.
-- nb_etablissements_emplois (units with a positive central estimate) and emplois_max_unite (the
-- largest unit's central estimate) let a dominance rule be applied before publication.
-- No total over networks: an establishment may belong to several (see ess_hors_reseau).
-- Units are first counted per commune, then joined to the levels and rolled up.
with membres as (
    select
        m.reseau,
        m.type_reseau,
        m.code_commune as commune_declaree,
        r.siret
    from clean.reseaux_membres as m
    left join clean.rapprochements as r
      on r.mois = $mois and r.source = 'reseau' and r.cle_source = m.reseau
     and r.enregistrement_id = m.membre_id and r.statut = 'lie'
),
lies as (
    select distinct reseau, type_reseau, siret from membres where siret is not null
),
unites as (
    select
        l.reseau, l.type_reseau, e.code_commune,
        e.actif, e.ess,
        case when e.actif and e.employeur then e.effectif_min end as bas,
        case when e.actif and e.employeur
            then (e.effectif_min + coalesce(e.effectif_max, e.effectif_min)) / 2.0 end as central,
        case when e.actif and e.employeur
            then coalesce(e.effectif_max, e.effectif_min) end as haut
    from lies as l
    join clean.etablissements_perimetre as e on e.mois = $mois and e.siret = l.siret
),
base as (
    select
        reseau, type_reseau, code_commune,
        count(*) as n_trouves,
        0 as n_non_trouves,
        count(*) filter (where actif) as n_actifs,
        count(*) filter (where not actif) as n_fermes,
        count(*) filter (where actif and ess) as n_ess,
        count(*) filter (where actif and not ess) as n_hors_ess,
        sum(bas) as bas,
        sum(central) as central,
        sum(haut) as haut,
        count(*) filter (where central > 0) as n_emplois,
        max(central) filter (where central > 0) as max_unite
    from unites
    group by all
    union all
    select
        reseau, type_reseau, commune_declaree,
        0, count(*), 0, 0, 0, 0, null, null, null, 0, null
    from membres
    where siret is null and commune_declaree is not null
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
    reseau, type_reseau,
    niveau, code_territoire, libelle_territoire,
    (sum(n_trouves) + sum(n_non_trouves))::bigint as nb_membres,
    sum(n_trouves)::bigint as nb_trouves_sirene,
    sum(n_actifs)::bigint as nb_actifs,
    sum(n_fermes)::bigint as nb_fermes,
    sum(n_ess)::bigint as nb_ess,
    sum(n_hors_ess)::bigint as nb_hors_ess,
    sum(n_non_trouves)::bigint as nb_non_trouves,
    coalesce(sum(bas), 0)::bigint as emplois_bas,
    coalesce(sum(central), 0)::double as emplois_central,
    coalesce(sum(haut), 0)::bigint as emplois_haut,
    sum(n_emplois)::bigint as nb_etablissements_emplois,
    max(max_unite)::double as emplois_max_unite
from p
group by reseau, type_reseau, niveau, rang, code_territoire, libelle_territoire
