-- The month's per-commune base (issue 15, point 2): the perimeter's active establishments
-- counted per commune and class (ESS or not, family, NAF section, headcount band, employer,
-- private), with the sums the jobs estimates need. Built once per month beside the perimeter:
-- a few million cells nationally against 42 M establishments. The establishment cubes
-- (etablissements_actifs, etablissements_employeurs, emplois_salaries_estimes,
-- part_ess_emploi_prive) roll up from it instead of each re-reading the perimeter. Counts of
-- distinct legal units cannot be summed from cells: those indicators keep their own pass.
select
    $mois as mois,
    e.code_commune,
    case when e.ess then 'ess' else 'hors_ess' end as perimetre,
    coalesce(e.famille_ess, 'hors_ess') as famille,
    coalesce(e.naf_section, 'non_classe') as section_naf,
    coalesce(e.tranche_effectifs, 'non_renseignee') as tranche_effectifs,
    coalesce(e.employeur, false) as employeur,
    coalesce(e.prive, false) as prive,
    count(*) as n,
    -- interval of salaried jobs from the bands: minima, midpoints, maxima (the open band
    -- counts its minimum); null where no row of the cell has a usable band
    sum(e.effectif_min) as bas,
    sum((e.effectif_min + coalesce(e.effectif_max, e.effectif_min)) / 2.0) as central,
    sum(coalesce(e.effectif_max, e.effectif_min)) as haut,
    count(*) filter (where e.effectif_min is null) as inconnue,
    min(e.annee_effectifs) as annee_min,
    max(e.annee_effectifs) as annee_max
from clean.etablissements_perimetre as e
where e.mois = $mois and e.actif
group by all
