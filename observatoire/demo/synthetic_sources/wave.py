"""The questionnaire wave: one LimeSurvey export, as a data team receives it.

The mapping template (`data/modeles/correspondance.toml`) decides the columns, options and
categories, so that the answers always agree with what the reader expects. Needs are drawn from
the structure's family and size, identifications carry the defects seen in real waves, some
structures answer twice, and a few cells must be rejected or masked by the reader (listed in the
manifest's `defauts_valeurs`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from observatoire.demo.synthetic_sources.spelling import (
    _address,
    _commune,
    _csv_records,
    _person,
    _siren_spaced,
    _siret_spaced,
    _wrong_key,
)
from observatoire.demo.synthetic_sources.stock import _draw, _draw_families, _Source, _Stock

# Columns of the wave that LimeSurvey adds and the mapping does not use (kept in raw only).
_ID_COLUMN = "ID de la réponse"

_ABSENT_NAMES = (
    "Collectif fictif des jardins partagés", "Atelier vélo solidaire fictif",
    "Épicerie solidaire imaginaire", "Café associatif inventé", "Repair café fictif",
    "Les amis synthétiques du quartier", "Tiers-lieu fictif La Fabrique",
    "Compagnie théâtrale imaginaire", "Cuisine solidaire fictive", "Recyclerie inventée",
    "Jardin d'insertion fictif", "Chantier école imaginaire", "Bricothèque fictive",
    "Friperie solidaire inventée", "Ludothèque synthétique",
)  # fmt: skip
_COMMENTS = (
    "Merci pour cette initiative.",
    "Nous cherchons un local de stockage depuis deux ans.",
    "Les délais de versement des subventions mettent notre trésorerie en difficulté.",
    "Besoin d'échanger avec d'autres structures du territoire sur la mutualisation d'un poste.",
    "Difficile de recruter des animateurs qualifiés.",
    "Nous aimerions être mieux informés des appels à projets.",
    "Les bénévoles s'essoufflent ; nous cherchons à renouveler le bureau.",
    'Notre projet « tiers-lieu » attend une réponse de la mairie.',
    "Rien de particulier.",
    "Une formation à la comptabilité associative serait bienvenue.",
)  # fmt: skip
# Answers with a line break inside the quoted field: the physical line count must follow.
_MULTILINE_COMMENTS = (
    "Nos besoins principaux :\n- un local plus grand\n- un poste de coordination",
    "Nous avons répondu l'an dernier.\nRien n'a changé depuis, sauf le loyer.",
    "Bonjour,\nle « Point info » ferme en juin ; merci de nous recontacter.",
)
_UNPARSEABLE_NUMBERS = ("une dizaine", "entre 5 et 10", "NSP", "beaucoup", "2 ou 3")
_UNKNOWN_OPTIONS = ("Trouver des bénévoles", "Subventions", "Recruter des bénévoles")
_STATUTS = {
    "association": "Association",
    "cooperative": "Coopérative (SCOP, SCIC...)",
    "mutuelle": "Mutuelle",
    "fondation": "Fondation",
    "autre_non_lucratif": "Autre",
    "societe_commerciale_ess": "Entreprise de l'ESS",
    "hors_ess": "Entreprise",
}

# Probability of citing each need by family group and size class (0: no employee, 1: 1-9,
# 2: 10 and more): small associations cite funding and premises, employers recruitment and HR.
_NEEDS = (
    "locaux", "recrutement", "rh_appui", "financement", "commande_publique",
    "cooperation_mutualisation", "visibilite_communication", "formation",
)  # fmt: skip
_NEED_RATES: dict[tuple[str, int], tuple[float, ...]] = {
    ("association", 0): (0.50, 0.08, 0.10, 0.65, 0.05, 0.30, 0.50, 0.30),
    ("association", 1): (0.45, 0.30, 0.30, 0.60, 0.10, 0.30, 0.45, 0.35),
    ("association", 2): (0.30, 0.55, 0.40, 0.45, 0.20, 0.30, 0.30, 0.45),
    ("cooperative", 0): (0.35, 0.20, 0.15, 0.45, 0.35, 0.40, 0.45, 0.25),
    ("cooperative", 1): (0.30, 0.40, 0.25, 0.40, 0.45, 0.35, 0.35, 0.30),
    ("cooperative", 2): (0.20, 0.55, 0.30, 0.30, 0.50, 0.30, 0.25, 0.40),
    ("grande", 0): (0.20, 0.15, 0.10, 0.30, 0.15, 0.40, 0.30, 0.25),
    ("grande", 1): (0.20, 0.35, 0.20, 0.30, 0.15, 0.40, 0.25, 0.30),
    ("grande", 2): (0.15, 0.50, 0.25, 0.25, 0.20, 0.40, 0.20, 0.40),
    ("hors_ess", 0): (0.35, 0.15, 0.10, 0.35, 0.25, 0.15, 0.45, 0.15),
    ("hors_ess", 1): (0.30, 0.40, 0.25, 0.30, 0.30, 0.15, 0.40, 0.20),
    ("hors_ess", 2): (0.20, 0.50, 0.25, 0.20, 0.35, 0.15, 0.30, 0.30),
}  # fmt: skip
_BAND_RANGES = {
    "00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49),
    "21": (50, 99), "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999),
    "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999), "53": (10000, 12000),
}  # fmt: skip


def _size_class(band: str) -> int:
    if band in ("", "NN", "00"):
        return 0
    if band in ("01", "02", "03"):
        return 1
    return 2


def _need_group(famille: str) -> str:
    if famille in ("association", "autre_non_lucratif"):
        return "association"
    if famille in ("cooperative", "societe_commerciale_ess"):
        return "cooperative"
    if famille in ("mutuelle", "fondation"):
        return "grande"
    return "hors_ess"


# Structures answering, by kind. Families follow the territory's ESS mix, a little skewed
# towards employers (they answer surveys more often).
_WAVE_FAMILIES = {
    "cooperative": 55,
    "mutuelle": 18,
    "fondation": 14,
    "autre_non_lucratif": 20,
    "societe_commerciale_ess": 20,
    "association": 363,
}
_WAVE_HORS_ESS = 55
_WAVE_P_UNITS = 8
_WAVE_CLOSED = 6
_WAVE_ABSENT = 11
_WAVE_UNKNOWN_SIRET = 4
_WAVE_DUPLICATE_RATE = 0.05
_WAVE_ID_CASES = (
    ("siret_ok", 42),
    ("siret_espaces", 15),
    ("cle_fausse", 5),
    ("siren_seul", 8),
    ("nom_variante", 30),
)
_WAVE_NAME_KINDS = (
    ("exact", 15), ("titre", 25), ("accents", 8), ("minuscules", 7), ("abreviation", 15),
    ("faute", 10), ("sans_zeros", 8), ("article", 4), ("enseigne", 4), ("sigle", 4),
)  # fmt: skip
# Without a SIRET the name must stay linkable: no sigle alone.
_WAVE_NAME_KINDS_NO_SIRET = tuple(k for k in _WAVE_NAME_KINDS if k[0] != "sigle")


@dataclass
class _Answer:
    row: dict[str, str] | None  # the establishment, None when the structure is not in SIRENE
    cas: str
    siret_field: str
    name: str
    famille: str
    when: datetime = datetime(2026, 3, 1)
    cells: dict[str, str] = field(default_factory=dict)


class _Wave(_Source):
    """One LimeSurvey export; the mapping template decides columns, options and categories."""

    def __init__(self, stock: _Stock, mapping: dict[str, Any], rng: random.Random) -> None:
        super().__init__(stock, rng)
        self.mapping = mapping
        self.answers: list[_Answer] = []
        self.value_defects: list[dict[str, Any]] = []
        self.families: Counter[str] = Counter()
        vague = mapping["vague"]
        self.start = datetime.fromisoformat(vague["date_debut"])
        self.end = datetime.fromisoformat(vague["date_fin"]) + timedelta(days=1)

    def build(self) -> None:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        ess = _draw_families(stock, _WAVE_FAMILIES, rng, used)
        hors = _draw(stock.pool(etat="A", diffusion="O", families=("hors_ess",)), _WAVE_HORS_ESS,
                     rng, used)  # fmt: skip
        ess_families = tuple(k for k in _STATUTS if k != "hors_ess")
        p_units = _draw(stock.pool(etat="A", diffusion="P", families=ess_families),
                        _WAVE_P_UNITS, rng, used)  # fmt: skip
        closed = _draw(stock.pool(etat="F", diffusion="O", families=ess_families),
                       _WAVE_CLOSED, rng, used)  # fmt: skip
        for row in ess + hors:
            cas = rng.choices([c for c, _ in _WAVE_ID_CASES], [w for _, w in _WAVE_ID_CASES])[0]
            self.answers.append(self._found(row, cas))
        for row in p_units:
            # counted, never named: SIRENE gives neither name nor street for a P unit
            self.answers.append(_Answer(row, "diffusion_partielle", row["siret"], "",
                                        row["famille"]))  # fmt: skip
        for row in closed:
            answer = self._found(row, "siret_ok")
            answer.cas = "ferme"
            self.answers.append(answer)
        absent = rng.sample(_ABSENT_NAMES, min(len(_ABSENT_NAMES), _WAVE_ABSENT))
        for name in absent:
            self.answers.append(_Answer(None, "absent_sirene", "", name, "inconnue"))
        for i in range(_WAVE_UNKNOWN_SIRET):
            name = f"Association imaginaire n° {i + 1}"
            self.answers.append(
                _Answer(None, "siret_inconnu", stock.unknown_siret(rng), name, "inconnue")
            )
        days = (self.end - self.start).days
        for answer in self.answers:
            answer.when = self._moment(rng.randrange(days - 3))
        # ~5 % of the structures answer twice; the later answer is the one that counts
        twice = [a for a in self.answers if a.row is not None and a.cas not in ("ferme",)]
        twice = [a for a in twice if a.cas != "diffusion_partielle"]
        n_twice = round(_WAVE_DUPLICATE_RATE * len(self.answers))
        for first in rng.sample(twice, min(n_twice, len(twice))):
            assert first.row is not None
            later = self._found(first.row, first.cas)
            day = (first.when - self.start).days
            later.when = self._moment(rng.randrange(day + 1, min(day + 30, days)))
            first.cas = "doublon"
            self.answers.append(later)
        self.answers.sort(key=lambda a: (a.when, a.siret_field, a.name))
        for answer in self.answers:
            self.families[answer.famille] += 1
            self._fill(answer)

    def _moment(self, day: int) -> datetime:
        """A submission time on a day of the wave, in the hours people fill in forms."""
        seconds = self.rng.randrange(7 * 3600, 23 * 3600)
        return self.start + timedelta(days=day, seconds=seconds)

    def _found(self, row: dict[str, str], cas: str) -> _Answer:
        rng = self.rng
        siret = row["siret"]
        field_value = {
            "siret_ok": siret,
            "siret_espaces": _siret_spaced(siret, rng),
            "cle_fausse": _wrong_key(siret, rng),
            "siren_seul": siret[:9] if rng.random() < 0.7 else _siren_spaced(siret),
            "nom_variante": "",
        }[cas]
        kinds = _WAVE_NAME_KINDS_NO_SIRET if cas == "nom_variante" else _WAVE_NAME_KINDS
        name = self._name(row, kinds)
        return _Answer(row, cas, field_value, name, row["famille"])

    def _fill(self, a: _Answer) -> None:
        """Every cell of the answer except the identification, drawn from family and size."""
        rng, row = self.rng, a.row
        ident = self.mapping["identification"]
        cells = a.cells
        cells[ident["horodatage"]] = a.when.strftime("%Y-%m-%d %H:%M:%S")
        person, email, phone = _person(rng)
        personal = ident["donnees_personnelles"]
        cells[personal[0]] = person
        cells[personal[1]] = email if rng.random() < 0.95 else ""
        cells[personal[2]] = phone if rng.random() < 0.8 else ""
        cells[ident["nom"]] = a.name
        cells[ident["siret"]] = a.siret_field
        if row is not None and a.cas != "diffusion_partielle":
            cells[ident["adresse"]] = _address(row, rng) if rng.random() < 0.9 else ""
            cells[ident["code_postal"]] = (
                row["codePostalEtablissement"] if rng.random() < 0.95 else ""
            )
            cells[ident["commune"]] = _commune(row, self.stock.communes, rng)
        elif row is not None:
            cells[ident["adresse"]] = ""
            cells[ident["code_postal"]] = row["codePostalEtablissement"]
            cells[ident["commune"]] = self.stock.communes.get(row["codeCommuneEtablissement"], "")
        else:
            code = rng.choice(sorted(self.stock.etabs["codeCommuneEtablissement"].unique()))
            cells[ident["adresse"]] = f"{rng.randrange(1, 120)} rue imaginaire"
            cells[ident["code_postal"]] = ""
            cells[ident["commune"]] = self.stock.communes.get(code, "")
        band = row["trancheEffectifsEtablissement"] if row is not None else ""
        size = _size_class(band)
        rates = _NEED_RATES[(_need_group(a.famille), size)]
        cited: list[str] = []
        for q in self.mapping["questions"]:
            col = q["colonne"]
            if q["type"] == "choix_unique" and "besoin" in q:
                p = rates[_NEEDS.index(q["besoin"])]
                u = rng.random()
                value = "Oui" if u < p * 0.96 else ("Non" if u < 0.93 else "Ne sait pas")
                if rng.random() < 0.03:
                    value = ""
                if value == "Oui":
                    cited.append(q["besoin"])
                cells[col] = value
            elif q["type"] == "choix_unique":
                statut = _STATUTS.get(a.famille, "Autre")
                if rng.random() < 0.04:
                    statut = rng.choice(sorted(set(_STATUTS.values())))
                cells[col] = statut if rng.random() < 0.97 else ""
            elif q["type"] == "nombre":
                lo, hi = _BAND_RANGES.get(band, (0, 0))
                if row is None:
                    lo, hi = 0, 5
                cells[col] = str(rng.randint(lo, hi)) if rng.random() < 0.93 else ""
            elif q["type"] == "choix_multiple":
                by_need = {need: opt for opt, need in q["options"].items()}
                chosen = [by_need[n] for n in cited if n in by_need]
                rng.shuffle(chosen)
                chosen = chosen[: rng.randint(1, 3)]
                if rng.random() < 0.06:
                    chosen.append(by_need["autre"])
                options = list(q["options"])
                chosen.sort(key=options.index)
                cells[col] = q.get("separateur", ";").join(chosen)
            else:
                u = rng.random()
                cells[col] = rng.choice(_COMMENTS) if u < 0.3 else ""

    def _inject_value_defects(self, header: list[str]) -> list[tuple[int, str, str]]:
        """Cells a reader must reject or mask; chosen among answers, after they are drawn."""
        rng = self.rng
        by_type = {q["type"]: q["colonne"] for q in self.mapping["questions"]}
        sep = next(
            q.get("separateur", ";")
            for q in self.mapping["questions"]
            if q["type"] == "choix_multiple"
        )
        n = len(self.answers)
        picks = rng.sample(range(n), 20)
        defects: list[tuple[int, str, str]] = []
        for i in picks[:5]:
            self.answers[i].cells[by_type["nombre"]] = rng.choice(_UNPARSEABLE_NUMBERS)
            defects.append((i, by_type["nombre"], "nombre_illisible"))
        for i in picks[5:10]:
            col = by_type["choix_multiple"]
            cell = self.answers[i].cells[col]
            extra = rng.choice(_UNKNOWN_OPTIONS)
            self.answers[i].cells[col] = f"{cell}{sep}{extra}" if cell else extra
            defects.append((i, col, "option_inconnue"))
        text_col = by_type["texte"]
        for j, i in enumerate(picks[10:13]):
            self.answers[i].cells[text_col] = _MULTILINE_COMMENTS[j]
            defects.append((i, text_col, "texte_multiligne"))
        contacts = (
            "Vous pouvez écrire à la directrice : {email}",
            "Rappelez-moi au {phone}, le matin de préférence.",
            "Contact : {email} ou {phone}",
            "Notre trésorier ({email}) a les chiffres.",
            "Joignable au {phone} (ligne directe)",
        )
        for template, i in zip(contacts, picks[13:18], strict=True):
            _, email, phone = _person(rng)
            self.answers[i].cells[text_col] = template.format(email=email, phone=phone)
            defects.append((i, text_col, "texte_avec_contact"))
        return defects

    def render(self) -> tuple[bytes, int, int]:
        ident = self.mapping["identification"]
        header = [_ID_COLUMN, ident["horodatage"], *ident["donnees_personnelles"]]
        header += [ident[k] for k in ("nom", "siret", "adresse", "code_postal", "commune")]
        header += [q["colonne"] for q in self.mapping["questions"]]
        defects = self._inject_value_defects(header)
        records = []
        for number, answer in enumerate(self.answers, start=1):
            cells = dict(answer.cells)
            cells[_ID_COLUMN] = str(number)
            records.append([cells.get(col, "") for col in header])
        text, starts, physical = _csv_records(header, records, delimiter=";", quote_all=True)
        for answer, line in zip(self.answers, starts, strict=True):
            siret = answer.row["siret"] if answer.row is not None else ""
            self.truth.append((line, siret, answer.cas))
        self.value_defects = sorted(
            ({"ligne": starts[i], "colonne": col, "cas": cas} for i, col, cas in defects),
            key=lambda d: (d["ligne"], d["cas"]),
        )
        return ("\ufeff" + text).encode("utf-8"), len(records), physical
