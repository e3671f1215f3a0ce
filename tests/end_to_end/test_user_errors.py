"""What a user can get wrong (issue 12, point 6), through the real command line.

An impossible month, a month later than the stock, a refresh already running, a missing,
unreadable or directory source, a reference file that cannot be read: each must give one French
sentence, an exit code other than 0, no traceback, and leave the last good publication live.
The command runs as a real `python -m observatoire.cli` process; one publication is built for
the module, since none of these refusals may change it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, make_settings
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import quality, refresh, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import mois as months
from observatoire.core import runlock, warehouse
from observatoire.core.settings import Settings
from observatoire.publication import publish
from observatoire.sources import reference, sirene

GOOD, BAD = "2026-10", "2026-11"


@dataclass
class Live:
    settings: Settings
    path: Path


def _rows(n: int = 3) -> tuple[list[dict], list[dict]]:
    siren = new_siren()
    return [ul_row(siren)], [etab_row(siren, i) for i in range(1, n + 1)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    """A good month published once: the state every refusal below must leave alone."""
    settings = make_settings(tmp_path_factory.mktemp("refus"))
    write_stock(settings.data_dir / "sirene" / GOOD, *_rows())
    refresh.refresh(settings, GOOD, run_id="bon")
    path = publish.current(settings.publication_dir)
    assert path is not None
    return Live(settings, path)


def stock(settings: Settings, mois: str = BAD, n: int = 3, **kw: str) -> tuple[Path, Path]:
    """The month's two files, written afresh (a previous test may have damaged them)."""
    folder = settings.data_dir / "sirene" / mois
    shutil.rmtree(folder, ignore_errors=True)
    return write_stock(folder, *_rows(n), **kw)  # type: ignore[arg-type]


