"""The synthetic SIRENE generator writes files shaped exactly like INSEE's, with a known truth.

Real files are read back with the csv module and DuckDB, as the pipeline will read them: a format
drift (header, quoting, line ends, identifiers) would otherwise only show up on real data.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from observatoire.core.identifiers import LA_POSTE_SIREN, luhn_valid
from observatoire.demo import synthetic
from observatoire.demo.synthetic import SyntheticSirene, generate_sirene, la_poste_siret_valid
from observatoire.demo.synthetic import units as synthetic_units
from observatoire.demo.synthetic import writers as synthetic_writers
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25

REFERENCE = synthetic.DEFAULT_REFERENCE_DIR
FIXTURES = Path(__file__).parents[1] / "fixtures" / "sirene"
MOIS = "2026-06"
END = "2026-05-31"  # last day of the month before the stock's month
N_UL = 2_000


def _reference(name: str) -> list[dict[str, str]]:
    with (REFERENCE / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


EPT_COMMUNES = [
    r["code_commune"] for r in _reference("ept_t12_grand_orly_seine_bievre_communes.csv")
]
COMMUNES = EPT_COMMUNES[:10]
NATURAL_PERSONS = {"1000", "1100", "1200", "1300", "1400", "1500", "1600", "1700", "1800", "1900"}
NAF_2025 = {r["code_naf2025"] for r in _reference("naf_2025_sous_classes.csv")}
NAF_IMAGES: dict[str, set[str]] = defaultdict(set)
for _row in _reference("naf_rev2_naf_2025.csv"):
    NAF_IMAGES[_row["code_naf_rev2"]].add(_row["code_naf2025"])

E = {name: i for i, name in enumerate(ETABLISSEMENT_V3_11_NAF25)}
U = {name: i for i, name in enumerate(UNITE_LEGALE_V3_11_NAF25)}
ND_ETAB = (
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
)


def _generate(tmp: Path, **kwargs: object) -> SyntheticSirene:
    args: dict[str, object] = {"n_unites_legales": N_UL, "mois": MOIS, "fmt": "csv"}
    args.update(kwargs)
    return generate_sirene(tmp, COMMUNES, **args)  # type: ignore[arg-type]


def _text(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            return zf.read(name).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _rows(path: Path) -> list[list[str]]:
    """All physical lines as parsed records (line n of the file = index n - 1)."""
    return list(csv.reader(io.StringIO(_text(path), newline="")))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSirene:
    return _generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def manifest(demo: SyntheticSirene) -> dict:
    return json.loads(demo.manifest.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def etab_rows(demo: SyntheticSirene) -> list[list[str]]:
    return _rows(demo.etablissements)


@pytest.fixture(scope="module")
def ul_rows(demo: SyntheticSirene) -> list[list[str]]:
    return _rows(demo.unites_legales)


def _defect_lines(manifest: dict, file: str) -> dict[int, dict]:
    return {d["line"]: d for d in manifest["defects"] if d["file"] == file}


def test_headers_are_the_insee_layouts(demo: SyntheticSirene) -> None:
    ul_header = demo.unites_legales.read_text(encoding="utf-8").split("\n", 1)[0]
    etab_header = demo.etablissements.read_text(encoding="utf-8").split("\n", 1)[0]
    assert ul_header == ",".join(UNITE_LEGALE_V3_11_NAF25)
    assert etab_header == ",".join(ETABLISSEMENT_V3_11_NAF25)


def test_csv_dialect_lf_utf8_quoted_only_when_needed(demo: SyntheticSirene) -> None:
    raw = demo.unites_legales.read_bytes() + demo.etablissements.read_bytes()
    assert b"\r" not in raw and not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("utf-8")
    for line in raw.decode().split("\n"):
        for quoted in re.findall(r'"((?:[^"]|"")*)"', line):
            assert "," in quoted or '"' in quoted, line  # no gratuitous quoting
    assert b',"SOCIETE FICTIVE DES TRAVAUX, BATIMENT ET RENOVATION 0' in raw
    assert b',"BAT B, ESCALIER 2",' in raw


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a", fmt="zip")
    second = _generate(tmp_path / "b", fmt="zip")
    for name in ("etablissements", "unites_legales", "manifest"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes(), name
    other = _generate(tmp_path / "c", fmt="zip", seed=1)
    assert other.etablissements.read_bytes() != first.etablissements.read_bytes()


def test_zip_holds_the_csv_insee_names(tmp_path: Path, demo: SyntheticSirene) -> None:
    zipped = _generate(tmp_path, fmt="zip")
    assert zipped.etablissements.name == "StockEtablissement_utf8.zip"
    assert zipped.unites_legales.name == "StockUniteLegale_utf8.zip"
    for path, member, plain in (
        (zipped.etablissements, "StockEtablissement_utf8.csv", demo.etablissements),
        (zipped.unites_legales, "StockUniteLegale_utf8.csv", demo.unites_legales),
    ):
        with zipfile.ZipFile(path) as zf:
            assert zf.namelist() == [member]
            assert zf.testzip() is None
            (info,) = zf.infolist()
            assert info.date_time == (2026, 6, 1, 0, 0, 0)  # fixed: bytes do not depend on time
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert str(info).find("filemode='-rw-r--r--'") > 0
            assert zf.read(member) == plain.read_bytes()
    m_zip = json.loads(zipped.manifest.read_text(encoding="utf-8"))
    m_csv = json.loads(demo.manifest.read_text(encoding="utf-8"))
    for kind in ("etablissements", "unites_legales"):
        assert m_zip["files"][kind]["csv_sha256"] == m_csv["files"][kind]["csv_sha256"]
    assert m_zip["counts"] == m_csv["counts"] and m_zip["defects"] == m_csv["defects"]


def test_slicing_the_write_does_not_change_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _generate(tmp_path / "whole", defects=False, chunk_rows=700)
    monkeypatch.setattr(synthetic_writers, "_SLICE_ROWS", 97)
    monkeypatch.setattr(synthetic_writers, "_MAX_PENDING_BYTES", 4096)
    sliced = _generate(tmp_path / "sliced", defects=False, chunk_rows=700)
    assert sliced.etablissements.read_bytes() == whole.etablissements.read_bytes()
    assert sliced.unites_legales.read_bytes() == whole.unites_legales.read_bytes()


def test_manifest_is_synthetic_and_counts_the_files(
    demo: SyntheticSirene,
    manifest: dict,
    etab_rows: list[list[str]],
    ul_rows: list[list[str]],
) -> None:
    assert manifest["synthetic"] is True and manifest["generator_version"]
    assert manifest["seed"] == 2026 and manifest["mois"] == MOIS
    assert demo.n_unites_legales == len(ul_rows) - 1 == N_UL
    assert demo.n_etablissements == len(etab_rows) - 1
    assert manifest["files"]["etablissements"]["data_lines"] == demo.n_etablissements
    counts = manifest["counts"]
    # Entity counts are those of the generated establishments: the duplicate is one more line.
    assert counts["etablissements"]["rows"] == demo.n_etablissements - 1
    defects = _defect_lines(manifest, "etablissements")
    clean = [r for i, r in enumerate(etab_rows[1:], start=2) if i not in defects]
    active = sum(r[E["etatAdministratifEtablissement"]] == "A" for r in clean)
    # Defects are injected into active rows (the truncated one has lost its state column).
    assert all(
        etab_rows[line - 1][E["etatAdministratifEtablissement"]] == "A"
        for line, d in defects.items()
        if d["kind"] != "colonnes_manquantes"
    )
    assert active + len(defects) - 1 == counts["etablissements"]["active"]
    ul_active = sum(r[U["etatAdministratifUniteLegale"]] == "A" for r in ul_rows[1:])
    assert ul_active == counts["unites_legales"]["active"]
    ul_p = sum(r[U["statutDiffusionUniteLegale"]] == "P" for r in ul_rows[1:])
    assert ul_p == counts["unites_legales"]["statut_diffusion_p"]
    by_cj = Counter(r[U["categorieJuridiqueUniteLegale"]] for r in ul_rows[1:])
    assert dict(by_cj) == counts["unites_legales"]["by_categorie_juridique"]


def test_defect_lines_point_at_the_malformed_rows(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    kinds = {d["kind"] for d in manifest["defects"]}
    assert kinds == {
        "siren_luhn_invalide",
        "siret_luhn_invalide",
        "siret_different_siren_nic",
        "commune_mal_formee",
        "date_impossible",
        "tranche_mal_formee",
        "siret_duplique",
        "colonne_en_trop",
        "colonnes_manquantes",
    }
    for line, d in _defect_lines(manifest, "etablissements").items():
        row = etab_rows[line - 1]
        assert row[E["siret"]] == d["siret"], d
        kind = d["kind"]
        if kind == "colonne_en_trop":
            assert len(row) == 55
        elif kind == "colonnes_manquantes":
            assert len(row) == 44
        else:
            assert len(row) == 54
        if d["column"]:
            assert row[E[d["column"]]] == d["value"], d
        if kind == "siret_luhn_invalide":
            assert not luhn_valid(row[E["siret"]]) and row[E["siren"]] != LA_POSTE_SIREN
        elif kind == "siret_different_siren_nic":
            assert row[E["siret"]] != row[E["siren"]] + row[E["nic"]]
        elif kind == "commune_mal_formee":
            assert not re.fullmatch(r"[0-9]{5}|2[AB][0-9]{3}", row[E["codeCommuneEtablissement"]])
        elif kind == "siret_duplique":
            assert etab_rows[line - 2] == row
    (ul_defect,) = _defect_lines(manifest, "unites_legales").values()
    row = ul_rows[ul_defect["line"] - 1]
    assert row[U["siren"]] == ul_defect["siren"] and not luhn_valid(row[U["siren"]])


def test_identifiers_are_luhn_valid_except_defects_and_la_poste(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    bad_ul = set(_defect_lines(manifest, "unites_legales"))
    sirens = [r[0] for i, r in enumerate(ul_rows[1:], start=2) if i not in bad_ul]
    assert all(re.fullmatch(r"\d{9}", s) and luhn_valid(s) for s in sirens)
    assert "000000000" not in sirens
    assert len(set(sirens)) == len(sirens) and sirens == sorted(sirens)
    bad_etab = set(_defect_lines(manifest, "etablissements"))
    for i, r in enumerate(etab_rows[1:], start=2):
        if i in bad_etab:
            continue
        siren, nic, siret = r[E["siren"]], r[E["nic"]], r[E["siret"]]
        assert siret == siren + nic and re.fullmatch(r"\d{14}", siret)
        if siren == LA_POSTE_SIREN:
            assert la_poste_siret_valid(siret)
        else:
            assert luhn_valid(siret), (i, siret)


def test_la_poste_establishments_follow_insee_exception(
    etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    (unit,) = [r for r in ul_rows[1:] if r[0] == LA_POSTE_SIREN]
    assert unit[U["categorieJuridiqueUniteLegale"]] == "5510"
    assert unit[U["etatAdministratifUniteLegale"]] == "A"
    poste = [r for r in etab_rows[1:] if r[E["siren"]] == LA_POSTE_SIREN]
    assert 3 <= len(poste) <= 5
    assert all(r[E["codeCommuneEtablissement"]] in COMMUNES for r in poste)
    sirets = [r[E["siret"]] for r in poste]
    failing = [s for s in sirets if not luhn_valid(s)]
    assert len(failing) >= 3
    assert all(sum(map(int, s)) % 5 == 0 for s in failing)
    assert all(la_poste_siret_valid(s) for s in sirets)
    assert not la_poste_siret_valid("35600000000049")  # sum 27, Luhn fails
    # The exception is La Poste's only: another SIREN with the same NIC stays invalid.
    other = next(s for s in (f"{k}0000000" for k in range(100, 1000)) if luhn_valid(s))
    assert not la_poste_siret_valid(other + failing[0][9:])


def test_luhn_helpers() -> None:
    assert luhn_valid("356000000") and luhn_valid("35600000000048")
    # Exactly one key digit completes a payload.
    assert sum(luhn_valid(f"12345678{d}") for d in range(10)) == 1
    assert sum(luhn_valid(f"1234567890123{d}") for d in range(10)) == 1
    assert not luhn_valid("35600000O00048") and not luhn_valid("")


def test_one_siege_per_unit_and_nic_siege_exists(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    bad = {d["line"] for d in manifest["defects"] if d["kind"] == "siret_duplique"}
    sieges: dict[str, list[str]] = defaultdict(list)
    for i, r in enumerate(etab_rows[1:], start=2):
        if i not in bad and r[E["etablissementSiege"]] == "true":
            sieges[r[E["siren"]]].append(r[E["nic"]])
    affected = {d["siren"] for d in manifest["defects"]}
    for r in ul_rows[1:]:
        siren = r[U["siren"]]
        if siren in affected or not luhn_valid(siren):
            continue
        assert sieges[siren] == [r[U["nicSiegeUniteLegale"]]], siren
    assert {r[E["etablissementSiege"]] for r in etab_rows[1:]} == {"true", "false"}


def test_closed_units_have_only_closed_establishments(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    closed = {r[0] for r in ul_rows[1:] if r[U["etatAdministratifUniteLegale"]] == "C"}
    employer = {r[0] for r in ul_rows[1:] if r[U["trancheEffectifsUniteLegale"]] not in ("", "NN")}
    (ul_defect,) = _defect_lines(manifest, "unites_legales").values()
    for r in etab_rows[1:]:
        if len(r) != 54 or r[E["siren"]] == ul_defect["original"]:
            continue
        if r[E["siren"]] in closed:
            assert r[E["etatAdministratifEtablissement"]] == "F"
        if r[E["caractereEmployeurEtablissement"]] == "O":
            assert r[E["siren"]] in employer
            assert r[E["etatAdministratifEtablissement"]] == "A"


def test_partially_diffusible_rows_are_masked(
    etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    p_etab = [r for r in etab_rows[1:] if r[E["statutDiffusionEtablissement"]] == "P"]
    o_etab = [r for r in etab_rows[1:] if r[E["statutDiffusionEtablissement"]] == "O"]
    assert p_etab and o_etab
    for r in p_etab:
        assert all(r[E[c]] == "[ND]" for c in ND_ETAB), r
        assert r[E["codeCommuneEtablissement"]] and r[E["codePostalEtablissement"]] != "[ND]"
    assert not any("[ND]" in r for r in o_etab if len(r) == 54)
    p_ul = [r for r in ul_rows[1:] if r[U["statutDiffusionUniteLegale"]] == "P"]
    assert p_ul
    for r in p_ul:
        if r[U["categorieJuridiqueUniteLegale"]] in NATURAL_PERSONS:
            assert r[U["nomUniteLegale"]] == r[U["prenom1UniteLegale"]] == "[ND]"
        else:
            assert r[U["denominationUniteLegale"]] == "[ND]"
    o_ul = [r for r in ul_rows[1:] if r[U["statutDiffusionUniteLegale"]] == "O"]
    assert not any("[ND]" in r for r in o_ul)


def test_values_follow_insee_conventions(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    date_re = re.compile(r"\d{4}-\d{2}-\d{2}")
    ts_re = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
    with (REFERENCE / "tranches_effectifs.csv").open(encoding="utf-8") as fh:
        tranches = {row["code"] for row in csv.DictReader(fh)} | {""}
    bad = set(_defect_lines(manifest, "etablissements"))
    former = manifest["drift"]["communes_anciennes"]["by_code"]
    unknown = manifest["drift"]["communes_inconnues"]["by_code"]
    for i, r in enumerate(etab_rows[1:], start=2):
        if i in bad:
            continue
        for col in ("dateCreationEtablissement", "dateDebut"):
            v = r[E[col]]
            assert v == "" or (date_re.fullmatch(v) and date.fromisoformat(v).isoformat() <= END)
        ts = r[E["dateDernierTraitementEtablissement"]]
        assert ts_re.fullmatch(ts) and ts[:10] <= END
        if r[E["dateCreationEtablissement"]]:
            assert r[E["dateCreationEtablissement"]] <= r[E["dateDebut"]] <= ts[:10]
        assert r[E["trancheEffectifsEtablissement"]] in tranches
        assert r[E["etatAdministratifEtablissement"]] in ("A", "F")
        assert r[E["caractereEmployeurEtablissement"]] in ("O", "N", "")
        commune = r[E["codeCommuneEtablissement"]]
        if commune in former:  # kept since the merger: the postal code is today's commune's
            assert r[E["etatAdministratifEtablissement"]] == "F"
            commune = former[commune]["code_commune_actuelle"]
        elif commune in unknown:
            assert r[E["etatAdministratifEtablissement"]] == "F"
        else:
            assert commune in COMMUNES
        assert r[E["codePostalEtablissement"]][:2] == commune[:2]
        _check_activity(r, "Etablissement", r[E["etatAdministratifEtablissement"]] == "A")
        if r[E["coordonneeLambertAbscisseEtablissement"]] not in ("", "[ND]"):
            assert re.fullmatch(r"\d{6,7}\.\d", r[E["coordonneeLambertAbscisseEtablissement"]])
    for r in ul_rows[1:]:
        assert r[U["etatAdministratifUniteLegale"]] in ("A", "C")
        assert r[U["economieSocialeSolidaireUniteLegale"]] in ("O", "N", "")
        created = r[U["dateCreationUniteLegale"]]
        assert created == "" or created <= END
        assert r[U["dateDernierTraitementUniteLegale"]][:10] <= END
        _check_activity(r, "UniteLegale", r[U["etatAdministratifUniteLegale"]] == "A")
        if r[U["categorieJuridiqueUniteLegale"]] in NATURAL_PERSONS:
            assert r[U["denominationUniteLegale"]] == "" and r[U["nomUniteLegale"]]
        else:
            assert r[U["nomUniteLegale"]] == "" and r[U["denominationUniteLegale"]]


def _check_activity(row: list[str], suffix: str, active: bool) -> None:
    """Main activity in the nomenclature it names; NAF 2025 column = image of the rév. 2 code."""
    index = E if suffix == "Etablissement" else U
    code = row[index[f"activitePrincipale{suffix}"]]
    nomenclature = row[index[f"nomenclatureActivitePrincipale{suffix}"]]
    naf25 = row[index[f"activitePrincipaleNAF25{suffix}"]]
    if not active:
        assert nomenclature in ("NAFRev2", "NAFRev1") and naf25 == "", row
        if nomenclature == "NAFRev1":
            assert re.fullmatch(r"\d{2}\.\d[A-Z]", code), row
    elif nomenclature == "NAFRev2":  # as the real stock: INSEE's correspondence, for every row
        assert naf25 in NAF_IMAGES[code], row
    else:
        assert nomenclature == "NAF2025" and code == naf25 and code in NAF_2025, row


@dataclass(frozen=True)
class Stock:
    """A territory-scale stock (the 24 communes of the EPT, 20,000 legal units), as read back."""

    manifest: dict
    ul: pl.DataFrame
    et: pl.DataFrame


def _frame(path: Path) -> pl.DataFrame:
    """An INSEE stock file (zipped or not) read with Polars, every column as text, "" if empty."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            source: bytes | Path = zf.read(name)
    else:
        source = path
    return pl.read_csv(source, infer_schema=False).with_columns(pl.all().fill_null(""))


