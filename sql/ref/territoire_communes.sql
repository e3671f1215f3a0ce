-- Communes (or municipal arrondissements, as SIRENE locates establishments there) of the chosen
-- territory, with every level they belong to. $codes is the list resolved from the territory
-- setting by observatoire.territory.
select
    c.code_commune,
    c.libelle_commune,
    c.code_departement,
    c.nom_departement,
    c.code_region,
    c.nom_region,
    nullif(c.code_epci, '') as code_epci,
    nullif(c.nom_epci, '') as nom_epci,
    e.code_ept,
    e.libelle_ept as nom_ept
from ref.communes as c
left join ref.ept_communes as e on e.code_commune = c.code_commune
where list_contains($codes, c.code_commune)
  and c.code_commune not in ('75056', '69123', '13055')
