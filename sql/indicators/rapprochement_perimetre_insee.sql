-- Where the legal-category perimeter and INSEE's ESS flag (economieSocialeSolidaireUniteLegale)
-- agree or disagree, for the territory's active establishments and their legal units. The cases
-- 'categorie_ess_indicateur_n', 'categorie_ess_indicateur_vide' and
-- 'categorie_hors_ess_indicateur_o' are the disagreements the method must arbitrate; `regle`
-- gives the final decision for each case (an establishment agreeing on both sides can still be
-- out of the ESS by its activity, 'naf_exclu'). Rows cas = regle = 'ensemble' are the totals.
with p as (
    select
        e.code_commune, e.siren, e.regle,
        case
            when e.categorie_juridique is null then 'unite_legale_absente'
            when e.categorie_juridique = '1000' and e.indicateur_ess_insee = 'O'
                then 'personne_physique_indicateur_o'
            when e.perimetre_categorie_juridique and e.indicateur_ess_insee = 'O'
                then 'categorie_ess_indicateur_o'
            when e.perimetre_categorie_juridique and e.indicateur_ess_insee = 'N'
                then 'categorie_ess_indicateur_n'
            when e.perimetre_categorie_juridique then 'categorie_ess_indicateur_vide'
            when e.indicateur_ess_insee = 'O' then 'categorie_hors_ess_indicateur_o'
            else 'hors_ess_concordant'
        end as cas
    from clean.etablissements_perimetre as e
    where e.mois = $mois and e.actif
),
-- Legal units are counted once per level even when they have establishments in several of its
-- communes: count(distinct) over 42 M rows x 5 levels does not fit in memory nationally, so the
-- distinct is made by ordinary (spillable) grouping, one row per legal unit and level.
base as (
    select code_commune, cas, regle, siren, count(*) as n from p group by all
),
by_unit as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.cas, b.regle, b.siren,
        sum(b.n) as n
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
    group by all
),
by_case as (
    select niveau, rang, code_territoire, libelle_territoire, cas, regle,
        sum(n)::bigint as nb_etablissements_actifs, count(*) as nb_unites_legales
    from by_unit
    group by all
),
totals as (
    select niveau, rang, code_territoire, libelle_territoire,
        sum(n)::bigint as nb_etablissements_actifs, count(*) as nb_unites_legales
    from (
        select niveau, rang, code_territoire, libelle_territoire, siren, sum(n) as n
        from by_unit group by all
    )
    group by all
)
select
    $mois as mois, niveau, code_territoire, libelle_territoire, cas, regle,
    cas in (
        'categorie_ess_indicateur_n', 'categorie_ess_indicateur_vide',
        'categorie_hors_ess_indicateur_o', 'personne_physique_indicateur_o') as desaccord,
    nb_etablissements_actifs, nb_unites_legales
from by_case
union all
select
    $mois, niveau, code_territoire, libelle_territoire, 'ensemble', 'ensemble', null,
    nb_etablissements_actifs, nb_unites_legales
from totals
