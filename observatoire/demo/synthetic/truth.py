"""The truth the pipeline is checked against: per-row facts and the manifest's counts.

The generator knows what it drew; the files only say what a reader can parse. `_View` keeps, for
each chunk, the few facts that the counts, the defect injection and the tests need, as numpy
arrays rather than strings, and `_Counts` adds them up chunk by chunk into the manifest's
"counts" and "drift" sections, so that a national run never reads its own output back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from observatoire.demo.synthetic.context import _Context
from observatoire.demo.synthetic.tables import (
    _CATEGORIES,
    _REMOVED_CATEGORIES,
    _UNKNOWN_CATEGORIES,
    FAMILIES,
)


@dataclass
class _View:
    """The few per-row facts the counts, the defects and the tests need, as numpy arrays."""

    n: int
    active: np.ndarray
    p: np.ndarray
    family: np.ndarray
    employer: np.ndarray
    cj: np.ndarray | None = None
    nomenclature: np.ndarray | None = None  # main activity in 0 NAFRev2, 1 NAFRev1, 2 NAF2025
    rev1: np.ndarray | None = None  # NAF rév. 1 code index (-1: none)
    naf25: np.ndarray | None = None  # NAF 2025 code index (0: empty)
    naf_excluded: np.ndarray | None = None  # activity in ess_naf_exclusions.csv (or its image)
    former_commune: np.ndarray | None = None  # former commune entry (0: none)
    unknown_commune: np.ndarray | None = None  # index into ctx.unknown_communes (-1: none)
    siren: np.ndarray | None = None
    siret: np.ndarray | None = None
    commune: np.ndarray | None = None
    excluded: np.ndarray | None = None
    la_poste: np.ndarray | None = None
    creation_year: np.ndarray | None = None
    closure_year: np.ndarray | None = None
    ess_flag: np.ndarray | None = None

    @property
    def drift(self) -> np.ndarray:
        """Rows carrying a code outside today's nomenclatures (never picked for a defect)."""
        assert self.nomenclature is not None
        mask = self.nomenclature != 0
        if self.cj is not None:
            mask = mask | _DRIFT_CJ[self.cj]
        if self.former_commune is not None and self.unknown_commune is not None:
            mask = mask | (self.former_commune > 0) | (self.unknown_commune >= 0)
        return mask


_DRIFT_CJ = np.array(
    [c in _REMOVED_CATEGORIES for c, _, _ in _CATEGORIES] + [True] * len(_UNKNOWN_CATEGORIES)
)


