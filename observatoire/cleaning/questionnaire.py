"""Questionnaire answers cleaned: `raw.questionnaire_*` typed into `clean.*`, without personal data.

Numbers, dates and multiple choices are parsed as each wave's mapping says; identifiers are checked;
the respondent's name, e-mail and phone never leave `raw`. Reading the export is in
`observatoire.sources.questionnaire`.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from observatoire.cleaning.adresses import CommuneResolver
from observatoire.core.contacts import mask_contacts
from observatoire.core.identifiers import normalise, normalise_declared
from observatoire.core.warehouse import table_exists
from observatoire.sources.questionnaire import (
    _LOCAL_TZ,
    CLEAN_TABLES,
    MAPPING_FILE,
    Question,
    QuestionnaireError,
    WaveMapping,
    _replace,
    load_mapping,
    wave_dirs,
    wave_id,
)

_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_SPACES = re.compile(r"[\s\u00a0\u202f]")


def parse_number(text: str) -> float | None:
    """'12', '12,5', '12.5', '1 200' (spaces, also non-breaking, as thousands separators)."""
    compact = _SPACES.sub("", text)
    if not _NUMBER.fullmatch(compact):
        return None
    return float(compact.replace(",", "."))


_TZ_SUFFIX = re.compile(r"\s*(?:UTC|GMT)\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?\s*$", re.IGNORECASE)
_WEEKDAY_PREFIX = re.compile(r"^[^\W\d]{2,9}\.?,?\s+(?=\d)")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y - %H:%M:%S",
    "%d/%m/%Y - %H:%M",
    "%d/%m/%Y",
    "%Y/%m/%d %I:%M:%S %p",
    "%Y/%m/%d %I:%M %p",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_timestamp(text: str, *, excel_serial: bool = False) -> datetime | None:
    """A form tool's time stamp as wall-clock time in France (naive), None if unreadable.

    LimeSurvey `2026-03-14 10:22:31`, Google Forms `14/03/2026 10:22:31` or
    `2026/03/14 10:22:31 PM UTC+1`, KoboToolbox `2026-03-14T10:22:31.000+01:00`, Framaforms
    `14/03/2026 - 10:22` (with or without a day name), XLSX date cells; with `excel_serial`, a
    spreadsheet's day number (a date cell formatted as a number).
    """
    value = text.strip()
    if not value:
        return None
    if excel_serial and re.fullmatch(r"\d{5}(?:\.\d+)?", value):
        days = float(value)
        if 20000 <= days <= 80000:
            return (_EXCEL_EPOCH + timedelta(days=days)).replace(microsecond=0)
    tz: timezone | None = None
    match = _TZ_SUFFIX.search(value)
    if match and match.start() > 0:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        tz = timezone(-offset if sign == "-" else offset)
        value = value[: match.start()]
    value = _WEEKDAY_PREFIX.sub("", value)
    parsed: datetime | None = None
    if "T" in value or re.search(r"[+-]\d{2}:?\d{2}$|Z$", value):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed is None:
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if tz is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(_LOCAL_TZ).replace(tzinfo=None)
    return parsed


def _key(text: str) -> str:
    """How answers are compared with options: case, accents' composition and spaces ignored."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def split_choices(cell: str, question: Question) -> list[str]:
    """Split a multi-choice cell; an option whose label contains the separator stays whole.

    Google Forms joins choices with ", " while option labels often contain commas.
    """
    parts = cell.split(question.separateur)
    known = {_key(o) for o in question.options or {}}
    values: list[str] = []
    i = 0
    while i < len(parts):
        taken = 1
        if known:
            for j in range(len(parts), i + 1, -1):
                if _key(question.separateur.join(parts[i:j])) in known:
                    taken = j - i
                    break
        value = question.separateur.join(parts[i : i + taken]).strip()
        if value and value not in values:
            values.append(value)
        i += taken
    return values


def _quote(text: str, limit: int = 60) -> str:
    text = mask_contacts(" ".join(text.split()))
    return f"« {text[:limit]}{'…' if len(text) > limit else ''} »"


# --------------------------------------------------------------------------------------------
# Clean layer


@dataclass
class WaveClean:
    vague: str
    nb_reponses: int
    nb_valeurs: int
    nb_rejets: int


@dataclass
class _Rows:
    """Column-wise buffers for one clean table."""

    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, ddl: str) -> _Rows:
        return cls({c.strip().split(" ", 1)[0]: [] for c in ddl.split(",")})

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


_SEPARATORS_IN_NUMBERS = re.compile(r"[\s.\-_/]")


def _digit_count(text: str | None) -> int:
    """Number of digits once separators are removed; -1 when something else is left."""
    digits = _SEPARATORS_IN_NUMBERS.sub("", text or "")
    return len(digits) if digits.isdigit() else -1


