-- One row per (commune, level) the refresh may publish, in two kinds:
--
-- * the territory's own levels (englobant = false): its communes, and every unit (EPT, EPCI,
--   département, région) *entirely* inside it. A unit only partly inside is not one of them:
--   its figure, counted over the territory's communes alone, would mislead. $nom_territoire
--   names the selection itself when it is not one of the standard levels (a list of communes,
--   France);
-- * the units that hold part of the territory without lying inside it (englobant = true): its
--   EPT and EPCI, the département(s) and région(s) containing it, published for comparison.
--   Their rows list ALL their communes, those outside the territory included, so that their
--   figures are the whole unit's. The stock must hold those communes: ref.communes_lues reads
--   them, and the month's coverage (sql/clean/couverture_niveaux.sql) leaves out a unit the
--   month's stock does not cover (a regional extract, the demo's stock).
--
-- The level `commune` is the territory's own communes only: an EPT's refresh publishes its 24
-- communes, not the 1,300 of its région. Readers tell a unit containing the territory from the
-- territory's own units by `englobant` (published in indicators.territoires).
with units as (
    -- geographic units where SIRENE locates establishments: arrondissements replace their city
    select * from ref.communes where code_commune not in ('75056', '69123', '13055')
),
memberships as (
    -- every unit above the commune, with all its communes, for the whole country
    select u.code_commune, 'ept' as niveau, 2 as rang, e.code_ept as code_territoire,
           e.libelle_ept as libelle_territoire
    from units as u
    join ref.ept_communes as e on e.code_commune = u.code_commune
    union all
    select code_commune, 'epci', 3, code_epci, nom_epci from units where code_epci <> ''
    union all
    select code_commune, 'departement', 4, code_departement, nom_departement from units
    union all
    select code_commune, 'region', 5, code_region, nom_region from units
),
unit_size as (
    select niveau, code_territoire, count(*) as n from memberships group by all
),
inside as (
    -- units holding at least one commune of the territory, with how many
    select m.niveau, m.code_territoire, count(*) as n
    from memberships as m
    join ref.territoire_communes as t on t.code_commune = m.code_commune
    group by all
)
select code_commune, 'commune' as niveau, 1 as rang, code_commune as code_territoire,
       libelle_commune as libelle_territoire, false as englobant
from ref.territoire_communes
union all
select m.code_commune, m.niveau, m.rang, m.code_territoire, m.libelle_territoire,
       i.n < s.n as englobant
from memberships as m
join inside as i on i.niveau = m.niveau and i.code_territoire = m.code_territoire
join unit_size as s on s.niveau = m.niveau and s.code_territoire = m.code_territoire
union all
select code_commune, 'selection', 6, 'selection', $nom_territoire, false
from ref.territoire_communes
where $nom_territoire is not null
