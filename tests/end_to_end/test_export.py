"""Partner export bundles: a real refresh on a small fixture, exported, then checked file by file.

The snapshot is built once per module (two months of hand-written stock, a few communes of
EPT T12, partially diffusible units with distinctive names). Identifiers are fixed here rather
than drawn from `sirene_builder`'s session-wide counter, so the golden files do not depend on
which tests ran before. Regenerate the golden files with:

    UPDATE_GOLDEN=1 uv run pytest tests/test_export.py
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import frictionless
import pytest
from conftest import ROOT
from sirene_builder import etab_row, luhn_key, siret_for, ul_row, write_stock
from test_pipelines import write_network, write_wave

from observatoire import refresh
from observatoire.cli import main
from observatoire.core import catalogue
from observatoire.core.settings import Settings
from observatoire.publication import export, publish

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "export"
MOIS, MOIS_AVANT = "2026-11", "2026-10"
T12 = "ept:T12"
BUNDLE = f"observatoire-ess_ept-T12_{MOIS}.zip"
GOLDEN_BUNDLE = GOLDEN / BUNDLE.removesuffix(".zip")  # the zip's entries, extracted

# Names and identifiers that must never leave the warehouse (statut de diffusion P).
P_NAMES = ("ZORGLUB CONFIDENTIEL", "ENSEIGNE CACHEE QWERTY", "PLANQUE DISCRETE", "RUE SECRETE")
PUBLIC_NAME = "ASSOCIATION LES TILLEULS VITRY"


SHOP = "47.11F"  # a supermarket, outside the ESS


def _siren(i: int) -> str:
    body = f"{80_000_000 + i:08d}"
    return body + luhn_key(body)


def _stock() -> tuple[list[dict], list[dict]]:
    """Three communes of T12; associations, a SCOP, a company outside the ESS; P units."""
    uls, ets = [], []

    def add(i, commune, ville, cp, tranche="NN", cj="9220", ul=None, et=None):
        siren = _siren(i)
        employeur = "O" if tranche not in ("NN", "00") else "N"
        uls.append(ul_row(siren, categorieJuridiqueUniteLegale=cj, **(ul or {})))
        ets.append(
            etab_row(
                siren,
                codeCommuneEtablissement=commune,
                libelleCommuneEtablissement=ville,
                codePostalEtablissement=cp,
                trancheEffectifsEtablissement=tranche,
                anneeEffectifsEtablissement="2024" if tranche != "NN" else "",
                caractereEmployeurEtablissement=employeur,
                **(et or {}),
            )
        )
        return siren

    add(1, "94081", "VITRY-SUR-SEINE", "94400", "01", ul={"denominationUniteLegale": PUBLIC_NAME})
    add(
        2, "94081", "VITRY-SUR-SEINE", "94400", "03", et={"dateCreationEtablissement": "2024-03-15"}
    )
    add(3, "94081", "VITRY-SUR-SEINE", "94400", "12", cj="5458")
    add(4, "94081", "VITRY-SUR-SEINE", "94400", "02", cj="5710",
        ul={"economieSocialeSolidaireUniteLegale": "N", "activitePrincipaleUniteLegale": SHOP},
        et={"activitePrincipaleEtablissement": SHOP,
            "activitePrincipaleNAF25Etablissement": "47.11Y"})  # fmt: skip
    add(5, "94041", "IVRY-SUR-SEINE", "94200", "01", et={"dateCreationEtablissement": "2025-06-01"})
    add(6, "94041", "IVRY-SUR-SEINE", "94200", "11",
        ul={"statutDiffusionUniteLegale": "P", "denominationUniteLegale": P_NAMES[0]},
        et={"statutDiffusionEtablissement": "P", "enseigne1Etablissement": P_NAMES[1],
            "libelleVoieEtablissement": P_NAMES[3]})  # fmt: skip
    add(
        7,
        "94041",
        "IVRY-SUR-SEINE",
        "94200",
        "NN",
        et={"statutDiffusionEtablissement": "P", "enseigne1Etablissement": P_NAMES[2]},
    )
    add(8, "91027", "ATHIS-MONS", "91200", "21", cj="9300")
    add(9, "91027", "ATHIS-MONS", "91200", "00")
    return uls, ets


def _sources(inbox: Path) -> None:
    """A questionnaire wave and a ressourcerie list, a P unit answering under its own name."""
    answers = [
        (1, PUBLIC_NAME, "Oui", "Recruter;Se former"),
        (2, "ASSO DEUX", "Non", "Financer un projet"),
        (5, "ASSO IVRY", "Oui", "Trouver des locaux"),
        (6, P_NAMES[0], "Oui", "Recruter"),
    ]
    write_wave(
        inbox,
        "2026-printemps",
        [
            ["2026-04-02 10:00", siret_for(_siren(i)), name, "94400", "Vitry-sur-Seine",
             f"contact{i}@exemple.org", locaux, prioritaires]
            for i, name, locaux, prioritaires in answers
        ],
    )  # fmt: skip
    write_network(
        inbox,
        "ressourceries",
        [
            [siret_for(_siren(1)), PUBLIC_NAME, "12 RUE DE LA REPUBLIQUE", "94400", "VITRY", ""],
            [siret_for(_siren(6)), P_NAMES[0], P_NAMES[3], "94200", "IVRY", ""],
            ["", "RESSOURCERIE INCONNUE", "1 RUE X", "94200", "IVRY-SUR-SEINE", ""],
        ],
    )


def _settings(base: Path) -> Settings:
    """Same as conftest's `settings`, for a module-wide snapshot."""
    return Settings(
        data_dir=base,
        warehouse=base / "warehouse" / "obs.duckdb",
        reference_dir=ROOT / "data" / "reference",
        download_dir=base / "sources",
        publication_dir=base / "publication",
        inbox_dir=base / "inbox",
        review_dir=base / "revue",
        territoire=T12,
        sirene_etablissements=str(base / "sirene" / "{mois}" / "StockEtablissement_utf8.csv"),
        sirene_unites_legales=str(base / "sirene" / "{mois}" / "StockUniteLegale_utf8.csv"),
        max_reject_rate=1.0,
        count_band=(0.001, 1000.0),
        drift_share_max=1.0,  # a few hand-written rows: see conftest
        drift_jump_max=1.0,
        quality_docs_dir=None,
    )


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Settings:
    """Two months refreshed and published for real; the last one is `courant`."""
    settings = _settings(tmp_path_factory.mktemp("snapshot"))
    uls, ets = _stock()
    _sources(settings.inbox_dir)
    for i, mois in enumerate((MOIS_AVANT, MOIS)):
        month_ets = ets if mois == MOIS else ets[:-1]  # one unit more in November
        write_stock(Path(settings.data_dir) / "sirene" / mois, uls, month_ets)
        refresh.refresh(settings, mois, run_id=f"golden{i + 1}")
    return settings


