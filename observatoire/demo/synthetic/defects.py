"""Malformed rows spliced into the first chunk, each listed with its physical line number.

A pipeline must set aside what real extracts sometimes hold (a wrong Luhn key, a malformed code,
an impossible date, a repeated, overlong or truncated line). The defects are written into the
first chunk's lines and listed in the manifest, so that tests can check that exactly these rows
are quarantined. Rows carrying a code outside today's nomenclatures are never picked: they are
drift, which the pipeline must keep, not defects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from observatoire.core.identifiers import LA_POSTE_SIREN
from observatoire.demo.synthetic.arrays import _luhn_key
from observatoire.demo.synthetic.context import _Context
from observatoire.demo.synthetic.truth import _View
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25


def _count_lines(parts: list[Any]) -> int:
    """Line count of the (chunk 0, demo-sized) buffers that carry injected defects."""
    return sum(bytes(p).count(b"\n") for p in parts)


def _spliced(lines: pa.StringArray, replacements: dict[int, str]) -> list[Any]:
    """Line buffers with some lines replaced (a replacement may hold several lines)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    data = memoryview(lines.buffers()[2])
    parts: list[Any] = []
    pos = int(offsets[0])
    for row in sorted(replacements):
        parts.append(data[pos : int(offsets[row])])
        parts.append(replacements[row].encode())
        pos = int(offsets[row + 1])
    parts.append(data[pos : int(offsets[-1])])
    return parts


def _pick_rows(
    rng: np.random.Generator, lines: pa.StringArray, candidates: np.ndarray, count: int
) -> list[int]:
    """Distinct rows among `candidates` whose lines need no CSV quoting (safe to split)."""
    chosen: list[int] = []
    order = rng.permutation(candidates)
    for row in order:
        if '"' not in lines[int(row)].as_py():
            chosen.append(int(row))
            if len(chosen) == count:
                break
    if len(chosen) < count:
        raise ValueError("pas assez de lignes pour injecter les défauts")
    return chosen


def _inject_ul_defects(
    lines: pa.StringArray, view: _View, rng: np.random.Generator
) -> tuple[list[Any], list[dict[str, Any]]]:
    """One legal unit whose SIREN key is wrong (a typo as seen in real extracts)."""
    assert view.cj is not None and view.siren is not None
    candidates = np.flatnonzero((view.siren != int(LA_POSTE_SIREN)) & ~view.drift)
    (row,) = _pick_rows(rng, lines, candidates, 1)
    fields = lines[row].as_py().rstrip("\n").split(",")
    good = fields[0]
    bad = good[:8] + str((int(good[8]) + 3) % 10)
    fields[0] = bad
    found = [
        {
            "file": "unites_legales",
            "kind": "siren_luhn_invalide",
            "line": row + 2,
            "column": "siren",
            "siren": bad,
            "value": bad,
            "original": good,
            "detail": "clé de Luhn fausse",
        }
    ]
    return _spliced(lines, {row: ",".join(fields) + "\n"}), found


_ETAB_INDEX = {name: i for i, name in enumerate(ETABLISSEMENT_V3_11_NAF25)}


def _inject_etab_defects(
    lines: pa.StringArray, view: _View, ctx: _Context, rng: np.random.Generator
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Malformed establishment rows, each listed with its physical line number (1 = header)."""
    assert view.la_poste is not None
    candidates = np.flatnonzero(view.active & ~view.p & ~view.la_poste & ~view.drift)
    if len(candidates) < 8:
        candidates = np.flatnonzero(~view.la_poste & ~view.drift)
    rows = _pick_rows(rng, lines, candidates, 8)
    kinds = (
        "siret_luhn_invalide",
        "siret_different_siren_nic",
        "commune_mal_formee",
        "date_impossible",
        "tranche_mal_formee",
        "siret_duplique",
        "colonne_en_trop",
        "colonnes_manquantes",
    )
    replacements: dict[int, str] = {}
    found: list[dict[str, Any]] = []
    for kind, row in zip(kinds, rows, strict=True):
        fields = lines[row].as_py().rstrip("\n").split(",")
        siret = fields[_ETAB_INDEX["siret"]]
        entry: dict[str, Any] = {"file": "etablissements", "kind": kind, "row": row}
        if kind == "siret_luhn_invalide":
            bad = siret[:13] + str((int(siret[13]) + 1) % 10)
            fields[_ETAB_INDEX["siret"]] = bad
            fields[_ETAB_INDEX["nic"]] = bad[9:]
            entry.update(column="siret", value=bad, original=siret, detail="clé de Luhn fausse")
            siret = bad
        elif kind == "siret_different_siren_nic":
            nic = fields[_ETAB_INDEX["nic"]]
            other = f"{(int(nic[:4]) + 5000) % 10_000:04d}"
            payload = np.array([int(c) for c in siret[:9] + other], dtype=np.uint8)
            new_nic = other + str(int(_luhn_key(payload[None, :])[0]))
            fields[_ETAB_INDEX["nic"]] = new_nic
            entry.update(column="nic", value=new_nic, original=nic, detail="siret ≠ siren + nic")
        elif kind == "commune_mal_formee":
            # a well-formed unknown code is kept (nomenclature drift): only a code that cannot
            # be one is quarantined
            code = fields[_ETAB_INDEX["codeCommuneEtablissement"]]
            bad = code[:2] + "X" + code[3:]
            fields[_ETAB_INDEX["codeCommuneEtablissement"]] = bad
            entry.update(
                column="codeCommuneEtablissement", value=bad, original=code, detail="mal formé"
            )
        elif kind == "date_impossible":
            col = "dateCreationEtablissement"
            entry.update(column=col, value="2023-02-30", original=fields[_ETAB_INDEX[col]])
            entry["detail"] = "date impossible"
            fields[_ETAB_INDEX[col]] = "2023-02-30"
        elif kind == "tranche_mal_formee":
            col = "trancheEffectifsEtablissement"
            entry.update(column=col, value="9", original=fields[_ETAB_INDEX[col]])
            entry["detail"] = "code de tranche mal formé"
            fields[_ETAB_INDEX[col]] = "9"
        elif kind == "siret_duplique":
            entry.update(column="siret", value=siret, original=None)
            entry["detail"] = "ligne répétée à l'identique (la ligne précédente)"
        elif kind == "colonne_en_trop":
            fields.append("COLONNE EN TROP")
            entry.update(column=None, value=None, original=None)
            entry["detail"] = f"{len(fields)} champs au lieu de 54"
        elif kind == "colonnes_manquantes":
            fields = fields[:44]
            entry.update(column=None, value=None, original=None)
            entry["detail"] = f"{len(fields)} champs au lieu de 54"
        entry["siret"] = siret
        entry["siren"] = siret[:9]
        text = ",".join(fields) + "\n"
        if kind == "siret_duplique":
            text = text + text
        replacements[row] = text
        found.append(entry)
    # Physical line numbers: header is line 1; the duplicate adds one line after its row.
    dup_row = next(e["row"] for e in found if e["kind"] == "siret_duplique")
    for e in found:
        row = e.pop("row")
        e["line"] = row + 2 + (1 if row > dup_row or e["kind"] == "siret_duplique" else 0)
    found.sort(key=lambda e: e["line"])
    return _spliced(lines, replacements), found
