-- Establishment creations (dateCreationEtablissement) and closures (start date of the closed
-- period, etat administratif F) per calendar year, as seen in the month's stock, over the ten
-- years up to the stock's year. Closures of a year can still grow in later stocks (late
-- registration), so each month's figures are kept to follow revisions.
-- Counted per commune first, then rolled up (as every cube).
with base as (
    select
        e.code_commune,
        case when e.ess then 'ess' else 'hors_ess' end as perimetre,
        coalesce(e.famille_ess, 'hors_ess') as famille,
        year(e.date_creation) as annee_creation,
        year(e.date_fermeture) as annee_fermeture,
        count(*) as n
    from clean.etablissements_perimetre as e
    where e.mois = $mois
      -- only what the ten years below can count: most establishments were created earlier
      -- and are still open (42 M rows nationally, a fraction of them in these years)
      and (
          year(e.date_creation) between cast(left($mois, 4) as integer) - 9
              and cast(left($mois, 4) as integer)
          or year(e.date_fermeture) between cast(left($mois, 4) as integer) - 9
              and cast(left($mois, 4) as integer)
      )
    group by all
),
-- the cells summed per level first: a département or a région holds far fewer cells than
-- its communes together, and the cube then runs over those (half the time nationally)
p as (
    select
        n.niveau, n.rang, n.code_territoire, n.libelle_territoire,
        b.perimetre, b.famille, b.annee_creation, b.annee_fermeture,
        sum(b.n) as n
    from base as b
    join clean.niveaux_publies as n on n.mois = $mois and n.code_commune = b.code_commune
    group by all
),
years as (
    select unnest(range(cast(left($mois, 4) as integer) - 9, cast(left($mois, 4) as integer) + 1))
        as annee
),
events as (
    select p.*, y.annee,
        case when p.annee_creation = y.annee then p.n else 0 end as creation,
        case when p.annee_fermeture = y.annee then p.n else 0 end as fermeture
    from p join years as y on y.annee in (p.annee_creation, p.annee_fermeture)
)
select
    $mois as mois,
    niveau, code_territoire, libelle_territoire,
    case when grouping(perimetre) = 1 then 'ensemble' else perimetre end as perimetre,
    case when grouping(famille) = 1 then 'ensemble' else famille end as famille,
    annee,
    sum(creation)::bigint as nb_creations,
    sum(fermeture)::bigint as nb_fermetures
from events
group by niveau, rang, code_territoire, libelle_territoire, annee, cube (perimetre, famille)
having not (grouping(perimetre) = 1 and grouping(famille) = 0)
