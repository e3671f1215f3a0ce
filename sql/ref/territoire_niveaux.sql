-- One row per (commune, level) for every level *entirely* inside the chosen territory: a unit
-- that is only partly covered (the Métropole du Grand Paris for an EPT, a département for an EPT
-- spanning two) would be given a misleading figure, so it is left out. $nom_territoire names the
-- selection itself when it is not one of the standard levels (a list of communes, France).
with units as (
    -- geographic units where SIRENE locates establishments: arrondissements replace their city
    select * from ref.communes where code_commune not in ('75056', '69123', '13055')
),
levels as (
    select code_commune, 'commune' as niveau, 1 as rang, code_commune as code_territoire,
           libelle_commune as libelle_territoire
    from ref.territoire_communes
    union all
    select code_commune, 'ept', 2, code_ept, nom_ept
    from ref.territoire_communes where code_ept is not null
    union all
    select code_commune, 'epci', 3, code_epci, nom_epci
    from ref.territoire_communes where code_epci is not null
    union all
    select code_commune, 'departement', 4, code_departement, nom_departement
    from ref.territoire_communes
    union all
    select code_commune, 'region', 5, code_region, nom_region
    from ref.territoire_communes
),
unit_size as (
    select 'ept' as niveau, e.code_ept as code_territoire, count(*) as n
    from ref.ept_communes as e group by all
    union all
    select 'epci', code_epci, count(*) from units where code_epci <> '' group by all
    union all
    select 'departement', code_departement, count(*) from units group by all
    union all
    select 'region', code_region, count(*) from units group by all
),
covered as (
    select niveau, code_territoire, count(*) as n from levels group by all
),
complete_levels as (
    select l.*
    from levels as l
    join covered as c using (niveau, code_territoire)
    left join unit_size as u using (niveau, code_territoire)
    where l.niveau = 'commune' or c.n = u.n
)
select * from complete_levels
union all
select code_commune, 'selection', 6, 'selection', $nom_territoire
from ref.territoire_communes
where $nom_territoire is not null
