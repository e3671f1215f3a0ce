-- The levels the month's indicators are published at: every row of ref.territoire_niveaux
-- for the territory's own levels, and for a unit containing part of it (englobant) only when
-- the month's stock covers it (clean.couverture_niveaux, publie). Indicators join this table
-- on (mois, code_commune) to roll their per-commune counts up.
select $mois as mois, n.*
from ref.territoire_niveaux as n
where not n.englobant
   or exists (
       select 1 from clean.couverture_niveaux as c
       where c.mois = $mois and c.niveau = n.niveau and c.code_territoire = n.code_territoire
         and c.publie
   )
