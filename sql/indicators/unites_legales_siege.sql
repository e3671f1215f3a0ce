-- Active legal units whose head office (siège) is in the territory, classified as their
-- head-office establishment (ESS rule, NAF section) and by the legal unit's own headcount band.
with u as (
    select u.siren, u.tranche_effectifs, s.code_commune, s.ess, s.famille_ess, s.naf_section
    from clean.sirene_unites_legales as u
    join clean.etablissements_perimetre as s
      on s.mois = u.mois and s.siret = u.siren || u.nic_siege
    where u.mois = $mois and u.etat_administratif = 'A'
),
-- counted per commune first, then rolled up (as every cube)
base as (
    select
        u.code_commune,
        case when u.ess then 'ess' else 'hors_ess' end as perimetre,
        coalesce(u.famille_ess, 'hors_ess') as famille,
        coalesce(u.naf_section, 'non_classe') as section_naf,
        coalesce(u.tranche_effectifs, 'non_renseignee') as tranche_effectifs,
        count(*) as n
    from u
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
    sum(n)::bigint as nb_unites_legales
from p
group by niveau, rang, code_territoire, libelle_territoire,
    cube (perimetre, famille, section_naf, tranche_effectifs)
having not (grouping(perimetre) = 1 and grouping(famille) = 0)
