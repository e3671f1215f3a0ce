-- Active ESS establishments of the territory that no declared network lists: an establishment
-- is "in a network" when at least one member of a current list (clean.reseaux_membres) is linked
-- to its SIRET in the month (clean.rapprochements, source 'reseau', statut 'lie'), whatever the
-- network. Unlinked members cannot be matched to an establishment, so the share outside networks
-- is an upper bound: it falls as linkage improves. Per level x ESS family, margin 'ensemble'.
-- Empty while no network list is declared: "all outside networks" would then say nothing.
-- Only public lists count: a list declared confidential (clean.reseaux.confidentiel) would tell
-- its members through this public table; its own rows of reseaux_couverture go through the
-- statistical-secrecy mask instead. The share outside networks stays an upper bound.
-- Establishments are first counted per commune, then joined to the levels and rolled up.
with en_reseau as (
    select distinct r.siret
    from clean.rapprochements as r
    join clean.reseaux_membres as m
      on m.reseau = r.cle_source and m.membre_id = r.enregistrement_id
    join clean.reseaux as l on l.reseau = m.reseau and not coalesce(l.confidentiel, false)
    where r.mois = $mois and r.source = 'reseau' and r.statut = 'lie'
),
base as (
    select
        e.code_commune,
        e.famille_ess as famille,
        count(*) as n,
        count(x.siret) as n_reseau
    from clean.etablissements_perimetre as e
    left join en_reseau as x on x.siret = e.siret
    where e.mois = $mois and e.actif and e.ess
      and exists (
          select 1 from clean.reseaux_membres as m
          join clean.reseaux as l on l.reseau = m.reseau and not coalesce(l.confidentiel, false)
      )
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
    case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
    sum(n)::bigint as nb_ess_actifs,
    sum(n_reseau)::bigint as nb_dans_un_reseau,
    (sum(n) - sum(n_reseau))::bigint as nb_hors_reseau,
    round((sum(n) - sum(n_reseau)) / sum(n), 4) as part_hors_reseau
from p
group by niveau, rang, code_territoire, libelle_territoire, cube (famille)
