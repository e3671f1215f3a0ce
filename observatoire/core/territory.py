"""The territory under observation, as configuration.

A territory is written `kind:code` — `commune:94081`, `epci:200054781`, `ept:T12` (or the EPT's
SIREN), `departement:94`, `region:11`, `liste:path/to/communes.csv` (a file with a
`code_commune` column; the file name or its `nom_territoire` column names it) or `france`.
It resolves to communes; indicators are then computed for every level entirely inside it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from observatoire.core import warehouse

KINDS = ("commune", "epci", "ept", "departement", "region", "liste", "france")
CITIES_WITH_ARRONDISSEMENTS = {"75056": "75", "69123": "69", "13055": "13"}


class TerritoryError(ValueError):
    """The territory setting cannot be resolved to communes."""


@dataclass(frozen=True)
class Territory:
    spec: str
    kind: str
    code: str
    label: str
    communes: tuple[str, ...]
    # name of the selection when it is not itself a standard level (lists, France)
    selection_name: str | None


def is_france(spec: str) -> bool:
    """The whole country: every commune is read (no territory filter while reading SIRENE)."""
    return spec.strip().lower() == "france"


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def _units(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> list[tuple]:
    return _query(
        con,
        "select code_commune, libelle_commune, nom_departement, nom_region, nom_epci "
        "from ref.communes where code_commune not in ('75056', '69123', '13055') and " + where,
        params,
    )


def resolve(con: duckdb.DuckDBPyConnection, spec: str) -> Territory:
    """Turn the setting into communes, with errors a non-developer can act upon."""
    raw = spec.strip()
    kind, _, code = raw.partition(":")
    kind, code = kind.strip().lower(), code.strip()
    if kind not in KINDS:
        raise TerritoryError(
            f"territoire « {spec} » : type inconnu « {kind} » (attendu : {', '.join(KINDS)})"
        )
    selection_name: str | None = None
    if kind == "france":
        rows = _units(con, "true", [])
        label, selection_name = "France entière", "France entière"
    elif kind == "commune":
        if code in CITIES_WITH_ARRONDISSEMENTS:
            rows = _units(
                con,
                "type_commune = 'ARM' and code_departement = ?",
                [CITIES_WITH_ARRONDISSEMENTS[code]],
            )
            if code == "13055":
                rows = [r for r in rows if r[0].startswith("132")]
        else:
            rows = _units(con, "code_commune = ?", [code])
        label = rows[0][1] if rows else code
        if code in CITIES_WITH_ARRONDISSEMENTS and rows:
            label = _query(
                con, "select libelle_commune from ref.communes where code_commune = ?", [code]
            )[0][0]
            selection_name = label
    elif kind == "epci":
        rows = _units(con, "code_epci = ?", [code])
        label = rows[0][4] if rows else code
    elif kind == "ept":
        ept = _query(
            con,
            "select code_commune, nom_ept from ref.ept_communes "
            "where code_ept = ? or siren_ept = ?",
            [code.upper(), code],
        )
        codes = [r[0] for r in ept]
        rows = _units(con, "list_contains(?, code_commune)", [codes]) if codes else []
        label = f"EPT {ept[0][1]}" if ept else code
    elif kind == "departement":
        rows = _units(con, "code_departement = ?", [code.upper()])
        label = rows[0][2] if rows else code
    elif kind == "region":
        rows = _units(con, "code_region = ?", [code])
        label = rows[0][3] if rows else code
    else:  # liste
        path = Path(code)
        if not path.is_file():
            raise TerritoryError(f"territoire « {spec} » : fichier introuvable {path}")
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = f.readline()
            f.seek(0)
            delimiter = next((d for d in (";", "\t") if d in header), ",")
            reader = csv.DictReader(f, delimiter=delimiter)
            if "code_commune" not in (reader.fieldnames or []):
                raise TerritoryError(
                    f"{path}, ligne 1 : colonne « code_commune » absente (colonnes : "
                    f"{', '.join(reader.fieldnames or [])})"
                )
            listed = []
            names = set()
            for line, row in enumerate(reader, start=2):
                value = (row.get("code_commune") or "").strip()
                if not value:
                    raise TerritoryError(
                        f"{path}, ligne {line}, colonne code_commune : valeur vide"
                    )
                listed.append(value.zfill(5))
                if row.get("nom_territoire"):
                    names.add(row["nom_territoire"].strip())
        rows = _units(con, "list_contains(?, code_commune)", [listed])
        unknown = sorted(set(listed) - {r[0] for r in rows})
        if unknown:
            raise TerritoryError(
                f"{path} : communes absentes du COG : {', '.join(unknown[:20])}"
                + (" …" if len(unknown) > 20 else "")
            )
        label = names.pop() if len(names) == 1 else path.stem
        selection_name = label
    if not rows:
        raise TerritoryError(
            f"territoire « {spec} » : aucune commune trouvée pour le code « {code} »"
        )
    return Territory(
        spec=raw,
        kind=kind,
        code=code,
        label=label,
        communes=tuple(sorted(r[0] for r in rows)),
        selection_name=selection_name,
    )


def materialise(con: duckdb.DuckDBPyConnection, territory: Territory) -> dict[str, int]:
    """Write `ref.territoire_communes` and `ref.territoire_niveaux` for the resolved territory."""
    n_communes = warehouse.replace_table(
        con, "ref", "territoire_communes", {"codes": list(territory.communes)}
    )
    n_levels = warehouse.replace_table(
        con, "ref", "territoire_niveaux", {"nom_territoire": territory.selection_name}
    )
    return {"communes": n_communes, "appartenances": n_levels}
