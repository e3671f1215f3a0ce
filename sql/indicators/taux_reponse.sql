-- Response rate of each questionnaire wave: the survey addresses the territory's active ESS
-- establishments, so the rate is (active ESS establishments with a linked, retained answer) /
-- (active ESS establishments) in every cell of the level x family x NAF section x headcount
-- band cube, margins 'ensemble' included (famille = 'ensemble' is the whole ESS).
-- Only answers linked to an establishment (clean.rapprochements, statut 'lie') can be placed in
-- a cell; among them only the retained one of a structure in a wave (retenu) counts, and
-- respondents are counted as distinct establishments, so the rate never exceeds 1.
-- Respondents whose establishment is active but outside the ESS are not part of the rate; they
-- are reported in nb_repondants_hors_ess, filled on each territory's total row only (famille,
-- section and band 'ensemble'). Answers linked to a closed establishment are counted nowhere.
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
    select r.vague, c.code_commune, c.famille, c.section_naf, c.tranche_effectifs,
        count(*) as n_rep
    from repondants as r
    join cellules as c on c.siret = r.siret
    where c.ess
    group by all
),
-- respondents outside the ESS, per commune: published on each territory's total row only
hors as (
    select r.vague, n.niveau, n.code_territoire, count(*) as n_rep_hors
    from repondants as r
    join cellules as c on c.siret = r.siret
    -- the territory and its own levels only: answers and lists describe the territory
    join clean.niveaux_publies as n
      on n.mois = $mois and n.code_commune = c.code_commune and not n.englobant
    where not c.ess
    group by all
),
-- rows are the waves times the cells of the (public) ESS population, whether anyone answered
-- or not: the presence of a row tells nothing about the answers
base as (
    select p.*, coalesce(r.n_rep, 0) as n_rep
    from (select * from vagues cross join population) as p
    left join reponses as r
      on r.vague = p.vague and r.code_commune = p.code_commune and r.famille = p.famille
     and r.section_naf = p.section_naf and r.tranche_effectifs = p.tranche_effectifs
),
p as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.* exclude (code_commune)
    from base as b
    -- the territory and its own levels only: answers and lists describe the territory
    join clean.niveaux_publies as n
      on n.mois = $mois and n.code_commune = b.code_commune and not n.englobant
),
cube as (
    select
        vague,
        niveau, rang, code_territoire, libelle_territoire,
        case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
        case when grouping(section_naf) = 1 then 'ensemble' else section_naf end as section_naf,
        case when grouping(tranche_effectifs) = 1 then 'ensemble' else tranche_effectifs end
            as tranche_effectifs,
        sum(n_ess)::bigint as nb_etablissements_ess,
        sum(n_rep)::bigint as nb_repondants
    from p
    group by vague, niveau, rang, code_territoire, libelle_territoire,
        cube (famille, section_naf, tranche_effectifs)
)
select
    $mois as mois,
    c.vague,
    c.niveau, c.code_territoire, c.libelle_territoire,
    c.famille, c.section_naf, c.tranche_effectifs,
    c.nb_etablissements_ess,
    c.nb_repondants,
    round(c.nb_repondants / nullif(c.nb_etablissements_ess, 0), 4) as taux_reponse,
    case when c.famille = 'ensemble' and c.section_naf = 'ensemble'
          and c.tranche_effectifs = 'ensemble'
        then coalesce(h.n_rep_hors, 0) end::bigint as nb_repondants_hors_ess
from cube as c
left join hors as h
  on h.vague = c.vague and h.niveau = c.niveau and h.code_territoire = c.code_territoire
