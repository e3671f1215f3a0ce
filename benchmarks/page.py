"""Response times of the observatory's web page and API, on a published snapshot.

Starts the real server (`observatoire page`, uvicorn) in its own process on 127.0.0.1, then
requests sequentially, over one keep-alive connection:
- the baseline: the static `manifest.json`, served by the same server (what the framework and
  the network cost without any query);
- every territory page, or a seeded sample (`--echantillon`, 300 by default) of territories of
  every level when there are more;
- the main API endpoints (search, key figures, an indicator's rows for one territory) and one
  CSV download per sampled territory.
Reports p50 / p95 / max per group and the server's peak resident memory (VmHWM, read from
/proc before the server stops). Results are printed and saved in `benchmarks/results/`.

`--national-synthetique DIR` first builds a NATIONAL-SCALE SYNTHETIC SNAPSHOT without running
the pipeline: the territories are the real COG ones (data/reference/cog_communes.csv: every
commune, EPCI, département and région, plus the demo's EPT), and each territory's rows are
copied from a template territory of an existing snapshot (communes from the demo's communes,
other levels from the demo's EPT), so every table has the same columns, dimension codes and
rows per territory as a real refresh. The figures are therefore a copy, not a computation: the
point is the size of the tables the page queries.

    uv run python benchmarks/page.py                                   # the demo's publication
    uv run python benchmarks/page.py --national-synthetique benchmarks/data/page_national
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import duckdb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LEVEL_ORDER = ("commune", "ept", "epci", "departement", "region", "selection")


# ------------------------------------------------------------------------- national snapshot
def build_national(template_publication: Path, out: Path, cog: Path) -> Path:
    """A publication directory whose snapshot has national row counts (see the docstring)."""
    live = (template_publication / "courant").resolve()
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    target = out / f"{manifest['mois']}_national_synthetique"
    if (target / "indicateurs.duckdb").exists():
        print(f"Instantané national synthétique déjà construit : {target}")
        return out
    target.mkdir(parents=True, exist_ok=True)
    db = target / "indicateurs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("set memory_limit = '6GB'")
    con.execute("set threads = 2")
    con.execute("set preserve_insertion_order = false")
    con.execute(f"attach '{live / 'indicateurs.duckdb'}' as tpl (read_only)")
    con.execute(
        "create temp table cog as select * from read_csv($p, all_varchar = true) "
        "where type_commune = 'COM'",
        {"p": str(cog)},
    )
    # each synthetic territory, with the template territory its rows are copied from
    con.execute(
        """
        create temp table communes_tpl as
        select code_territoire as tpl, row_number() over (order by code_territoire) - 1 as i
        from (select distinct code_territoire from tpl.indicators.etablissements_actifs
              where niveau = 'commune')
        """
    )
    con.execute(
        """
        create temp table carte as
        with n as (select count(*) as n from communes_tpl)
        select 'commune' as niveau, c.code_commune as code, c.libelle_commune as libelle,
               'commune' as tpl_niveau, t.tpl as tpl_code
        from (select *, row_number() over (order by code_commune) as r from cog) c, n
        join communes_tpl t on t.i = c.r % n.n
        union all
        select distinct 'epci', code_epci, nom_epci, 'ept', 'T12' from cog where code_epci <> ''
        union all
        select distinct 'departement', code_departement, nom_departement, 'ept', 'T12' from cog
        union all
        select distinct 'region', code_region, nom_region, 'ept', 'T12' from cog
        union all
        select distinct niveau, code_territoire, libelle_territoire, niveau, code_territoire
        from tpl.indicators.etablissements_actifs where niveau = 'ept'
        """
    )
    con.execute("create schema indicators")
    tables = [
        t
        for (t,) in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = 'tpl' and table_schema = 'indicators'"
        ).fetchall()
    ]
    for table in tables:
        cols = [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'tpl' "
                "and table_schema = 'indicators' and table_name = $t order by ordinal_position",
                {"t": table},
            ).fetchall()
        ]
        if table == "territoires":  # rebuilt below for the national territories
            continue
        if table == "nomenclatures":  # labels: the same at every scale
            con.execute(f"create table indicators.{table} as select * from tpl.indicators.{table}")
            continue
        if "code_territoire" not in cols:  # the listing: not served by the page, left empty
            con.execute(
                f"create table indicators.{table} as select * from tpl.indicators.{table} limit 0"
            )
            continue
        select = ", ".join(
            {
                "niveau": "k.niveau as niveau",
                "code_territoire": "k.code as code_territoire",
                "libelle_territoire": "k.libelle as libelle_territoire",
            }.get(c, f't."{c}"')
            for c in cols
        )
        started = time.monotonic()
        con.execute(
            f"create table indicators.{table} as select {select} "
            f"from tpl.indicators.{table} t join carte k "
            "on t.niveau = k.tpl_niveau and t.code_territoire = k.tpl_code "
            "order by t.mois, k.niveau, k.code"
        )
        (n,) = con.execute(f"select count(*) from indicators.{table}").fetchone()  # type: ignore[misc]
        print(f"  {table} : {n:,} lignes ({time.monotonic() - started:.0f} s)".replace(",", " "))
    # the lead's `territoires` table (contract, point 3): each territory's communes
    con.execute(
        """
        create table indicators.territoires as
        select * from (
          select 'commune' as niveau, code_commune as code_territoire,
                 libelle_commune as libelle_territoire, code_commune from cog
          union all select 'epci', code_epci, nom_epci, code_commune from cog where code_epci <> ''
          union all select 'departement', code_departement, nom_departement, code_commune from cog
          union all select 'region', code_region, nom_region, code_commune from cog
          union all select 'ept', e.code, e.libelle, c.code
            from (select distinct code_territoire as code, libelle_territoire as libelle
                  from tpl.indicators.etablissements_actifs where niveau = 'ept') e,
                 (select distinct code_territoire as code
                  from tpl.indicators.etablissements_actifs where niveau = 'commune') c
        ) order by niveau, code_territoire, code_commune
        """
    )
    con.execute("detach tpl")
    con.close()
    lines = {}
    check = duckdb.connect(str(db), read_only=True)
    for table in [t for t in tables if t != "territoires"] + ["territoires"]:
        (lines[table],) = check.execute(f"select count(*) from indicators.{table}").fetchone()  # type: ignore[misc]
    check.close()
    manifest = {
        **manifest,
        "run_id": "national_synthetique",
        "lignes": lines,
        "synthetique": True,
        "territoire": "france (instantané synthétique, lignes copiées de la démo)",
    }
    (target / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    link = out / "courant"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target.name, target_is_directory=True)
    print(f"Instantané national synthétique : {target} ({db.stat().st_size / 1e9:.2f} Go)")
    return out


# ------------------------------------------------------------------------- measuring
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(publication: Path, geo: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "OBSERVATOIRE_PUBLICATION_DIR": str(publication),
        "OBSERVATOIRE_REFERENCE_DIR": str(geo.parent),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "observatoire.cli", "page", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("le serveur n'a pas démarré")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, url: str) -> tuple[float, int, int]:
        start = time.perf_counter()
        self.conn.request("GET", url)
        resp = self.conn.getresponse()
        body = resp.read()
        return (time.perf_counter() - start) * 1000, resp.status, len(body)


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


def sample(territories: list[dict], size: int, seed: int) -> list[dict]:
    """All territories if few; else every level represented, up to `size`, seeded."""
    if len(territories) <= size:
        return territories
    rng = random.Random(seed)
    by_level: dict[str, list[dict]] = {}
    for t in territories:
        by_level.setdefault(t["niveau"], []).append(t)
    chosen: list[dict] = []
    share = max(1, size // (2 * len(by_level)))  # half the sample spread over the levels
    for level in sorted(by_level, key=lambda x: LEVEL_ORDER.index(x) if x in LEVEL_ORDER else 9):
        items = by_level[level]
        chosen += rng.sample(items, min(share, len(items)))
    rest = [t for t in territories if t not in chosen]
    chosen += rng.sample(rest, size - len(chosen))
    return chosen


def measure(publication: Path, geo: Path, size: int, seed: int) -> dict:
    port = free_port()
    started = time.monotonic()
    proc = start_server(publication, geo, port)
    try:
        client = Client(port)
        cold_ms, status, _ = client.get("/api/v1/territoires?limite=1")  # opens the snapshot
        assert status == 200, status
        ready_s = time.monotonic() - started
        territories: list[dict] = []
        while True:  # every published territory, page by page
            client.conn.request(
                "GET", f"/api/v1/territoires?limite=10000&decalage={len(territories)}"
            )
            got = json.loads(client.conn.getresponse().read())
            territories += got["territoires"]
            mois = got["mois"]
            if len(got["territoires"]) < 10000:
                break
        chosen = sample(territories, size, seed)
        # one page outside the sample first: templates compiled, outlines read (reported apart)
        warm = territories[-1]
        first_page_ms, status, _ = client.get(
            f"/territoire/{warm['niveau']}/{quote(warm['code_territoire'])}"
        )
        assert status == 200
        times: dict[str, list[float]] = {
            k: []
            for k in (
                "baseline manifest.json",
                "page territoire",
                "API chiffres clés",
                "API indicateur (territoire)",
                "API recherche",
                "CSV tableau",
            )
        }
        sizes: list[int] = []
        for _ in range(max(50, len(chosen))):
            ms, status, _ = client.get("/manifest.json")
            times["baseline manifest.json"].append(ms)
        slow: list[tuple[float, str]] = []
        for t in chosen:
            url = f"/territoire/{t['niveau']}/{quote(t['code_territoire'])}"
            ms, status, length = client.get(url)
            assert status == 200, (url, status)
            times["page territoire"].append(ms)
            sizes.append(length)
            slow.append((ms, url))
        for t in chosen:
            n, c = t["niveau"], quote(t["code_territoire"])
            ms, status, _ = client.get(f"/api/v1/territoires/{n}/{c}")
            assert status == 200
            times["API chiffres clés"].append(ms)
            ms, status, _ = client.get(
                f"/api/v1/indicateurs/etablissements_actifs?niveau={n}&code_territoire={c}"
                f"&mois={mois}&section_naf=ensemble&tranche_effectifs=ensemble"
            )
            assert status == 200
            times["API indicateur (territoire)"].append(ms)
            ms, status, _ = client.get(f"/territoire/{n}/{c}/tableaux/familles.csv")
            assert status == 200
            times["CSV tableau"].append(ms)
            word = t["libelle_territoire"].split(" ")[0][:6]
            ms, status, _ = client.get(f"/api/v1/territoires?q={quote(word)}&limite=20")
            assert status == 200
            times["API recherche"].append(ms)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    levels: dict[str, int] = {}
    for t in chosen:
        levels[t["niveau"]] = levels.get(t["niveau"], 0) + 1
    return {
        "publication": str(publication),
        "mois": mois,
        "territoires_publies": len(territories),
        "territoires_mesures": levels,
        "demarrage_s": round(ready_s, 2),
        "premiere_requete_ms": round(cold_ms, 1),
        "premiere_page_ms": round(first_page_ms, 1),
        "groupes": {k: summary(v) for k, v in times.items() if v},
        "page_octets_median": int(statistics.median(sizes)) if sizes else 0,
        "pages_les_plus_lentes": [
            {"ms": round(ms, 1), "url": url} for ms, url in sorted(slow, reverse=True)[:5]
        ],
        "rss_pic_serveur_mo": round(rss, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publication", type=Path, default=ROOT / "data" / "publication")
    parser.add_argument("--geo", type=Path, default=ROOT / "data" / "reference" / "geo")
    parser.add_argument("--echantillon", type=int, default=300)
    parser.add_argument("--graine", type=int, default=2026)
    parser.add_argument(
        "--national-synthetique",
        type=Path,
        help="construire (une fois) puis mesurer un instantané national synthétique ici",
    )
    args = parser.parse_args()
    publication = args.publication
    name = "demo"
    if args.national_synthetique:
        started = time.monotonic()
        publication = build_national(
            args.publication,
            args.national_synthetique,
            ROOT / "data" / "reference" / "cog_communes.csv",
        )
        print(f"construit en {time.monotonic() - started:.0f} s")
        name = "national_synthetique"
    result = measure(publication, args.geo, args.echantillon, args.graine)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"page_{name}.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    print(
        f"\nPublication {result['publication']} ({result['mois']}), "
        f"{result['territoires_publies']} territoires ; mesurés : {result['territoires_mesures']}"
    )
    print(
        f"démarrage {result['demarrage_s']} s, première requête {result['premiere_requete_ms']} ms"
    )
    print(f"{'groupe':32} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for group, s in result["groupes"].items():
        print(f"{group:32} {s['n']:>5} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}")
    print(f"pic de mémoire résidente du serveur : {result['rss_pic_serveur_mo']} Mo")
    print(f"taille médiane d'une page : {result['page_octets_median']} octets")
    print("pages les plus lentes :", result["pages_les_plus_lentes"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
