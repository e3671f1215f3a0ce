-- Where the legal-category perimeter and INSEE's ESS flag (economieSocialeSolidaireUniteLegale)
-- agree or disagree, for the territory's active establishments and their legal units. The cases
-- 'categorie_ess_indicateur_n', 'categorie_ess_indicateur_vide' and
-- 'categorie_hors_ess_indicateur_o' are the disagreements the method must arbitrate; `regle`
-- gives the final decision for each case (an establishment agreeing on both sides can still be
-- out of the ESS by its activity, 'naf_exclu'). Rows cas = regle = 'ensemble' are the totals.
with p as (
    select
        n.niveau, n.rang, n.code_territoire, n.libelle_territoire, e.siren, e.regle,
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
    join ref.territoire_niveaux as n on n.code_commune = e.code_commune
    where e.mois = $mois and e.actif
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire,
    case when grouping(cas) = 1 then 'ensemble' else cas end as cas,
    case when grouping(regle) = 1 then 'ensemble' else regle end as regle,
    case when grouping(cas) = 1 then null else cas in (
        'categorie_ess_indicateur_n', 'categorie_ess_indicateur_vide',
        'categorie_hors_ess_indicateur_o', 'personne_physique_indicateur_o') end as desaccord,
    count(*) as nb_etablissements_actifs,
    count(distinct siren) as nb_unites_legales
from p
group by niveau, rang, code_territoire, libelle_territoire, grouping sets ((cas, regle), ())