def cli_env(settings: Settings, **changes: str) -> dict[str, str]:
    env = {
        **os.environ,
        "OBSERVATOIRE_DATA_DIR": str(settings.data_dir),
        "OBSERVATOIRE_WAREHOUSE": str(settings.warehouse),
        "OBSERVATOIRE_REFERENCE_DIR": str(settings.reference_dir),
        "OBSERVATOIRE_DOWNLOAD_DIR": str(settings.download_dir),
        "OBSERVATOIRE_PUBLICATION_DIR": str(settings.publication_dir),
        "OBSERVATOIRE_INBOX": str(settings.inbox_dir),
        "OBSERVATOIRE_REVUE": str(settings.review_dir),
        "OBSERVATOIRE_TERRITOIRE": settings.territoire,
        "OBSERVATOIRE_SIRENE_ETABLISSEMENTS": settings.sirene_etablissements,
        "OBSERVATOIRE_SIRENE_UNITES_LEGALES": settings.sirene_unites_legales,
        "OBSERVATOIRE_TAUX_REJET_MAX": str(settings.max_reject_rate),
        "OBSERVATOIRE_BANDE_VOLUME": "0.001,1000",
        "OBSERVATOIRE_DATA_DOCS": str(settings.data_dir / "data_docs"),
    }
    return {**env, **changes}


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "observatoire.cli", *args],
        env=cli_env(settings, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_refused(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code not 0, each fragment said on stderr, and no traceback anywhere."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert "Stack Trace" not in done.stderr, done.stderr  # Dagster's log stays in the UI
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
    return done.stderr


def assert_untouched(live: Live) -> None:
    assert publish.current(live.settings.publication_dir) == live.path
    assert publish.published_month(live.settings.publication_dir) == GOOD


def status_bytes(live: Live) -> bytes:
    return (live.settings.publication_dir / publish.STATUS).read_bytes()


def assert_recorded(live: Live, mois: str, *fragments: str) -> None:
    """The refusal is in etat.json, as any failed refresh, and the live month is still GOOD."""
    status = publish.read_status(live.settings.publication_dir)
    assert status is not None
    last = status["dernier_rafraichissement"]
    assert (last["statut"], last["mois"]) == ("echec", mois), last
    assert status["publication_en_ligne"]["mois"] == GOOD
    for fragment in fragments:
        assert fragment in last["motif"], (fragment, last["motif"])


def raw_rows(settings: Settings, table: str, mois: str) -> int:
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        if not warehouse.table_exists(con, "raw", table):
            return 0
        (n,) = con.execute(f"select count(*) from raw.{table} where mois = ?", [mois]).fetchone()
    return int(n)


# --- 1. a month that is not a calendar month, or later than the stock --------------------------

BAD_MONTHS = [
    ("2027-13", "impossible : le mois va de 01 à 12"),
    ("2026-13", "impossible : le mois va de 01 à 12"),
    ("2026-00", "impossible : le mois va de 01 à 12"),
    ("26-11", "mal écrit : attendu AAAA-MM"),
    ("2026-1", "mal écrit : attendu AAAA-MM"),
    ("novembre", "mal écrit : attendu AAAA-MM"),
    ("2026/11", "mal écrit : attendu AAAA-MM"),
    ("0999-11", "l'année doit être comprise entre 1973"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_MONTHS, ids=[m for m, _ in BAD_MONTHS])
def test_parse_mois_refuses_what_is_not_a_calendar_month(text, fragment):
    with pytest.raises(months.InvalidMonthError) as caught:
        months.parse_mois(text)
    assert f"« {text} »" in str(caught.value) and fragment in str(caught.value)


def test_parse_mois_returns_the_month_and_its_stock_window():
    assert months.parse_mois(" 2026-11 ") == "2026-11"
    assert months.stock_window("2026-01") == (dt.date(2025, 12, 1), dt.date(2026, 1, 31))
    assert months.month_end("2028-02") == dt.date(2028, 2, 29)


@pytest.mark.parametrize(("text", "fragment"), BAD_MONTHS, ids=[m for m, _ in BAD_MONTHS])
def test_cli_refuses_an_impossible_month_before_anything_runs(live, text, fragment):
    stock(live.settings)
    before = status_bytes(live)
    done = cli(live.settings, "refresh", "--mois", text)
    assert_refused(done, "ERREUR : option --mois : Mois", f"« {text} »", fragment)
    assert_untouched(live)
    assert status_bytes(live) == before  # a typo on the command line is not a refresh attempt


def test_library_callers_get_the_same_refusal_recorded(live):
    with pytest.raises(months.InvalidMonthError, match="« 2027-13 » impossible") as caught:
        refresh.refresh(live.settings, "2027-13", run_id="mois13")
    assert isinstance(caught.value, refresh.REFUSALS)
    assert_untouched(live)
    assert_recorded(live, "2027-13", "InvalidMonthError", "le mois va de 01 à 12")


def test_a_month_later_than_the_stock_is_refused_before_the_legal_units(live, tmp_path):
    """The stock of 2025-11 (last treated 31/10/2025) asked for as 2026-03, a typo's month.

    Enough rows for the stock date to be decisive, as on any real territory.
    """
    folder = tmp_path / "stock"
    et, ul = write_stock(folder, *_rows(quality.STOCK_DATE_MIN_ROWS), mois="2025-11")
    done = cli(
        live.settings,
        "refresh",
        "--mois",
        "2026-03",
        OBSERVATOIRE_SIRENE_ETABLISSEMENTS=str(et),
        OBSERVATOIRE_SIRENE_UNITES_LEGALES=str(ul),
    )
    assert_refused(
        done,
        "ÉCHEC : Le stock d'établissements lu",
        "date du 31/10/2025",
        "il ne peut pas être celui de 2026-03",
        "entre le 01/02/2026 et le 31/03/2026",
    )
    assert_untouched(live)
    assert_recorded(live, "2026-03", "StaleStockError")
    # refused before the long read of the legal units
    assert raw_rows(live.settings, "sirene_unites_legales", "2026-03") == 0


def test_a_month_not_begun_is_refused_before_anything_is_read(live, tmp_path):
    """2027-03 typed for 2026-03: no stock of a month to come exists, said before reading."""
    folder = tmp_path / "stock"
    et, ul = write_stock(folder, *_rows(), mois="2026-11")
    done = cli(
        live.settings,
        "refresh",
        "--mois",
        "2027-03",
        OBSERVATOIRE_SIRENE_ETABLISSEMENTS=str(et),
        OBSERVATOIRE_SIRENE_UNITES_LEGALES=str(ul),
    )
    assert_refused(done, "ÉCHEC : Mois « 2027-03 » refusé : ce mois n'a pas encore commencé")
    assert_untouched(live)
    assert_recorded(live, "2027-03", "InvalidMonthError")


def test_a_failed_quality_check_is_refused_in_french_through_dagster(live, tmp_path):
    """A stock file with its header only reads as 0 rows: the volume checks stop the month.

    Through the CLI the month is a Dagster run, which fails with Dagster's own error: the CLI
    must still say the checks' French summary and record a QualityError.
    """
    folder = tmp_path / "stock"
    et, ul = write_stock(folder, *_rows(), mois=BAD)
    et.write_text(et.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    done = cli(
        live.settings,
        "refresh",
        "--mois",
        BAD,
        OBSERVATOIRE_SIRENE_ETABLISSEMENTS=str(et),
        OBSERVATOIRE_SIRENE_UNITES_LEGALES=str(ul),
    )
    stderr = assert_refused(done, "ÉCHEC : ", "raw.sirene_etablissements")
    assert "Dagster" not in stderr.split("ÉCHEC : ", 1)[1].splitlines()[0], stderr
    assert_untouched(live)
    assert_recorded(live, BAD, "QualityError")


def test_a_quiet_small_extract_is_not_refused_for_its_old_dates(run_month, settings):
    """A few rows last treated two years ago: a quiet territory, not a wrong month."""
    uls, ets = _rows()
    for row in (*uls, *ets):
        key = next(k for k in row if k.startswith("dateDernierTraitement"))
        row[key] = "2024-10-31T21:30:00"
    report = run_month(BAD, uls, ets)
    assert report.publication is not None
    assert publish.published_month(settings.publication_dir) == BAD


# --- 2. a refresh already running ---------------------------------------------------------------

HOLD_REFRESH_LOCK = """
import sys
from pathlib import Path
from observatoire.core import runlock
with runlock.refresh_lock(Path(sys.argv[1]), sys.argv[2]):
    print("pris", flush=True)
    sys.stdin.read()
"""

HOLD_DUCKDB = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1])
print("pris", flush=True)
sys.stdin.read()
"""


def hold(code: str, *args: str) -> subprocess.Popen[str]:
    """A real second process holding a lock until its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "pris"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_second_refresh_says_one_is_running_and_does_nothing(live):
    stock(live.settings)
    before = status_bytes(live)
    holder = hold(HOLD_REFRESH_LOCK, str(live.settings.warehouse), BAD)
    try:
        done = cli(live.settings, "refresh", "--mois", BAD)
        assert_refused(
            done,
            "ÉCHEC : Un rafraîchissement est déjà en cours",
            f"processus {holder.pid}",
            "depuis le ",
            f"mois {BAD}",
            "--attendre",
        )
        with pytest.raises(runlock.RefreshRunningError, match=f"processus {holder.pid}"):
            refresh.refresh(live.settings, BAD, run_id="second")
    finally:
        release(holder)
    assert_untouched(live)
    # not recorded: etat.json must not show readers a failure while a refresh runs
    assert status_bytes(live) == before
    assert raw_rows(live.settings, "sirene_etablissements", BAD) == 0


def test_attendre_waits_for_the_running_refresh_then_runs(live):
    """With --attendre the second refresh waits, then runs (here to a quick refusal)."""
    settings = live.settings
    shutil.rmtree(settings.data_dir / "sirene" / BAD, ignore_errors=True)
    holder = hold(HOLD_REFRESH_LOCK, str(settings.warehouse), BAD)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "observatoire.cli", "refresh", "--mois", BAD, "--attendre"],
        env=cli_env(settings),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        said = waiting.stderr.readline()
        assert "déjà en cours" in said and f"processus {holder.pid}" in said, said
        assert "attente de sa fin" in said
        assert waiting.poll() is None  # still waiting while the lock is held
    finally:
        release(holder)
    out, err = waiting.communicate(timeout=120)
    done = subprocess.CompletedProcess(waiting.args, waiting.returncode, out, said + err)
    # it ran once the lock was released: the month's files are missing
    assert_refused(done, "ÉCHEC : Stock SIRENE des établissements de 2026-11", "introuvable")
    assert_untouched(live)


def test_duckdb_held_by_another_process_is_a_french_sentence(live):
    """Dagster (or a DuckDB shell) holding the warehouse file: DuckDB's lock, said in French."""
    stock(live.settings)
    before = status_bytes(live)
    holder = hold(HOLD_DUCKDB, str(live.settings.warehouse))
    try:
        with (
            pytest.raises(warehouse.WarehouseLockedError, match=f"processus {holder.pid}"),
            warehouse.connect(live.settings.warehouse),
        ):
            pass
        done = cli(live.settings, "refresh", "--mois", BAD)
        assert_refused(
            done,
            "ÉCHEC : L'entrepôt",
            "ne peut pas être ouvert en écriture",
            f"processus {holder.pid}",
            "rien n'a été modifié",
        )
    finally:
        release(holder)
    assert_untouched(live)
    assert status_bytes(live) == before


def test_lock_file_is_beside_the_warehouse_and_released_when_the_holder_dies(tmp_path):
    db = tmp_path / "entrepot" / "obs.duckdb"
    holder = hold(HOLD_REFRESH_LOCK, str(db), BAD)
    holder.kill()
    holder.wait(timeout=30)
    with runlock.refresh_lock(db, BAD) as path:  # the kernel dropped the dead holder's lock
        assert path == db.with_name("obs.duckdb" + runlock.LOCK_SUFFIX)
        assert runlock.holder(path)["pid"] == os.getpid()


# --- 3. a missing, unreadable or directory source -----------------------------------------------


def _missing(path: Path) -> None:
    path.unlink()


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "StockUniteLegale_utf8.zip").write_bytes(b"")


