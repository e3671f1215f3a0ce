"""The network lists: a ressourceries network's JSON and the ASP's list of SIAE.

The two lists test the two paths of the linker: the JSON's members mostly have no SIRET (names
and addresses only), while the SIAE list gives SIRETs with their usual defects (spaces, wrong
keys) in the Windows-1252 CSV that Excel saves, one row per structure and measure.
"""

from __future__ import annotations

import json
from typing import Any

from observatoire.demo.synthetic_sources.spelling import (
    _commune,
    _csv_records,
    _fold,
    _person,
    _phone,
    _siret_spaced,
    _street,
    _wrong_key,
)
from observatoire.demo.synthetic_sources.stock import _draw, _draw_families, _Source

_SIAE_MESURES_ASSO = (("ACI", 55), ("AI", 30), ("EI", 15))
_SIAE_MESURES_SOC = (("EI", 55), ("ETTI", 30), ("EITI", 15))


class _Ressourceries(_Source):
    """A network's JSON: ~25 members, mostly without SIRET (the probabilistic path)."""

    def render(self) -> tuple[bytes, int]:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        found = _draw_families(stock, {"cooperative": 3, "association": 18}, rng, used)
        closed = _draw(stock.pool(etat="F", diffusion="O", families=("association",)), 1, rng,
                       used)  # fmt: skip
        kinds = (("titre", 35), ("exact", 10), ("accents", 10), ("abreviation", 15),
                 ("faute", 10), ("enseigne", 15), ("sans_zeros", 5))  # fmt: skip
        members: list[tuple[dict[str, Any], str, str]] = []
        for i, row in enumerate(found):
            cas = ("siret_ok", "siret_ok", "siret_espaces")[i] if i < 3 else "nom_variante"
            members.append(self._member(row, cas, kinds))
        for row in closed:
            members.append(self._member(row, "ferme", kinds))
        members.append(
            (
                {
                    "nom": "Ressourcerie imaginaire du Val",
                    "siret": None,
                    "adresse": "3 allée des Inventions",
                    "code_postal": "",
                    "ville": stock.communes.get(found[0]["codeCommuneEtablissement"], ""),
                    "telephone": _phone(rng, mobile=False),
                    "courriel": "bonjour@ressourcerie-imaginaire.exemple.org",
                    "adherent_depuis": "2024",
                },
                "",
                "absent_sirene",
            )
        )
        rng.shuffle(members)
        # the same structure entered twice by the network, with another spelling
        original = next(m for m in members if m[2] == "nom_variante")
        copy = dict(original[0])
        copy["nom"] = str(copy["nom"]).upper()
        copy["adresse"] = str(copy["adresse"]).lower()
        members.insert(rng.randrange(members.index(original) + 1, len(members) + 1),
                       (copy, original[1], "doublon"))  # fmt: skip
        payload = {
            "reseau": "Réseau des ressourceries du territoire (SYNTHETIQUE)",
            "avertissement": "Données fictives générées pour les tests de l'Observatoire ESS.",
            "membres": [m[0] for m in members],
        }
        for position, (_, siret, cas) in enumerate(members, start=1):
            self.truth.append((position + 1, siret, cas))
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
        return text.encode("utf-8"), len(members)

    def _member(
        self, row: dict[str, str], cas: str, kinds: tuple[tuple[str, float], ...]
    ) -> tuple[dict[str, Any], str, str]:
        rng = self.rng
        name = self._name(row, kinds)
        siret: str | None = None
        if cas in ("siret_ok", "ferme"):
            siret = row["siret"]
        elif cas == "siret_espaces":
            siret = _siret_spaced(row["siret"], rng)
        numero, voie = _street(row)
        member = {
            "nom": name,
            "siret": siret,
            "adresse": f"{numero} {voie}".strip(),
            "code_postal": row["codePostalEtablissement"],
            "ville": _commune(row, self.stock.communes, rng),
            "telephone": _phone(rng, mobile=False) if rng.random() < 0.8 else None,
            "courriel": f"contact@{_fold(name)[:30].strip('-')}.exemple.org",
            "adherent_depuis": str(rng.randint(2012, 2025)),
        }
        return member, row["siret"], cas


_SIAE_HEADER = (
    "MESURE", "SIRET", "DENOMINATION_SOCIALE", "NUM_RUE", "NOM_RUE", "CODE_POSTAL", "COMMUNE",
    "TELEPHONE", "MAIL",
)  # fmt: skip