def _export(settings: Settings, out: Path, *specs: str, mois: str | None = None):
    return export.export(
        settings.publication_dir,
        out,
        territoires=list(specs or [T12]),
        mois=mois,
    )


@pytest.fixture(scope="module")
def bundle(snapshot, tmp_path_factory) -> tuple[Path, Path]:
    """The T12 bundle of the last month, and the folder it is extracted to."""
    out = tmp_path_factory.mktemp("export")
    (b,) = _export(snapshot, out)
    assert b.path.name == BUNDLE
    extracted = out / "extrait"
    with zipfile.ZipFile(b.path) as zf:
        zf.extractall(extracted)
    return b.path, extracted


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _schema(path: Path) -> frictionless.Schema:
    return frictionless.Schema.from_descriptor(json.loads(path.read_text(encoding="utf-8")))


def _rows(data: bytes, excel: bool) -> list[list[str]]:
    text = data.decode("utf-8-sig" if excel else "utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";" if excel else ","))


# --- schemas ----------------------------------------------------------------------------------


def test_every_csv_of_both_dialects_is_valid_against_its_table_schema(bundle):
    _, folder = bundle
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["taskNumber", "rowNumber", "fieldName", "type", "note"])
    names = sorted(catalogue.indicators())
    # one task per CSV, every CSV tied to its own schema and dialect
    assert len(report.tasks) == 2 * len(names)
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    for res in package["resources"]:
        excel = res["path"].startswith("csv_excel/")
        name = Path(res["path"]).stem
        assert res["schema"] == f"schemas/{name}{'.excel' if excel else ''}.json"
        assert res["dialect"] == {"delimiter": ";" if excel else ","}
        # and each CSV against its schema file alone, as a partner would
        dialect = frictionless.Dialect(
            controls=[frictionless.formats.CsvControl(delimiter=";" if excel else ",")]
        )
        single = frictionless.Resource(
            res["path"],
            schema=_schema(folder / res["schema"]),
            dialect=dialect,
            encoding=res["encoding"],
            basepath=str(folder),
        ).validate()
        assert single.valid, (res["path"], single.flatten(["rowNumber", "fieldName", "note"]))