def _dangling_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("parti.csv"))


def _link_loop(path: Path) -> None:
    other = path.with_name("boucle.csv")
    path.unlink()
    path.symlink_to(other)
    other.symlink_to(path)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _no_read_permission(path: Path) -> None:
    path.chmod(0)


SOURCE_PROBLEMS = [
    pytest.param(_missing, "fichier introuvable", id="absent"),
    pytest.param(_directory, "est un dossier, pas un fichier", id="dossier"),
    pytest.param(_dangling_link, "lien symbolique cassé", id="lien cassé"),
    pytest.param(_link_loop, "boucle de liens symboliques", id="boucle de liens"),
    pytest.param(_fifo, "ce n'est pas un fichier ordinaire", id="tube"),
    pytest.param(
        _no_read_permission,
        "lecture interdite",
        id="droits",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root lit un fichier en mode 000"),
    ),
]


@pytest.mark.parametrize("kind", ["etablissements", "unites_legales"])
@pytest.mark.parametrize(("damage", "fragment"), SOURCE_PROBLEMS)
def test_a_source_that_cannot_be_read_is_refused_before_any_read(live, kind, damage, fragment):
    et, ul = stock(live.settings)
    target = et if kind == "etablissements" else ul
    damage(target)
    done = cli(live.settings, "refresh", "--mois", BAD)
    label = steps.LABELS[kind]
    assert_refused(
        done,
        f"ÉCHEC : Stock SIRENE des {label} de {BAD} : {target}",
        fragment,
        steps.SOURCE_SETTINGS[kind],
    )
    assert_untouched(live)
    assert_recorded(live, BAD, "SireneFileError", fragment)
    # both files are checked before the long read of the first
    assert raw_rows(live.settings, "sirene_etablissements", BAD) == 0


