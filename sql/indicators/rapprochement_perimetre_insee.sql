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
-- communes. Most units have all their establishments of one case and rule in one commune: they
-- are counted per commune and summed up the levels, like the cubes. Only the units spread over
-- several communes (7 % nationally) have their distinct made per level: joining every unit
-- to its five or six levels took 58 s nationally (42 M establishments), this 43 s (measured).
base as materialized (
    select code_commune, cas, regle, siren, count(*) as n
    from p
    where code_commune is not null
    group by all
),
units as materialized (
    select siren, cas, regle, min(code_commune) as commune, max(code_commune) as autre
    from base
    group by all
),
per_commune as (
    select e.code_commune, e.cas, e.regle, e.n, coalesce(u.u, 0) as u
    from (select code_commune, cas, regle, sum(n) as n from base group by all) as e
    left join (
        select commune as code_commune, cas, regle, count(*) as u
        from units where commune = autre group by all
    ) as u using (code_commune, cas, regle)
),
spread as (
    select niveau, code_territoire, cas, regle, count(*) as u
    from (
        select n.niveau, n.code_territoire, b.cas, b.regle, b.siren
        from base as b
        semi join (select siren, cas, regle from units where commune <> autre) as m
            using (siren, cas, regle)
        join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
        group by all
    )
    group by all
),
by_case as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, c.cas, c.regle,
        sum(c.n)::bigint as nb_etablissements_actifs, sum(c.u) as u
    from per_commune as c
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = c.code_commune
    group by all
),
-- the totals: the same, a legal unit counted once whatever its cases and rules
units_all as materialized (
    select siren, min(code_commune) as commune, max(code_commune) as autre
    from base
    group by all
),
per_commune_all as (
    select e.code_commune, e.n, coalesce(u.u, 0) as u
    from (select code_commune, sum(n) as n from base group by all) as e
    left join (
        select commune as code_commune, count(*) as u
        from units_all where commune = autre group by all
    ) as u using (code_commune)
),
spread_all as (
    select niveau, code_territoire, count(*) as u
    from (
        select n.niveau, n.code_territoire, b.siren
        from base as b
        semi join (select siren from units_all where commune <> autre) as m using (siren)
        join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
        group by all
    )
    group by all
),
totals as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire,
        sum(c.n)::bigint as nb_etablissements_actifs, sum(c.u) as u
    from per_commune_all as c
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = c.code_commune
    group by all
)
select
    $mois as mois, c.niveau, c.code_territoire, c.libelle_territoire, c.cas, c.regle,
    c.cas in (
        'categorie_ess_indicateur_n', 'categorie_ess_indicateur_vide',
        'categorie_hors_ess_indicateur_o', 'personne_physique_indicateur_o') as desaccord,
    c.nb_etablissements_actifs, (c.u + coalesce(s.u, 0))::bigint as nb_unites_legales
from by_case as c
left join spread as s using (niveau, code_territoire, cas, regle)
union all
select
    $mois, t.niveau, t.code_territoire, t.libelle_territoire, 'ensemble', 'ensemble', null,
    t.nb_etablissements_actifs, (t.u + coalesce(s.u, 0))::bigint
from totals as t
left join spread_all as s using (niveau, code_territoire)
