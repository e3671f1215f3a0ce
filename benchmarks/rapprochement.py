"""Linkage quality on labelled sets: the match rate and precision issue 4 asks to report.

Two measurements, each on data whose right answer is known:

1. `demo`: the bundled synthetic questionnaire wave and network lists, whose generator wrote the
   SIRET each record belongs to (`data/synthetique/verite_rapprochement.csv`). Run `make demo`
   first; this reads the demo warehouse.
2. `siae`: the real list of SIAE (ASP, July 2019, 3,932 rows) against a SIRENE fixture derived
   from it with documented drift (moves, closures, absences, renamed units, decoys:
   `tests/siae_fixture.py`), through a full refresh with territory `france`; once with
   the list's SIRET column declared, once without it (names, addresses and communes only).

3. `volume`: wall time and peak memory of `linkage.link_month` on 450,000 establishments and
   600 records (the volume of tests/unit/test_linkage.py), each step in its own process, against a
   baseline measured in the same run: the plain SQL join of the records' SIRETs on the same
   establishments, the cheapest linkage there is.

Not a test: the figures are reported, not asserted (tests/unit/test_linkage.py asserts behaviour).

    uv run python benchmarks/rapprochement.py demo
    uv run python benchmarks/rapprochement.py siae
    uv run python benchmarks/rapprochement.py volume
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from observatoire import linkage, refresh  # noqa: E402
from observatoire.core import warehouse  # noqa: E402
from observatoire.core.settings import Settings  # noqa: E402

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
    sys.path.insert(0, str(ROOT / "tests"))  # a test fixture: it lives with the tests
    from siae_fixture import write_siae_sirene_fixture

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


VOLUME_UNITS = 225_000  # two establishments each: 450,000


def _volume_step(step: str, db: Path) -> None:
    """One measured step, run in its own process by `volume`."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "unit")]
    # the test module's builders: the benchmark measures the volume the test checks
    from test_linkage import build_volume, build_volume_records

    if step == "preparer":
        with warehouse.connect(db) as con:
            build_volume(con, units=VOLUME_UNITS)
            build_volume_records(con, units=VOLUME_UNITS)
    elif step == "jointure":
        with warehouse.connect(db) as con:
            con.execute(
                "create or replace table jointure as select a.enregistrement_id, e.siret "
                "from clean.a_rapprocher as a join clean.sirene_etablissements as e "
                "on e.siret = replace(a.siret_declare, ' ', '')"
            )
    else:
        with warehouse.connect(db) as con:
            print(linkage.link_month(con, MOIS))


def volume() -> None:
    from run_benchmark import measure

    with tempfile.TemporaryDirectory(prefix="rapprochement_") as tmp:
        db = Path(tmp) / "volume.duckdb"
        me = [sys.executable, str(Path(__file__).resolve()), "_etape"]
        measure(
            "préparation (450 000 établissements, 600 enregistrements)", [*me, "preparer", str(db)]
        )
        base = measure("référence : jointure SQL sur le SIRET", [*me, "jointure", str(db)])
        link = measure("link_month (toutes les méthodes, splink)", [*me, "rapprocher", str(db)])
    ratio = float(link["secondes"]) / max(float(base["secondes"]), 0.1)
    print("\n| étape | s | Mo max |\n|---|---|---|")
    for r in (base, link):
        print(f"| {r['etape']} | {r['secondes']} | {r['memoire_max_mo']} |")
    print(f"\nlink_month / jointure : {ratio:.1f}×")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_etape":
        _volume_step(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jeu", choices=["demo", "siae", "volume"])
    args = parser.parse_args()
    if args.jeu == "demo":
        demo(Settings.from_env())
    elif args.jeu == "siae":
        siae()
    else:
        volume()


if __name__ == "__main__":
    main()
