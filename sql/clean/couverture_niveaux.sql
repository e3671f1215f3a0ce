-- Does the month's stock cover each unit containing part of the territory (its EPT or EPCI, its
-- départements and régions: ref.territoire_niveaux, englobant)? Such a unit is published only
-- when it does: a regional or departmental extract, or the demo's stock (the demo EPT's
-- communes only), would otherwise publish as a région's figure what is only the territory's.
--
-- Judged on the unit's communes OUTSIDE the territory (the territory's own are read whatever
-- the stock): a commune is covered when the month's cleaned stock locates at least one
-- establishment in it, open or closed. The real national stock does so in practically every
-- commune (each commune is itself a legal unit with an establishment, its town hall), so a
-- unit is covered when at least $part_min of those communes are; the margin leaves room for
-- the few communes the stock has nothing in (villages without inhabitants, a commune created
-- on 1 January that SIRENE does not use yet). An extract, built by commune or by département,
-- covers a unit entirely or not at all: the shares seen are 100 % or close to 0 %.
with parents as (
    select niveau, rang, code_territoire, any_value(libelle_territoire) as libelle_territoire,
           count(*) as communes
    from ref.territoire_niveaux
    where englobant
    group by all
),
outside as (
    select n.niveau, n.code_territoire, n.code_commune
    from ref.territoire_niveaux as n
    anti join ref.territoire_communes as t on t.code_commune = n.code_commune
    where n.englobant
),
located as (
    -- only the communes judged: with no containing unit (France) the stock is not scanned
    select distinct code_commune
    from clean.sirene_etablissements
    where mois = $mois and code_commune in (select code_commune from outside)
),
counted as (
    select o.niveau, o.code_territoire,
        count(*) as communes_hors_territoire,
        count(l.code_commune) as communes_couvertes
    from outside as o
    left join located as l on l.code_commune = o.code_commune
    group by all
)
select
    $mois as mois,
    p.niveau,
    p.rang,
    p.code_territoire,
    p.libelle_territoire,
    p.communes,
    c.communes_hors_territoire,
    c.communes_couvertes,
    round(c.communes_couvertes / c.communes_hors_territoire, 4) as part_couverte,
    c.communes_couvertes >= $part_min * c.communes_hors_territoire as publie
from parents as p
join counted as c on c.niveau = p.niveau and c.code_territoire = p.code_territoire
