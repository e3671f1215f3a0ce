-- Directory of the territory's active ESS establishments, for the territory's staff.
-- Only units whose establishment AND legal unit are diffusible (statut de diffusion 'O') are
-- listed: partially diffusible units are counted in every aggregate but never named or located.
-- Each table is reduced to the month first: joined on `mois` as well, the establishments and the
-- legal units shared a condition, and DuckDB once joined them on it alone (a cross product of
-- two months of 4.9 and 4.5 M rows that filled the disk: département 94 on national files).
with p as (
    select * from clean.etablissements_perimetre
    where mois = $mois and actif and ess and diffusible
),
e as (
    select siret, enseigne, denomination_usuelle, numero_voie, indice_repetition, type_voie,
        libelle_voie, code_postal, x_lambert93, y_lambert93
    from clean.sirene_etablissements
    where mois = $mois
),
u as (
    select siren, denomination from clean.sirene_unites_legales where mois = $mois
)
select
    $mois as mois,
    p.siret,
    p.siren,
    u.denomination,
    e.enseigne,
    e.denomination_usuelle,
    p.famille_ess,
    p.categorie_juridique,
    p.activite_principale,
    p.naf_section,
    p.tranche_effectifs,
    p.employeur,
    p.etablissement_siege,
    concat_ws(' ', e.numero_voie, e.indice_repetition, e.type_voie, e.libelle_voie) as adresse,
    e.code_postal,
    p.code_commune,
    c.libelle_commune,
    e.x_lambert93,
    e.y_lambert93,
    p.date_creation
from p
join e on e.siret = p.siret
join u on u.siren = p.siren
join ref.territoire_communes as c on c.code_commune = p.code_commune