@pytest.fixture(scope="module")
def territory(tmp_path_factory: pytest.TempPathFactory) -> Stock:
    result = generate_sirene(
        tmp_path_factory.mktemp("territory"),
        EPT_COMMUNES,
        n_unites_legales=20_000,
        mois=MOIS,
        defects=False,
    )
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    return Stock(manifest, _frame(result.unites_legales), _frame(result.etablissements))


def test_ess_content_exists_at_territory_scale(territory: Stock) -> None:
    counts = territory.manifest["counts"]
    ul = counts["unites_legales"]
    share = {cj: n / ul["rows"] for cj, n in ul["by_categorie_juridique"].items()}
    assert 0.55 <= sum(share.get(cj, 0) for cj in NATURAL_PERSONS) <= 0.62
    assert 0.05 <= share["9220"] <= 0.075
    assert 0.30 <= 1 - ul["active"] / ul["rows"] <= 0.40
    fam = ul["by_famille"]
    assert fam["association"]["statut_diffusion_p"] > 0  # ESS P units exist
    assert fam["cooperative"]["total"] > 0 and fam["mutuelle"]["total"] > 0
    et = counts["etablissements"]
    assert 1.35 <= et["rows"] / ul["rows"] <= 1.65
    assert 0.45 <= 1 - et["active"] / et["rows"] <= 0.60
    # Some association establishments sit in excluded activities (84.xx, 94.91Z, 94.20Z...).
    a = et["by_famille"]["association"]
    assert a["active_employer_outside_naf_exclusions"] < a["employer_active"]
    assert 0.08 <= a["employer_active"] / a["active"] <= 0.20
    assert et["ess_employer_active_outside_naf_exclusions"] > 50


