"""Faults during a refresh: the process killed at any point, the disk full while writing.

The refresh runs as a real `observatoire refresh` process on a small synthetic stock. After
each fault the live publication must still be the last complete one, and the next ordinary run
must succeed and give the same figures, with nothing left to clean up by hand.
(Download faults, cut transfers and bursts of 503/429, are in test_download.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from observatoire.core import territory, warehouse
from observatoire.demo import synthetic
from observatoire.publication import publish
from observatoire.sources import reference

ROOT = Path(__file__).resolve().parents[2]
MOIS = "2026-11"


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stock")
    with duckdb.connect() as con:
        warehouse.configure(con)
        reference.load_reference(con, ROOT / "data" / "reference")
        communes = territory.resolve(con, "ept:T12").communes
    synthetic.generate_sirene(
        folder,
        list(communes),
        n_unites_legales=8_000,
        mois=MOIS,
        fmt="csv",
        defects=False,
    )
    return folder


def _env(data: Path, stock: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OBSERVATOIRE_DATA_DIR": str(data),
        "OBSERVATOIRE_REFERENCE_DIR": str(ROOT / "data" / "reference"),
        "OBSERVATOIRE_SIRENE_ETABLISSEMENTS": str(stock / "StockEtablissement_utf8.csv"),
        "OBSERVATOIRE_SIRENE_UNITES_LEGALES": str(stock / "StockUniteLegale_utf8.csv"),
    }


def _start(data: Path, stock: Path, file_size_limit: int | None = None) -> subprocess.Popen:
    def limit() -> None:  # runs in the child, before exec
        if file_size_limit is not None:
            # a write past the limit fails with EFBIG, as on a full disk, instead of a signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.Popen(
        # --forcer: the same month from the same files again, on purpose (kills, disk full)
        [sys.executable, "-m", "observatoire.cli", "refresh", "--mois", MOIS, "--forcer"],
        env=_env(data, stock),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )


def _run(data: Path, stock: Path, file_size_limit: int | None = None) -> tuple[int, str]:
    proc = _start(data, stock, file_size_limit)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err


def _published_digest(publication: Path) -> dict[str, str]:
    """Content of the live publication, file by file; fails if it is incomplete."""
    live = publish.current(publication)
    assert live is not None, "aucune publication en ligne"
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    digest = {}
    for name in manifest["lignes"]:
        for dialect in ("csv", "csv_excel"):
            path = live / dialect / f"{name}.csv"
            digest[f"{dialect}/{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def _leftovers(data: Path) -> list[str]:
    found = [p.name for p in (data / "publication").glob(".staging_*")]
    # months of the SIRENE pass are written as Parquet files beside the warehouse
    found += [p.name for p in (data / "warehouse").glob("*.parquet/*/*/_build_*")]
    with duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"), read_only=True) as con:
        found += [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_name like '\\_build\\_%' escape '\\'"
            ).fetchall()
        ]
    return found


@pytest.fixture(scope="module")
def first_run(stock: Path, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("faults")
    code, output = _run(data, stock)
    assert code == 0, output
    return data, _published_digest(data / "publication")


# where the kill lands -> what it leaves behind for the next run to clean up
KILL_POINTS = {
    "raw_avant_bascule": "_build_sirene_etablissements__2026_11",
    "clean_en_cours": "_build_sirene_unites_legales__2026_11",
    "dans_la_transaction_de_bascule": None,
    "indicateurs_en_cours": None,
    "publication_en_cours": ".staging_",
    "publication_avant_bascule": None,
    "publication_apres_bascule": None,
}


# Killed in the CLI's Dagster run, and recovered by the next CLI run (a run left « STARTED » by
# the dead process must not stop it). At the other points the same steps are killed run without
# Dagster, and recovered by a refresh in this process: what they leave behind is the steps'
# (build files, the swap, the publication), and the test costs a third of a CLI run.
THROUGH_DAGSTER = {"raw_avant_bascule", "publication_apres_bascule"}


def _recover_in_process(data: Path, stock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from observatoire import refresh
    from observatoire.core.settings import Settings

    for name, value in _env(data, stock).items():
        if name.startswith("OBSERVATOIRE_"):
            monkeypatch.setenv(name, value)
    refresh.refresh(Settings.from_env(), MOIS)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_mid_refresh_the_next_run_recovers(first_run, stock, point, monkeypatch):
    data, expected = first_run
    publication = data / "publication"
    live_before = publish.current(publication)
    dagster = point in THROUGH_DAGSTER
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "failpoint_runner.py"), point, MOIS]
        + ([] if dagster else ["--direct"]),
        env=_env(data, stock),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    # whatever was swapped is whole: each raw month table holds exactly the rows its read log
    # says were kept (they are written in the same transaction)
    with duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"), read_only=True) as con:
        for kind in ("etablissements", "unites_legales"):
            logged = con.execute(
                "select lignes_retenues from raw.sirene_lectures "
                "where mois = ? and type_fichier = ?",
                [MOIS, kind],
            ).fetchall()
            (rows,) = con.execute(
                f"select count(*) from raw.sirene_{kind} where mois = ?", [MOIS]
            ).fetchone()
            assert logged == [(rows,)], (point, kind)
    left = _leftovers(data)
    if KILL_POINTS[point] is not None:
        assert any(x.startswith(KILL_POINTS[point]) for x in left), left
    # readers still see a complete publication: the previous one, or the new one once switched
    assert _published_digest(publication) == expected
    if point != "publication_apres_bascule":
        assert publish.current(publication) == live_before
    if dagster:
        code, output = _run(data, stock)
        assert code == 0, output
    else:
        _recover_in_process(data, stock, monkeypatch)
    assert _published_digest(publication) == expected
    assert publish.current(publication) != live_before  # the next run published again
    assert _leftovers(data) == []


def test_full_disk_fails_cleanly_and_the_next_run_recovers(first_run, stock):
    data, expected = first_run
    publication = data / "publication"
    live_before = publish.current(publication)
    size = (data / "warehouse" / "observatoire.duckdb").stat().st_size
    for limit in (size // 4, size // 2):
        code, output = _run(data, stock, file_size_limit=limit)
        assert code != 0, (limit, output)
        assert "File too large" in output or "Errno 27" in output, output
        # said in one French sentence, not as a traceback
        assert "ÉCHEC : disque plein ou fichier trop grand" in output, output
        assert "Traceback" not in output, output
        assert publish.current(publication) == live_before
        assert _published_digest(publication) == expected
    code, output = _run(data, stock)
    assert code == 0, output
    assert _published_digest(publication) == expected
    assert _leftovers(data) == []


def test_full_disk_while_publishing_keeps_the_live_snapshot(first_run, stock, tmp_path):
    """The snapshot is written last: a write error there must not touch `courant`."""
    data, expected = first_run
    publication = data / "publication"
    live_before = publish.current(publication)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    con = duckdb.connect(str(data / "warehouse" / "observatoire.duckdb"))
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
        with pytest.raises((OSError, duckdb.Error)):
            publish.publish(con, publication, MOIS, "disque-plein")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert publish.current(publication) == live_before
    assert _published_digest(publication) == expected
    assert not list(publication.glob(".staging_*"))
    assert not (publication / f"{MOIS}_disque-plein").exists()
    publish.publish(con, publication, MOIS, "apres-disque-plein")
    con.close()
    assert publish.current(publication).name == f"{MOIS}_apres-disque-plein"
    assert _published_digest(publication) == expected


def test_a_reader_during_refreshes_sees_one_whole_publication_at_a_time(run_month, settings):
    """Readers resolve `courant` once, then read a snapshot that is complete and never mixed."""
    import threading

    from sirene_builder import etab_row, new_siren, ul_row

    def month(n: int) -> tuple[list, list]:
        siren = new_siren()
        return [ul_row(siren)], [etab_row(siren, i) for i in range(1, n + 1)]

    run_month("2026-09", *month(2))
    seen: list[tuple[str, int]] = []
    problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                live = publish.current(settings.publication_dir)
                manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
                for name, rows in manifest["lignes"].items():
                    for dialect in ("csv", "csv_excel"):
                        lines = (live / dialect / f"{name}.csv").read_text(encoding="utf-8-sig")
                        if len(lines.splitlines()) - 1 != rows:
                            problems.append(f"{live.name} {dialect}/{name}")
                seen.append((manifest["mois"], manifest["lignes"]["annuaire_ess"]))
            except Exception as exc:  # a reader that crashes has seen a broken state
                problems.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for mois, size in (("2026-10", 3), ("2026-11", 4), ("2026-11", 5)):
            run_month(mois, *month(size))
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len({m for m, _ in seen}) >= 2, seen  # the reader did live through switches
    assert publish.published_month(settings.publication_dir) == "2026-11"
