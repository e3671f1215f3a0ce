-- Needs cited in each questionnaire wave, per category of the needs taxonomy (besoin): among
-- the respondents of a cell, how many cited the need at least once (any answer value carrying
-- that category in clean.questionnaire_valeurs: a "yes" to a need question, or a chosen option).
-- Same population as taux_reponse: active ESS establishments with a linked (statut 'lie') and
-- retained (retenu) answer, counted as distinct establishments; unlinked answers cannot be
-- placed in a territory or a family. Cube level x family x NAF section x headcount band, margins
-- 'ensemble' included; there is no besoin 'ensemble': shares are given per need only.
-- Rows are the waves times the needs their mapping can record (clean.questionnaire_besoins)
-- times the cells of the (public) ESS population, whether anyone answered or cited or not: the
-- presence of a row tells nothing about the answers.
-- Respondents are first counted per commune, then joined to the levels and rolled up.
with population as (
    select distinct
        e.code_commune,
        e.famille_ess as famille,
        coalesce(e.naf_section, 'non_classe') as section_naf,
        coalesce(e.tranche_effectifs, 'non_renseignee') as tranche_effectifs
    from clean.etablissements_perimetre as e
    where e.mois = $mois and e.actif and e.ess
),
vagues as (
    select distinct r.cle_source as vague
    from clean.rapprochements as r
    where r.mois = $mois and r.source = 'questionnaire'
),
repondants as (
    select distinct
        r.cle_source as vague,
        r.siret,
        e.code_commune,
        e.famille_ess as famille,
        coalesce(e.naf_section, 'non_classe') as section_naf,
        coalesce(e.tranche_effectifs, 'non_renseignee') as tranche_effectifs
    from clean.rapprochements as r
    join clean.etablissements_perimetre as e on e.mois = r.mois and e.siret = r.siret
    where r.mois = $mois and r.source = 'questionnaire' and r.statut = 'lie' and r.retenu
      and e.actif and e.ess
),
citations as (
    select distinct r.cle_source as vague, r.siret, v.besoin
    from clean.rapprochements as r
    join clean.questionnaire_valeurs as v
      on v.vague = r.cle_source and v.reponse_id = r.enregistrement_id
    where r.mois = $mois and r.source = 'questionnaire' and r.statut = 'lie' and r.retenu
      and v.besoin is not null
),
besoins as (
    select b.vague, b.besoin
    from clean.questionnaire_besoins as b
    join vagues as v on v.vague = b.vague
),
comptes as (
    select
        rp.vague, b.besoin, rp.code_commune, rp.famille, rp.section_naf, rp.tranche_effectifs,
        count(*) as n_rep,
        count(c.siret) as n_cit
    from repondants as rp
    join besoins as b on b.vague = rp.vague
    left join citations as c
      on c.vague = rp.vague and c.siret = rp.siret and c.besoin = b.besoin
    group by all
),
base as (
    select p.*, coalesce(c.n_rep, 0) as n_rep, coalesce(c.n_cit, 0) as n_cit
    from (select * from besoins cross join population) as p
    left join comptes as c
      on c.vague = p.vague and c.besoin = p.besoin and c.code_commune = p.code_commune
     and c.famille = p.famille and c.section_naf = p.section_naf
     and c.tranche_effectifs = p.tranche_effectifs
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
    vague,
    besoin,
    niveau, code_territoire, libelle_territoire,
    case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
    case when grouping(section_naf) = 1 then 'ensemble' else section_naf end as section_naf,
    case when grouping(tranche_effectifs) = 1 then 'ensemble' else tranche_effectifs end
        as tranche_effectifs,
    sum(n_rep)::bigint as nb_repondants,
    sum(n_cit)::bigint as nb_citant,
    round(sum(n_cit) / nullif(sum(n_rep), 0), 4) as part_citant
from p
group by vague, besoin, niveau, rang, code_territoire, libelle_territoire,
    cube (famille, section_naf, tranche_effectifs)