def test_real_and_synthetic_files_read_alike_in_duckdb(tmp_path: Path) -> None:
    result = _generate(tmp_path, defects=False)
    con = duckdb.connect()

    def columns(path: Path) -> list[str]:
        rel = con.sql("select * from read_csv($p, all_varchar = true)", params={"p": str(path)})
        return rel.columns

    real = columns(FIXTURES / "sirene_stock_unite_legale_sample_2026.csv")
    ours = columns(result.unites_legales)
    assert real == ours == list(UNITE_LEGALE_V3_11_NAF25)
    assert columns(result.etablissements) == list(ETABLISSEMENT_V3_11_NAF25)
    n = con.sql(
        "select count(*) from read_csv($p, all_varchar = true)",
        params={"p": str(result.etablissements)},
    ).fetchone()
    assert n == (result.n_etablissements,)


def test_clean_files_have_no_defects(tmp_path: Path) -> None:
    result = _generate(tmp_path, defects=False)
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert manifest["defects"] == []
    rows = _rows(result.etablissements)
    assert {len(r) for r in rows} == {54}
    sirets = [r[E["siret"]] for r in rows[1:]]
    assert len(set(sirets)) == len(sirets)
    assert manifest["counts"]["etablissements"]["rows"] == result.n_etablissements


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        _generate(tmp_path, mois="2026-6")
    with pytest.raises(ValueError, match="inconnus"):
        generate_sirene(tmp_path, ["99999"], n_unites_legales=100, mois=MOIS)
    with pytest.raises(ValueError, match="chunk_rows"):
        _generate(tmp_path, chunk_rows=0)


