-- The communes whose establishments the SIRENE read keeps: the territory's, and every commune
-- of the units containing part of it (its EPT and EPCI, its département(s) and région(s)), so
-- that those units can be published for comparison (sql/ref/territoire_niveaux.sql). A unit the
-- month's stock does not cover is left out afterwards (sql/clean/couverture_niveaux.sql).
-- dans_territoire tells the territory's own communes from the others.
select
    n.code_commune,
    bool_or(t.code_commune is not null) as dans_territoire
from ref.territoire_niveaux as n
left join ref.territoire_communes as t on t.code_commune = n.code_commune
group by n.code_commune
