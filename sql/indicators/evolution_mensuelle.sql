-- Month-on-month change of active and active employer establishments, against the latest
-- earlier month kept in the warehouse (months are never overwritten by a later refresh).
-- mois_precedent is null, and so are the changes, for the first month loaded. A unit containing
-- the territory (englobant) is compared only when the previous month published it too: the
-- stock of that month may not have covered it, and the change would then be its whole count.
with previous as (
    select max(mois) as mois from clean.etablissements_perimetre where mois < $mois
),
-- counted per commune first, then rolled up (as every cube)
base as (
    select
        e.mois = $mois as courant,
        e.code_commune,
        case when e.ess then 'ess' else 'hors_ess' end as perimetre,
        coalesce(e.famille_ess, 'hors_ess') as famille,
        e.employeur,
        count(*) as n
    from clean.etablissements_perimetre as e
    where e.actif and (e.mois = $mois or e.mois = (select mois from previous))
    group by all
),
p as (
    select n.niveau, n.rang, n.code_territoire, n.libelle_territoire, b.* exclude (code_commune)
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
),
comparable as (
    select niveau, code_territoire
    from clean.niveaux_publies
    where mois = $mois and not englobant
    union
    select niveau, code_territoire
    from clean.niveaux_publies
    where mois = (select mois from previous)
),
agg as (
    select
        niveau, code_territoire, libelle_territoire,
        case when grouping(perimetre) = 1 then 'ensemble' else perimetre end as perimetre,
        case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
        coalesce(sum(n) filter (where courant), 0)::bigint as nb_etablissements,
        coalesce(sum(n) filter (where courant and employeur), 0)::bigint as nb_etablissements_employeurs,
        coalesce(sum(n) filter (where not courant), 0)::bigint as nb_etablissements_precedent,
        coalesce(sum(n) filter (where not courant and employeur), 0)::bigint
            as nb_etablissements_employeurs_precedent
    from p
    group by niveau, rang, code_territoire, libelle_territoire, cube (perimetre, famille)
    having not (grouping(perimetre) = 1 and grouping(famille) = 0)
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire, perimetre, famille,
    (select mois from previous) as mois_precedent,
    nb_etablissements,
    case when compare then nb_etablissements_precedent end as nb_etablissements_precedent,
    case when compare then nb_etablissements - nb_etablissements_precedent end
        as variation_etablissements,
    nb_etablissements_employeurs,
    case when compare then nb_etablissements_employeurs_precedent end
        as nb_etablissements_employeurs_precedent,
    case when compare then nb_etablissements_employeurs - nb_etablissements_employeurs_precedent end
        as variation_etablissements_employeurs
from (
    select a.*, (select mois from previous) is not null and c.niveau is not null as compare
    from agg as a
    left join comparable as c
      on c.niveau = a.niveau and c.code_territoire = a.code_territoire
)
