"""The synthetic inbox (questionnaire wave, network lists) agrees with its truth file.

The files are read back with the csv and json modules, as a reader would, and every truth row is
checked against the record at its line and against the synthetic SIRENE stock it was drawn from:
a truth that pointed at the wrong line or the wrong SIRET would make every linkage test lie.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from observatoire.core.identifiers import luhn_valid
from observatoire.demo import synthetic
from observatoire.demo.synthetic import generate_sirene
from observatoire.demo.synthetic_sources import (
    DEFAULT_MODELES_DIR,
    EXPORT_NAME,
    TRUTH_HEADER,
    VAGUE,
    SourcesManifest,
    generate_sources,
)

MOIS = "2026-06"
with (synthetic.DEFAULT_REFERENCE_DIR / "ept_t12_grand_orly_seine_bievre_communes.csv").open(
    encoding="utf-8"
) as fh:
    COMMUNES = [row["code_commune"] for row in csv.DictReader(fh)][:10]
TAXONOMY = {
    "locaux", "recrutement", "rh_appui", "financement", "commande_publique",
    "cooperation_mutualisation", "visibilite_communication", "formation", "autre",
}  # fmt: skip
MAPPING = tomllib.loads((DEFAULT_MODELES_DIR / "correspondance.toml").read_text("utf-8"))
SIAE_DECL = tomllib.loads((DEFAULT_MODELES_DIR / "reseaux" / "siae.toml").read_text("utf-8"))
RESS_DECL = tomllib.loads(
    (DEFAULT_MODELES_DIR / "reseaux" / "ressourceries.toml").read_text("utf-8")
)
WAVE_FILE = Path("questionnaires") / VAGUE / EXPORT_NAME


@pytest.fixture(scope="module")
def sirene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sirene")
    generate_sirene(out, COMMUNES, n_unites_legales=20_000, mois=MOIS)
    return out


@pytest.fixture(scope="module")
def run(sirene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SourcesManifest, Path]:
    root = tmp_path_factory.mktemp("run")
    manifest = generate_sources(
        sirene_dir, root / "inbox", root / "verite" / "verite.csv", mois=MOIS
    )
    return manifest, root


@pytest.fixture(scope="module")
def inbox(run: tuple[SourcesManifest, Path]) -> Path:
    return run[1] / "inbox"


@pytest.fixture(scope="module")
def truth(run: tuple[SourcesManifest, Path]) -> list[dict[str, str]]:
    with run[0].truth_path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def etabs(sirene_dir: Path) -> dict[str, dict[str, str]]:
    """The stock's establishments by SIRET, with their legal unit's name columns."""
    with zipfile.ZipFile(sirene_dir / "StockUniteLegale_utf8.zip") as zf:
        text = zf.read(zf.namelist()[0]).decode("utf-8")
    units = {r["siren"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    with zipfile.ZipFile(sirene_dir / "StockEtablissement_utf8.zip") as zf:
        text = zf.read(zf.namelist()[0]).decode("utf-8")
    out = {}
    for row in csv.DictReader(io.StringIO(text, newline="")):
        unit = units.get(row["siren"] or "", {})
        row["denominationUniteLegale"] = unit.get("denominationUniteLegale", "")
        row["nomUniteLegale"] = unit.get("nomUniteLegale", "")
        row["statutDiffusionUniteLegale"] = unit.get("statutDiffusionUniteLegale", "")
        out[row["siret"]] = row
    return out


def _records_by_line(text: str, delimiter: str) -> tuple[list[str], dict[int, list[str]]]:
    """Records keyed by the physical line they start on (header = 1), as the contract counts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    records: dict[int, list[str]] = {}
    start = reader.line_num + 1
    for record in reader:
        records[start] = record
        start = reader.line_num + 1
    return header, records


@pytest.fixture(scope="module")
def wave(inbox: Path) -> tuple[list[str], dict[int, dict[str, str]]]:
    text = (inbox / WAVE_FILE).read_bytes().decode("utf-8-sig")
    header, records = _records_by_line(text, ";")
    assert all(len(r) == len(header) for r in records.values())
    return header, {line: dict(zip(header, r, strict=True)) for line, r in records.items()}


