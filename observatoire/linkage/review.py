"""The review round trip: the month's queue out to the data team, their decisions back in.

The queue is a CSV for French Excel; reviewers fill `decision`, `siret_retenu` and
`commentaire`, and the file comes back, whatever a spreadsheet did to it, into
`ref.decisions_rapprochement`, keyed by the record's fingerprint: the next linking applies
a decision before any rule. Names of establishments that are not diffusible are never in the
queue (`nom_candidat` is NULL for them), and decisions store no name at all.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from observatoire.core import csvfiles, warehouse
from observatoire.core.contacts import mask_contacts
from observatoire.core.identifiers import normalise, siret_valid
from observatoire.linkage.tables import DDL_DECISIONS, check_mois

DECISIONS = ("accepte", "rejete")

REVIEW_COLUMNS = (
    "source",
    "cle_source",
    "enregistrement_id",
    "empreinte",
    "nom",
    "code_commune",
    "siret_candidat",
    "nom_candidat",
    "score",
    "motif",
    "decision",
    "siret_retenu",
    "commentaire",
)

_EMPREINTE = re.compile(r"^[0-9a-f]{40}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class DecisionFileError(ValueError):
    """A decision file the data team must fix; the message names the file, line and column."""

    def __init__(self, path: Path, line: int, column: str, message: str, more: int = 0) -> None:
        self.path = path
        self.line = line
        self.column = column
        text = f"{path} : ligne {line}, colonne « {column} » : {message}"
        if more:
            text += f" (et {more} autre(s) erreur(s) dans le fichier)"
        super().__init__(text)


def _excel_safe(value: Any) -> str:
    """Text a spreadsheet will not run: answers are typed by the public (CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_review_queue(con: duckdb.DuckDBPyConnection, mois: str, path: Path) -> int:
    """Write the month's review queue for the data team, ready for Excel (French dialect).

    `decision`, `siret_retenu` and `commentaire` are left empty for the reviewer; the file is
    read back by import_decisions.
    """
    check_mois(mois)
    rows: list[tuple[Any, ...]] = []
    if warehouse.table_exists(con, "clean", "rapprochements_a_revoir"):
        rows = con.execute(
            """
            select source, cle_source, enregistrement_id, empreinte, nom, code_commune,
                siret_candidat, nom_candidat, score, motif
            from clean.rapprochements_a_revoir
            where mois = ?
            order by source, cle_source,
                try_cast(regexp_extract(enregistrement_id, '(\\d+)$', 1) as bigint) nulls last,
                enregistrement_id, empreinte
            """,
            [mois],
        ).fetchall()
    path.parent.mkdir(parents=True, exist_ok=True)
    # the review queue is opened in French Excel by the staff who review it
    dialect = csvfiles.EXCEL
    with path.open("w", encoding=dialect.encoding, newline="") as f:
        writer = csv.writer(f, delimiter=dialect.delimiter, lineterminator=dialect.line_end)
        writer.writerow(REVIEW_COLUMNS)
        for source, cle, rec_id, empreinte, nom, commune, siret, nom_c, score, motif in rows:
            writer.writerow(
                [
                    _excel_safe(source),
                    _excel_safe(cle),
                    _excel_safe(rec_id),
                    empreinte,
                    _excel_safe(nom),
                    _excel_safe(commune),
                    siret or "",
                    _excel_safe(nom_c),
                    "" if score is None else f"{score:.3f}".replace(".", ","),
                    _excel_safe(motif),
                    "",
                    "",
                    "",
                ]
            )
    return len(rows)


def _fold(value: str | None) -> str:
    if not value:
        return ""
    text = unicodedata.normalize("NFKD", value.strip())
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _read_decision_file(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with their physical line, whatever Excel did to the file.

    Excel saves "CSV UTF-8" with a BOM but plain "CSV" in Windows-1252, and with `,` or `;`
    depending on the machine's locale: all are accepted.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        raise DecisionFileError(path, 1, "empreinte", "fichier vide (en-tête attendu)")
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num
    for values in reader:
        start = line + 1
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        rows.append((start, {h: v for h, v in zip(header, values, strict=False)}))
    return header, rows


def _mask_comment(value: str | None) -> str | None:
    """Reviewers' comments may quote an e-mail or a phone number: keep neither."""
    if not value or not value.strip():
        return None
    return mask_contacts(value.strip())


def import_decisions(
    con: duckdb.DuckDBPyConnection, path: Path, *, decide_le: datetime | None = None
) -> int:
    """Read reviewers' decisions from an exported queue file and keep them for good.

    Every filled row is checked before anything is written: a file with one bad row changes
    nothing, and the error says where to look. Rows without a decision are skipped. A
    fingerprint unknown today is kept (the record may come back), and re-importing a file
    replaces the earlier decision on the same fingerprint.
    """
    path = Path(path)
    header, rows = _read_decision_file(path)
    for required in ("empreinte", "decision"):
        if required not in header:
            raise DecisionFileError(path, 1, required, "colonne absente de l'en-tête")
    known: dict[str, tuple[str | None, str | None, str | None]] = {}
    if warehouse.table_exists(con, "clean", "rapprochements_a_revoir"):
        for emp, source, cle, cand in con.execute(
            "select empreinte, source, cle_source, siret_candidat "
            "from clean.rapprochements_a_revoir order by mois"
        ).fetchall():
            known[emp] = (source, cle, cand)  # the latest month wins
    errors: list[tuple[int, str, str]] = []
    decisions: dict[str, tuple[int, tuple[Any, ...]]] = {}
    when = decide_le or datetime.now().replace(microsecond=0)
    for line, row in rows:
        decision = _fold(row.get("decision"))
        if not decision:
            continue
        if decision not in DECISIONS:
            errors.append((line, "decision", f"« {row['decision']} » : accepte ou rejete attendu"))
            continue
        empreinte = (row.get("empreinte") or "").strip().lower()
        if not _EMPREINTE.fullmatch(empreinte):
            errors.append((line, "empreinte", "empreinte absente ou altérée (40 caractères hexa)"))
            continue
        source, cle, queued = known.get(empreinte, (None, None, None))
        source = (row.get("source") or "").strip() or source
        cle = (row.get("cle_source") or "").strip() or cle
        siret = None
        if decision == "accepte":
            retained = (row.get("siret_retenu") or "").strip()
            if retained:
                siret = normalise(retained, 14)
                if not siret_valid(siret):
                    hint = (
                        " (le tableur l'a converti en nombre : formater la colonne en texte)"
                        if re.search(r"[eE][+]", retained)
                        else ""
                    )
                    errors.append(
                        (line, "siret_retenu", f"« {retained} » n'est pas un SIRET valide{hint}")
                    )
                    continue
            else:
                siret = normalise((row.get("siret_candidat") or "").strip(), 14)
                if not siret_valid(siret):
                    # a spreadsheet may have mangled the candidate: the queue still knows it
                    siret = queued
                if not siret_valid(siret):
                    errors.append(
                        (line, "siret_candidat", "aucun SIRET candidat : remplir siret_retenu")
                    )
                    continue
        value = (source, cle, siret, decision, when, _mask_comment(row.get("commentaire")))
        previous = decisions.get(empreinte)
        if previous is not None and previous[1][2:4] != value[2:4]:
            errors.append(
                (line, "empreinte", f"décision contraire à celle de la ligne {previous[0]}")
            )
            continue
        decisions[empreinte] = (line, value)
    if errors:
        line, column, message = errors[0]
        raise DecisionFileError(path, line, column, message, more=len(errors) - 1)
    if not decisions:
        return 0
    table = pa.Table.from_pylist(
        [
            {
                "empreinte": emp,
                "source": v[0],
                "cle_source": v[1],
                "siret": v[2],
                "decision": v[3],
                "decide_le": v[4],
                "commentaire": v[5],
            }
            for emp, (_, v) in sorted(decisions.items())
        ],
        schema=pa.schema(
            [
                ("empreinte", pa.string()),
                ("source", pa.string()),
                ("cle_source", pa.string()),
                ("siret", pa.string()),
                ("decision", pa.string()),
                ("decide_le", pa.timestamp("us")),
                ("commentaire", pa.string()),
            ]
        ),
    )
    con.register("_lk_decisions_py", table)
    try:
        with warehouse.transaction(con):
            con.execute(DDL_DECISIONS)
            con.execute(
                "delete from ref.decisions_rapprochement "
                "where empreinte in (select empreinte from _lk_decisions_py)"
            )
            con.execute(
                "insert into ref.decisions_rapprochement by name select * from _lk_decisions_py"
            )
    finally:
        con.unregister("_lk_decisions_py")
    return len(decisions)
