"""Generate a national-scale SYNTHETIC SIRENE stock for benchmarks (~28 M legal units, ~42 M
establishments, ~8.6 GB of establishment CSV), spread over every COG commune.

The real national stock cannot be shipped or downloaded offline; reading, cleaning and indicator
timings must still be measured at its scale. Usage:

    uv run python benchmarks/generate_national.py --out data/bench/national --fmt csv

Only the package, the standard library, numpy and pyarrow are imported (through the package).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from observatoire.demo.synthetic import all_communes, generate_sirene


def _territory(spec: str) -> list[str]:
    """Communes of a territory, resolved the way the observatory resolves its setting."""
    from observatoire.core import territory, warehouse
    from observatoire.demo.synthetic import DEFAULT_REFERENCE_DIR
    from observatoire.sources import reference

    with warehouse.connect(":memory:") as con:
        reference.load_reference(con, DEFAULT_REFERENCE_DIR)
        return list(territory.resolve(con, spec).communes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--n-unites-legales", type=int, default=28_000_000)
    parser.add_argument(
        "--etab-per-ul",
        type=float,
        default=1.5,
        help="mean establishments per legal unit (1.5 gives ~42 M for 28 M units)",
    )
    parser.add_argument("--fmt", choices=("csv", "zip"), default="zip")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--mois", default="2026-06", help="stock month, YYYY-MM")
    parser.add_argument(
        "--compresslevel",
        type=int,
        default=6,
        help="deflate level for --fmt zip (1 is ~3x faster, files ~35 %% larger)",
    )
    parser.add_argument("--defects", action="store_true", help="inject the demo defects")
    parser.add_argument(
        "--territoire",
        default="france",
        help="communes to spread the units over (observatory territory syntax, e.g. region:11)",
    )
    args = parser.parse_args(argv)

    communes = all_communes() if args.territoire == "france" else _territory(args.territoire)
    start = time.perf_counter()
    result = generate_sirene(
        args.out,
        communes,
        n_unites_legales=args.n_unites_legales,
        mois=args.mois,
        seed=args.seed,
        fmt=args.fmt,
        defects=args.defects,
        etablissements_per_unite_legale=args.etab_per_ul,
        compresslevel=args.compresslevel,
    )
    elapsed = time.perf_counter() - start
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    print(f"communes: {len(communes)}")
    print(f"unités légales: {result.n_unites_legales:,} lignes")
    print(f"établissements: {result.n_etablissements:,} lignes")
    for path in (result.unites_legales, result.etablissements):
        print(f"{path}: {path.stat().st_size / 1e9:.2f} GB")
    print(
        "établissements ESS employeurs actifs (hors NAF exclues) : "
        f"{manifest['counts']['etablissements']['ess_employer_active_outside_naf_exclusions']:,}"
    )
    print(f"temps: {elapsed:.1f} s ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