def test_schemas_follow_the_schema_data_gouv_fr_convention(bundle):
    _, folder = bundle
    definitions = catalogue.column_definitions()
    for name, ind in catalogue.indicators().items():
        for suffix in ("", ".excel"):
            path = f"schemas/{name}{suffix}.json"
            checked = frictionless.validate(path, type="schema", basepath=str(folder))
            assert checked.valid, (path, checked.flatten(["note"]))
            schema = json.loads((folder / path).read_text("utf-8"))
            for key in ("$schema", "name", "title", "description", "version", "created"):
                assert schema[key], (name, key)
            assert schema["lastModified"] == f"{MOIS}-01"
            assert schema["licenses"][0]["name"] == "etalab-2.0"
            assert schema["missingValues"] == [""]
            assert [f["name"] for f in schema["fields"]] == list(ind.colonnes)
            assert schema["primaryKey"] == list(export.dimensions(ind))
            for field in schema["fields"]:
                assert field["description"] == definitions[field["name"]]
                assert (field.get("decimalChar") == ",") == (
                    suffix == ".excel" and field["type"] == "number"
                )
                if field["name"] in schema["primaryKey"]:
                    assert field["constraints"]["required"] is True
            fields = {f["name"]: f for f in schema["fields"]}
            assert fields["mois"]["constraints"]["pattern"] == r"^\d{4}-\d{2}$"
            if "niveau" in fields:
                assert "ept" in fields["niveau"]["constraints"]["enum"]
    counts = json.loads((folder / "schemas" / "etablissements_actifs.json").read_text("utf-8"))
    (nb,) = [f for f in counts["fields"] if f["name"] == "nb_etablissements"]
    assert nb["type"] == "integer" and nb["constraints"]["minimum"] == 0


@pytest.mark.parametrize(
    ("path", "column", "value", "error"),
    [
        ("csv/etablissements_actifs.csv", "nb_etablissements", "douze", "type-error"),
        ("csv/etablissements_actifs.csv", "niveau", "", "constraint-error"),
        ("csv_excel/emplois_salaries_estimes.csv", "emplois_central", "1.5x", "type-error"),
        ("csv/etablissements_employeurs.csv", "nb_etablissements_employeurs", "-3",
         "constraint-error"),
    ],
)  # fmt: skip
def test_validation_reports_a_corrupted_copy(bundle, tmp_path, path, column, value, error):
    _, folder = bundle
    copy = tmp_path / "copie"
    shutil.copytree(folder, copy)
    excel = path.startswith("csv_excel/")
    rows = _rows((copy / path).read_bytes(), excel)
    rows[1][rows[0].index(column)] = value
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=";" if excel else ",", lineterminator="\n").writerows(rows)
    (copy / path).write_bytes((b"\xef\xbb\xbf" if excel else b"") + buf.getvalue().encode())
    schema = f"schemas/{Path(path).stem}{'.excel' if excel else ''}.json"
    report = frictionless.Resource(
        path,
        schema=_schema(copy / schema),
        dialect=frictionless.Dialect(
            controls=[frictionless.formats.CsvControl(delimiter=";" if excel else ",")]
        ),
        encoding="utf-8-sig" if excel else "utf-8",
        basepath=str(copy),
    ).validate()
    assert not report.valid
    assert [error, column] in report.flatten(["type", "fieldName"])
    # the package sees it too (schema error, and the sha256 no longer matches)
    whole = frictionless.validate(str(copy / "datapackage.json"))
    types = {t for (t,) in whole.flatten(["type"])}
    assert {error, "hash-count"} <= types


