"""How the files' authors write: names, addresses, identifiers and contacts, and CSV records.

A linker is only tested if the names and numbers it receives are written the way people and
their tools write them: accents put back, abbreviations, typos, sigles, SIRETs with spaces or a
wrong key, a CSV record spread over several lines. The variants are drawn from each source's own
random stream; nothing here knows which source calls it.
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata

# SIRENE writes upper case without accents; people write accents back.
_ACCENTS = {
    "SYNTHETIQUE": "SYNTHÉTIQUE", "COMITE": "COMITÉ", "FETES": "FÊTES", "A": "À",
    "COOPERATIVE": "COOPÉRATIVE", "COOPERATIVES": "COOPÉRATIVES", "SOCIETE": "SOCIÉTÉ",
    "SALARIES": "SALARIÉS", "PREVOYANCE": "PRÉVOYANCE", "ETABLISSEMENT": "ÉTABLISSEMENT",
    "ECONOMIQUE": "ÉCONOMIQUE", "REGIONALE": "RÉGIONALE", "CREDIT": "CRÉDIT",
    "BATIMENT": "BÂTIMENT", "RENOVATION": "RÉNOVATION", "UNIVERSITE": "UNIVERSITÉ",
    "GENERAL": "GÉNÉRAL", "REPUBLIQUE": "RÉPUBLIQUE", "MARECHAL": "MARÉCHAL",
    "LIBERATION": "LIBÉRATION", "ECOLES": "ÉCOLES", "EGLISE": "ÉGLISE", "PRES": "PRÉS",
    "CHATEAU": "CHÂTEAU", "PERI": "PÉRI", "PROPRIETAIRES": "PROPRIÉTAIRES",
    "COPROPRIETAIRES": "COPROPRIÉTAIRES", "COOPERATION": "COOPÉRATION",
}  # fmt: skip
_ARTICLES = {
    "ASSOCIATION": "L'", "AMICALE": "L'", "UNION": "L'", "ORGANISME": "L'", "CLUB": "LE ",
    "COMITE": "LE ", "GROUPEMENT": "LE ", "SYNDICAT": "LE ", "FONDATION": "LA ",
    "MUTUELLE": "LA ", "COOPERATIVE": "LA ", "SCOP": "LA ", "SCIC": "LA ", "CAISSE": "LA ",
    "SOCIETE": "LA ", "BANQUE": "LA ",
}  # fmt: skip
_LOWER_WORDS = {"DE", "DES", "DU", "LA", "LE", "LES", "ET", "À", "A", "POUR", "AUX", "AU", "SUR"}
_ABBREVIATIONS = {
    "ASSOCIATION": ("ASSOC", "ASSO", "ASS."), "COOPERATIVE": ("COOP",), "SOCIETE": ("STE",),
    "MUTUELLE": ("MUT.",), "FONDATION": ("FOND.",), "COMITE": ("CTE",),
    "GROUPEMENT": ("GPT",), "ORGANISME": ("ORG.",),
}  # fmt: skip
_VOIE_TYPES = {
    "RUE": "rue", "AV": "avenue", "BD": "boulevard", "PL": "place", "CHE": "chemin",
    "ALL": "allée", "IMP": "impasse", "RTE": "route", "QUAI": "quai", "SQ": "square",
}  # fmt: skip
_PRENOMS = (
    "Léa", "Chloé", "Inès", "Camille", "Manon", "Sophie", "Nathalie", "Hélène", "Aminata",
    "Fatima", "Claire", "Sandrine", "Émilie", "Océane", "Jérôme", "Frédéric", "François",
    "Thomas", "Karim", "Mohamed", "Julien", "Nicolas", "Hugo", "Yannick", "Sébastien",
    "Benoît", "Mamadou", "Luc", "Éric", "Stéphane",
)  # fmt: skip
_NOMS = (
    "Martin", "Bernard", "Dubois", "Petit", "Durand", "Leroy", "Moreau", "Lefèvre", "Garcia",
    "Roux", "Fournier", "Girard", "Mercier", "Bonnet", "Lambert", "Faure", "Rousseau",
    "Diallo", "Nguyen", "Benali", "Traoré", "Haddad", "Da Silva", "Lemaître", "Chevalier",
    "Perrin", "Masson", "Gauthier", "Le Goff", "Ndiaye",
)  # fmt: skip


def _sirene_name(row: dict[str, str]) -> str:
    name = row["denominationUniteLegale"]
    if not name:
        name = f"{row['prenom1UniteLegale']} {row['nomUniteLegale']}".strip()
    return name


def _accented(name: str) -> str:
    return " ".join(_ACCENTS.get(w, w) for w in name.split(" "))


def _title(name: str) -> str:
    """Title case as a person types it: small words lower, elisions kept (d'Aide, l'Enfance)."""
    words = []
    for i, word in enumerate(_accented(name).split(" ")):
        if i > 0 and word in _LOWER_WORDS:
            words.append(word.lower())
            continue
        parts = word.split("'")
        out = []
        for j, part in enumerate(parts):
            if j < len(parts) - 1 and len(part) == 1 and (i > 0 or j > 0):
                out.append(part.lower())
            else:
                out.append("-".join(p[:1] + p[1:].lower() for p in part.split("-")))
        words.append("'".join(out))
    return " ".join(words)


def _typo(name: str, rng: random.Random) -> str:
    """One slip of the keyboard in a word of letters (never in the number)."""
    words = name.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
    if not candidates:
        return name
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:p] + w[p + 1 :]
    elif kind == 1:
        w = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
    else:
        w = w[:p] + w[p] + w[p:]
    words[i] = w
    return " ".join(words)


def _abbreviated(name: str, rng: random.Random) -> str | None:
    words = name.split(" ")
    for i, w in enumerate(words):
        if w in _ABBREVIATIONS:
            words[i] = rng.choice(_ABBREVIATIONS[w])
            return " ".join(words)
    return None


def _sigle(name: str, rng: random.Random) -> str:
    words = [w for w in re.split(r"[ ',\"]+", name) if w and w not in _LOWER_WORDS]
    letters = "".join(w[0] for w in words if w.isalpha())
    number = re.search(r"\d+$", name)
    sigle = letters + (f" {number.group()}" if number else "")
    return sigle if rng.random() < 0.5 else f"{sigle} - {_title(name)}"


def _name_variant(
    row: dict[str, str], rng: random.Random, kinds: tuple[tuple[str, float], ...]
) -> tuple[str, str]:
    """A name for the structure as a respondent or a network writes it, and the variant used."""
    name = _sirene_name(row)
    kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
    enseigne = row["enseigne1Etablissement"]
    if kind == "enseigne" and enseigne and enseigne != "[ND]":
        return enseigne, kind
    if kind == "abreviation":
        short = _abbreviated(name, rng)
        if short is not None:
            return short, kind
    if kind == "sigle" and row["denominationUniteLegale"]:
        return _sigle(name, rng), kind
    if kind == "faute":
        return _typo(name, rng), kind
    if kind == "sans_zeros":
        stripped = re.sub(r"\b0+(\d)", r"\1", name)
        if stripped != name:
            return _title(stripped), kind
    if kind == "minuscules":
        return _accented(name).lower(), kind
    if kind == "article":
        first = name.split(" ")[0]
        article = _ARTICLES.get(first)
        if article is not None:
            return f"{article}{name}", kind
    if kind == "accents":
        return _accented(name), kind
    if kind in ("titre", "enseigne", "abreviation", "sans_zeros", "article", "sigle"):
        return _title(name), "titre"
    return name, "exact"


def _street(row: dict[str, str], upper: bool = False) -> tuple[str, str]:
    """(number, street) from SIRENE's address columns, in the spelling of the file's author."""
    numero = row["numeroVoieEtablissement"]
    kind = row["typeVoieEtablissement"]
    libelle = _accented(row["libelleVoieEtablissement"])
    if upper:
        voie = f"{_VOIE_TYPES.get(kind, kind.lower()).upper()} {libelle}".strip()
        return numero, voie
    words = []
    for w in libelle.split(" "):
        if w in _LOWER_WORDS:
            words.append(w.lower())
        else:
            words.append("'".join(p[:1] + p[1:].lower() for p in w.split("'")))
    libelle = " ".join(words).replace("D'", "d'").replace("L'", "l'")
    return numero, f"{_VOIE_TYPES.get(kind, kind.lower())} {libelle}".strip()


def _address(row: dict[str, str], rng: random.Random) -> str:
    numero, voie = _street(row)
    if not voie:
        return ""
    u = rng.random()
    if u < 0.65:
        return f"{numero} {voie}".strip()
    if u < 0.80:
        return f"{numero}, {voie}".strip(", ")
    if u < 0.92:
        return f"{numero} {voie}".strip().upper()
    return f"{numero} {voie}".strip().lower()


def _commune(row: dict[str, str], communes: dict[str, str], rng: random.Random) -> str:
    """The commune as written: its COG label (`communes`), SIRENE's, or without hyphens."""
    label = communes.get(row["codeCommuneEtablissement"], "")
    u = rng.random()
    if u < 0.70 or not label:
        return label or row["libelleCommuneEtablissement"]
    if u < 0.85:
        return row["libelleCommuneEtablissement"]
    return label.replace("-", " ")


