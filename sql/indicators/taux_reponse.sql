-- Response rate of each questionnaire wave: the survey addresses the territory's active ESS
-- establishments, so the rate is (active ESS establishments with a linked, retained answer) /
-- (active ESS establishments) in every cell of the level x family x NAF section x headcount
-- band cube, margins 'ensemble' included (famille = 'ensemble' is the whole ESS).
-- Only answers linked to an establishment (clean.rapprochements, statut 'lie') can be placed in
-- a cell; among them only the retained one of a structure in a wave (retenu) counts, and
-- respondents are counted as distinct establishments, so the rate never exceeds 1.
-- Respondents whose establishment is active but outside the ESS are not part of the rate; they
-- are reported in nb_repondants_hors_ess, which is filled on famille = 'ensemble' rows only
-- (they have no ESS family). Answers linked to a closed establishment are counted nowhere.
-- Both sides are first counted per commune, then joined to the levels and rolled up.
with vagues as (
    select distinct r.cle_source as vague
    from clean.rapprochements as r
    where r.mois = $mois and r.source = 'questionnaire'
),
cellules as (
    select
        e.siret,
        e.code_commune,
        e.ess,
        coalesce(e.famille_ess, 'hors_ess') as famille,
        coalesce(e.naf_section, 'non_classe') as section_naf,
        coalesce(e.tranche_effectifs, 'non_renseignee') as tranche_effectifs
    from clean.etablissements_perimetre as e
    where e.mois = $mois and e.actif
),
population as (
    select code_commune, famille, section_naf, tranche_effectifs, count(*) as n_ess
    from cellules
    where ess
    group by all
),
repondants as (
    select distinct r.cle_source as vague, r.siret
    from clean.rapprochements as r
    where r.mois = $mois and r.source = 'questionnaire' and r.statut = 'lie' and r.retenu
),
reponses as (
    select
        r.vague, c.code_commune, c.famille, c.section_naf, c.tranche_effectifs,
        count(*) filter (where c.ess) as n_rep,
        count(*) filter (where not c.ess) as n_rep_hors
    from repondants as r
    join cellules as c on c.siret = r.siret
    group by all
),
base as (
    select
        coalesce(p.vague, r.vague) as vague,
        coalesce(p.code_commune, r.code_commune) as code_commune,
        coalesce(p.famille, r.famille) as famille,
        coalesce(p.section_naf, r.section_naf) as section_naf,
        coalesce(p.tranche_effectifs, r.tranche_effectifs) as tranche_effectifs,
        coalesce(p.n_ess, 0) as n_ess,
        coalesce(r.n_rep, 0) as n_rep,
        coalesce(r.n_rep_hors, 0) as n_rep_hors
    from (select * from vagues cross join population) as p
    full join reponses as r
      on r.vague = p.vague and r.code_commune = p.code_commune and r.famille = p.famille
     and r.section_naf = p.section_naf and r.tranche_effectifs = p.tranche_effectifs
),
p as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.* exclude (code_commune)
    from base as b
    join ref.territoire_niveaux as n on n.code_commune = b.code_commune
)
select
    $mois as mois,
    vague,
    niveau, code_territoire, libelle_territoire,
    case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
    case when grouping(section_naf) = 1 then 'ensemble' else section_naf end as section_naf,
    case when grouping(tranche_effectifs) = 1 then 'ensemble' else tranche_effectifs end
        as tranche_effectifs,
    sum(n_ess)::bigint as nb_etablissements_ess,
    sum(n_rep)::bigint as nb_repondants,
    round(sum(n_rep) / nullif(sum(n_ess), 0), 4) as taux_reponse,
    sum(n_rep_hors)::bigint as nb_repondants_hors_ess
from p
group by vague, niveau, rang, code_territoire, libelle_territoire,
    cube (famille, section_naf, tranche_effectifs)
-- hors-ESS respondents have no ESS family: they only appear in the famille = 'ensemble' margin
having not (grouping(famille) = 0 and famille = 'hors_ess')