# --- golden files -----------------------------------------------------------------------------


def test_bundle_matches_the_golden_files(bundle):
    path, _ = bundle
    entries = _entries(path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, data in entries.items():
            target = GOLDEN_BUNDLE / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    expected = {
        p.relative_to(GOLDEN_BUNDLE).as_posix(): p.read_bytes()
        for p in sorted(GOLDEN_BUNDLE.rglob("*"))
        if p.is_file()
    }
    assert sorted(entries) == sorted(expected), "files differ from tests/golden/export"
    for name in sorted(entries):
        if entries[name] != expected[name]:
            diff = difflib.unified_diff(
                expected[name].decode("utf-8").splitlines(),
                entries[name].decode("utf-8").splitlines(),
                "golden",
                "export",
                lineterm="",
            )
            pytest.fail(
                f"{name} differs from tests/golden/export; if intended: "
                "UPDATE_GOLDEN=1 uv run pytest tests/test_export.py\n" + "\n".join(list(diff)[:40])
            )


def test_two_exports_of_the_same_snapshot_are_byte_identical(snapshot, bundle, tmp_path):
    path, _ = bundle
    (again,) = _export(snapshot, tmp_path)
    assert again.path.read_bytes() == path.read_bytes()
    with zipfile.ZipFile(again.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(2026, 11, 1, 0, 0, 0)}


# --- dialects ---------------------------------------------------------------------------------


def test_both_dialects_hold_the_same_values(bundle):
    path, folder = bundle
    entries = _entries(path)
    commas = 0
    for name in catalogue.indicators():
        standard = entries[f"csv/{name}.csv"]
        excel = entries[f"csv_excel/{name}.csv"]
        assert not standard.startswith(b"\xef\xbb\xbf")
        assert excel.startswith(b"\xef\xbb\xbf")
        header = excel[3:].split(b"\n", 1)[0].decode()
        assert header == ";".join(catalogue.indicators()[name].colonnes)
        schema = json.loads((folder / "schemas" / f"{name}.json").read_text("utf-8"))
        numbers = {i for i, f in enumerate(schema["fields"]) if f["type"] == "number"}
        rows_s, rows_e = _rows(standard, False), _rows(excel, True)
        assert len(rows_s) == len(rows_e)
        for rs, re_ in zip(rows_s[1:], rows_e[1:], strict=True):
            for i, (a, b) in enumerate(zip(rs, re_, strict=True)):
                if i in numbers and a:
                    assert "," not in a and "," in b and "." not in b, (name, a, b)
                    assert float(a) == float(b.replace(",", "."))
                    commas += 1
                else:
                    assert a == b, (name, a, b)
    assert commas > 0, "the fixture must produce decimal values"


# --- content: territory, secrecy, P units -----------------------------------------------------


def test_bundle_holds_only_the_territory_and_its_communes(snapshot, bundle, tmp_path):
    path, _ = bundle
    manifest = json.loads(_entries(path)["manifest.json"])
    communes = set(manifest["communes"])
    assert {"94081", "94041", "91027"} <= communes
    for name, data in _entries(path).items():
        if not name.startswith("csv/"):
            continue
        rows = _rows(data, False)
        header, body = rows[0], rows[1:]
        if "niveau" in header:
            n, c = header.index("niveau"), header.index("code_territoire")
            places = {(r[n], r[c]) for r in body}
            assert places <= {("ept", "T12")} | {("commune", x) for x in communes}, name
        if "code_commune" in header:
            assert {r[header.index("code_commune")] for r in body} <= communes, name
        assert all(r[0] == MOIS for r in body), name
    # a commune's bundle holds that commune only, although the snapshot publishes others
    (vitry,) = _export(snapshot, tmp_path, "commune:94081")
    for name, data in _entries(vitry.path).items():
        if name.startswith("csv/"):
            rows = _rows(data, False)
            if "code_territoire" in rows[0]:
                i = rows[0].index("code_territoire")
                assert {r[i] for r in rows[1:]} <= {"94081"}, name
            if "code_commune" in rows[0]:
                i = rows[0].index("code_commune")
                assert {r[i] for r in rows[1:]} <= {"94081"}, name
    rows = _rows(_entries(vitry.path)["csv/annuaire_ess.csv"], False)
    assert PUBLIC_NAME in {r[rows[0].index("denomination")] for r in rows[1:]}


def test_no_partially_diffusible_unit_is_named_anywhere(snapshot, bundle):
    path, _ = bundle
    entries = _entries(path)
    blob = b"\n".join(entries.values()).decode("utf-8")
    # the check can fail: a diffusible unit's name is listed, and the P names were in the input
    assert PUBLIC_NAME in blob
    stock = (Path(snapshot.data_dir) / "sirene" / MOIS / "StockEtablissement_utf8.csv").read_text()
    stock += (Path(snapshot.data_dir) / "sirene" / MOIS / "StockUniteLegale_utf8.csv").read_text()
    hidden = [*P_NAMES, _siren(6), _siren(7), siret_for(_siren(6)), siret_for(_siren(7))]
    for needle in hidden:
        assert needle in stock
        assert needle not in blob, needle
    # counted all the same: Ivry's three units, P ones included
    rows = _rows(entries["csv/etablissements_actifs.csv"], False)
    h = rows[0]
    (ivry,) = [
        r
        for r in rows[1:]
        if r[h.index("code_territoire")] == "94041"
        and all(r[h.index(c)] == "ensemble" for c in ("perimetre", "famille", "section_naf"))
        and r[h.index("tranche_effectifs")] == "ensemble"
    ]
    if "statut_secret" in h and ivry[h.index("statut_secret")] != "publie":
        assert ivry[h.index("nb_etablissements")] == ""  # secret: counted, not shown
    else:
        assert ivry[h.index("nb_etablissements")] == "3"


SECRET_ON_MAIN = all(
    set(export.SECRET_COLUMNS) <= set(i.colonnes)
    for n, i in catalogue.indicators().items()
    if n != export.LISTING
)


@pytest.mark.xfail(
    not SECRET_ON_MAIN,
    reason="contract issue 5 §1: statut_secret/motif_secret not on main yet",
    strict=True,
)
def test_secret_cells_have_empty_measures(bundle):
    path, folder = bundle
    entries = _entries(path)
    for name, ind in catalogue.indicators().items():
        if name == export.LISTING:
            continue
        assert set(export.SECRET_COLUMNS) <= set(ind.colonnes), name
        rows = _rows(entries[f"csv/{name}.csv"], False)
        h = rows[0]
        dims = set(export.dimensions(ind))
        measures = [i for i, c in enumerate(h) if c not in dims and c not in export.SECRET_COLUMNS]
        status = h.index("statut_secret")
        for r in rows[1:]:
            assert r[status] in export.SECRET_STATUSES
            if r[status] != "publie":
                # the secret figures are empty; public ones of the row (the ESS establishments
                # a response rate is computed on) stay
                assert any(r[i] == "" for i in measures), (name, r)
                assert r[h.index("motif_secret")] == ""  # « secret » and nothing more
            if not ind.confidentiel:
                assert r[status] == "publie", (name, r)
    readme = entries["LISEZMOI.md"].decode()
    assert "SECRET STATISTIQUE NON APPLIQUÉ" not in readme


def test_readme_in_french_says_month_sources_units_secrecy_and_licence(bundle):
    path, _ = bundle
    entries = _entries(path)
    readme = entries["LISEZMOI.md"].decode("utf-8")
    for text in (
        "Grand-Orly Seine Bièvre",
        "Vitry-sur-Seine (94081)",
        MOIS,
        "Sirene",
        "questionnaire",
        "réseaux",
        "docs/methode.md",
        "moins de 3 répondants",
        "secret secondaire",
        "décret n° 2022-1014",
        "statut de diffusion `P`",
        "Licence Ouverte",
        "virgule décimale",
    ):
        assert text in readme, text
    for name, ind in catalogue.indicators().items():
        assert ind.unite_de_compte in readme
        assert f"`csv/{name}.csv`" in readme
    # a fixture is not synthetic; the demo's bundle says so (tests/test_end_to_end.py)
    assert "SYNTHÉTIQUES" not in readme
    manifest = json.loads(entries["manifest.json"])
    assert manifest["donnees_synthetiques"] is False
    for name, meta in manifest["fichiers"].items():
        assert meta["octets"] == len(entries[name])
        if name.endswith(".csv"):
            assert meta["lignes"] == len(_rows(entries[name], "excel" in name)) - 1


def test_an_earlier_month_of_the_snapshot_can_be_exported(snapshot, tmp_path):
    (b,) = _export(snapshot, tmp_path, mois=MOIS_AVANT)
    assert b.path.name == f"observatoire-ess_ept-T12_{MOIS_AVANT}.zip"
    entries = _entries(b.path)
    rows = _rows(entries["csv/etablissements_actifs.csv"], False)
    assert len(rows) > 1 and {r[0] for r in rows[1:]} == {MOIS_AVANT}
    # the listing exists for the published month only
    assert len(_rows(entries["csv/annuaire_ess.csv"], False)) == 1


def test_an_older_snapshot_without_its_territories_is_refused(snapshot, bundle, tmp_path):
    """The bundle reads the snapshot only: the communes of each territory come from its
    `indicators.territoires`. A snapshot published before that table existed gets a French
    error saying what to do, not a guess from the warehouse."""
    live = publish.current(snapshot.publication_dir)
    assert live is not None
    publication = tmp_path / "publication"
    copy = publication / live.name
    shutil.copytree(live, copy)
    publish.switch_current(publication, copy)
    (b,) = export.export(publication, tmp_path / "sortie", territoires=[T12])
    got, expected = _entries(b.path), _entries(bundle[0])
    for name in expected:
        if name.startswith(("csv/", "csv_excel/")):
            assert got[name] == expected[name], name
    with duckdb.connect(str(copy / "indicateurs.duckdb")) as con:
        con.execute("drop table indicators.territoires")
    with pytest.raises(export.ExportError, match="indicators.territoires.*observatoire refresh"):
        export.export(publication, tmp_path / "sortie2", territoires=[T12])


# --- atomicity --------------------------------------------------------------------------------


def test_a_failing_write_leaves_no_partial_zip(snapshot, bundle, tmp_path):
    """Out of disk quota (RLIMIT_FSIZE) mid-write: the previous bundle stays, no leftovers."""
    path, _ = bundle
    out = tmp_path / "sortie"
    out.mkdir()
    shutil.copyfile(path, out / BUNDLE)
    before = (out / BUNDLE).read_bytes()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    env = {
        **os.environ,
        "OBSERVATOIRE_DATA_DIR": str(snapshot.data_dir),
        "OBSERVATOIRE_WAREHOUSE": str(snapshot.warehouse),
    }
    done = subprocess.run(
        [sys.executable, "-m", "observatoire.cli", "export", "--territoire", T12,
         "--sortie", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, preexec_fn=limit, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "écriture impossible" in done.stderr and "File too large" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [BUNDLE]
    assert (out / BUNDLE).read_bytes() == before


KILL_MID_ZIP = """
import os, signal, sys, zipfile
from observatoire.cli import main
real, calls = zipfile.ZipFile.writestr, []
def writestr(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 10:  # ten entries in: the process dies without any cleanup
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)
zipfile.ZipFile.writestr = writestr
sys.exit(main(sys.argv[1:]))
"""


def test_an_export_killed_mid_zip_leaves_no_bundle_under_the_final_name(
    snapshot, tmp_path, monkeypatch
):
    out = tmp_path / "sortie"
    env = {
        **os.environ,
        "OBSERVATOIRE_DATA_DIR": str(snapshot.data_dir),
        "OBSERVATOIRE_WAREHOUSE": str(snapshot.warehouse),
    }
    args = ["export", "--territoire", T12, "--sortie", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", KILL_MID_ZIP, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr
    assert not (out / BUNDLE).exists()
    # only a hidden temporary file is left, and the next export writes the bundle
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in out.iterdir())
    for key, value in env.items():
        if key.startswith("OBSERVATOIRE_"):
            monkeypatch.setenv(key, value)
    assert main(args) == 0
    assert zipfile.ZipFile(out / BUNDLE).testzip() is None


def test_a_write_refused_at_the_rename_leaves_nothing_behind(snapshot, tmp_path):
    out = tmp_path / "sortie"
    (out / BUNDLE).mkdir(parents=True)  # a folder holds the final name: os.replace fails
    (out / BUNDLE / "occupe").write_text("x")
    with pytest.raises(OSError):
        _export(snapshot, out)
    assert sorted(p.name for p in out.iterdir()) == [BUNDLE]
    assert (out / BUNDLE).is_dir()


def test_export_reads_the_snapshot_only(snapshot, tmp_path):
    """The live snapshot is opened read-only: its files are untouched by an export."""
    live = publish.current(snapshot.publication_dir)
    assert live is not None
    before = {p: p.read_bytes() for p in live.rglob("*") if p.is_file()}
    _export(snapshot, tmp_path)
    assert {p: p.read_bytes() for p in live.rglob("*") if p.is_file()} == before
    with duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True) as con:
        assert export.months(con) == [MOIS_AVANT, MOIS]


# --- command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(snapshot, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(snapshot.data_dir))
    monkeypatch.setenv("OBSERVATOIRE_WAREHOUSE", str(snapshot.warehouse))
    return snapshot


def test_cli_writes_the_bundles(cli_env, bundle, tmp_path, capsys):
    path, _ = bundle
    code = main(
        ["export", "--territoire", T12, "--territoire", "commune:91027", "--sortie", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / BUNDLE).read_bytes() == path.read_bytes()
    assert (tmp_path / f"observatoire-ess_commune-91027_{MOIS}.zip").exists()
    assert "Grand-Orly Seine Bièvre" in capsys.readouterr().out


def test_cli_tous_writes_every_published_territory(cli_env, tmp_path):
    assert main(["export", "--tous", "--sortie", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [BUNDLE]
    assert main(["export", "--tous", "--communes", "--sortie", str(tmp_path / "b")]) == 0
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert BUNDLE in names and f"observatoire-ess_commune-94081_{MOIS}.zip" in names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--territoire", "ept:T99"], "Territoire inconnu dans la publication : « ept:T99 »"),
        (["--territoire", "commune:75056"], "Territoire inconnu"),
        (["--territoire", "T12"], "mal écrit : attendu NIVEAU:CODE"),
        (["--territoire", T12, "--mois", "2025-01"], "Le mois 2025-01 n'est pas dans la"),
        (["--territoire", T12, "--mois", "novembre"], "Mois « novembre » mal écrit"),
        ([], "Indiquez au moins un --territoire"),
    ],
)  # fmt: skip
def test_cli_refuses_in_french(cli_env, tmp_path, capsys, args, message):
    assert main(["export", *args, "--sortie", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []


def test_cli_without_publication(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    assert main(["export", "--territoire", T12]) == 1
    assert "Aucune publication" in capsys.readouterr().err