def _siret_spaced(siret: str, rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    return f"{siret[:9]} {siret[9:]}"


def _siren_spaced(siret: str) -> str:
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]}"


def _wrong_key(siret: str, rng: random.Random) -> str:
    """One digit of the NIC mistyped: any single-digit change breaks the Luhn key."""
    p = rng.randrange(9, 14)
    digit = (int(siret[p]) + rng.randrange(1, 10)) % 10
    return siret[:p] + str(digit) + siret[p + 1 :]


def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def _phone(rng: random.Random, mobile: bool = True) -> str:
    head = rng.choice(("06", "07")) if mobile else rng.choice(("01", "09"))
    return " ".join([head] + [f"{rng.randrange(100):02d}" for _ in range(4)])


def _person(rng: random.Random) -> tuple[str, str, str]:
    prenom, nom = rng.choice(_PRENOMS), rng.choice(_NOMS)
    email = f"{_fold(prenom).replace('-', '')}.{_fold(nom)}@exemple.org"
    return f"{prenom} {nom}", email, _phone(rng)


def _csv_records(
    header: list[str], records: list[list[str]], *, delimiter: str, quote_all: bool
) -> tuple[str, list[int], int]:
    """CSV text with `\\r\\n` record ends, the first physical line of each record, line total.

    Counting the line feeds of each serialised record is what makes a multi-line answer shift
    the following records' lines, exactly as a reader counting physical lines sees it.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf,
        delimiter=delimiter,
        lineterminator="\r\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(header)
    line = 1 + buf.getvalue().count("\n")
    starts = []
    for record in records:
        one = io.StringIO(newline="")
        csv.writer(
            one,
            delimiter=delimiter,
            lineterminator="\r\n",
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        ).writerow(record)
        text = one.getvalue()
        buf.write(text)
        starts.append(line)
        line += text.count("\n")
    return buf.getvalue(), starts, line - 1