def test_ingest_refuses_a_directory_for_library_and_dagster_callers(tmp_path):
    (tmp_path / "StockEtablissement_utf8.zip").write_bytes(b"")
    with (
        warehouse.connect(tmp_path / "w.duckdb") as con,
        pytest.raises(sirene.SireneFileError, match="est un dossier.*StockEtablissement_utf8"),
    ):
        clean.process_month(con, "etablissements", tmp_path, BAD)


# --- 4. a reference file that cannot be read ----------------------------------------------------


def _edit_line(number: int, edit: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        lines = path.read_text(encoding="utf-8").split("\n")
        edited = edit(lines[number - 1])
        assert edited != lines[number - 1], "the damage must change the line"
        lines[number - 1] = edited
        path.write_text("\n".join(lines), encoding="utf-8")

    return damage


def _to_cp1252(path: Path) -> None:
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))


# (case, file, damage, fragments of the message)
REFERENCE_PROBLEMS = [
    (
        "champ en trop",
        "tranches_effectifs.csv",
        _edit_line(5, lambda line: line + ",x"),
        ["ligne 5", "colonne « effectif_max »", "5 champs au lieu de 4"],
    ),
    (
        "champ manquant",
        "ess_naf_exclusions.csv",
        _edit_line(3, lambda line: line.rsplit(",", 1)[0]),
        ["ligne 3", "colonne « statut »", "3 champs au lieu de 4"],
    ),
    (
        "encodage",
        "tranches_effectifs.csv",
        _to_cp1252,
        ["ligne 2", "colonne « libelle »", "octet 0xE9 non UTF-8"],
    ),
    (
        "colonne manquante",
        "ess_categories_juridiques.csv",
        _edit_line(1, lambda line: line.replace("famille_ess", "famille")),
        ["ligne 1 (en-tête)", "colonne « famille_ess » absente"],
    ),
    (
        "entier",
        "tranches_effectifs.csv",
        _edit_line(5, lambda line: line.replace(",3,5", ",trois,5")),
        ["ligne 5", "colonne « effectif_min »", "« trois » n'est pas un nombre entier"],
    ),
    (
        "guillemet non fermé",
        "regions_departements.csv",
        _edit_line(5, lambda line: line.replace(",", ',"', 1)),
        ["ligne 5", "colonne « libelle_region »", "un guillemet ouvert n'est jamais fermé"],
    ),
    ("fichier absent", "naf_rev2_niveaux.csv", _missing, ["Fichier de référence manquant"]),
]


