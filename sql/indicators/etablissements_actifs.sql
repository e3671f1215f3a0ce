-- Active establishments (etat administratif A) located in the territory, ESS or not, for every
-- level published this month (clean.niveaux_publies: the territory's own levels, and the units
-- containing it that the month's stock covers), with all margins of family x NAF section x
-- headcount band.
-- Rolled up from the month's per-commune cells (clean.base_communale, built with the
-- perimeter): joined to the levels, the cube never holds establishments.
with base as (
    select code_commune, perimetre, famille, section_naf, tranche_effectifs, sum(n) as n
    from clean.base_communale
    where mois = $mois
    group by all
),
-- the cells summed per level first: a département or a région holds far fewer cells than
-- its communes together, and the cube then runs over those (half the time nationally)
p as (
    select
        n.niveau, n.rang, n.code_territoire, n.libelle_territoire,
        b.perimetre, b.famille, b.section_naf, b.tranche_effectifs,
        sum(b.n) as n
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
    group by all
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire,
    case when grouping(perimetre) = 1 then 'ensemble' else perimetre end as perimetre,
    case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
    case when grouping(section_naf) = 1 then 'ensemble' else section_naf end as section_naf,
    case when grouping(tranche_effectifs) = 1 then 'ensemble' else tranche_effectifs end
        as tranche_effectifs,
    sum(n)::bigint as nb_etablissements
from p
group by niveau, rang, code_territoire, libelle_territoire,
    cube (perimetre, famille, section_naf, tranche_effectifs)
having not (grouping(perimetre) = 1 and grouping(famille) = 0)
