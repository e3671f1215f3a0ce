-- The ESS perimeter, decided and traced for every establishment of the month.
-- Rules, in order (docs/methode.md):
--   1. no legal unit in the month's StockUniteLegale        -> out, regle 'unite_legale_absente'
--   2. natural person (catégorie juridique 1000, or the former codes 1100–1900: niveau I « 1 »)
--                                                            -> out, regle 'personne_physique'
--   3. ESS by legal category or by INSEE's ESS flag, but the *establishment's* activity is in
--      ref.ess_naf_exclusions (division 84, 94.11Z, 94.20Z, 94.91Z, 94.92Z) or in its NAF 2025
--      image (84.xxY, 84.30G/H/J, 94.xxY), read in the nomenclature the row declares
--                                                            -> out, 'naf_exclu'
--   4. catégorie juridique in ref.ess_categories_juridiques -> in, family of that table,
--      regle 'categorie_juridique'
--   5. legal person of public law (catégories 4xxx, 7xxx), whatever its ESS flag -> out,
--      regle 'personne_publique' (the ESS is private by definition)
--   6. other legal unit with economieSocialeSolidaireUniteLegale = 'O' -> in, family
--      'societe_commerciale_ess', regle 'indicateur_ess_insee'
--   7. otherwise                                             -> out, 'hors_perimetre'
-- A legal category removed from INSEE's list (5720, 5498…) or unknown to every list is
-- classified by the same rules ("non classée": out unless the ESS flag or rule 5 says more).
-- 94.12Z (organisations professionnelles) is deliberately not excluded: see docs/methode.md.
with excluded_rev2 as (
    select code_naf from ref.ess_naf_exclusions where statut = 'cité'
),
excluded_2025 as (
    select distinct c.code_naf2025 as code_naf
    from ref.naf_rev2_naf_2025 as c
    join excluded_rev2 as x on x.code_naf = c.code_naf_rev2
),
e as (
    select * from clean.sirene_etablissements where mois = $mois
),
u as (
    select * from clean.sirene_unites_legales where mois = $mois
),
-- The join's build side is the month's legal units (28 M nationally). As text columns it
-- needed about 4 GB of hash table and thrashed under the warehouse's 2 GB limit (173 s for
-- the national perimeter, 42 s with 4 GB: measured). So it is built small: the siren as an
-- integer (clean sirens are 9 digits) and the unit's attributes as the number of their
-- combination among the month's few hundred distinct ones.
u_values as (
    select
        row_number() over (
            order by categorie_juridique, economie_sociale_solidaire, statut_diffusion
        )::integer as code,
        categorie_juridique, economie_sociale_solidaire, statut_diffusion
    from (
        select distinct categorie_juridique, economie_sociale_solidaire, statut_diffusion from u
    )
),
u_keys as (
    select cast(u.siren as integer) as siren, v.code
    from u
    join u_values as v
      on v.categorie_juridique is not distinct from (u.categorie_juridique)
     and v.economie_sociale_solidaire is not distinct from (u.economie_sociale_solidaire)
     and v.statut_diffusion is not distinct from (u.statut_diffusion)
),
joined as (
    select
        e.*,
        k.siren is not null as ul_presente,
        v.categorie_juridique,
        v.economie_sociale_solidaire,
        v.statut_diffusion as statut_diffusion_ul,
        f.famille_ess as famille_cj,
        f.base_classement,
        n3.code_n3 is null as cj_inconnue,
        coalesce(n3.supprime, false) as cj_supprimee,
        -- NAF rév. 2 rows by their main code; rows in NAF 2025, or in an older nomenclature
        -- with the NAF 2025 column filled, by their NAF 2025 code
        case
            when e.nomenclature_activite = 'NAFRev2'
                then e.activite_principale in (select code_naf from excluded_rev2)
            else coalesce(
                e.activite_principale_naf25 in (select code_naf from excluded_2025), false
            )
        end as naf_exclu
    from e
    left join u_keys as k on k.siren = cast(e.siren as integer)
    left join u_values as v on v.code = k.code
    left join ref.ess_categories_juridiques as f on f.code_cj = v.categorie_juridique
    left join ref.categories_juridiques_n3 as n3 on n3.code_n3 = v.categorie_juridique
),
ruled as (
    select
        *,
        case
            when not ul_presente then 'unite_legale_absente'
            when left(categorie_juridique, 1) = '1' then 'personne_physique'
            when (famille_cj is not null or economie_sociale_solidaire = 'O') and naf_exclu
                then 'naf_exclu'
            when famille_cj is not null then 'categorie_juridique'
            when left(categorie_juridique, 1) in ('4', '7') then 'personne_publique'
            when economie_sociale_solidaire = 'O' then 'indicateur_ess_insee'
            else 'hors_perimetre'
        end as regle
    from joined
)
select
    mois,
    siret,
    siren,
    code_commune,
    etablissement_siege,
    etat_administratif = 'A' as actif,
    -- employer: INSEE's employer flag when given, else a known headcount band other than NN
    coalesce(
        caractere_employeur = 'O',
        tranche_effectifs is not null and tranche_effectifs <> 'NN'
    ) as employeur,
    tranche_effectifs,
    effectif_min,
    effectif_max,
    annee_effectifs,
    activite_principale,
    nomenclature_activite,
    naf_division,
    naf_section,
    categorie_juridique,
    economie_sociale_solidaire as indicateur_ess_insee,
    regle in ('categorie_juridique', 'indicateur_ess_insee') as ess,
    case
        when regle = 'categorie_juridique' then famille_cj
        when regle = 'indicateur_ess_insee' then 'societe_commerciale_ess'
    end as famille_ess,
    regle,
    case regle
        when 'unite_legale_absente' then 'unité légale absente du stock du mois'
        when 'personne_physique' then 'entrepreneur individuel : hors ESS'
        when 'personne_publique' then 'personne morale de droit public ('
            || categorie_juridique || ') : hors ESS'
        when 'naf_exclu' then 'activité de l''établissement exclue (' || activite_principale || ')'
        when 'categorie_juridique' then 'catégorie juridique ' || categorie_juridique
            || ' (' || famille_cj || ', ' || base_classement || ')'
        when 'indicateur_ess_insee' then 'catégorie juridique ' || categorie_juridique
            || ' avec economieSocialeSolidaireUniteLegale = O'
        else 'catégorie juridique ' || coalesce(categorie_juridique, '?') || ' hors ESS'
    end
    || case
        when cj_inconnue and ul_presente
            then ' (catégorie inconnue des nomenclatures INSEE : non classée)'
        when cj_supprimee then ' (catégorie supprimée de la nomenclature INSEE, encore portée)'
        else ''
    end as regle_detail,
    famille_cj is not null as perimetre_categorie_juridique,
    -- private sector: everything but legal persons of public law (4xxx, 7xxx)
    ul_presente and left(categorie_juridique, 1) not in ('4', '7') as prive,
    -- diffusible only if both the establishment and its legal unit are 'O'
    coalesce(statut_diffusion = 'O' and statut_diffusion_ul = 'O', false) as diffusible,
    date_creation,
    case when etat_administratif = 'F' then date_debut end as date_fermeture
from ruled
