"""Commune names and postal codes as people type them, turned into INSEE commune codes.

Questionnaire answers and network lists give a commune as free text ("IVRY SUR SEINE",
"Boissy-St-Léger", "94200") with a postal code, while SIRENE and every indicator work with the
INSEE code. A postal code is not a commune code (one postal code covers several communes and the
reverse), and no postal-code table is bundled, so the name decides, within the département the
postal code gives.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import duckdb

_NON_ALNUM = re.compile(r"[^A-Z0-9]+")
# abbreviations found in administrative lists (the ASP's SIAE list writes "ST MAURICE")
_ABBREVIATIONS = {"ST": "SAINT", "STE": "SAINTE", "S/": "SUR", "CDX": "CEDEX"}
_CEDEX = re.compile(r"\bCEDEX\b.*$")
# cities whose establishments SIRENE locates in arrondissements (postal code → code)
_ARRONDISSEMENTS = {"75": ("751", 20), "69": ("6938", 9), "13": ("132", 16)}


def normalise_label(text: str | None) -> str | None:
    """Upper case, no accents or punctuation, usual abbreviations expanded, CEDEX dropped."""
    if text is None:
        return None
    # ligatures have no decomposition: "Vandœuvre" would lose its "oe" with the accents
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    plain = plain.replace("S/", " SUR ")
    words = _NON_ALNUM.sub(" ", plain).split()
    label = " ".join(_ABBREVIATIONS.get(w, w) for w in words)
    label = _CEDEX.sub("", label).strip()
    return label or None


def departement_of(code_postal: str | None) -> str | None:
    """Département of a postal code; Corsica's 20xxx is ambiguous (2A/2B) and gives None."""
    if code_postal is None:
        return None
    digits = re.sub(r"\D", "", code_postal)
    if len(digits) == 4:  # a spreadsheet dropped the leading zero
        digits = "0" + digits
    if len(digits) != 5:
        return None
    if digits.startswith("97"):
        return digits[:3]
    if digits.startswith("20"):
        return None
    return digits[:2]


@dataclass
class CommuneResolver:
    """Lookup built once from `ref.communes` (the COG), then used row by row."""

    codes: frozenset[str]
    by_dep: dict[tuple[str, str], list[str]]
    by_label: dict[str, list[str]]

    @classmethod
    def from_con(cls, con: duckdb.DuckDBPyConnection) -> CommuneResolver:
        rows = con.execute(
            "select code_commune, libelle_commune, code_departement from ref.communes"
        ).fetchall()
        by_dep: dict[tuple[str, str], list[str]] = defaultdict(list)
        by_label: dict[str, list[str]] = defaultdict(list)
        for code, libelle, dep in rows:
            label = normalise_label(libelle)
            if label is None:
                continue
            by_dep[(dep, label)].append(code)
            by_label[label].append(code)
        return cls(frozenset(r[0] for r in rows), dict(by_dep), dict(by_label))

    def resolve(self, commune: str | None, code_postal: str | None = None) -> str | None:
        """INSEE code of the commune, or None when it cannot be told for certain.

        An INSEE code is taken as is. Paris, Lyon and Marseille resolve to their
        arrondissement from the postal code, as SIRENE locates establishments there. A name
        shared by several communes needs the postal code's département to decide.
        """
        text = (commune or "").strip()
        if re.fullmatch(r"\d[0-9AB]\d{3}", text) and text in self.codes:
            return text
        dep = departement_of(code_postal)
        arrondissement = self._arrondissement(code_postal)
        label = normalise_label(text)
        if label is None:
            return arrondissement
        city = re.match(r"^(PARIS|LYON|MARSEILLE)( \d.*)?$", label)
        if city and arrondissement:
            return arrondissement
        if dep is not None:
            found = self.by_dep.get((dep, label), [])
            if len(found) == 1:
                return found[0]
            if not found and code_postal and dep.startswith("2"):
                return None
        found = self.by_label.get(label, [])
        if len(found) == 1 and (dep is None or self._dep_of_code(found[0]) == dep):
            return found[0]
        return None

    @staticmethod
    def _dep_of_code(code: str) -> str:
        return code[:3] if code.startswith("97") else code[:2]

    def _arrondissement(self, code_postal: str | None) -> str | None:
        digits = re.sub(r"\D", "", code_postal or "")
        if len(digits) != 5:
            return None
        rule = _ARRONDISSEMENTS.get(digits[:2])
        if rule is None:
            return None
        prefix, count = rule
        number = int(digits[3:])
        if digits[:2] == "69" and not digits.startswith("6900"):
            return None
        if digits[:2] == "13" and not digits.startswith("130"):
            return None
        if digits[:2] == "75" and not digits.startswith("750"):
            return None
        if not 1 <= number <= count:
            return None
        code = f"{prefix}{number:02d}" if len(prefix) == 3 else f"{prefix}{number}"
        return code if code in self.codes else None