@pytest.fixture(scope="module")
def reference_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference tables' files, to be copied and damaged one at a time."""
    folder = tmp_path_factory.mktemp("reference")
    for name in set(reference.REFERENCE_FILES.values()):
        shutil.copyfile(ROOT / "data" / "reference" / name, folder / name)
    return folder


@pytest.mark.parametrize(
    ("case", "name", "damage", "fragments"),
    REFERENCE_PROBLEMS,
    ids=[p[0] for p in REFERENCE_PROBLEMS],
)
def test_a_reference_file_that_cannot_be_read_names_file_line_and_column(
    live, reference_copy, tmp_path, case, name, damage, fragments
):
    folder = tmp_path / "reference"
    shutil.copytree(reference_copy, folder)
    damage(folder / name)
    stock(live.settings)
    done = cli(live.settings, "refresh", "--mois", BAD, OBSERVATOIRE_REFERENCE_DIR=str(folder))
    assert_refused(done, "ÉCHEC : ", str(folder / name), *fragments)
    assert_untouched(live)
    assert_recorded(live, BAD, "ReferenceFileError", name)


def test_reference_reader_types_and_tolerances(tmp_path):
    """Typed columns (integer, boolean), NULL for empty, BOM, CRLF, quoted newline, blank line."""
    path = tmp_path / "t.csv"
    path.write_bytes(
        b'\xef\xbb\xbfcode,libelle,n,supprime\r\n01,"deux\r\nlignes",3,true\r\n\r\n'
        b"02,,,FALSE\r\n03,x,-4,\r\n"
    )
    table = reference.read_reference_file(path, {"n": "integer", "supprime": "boolean"})
    assert table.to_pylist() == [
        {"code": "01", "libelle": "deux\r\nlignes", "n": 3, "supprime": True},
        {"code": "02", "libelle": None, "n": None, "supprime": False},
        {"code": "03", "libelle": "x", "n": -4, "supprime": None},
    ]
    path.write_text("code,supprime\n01,true\n02,peut-être\n", encoding="utf-8")
    with pytest.raises(reference.ReferenceFileError) as caught:
        reference.read_reference_file(path, {"supprime": "boolean"})
    assert str(caught.value) == (
        f"{path}, ligne 3, colonne « supprime » : « peut-être » n'est pas un booléen "
        "(true ou false attendu)"
    )
    for text, message in [
        ("", "fichier vide"),
        ("code,code\n1,2\n", "colonne « code » présente deux fois"),
        ("code,\n1,2\n", "la colonne 2 n'a pas de nom"),
        ('a,b\n1,"x"y\n', "ligne 2 : un guillemet fermant est suivi d'autres caractères"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(reference.ReferenceFileError, match=message):
            reference.read_reference_file(path)


def test_shipped_reference_files_read_as_duckdb_read_them():
    """The validating reader changes no value nor type of the tables DuckDB used to load."""
    import duckdb

    folder = ROOT / "data" / "reference"
    read = "read_csv($p, all_varchar = true, header = true, delim = ',', quote = '\"')"
    with duckdb.connect() as con:
        warehouse.configure(con)
        reference.load_reference(con, folder)
        for table, name in reference.REFERENCE_FILES.items():
            casts = reference._TYPED.get(table, {})
            p = {"p": str(folder / name)}
            described = con.execute(f"describe select * from {read}", p).fetchall()
            select = ", ".join(
                f'cast("{c}" as {casts.get(c, "varchar")}) as "{c}"' for c, *_ in described
            )
            con.execute(f"create or replace temp table o as select {select} from {read}", p)
            assert con.execute("describe o").fetchall() == (
                con.execute(f"describe ref.{table}").fetchall()
            )
            for a, b in (("o", f"ref.{table}"), (f"ref.{table}", "o")):
                assert (
                    con.execute(f"select * from {a} except all select * from {b}").fetchall() == []
                )


# --- 5. every refusal is one the CLI reports without a traceback --------------------------------


def test_every_user_error_is_a_refusal():
    for error in (
        months.InvalidMonthError,
        refresh.StaleStockError,
        runlock.RefreshRunningError,
        warehouse.WarehouseLockedError,
        sirene.SireneFileError,
        reference.ReferenceFileError,
    ):
        assert issubclass(error, refresh.REFUSALS), error
