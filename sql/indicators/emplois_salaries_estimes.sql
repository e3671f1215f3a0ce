-- Salaried jobs estimated from the headcount bands (tranche d'effectifs) of active employer
-- establishments, as an interval: low = sum of band minima, high = sum of band maxima (the open
-- band "10 000 et plus" counts its minimum), central = sum of band midpoints. Employer
-- establishments without a usable band (missing or NN) add nothing and are reported as a share,
-- with the range of band years (anneeEffectifs) behind the figure.
-- Rolled up from the month's per-commune cells (clean.base_communale, built with the
-- perimeter): joined to the levels, the cube never holds establishments.
with base as (
    select
        code_commune, perimetre, famille, section_naf, tranche_effectifs,
        sum(n) as n, sum(bas) as bas, sum(central) as central, sum(haut) as haut,
        sum(inconnue) as inconnue, min(annee_min) as annee_min, max(annee_max) as annee_max
    from clean.base_communale
    where mois = $mois and employeur
    group by all
),
-- the cells summed per level first: a département or a région holds far fewer cells than
-- its communes together, and the cube then runs over those (half the time nationally)
p as (
    select
        n.niveau, n.rang, n.code_territoire, n.libelle_territoire,
        b.perimetre, b.famille, b.section_naf, b.tranche_effectifs,
        sum(b.n) as n,
        sum(b.bas) as bas,
        sum(b.central) as central,
        sum(b.haut) as haut,
        sum(b.inconnue) as inconnue,
        min(b.annee_min) as annee_min,
        max(b.annee_max) as annee_max
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
    sum(n)::bigint as nb_etablissements_employeurs,
    coalesce(sum(bas), 0) as emplois_bas,
    coalesce(sum(central), 0) as emplois_central,
    coalesce(sum(haut), 0) as emplois_haut,
    sum(inconnue)::bigint as nb_tranche_inconnue,
    round(sum(inconnue) / sum(n), 4) as part_tranche_inconnue,
    min(annee_min) as annee_effectifs_min,
    max(annee_max) as annee_effectifs_max
from p
group by niveau, rang, code_territoire, libelle_territoire,
    cube (perimetre, famille, section_naf, tranche_effectifs)
having not (grouping(perimetre) = 1 and grouping(famille) = 0)