# ---------------------------------------------------------------------------------------------
# Nomenclature drift: codes outside today's nomenclatures, in realistic shares (issue 12)
# ---------------------------------------------------------------------------------------------

CJ_REFERENCE = _reference("categories_juridiques_n3.csv")
CJ_KNOWN = {r["code_n3"] for r in CJ_REFERENCE}
CJ_REMOVED = {r["code_n3"] for r in CJ_REFERENCE if r["supprime"] == "true"}
NAF_EXCLUSIONS = {r["code_naf"] for r in _reference("ess_naf_exclusions.csv")}
NAF_2025_EXCLUSIONS = {image for c in NAF_EXCLUSIONS for image in NAF_IMAGES[c]}
COG = {r["code_commune"] for r in _reference("cog_communes.csv")}
ANCIENNES = {r["code_commune_ancienne"]: r for r in _reference("cog_communes_anciennes.csv")}


def _by_code(df: pl.DataFrame, column: str) -> dict[str, int]:
    return dict(df.group_by(column).len().iter_rows())


def test_removed_and_unknown_legal_categories_in_realistic_shares(territory: Stock) -> None:
    ul, drift = territory.ul, territory.manifest["drift"]
    cj = "categorieJuridiqueUniteLegale"
    by_cj = _by_code(ul, cj)
    n = ul.height
    # The file carries, code by code, what the manifest says was planted.
    removed = {c: k for c, k in by_cj.items() if c in CJ_REMOVED}
    assert removed == drift["categories_juridiques_supprimees"]["by_code"]
    unknown = {c: k for c, k in by_cj.items() if c not in CJ_KNOWN}
    planted = drift["categories_juridiques_inconnues"]["by_code"]
    assert unknown == {c: v["rows"] for c, v in planted.items()}
    # SASU (5720) and SARL unipersonnelles (5498): among the most common categories, comparable
    # to SAS and SARL, and only on units registered before INSEE's current list.
    share = {c: by_cj[c] / n for c in ("5710", "5720", "5499", "5498")}
    assert 0.08 <= share["5720"] + share["5498"] <= 0.12
    assert 0.5 <= share["5720"] / share["5710"] <= 2 and 0.5 <= share["5498"] / share["5499"] <= 2
    assert {"5720", "5498"} <= set(sorted(by_cj, key=by_cj.__getitem__, reverse=True)[:8])
    sasu = ul.filter(pl.col(cj).is_in(["5720", "5498"]))
    assert (sasu["dateCreationUniteLegale"] < "2022-09-01").all()
    # Former codes of natural persons: a small share of natural persons registered before 2008.
    old = ul.filter(pl.col(cj).is_in(sorted(NATURAL_PERSONS - {"1000"})))
    assert 0.005 <= old.height / n <= 0.02 and old[cj].n_unique() >= 6
    assert (old["dateCreationUniteLegale"] < "2008-01-01").all()
    assert (old["denominationUniteLegale"] == "").all() and (old["nomUniteLegale"] != "").all()
    # A handful each of the other removed codes; the PTT ministry's services are all closed.
    for code in ("6412", "6413", "6414", "6588", "7130", "7510", "7520"):
        assert 2 <= by_cj.get(code, 0) <= 20, code
    assert set(ul.filter(pl.col(cj) == "7130")["etatAdministratifUniteLegale"]) == {"C"}
    # Unknown codes: well-formed, in no list, a couple flagged ESS.
    assert len(unknown) >= 3 and all(re.fullmatch(r"\d{4}", c) for c in unknown)
    flagged = ul.filter(
        ~pl.col(cj).is_in(sorted(CJ_KNOWN)) & (pl.col("economieSocialeSolidaireUniteLegale") == "O")
    )
    assert flagged.height >= 2 and flagged.height == sum(v["ess_o"] for v in planted.values())
    assert territory.manifest["counts"]["unites_legales"]["by_categorie_juridique"] == by_cj


