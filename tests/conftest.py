"""Shared fixtures: real DuckDB files under tmp_path, settings pointing at them."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import pytest

from observatoire import refresh
from observatoire.core import warehouse
from observatoire.core.settings import Settings

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
sys.path.insert(0, str(TESTS))
# tests by layer (unit, sql, pipelines, end_to_end, web): helpers of one layer's modules are
# imported by another's (test_sensor reuses test_pipelines' territory)
for _layer in sorted(p for p in TESTS.iterdir() if p.is_dir() and p.name[0].isalpha()):
    sys.path.insert(0, str(_layer))
# the CLI runs its months on the Dagster instance of DAGSTER_HOME (the Makefile points it at the
# repository): tests, and the CLI processes they start, keep their runs out of it
os.environ["DAGSTER_HOME"] = tempfile.mkdtemp(prefix="observatoire-dagster-")
Path(os.environ["DAGSTER_HOME"], "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

from sirene_builder import write_stock  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def make_settings(tmp_path: Path) -> Settings:
    """Test settings under one directory (also for module-scoped fixtures)."""
    return Settings(
        data_dir=tmp_path,
        warehouse=tmp_path / "warehouse" / "obs.duckdb",
        reference_dir=ROOT / "data" / "reference",
        download_dir=tmp_path / "sources",
        publication_dir=tmp_path / "publication",
        # never the repository's data/inbox (the demo's wave and lists) nor its data/revue
        inbox_dir=tmp_path / "inbox",
        review_dir=tmp_path / "revue",
        territoire="ept:T12",
        sirene_etablissements=str(tmp_path / "sirene" / "{mois}" / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(tmp_path / "sirene" / "{mois}" / "StockUniteLegale_utf8.csv"),
        max_reject_rate=1.0,
        # months of a few hand-written rows: a ±2 % volume gate would refuse every second month;
        # the gate itself is tested with its real band
        count_band=(0.001, 1000.0),
        # a few hand-written rows with one unknown code is a large share: the drift gate is
        # tested with its real limits in test_nomenclature_drift.py
        drift_share_max=1.0,
        drift_jump_max=1.0,
        # Data Docs cost seconds per suite: built only where a test looks at them
        quality_docs_dir=None,
    )


@pytest.fixture
def run_month(settings: Settings):
    """Write the given rows as the month's stock files and run the full refresh on them."""
    runs = itertools.count(1)

    def _run(mois: str, unites_legales: list, etablissements: list, **changes):
        s = settings.with_(**changes) if changes else settings
        folder = Path(s.data_dir) / "sirene" / mois
        write_stock(folder, unites_legales, etablissements)
        return refresh.refresh(s, mois, run_id=f"test{next(runs)}")

    return _run


@pytest.fixture
def query(settings: Settings):
    def _query(sql: str, params: dict | None = None) -> list[tuple]:
        with warehouse.connect(settings.warehouse, read_only=True) as con:
            return con.execute(sql, params or {}).fetchall()

    return _query


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`observatoire demo` run once, as the README's main command, in its own process.

    Once for the whole run, also under pytest-xdist: the workers share pytest's base temporary
    folder, and the first to arrive generates the demo while the others wait on a lock (the
    demo takes a minute; each of them building it again would double that on two cores).
    """
    import fcntl
    import subprocess

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # popen-gwN/ -> the run's folder, shared by the workers
    data = base / "demo-partagee"
    stdout = base / "demo-partagee.stdout"
    with (base / "demo-partagee.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stdout.exists():
            data.mkdir(exist_ok=True)
            env = {
                **os.environ,
                "OBSERVATOIRE_DATA_DIR": str(data),
                "OBSERVATOIRE_REFERENCE_DIR": str(ROOT / "data" / "reference"),
            }
            done = subprocess.run(
                [sys.executable, "-m", "observatoire.cli", "demo"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stderr
            stdout.write_text(done.stdout, encoding="utf-8")
    return data, stdout.read_text(encoding="utf-8")
