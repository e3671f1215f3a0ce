-- Salaried jobs estimated from the headcount bands (tranche d'effectifs) of active employer
-- establishments, as an interval: low = sum of band minima, high = sum of band maxima (the open
-- band "10 000 et plus" counts its minimum), central = sum of band midpoints. Employer
-- establishments without a usable band (missing or NN) add nothing and are reported as a share,
-- with the range of band years (anneeEffectifs) behind the figure.
-- Rows are first counted per commune (a few million cells nationally instead of 42 M rows),
-- then joined to the levels and rolled up: the cube then never holds establishments.
with base as (
    select
        e.code_commune,
        case when e.ess then 'ess' else 'hors_ess' end as perimetre,
        coalesce(e.famille_ess, 'hors_ess') as famille,
        coalesce(e.naf_section, 'non_classe') as section_naf,
        coalesce(e.tranche_effectifs, 'non_renseignee') as tranche_effectifs,
        count(*) as n,
        sum(e.effectif_min) as bas,
        sum((e.effectif_min + coalesce(e.effectif_max, e.effectif_min)) / 2.0) as central,
        sum(coalesce(e.effectif_max, e.effectif_min)) as haut,
        count(*) filter (where e.effectif_min is null) as inconnue,
        min(e.annee_effectifs) as annee_min,
        max(e.annee_effectifs) as annee_max
    from clean.etablissements_perimetre as e
    where e.mois = $mois and e.actif and e.employeur
    group by all
),
p as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.* exclude (code_commune)
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
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
