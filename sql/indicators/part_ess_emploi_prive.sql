-- Weight of the ESS in the private sector: share of active private employer establishments
-- that are ESS, and share of the estimated private salaried jobs (central estimate, with the
-- low and high bounds of both numerator and denominator) held by ESS establishments.
-- Private = legal units other than legal persons of public law (catégories 4xxx and 7xxx).
-- Rolled up from the month's per-commune cells (clean.base_communale, built with the
-- perimeter): joined to the levels, the cube never holds establishments.
with base as (
    select
        code_commune, section_naf, tranche_effectifs, perimetre = 'ess' as ess,
        sum(n) as n, sum(coalesce(bas, 0)) as bas, sum(coalesce(central, 0)) as central,
        sum(coalesce(haut, 0)) as haut
    from clean.base_communale
    where mois = $mois and employeur and prive
    group by all
),
-- the cells summed per level first: a département or a région holds far fewer cells than
-- its communes together, and the cube then runs over those (half the time nationally)
p as (
    select
        n.niveau, n.rang, n.code_territoire, n.libelle_territoire,
        b.section_naf, b.tranche_effectifs, b.ess,
        sum(b.n) as n,
        sum(b.bas) as bas,
        sum(b.central) as central,
        sum(b.haut) as haut
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
    group by all
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire,
    case when grouping(section_naf) = 1 then 'ensemble' else section_naf end as section_naf,
    case when grouping(tranche_effectifs) = 1 then 'ensemble' else tranche_effectifs end
        as tranche_effectifs,
    sum(n)::bigint as nb_etablissements_employeurs_prives,
    coalesce(sum(n) filter (where ess), 0)::bigint as nb_etablissements_employeurs_ess,
    round(coalesce(sum(n) filter (where ess), 0) / sum(n), 4) as part_ess_etablissements,
    sum(central) as emplois_prives_central,
    coalesce(sum(central) filter (where ess), 0) as emplois_ess_central,
    round(coalesce(sum(central) filter (where ess), 0) / nullif(sum(central), 0), 4)
        as part_ess_emplois,
    sum(bas) as emplois_prives_bas,
    sum(haut) as emplois_prives_haut,
    coalesce(sum(bas) filter (where ess), 0) as emplois_ess_bas,
    coalesce(sum(haut) filter (where ess), 0) as emplois_ess_haut
from p
group by niveau, rang, code_territoire, libelle_territoire, cube (section_naf, tranche_effectifs)
