"""Linkage quality on labelled sets: the match rate and precision issue 4 asks to report.

Two measurements, each on data whose right answer is known:

1. `demo`: the bundled synthetic questionnaire wave and network lists, whose generator wrote the
   SIRET each record belongs to (`data/synthetique/verite_rapprochement.csv`). Run `make demo`
   first; this reads the demo warehouse.
2. `siae`: the real list of SIAE (ASP, July 2019, 3,932 rows) against a SIRENE fixture derived
   from it with documented drift (moves, closures, absences, renamed units, decoys:
   `observatoire/siae_fixture.py`), through a full refresh with territory `france`; once with
   the list's SIRET column declared, once without it (names, addresses and communes only).

Not a test: the figures are reported, not asserted (tests/test_linkage.py asserts behaviour).

    uv run python benchmarks/rapprochement.py demo
    uv run python benchmarks/rapprochement.py siae
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observatoire import linkage, refresh, warehouse  # noqa: E402
from observatoire.settings import Settings  # noqa: E402

SIAE_LIST = ROOT / "tests" / "fixtures" / "reseaux" / "siae_liste_asp_2019_07.csv"
MOIS = "2026-11"

COLUMNS = (
    "labelled",
    "expected_links",
    "lie",
    "lie_correct",
    "a_revoir",
    "a_revoir_correct",
    "non_lie",
    "non_lie_correct",
    "match_rate",
    "precision",
    "recall",
    "recall_with_review",
)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def _table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    print("| ensemble | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, figures in rows.items():
        print(f"| {name} | " + " | ".join(_fmt(figures.get(c)) for c in COLUMNS) + " |")


def _evaluate_groups(con: object, groups: dict[str, dict[str, str | None]]) -> dict[str, dict]:
    return {name: linkage.evaluate(con, MOIS, truth) for name, truth in groups.items() if truth}


def demo(settings: Settings) -> None:
    truth_path = settings.data_dir / "synthetique" / "verite_rapprochement.csv"
    if not truth_path.exists():
        raise SystemExit(f"{truth_path} absent : lancer d'abord `make demo`")
    by_source: dict[str, dict[str, str | None]] = defaultdict(dict)
    by_case: dict[str, dict[str, str | None]] = defaultdict(dict)
    everything: dict[str, str | None] = {}
    with truth_path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rec = f"{row['cle_source']}:{row['ligne']}"
            expected = row["siret_attendu"] or None
            by_source[f"{row['source']} {row['cle_source']}"][rec] = expected
            by_case[row["cas"]][rec] = expected
            everything[rec] = expected
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        groups = {"tout": everything, **by_source}
        _table("Jeu étiqueté de démonstration, par source", _evaluate_groups(con, groups))
        _table("Par cas de défaut", _evaluate_groups(con, dict(sorted(by_case.items()))))


def _siae_run(work: Path, with_siret: bool) -> dict[str, dict]:
    from observatoire.siae_fixture import write_siae_sirene_fixture

    sirene_dir = work / "sirene" / MOIS
    fixture = write_siae_sirene_fixture(SIAE_LIST, sirene_dir, MOIS)
    inbox = work / "inbox" / "reseaux"
    inbox.mkdir(parents=True)
    shutil.copyfile(SIAE_LIST, inbox / "siae.csv")
    declared = {
        "nom": "DENOMINATION_SOCIALE",
        "numero_voie": "NUM_RUE",
        "voie": "NOM_RUE",
        "code_postal": "CODE_POSTAL",
        "commune": "COMMUNE",
        "categorie": "MESURE",
    }
    if with_siret:
        declared = {"siret": "SIRET", **declared}
    lines = ['nom = "SIAE (ASP, juillet 2019)"', 'type = "siae"', 'fichier = "siae.csv"', ""]
    lines += ["[colonnes]", *(f'{k} = "{v}"' for k, v in declared.items())]
    (inbox / "siae.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(
        data_dir=work,
        warehouse=work / "warehouse.duckdb",
        reference_dir=ROOT / "data" / "reference",
        download_dir=work / "sources",
        publication_dir=work / "publication",
        inbox_dir=work / "inbox",
        review_dir=work / "revue",
        territoire="france",
        sirene_etablissements=str(sirene_dir / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(sirene_dir / "StockUniteLegale_utf8.csv"),
        quality_docs_dir=None,
    )
    start = time.perf_counter()
    refresh.refresh(settings, MOIS)
    print(
        f"  rafraîchissement complet (siret déclaré : {with_siret}) : "
        f"{time.perf_counter() - start:.1f} s"
    )
    truth: dict[str, str | None] = {}
    by_case: dict[str, dict[str, str | None]] = defaultdict(dict)
    with fixture.verite.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rec = f"siae:{row['ligne']}"
            expected = row["siret_attendu"] or None
            truth[rec] = expected
            by_case[row["cas"]][rec] = expected
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        return _evaluate_groups(con, {"tout": truth, **dict(sorted(by_case.items()))})


def siae() -> None:
    for with_siret in (True, False):
        with tempfile.TemporaryDirectory(prefix="siae_") as tmp:
            figures = _siae_run(Path(tmp), with_siret)
        title = "Liste réelle des SIAE contre la fixture SIRENE, " + (
            "colonne SIRET déclarée" if with_siret else "sans la colonne SIRET (nom + adresse)"
        )
        _table(title, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jeu", choices=["demo", "siae"])
    args = parser.parse_args()
    if args.jeu == "demo":
        demo(Settings.from_env())
    else:
        siae()


if __name__ == "__main__":
    main()