def test_naf2025_main_activity_on_some_active_rows(territory: Stock) -> None:
    for df, suffix, key in (
        (territory.ul, "UniteLegale", "unites_legales"),
        (territory.et, "Etablissement", "etablissements"),
    ):
        code, naf25 = f"activitePrincipale{suffix}", f"activitePrincipaleNAF25{suffix}"
        in_2025 = pl.col(f"nomenclatureActivitePrincipale{suffix}") == "NAF2025"
        active = df.filter(pl.col(f"etatAdministratif{suffix}") == "A")
        main = active.filter(in_2025)
        assert df.filter(in_2025).height == main.height  # active rows only
        assert 0.03 <= main.height / active.height <= 0.08, key
        assert (main[code] == main[naf25]).all() and set(main[code]) <= NAF_2025
        truth = territory.manifest["drift"]["activite_naf2025"][key]
        assert main.height == truth["rows"] and _by_code(main, code) == truth["by_code"]
        # Some in the excluded activities (division 84, 94.xx), to exercise the exclusion rule.
        excluded = main.filter(pl.col(code).is_in(sorted(NAF_2025_EXCLUSIONS)))
        assert excluded.height == truth["rows_in_ess_naf_exclusions"] >= 3
    divisions = {c[:2] for c in excluded["activitePrincipaleEtablissement"]}
    assert divisions == {"84", "94"}