def _identifiers(siret_text: str | None, siren_text: str | None) -> tuple[str | None, str | None]:
    """Normalised SIRET and SIREN as declared; a SIREN typed in the SIRET box is a SIREN.

    Padding a 9-digit SIREN to 14 digits would invent a SIRET that does not exist; the reverse
    mistake (a SIRET in the SIREN box) is as common.
    """
    siret = normalise_declared(siret_text, 14)
    siren = normalise_declared(siren_text, 9)
    if _digit_count(siret_text) in (8, 9):
        siret, siren = None, siren or normalise_declared(siret_text, 9)
    if siret is None and _digit_count(siren_text) in (13, 14):
        siret = normalise_declared(siren_text, 14)
    return siret, siren


def clean_wave(con: duckdb.DuckDBPyConnection, vague: str, mapping: WaveMapping) -> WaveClean:
    """Typed answers of one wave, built from raw only, replacing the wave's previous rows.

    Only the columns the mapping names as identification or questions are even read from raw,
    so the respondent's personal data cannot leak into clean by a later change of this code.
    A malformed value goes to `clean.questionnaire_rejets` and the rest of the answer is kept:
    one mistyped number must not lose a structure's needs.
    """
    lecture = None
    if table_exists(con, "raw", "questionnaire_lectures"):
        lecture = con.execute(
            "select fichier_source from raw.questionnaire_lectures where vague = ?", [vague]
        ).fetchone()
    if lecture is None:
        raise QuestionnaireError(
            f"vague « {vague} » : pas encore lue dans raw (lancez l'ingestion)"
        )
    fichier_source = str(lecture[0])
    excel = fichier_source.lower().endswith((".xlsx", ".xlsm"))
    wanted = mapping.clean_columns()
    answers: dict[int, dict[str, str]] = {}
    for line, column, value in con.execute(
        "select ligne, colonne, valeur from raw.questionnaire_cellules "
        "where vague = $vague and list_contains($cols, colonne) order by ligne",
        {"vague": vague, "cols": wanted},
    ).fetchall():
        answers.setdefault(int(line), {})[column] = value
    # The respondent's own personal data, read only to mask it where they typed it again (a
    # name in a comment, or as the structure's name): it is never stored outside raw.
    personal: dict[int, list[str]] = {}
    if mapping.donnees_personnelles:
        for line, value in con.execute(
            "select ligne, valeur from raw.questionnaire_cellules "
            "where vague = $vague and list_contains($cols, colonne)",
            {"vague": vague, "cols": list(mapping.donnees_personnelles)},
        ).fetchall():
            if value and value.strip():
                personal.setdefault(int(line), []).append(value.strip())
    # answers with only personal data filled in still count as answers
    for (line,) in con.execute(
        "select distinct ligne from raw.questionnaire_cellules where vague = ?", [vague]
    ).fetchall():
        answers.setdefault(int(line), {})

    ident = mapping.identification
    resolver = CommuneResolver.from_con(con)
    labels = dict(con.execute("select code_commune, libelle_commune from ref.communes").fetchall())
    reponses = _Rows.of(CLEAN_TABLES["questionnaire_reponses"])
    valeurs = _Rows.of(CLEAN_TABLES["questionnaire_valeurs"])
    rejets = _Rows.of(CLEAN_TABLES["questionnaire_rejets"])

    def reject(line: int, column: str | None, motif: str) -> None:
        rejets.add(vague=vague, ligne=line, colonne=column, motif=motif)

    for line in sorted(answers):
        cells = {k: v.strip() for k, v in answers[line].items() if v and v.strip()}

        def field_(name: str, cells: dict[str, str] = cells) -> str | None:
            return cells.get(ident[name]) if name in ident else None

        reponse_id = f"{vague}:{line}"
        horodatage = None
        if "horodatage" in ident:
            stamp = field_("horodatage")
            if stamp is None:
                reject(line, ident["horodatage"], "horodatage manquant")
            else:
                horodatage = parse_timestamp(stamp, excel_serial=excel)
                if horodatage is None:
                    reject(line, ident["horodatage"], f"horodatage illisible : {_quote(stamp)}")
        siret, siren = _identifiers(field_("siret"), field_("siren"))
        for name in ("siret", "siren"):
            text = field_(name)
            # either box may hold either identifier (_identifiers); anything else, a phone
            # number typed in the SIRET box for one, is no identifier and goes no further
            if text is not None and _digit_count(text) not in (8, 9, 13, 14):
                reject(line, ident[name], f"{name.upper()} illisible : {_quote(text)}")
        code_postal_text = field_("code_postal")
        code_postal = normalise(code_postal_text, 5) if code_postal_text else None
        if code_postal_text and code_postal is None:
            reject(
                line, ident["code_postal"], f"code postal illisible : {_quote(code_postal_text)}"
            )
        commune = field_("commune")
        code_commune = None
        if commune or code_postal:
            code_commune = resolver.resolve(commune, code_postal)
            if code_commune is None and commune:
                reject(
                    line,
                    ident["commune"],
                    f"commune {_quote(commune)} non reconnue"
                    + (f" (code postal {code_postal})" if code_postal else ""),
                )
        nom, adresse = field_("nom"), field_("adresse")
        reponses.add(
            vague=vague,
            reponse_id=reponse_id,
            ligne=line,
            horodatage=horodatage,
            siret_declare=siret,
            siren_declare=siren,
            nom=mask_person(mask_contacts(nom), personal.get(line, ())) if nom else None,
            adresse=(
                mask_person(mask_contacts(adresse), personal.get(line, ())) if adresse else None
            ),
            code_postal=code_postal,
            code_commune=code_commune,
            libelle_commune=labels.get(code_commune) if code_commune else None,
        )

        for q in mapping.questions:
            cell = cells.get(q.colonne)
            if cell is None:
                continue
            for value, number, besoin in _question_values(q, cell, line, reject):
                if q.type == "texte":
                    value = mask_person(value, personal.get(line, ()), words=True)
                valeurs.add(
                    vague=vague,
                    reponse_id=reponse_id,
                    question=q.code,
                    type=q.type,
                    besoin=besoin,
                    valeur=value,
                    valeur_nombre=number,
                )

    questions = _Rows.of(CLEAN_TABLES["questionnaire_questions"])
    for q in mapping.questions:
        questions.add(vague=vague, question=q.code, colonne=q.colonne, type=q.type, besoin=q.besoin)
    needs = _Rows.of(CLEAN_TABLES["questionnaire_besoins"])
    for need in sorted(
        {q.besoin for q in mapping.questions if q.besoin}
        | {cat for q in mapping.questions for cat in (q.options or {}).values() if cat}
    ):
        needs.add(vague=vague, besoin=need)
    vagues = _Rows.of(CLEAN_TABLES["questionnaire_vagues"])
    vagues.add(
        vague=vague,
        titre=mapping.titre,
        date_debut=mapping.date_debut,
        date_fin=mapping.date_fin,
        outil=mapping.outil,
        fichier_source=fichier_source,
        nb_reponses=len(reponses),
    )
    _replace(
        con,
        "clean",
        CLEAN_TABLES,
        vague,
        {
            "questionnaire_reponses": reponses.columns,
            "questionnaire_valeurs": valeurs.columns,
            "questionnaire_questions": questions.columns,
            "questionnaire_besoins": needs.columns,
            "questionnaire_vagues": vagues.columns,
            "questionnaire_rejets": rejets.columns,
        },
    )
    return WaveClean(vague, len(reponses), len(valeurs), len(rejets))