class _Counts:
    """Accumulates, chunk by chunk, the truth a pipeline's outputs can be compared with."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        nf = len(FAMILIES)
        self.ul = {
            "rows": 0,
            "active": 0,
            "statut_diffusion_p": 0,
            "ess_flag_o": 0,
            "employer_active": 0,
        }
        self.ul_fam = np.zeros((nf, 4), dtype=np.int64)  # total, active, employer, P
        self.ul_cj = np.zeros(len(ctx.cj_codes), dtype=np.int64)
        self.ul_cj_ess = np.zeros(len(ctx.cj_codes), dtype=np.int64)
        # Drift: per file, NAF 2025 main codes, NAF rév. 1 codes, and for establishments the
        # former and unknown commune codes.
        n25, n1 = len(ctx.naf25_dict), len(ctx.rev1_dict)
        self.naf2025 = {k: np.zeros(n25, dtype=np.int64) for k in ("ul", "et")}
        self.naf2025_excluded = {"ul": 0, "et": 0}
        self.rev1 = {k: np.zeros(n1, dtype=np.int64) for k in ("ul", "et")}
        self.former = np.zeros(len(ctx.former_code), dtype=np.int64)
        self.unknown_commune = np.zeros(len(ctx.unknown_communes), dtype=np.int64)
        self.et = {
            "rows": 0,
            "active": 0,
            "statut_diffusion_p": 0,
            "employer_active": 0,
            "la_poste": 0,
        }
        self.et_fam = np.zeros((nf, 5), dtype=np.int64)
        self.years = np.arange(ctx.year - 10, ctx.year + 1)
        self.et_created = np.zeros(len(self.years), dtype=np.int64)
        self.et_closed = np.zeros(len(self.years), dtype=np.int64)
        self.communes = np.zeros(len(ctx.communes), dtype=np.int64)

    def add(self, ul: _View, et: _View) -> None:
        nf = len(FAMILIES)
        assert ul.cj is not None and ul.ess_flag is not None
        self.ul["rows"] += ul.n
        self.ul["active"] += int(ul.active.sum())
        self.ul["statut_diffusion_p"] += int(ul.p.sum())
        self.ul["ess_flag_o"] += int(ul.ess_flag.sum())
        self.ul["employer_active"] += int(ul.employer.sum())
        for col, mask in enumerate((None, ul.active, ul.employer, ul.p)):
            w = None if mask is None else mask.astype(np.int64)
            self.ul_fam[:, col] += np.bincount(ul.family, weights=w, minlength=nf).astype(np.int64)
        ncj = len(self.ctx.cj_codes)
        self.ul_cj += np.bincount(ul.cj, minlength=ncj)
        self.ul_cj_ess += np.bincount(ul.cj[ul.ess_flag], minlength=ncj)
        for key, view in (("ul", ul), ("et", et)):
            assert view.nomenclature is not None and view.naf25 is not None
            assert view.rev1 is not None and view.naf_excluded is not None
            main25 = view.nomenclature == 2
            self.naf2025[key] += np.bincount(view.naf25[main25], minlength=len(self.naf2025[key]))
            self.naf2025_excluded[key] += int((main25 & view.naf_excluded).sum())
            rev1 = view.rev1[view.rev1 >= 0]
            self.rev1[key] += np.bincount(rev1, minlength=len(self.rev1[key]))
        assert et.former_commune is not None and et.unknown_commune is not None
        self.former += np.bincount(et.former_commune, minlength=len(self.former))
        unknown = et.unknown_commune[et.unknown_commune >= 0]
        self.unknown_commune += np.bincount(unknown, minlength=len(self.unknown_commune))

        assert et.excluded is not None and et.commune is not None and et.la_poste is not None
        assert et.creation_year is not None and et.closure_year is not None
        self.et["rows"] += et.n
        self.et["active"] += int(et.active.sum())
        self.et["statut_diffusion_p"] += int(et.p.sum())
        self.et["employer_active"] += int(et.employer.sum())
        self.et["la_poste"] += int(et.la_poste.sum())
        inside = et.employer & ~et.excluded
        for col, mask in enumerate((None, et.active, et.employer, inside, et.active & et.p)):
            w = None if mask is None else mask.astype(np.int64)
            self.et_fam[:, col] += np.bincount(et.family, weights=w, minlength=nf).astype(np.int64)
        y0 = int(self.years[0])
        for arr, target in ((et.creation_year, self.et_created), (et.closure_year, self.et_closed)):
            sel = arr[arr >= y0] - y0
            target += np.bincount(sel, minlength=len(self.years))[: len(self.years)]
        self.communes += np.bincount(et.commune, weights=et.active.astype(np.int64),
                                     minlength=len(self.communes)).astype(np.int64)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        ess = [i for i, f in enumerate(FAMILIES) if f != "hors_ess"]
        cj_codes = self.ctx.cj_codes
        return {
            "note": (
                "Comptes des entités générées, avant injection des défauts (voir 'defects'). "
                "Établissement ESS = famille ESS de la catégorie juridique ou indicateur "
                "economieSocialeSolidaireUniteLegale = O (societe_commerciale_ess) ; "
                "'active_employer_outside_naf_exclusions' retire les codes APE de "
                "ess_naf_exclusions.csv (tous, 94.12Z compris)."
            ),
            "unites_legales": {
                **self.ul,
                "by_famille": {
                    f: {
                        "total": int(self.ul_fam[i, 0]),
                        "active": int(self.ul_fam[i, 1]),
                        "employer_active": int(self.ul_fam[i, 2]),
                        "statut_diffusion_p": int(self.ul_fam[i, 3]),
                    }
                    for i, f in enumerate(FAMILIES)
                },
                "by_categorie_juridique": {
                    c: int(v) for c, v in zip(cj_codes, self.ul_cj, strict=True) if v
                },
            },
            "etablissements": {
                **self.et,
                "by_famille": {
                    f: {
                        "total": int(self.et_fam[i, 0]),
                        "active": int(self.et_fam[i, 1]),
                        "employer_active": int(self.et_fam[i, 2]),
                        "active_employer_outside_naf_exclusions": int(self.et_fam[i, 3]),
                        "active_statut_diffusion_p": int(self.et_fam[i, 4]),
                    }
                    for i, f in enumerate(FAMILIES)
                },
                "ess_active": int(self.et_fam[ess, 1].sum()),
                "ess_employer_active": int(self.et_fam[ess, 2].sum()),
                "ess_employer_active_outside_naf_exclusions": int(self.et_fam[ess, 3].sum()),
                "created_by_year": {
                    str(y): int(v) for y, v in zip(self.years, self.et_created, strict=True)
                },
                "closed_by_year": {
                    str(y): int(v) for y, v in zip(self.years, self.et_closed, strict=True)
                },
                "active_by_commune": {
                    c: int(v) for c, v in zip(self.ctx.communes, self.communes, strict=True)
                },
            },
        }

    def drift(self) -> dict[str, Any]:
        """What was planted outside today's nomenclatures, as the drift table should count it."""
        ctx = self.ctx
        removed = {
            c: int(self.ul_cj[i])
            for i, c in enumerate(ctx.cj_codes)
            if c in _REMOVED_CATEGORIES and self.ul_cj[i]
        }
        unknown = {
            c: {"rows": int(self.ul_cj[i]), "ess_o": int(self.ul_cj_ess[i])}
            for i, c in enumerate(ctx.cj_codes)
            if ctx.cj_unknown[i] and self.ul_cj[i]
        }

        def by_code(counts: np.ndarray, names: pa.Array) -> dict[str, int]:
            return {names[i].as_py(): int(v) for i, v in enumerate(counts) if v}

        naf2025 = {
            file: {
                "statut": None,
                "column": f"activitePrincipale{suffix}",
                "rows": int(self.naf2025[key].sum()),
                "rows_in_ess_naf_exclusions": self.naf2025_excluded[key],
                "by_code": by_code(self.naf2025[key], ctx.naf25_dict),
            }
            for file, key, suffix in (
                ("unites_legales", "ul", "UniteLegale"),
                ("etablissements", "et", "Etablissement"),
            )
        }
        rev1 = {
            file: {
                "statut": "nomenclature_ancienne",
                "column": f"activitePrincipale{suffix}",
                "rows": int(self.rev1[key].sum()),
                "by_code": by_code(self.rev1[key], ctx.rev1_dict),
            }
            for file, key, suffix in (
                ("unites_legales", "ul", "UniteLegale"),
                ("etablissements", "et", "Etablissement"),
            )
        }
        former = {}
        for i in np.argsort(np.array(ctx.former_code.to_pylist()), kind="stable"):
            if self.former[i] and i > 0:
                effet, current, inside = ctx.former_info[i]
                former[ctx.former_code[i].as_py()] = {
                    "rows": int(self.former[i]),
                    "code_commune_actuelle": current,
                    "date_effet": effet,
                    "dans_territoire": inside,
                }
        inside = sum(v["rows"] for v in former.values() if v["dans_territoire"])
        return {
            "note": (
                "Codes hors des nomenclatures du jour plantés dans les fichiers, comptés sur les "
                "lignes écrites (aucun défaut n'est injecté sur ces lignes). 'statut' : le statut "
                "de clean.codes_hors_nomenclature attendu (null : code connu, pas une dérive). "
                "Catégories juridiques : lignes du fichier des unités légales ; 'ess_o' = "
                "indicateur economieSocialeSolidaireUniteLegale = O (comptées en "
                "societe_commerciale_ess dans counts.by_famille). NAF : activité principale déjà "
                "en NAF 2025 (même activité, même statut d'exclusion ESS) ou encore en NAF rév. 1 "
                "(unités et établissements fermés avant 2008). Communes : établissements fermés "
                "seulement ; 'dans_territoire' = la commune actuelle est une commune demandée ; "
                "les autres (établissements secondaires, commune d'un même département) ne sont "
                "pas lus pour le territoire mais figurent dans counts.etablissements. Les défauts "
                "'commune_mal_formee' et 'tranche_mal_formee' (voir 'defects') sont mal formés : "
                "ils vont en quarantaine, pas dans la table des codes hors nomenclature."
            ),
            "categories_juridiques_supprimees": {
                "statut": "supprime",
                "column": "categorieJuridiqueUniteLegale",
                "rows": sum(removed.values()),
                "by_code": removed,
            },
            "categories_juridiques_inconnues": {
                "statut": "inconnu",
                "column": "categorieJuridiqueUniteLegale",
                "rows": sum(v["rows"] for v in unknown.values()),
                "by_code": unknown,
            },
            "activite_naf2025": naf2025,
            "activite_nafrev1": rev1,
            "communes_anciennes": {
                "statut": "commune_ancienne",
                "column": "codeCommuneEtablissement",
                "rows": int(self.former[1:].sum()),
                "rows_dans_territoire": inside,
                "rows_hors_territoire": int(self.former[1:].sum()) - inside,
                "by_code": former,
            },
            "communes_inconnues": {
                "statut": "inconnu",
                "column": "codeCommuneEtablissement",
                "rows": int(self.unknown_commune.sum()),
                "by_code": {
                    c: int(v)
                    for (c, _), v in zip(ctx.unknown_communes, self.unknown_commune, strict=True)
                    if v
                },
            },
        }