def _perimeter(ul: pl.DataFrame, et: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Active employer establishments with their ESS family and exclusion (in the nomenclature
    each row names), read from the files; and their count outside exclusions by family."""
    families = {r["code_cj"]: r["famille_ess"] for r in _reference("ess_categories_juridiques.csv")}
    units = ul.select(
        "siren", "categorieJuridiqueUniteLegale", "economieSocialeSolidaireUniteLegale"
    )
    code = pl.col("activitePrincipaleEtablissement")
    rows = (
        et.filter(
            (pl.col("etatAdministratifEtablissement") == "A")
            & (pl.col("caractereEmployeurEtablissement") == "O")
        )
        .join(units, on="siren")
        .with_columns(
            excluded=pl.when(pl.col("nomenclatureActivitePrincipaleEtablissement") == "NAF2025")
            .then(code.is_in(sorted(NAF_2025_EXCLUSIONS)))
            .otherwise(code.is_in(sorted(NAF_EXCLUSIONS))),
            famille=pl.col("categorieJuridiqueUniteLegale")
            .replace_strict(families, default=None)
            .fill_null(
                pl.when(pl.col("economieSocialeSolidaireUniteLegale") == "O")
                .then(pl.lit("societe_commerciale_ess"))
                .otherwise(pl.lit("hors_ess"))
            ),
        )
    )
    return rows, _by_code(rows.filter(~pl.col("excluded")), "famille")


def _truth_perimeter(manifest: dict) -> dict[str, int]:
    by_famille = manifest["counts"]["etablissements"]["by_famille"]
    truth = {f: v["active_employer_outside_naf_exclusions"] for f, v in by_famille.items()}
    return {f: v for f, v in truth.items() if v}


def test_naf2025_rows_keep_the_ess_perimeter(territory: Stock) -> None:
    """The truth is computed on the NAF rév. 2 codes; read in either nomenclature, it is equal."""
    rows, found = _perimeter(territory.ul, territory.et)
    moved = rows.filter(pl.col("nomenclatureActivitePrincipaleEtablissement") == "NAF2025")
    assert moved.filter("excluded").height > 0
    assert found == _truth_perimeter(territory.manifest)


def test_only_rows_whose_exclusion_status_holds_move_to_naf2025(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every active row moved that can be, the rows left in NAF rév. 2 are the 93.29Z whose
    image is 84.25Y (beach lifeguards: excluded in NAF 2025 only), and the perimeter holds."""
    monkeypatch.setattr(synthetic_units, "_NAF2025_RATE", 1.0)
    monkeypatch.setattr(synthetic_units, "_NAF2025_RATE_NEW", 1.0)
    result = generate_sirene(
        tmp_path, EPT_COMMUNES, n_unites_legales=20_000, mois=MOIS, fmt="csv", defects=False
    )
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    ul, et = _frame(result.unites_legales), _frame(result.etablissements)
    stayed = ul.filter(
        (pl.col("etatAdministratifUniteLegale") == "A")
        & (pl.col("nomenclatureActivitePrincipaleUniteLegale") == "NAFRev2")
        & (pl.col("siren") != LA_POSTE_SIREN)
    )
    assert stayed.height > 0
    assert set(stayed["activitePrincipaleUniteLegale"]) == {"93.29Z"}
    assert set(stayed["activitePrincipaleNAF25UniteLegale"]) == {"84.25Y"}
    assert _perimeter(ul, et)[1] == _truth_perimeter(manifest)


def test_nafrev1_only_on_rows_closed_before_2008(territory: Stock) -> None:
    for df, suffix, key, closed in (
        (territory.ul, "UniteLegale", "unites_legales", "C"),
        (territory.et, "Etablissement", "etablissements", "F"),
    ):
        code = f"activitePrincipale{suffix}"
        rev1 = df.filter(pl.col(f"nomenclatureActivitePrincipale{suffix}") == "NAFRev1")
        assert set(rev1[f"etatAdministratif{suffix}"]) == {closed}
        assert (rev1["dateDebut"] < "2008-01-01").all()  # the closed period starts at closure
        assert all(re.fullmatch(r"\d{2}\.\d[A-Z]", c) for c in rev1[code])
        n_closed = df.filter(pl.col(f"etatAdministratif{suffix}") == closed).height
        assert 0.05 <= rev1.height / n_closed <= 0.5
        truth = territory.manifest["drift"]["activite_nafrev1"][key]
        assert rev1.height == truth["rows"] and _by_code(rev1, code) == truth["by_code"]


def _ascii_upper(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()


def test_former_and_unknown_communes_on_closed_establishments(territory: Stock) -> None:
    commune = pl.col("codeCommuneEtablissement")
    elsewhere = territory.et.filter(~commune.is_in(EPT_COMMUNES))
    former = elsewhere.filter(commune.is_in(sorted(ANCIENNES)))
    unknown = elsewhere.filter(~commune.is_in(sorted(ANCIENNES)) & ~commune.is_in(sorted(COG)))
    assert elsewhere.height == former.height + unknown.height
    assert set(elsewhere["etatAdministratifEtablissement"]) == {"F"}
    # Former codes: kept because the establishment closed before its commune merged.
    drift = territory.manifest["drift"]
    planted = drift["communes_anciennes"]
    assert _by_code(former, "codeCommuneEtablissement") == {
        c: v["rows"] for c, v in planted["by_code"].items()
    }
    inside = 0
    for row in former.iter_rows(named=True):
        ref = ANCIENNES[row["codeCommuneEtablissement"]]
        assert row["dateDebut"] < ref["date_effet"]
        assert row["libelleCommuneEtablissement"] == _ascii_upper(ref["libelle_ancienne"])
        if ref["code_commune_actuelle"] in EPT_COMMUNES:
            inside += 1
        else:  # a merger of the SIRENE era in the territory's départements, attributed elsewhere
            assert row["codeCommuneEtablissement"][:2] in ("91", "94")
            assert ref["date_effet"] >= "1973-01-01"
            assert row["etablissementSiege"] == "false"  # its unit stays readable
            assert row["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2"
    assert inside == planted["rows_dans_territoire"] >= 10
    assert former.height - inside == planted["rows_hors_territoire"]
    assert former.height - inside <= inside
    # Unknown codes: well-formed, in the territory's départements, a handful of rows.
    assert 1 <= unknown.height <= 9
    assert all(re.fullmatch(r"(91|94)\d{3}", c) for c in unknown["codeCommuneEtablissement"])
    truth = drift["communes_inconnues"]
    assert _by_code(unknown, "codeCommuneEtablissement") == truth["by_code"]
    assert unknown.height == truth["rows"]


def test_small_stocks_and_small_chunks_still_carry_every_kind(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a", chunk_rows=700)
    second = _generate(tmp_path / "b", chunk_rows=700)
    drift = json.loads(first.manifest.read_text(encoding="utf-8"))["drift"]
    assert drift == json.loads(second.manifest.read_text(encoding="utf-8"))["drift"]
    removed = drift["categories_juridiques_supprimees"]["by_code"]
    assert {"5720", "5498", "6412", "6413", "6414", "6588", "7130", "7510", "7520"} <= set(removed)
    unknown = drift["categories_juridiques_inconnues"]["by_code"]
    assert len(unknown) == 3 and sum(v["ess_o"] for v in unknown.values()) >= 2
    assert drift["activite_naf2025"]["etablissements"]["rows_in_ess_naf_exclusions"] >= 3
    assert drift["activite_nafrev1"]["etablissements"]["rows"] > 0
    assert drift["communes_inconnues"]["rows"] == 6  # 91 and 94, 3 rows each


def test_defects_never_fall_on_drift_rows(
    manifest: dict, etab_rows: list[list[str]], ul_rows: list[list[str]]
) -> None:
    """A defect quarantines its row: on a drift row, the drift table would miss one."""
    for line, d in _defect_lines(manifest, "etablissements").items():
        row = etab_rows[line - 1]
        if d["kind"] != "commune_mal_formee":
            assert row[E["codeCommuneEtablissement"]] in COMMUNES, d
        if d["kind"] != "colonnes_manquantes":
            assert row[E["nomenclatureActivitePrincipaleEtablissement"]] == "NAFRev2", d
    for d in _defect_lines(manifest, "unites_legales").values():
        row = ul_rows[d["line"] - 1]
        assert row[U["categorieJuridiqueUniteLegale"]] in CJ_KNOWN - CJ_REMOVED
        assert row[U["nomenclatureActivitePrincipaleUniteLegale"]] == "NAFRev2"
