"""Reference data (COG, NAF, catégories juridiques, tranches d'effectifs, ESS rules) in DuckDB.

The CSV files under `data/reference/` are versioned with their provenance; loading them as
tables lets every SQL file join on them, and lets a territory replace them (a newer COG, its own
EPT list) without code changes.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# table in schema `ref` -> file in the reference folder
REFERENCE_FILES: dict[str, str] = {
    "communes": "cog_communes.csv",
    "ept_communes": "ept_t12_grand_orly_seine_bievre_communes.csv",
    "regions_departements": "regions_departements.csv",
    "naf_rev2_niveaux": "naf_rev2_niveaux.csv",
    "naf_rev2_sous_classes": "naf_rev2_sous_classes.csv",
    "naf_2025_sous_classes": "naf_2025_sous_classes.csv",
    "categories_juridiques_n1": "categories_juridiques_n1.csv",
    "categories_juridiques_n2": "categories_juridiques_n2.csv",
    "categories_juridiques_n3": "categories_juridiques_n3.csv",
    "tranches_effectifs": "tranches_effectifs.csv",
    "ess_categories_juridiques": "ess_categories_juridiques.csv",
    "ess_naf_exclusions": "ess_naf_exclusions.csv",
    "cog_communes_anciennes": "cog_communes_anciennes.csv",
    "naf_2025_niveaux": "naf_2025_niveaux.csv",
    "naf_rev2_naf_2025": "naf_rev2_naf_2025.csv",
}

_READ = "read_csv($p, all_varchar = true, header = true, delim = ',', quote = '\"')"

# Columns that are numbers; everything else stays text (codes keep their leading zeros).
_TYPED = {
    "tranches_effectifs": {"effectif_min": "integer", "effectif_max": "integer"},
    "categories_juridiques_n3": {"supprime": "boolean"},
    "cog_communes_anciennes": {"ambigu": "boolean"},
}


def load_reference_table(con: duckdb.DuckDBPyConnection, table: str, reference_dir: Path) -> int:
    path = Path(reference_dir) / REFERENCE_FILES[table]
    if not path.is_file():
        raise FileNotFoundError(f"fichier de référence manquant : {path}")
    casts = _TYPED.get(table, {})
    columns = [
        r[0] for r in con.execute(f"describe select * from {_READ}", {"p": str(path)}).fetchall()
    ]
    select = ", ".join(
        f'cast("{c}" as {casts[c]}) as "{c}"' if c in casts else f'"{c}"' for c in columns
    )
    con.execute(
        f"create or replace table ref.{table} as select {select} from {_READ}",
        {"p": str(path)},
    )
    return con.execute(f"select count(*) from ref.{table}").fetchone()[0]  # type: ignore[index]


def load_reference(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> dict[str, int]:
    return {table: load_reference_table(con, table, reference_dir) for table in REFERENCE_FILES}
