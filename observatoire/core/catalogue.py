"""The indicator catalogue: what each published table means, in French, for its readers.

The catalogue is data (`catalogue.toml`) so that the team documenting indicators does not edit
code; tests keep it and `sql/indicators/` in step.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

REQUIRED = (
    "titre",
    "definition",
    "unite",
    "unite_de_compte",
    "source",
    "methode",
    "colonnes",
    "dimensions",
    "confidentialite",
    "motif_confidentialite",
)
CONFIDENTIALITIES = ("public", "confidentiel")
# the families of the ESS, in the order tables and pages list them (`famille`; the perimeter's
# SQL decides which one a unit belongs to, docs/methode.md), with the labels readers see
FAMILY_LABELS = {
    "ensemble": "Ensemble",
    "ess": "Économie sociale et solidaire",
    "hors_ess": "Hors ESS",
    "association": "Associations",
    "cooperative": "Coopératives",
    "mutuelle": "Mutuelles",
    "fondation": "Fondations",
    "autre_non_lucratif": "Autres structures non lucratives de l'ESS",
    "societe_commerciale_ess": "Sociétés commerciales de l'ESS",
}
ESS_FAMILIES = tuple(f for f in FAMILY_LABELS if f not in ("ensemble", "ess", "hors_ess"))


@dataclass(frozen=True)
class Indicator:
    name: str
    titre: str
    definition: str
    unite: str
    unite_de_compte: str
    source: str
    methode: str
    colonnes: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    # `public`: computed from open files anyone can recount, published in full;
    # `confidentiel`: built on data given in confidence, protected by statistical secrecy
    confidentialite: str = "public"
    motif_confidentialite: str = ""
    # confidential tables: how many of famille / section / tranche a published row may cross
    # (0 = territory totals only). The finer rows the SQL computes stay in the warehouse, where
    # the mask uses them as its inner cells; they are never published. None: every row is.
    croisements_publies: int | None = None

    @property
    def confidentiel(self) -> bool:
        return self.confidentialite == "confidentiel"

    @property
    def mesures(self) -> tuple[str, ...]:
        """Every column but the keys and the secret status."""
        return tuple(
            c for c in self.colonnes if c not in self.dimensions and c not in SECRET_COLUMNS
        )

    @property
    def listing(self) -> bool:
        """A list of units (diffusible ones only), not a table of cells: no secret status."""
        return "statut_secret" not in self.colonnes


SECRET_COLUMNS = ("statut_secret", "motif_secret")
# columns added on the way to publication (observatoire/secrecy/tables.py); fourchette_elargie
# is kept for partners' schemas and is always false since jobs are published exactly
MASK_COLUMNS = ("fourchette_elargie", *SECRET_COLUMNS)


@cache
def _raw() -> dict:
    text = resources.files("observatoire").joinpath("catalogue.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def indicators() -> dict[str, Indicator]:
    out = {}
    for name, entry in _raw()["indicateurs"].items():
        missing = [k for k in REQUIRED if not entry.get(k)]
        if missing:
            raise ValueError(f"catalogue.toml, indicateur {name} : champs manquants {missing}")
        if entry["confidentialite"] not in CONFIDENTIALITIES:
            raise ValueError(
                f"catalogue.toml, indicateur {name} : confidentialite "
                f"« {entry['confidentialite']} » (attendu : {' ou '.join(CONFIDENTIALITIES)})"
            )
        crossings = entry.get("croisements_publies")
        if crossings is not None and (
            not isinstance(crossings, int) or isinstance(crossings, bool) or crossings < 0
        ):
            raise ValueError(
                f"catalogue.toml, indicateur {name} : croisements_publies « {crossings} » "
                "(attendu : un entier positif ou nul)"
            )
        out[name] = Indicator(
            name=name,
            **{
                **entry,
                "colonnes": tuple(entry["colonnes"]),
                "dimensions": tuple(entry["dimensions"]),
            },
        )
    return out


def column_definitions() -> dict[str, str]:
    return dict(_raw()["colonnes"])
