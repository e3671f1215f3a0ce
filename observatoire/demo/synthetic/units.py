"""Legal units: one chunk drawn, its establishments generated, then the StockUniteLegale columns.

A chunk is the unit of determinism: its random stream is `default_rng([seed, chunk])` and its
draws come in a fixed order, the units' facts first (SIREN, category, dates, activity,
employment), then their establishments (`establishments.py`), then the units' columns, which
need the siège each unit got. Reordering any draw changes the bytes of every later column.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from observatoire.demo.synthetic.arrays import (
    _csv_escape,
    _days,
    _days_between,
    _digits,
    _fixed,
    _from_matrix,
    _labels,
    _letters,
    _luhn_key,
    _plain,
    _sparse,
    _take,
    _timestamps,
    _where,
    _years,
)
from observatoire.demo.synthetic.context import _Context
from observatoire.demo.synthetic.establishments import _generate_establishments
from observatoire.demo.synthetic.tables import (
    _BANDS,
    _F_COMMERCIAL,
    _F_HORS,
    _MIN_UNKNOWN_ESS_O,
    _NOMENCLATURES,
    _OLD_NATURAL_PERSON_1800,
    _OLD_NATURAL_PERSON_BEFORE,
    _OLD_NATURAL_PERSON_RATE,
    _PRENOMS_F,
    _PRENOMS_M,
    _SIREN_BASE_MIN,
    _SIREN_SPAN,
    _TAIL_CAP,
    _TAIL_SHAPE,
)
from observatoire.demo.synthetic.truth import _View

# Main activity already coded in NAF 2025 (nomenclatureActivitePrincipale* = NAF2025): active
# units created in the stock's last twelve months often, older active units sometimes (~5 % of
# active units and establishments in all). Only rows whose NAF 2025 image keeps their ESS
# exclusion status move (their activity did not change). An establishment moves with its unit.
_NAF2025_RATE_NEW = 0.35
_NAF2025_RATE = 0.03


def _plant_minimum(
    ctx: _Context, rng: np.random.Generator, cj: np.ndarray, poste: np.ndarray
) -> None:
    """First chunk: rare codes (`_MIN_UNITS`) get their minimum of units, taken from common ones."""
    taken = np.zeros(len(cj), dtype=bool)
    for idx, units in ctx.cj_minimum:
        have = cj == idx
        taken |= have
        need = units - int(have.sum())
        if need <= 0:
            continue
        pool = np.flatnonzero(ctx.cj_common[cj] & ~poste & ~taken)
        rows = rng.choice(pool, size=min(need, pool.size), replace=False)
        cj[rows] = idx
        taken[rows] = True


def _generate_chunk(
    ctx: _Context, rng: np.random.Generator, start: int, stop: int
) -> tuple[dict[str, Any], dict[str, Any], _View, _View]:
    """Legal units [start, stop) and all their establishments, as columns of strings."""
    n = stop - start
    gidx = np.arange(start, stop, dtype=np.int64)
    end = ctx.end_day

    # --- SIREN: one per slot of the 8-digit space, so unique and sorted, plus the Luhn key.
    lo = _SIREN_BASE_MIN + gidx * _SIREN_SPAN // ctx.n
    hi = _SIREN_BASE_MIN + (gidx + 1) * _SIREN_SPAN // ctx.n
    base = lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
    poste = gidx == ctx.la_poste_index
    base[poste] = 35_600_000
    base_digits = _digits(base, 8)
    siren_digits = np.concatenate([base_digits, _luhn_key(base_digits)[:, None]], axis=1)
    siren_num = base * 10 + siren_digits[:, 8]

    # --- Legal category, profile, family.
    cj = np.minimum(np.searchsorted(ctx.cj_cum, rng.random(n), side="right"), len(ctx.cj_cum) - 1)
    cj[poste] = ctx.la_poste_cj
    first_chunk = start == 0
    if first_chunk:
        _plant_minimum(ctx, rng, cj, poste)
    prof = ctx.cj_profile[cj]
    natural = ctx.prof_natural[prof]

    # --- Creation, closure (older units are more often closed).
    rate = ctx.prof_creation_rate[prof]
    horizon = 85.0
    t_years = -np.log1p(-rng.random(n) * (1.0 - np.exp(-rate * horizon))) / rate
    creation = end - np.floor(t_years * 365.25).astype(np.int64)
    old_marker = (~natural) & (rng.random(n) < 0.003)
    creation[old_marker] = ctx.day0  # "1900-01-01", as for some very old units
    creation = np.maximum(creation, ctx.day0)
    creation[poste] = (date(1991, 1, 1) - date(1970, 1, 1)).days
    age = (end - creation) / 365.25
    closed = rng.random(n) < ctx.prof_closure[prof] * (1.0 - np.exp(-age / 12.0))
    closed[poste] = False
    # Closures lean towards recent years (u ** 0.8), as the stock's yearly closures grow.
    closure = creation + np.ceil((end - creation) * rng.random(n) ** 0.8).astype(np.int64)
    closure = np.clip(closure, creation, end)
    # Categories that ended at a known date: units created and closed before it.
    ended = np.flatnonzero(ctx.cj_closed_before[cj] <= end)
    if ended.size:
        before = ctx.cj_closed_before[cj[ended]] - 1
        back = np.floor(rng.random(ended.size) * 20 * 365.25).astype(np.int64)
        creation[ended] = np.maximum(np.minimum(creation[ended], before - back), ctx.day0)
        closed[ended] = True
        closure[ended] = creation[ended] + np.ceil(
            (before - creation[ended]) * rng.random(ended.size)
        ).astype(np.int64)
    upper = np.where(closed, closure, end)
    active = ~closed

    # --- Diffusion status.
    p_unit = rng.random(n) < np.where(natural, 0.10, 0.015)
    p_unit[poste] = False

    # --- Activity and employment.
    naf_entry = ctx.naf_table.entry(prof, rng.random(n))
    naf = ctx.naf_table.values[naf_entry]
    naf[poste] = ctx.la_poste_naf
    # Headcounts lag: a unit created this year cannot have a declared workforce yet.
    creation_year = _years(creation)
    employer = active & (rng.random(n) < ctx.naf_entry_rate[naf_entry])
    employer &= creation_year < ctx.year
    band = ctx.band_table.sample(ctx.prof_size[prof], rng.random(n))
    band[poste] = len(_BANDS) - 1
    employer[poste] = True
    u = rng.random(n)
    tranche = np.where(
        employer, 2 + band, np.where(active, np.where(u < 0.75, 1, 0), np.where(u < 0.5, 1, 0))
    )
    annee_eff = np.where(rng.random(n) < 0.9, ctx.year - 3, ctx.year - 4)
    annee_eff = np.minimum(np.maximum(annee_eff, creation_year), ctx.year - 1)
    u = rng.random(n)
    employeur_code = np.where(
        employer,
        np.where(u < 0.88, 1, 0),
        np.where(active, np.where(u < 0.85, 2, 0), np.where(u < 0.5, 2, 0)),
    )

    # --- Removed legal categories kept by older units: SASU and SARL unipersonnelles, natural
    # persons' former codes (chosen from their activity).
    u = rng.random(n)
    target = ctx.cj_relabel[cj]
    relabel = (target >= 0) & (creation < ctx.cj_relabel_before[cj]) & (u < ctx.cj_relabel_rate[cj])
    old_pp = (cj == ctx.cj_1000) & (creation < _days(_OLD_NATURAL_PERSON_BEFORE))
    old_pp &= u < _OLD_NATURAL_PERSON_RATE
    old_code = np.where(
        rng.random(n) < _OLD_NATURAL_PERSON_1800, ctx.cj_1800, ctx.natural_old_cj[naf]
    )
    cj = np.where(relabel, target, np.where(old_pp, old_code, cj))

    # --- ESS flag and société à mission.
    ess_o = rng.random(n) < ctx.cj_ess_rate[cj]
    ess_o[poste] = False
    if first_chunk:  # a couple of units of unknown categories flagged ESS
        unknown = np.flatnonzero(ctx.cj_unknown[cj] & ~ess_o)
        flagged = int((ctx.cj_unknown[cj] & ess_o).sum())
        ess_o[unknown[: max(0, _MIN_UNKNOWN_ESS_O - flagged)]] = True
    u = rng.random(n)
    ess_code = np.where(ess_o, 1, np.where(u < 0.75, 2, 0))
    mission = ctx.cj_societe[cj] & (rng.random(n) < 0.001)
    family = ctx.cj_family[cj].copy()
    family[(family == _F_HORS) & ess_o] = _F_COMMERCIAL

    # --- NAF 2025: the image of the activity (active units), and for some the main code itself.
    naf25 = np.zeros(n, dtype=np.int32)
    live = np.flatnonzero(active)
    naf25[live] = ctx.naf25_table.sample(naf[live], rng.random(live.size))
    rate25 = np.where(creation > end - 365, _NAF2025_RATE_NEW, _NAF2025_RATE)
    main25 = active & ~poste & (rng.random(n) < rate25)
    main25 &= ctx.naf_excluded[naf] == ctx.naf25_excluded[naf25]
    rev1 = closed & (closure < _days("2008-01-01"))
    nomenclature = np.where(rev1, 1, np.where(main25, 2, 0)).astype(np.int8)

    # --- Establishments per unit: Poisson part plus a heavy tail (networks of dozens or more).
    extra = rng.poisson(ctx.prof_lambda[prof])
    tail = rng.random(n) < ctx.prof_tail_p[prof]
    lomax = ctx.prof_tail_scale[prof] * (rng.random(n) ** (-1.0 / _TAIL_SHAPE) - 1.0)
    extra = extra + np.where(tail, np.minimum(np.floor(lomax), _TAIL_CAP), 0).astype(np.int64)
    k = 1 + np.minimum(extra, _TAIL_CAP)
    k[poste] = len(ctx.poste_seq)

    ul_view = _View(
        n=n,
        active=active,
        p=p_unit,
        family=family,
        employer=employer,
        cj=cj,
        nomenclature=nomenclature,
        naf25=naf25,
        naf_excluded=ctx.naf_excluded[naf],
        siren=siren_num,
        ess_flag=ess_o,
    )

    etab_cols, etab_view, siege_nic, siege_commune = _generate_establishments(
        ctx,
        rng,
        siren_digits=siren_digits,
        siren_num=siren_num,
        k=k,
        prof=prof,
        natural=natural,
        creation=creation,
        closure=closure,
        closed=closed,
        upper=upper,
        p_unit=p_unit,
        naf=naf,
        employer=employer,
        band=band,
        annee_eff=annee_eff,
        family=family,
        poste=poste,
        naf25=naf25,
        main25=main25,
        first_chunk=first_chunk,
    )

    ul_cols, ul_view.rev1 = _unit_columns(
        ctx,
        rng,
        gidx=gidx,
        siren_digits=siren_digits,
        cj=cj,
        prof=prof,
        natural=natural,
        creation=creation,
        old_marker=old_marker,
        closure=closure,
        closed=closed,
        p_unit=p_unit,
        naf=naf,
        naf25=naf25,
        nomenclature=nomenclature,
        employer=employer,
        band=band,
        tranche=tranche,
        annee_eff=annee_eff,
        employeur_code=employeur_code,
        ess_code=ess_code,
        mission=mission,
        siege_nic=siege_nic,
        siege_commune=siege_commune,
        poste=poste,
    )
    return ul_cols, etab_cols, ul_view, etab_view


def _unit_columns(
    ctx: _Context,
    rng: np.random.Generator,
    *,
    gidx: np.ndarray,
    siren_digits: np.ndarray,
    cj: np.ndarray,
    prof: np.ndarray,
    natural: np.ndarray,
    creation: np.ndarray,
    old_marker: np.ndarray,
    closure: np.ndarray,
    closed: np.ndarray,
    p_unit: np.ndarray,
    naf: np.ndarray,
    naf25: np.ndarray,
    nomenclature: np.ndarray,
    employer: np.ndarray,
    band: np.ndarray,
    tranche: np.ndarray,
    annee_eff: np.ndarray,
    employeur_code: np.ndarray,
    ess_code: np.ndarray,
    mission: np.ndarray,
    siege_nic: pa.Array,
    siege_commune: np.ndarray,
    poste: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray]:
    """The legal units' columns, and the NAF rév. 1 code index of each row (-1: none)."""
    n = len(gidx)
    end = ctx.end_day
    active = ~closed
    d0 = ctx.day0 - 1  # date_dict index = day - d0
    legal = ~natural
    empty = pa.scalar("")

    cols: dict[str, Any] = {}
    cols["siren"] = _from_matrix(siren_digits + 48)
    cols["statutDiffusionUniteLegale"] = _labels(p_unit.astype(np.int8), ("O", "P"))
    purged = closed & (closure < (date(2005, 1, 1) - date(1970, 1, 1)).days)
    purged &= rng.random(n) < 0.5
    cols["unitePurgeeUniteLegale"] = _labels(purged.astype(np.int8), ("", "true"))
    creation_missing = (creation < (date(1975, 1, 1) - date(1970, 1, 1)).days) & ~old_marker
    creation_missing &= rng.random(n) < 0.02
    cols["dateCreationUniteLegale"] = _take(
        ctx.date_dict, np.where(creation_missing, 0, creation - d0)
    )

    # Names: natural persons get FICTIF-XXXXX and first names, legal persons a denomination.
    sexe_f = rng.random(n) < 0.4
    has_sigle = legal & (rng.random(n) < 0.08)
    sigle = _from_matrix(_letters(rng, n, 3), np.repeat(has_sigle[:, None], 3, axis=1))
    cols["sigleUniteLegale"] = _where(p_unit & has_sigle, "[ND]", sigle)
    cols["sexeUniteLegale"] = _labels(np.where(natural, np.where(sexe_f, 2, 1), 0), ("", "M", "F"))
    n_m, n_f = len(_PRENOMS_M), len(_PRENOMS_F)

    def prenom(present: np.ndarray) -> pa.Array:
        idx = np.where(sexe_f, n_m + rng.integers(0, n_f, n), rng.integers(0, n_m, n))
        arr = _take(ctx.prenom_dict, idx)
        arr = _where(~present, empty, arr)
        return _where(p_unit & present, "[ND]", arr)

    has2 = natural & (rng.random(n) < 0.45)
    has3 = has2 & (rng.random(n) < 0.35)
    has4 = has3 & (rng.random(n) < 0.25)
    p1 = prenom(natural)
    cols["prenom1UniteLegale"] = p1
    cols["prenom2UniteLegale"] = prenom(has2)
    cols["prenom3UniteLegale"] = prenom(has3)
    cols["prenom4UniteLegale"] = prenom(has4)
    usuel = natural & (rng.random(n) < 0.85)
    cols["prenomUsuelUniteLegale"] = _where(~usuel, empty, p1)
    pseudo = natural & (rng.random(n) < 0.002)
    cols["pseudonymeUniteLegale"] = _sparse(
        pseudo, lambda r: _where(p_unit[r], "[ND]", pa.array(np.full(r.size, "PSEUDONYME FICTIF")))
    )

    def rna_id(rows: np.ndarray) -> pa.Array:
        tail = _fixed(rng.integers(1_000_000, 4_000_000, rows.size), 7)  # office digit + 6
        return pc.binary_join_element_wise(
            pa.scalar("W"), _take(ctx.commune_dep, siege_commune[rows]), tail, ""
        )

    rna = ctx.cj_rna[cj] & (rng.random(n) < 0.8)
    cols["identifiantAssociationUniteLegale"] = _sparse(rna, rna_id)

    cols["trancheEffectifsUniteLegale"] = _take(ctx.tranche_dict, tranche)
    cols["anneeEffectifsUniteLegale"] = _plain(annee_eff, tranche >= 2)

    debut = np.where(
        closed,
        closure,
        np.where(rng.random(n) < 0.45, creation, _days_between(rng, creation, np.full(n, end))),
    )
    cols["dateDernierTraitementUniteLegale"] = _timestamps(ctx, rng, debut)
    periods = 1 + rng.poisson(1.0, n) + closed
    cols["nombrePeriodesUniteLegale"] = _plain(periods)

    # categorieEntreprise: filled for most active units, from the employer band.
    cat_filled = active & (rng.random(n) < 0.92) & (_years(creation) <= ctx.year - 3)
    u = rng.random(n)
    big = employer & (band >= _BANDS.index("42"))
    mid = employer & (band >= _BANDS.index("31"))
    categorie = np.where(big, np.where(u < 0.6, 3, 2), np.where(mid, np.where(u < 0.5, 2, 1), 1))
    categorie = np.where(cat_filled, categorie, 0)
    cols["categorieEntreprise"] = _labels(categorie, ("", "PME", "ETI", "GE"))
    cols["anneeCategorieEntreprise"] = _plain(np.full(n, ctx.year - 3), cat_filled)
    cols["dateDebut"] = _take(ctx.date_dict, debut - d0)
    cols["etatAdministratifUniteLegale"] = _labels(closed.astype(np.int8), ("A", "C"))

    def fictitious_name(rows: np.ndarray) -> pa.Array:
        name = pc.binary_join_element_wise(
            pa.scalar("FICTIF-"), _from_matrix(_letters(rng, rows.size, 5)), ""
        )
        return _where(p_unit[rows], "[ND]", name)

    cols["nomUniteLegale"] = _sparse(natural, fictitious_name)
    usage = natural & sexe_f & (rng.random(n) < 0.2)
    cols["nomUsageUniteLegale"] = _sparse(usage, fictitious_name)

    def denomination(rows: np.ndarray) -> pa.Array:
        template = ctx.template_table.sample(prof[rows], rng.random(rows.size))
        number = _fixed(gidx[rows] + 1, ctx.number_width)
        text = pc.binary_join_element_wise(_take(ctx.template_dict, template), number, "")
        text = _where(poste[rows], "LA POSTE", text)
        return _csv_escape(_where(p_unit[rows], "[ND]", text))

    def usual_name(rows: np.ndarray) -> pa.Array:
        number = _fixed(gidx[rows] + 1, ctx.number_width)
        text = pc.binary_join_element_wise(pa.scalar("NOM COMMERCIAL FICTIF "), number, "")
        return _where(p_unit[rows], "[ND]", text)

    cols["denominationUniteLegale"] = _sparse(legal, denomination)
    usuelle = legal & (rng.random(n) < 0.03)
    cols["denominationUsuelle1UniteLegale"] = _sparse(usuelle, usual_name)
    cols["denominationUsuelle2UniteLegale"] = empty
    cols["denominationUsuelle3UniteLegale"] = empty
    cols["categorieJuridiqueUniteLegale"] = _take(ctx.cj_code, cj)

    rev1 = nomenclature == 1
    rev1_idx = ctx.rev1_table.sample(prof, rng.random(n))
    naf25_str = _take(ctx.naf25_dict, naf25)
    main = _where(nomenclature == 2, naf25_str, _take(ctx.naf_dict, naf))
    cols["activitePrincipaleUniteLegale"] = _where(rev1, _take(ctx.rev1_dict, rev1_idx), main)
    cols["nomenclatureActivitePrincipaleUniteLegale"] = _labels(nomenclature, _NOMENCLATURES)
    cols["nicSiegeUniteLegale"] = siege_nic
    cols["economieSocialeSolidaireUniteLegale"] = _labels(ess_code, ("", "O", "N"))
    cols["societeMissionUniteLegale"] = _labels(mission.astype(np.int8), ("", "O"))
    cols["caractereEmployeurUniteLegale"] = _labels(employeur_code, ("", "O", "N"))
    cols["activitePrincipaleNAF25UniteLegale"] = naf25_str
    return cols, np.where(rev1, rev1_idx, -1).astype(np.int16)