class _Siae(_Source):
    """The ASP's list as Excel saves it: Windows-1252, `;`, one row per structure and measure."""

    def render(self) -> tuple[bytes, int, int]:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        assos = _draw(stock.pool(etat="A", diffusion="O", families=("association",)), 55, rng,
                      used)  # fmt: skip
        societes = _draw(stock.pool(etat="A", diffusion="O",
                                    families=("hors_ess", "societe_commerciale_ess")),
                         17, rng, used)  # fmt: skip
        closed = _draw(stock.pool(etat="F", diffusion="O", families=("association",)), 4, rng,
                       used)  # fmt: skip
        cases = ["siret_espaces"] * 10 + ["cle_fausse"] * 3 + ["nom_variante"] * 3
        structures = assos + societes
        cases += ["siret_ok"] * (len(structures) - len(cases))
        rng.shuffle(cases)
        rows: list[tuple[list[str], str, str]] = []
        for row, cas in zip(structures, cases, strict=True):
            rows.append(self._row(row, cas, self._mesure(row)))
        for row in closed:
            rows.append(self._row(row, "ferme", self._mesure(row)))
        # a structure holding two measures appears twice under the same SIRET
        for first in rng.sample([r for r in rows if r[2] == "siret_ok"], 4):
            again = list(first[0])
            others = [m for m, _ in _SIAE_MESURES_ASSO + _SIAE_MESURES_SOC if m != again[0]]
            again[0] = rng.choice(sorted(set(others)))
            rows.append((again, first[1], "doublon"))
        absent_commune = stock.communes.get(structures[0]["codeCommuneEtablissement"], "")
        rows.append(
            (
                ["ACI", "", "RÉGIE DE QUARTIER IMAGINAIRE", "5", "RUE DES INVENTIONS", "",
                 absent_commune.upper(), _phone(rng, mobile=False), ""],
                "",
                "absent_sirene",
            )
        )  # fmt: skip
        rows.append(
            (
                ["EI", stock.unknown_siret(rng), "ENTREPRISE D'INSERTION INCONNUE", "", "", "",
                 absent_commune.upper(), "", ""],
                "",
                "siret_inconnu",
            )
        )  # fmt: skip
        rows.sort(key=lambda r: (r[0][0], r[0][6], r[0][2], r[0][1]))
        text, starts, physical = _csv_records(
            list(_SIAE_HEADER), [r[0] for r in rows], delimiter=";", quote_all=False
        )
        for (_, siret, cas), line in zip(rows, starts, strict=True):
            self.truth.append((line, siret, cas))
        data = text.encode("cp1252")
        return data, len(rows), physical

    def _mesure(self, row: dict[str, str]) -> str:
        table = _SIAE_MESURES_ASSO if row["famille"] == "association" else _SIAE_MESURES_SOC
        return self.rng.choices([m for m, _ in table], [w for _, w in table])[0]

    def _row(self, row: dict[str, str], cas: str, mesure: str) -> tuple[list[str], str, str]:
        rng = self.rng
        kinds = (("exact", 60), ("accents", 15), ("abreviation", 10), ("faute", 5),
                 ("enseigne", 10))  # fmt: skip
        name = self._name(row, kinds)
        siret = {
            "siret_ok": row["siret"],
            "ferme": row["siret"],
            "siret_espaces": _siret_spaced(row["siret"], rng),
            "cle_fausse": _wrong_key(row["siret"], rng),
            "nom_variante": "",
        }[cas]
        numero, voie = _street(row, upper=True)
        label = self.stock.communes.get(row["codeCommuneEtablissement"], "")
        commune = label.upper() if rng.random() < 0.6 else row["libelleCommuneEtablissement"]
        commune = commune.replace("SAINT-", "ST ").replace("SAINTE-", "STE ")
        mail = ""
        if rng.random() < 0.85:
            _, personal, _ = _person(rng)
            mail = personal if rng.random() < 0.4 else f"accueil@{_fold(name)[:25]}.exemple.org"
        record = [
            mesure,
            siret,
            name.upper(),
            numero,
            voie,
            row["codePostalEtablissement"],
            commune,
            _phone(rng, mobile=False) if rng.random() < 0.9 else "",
            mail,
        ]
        return record, row["siret"], cas
