"""What every chunk shares: the reference files, read once, and the tables built from them.

Dictionaries of strings (dates, communes, codes, names) and cumulative weights are built once
per stock, so that a chunk of a million legal units is drawn in a few vectorised passes that
only handle integer indexes. Building them is also where each code of `tables.py` is checked
against INSEE's lists: when a reference file changes, the generator stops before writing.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from observatoire.demo.common import (
    ascii_upper,
    read_csv,
)
from observatoire.demo.synthetic.tables import (
    _BAND_WEIGHTS,
    _BANDS,
    _CATEGORIES,
    _CLOSED_BEFORE,
    _COMMERCIAL_ESS_CJ,
    _COMMERCIAL_ESS_RATE,
    _COMPLEMENTS,
    _ESS_FLAG_RATE,
    _LIBELLES_VOIE,
    _MIN_UNITS,
    _OLD_NATURAL_PERSON_CJ,
    _PRENOMS_F,
    _PRENOMS_M,
    _PROFILES,
    _RELABEL_REMOVED,
    _REMOVED_CATEGORIES,
    _RM_SUFFIXES,
    _RNA_CJ,
    _SIREN_BASE_MIN,
    _SIREN_SPAN,
    _TAIL_CAP,
    _TAIL_SHAPE,
    _TYPES_VOIE,
    _UNKNOWN_CATEGORIES,
    _UNKNOWN_COMMUNE_CODES,
    _ZIPF_EXPONENT,
    FAMILIES,
)


@dataclass(frozen=True)
class _Reference:
    """The reference files the generator draws codes from, so it never invents a code."""

    communes: dict[str, tuple[str, str, str]]  # code -> (libellé COG, type, nature EPCI)
    naf_rev2: frozenset[str]
    naf_2025: tuple[str, ...]
    naf_rev2_to_2025: dict[str, tuple[str, ...]]  # INSEE's correspondence, in file order
    categories: frozenset[str]
    removed_categories: frozenset[str]  # supprime = true: off INSEE's list, still carried
    ess_families: dict[str, str]  # code_cj -> famille_ess
    naf_exclusions: frozenset[str]
    former_communes: tuple[dict[str, str], ...]  # rows of cog_communes_anciennes.csv

    @classmethod
    def load(cls, reference_dir: Path) -> _Reference:
        cog = read_csv(reference_dir / "cog_communes.csv")
        categories = read_csv(reference_dir / "categories_juridiques_n3.csv")
        correspondence: dict[str, tuple[str, ...]] = {}
        for r in read_csv(reference_dir / "naf_rev2_naf_2025.csv"):
            correspondence[r["code_naf_rev2"]] = correspondence.get(r["code_naf_rev2"], ()) + (
                r["code_naf2025"],
            )
        return cls(
            communes={
                r["code_commune"]: (r["libelle_commune"], r["type_commune"], r["nature_epci"])
                for r in cog
            },
            naf_rev2=frozenset(
                r["code_sous_classe"] for r in read_csv(reference_dir / "naf_rev2_sous_classes.csv")
            ),
            naf_2025=tuple(
                r["code_naf2025"] for r in read_csv(reference_dir / "naf_2025_sous_classes.csv")
            ),
            naf_rev2_to_2025=correspondence,
            categories=frozenset(r["code_n3"] for r in categories),
            removed_categories=frozenset(
                r["code_n3"] for r in categories if r["supprime"].strip().lower() == "true"
            ),
            ess_families={
                r["code_cj"]: r["famille_ess"]
                for r in read_csv(reference_dir / "ess_categories_juridiques.csv")
            },
            naf_exclusions=frozenset(
                r["code_naf"] for r in read_csv(reference_dir / "ess_naf_exclusions.csv")
            ),
            former_communes=tuple(read_csv(reference_dir / "cog_communes_anciennes.csv")),
        )


@dataclass(frozen=True)
class _Grouped:
    """Per-group discrete distributions flattened for one vectorised `searchsorted`.

    Group g's cumulative probabilities are stored shifted by g, so `group + u` (u in [0, 1))
    lands in group g's entries only.
    """

    cum: np.ndarray
    group_last: np.ndarray  # index of each group's last entry
    values: np.ndarray  # entry -> value index

    @classmethod
    def build(cls, groups: Sequence[Sequence[tuple[int, float]]]) -> _Grouped:
        cum: list[float] = []
        values: list[int] = []
        last: list[int] = []
        for g, entries in enumerate(groups):
            weights = np.array([w for _, w in entries], dtype=np.float64)
            c = np.cumsum(weights) / weights.sum()
            c[-1] = 1.0
            cum.extend(g + c)
            values.extend(v for v, _ in entries)
            last.append(len(values) - 1)
        return cls(np.array(cum), np.array(last, dtype=np.int64), np.array(values, np.int64))

    def entry(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cum, group + u, side="right")
        return np.minimum(pos, self.group_last[group])

    def sample(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.values[self.entry(group, u)]


def _commune_label(code: str, libelle: str, kind: str) -> str:
    if kind == "ARM":  # "Paris 15e Arrondissement" -> "PARIS 15"
        city = libelle.split()[0]
        number = int(code[-1]) if code.startswith("6938") else int(code[-2:])
        return f"{ascii_upper(city)} {number}"
    return ascii_upper(libelle)


def _postal_code(code: str, h: int) -> str:
    """A plausible postal code for a commune: its département and 3 stable pseudo-digits."""
    if code.startswith("751"):
        return "750" + code[3:]
    if code.startswith("6938"):
        return "6900" + code[4:]
    if code.startswith("132"):
        return "130" + code[3:]
    if code.startswith("97"):
        return code[:3] + f"{(h % 9 + 1) * 10:02d}"
    dep = "20" if code[:2] in ("2A", "2B") else code[:2]
    return dep + f"{(h % 90 + 10) * 10:03d}"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass
class _Context:
    """Everything shared by all chunks: dictionaries of strings and sampling tables."""

    ref: _Reference
    n: int
    mois: str
    end_date: date
    end_day: int  # days since 1970-01-01
    day0: int  # first day of the date dictionary (1900-01-01)
    year: int
    communes: tuple[str, ...]
    commune_cum: np.ndarray
    commune_code: pa.Array
    commune_label: pa.Array
    commune_postal: pa.Array
    commune_dep: pa.Array  # first 2 characters (RNA numbers)
    commune_x: np.ndarray
    commune_y: np.ndarray
    cj_codes: tuple[str, ...]  # _CATEGORIES, then _UNKNOWN_CATEGORIES
    cj_cum: np.ndarray
    cj_code: pa.Array
    cj_profile: np.ndarray
    cj_common: np.ndarray  # categories rare codes may be taken from (weight >= 1 %)
    cj_minimum: tuple[tuple[int, int], ...]  # (cj, units) of _MIN_UNITS
    cj_unknown: np.ndarray
    cj_closed_before: np.ndarray  # day before which the unit is closed (_CLOSED_BEFORE)
    cj_relabel: np.ndarray  # removed code given to part of the older units (-1: none)
    cj_relabel_rate: np.ndarray
    cj_relabel_before: np.ndarray
    natural_old_cj: np.ndarray  # NAF rév. 2 index -> former natural-person code (cj index)
    cj_1000: int
    cj_1800: int
    cj_family: np.ndarray
    cj_ess_rate: np.ndarray
    cj_rna: np.ndarray
    cj_societe: np.ndarray
    la_poste_cj: int
    profile_names: tuple[str, ...]
    prof_natural: np.ndarray
    prof_size: np.ndarray
    prof_lambda: np.ndarray
    prof_tail_p: np.ndarray
    prof_tail_scale: np.ndarray
    prof_secondary_closed: np.ndarray
    prof_creation_rate: np.ndarray
    prof_closure: np.ndarray
    prof_has_alt: np.ndarray
    prof_rm: np.ndarray  # natural persons and companies may be registered craftsmen
    naf_codes: tuple[str, ...]
    naf_dict: pa.Array  # index 0 = ""
    naf25_dict: pa.Array  # index 0 = ""
    naf25_table: _Grouped  # NAF rév. 2 index -> its NAF 2025 images (INSEE's correspondence)
    naf25_excluded: np.ndarray  # images of ess_naf_exclusions.csv
    naf_excluded: np.ndarray
    naf_table: _Grouped
    naf_entry_rate: np.ndarray
    alt_table: _Grouped
    rev1_table: _Grouped
    rev1_dict: pa.Array
    template_table: _Grouped
    template_dict: pa.Array
    band_table: _Grouped
    tranche_dict: pa.Array  # "", "NN", then _BANDS
    date_dict: pa.Array  # index 0 = "", index i = day0 + i - 1
    time_dict: pa.Array
    prenom_dict: pa.Array
    type_voie_cum: np.ndarray
    type_voie_dict: pa.Array
    libelle_voie_dict: pa.Array
    complement_dict: pa.Array
    rm_dict: pa.Array
    former_code: pa.Array  # former commune codes; index 0 = none
    former_label: pa.Array
    former_postal: pa.Array
    former_day: np.ndarray  # closure before this day (the merger) to keep the former code
    former_inside: _Grouped  # commune index -> former codes attributed to it
    former_outside: _Grouped  # commune index -> former codes of its département, elsewhere
    former_inside_last: np.ndarray  # commune index -> latest day of its former_inside codes
    former_outside_last: np.ndarray
    former_info: tuple[tuple[str, str, bool], ...]  # (date d'effet, current commune, inside)
    unknown_communes: tuple[tuple[str, str], ...]  # (code, département)
    number_width: int
    la_poste_index: int
    la_poste_naf: int
    est_extra_factor: float = 1.0
    poste_seq: tuple[int, ...] = field(default=())

    @classmethod
    def build(
        cls,
        ref: _Reference,
        communes: Sequence[str],
        n: int,
        mois: str,
        etab_per_ul: float,
    ) -> _Context:
        year, month = (int(x) for x in mois.split("-"))
        end_date = date(year, month, 1) - timedelta(days=1)
        epoch = date(1970, 1, 1)
        end_day = (end_date - epoch).days
        day0 = (date(1900, 1, 1) - epoch).days

        # Communes: unique, known, Zipf-like weights (exponent _ZIPF_EXPONENT). Ranks follow
        # the urban tier (municipal arrondissements, then métropoles, CU, CA, CC) and then a
        # stable hash, so that nationally Paris rather than a village gets the most rows.
        unique = tuple(dict.fromkeys(str(c) for c in communes))
        if not unique:
            raise ValueError("communes est vide")
        unknown = [c for c in unique if c not in ref.communes]
        if unknown:
            raise ValueError(f"codes commune inconnus du COG : {unknown[:10]}")
        tiers = {"ME": 1, "CU": 2, "CA": 3, "CC": 4}

        def tier(c: str) -> int:
            _, kind, nature = ref.communes[c]
            return 0 if kind == "ARM" else tiers.get(nature, 5)

        ranked = sorted(unique, key=lambda c: (tier(c), _crc("rank" + c), c))
        rank = {c: i for i, c in enumerate(ranked)}
        w = np.array([1.0 / (rank[c] + 1) ** _ZIPF_EXPONENT for c in unique])
        commune_cum = np.cumsum(w) / w.sum()
        commune_cum[-1] = 1.0
        labels, postals, deps, xs, ys = [], [], [], [], []
        for c in unique:
            libelle, kind, _ = ref.communes[c]
            h = _crc("cp" + c)
            labels.append(_commune_label(c, libelle, kind))
            postals.append(_postal_code(c, h))
            deps.append(c[:2])
            # Pseudo-centroids in Lambert 93 ranges: a département box, then the commune.
            hd, hc = _crc("dep" + c[:2]), _crc("com" + c)
            xs.append(200_000 + hd % 950_000 + (hc % 40_001) - 20_000)
            ys.append(6_150_000 + (hd // 7) % 900_000 + ((hc // 7) % 40_001) - 20_000)

        # Legal categories and profiles: current codes, removed codes (supprime = true), then
        # codes no list knows.
        profile_names = tuple(_PROFILES)
        prof_index = {p: i for i, p in enumerate(profile_names)}
        for code, _, profile in _CATEGORIES:
            if code not in ref.categories:
                raise ValueError(f"catégorie juridique {code} absente de la référence")
            if profile not in prof_index:
                raise ValueError(f"profil inconnu {profile}")
        for code, _, profile, _ in _UNKNOWN_CATEGORIES:
            if code in ref.categories or not re.fullmatch(r"\d{4}", code):
                raise ValueError(f"catégorie juridique {code} : doit être inconnue et bien formée")
            if profile not in prof_index:
                raise ValueError(f"profil inconnu {profile}")
        if set(_REMOVED_CATEGORIES) != set(ref.removed_categories):
            raise ValueError("catégories juridiques supprimées : la référence a changé")
        table = [(c, w, p, None) for c, w, p in _CATEGORIES] + list(_UNKNOWN_CATEGORIES)
        cj_codes = tuple(c for c, _, _, _ in table)
        cj_pos = {c: i for i, c in enumerate(cj_codes)}
        cj_w = np.array([w for _, w, _, _ in table])
        cj_cum = np.cumsum(cj_w) / cj_w.sum()
        cj_cum[np.flatnonzero(cj_w)[-1] :] = 1.0  # zero-weight codes are never drawn
        fam_index = {f: i for i, f in enumerate(FAMILIES)}
        cj_family = np.array([fam_index[ref.ess_families.get(c, "hors_ess")] for c in cj_codes])
        cj_ess_rate = np.array(
            [
                (
                    _ESS_FLAG_RATE.get(ref.ess_families.get(c, ""), 0.0)
                    + (_COMMERCIAL_ESS_RATE if c in _COMMERCIAL_ESS_CJ else 0.0)
                )
                if rate is None
                else rate
                for c, _, _, rate in table
            ]
        )
        cj_rna = np.array([c in _RNA_CJ for c in cj_codes])
        cj_societe = np.array([c.startswith("5") and c not in ref.ess_families for c in cj_codes])
        cj_relabel = np.full(len(cj_codes), -1)
        cj_relabel_rate = np.zeros(len(cj_codes))
        cj_relabel_before = np.zeros(len(cj_codes), dtype=np.int64)
        for drawn, removed, share, before in _RELABEL_REMOVED:
            cj_relabel[cj_pos[drawn]] = cj_pos[removed]
            cj_relabel_rate[cj_pos[drawn]] = share
            cj_relabel_before[cj_pos[drawn]] = (date.fromisoformat(before) - epoch).days
        cj_closed_before = np.full(len(cj_codes), np.iinfo(np.int64).max)
        for code, before in _CLOSED_BEFORE.items():
            cj_closed_before[cj_pos[code]] = (date.fromisoformat(before) - epoch).days

        # NAF codes: one dictionary for all profiles, with the NAF 2025 code of the same stem.
        naf_codes: list[str] = [""]
        naf_pos: dict[str, int] = {"": 0}

        def naf_id(code: str) -> int:
            if code not in ref.naf_rev2:
                raise ValueError(f"code NAF rév. 2 {code} absent de la référence")
            if code not in naf_pos:
                naf_pos[code] = len(naf_codes)
                naf_codes.append(code)
            return naf_pos[code]

        naf_groups, rate_values, alt_groups = [], [], []
        for p in profile_names:
            prof = _PROFILES[p]
            entries = []
            for row in prof.naf:
                entries.append((naf_id(row[0]), float(row[1])))
                rate_values.append(row[2] if len(row) > 2 else prof.employer_rate)
            naf_groups.append(entries)
            alt = prof.etab_naf if prof.etab_naf is not None else prof.naf
            alt_groups.append([(naf_id(row[0]), float(row[1])) for row in alt])
        # NAF 2025 images of each rév. 2 code, as the stock's activitePrincipaleNAF25* carries
        # them: a code with several images (type Multiple) gets one of them per row.
        known_2025 = set(ref.naf_2025)
        naf25_codes: list[str] = [""]
        naf25_groups: list[list[tuple[int, float]]] = [[(0, 1.0)]]
        for code in naf_codes[1:]:
            images = ref.naf_rev2_to_2025.get(code, ())
            if not images or not set(images) <= known_2025:
                raise ValueError(f"code NAF rév. 2 {code} : correspondance NAF 2025 incomplète")
            entries = []
            for image in images:
                if image not in naf25_codes:
                    naf25_codes.append(image)
                entries.append((naf25_codes.index(image), 1.0))
            naf25_groups.append(entries)
        excluded_2025 = {
            image for c in ref.naf_exclusions for image in ref.naf_rev2_to_2025.get(c, ())
        }
        old_cj = []
        for code in naf_codes:
            target = "1900"
            for prefixes, cj_old in _OLD_NATURAL_PERSON_CJ:
                if code.startswith(prefixes):
                    target = cj_old
                    break
            old_cj.append(cj_pos[target])

        rev1_codes: list[str] = []
        rev1_groups = []
        for p in profile_names:
            entries = []
            for code in _PROFILES[p].rev1:
                if code not in rev1_codes:
                    rev1_codes.append(code)
                entries.append((rev1_codes.index(code), 1.0))
            rev1_groups.append(entries)

        templates: list[str] = [""]
        template_groups = []
        for p in profile_names:
            prof = _PROFILES[p]
            if prof.natural_person:
                template_groups.append([(0, 1.0)])
                continue
            entries = []
            for t in prof.templates:
                templates.append(t)
                entries.append((len(templates) - 1, 1.0))
            template_groups.append(entries)

        band_groups = [list(enumerate(ws)) for ws in _BAND_WEIGHTS]

        n_days = end_day - day0 + 1
        dates = np.arange(day0, end_day + 1).astype("datetime64[D]").astype(str)
        date_dict = pa.array([""] + dates.tolist(), pa.string())
        assert len(date_dict) == n_days + 1
        secs = np.arange(86_400)
        time_dict = pa.array(
            [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in zip(secs // 3600, secs // 60 % 60, secs % 60,
                                                           strict=True)]
        )  # fmt: skip
        tv_w = np.array([w for _, w in _TYPES_VOIE], dtype=np.float64)
        tv_cum = np.cumsum(tv_w) / tv_w.sum()
        tv_cum[-1] = 1.0

        # Number width of denominations: 000123 up to 999999, wider beyond.
        width = max(6, len(str(n)))
        # La Poste takes the slot of the SIREN space containing 35600000 (its SIREN without key).
        la_poste_index = ((35_600_000 - _SIREN_BASE_MIN + 1) * n - 1) // _SIREN_SPAN

        # Extra establishments per unit: Poisson part scaled so that the mean matches.
        weights = {p: 0.0 for p in profile_names}
        for _, wgt, p, _ in table:
            weights[p] += wgt
        total_w = sum(weights.values())
        m_vals = np.arange(1, _TAIL_CAP + 1, dtype=np.float64)
        lam_sum = 0.0
        tail_sum = 0.0
        for p, wgt in weights.items():
            prof = _PROFILES[p]
            tail_mean = float(np.sum((1.0 + m_vals / prof.tail_scale) ** (-_TAIL_SHAPE)))
            tail_sum += wgt / total_w * prof.tail_p * tail_mean
            lam_sum += wgt / total_w * prof.extra_lambda
        factor = (etab_per_ul - 1.0 - tail_sum) / lam_sum
        if factor <= 0:
            raise ValueError(
                f"etablissements_per_unite_legale trop faible (minimum {1.0 + tail_sum:.3f})"
            )

        # Former communes: codes attributed to one of `communes` (kept by establishments closed
        # before the merger), and codes of the same départements attributed elsewhere (only
        # mergers of the SIRENE era, and only on closures before the counts' first year).
        commune_pos = {c: i for i, c in enumerate(unique)}
        own_deps = {c[:2] for c in unique}
        window = (date(year - 10, 1, 1) - epoch).days
        f_code, f_label, f_postal, f_day, f_info = [""], [""], [""], [0], [("", "", False)]
        inside: list[list[tuple[int, float]]] = [[] for _ in unique]
        outside_by_dep: dict[str, list[int]] = {}
        for r in ref.former_communes:
            old_code, current = r["code_commune_ancienne"], r["code_commune_actuelle"]
            if old_code in ref.communes or current not in ref.communes:
                continue
            day = (date.fromisoformat(r["date_effet"]) - epoch).days
            if current in commune_pos:
                inside[commune_pos[current]].append((len(f_code), 1.0))
            elif old_code[:2] in own_deps and r["date_effet"] >= "1973-01-01":
                outside_by_dep.setdefault(old_code[:2], []).append(len(f_code))
                day = min(day, window)
            else:
                continue
            f_code.append(old_code)
            f_label.append(ascii_upper(r["libelle_ancienne"]))
            f_postal.append(_postal_code(current, _crc("cp" + current)))
            f_day.append(day)
            f_info.append((r["date_effet"], current, current in commune_pos))
        inside_groups = [g or [(0, 1.0)] for g in inside]
        outside_groups = [
            [(e, 1.0) for e in outside_by_dep.get(c[:2], [])] or [(0, 1.0)] for c in unique
        ]
        # Unknown communes: one code per département (up to _UNKNOWN_COMMUNE_CODES), in no
        # list and unlike the defect codes (99x), chosen by a stable hash.
        known_codes = set(ref.communes) | {r["code_commune_ancienne"] for r in ref.former_communes}
        unknown_communes = []
        for dep in sorted(own_deps, key=lambda d: (_crc("inconnue" + d), d))[
            :_UNKNOWN_COMMUNE_CODES
        ]:
            suffixes = sorted(range(900, 990), key=lambda x, d=dep: (_crc(f"{d}{x}"), x))
            code = next(f"{dep}{x}" for x in suffixes if f"{dep}{x}" not in known_codes)
            unknown_communes.append((code, dep))

        profiles = [_PROFILES[p] for p in profile_names]
        return cls(
            ref=ref,
            n=n,
            mois=mois,
            end_date=end_date,
            end_day=end_day,
            day0=day0,
            year=year,
            communes=unique,
            commune_cum=commune_cum,
            commune_code=pa.array(unique, pa.string()),
            commune_label=pa.array(labels, pa.string()),
            commune_postal=pa.array(postals, pa.string()),
            commune_dep=pa.array(deps, pa.string()),
            commune_x=np.array(xs, np.int64),
            commune_y=np.array(ys, np.int64),
            cj_codes=cj_codes,
            cj_cum=cj_cum,
            cj_code=pa.array(cj_codes, pa.string()),
            cj_profile=np.array([prof_index[p] for _, _, p, _ in table]),
            cj_common=cj_w >= 1.0,
            cj_minimum=tuple((cj_pos[c], k) for c, k in _MIN_UNITS.items()),
            cj_unknown=np.array([c not in ref.categories for c in cj_codes]),
            cj_closed_before=cj_closed_before,
            cj_relabel=cj_relabel,
            cj_relabel_rate=cj_relabel_rate,
            cj_relabel_before=cj_relabel_before,
            natural_old_cj=np.array(old_cj),
            cj_1000=cj_pos["1000"],
            cj_1800=cj_pos["1800"],
            cj_family=cj_family,
            cj_ess_rate=cj_ess_rate,
            cj_rna=cj_rna,
            cj_societe=cj_societe,
            la_poste_cj=cj_pos["5510"],
            profile_names=profile_names,
            prof_natural=np.array([p.natural_person for p in profiles]),
            prof_size=np.array([p.size for p in profiles]),
            prof_lambda=np.array([p.extra_lambda for p in profiles]) * factor,
            prof_tail_p=np.array([p.tail_p for p in profiles]),
            prof_tail_scale=np.array([p.tail_scale for p in profiles]),
            prof_secondary_closed=np.array([p.secondary_closed for p in profiles]),
            prof_creation_rate=np.array([p.creation_rate for p in profiles]),
            prof_closure=np.array([p.closure_factor for p in profiles]),
            prof_has_alt=np.array([p.etab_naf is not None for p in profiles]),
            prof_rm=np.array([p in ("personne_physique", "societe") for p in profile_names]),
            naf_codes=tuple(naf_codes),
            naf_dict=pa.array(naf_codes, pa.string()),
            naf25_dict=pa.array(naf25_codes, pa.string()),
            naf25_table=_Grouped.build(naf25_groups),
            naf25_excluded=np.array([c in excluded_2025 for c in naf25_codes]),
            naf_excluded=np.array([c in ref.naf_exclusions for c in naf_codes]),
            naf_table=_Grouped.build(naf_groups),
            naf_entry_rate=np.array(rate_values),
            alt_table=_Grouped.build(alt_groups),
            rev1_table=_Grouped.build(rev1_groups),
            rev1_dict=pa.array(rev1_codes, pa.string()),
            template_table=_Grouped.build(template_groups),
            template_dict=pa.array(templates, pa.string()),
            band_table=_Grouped.build(band_groups),
            tranche_dict=pa.array(("", "NN") + _BANDS, pa.string()),
            date_dict=date_dict,
            time_dict=time_dict,
            prenom_dict=pa.array(_PRENOMS_M + _PRENOMS_F, pa.string()),
            type_voie_cum=tv_cum,
            type_voie_dict=pa.array([t for t, _ in _TYPES_VOIE], pa.string()),
            libelle_voie_dict=pa.array(_LIBELLES_VOIE, pa.string()),
            complement_dict=pa.array(("",) + _COMPLEMENTS, pa.string()),
            rm_dict=pa.array(_RM_SUFFIXES, pa.string()),
            former_code=pa.array(f_code, pa.string()),
            former_label=pa.array(f_label, pa.string()),
            former_postal=pa.array(f_postal, pa.string()),
            former_day=np.array(f_day, dtype=np.int64),
            former_inside=_Grouped.build(inside_groups),
            former_outside=_Grouped.build(outside_groups),
            former_inside_last=np.array([max(f_day[e] for e, _ in g) for g in inside_groups]),
            former_outside_last=np.array([max(f_day[e] for e, _ in g) for g in outside_groups]),
            former_info=tuple(f_info),
            unknown_communes=tuple(unknown_communes),
            number_width=width,
            la_poste_index=la_poste_index,
            la_poste_naf=naf_pos["53.10Z"],
            est_extra_factor=factor,
            poste_seq=(4, 1203, 2318, 4471, 6590),
        )
