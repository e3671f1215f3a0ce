"""Statistical secrecy: how much of a month stays published, and what the mask costs.

On a copy of a warehouse (the demo's, after `make demo`, by default), two runs, each in its own
process so that its peak memory is its own (`os.wait4` rusage):

- **baseline — primary rule only**: cells of 1–2 legal units, or dominated by one unit, are
  hidden and nothing else. No mask can publish more than this, so it is the reference the
  secondary suppression is measured against;
- **mask**: the whole protection, as `publish` runs it (propagation, LP audit, repairs).

Reported per table: rows published under each run, and the share the mask keeps of what the
primary rule leaves. Then the figures territorial staff read first, for every territory: the
number of active establishments (all, ESS, non-ESS, each family), of employers, and the ESS
jobs. Targets, checked and printed (exit code 1 when one is missed):

- every territory's total, ESS and non-ESS establishment counts, and its ESS jobs, published;
- at least 50 % of the rows the primary rule leaves publishable still published in each Sirene
  table (`etablissements_actifs`, `etablissements_employeurs`, `emplois_salaries_estimes`,
  `unites_legales_siege`).

    make demo && uv run python benchmarks/secret.py
    uv run python benchmarks/secret.py --entrepot path/to/observatoire.duckdb --mois 2026-11

Results are printed and saved in `benchmarks/results/secret.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIRENE_TABLES = (
    "etablissements_actifs",
    "etablissements_employeurs",
    "emplois_salaries_estimes",
    "unites_legales_siege",
)
TABLES = (
    *SIRENE_TABLES,
    "part_ess_emploi_prive",
    "creations_fermetures",
    "evolution_mensuelle",
    "taux_reponse",
    "besoins_cites",
    "ess_hors_reseau",
    "reseaux_couverture",
)
SHARE_TARGET = 0.5


def _run_one(warehouse: str, mois: str, mode: str, out: str) -> None:
    """Inside the child process: compute the statuses of every published row, write JSON."""
    import duckdb
    import polars as pl

    from observatoire import secret_tables

    con = duckdb.connect(warehouse)
    t0 = time.monotonic()
    if mode == "mask":
        report = secret_tables.protect_month(con, mois)
        detail = {"cases": report.cells, "primaires": report.primary}
        detail |= {"secondaires": report.secondary, "programmes_lineaires": report.lp_solves}
        tables = {
            name: con.execute(
                f"select * from {secret_tables.SCHEMA}.{name} where mois = $m", {"m": mois}
            ).pl()
            for name in TABLES
        }
    else:
        built = secret_tables.build_system(con, mois)
        status = secret_tables.statuses(built)  # primary cells only: no protection run
        detail = {"cases": built.system.n_cells, "primaires": int(built.system.suppressed.sum())}
        tables = {}
        for name in TABLES:
            df = secret_tables._read(con, name, mois).with_row_index("_r")
            tables[name] = secret_tables.mask_rows(df, secret_tables.ROW_CELLS[name](df), status)
    seconds = time.monotonic() - t0
    shown = pl.col("statut_secret") == "publie"
    rows = {n: [int(df.filter(shown).height), df.height] for n, df in tables.items()}
    key = _key_figures(tables)
    Path(out).write_text(
        json.dumps({"secondes": seconds, "lignes": rows, "chiffres_cles": key, **detail}),
        encoding="utf-8",
    )


def _key_figures(tables: dict) -> dict[str, dict[str, str]]:
    """Per territory, the status of the figures its page opens with."""
    import polars as pl

    out: dict[str, dict[str, str]] = {}
    whole = (pl.col("section_naf") == "ensemble") & (pl.col("tranche_effectifs") == "ensemble")
    for name, label in (
        ("etablissements_actifs", "etablissements"),
        ("etablissements_employeurs", "employeurs"),
        ("emplois_salaries_estimes", "emplois"),
    ):
        df = tables[name].filter(whole)
        for r in df.iter_rows(named=True):
            fam = r["famille"] if r["famille"] != "ensemble" else r["perimetre"]
            if label == "emplois" and fam != "ess":
                continue
            terr = f"{r['niveau']}:{r['code_territoire']}"
            out.setdefault(terr, {})[f"{label}:{fam}"] = r["statut_secret"]
    return out


def _measure(warehouse: Path, mois: str, mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="secret_bench_") as tmp:
        copy = Path(tmp) / "entrepot.duckdb"
        shutil.copy(warehouse, copy)
        out = Path(tmp) / "resultat.json"
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--enfant", mode, str(copy), mois, str(out)], cwd=ROOT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        if status != 0:
            raise SystemExit(f"le calcul « {mode} » a échoué (code {status})")
        result = json.loads(out.read_text(encoding="utf-8"))
    result["secondes_processus"] = wall
    result["memoire_max_mo"] = usage.ru_maxrss / 1024
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--enfant":
        _run_one(sys.argv[3], sys.argv[4], sys.argv[2], sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--entrepot", type=Path, default=ROOT / "data" / "warehouse" / "observatoire.duckdb"
    )
    parser.add_argument("--mois", help="mois AAAA-MM (par défaut, le dernier de l'entrepôt)")
    args = parser.parse_args()
    if not args.entrepot.exists():
        raise SystemExit(f"{args.entrepot} absent : lancer d'abord « make demo »")
    mois = args.mois
    if mois is None:
        import duckdb

        with duckdb.connect(str(args.entrepot), read_only=True) as con:
            (mois,) = con.execute(
                "select max(mois) from indicators.etablissements_actifs"
            ).fetchone()  # type: ignore[misc]
    base = _measure(args.entrepot, mois, "primary")
    mask = _measure(args.entrepot, mois, "mask")
    print(f"Secret statistique, mois {mois}, entrepôt {args.entrepot}")
    print(
        f"cases : {mask['cases']} ; primaires : {mask['primaires']} ; "
        f"secondaires : {mask['secondaires']} ; programmes linéaires : "
        f"{mask['programmes_lineaires']}"
    )
    print()
    print("| run | seconds (process) | peak memory (MB) |")
    print("|---|---|---|")
    for label, r in (("baseline: primary rule only", base), ("mask (publish)", mask)):
        print(f"| {label} | {r['secondes_processus']:.1f} | {r['memoire_max_mo']:.0f} |")
    print()
    print("| table | rows | published, primary only | published, mask | kept |")
    print("|---|---|---|---|---|")
    missed: list[str] = []
    for name in TABLES:
        b_pub, total = base["lignes"][name]
        m_pub, _ = mask["lignes"][name]
        kept = m_pub / b_pub if b_pub else 1.0
        print(f"| {name} | {total} | {b_pub} | {m_pub} | {kept:.0%} |")
        if name in SIRENE_TABLES and kept < SHARE_TARGET:
            missed.append(f"{name} : {kept:.0%} < {SHARE_TARGET:.0%}")
    print()
    key = mask["chiffres_cles"]
    headline = (
        "etablissements:ensemble",
        "etablissements:ess",
        "etablissements:hors_ess",
        "employeurs:ensemble",
        "employeurs:ess",
        "emplois:ess",
    )
    print("| figure | territories where published | where the primary rule hides it |")
    print("|---|---|---|")
    for fig in (*headline, *(f"etablissements:{f}" for f in _families(key))):
        shown = sum(1 for t in key.values() if t.get(fig) == "publie")
        present = sum(1 for t in key.values() if fig in t)
        primary = sum(1 for t in key.values() if t.get(fig) == "primaire")
        print(f"| {fig} | {shown} / {present} | {primary} |")
        if fig in headline and shown + primary < present:
            missed.append(f"{fig} : {present - shown - primary} territoire(s) en secondaire")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "secret.json").write_text(
        json.dumps({"mois": mois, "base": base, "masque": mask}, indent=1), encoding="utf-8"
    )
    if missed:
        print("\nObjectifs manqués : " + " ; ".join(missed))
        return 1
    print("\nObjectifs atteints.")
    return 0


def _families(key: dict) -> list[str]:
    fams = {f.split(":", 1)[1] for t in key.values() for f in t if f.startswith("etab")}
    return sorted(fams - {"ensemble", "ess", "hors_ess"})


if __name__ == "__main__":
    raise SystemExit(main())
