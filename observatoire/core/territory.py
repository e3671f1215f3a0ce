"""The territory: one class, one grammar, the levels listed once.

A territory is written `niveau:code` everywhere a person names one — the refresh's setting
(`OBSERVATOIRE_TERRITOIRE`), `observatoire export --territoire`, the page and the API:
`commune:94081`, `epci:200054781`, `ept:T12` (or the EPT's SIREN), `departement:94`,
`region:11`; a setting may also name `liste:path/to/communes.csv` (a file with a
`code_commune` column; the file name or its `nom_territoire` column names it) or `france`,
which are published as the level `selection`. It resolves to communes; indicators are then
computed for every level entirely inside it, and for the units containing part of it (its EPT
or EPCI, its départements and régions) when the month's stock covers them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from observatoire.core import warehouse


@dataclass(frozen=True)
class Level:
    name: str  # as published in the column `niveau`
    label: str  # for readers
    rank: int  # 1 for the commune, growing with the size (column `rang` of the indicators)


# Every level a figure is published at, smallest first. The SQL of `ref.territoire_niveaux`
# writes the same names and ranks (tested).
LEVELS: tuple[Level, ...] = (
    Level("commune", "Commune", 1),
    Level("ept", "Établissement public territorial", 2),
    Level("epci", "Intercommunalité (EPCI)", 3),
    Level("departement", "Département", 4),
    Level("region", "Région", 5),
    Level("selection", "Sélection de communes", 6),
)
LEVEL_NAMES: tuple[str, ...] = tuple(level.name for level in LEVELS)
LEVEL_LABELS: dict[str, str] = {level.name: level.label for level in LEVELS}
# what a setting may name besides a level: both are published as the level `selection`
SELECTIONS = ("liste", "france")
KINDS: tuple[str, ...] = (*(n for n in LEVEL_NAMES if n != "selection"), *SELECTIONS)
SELECTION_CODE = "selection"  # `code_territoire` of the selection (sql/ref/territoire_niveaux)
CITIES_WITH_ARRONDISSEMENTS = {"75056": "75", "69123": "69", "13055": "13"}


class TerritoryError(ValueError):
    """The territory cannot be read or resolved to communes (said in French)."""


@dataclass(frozen=True)
class Territory:
    """A territory as the observatory publishes it: level, code, label and its communes."""

    level: str  # one of LEVEL_NAMES
    code: str
    label: str
    communes: tuple[str, ...]  # INSEE codes, sorted
    commune_labels: tuple[str, ...] = ()  # same order, when read from a publication
    # the setting it was resolved from (`ept:T12`, `liste:…`, `france`), when it was one
    spec: str = ""
    # read from a publication: a unit containing part of the territory the warehouse was
    # refreshed for (its département, its région…), published for comparison; only the
    # communes of that territory have figures of their own (column `englobant`)
    parent: bool = False

    @property
    def slug(self) -> str:
        return f"{self.level}-{self.code}"

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS.get(self.level, self.level)

    @property
    def key(self) -> str:
        """How it is written, `niveau:code`: what `parse` reads back."""
        return f"{self.level}:{self.code}"

    @property
    def selection_name(self) -> str | None:
        """Name of the selection when it is not a standard level (a list, France)."""
        return self.label if self.level == "selection" else None


def parse(spec: str, *, kinds: tuple[str, ...] = KINDS) -> tuple[str, str]:
    """`niveau:code` (or `france`) → (kind, code), with the error a non-developer can act on.

    The one grammar of every edge; `kinds` narrows what an edge accepts (a publication knows
    `selection`, not a file path).
    """
    raw = spec.strip()
    kind, sep, code = raw.partition(":")
    kind, code = kind.strip().lower(), code.strip()
    if not sep and kind != "france":
        raise TerritoryError(
            f"territoire « {spec} » mal écrit : attendu NIVEAU:CODE, NIVEAU parmi "
            f"{', '.join(kinds)} (ex. ept:T12, commune:94081)"
        )
    if kind not in kinds:
        raise TerritoryError(
            f"territoire « {spec} » : type inconnu « {kind} » (attendu : {', '.join(kinds)} ; "
            "ex. ept:T12, commune:94081, departement:94)"
        )
    if kind == "france":
        if code:
            raise TerritoryError(f"territoire « {spec} » mal écrit : « france » seul, sans code")
        return kind, ""
    if not code:
        raise TerritoryError(
            f"territoire « {spec} » mal écrit : code absent après « {kind}: » (ex. ept:T12)"
        )
    return kind, code


def is_france(spec: str) -> bool:
    """The whole country: every commune is read (no territory filter while reading SIRENE)."""
    return parse(spec)[0] == "france"


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
    """Turn the setting into communes, from the reference data (`ref.communes`)."""
    kind, code = parse(spec)
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
            "select code_commune, libelle_ept, siren_ept from ref.ept_communes "
            "where code_ept = ? or siren_ept = ?",
            [code.upper(), code],
        )
        codes = [r[0] for r in ept]
        rows = _units(con, "list_contains(?, code_commune)", [codes]) if codes else []
        # T1 is the Ville de Paris, one of the Métropole's 12 territories but not an EPT
        label = (f"EPT {ept[0][1]}" if ept[0][2] else ept[0][1]) if ept else code
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
    if selection_name is not None:
        level, code, label = "selection", SELECTION_CODE, selection_name
    else:
        level = kind
    return Territory(
        level=level,
        code=code,
        label=label,
        communes=tuple(sorted(r[0] for r in rows)),
        spec=spec.strip(),
    )


def materialise(con: duckdb.DuckDBPyConnection, territory: Territory) -> dict[str, int]:
    """Write `ref.territoire_communes`, `ref.territoire_niveaux` and `ref.communes_lues`.

    The levels hold the territory's own units and those containing part of it (`englobant`),
    published for comparison when the month's stock covers them; the communes read are those
    of both, so that the stock can be judged on them (`sql/clean/couverture_niveaux.sql`).
    """
    n_communes = warehouse.replace_table(
        con, "ref", "territoire_communes", {"codes": list(territory.communes)}
    )
    n_levels = warehouse.replace_table(
        con, "ref", "territoire_niveaux", {"nom_territoire": territory.selection_name}
    )
    n_read = warehouse.replace_table(con, "ref", "communes_lues")
    # the territory itself, for the steps run later from the warehouse alone (publication)
    con.execute(
        "create or replace table ref.territoire as select $spec as reglage, $niveau as niveau, "
        "$code as code_territoire, $libelle as libelle_territoire",
        {
            "spec": territory.spec,
            "niveau": territory.level,
            "code": territory.code,
            "libelle": territory.label,
        },
    )
    return {"communes": n_communes, "appartenances": n_levels, "communes_lues": n_read}


def materialised(con: duckdb.DuckDBPyConnection) -> Territory:
    """The territory the warehouse was last refreshed for (written by `materialise`)."""
    row = con.execute(
        "select reglage, niveau, code_territoire, libelle_territoire from ref.territoire"
    ).fetchone()
    if row is None:
        raise TerritoryError("aucun territoire dans l'entrepôt : lancer l'étape referentiels")
    communes = con.execute(
        "select code_commune from ref.territoire_communes order by code_commune"
    ).fetchall()
    return Territory(
        level=row[1],
        code=row[2],
        label=row[3],
        communes=tuple(c for (c,) in communes),
        spec=row[0],
    )
