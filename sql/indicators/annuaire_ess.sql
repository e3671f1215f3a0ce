-- Directory of the territory's active ESS establishments, for the territory's staff.
-- Only units whose establishment AND legal unit are diffusible (statut de diffusion 'O') are
-- listed: partially diffusible units are counted in every aggregate but never named or located.
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
from clean.etablissements_perimetre as p
join clean.sirene_etablissements as e on e.mois = p.mois and e.siret = p.siret
join clean.sirene_unites_legales as u on u.mois = p.mois and u.siren = p.siren
join ref.territoire_communes as c on c.code_commune = p.code_commune
where p.mois = $mois and p.actif and p.ess and p.diffusible
