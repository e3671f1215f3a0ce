"""The public entry points: `generate_sirene` writes one synthetic stock and its manifest.

It checks the arguments, builds what all chunks share (`context.py`), draws the chunks in order
(`units.py`), hands their lines to one background writer per file (`writers.py`), injects the
defects into the first chunk (`defects.py`) and writes the manifest from the true counts
(`truth.py`). See the package's docstring for what the stock holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from observatoire.core.identifiers import LA_POSTE_SIREN, siret_valid
from observatoire.demo.common import (
    DEFAULT_REFERENCE_DIR,
    ETABLISSEMENTS_CSV,
    UNITES_LEGALES_CSV,
    check_mois,
    read_csv,
)
from observatoire.demo.synthetic.context import _Context, _Reference
from observatoire.demo.synthetic.defects import (
    _count_lines,
    _inject_etab_defects,
    _inject_ul_defects,
)
from observatoire.demo.synthetic.truth import _Counts
from observatoire.demo.synthetic.units import _generate_chunk
from observatoire.demo.synthetic.writers import _join_lines, _Sink, _write_slices
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25

GENERATOR_VERSION = "1.1.0"

MANIFEST_NAME = "synthetic_manifest.json"

# Largest number of legal units per chunk: keeps every chunk's CSV text under pyarrow's 2 GB
# string-array limit and the memory of a national run under 3 GB.
MAX_CHUNK_ROWS = 2_000_000


@dataclass(frozen=True)
class SyntheticSirene:
    """Paths and sizes of one generated synthetic stock.

    `n_etablissements` / `n_unites_legales` count the data lines written (header excluded,
    injected defect lines included); the manifest also gives the true entity counts.
    """

    etablissements: Path
    unites_legales: Path
    n_etablissements: int
    n_unites_legales: int
    manifest: Path


def generate_sirene(
    out_dir: Path,
    communes: Sequence[str],
    *,
    n_unites_legales: int,
    mois: str,
    seed: int = 2026,
    fmt: Literal["zip", "csv"] = "zip",
    defects: bool = True,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
    chunk_rows: int = 1_000_000,
    etablissements_per_unite_legale: float = 1.5,
    compresslevel: int = 6,
) -> SyntheticSirene:
    """Write a synthetic SIRENE stock (legal units and establishments) for `mois` ("YYYY-MM").

    Every establishment lies in one of `communes` (COG codes, drawn with Zipf-like weights), apart
    from one injected defect row. `chunk_rows` legal units are generated at a time; like `seed`,
    it is part of what determines the bytes. `defects=True` injects a few malformed rows, listed
    with their line numbers in the manifest; `defects=False` writes clean files.
    """
    check_mois(mois)
    if n_unites_legales < 1:
        raise ValueError("n_unites_legales doit être positif")
    if n_unites_legales > 50_000_000:
        raise ValueError("n_unites_legales > 50 000 000 : l'espace des SIREN serait trop dense")
    if defects and n_unites_legales < 50:
        raise ValueError("defects=True demande au moins 50 unités légales")
    if not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        raise ValueError(f"chunk_rows doit être entre 1 et {MAX_CHUNK_ROWS}")
    if fmt not in ("zip", "csv"):
        raise ValueError(f"fmt doit être 'zip' ou 'csv', reçu {fmt!r}")
    if etablissements_per_unite_legale < 1.05:
        raise ValueError("etablissements_per_unite_legale doit être au moins 1.05")

    ref = _Reference.load(Path(reference_dir))
    ctx = _Context.build(ref, communes, n_unites_legales, mois, etablissements_per_unite_legale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    year, month = (int(x) for x in mois.split("-"))
    date_time = (year, month, 1, 0, 0, 0)
    if fmt == "zip":
        etab_path = out_dir / "StockEtablissement_utf8.zip"
        ul_path = out_dir / "StockUniteLegale_utf8.zip"
    else:
        etab_path = out_dir / ETABLISSEMENTS_CSV
        ul_path = out_dir / UNITES_LEGALES_CSV

    counts = _Counts(ctx)
    defect_log: list[dict[str, Any]] = []
    n_chunks = -(-n_unites_legales // chunk_rows)
    with (
        _Sink(
            ul_path, UNITES_LEGALES_CSV if fmt == "zip" else None, date_time, compresslevel
        ) as ul_sink,
        _Sink(
            etab_path, ETABLISSEMENTS_CSV if fmt == "zip" else None, date_time, compresslevel
        ) as etab_sink,
    ):
        ul_sink.write([(",".join(UNITE_LEGALE_V3_11_NAF25) + "\n").encode()], 1)
        etab_sink.write([(",".join(ETABLISSEMENT_V3_11_NAF25) + "\n").encode()], 1)
        for chunk in range(n_chunks):
            start = chunk * chunk_rows
            stop = min(n_unites_legales, start + chunk_rows)
            rng = np.random.default_rng([seed, chunk])
            ul_cols, etab_cols, ul_view, etab_view = _generate_chunk(ctx, rng, start, stop)
            counts.add(ul_view, etab_view)
            if defects and chunk == 0:
                ul_lines = _join_lines(ul_cols, UNITE_LEGALE_V3_11_NAF25)
                etab_lines = _join_lines(etab_cols, ETABLISSEMENT_V3_11_NAF25)
                drng = np.random.default_rng([seed, 7_777_777])
                ul_parts, ul_found = _inject_ul_defects(ul_lines, ul_view, drng)
                etab_parts, etab_found = _inject_etab_defects(etab_lines, etab_view, ctx, drng)
                defect_log += ul_found + etab_found
                ul_sink.write(ul_parts, _count_lines(ul_parts))
                etab_sink.write(etab_parts, _count_lines(etab_parts))
                del ul_lines, etab_lines, ul_parts, etab_parts
            else:
                # Lines are built and handed over in slices, so that the text of a whole chunk
                # never sits in memory next to its columns.
                _write_slices(ul_sink, ul_cols, ul_view.n, UNITE_LEGALE_V3_11_NAF25)
                _write_slices(etab_sink, etab_cols, etab_view.n, ETABLISSEMENT_V3_11_NAF25)
            del ul_cols, etab_cols

    n_ul_lines = ul_sink.lines - 1
    n_etab_lines = etab_sink.lines - 1
    manifest = {
        "synthetic": True,
        "description": (
            "Fichiers SIRENE SYNTHETIQUES (aucune ligne ne décrit une entreprise réelle), "
            "au format exact des stocks INSEE v3.11 + NAF 2025"
        ),
        "generator": "observatoire.demo.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "mois": mois,
        "date_fin_donnees": ctx.end_date.isoformat(),
        "fmt": fmt,
        "chunk_rows": chunk_rows,
        "etablissements_per_unite_legale": etablissements_per_unite_legale,
        "defects_injected": defects,
        "communes": list(ctx.communes),
        "files": {
            "unites_legales": {
                "path": ul_path.name,
                "member": UNITES_LEGALES_CSV if fmt == "zip" else None,
                "data_lines": n_ul_lines,
                "csv_sha256": ul_sink.sha256,
                "columns": len(UNITE_LEGALE_V3_11_NAF25),
            },
            "etablissements": {
                "path": etab_path.name,
                "member": ETABLISSEMENTS_CSV if fmt == "zip" else None,
                "data_lines": n_etab_lines,
                "csv_sha256": etab_sink.sha256,
                "columns": len(ETABLISSEMENT_V3_11_NAF25),
            },
        },
        "counts": counts.as_dict(),
        "drift": counts.drift(),
        "defects": defect_log,
    }
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
        encoding="utf-8",
    )
    return SyntheticSirene(
        etablissements=etab_path,
        unites_legales=ul_path,
        n_etablissements=n_etab_lines,
        n_unites_legales=n_ul_lines,
        manifest=manifest_path,
    )


def all_communes(reference_dir: Path = DEFAULT_REFERENCE_DIR) -> list[str]:
    """Every COG code under which SIRENE locates establishments (the national territory).

    SIRENE uses the municipal arrondissements of Paris, Lyon and Marseille, never the parent
    communes 75056, 69123 and 13055, so those three are left out.
    """
    return [
        row["code_commune"]
        for row in read_csv(Path(reference_dir) / "cog_communes.csv")
        if row["code_commune"] not in ("75056", "69123", "13055")
    ]


def la_poste_siret_valid(siret: str) -> bool:
    """INSEE's exception for La Poste (see `observatoire.core.identifiers.siret_valid`)."""
    return siret.startswith(LA_POSTE_SIREN) and siret_valid(siret)
