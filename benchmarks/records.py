"""What it costs to count a SIRENE file's records apart from the parser (issue 12, point 5).

    uv run python benchmarks/records.py --generate            # ~1 M establishments, INSEE layout
    uv run python benchmarks/records.py --repeat 7

Each step runs `--repeat` times in this process on a warm page cache; the median and the fastest
run are printed, with the ratio to the plain DuckDB scan of the same file (`count(*)`, every
column as text). The ingests time `sirene.ingest` alone on a fresh in-memory warehouse, keeping
every row (territory `france`) or the establishments of one département.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv

from observatoire.cleaning import sirene as clean
from observatoire.core import territory, warehouse
from observatoire.sources import reference, sirene, sirene_records

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "records"


def _generate(out: Path, rows: int) -> None:
    from observatoire.demo.synthetic import all_communes, generate_sirene

    generate_sirene(
        out,
        all_communes(),
        n_unites_legales=int(rows / 1.5),
        mois="2026-06",
        seed=2026,
        fmt="csv",
        defects=False,
    )


def _timed(fn: Callable[[], tuple[float, object]], repeat: int) -> tuple[float, float, object]:
    """Median and fastest of `repeat` runs (the machine is shared: the fastest is the cost)."""
    times, result = [], None
    for _ in range(repeat):
        seconds, result = fn()
        times.append(seconds)
    return statistics.median(times), min(times), result


def _clock(fn: Callable[[], object]) -> Callable[[], tuple[float, object]]:
    def run() -> tuple[float, object]:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result

    return run


def _damaged_copy(src: Path, dest: Path, record: int = 100) -> None:
    """The issue's damage: one record opens a quote in a text field and never closes it."""
    with src.open("rb") as f, dest.open("wb") as out:
        for number, line in enumerate(f):
            if number == record:
                fields = line.split(b",")
                fields[49] = b'"' + fields[49]  # denominationUsuelleEtablissement
                line = b",".join(fields)
            out.write(line)


def _strict_insert(path: Path, profiled: bool) -> int:
    """The CSV read as it was before the count: one strict DuckDB insert (optionally profiled)."""
    layout = sirene.detect("etablissements", path)
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in layout.columns) + "}"
    keep = ", ".join(f'"{c}"' for c in sirene.RAW_COLUMNS["etablissements"])
    sql = (
        f"insert into t select {keep} from read_csv($p, "
        f"header = true, delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
        "max_line_size = 1048576)"
    )
    with warehouse.connect(":memory:") as con:
        con.execute(
            "create table t ("
            + ", ".join(f'"{c}" varchar' for c in sirene.RAW_COLUMNS["etablissements"])
            + ")"
        )
        if profiled:
            con.execute("set enable_profiling = 'no_output'")
        con.execute(sql, {"p": str(path)})
        (n,) = con.execute("select count(*) from t").fetchone()  # type: ignore[misc]
        return n


def _ingest(path: Path, territoire: str = "france") -> Callable[[], tuple[float, object]]:
    """Time the read-and-clean pass alone, on a fresh warehouse (reference loaded before)."""

    def run() -> tuple[float, object]:
        with tempfile.TemporaryDirectory() as tmp, warehouse.connect(Path(tmp) / "w.duckdb") as con:
            reference.load_reference(con, ROOT / "data" / "reference")
            territory.materialise(con, territory.resolve(con, territoire))
            communes = None if territoire == "france" else "ref.communes_lues"
            start = time.perf_counter()
            month = clean.process_month(
                con, "etablissements", path, "2026-06", communes_table=communes
            )
            return time.perf_counter() - start, month.read.rows

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("observatoire.sources.sirene").setLevel(
        logging.ERROR
    )  # "fichier endommagé" x N

    csv_path = args.data / "StockEtablissement_utf8.csv"
    if args.generate or not csv_path.exists():
        _generate(args.data, args.rows)
    zip_path = args.data / "bench_zip" / "StockEtablissement_utf8.zip"
    if not zip_path.exists():
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(csv_path, csv_path.name)
    damaged = args.data / "bench_damaged" / "StockEtablissement_utf8.csv"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    _damaged_copy(csv_path, damaged)
    damaged_zip = damaged.with_suffix(".zip")
    with zipfile.ZipFile(damaged_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(damaged, damaged.name)
    width = len(sirene.detect("etablissements", csv_path).columns)
    size = csv_path.stat().st_size

    def scan() -> int:
        with duckdb.connect() as con:
            (n,) = con.execute(
                "select count(*) from read_csv($p, all_varchar = true)", {"p": str(csv_path)}
            ).fetchone()  # type: ignore[misc]
            return n

    def count() -> int:
        with csv_path.open("rb") as f:
            return sirene_records.count_records(f, width).records

    def arrow_zip(counted: bool) -> Callable[[], int]:
        def run() -> int:
            with zipfile.ZipFile(zip_path) as zf, zf.open(zf.infolist()[0]) as raw:
                stream: io.RawIOBase | object = raw
                if counted:
                    stream = sirene_records.CountingReader(raw, sirene_records.RecordCounter(width))
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(block_size=64 << 20),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(include_columns=["siret"]),
                )
                return sum(b.num_rows for b in reader)

        return run

    steps: list[tuple[str, Callable[[], tuple[float, object]]]] = [
        ("plain DuckDB scan, count(*) all_varchar (baseline)", _clock(scan)),
        ("independent record count (numpy quote parity)", _clock(count)),
        ("strict DuckDB insert alone (the CSV read before the count)",
         _clock(lambda: _strict_insert(csv_path, profiled=False))),
        ("strict DuckDB insert, profiled for its scanned rows",
         _clock(lambda: _strict_insert(csv_path, profiled=True))),
        ("CSV ingest, clean file, every row kept", _ingest(csv_path)),
        ("CSV ingest, clean file, département 94", _ingest(csv_path, "departement:94")),
        ("zip: Arrow stream of the member, no count", _clock(arrow_zip(False))),
        ("zip: Arrow stream of the member, counted on the way", _clock(arrow_zip(True))),
        ("zip ingest, clean file, every row kept", _ingest(zip_path)),
        ("zip ingest, clean file, département 94", _ingest(zip_path, "departement:94")),
        ("CSV ingest, one unclosed quote (recovery), every row kept", _ingest(damaged)),
        ("zip ingest, one unclosed quote (recovery), every row kept", _ingest(damaged_zip)),
    ]  # fmt: skip
    scan()  # warm the page cache
    print(f"{csv_path}: {size / 1e6:.0f} MB, {count():,} records; {args.repeat} runs each")
    print("| step | median (s) | fastest (s) | fastest / scan's fastest | rows |")
    print("|---|---|---|---|---|")
    base = None
    for name, fn in steps:
        median, fastest, result = _timed(fn, args.repeat)
        base = base or fastest
        print(f"| {name} | {median:.2f} | {fastest:.2f} | {fastest / base:.2f} | {result:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