@pytest.fixture(scope="module")
def siae(inbox: Path) -> tuple[list[str], dict[int, dict[str, str]]]:
    text = (inbox / "reseaux" / "siae.csv").read_bytes().decode("cp1252")
    header, records = _records_by_line(text, ";")
    return header, {line: dict(zip(header, r, strict=True)) for line, r in records.items()}


@pytest.fixture(scope="module")
def ressourceries(inbox: Path) -> list[dict[str, object]]:
    payload = json.loads((inbox / "reseaux" / "ressourceries.json").read_text("utf-8"))
    return payload[RESS_DECL["cle_json"]]


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _rows(truth: list[dict[str, str]], cle: str) -> list[dict[str, str]]:
    return [t for t in truth if t["cle_source"] == cle]


# ---------------------------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(
    sirene_dir: Path, run: tuple[SourcesManifest, Path], tmp_path: Path
) -> None:
    first_root = run[1]
    again = generate_sources(
        sirene_dir, tmp_path / "inbox", tmp_path / "verite" / "verite.csv", mois=MOIS
    )
    first = sorted(p.relative_to(first_root) for p in first_root.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert first == second and len(first) == 8
    for rel in first:
        assert (first_root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
    other = generate_sources(
        sirene_dir, tmp_path / "autre", tmp_path / "v2" / "verite.csv", mois=MOIS, seed=7
    )
    assert other.files != again.files


def test_inbox_layout_and_templates_copied(inbox: Path) -> None:
    wave_dir = inbox / "questionnaires" / VAGUE
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", VAGUE)
    assert sorted(p.name for p in wave_dir.iterdir()) == sorted(
        ["correspondance.toml", EXPORT_NAME]
    )
    assert (wave_dir / "correspondance.toml").read_bytes() == (
        DEFAULT_MODELES_DIR / "correspondance.toml"
    ).read_bytes()
    for name in ("siae", "ressourceries"):
        assert (inbox / "reseaux" / f"{name}.toml").read_bytes() == (
            DEFAULT_MODELES_DIR / "reseaux" / f"{name}.toml"
        ).read_bytes()
    assert (inbox / "reseaux" / SIAE_DECL["fichier"]).exists()
    assert (inbox / "reseaux" / RESS_DECL["fichier"]).exists()


def test_mapping_template_uses_the_taxonomy_only() -> None:
    for q in MAPPING["questions"]:
        assert q["type"] in ("choix_unique", "choix_multiple", "nombre", "texte")
        if "besoin" in q:
            assert q["besoin"] in TAXONOMY
        for need in q.get("options", {}).values():
            assert need in TAXONOMY
    cited = {q["besoin"] for q in MAPPING["questions"] if "besoin" in q}
    assert cited == TAXONOMY - {"autre"}


def test_encodings(inbox: Path) -> None:
    data = (inbox / WAVE_FILE).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert not data[3:].startswith(b"\xef\xbb\xbf")
    data.decode("utf-8")
    raw = (inbox / "reseaux" / "siae.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "É".encode("cp1252") in raw  # accents written in Windows-1252
    json_raw = (inbox / "reseaux" / "ressourceries.json").read_bytes()
    assert not json_raw.startswith(b"\xef\xbb\xbf")
    json.loads(json_raw.decode("utf-8"))


def test_wave_header_is_the_mapping_and_fields_are_quoted(
    inbox: Path, wave: tuple[list[str], dict[int, dict[str, str]]]
) -> None:
    header, records = wave
    ident = MAPPING["identification"]
    declared = [v for k, v in ident.items() if k != "donnees_personnelles"]
    declared += ident["donnees_personnelles"] + [q["colonne"] for q in MAPPING["questions"]]
    assert set(declared) <= set(header)
    text = (inbox / WAVE_FILE).read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0].startswith('"ID de la réponse";"Date de soumission"')
    assert text.endswith("\r\n")
    # one answer spans several physical lines
    assert any("\n" in v for r in records.values() for v in r.values())
    for record in records.values():
        assert re.fullmatch(r"2026-0[345]-\d\d \d\d:\d\d:\d\d", record["Date de soumission"])


def test_personal_and_contact_columns_are_present_and_filled(
    wave: tuple[list[str], dict[int, dict[str, str]]],
    siae: tuple[list[str], dict[int, dict[str, str]]],
    ressourceries: list[dict[str, object]],
) -> None:
    _, answers = wave
    name_col, mail_col, phone_col = MAPPING["identification"]["donnees_personnelles"]
    assert all(re.fullmatch(r"\S+( \S+)+", r[name_col]) for r in answers.values())
    mails = [r[mail_col] for r in answers.values() if r[mail_col]]
    assert len(mails) > 0.9 * len(answers)
    assert all(re.fullmatch(r"[a-z-]+\.[a-z-]+@exemple\.org", m) for m in mails)
    phones = [r[phone_col] for r in answers.values() if r[phone_col]]
    assert phones and all(re.fullmatch(r"0[67]( \d\d){4}", p) for p in phones)
    header, members = siae
    assert header == [
        "MESURE", "SIRET", "DENOMINATION_SOCIALE", "NUM_RUE", "NOM_RUE", "CODE_POSTAL",
        "COMMUNE", "TELEPHONE", "MAIL",
    ]  # fmt: skip
    assert sum(bool(m["TELEPHONE"]) for m in members.values()) > len(members) / 2
    assert sum("@" in m["MAIL"] for m in members.values()) > len(members) / 2
    # contact columns are not declared: they stay in raw
    assert not {"TELEPHONE", "MAIL"} & set(SIAE_DECL["colonnes"].values())
    assert all(set(RESS_DECL["colonnes"].values()) <= set(m) for m in ressourceries)
    assert all({"telephone", "courriel"} <= set(m) for m in ressourceries)


def test_truth_covers_every_record_once(
    run: tuple[SourcesManifest, Path],
    truth: list[dict[str, str]],
    wave: tuple[list[str], dict[int, dict[str, str]]],
    siae: tuple[list[str], dict[int, dict[str, str]]],
    ressourceries: list[dict[str, object]],
) -> None:
    manifest, root = run
    assert not manifest.truth_path.is_relative_to(root / "inbox")
    assert list(truth[0]) == list(TRUTH_HEADER)
    keys = [(t["source"], t["cle_source"], int(t["ligne"])) for t in truth]
    assert len(keys) == len(set(keys))
    assert {int(t["ligne"]) for t in _rows(truth, VAGUE)} == set(wave[1])
    assert {int(t["ligne"]) for t in _rows(truth, "siae")} == set(siae[1])
    ress_lines = {int(t["ligne"]) for t in _rows(truth, "ressourceries")}
    assert ress_lines == set(range(2, len(ressourceries) + 2))
    assert {t["source"] for t in truth} == {"questionnaire", "reseau"}
    assert 550 <= len(wave[1]) <= 650
    assert 70 <= len(siae[1]) <= 90
    assert 20 <= len(ressourceries) <= 30


def test_wave_identifiers_match_the_truth(
    truth: list[dict[str, str]],
    wave: tuple[list[str], dict[int, dict[str, str]]],
    etabs: dict[str, dict[str, str]],
) -> None:
    _, answers = wave
    ident = MAPPING["identification"]
    seen: Counter[str] = Counter()
    later: dict[str, list[str]] = defaultdict(list)
    for t in _rows(truth, VAGUE):
        later[t["siret_attendu"]].append(answers[int(t["ligne"])]["Date de soumission"])
    for t in _rows(truth, VAGUE):
        answer = answers[int(t["ligne"])]
        siret, cas, given = t["siret_attendu"], t["cas"], answer[ident["siret"]]
        seen[cas] += 1
        if siret:
            etab = etabs[siret]
            assert etab["etatAdministratifEtablissement"] == ("F" if cas == "ferme" else "A")
            assert answer[ident["code_postal"]] in ("", etab["codePostalEtablissement"])
        if cas in ("siret_ok", "ferme"):
            assert given == siret
        elif cas == "siret_espaces":
            assert " " in given and _digits(given) == siret
        elif cas == "cle_fausse":
            assert len(given) == 14 and given[:9] == siret[:9] and given != siret
            assert not luhn_valid(given)
        elif cas == "siren_seul":
            assert _digits(given) == siret[:9]
        elif cas == "nom_variante":
            assert given == "" and answer[ident["nom"]]
        elif cas == "diffusion_partielle":
            # counted, never named
            assert given == siret and answer[ident["nom"]] == ""
            assert answer[ident["adresse"]] == ""
            assert etabs[siret]["statutDiffusionEtablissement"] == "P"
        elif cas == "absent_sirene":
            assert siret == "" and given == "" and answer[ident["nom"]]
        elif cas == "siret_inconnu":
            assert siret == "" and luhn_valid(given) and given not in etabs
        elif cas == "doublon":
            # an earlier answer of a structure that answered again
            assert siret and max(later[siret]) > answer["Date de soumission"]
        else:
            raise AssertionError(f"cas inattendu {cas}")
    assert set(seen) == {
        "siret_ok", "siret_espaces", "cle_fausse", "siren_seul", "nom_variante",
        "diffusion_partielle", "ferme", "absent_sirene", "siret_inconnu", "doublon",
    }  # fmt: skip
    assert 0.03 <= seen["doublon"] / sum(seen.values()) <= 0.07


def test_named_structures_are_diffusible_and_names_are_variants(
    truth: list[dict[str, str]],
    wave: tuple[list[str], dict[int, dict[str, str]]],
    etabs: dict[str, dict[str, str]],
) -> None:
    _, answers = wave
    nom = MAPPING["identification"]["nom"]
    with_number = exact = total = 0
    for t in _rows(truth, VAGUE):
        name = answers[int(t["ligne"])][nom]
        assert "[ND]" not in name
        if not t["siret_attendu"] or t["cas"] == "diffusion_partielle":
            continue
        etab = etabs[t["siret_attendu"]]
        assert etab["statutDiffusionEtablissement"] == "O"
        assert etab["statutDiffusionUniteLegale"] == "O"
        reference = etab["denominationUniteLegale"] or etab["nomUniteLegale"]
        number = re.search(r"(\d+)$", reference)
        total += 1
        exact += name == reference
        if number is None or number.group(1).lstrip("0") in name:
            with_number += 1
    assert with_number > 0.9 * total
    assert 0.05 * total < exact < 0.4 * total


def test_networks_match_the_truth(
    truth: list[dict[str, str]],
    siae: tuple[list[str], dict[int, dict[str, str]]],
    ressourceries: list[dict[str, object]],
    etabs: dict[str, dict[str, str]],
) -> None:
    _, members = siae
    mesures: dict[str, set[str]] = defaultdict(set)
    cases: Counter[str] = Counter()
    for t in _rows(truth, "siae"):
        member = members[int(t["ligne"])]
        siret, cas, given = t["siret_attendu"], t["cas"], member["SIRET"]
        cases[cas] += 1
        assert member["MESURE"] in ("ACI", "AI", "EI", "ETTI", "EITI")
        if siret:
            mesures[siret].add(member["MESURE"])
            etab = etabs[siret]
            assert member["CODE_POSTAL"] == etab["codePostalEtablissement"]
            assert etab["etatAdministratifEtablissement"] == ("F" if cas == "ferme" else "A")
        if cas in ("siret_ok", "ferme", "doublon"):
            assert given == siret
        elif cas == "siret_espaces":
            assert " " in given and _digits(given) == siret
        elif cas == "cle_fausse":
            assert given[:9] == siret[:9] and not luhn_valid(given)
        elif cas in ("nom_variante", "absent_sirene"):
            assert given == "" and member["DENOMINATION_SOCIALE"]
        elif cas == "siret_inconnu":
            assert siret == "" and given not in etabs
        else:
            raise AssertionError(cas)
    assert cases["doublon"] >= 2 and cases["ferme"] >= 2 and cases["cle_fausse"] >= 2
    assert cases["nom_variante"] >= 2 and cases["siret_espaces"] >= 5
    # duplicates: the same SIRET under two measures
    assert sum(len(m) == 2 for m in mesures.values()) == cases["doublon"]

    ress = Counter()
    for t in _rows(truth, "ressourceries"):
        member = ressourceries[int(t["ligne"]) - 2]
        siret, cas = t["siret_attendu"], t["cas"]
        ress[cas] += 1
        if cas in ("siret_ok", "ferme"):
            assert member["siret"] == siret
        elif cas == "siret_espaces":
            assert _digits(str(member["siret"])) == siret
        elif cas in ("nom_variante", "absent_sirene", "doublon"):
            assert member["siret"] is None and member["nom"]
        if cas == "ferme":
            assert etabs[siret]["etatAdministratifEtablissement"] == "F"
        if cas == "absent_sirene":
            assert siret == ""
    assert ress["ferme"] == 1 and ress["absent_sirene"] == 1 and ress["doublon"] == 1
    assert ress["nom_variante"] > sum(ress.values()) / 2  # mostly without SIRET


def test_manifest_counts_match_the_files(
    run: tuple[SourcesManifest, Path],
    truth: list[dict[str, str]],
    wave: tuple[list[str], dict[int, dict[str, str]]],
) -> None:
    manifest, root = run
    on_disk = json.loads(manifest.manifest_path.read_text("utf-8"))
    assert manifest.manifest_path.parent == manifest.truth_path.parent
    assert on_disk == json.loads(json.dumps(manifest.as_dict()))
    assert str(root) not in manifest.manifest_path.read_text("utf-8")
    counted: dict[str, Counter[str]] = defaultdict(Counter)
    for t in truth:
        counted[f"{t['source']}:{t['cle_source']}"][t["cas"]] += 1
    assert {k: dict(v) for k, v in counted.items()} == manifest.cases
    for rel, info in manifest.files.items():
        data = (root / "inbox" / rel).read_bytes()
        n = sum(manifest.cases[f"{info['source']}:{info['cle_source']}"].values())
        assert info["enregistrements"] == n
        if info["format"] == "csv":
            assert info["lignes_physiques"] == data.count(b"\n")
    _, answers = wave
    by_case: Counter[str] = Counter()
    for d in manifest.value_defects:
        by_case[d["cas"]] += 1
        value = answers[d["ligne"]][d["colonne"]]
        if d["cas"] == "nombre_illisible":
            assert not re.fullmatch(r"\d+", value)
        elif d["cas"] == "option_inconnue":
            options = next(q["options"] for q in MAPPING["questions"] if "options" in q)
            assert any(v not in options for v in value.split(";"))
        elif d["cas"] == "texte_multiligne":
            assert "\n" in value
        else:
            assert "@" in value or re.search(r"0\d( \d\d){4}", value)
    assert all(n >= 3 for n in by_case.values()) and len(by_case) == 4
    # the other answers are clean: numbers parse, options belong to the list
    flagged = {(d["ligne"], d["colonne"]) for d in manifest.value_defects}
    col = next(q["colonne"] for q in MAPPING["questions"] if q["type"] == "nombre")
    for line, answer in answers.items():
        if (line, col) not in flagged:
            assert re.fullmatch(r"\d*", answer[col])


def test_needs_vary_by_family_and_size(
    truth: list[dict[str, str]],
    wave: tuple[list[str], dict[int, dict[str, str]]],
    etabs: dict[str, dict[str, str]],
) -> None:
    """Small associations seek funding more than employers do; employers recruit more."""
    _, answers = wave
    cols = {q["besoin"]: q["colonne"] for q in MAPPING["questions"] if "besoin" in q}
    rates: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for t in _rows(truth, VAGUE):
        if not t["siret_attendu"]:
            continue
        answer, etab = answers[int(t["ligne"])], etabs[t["siret_attendu"]]
        employer = etab["trancheEffectifsEtablissement"] not in ("", "NN", "00")
        group = "employeur" if employer else "sans_salarie"
        rates[group][0] += answer[cols["financement"]] == "Oui"
        rates[group][1] += answer[cols["recrutement"]] == "Oui"
        rates[group][2] += 1
    small, employers = rates["sans_salarie"], rates["employeur"]
    assert small[2] > 100 and employers[2] > 30
    assert small[0] / small[2] > employers[0] / employers[2]
    assert small[1] / small[2] < employers[1] / employers[2]


def test_truth_inside_the_inbox_is_refused(sirene_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hors de la boîte"):
        generate_sources(
            sirene_dir, tmp_path / "inbox", tmp_path / "inbox" / "verite.csv", mois=MOIS
        )
    with pytest.raises(ValueError, match="2026-06"):
        generate_sources(sirene_dir, tmp_path / "i", tmp_path / "v.csv", mois="2026-07")
