"""Network members cleaned: `raw.reseaux_*` typed into `clean.reseaux_membres`, contacts dropped.

Reading a list (file or URL, CSV/XLSX/JSON) is in `observatoire.sources.reseaux`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from observatoire.cleaning.adresses import CommuneResolver
from observatoire.core import warehouse
from observatoire.core.contacts import mask_contacts
from observatoire.core.identifiers import normalise, normalise_declared, siren_valid, siret_valid
from observatoire.sources.reseaux import (
    _MEMBER_SCHEMA,
    _SPACES,
    CLEAN_TABLES,
    NetworkDeclaration,
    NetworkListError,
    _check_columns,
    _run_all,
    create_tables,
    declarations,
    load_declaration,
)


@dataclass(frozen=True)
class NetworkClean:
    reseau: str
    lignes: int  # records in raw
    nb_membres: int  # rows kept in clean.reseaux_membres
    nb_rejets: int  # rows of clean.reseaux_rejets (a kept member may have some)
    nb_ecartes: int  # records dropped: neither a usable identifier nor a name
    nb_code_commune: int  # members whose commune was resolved to a COG code


def _shown(value: str) -> str:
    """A cell quoted in a reject reason: short, and a contact typed there stays in raw."""
    return mask_contacts(value)[:40]


def _masked(value: str | None) -> str | None:
    return None if value is None else mask_contacts(value)


def _tidy(value: str | None) -> str | None:
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None


def _identifier(
    value: str | None, length: int, label: str, column: str, rejects: list[tuple[str, str]]
) -> str | None:
    """Normalised identifier, kept with a wrong key (the linker weighs near misses)."""
    if value is None:
        return None
    digits = normalise_declared(value, length)
    if digits is None:
        # the cell is quoted for the data team, but a contact typed there stays in raw
        rejects.append(
            (column, f"{label} « {_shown(value)} » illisible : {length} chiffres attendus")
        )
        return None
    valid = siret_valid(digits) if length == 14 else siren_valid(digits)
    if not valid:
        rejects.append(
            (column, f"{label} {digits} : clé de contrôle invalide (conservé, à rapprocher)")
        )
    return digits


def _commune_code(value: str) -> str | None:
    """A COG code as typed in a spreadsheet: `1001` for 01001 (leading zero lost), `2a004`."""
    code = value.strip().upper()
    if code.isdigit() and len(code) == 4:
        code = "0" + code
    return code if len(code) == 5 else None


def clean_network(
    con: duckdb.DuckDBPyConnection, declaration: NetworkDeclaration | Path | str
) -> NetworkClean:
    """Replace the network's rows of the clean layer, from its raw cells.

    Every record of raw becomes a member unless it has neither a usable identifier nor a name
    (nothing to link on); each problem found on the way is written to `clean.reseaux_rejets`
    with the file's column, and the member is kept when it is still linkable.
    """
    decl = (
        declaration
        if isinstance(declaration, NetworkDeclaration)
        else load_declaration(declaration)
    )
    reading = (
        con.execute(
            "select fichier_source, colonnes from raw.reseaux_lectures where reseau = $reseau",
            {"reseau": decl.reseau},
        ).fetchone()
        if warehouse.table_exists(con, "raw", "reseaux_lectures")
        else None
    )
    if reading is None:
        raise NetworkListError(
            f"réseau {decl.reseau} ({decl.path.name}) : liste jamais lue dans la couche raw "
            "(lancer l'ingestion avant le nettoyage)"
        )
    fichier_source, file_columns = reading
    _check_columns(decl, list(file_columns), 1, fichier_source)

    declared = list(dict.fromkeys(decl.colonnes.values()))
    cells = con.execute(
        "select ligne, colonne, valeur from raw.reseaux_cellules where reseau = $reseau "
        "and list_contains($cols, colonne) order by ligne",
        {"reseau": decl.reseau, "cols": declared},
    ).fetchall()
    lines = [
        r[0]
        for r in con.execute(
            "select distinct ligne from raw.reseaux_cellules where reseau = $reseau order by 1",
            {"reseau": decl.reseau},
        ).fetchall()
    ]
    by_line: dict[int, dict[str, str]] = {line: {} for line in lines}
    for line, column, value in cells:
        by_line[line][column] = value

    resolver = CommuneResolver.from_con(con)
    labels = dict(con.execute("select code_commune, libelle_commune from ref.communes").fetchall())
    resolved: dict[tuple[str | None, str | None], str | None] = {}
    col = decl.colonnes
    members: list[dict[str, Any]] = []
    all_rejects: list[tuple[int, str | None, str]] = []
    dropped = 0
    for line in lines:
        row = by_line[line]

        def get(name: str, row: dict[str, str] = row) -> str | None:
            return _tidy(row.get(col[name])) if name in col else None

        rejects: list[tuple[str, str]] = []
        siret = _identifier(get("siret"), 14, "SIRET", col.get("siret", ""), rejects)
        siren = _identifier(get("siren"), 9, "SIREN", col.get("siren", ""), rejects)
        # a list's name or address cell sometimes carries a contact: it stays in raw
        nom = _masked(get("nom"))
        if siret is None and siren is None and nom is None:
            all_rejects.extend((line, c, m) for c, m in rejects)
            all_rejects.append(
                (line, None, "ni SIRET/SIREN utilisable ni nom : ligne non rapprochable, écartée")
            )
            dropped += 1
            continue
        adresse = _masked(
            get("adresse") or _tidy(" ".join(v for v in (get("numero_voie"), get("voie")) if v))
        )
        code_postal = None
        if (raw_cp := get("code_postal")) is not None:
            code_postal = normalise(raw_cp, 5)
            if code_postal is None:
                rejects.append((col["code_postal"], f"code postal « {_shown(raw_cp)} » illisible"))
        commune = get("commune")
        code_commune = None
        if (raw_code := get("code_commune")) is not None:
            code_commune = _commune_code(raw_code)
            if code_commune not in labels:
                rejects.append(
                    (col["code_commune"], f"code commune « {_shown(raw_code)} » absent du COG")
                )
                code_commune = None
        if code_commune is None and commune is not None:
            key = (commune, code_postal)
            if key not in resolved:
                resolved[key] = resolver.resolve(commune, code_postal)
            code_commune = resolved[key]
            if code_commune is None:
                where = f" (code postal {code_postal})" if code_postal else ""
                rejects.append(
                    (col["commune"], f"commune « {_shown(commune)} »{where} non reconnue")
                )
        elif code_commune is None and "commune" in col and "code_commune" not in col:
            rejects.append((col["commune"], "commune absente"))
        members.append(
            {
                "reseau": decl.reseau,
                "type_reseau": decl.type,
                "membre_id": f"{decl.reseau}:{line}",
                "ligne": line,
                "siret_declare": siret,
                "siren_declare": siren,
                "nom": nom,
                "adresse": adresse,
                "code_postal": code_postal,
                "code_commune": code_commune,
                # the official label when resolved; otherwise what the list said, for review
                "libelle_commune": labels.get(code_commune) if code_commune else commune,
                "categorie": get("categorie"),
            }
        )
        all_rejects.extend((line, c, m) for c, m in rejects)

    frame = pl.DataFrame(members, schema=_MEMBER_SCHEMA)
    rejects_frame = pl.DataFrame(
        all_rejects,
        schema={"ligne": pl.Int64, "colonne": pl.String, "motif": pl.String},
        orient="row",
    )
    create_tables(con)
    try:
        with warehouse.transaction(con):
            for table in CLEAN_TABLES:
                con.execute(
                    f"delete from clean.{table} where reseau = $reseau", {"reseau": decl.reseau}
                )
            con.register("_reseau_membres", frame)
            con.register("_reseau_rejets_clean", rejects_frame)
            con.execute(
                "insert into clean.reseaux_membres by name "
                "select * from _reseau_membres order by ligne"
            )
            con.execute(
                "insert into clean.reseaux_rejets select $reseau, ligne, colonne, motif "
                "from _reseau_rejets_clean order by ligne",
                {"reseau": decl.reseau},
            )
            con.execute(
                "insert into clean.reseaux by name select $reseau as reseau, $nom as nom, "
                "$type as type, $source as source, $fichier as fichier_source, "
                "$n as nb_membres, $confidentiel as confidentiel",
                {
                    "reseau": decl.reseau,
                    "nom": decl.nom,
                    "type": decl.type,
                    "source": decl.fichier,
                    "fichier": fichier_source,
                    "n": frame.height,
                    "confidentiel": decl.confidentiel,
                },
            )
    finally:
        con.unregister("_reseau_membres")
        con.unregister("_reseau_rejets_clean")
    return NetworkClean(
        reseau=decl.reseau,
        lignes=len(lines),
        nb_membres=frame.height,
        nb_rejets=rejects_frame.height,
        nb_ecartes=dropped,
        nb_code_commune=int(frame["code_commune"].is_not_null().sum()),
    )


def clean_all(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> list[NetworkClean]:
    """Clean every `inbox_dir/reseaux/*.toml`, sorted by name."""
    paths = declarations(inbox_dir)
    create_tables(con)
    return _run_all(paths, lambda p: clean_network(con, p))