PERSON_MASK = "[donnée personnelle masquée]"


def mask_person(text: str, values: Sequence[str], *, words: bool = False) -> str:
    """Mask what the respondent gave as personal data wherever they typed it again.

    The whole values always ("Camille Durand" typed as the structure's name); with `words`,
    also each word of three letters or more of those values (a signature "Camille D." in a
    comment). Words are not masked in a structure's name, where "Marie" may belong to
    "Maison Marie Curie" and the name is needed for the linkage.
    """
    pieces = {v for v in values if len(v) >= 3}
    if words:
        pieces |= {w for v in values for w in re.findall(r"[^\W\d_]{3,}", v)}
    for piece in sorted(pieces, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", PERSON_MASK, text, flags=re.I)
    return text


def _question_values(
    q: Question, cell: str, line: int, reject: Callable[[int, str | None, str], None]
) -> list[tuple[str, float | None, str | None]]:
    """(value, number, need cited) for one answered question; bad values are rejected."""
    if q.type == "nombre":
        number = parse_number(cell)
        if number is None:
            reject(line, q.colonne, f"nombre illisible : {_quote(cell)}")
            return []
        return [(cell, number, q.besoin if q.besoin and number > 0 else None)]
    if q.type == "texte":
        text = mask_contacts(cell)
        cited = (
            q.besoin if q.cite_si is None or _key(cell) in {_key(c) for c in q.cite_si} else None
        )
        return [(text, None, cited)]
    values = split_choices(cell, q) if q.type == "choix_multiple" else [cell]
    options = {_key(o): (o, cat) for o, cat in (q.options or {}).items()}
    cite = {_key(c) for c in q.cite_si or ()}
    out: list[tuple[str, float | None, str | None]] = []
    for value in values:
        key = _key(value)
        besoin = None
        if q.options is not None:
            if key not in options:
                reject(line, q.colonne, f"réponse {_quote(value)} absente des options prévues")
                continue
            value, besoin = options[key]
        if besoin is None and key in cite:
            besoin = q.besoin
        out.append((mask_contacts(value), None, besoin))
    return out


def clean_all(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> list[WaveClean]:
    """Every wave of the inbox, with its current mapping; other waves' clean rows are kept."""
    results = []
    for wave_dir in wave_dirs(inbox_dir):
        vague = wave_id(wave_dir)
        results.append(clean_wave(con, vague, load_mapping(wave_dir / MAPPING_FILE)))
    return results
