"""A SIRENE stock fixture built from the real SIAE list, with the truth of what should link.

The observatory must report how well a real network list links to SIRENE, but no real SIRENE
extract is available offline. This module therefore writes StockEtablissement and
StockUniteLegale files in INSEE's exact layout whose rows are derived from the list itself (its
SIRETs are real and Luhn-valid), aged from July 2019 to the stock's month with the kinds of
drift a linker meets in practice, and writes `verite.csv`, the establishment each list row should
link to. The match rate measured on this fixture says how the linker copes with these drifts; it
is NOT a measure of reality.

Assumptions of the fixture (deterministic for a given seed; rates are draws, so the realised
shares vary by a point or so on a few hundred rows):

* legal units drawn first, in the list's order: 4 % ceased (`cessee`: legal unit C, all its
  listed establishments F, closed between August 2019 and the stock's month), 3 % absent from
  the stock (`absent`: neither the legal unit nor its establishments are written);
* then each listed establishment of the other units: 8 % moved (`demenage`: the listed SIRET is
  closed, F, and a new open establishment of the same SIREN exists in the same commune at another
  address; the list row should link to the new SIRET), the rest unchanged (`actif`);
* 5 % of the written legal units are partially diffusible (statut de diffusion P): denomination,
  sigle and establishment addresses read "[ND]" as INSEE writes them, commune kept;
* denominations are often written differently in SIRENE than in the list: ASSOC spelt
  ASSOCIATION (60 % of the names holding ASSOC), accents on common words (15 %), apostrophes and
  hyphens as spaces (10 %), "ASSOCIATION" prefixed to an association's name (10 %); a quarter of
  the units get a sigle (initials of a name of three words or more);
* 10 % of the listed establishments get an unrelated decoy nearby: another legal unit with a
  similar name (the list's name plus a word, or one of its words dropped) in the same commune;
* legal categories come from the list's NATURE_JURIDIQUE labels, matched to INSEE's niveau III
  labels, with the few labels INSEE does not use mapped by hand (SARL unipersonnelle 5499, SASU
  5710, SCOP 5458 / 5558, individual entrepreneurs 1000);
* communes are resolved from the list's commune and postal code (`CommuneResolver`); rows whose
  commune cannot be resolved are left out of the stock (`hors_fixture`, no expected link);
* NAF rév. 2 from CODE_NAF2; the NAF 2025 column is left empty (no correspondence table is
  bundled); employee bands, creation and treatment dates are drawn.

`verite.csv` has one row per list row of the selected départements: ligne (physical line in the
list), siret_liste, siret_attendu (empty when nothing should be linked), cas (actif, demenage,
cessee, absent, hors_fixture), diffusion (O or P; empty when nothing is written), nom_different
(true when the expected establishment's legal unit is not named exactly as the list names it,
"[ND]" included). List rows repeating a SIRET (one SIAE under several measures) share its case.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from observatoire.cleaning.adresses import CommuneResolver, departement_of
from observatoire.core.identifiers import siret_valid
from observatoire.demo.common import (
    DEFAULT_REFERENCE_DIR,
    ETABLISSEMENTS_CSV,
    UNITES_LEGALES_CSV,
    ascii_upper,
    check_mois,
    with_luhn_key,
)
from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25
from observatoire.sources.reference import load_reference_table

__all__ = ["CASES", "FixtureTruth", "VERITE_COLUMNS", "write_siae_sirene_fixture"]

VERITE_NAME = "verite.csv"
VERITE_COLUMNS = ("ligne", "siret_liste", "siret_attendu", "cas", "diffusion", "nom_different")
CASES = ("actif", "demenage", "cessee", "absent", "hors_fixture")

RATE_CEASED = 0.04
RATE_ABSENT = 0.03
RATE_MOVED = 0.08
RATE_NOT_DIFFUSIBLE = 0.05
RATE_DECOY = 0.10
ND = "[ND]"

# List labels that are not INSEE niveau III labels, mapped to the code INSEE uses for them.
_CJ_BY_HAND = {
    "sarl unipersonnelle": "5499",
    "société par actions simplifiée à associé unique ou société par actions simplifiée "
    "unipersonnelle": "5710",
    "sarl coopérative ouvrière de production (scop)": "5458",
    "sa coopérative ouvrière de production (scop) à conseil d'administration": "5558",
    "artisan": "1000",
    "commerçant": "1000",
    "associé gérant de société": "1000",
    "exploitant agricole": "1000",
}
_DEFAULT_CJ = "9220"  # the list is mostly associations; an unknown label is most likely one

# INSEE's abbreviations of the street types the list spells out.
_VOIE_TYPES = {
    "RUE": "RUE",
    "AVENUE": "AV",
    "PLACE": "PL",
    "BOULEVARD": "BD",
    "ROUTE": "RTE",
    "CHEMIN": "CHE",
    "ALLEE": "ALL",
    "IMPASSE": "IMP",
    "LIEU-DIT": "LD",
    "QUAI": "QUAI",
    "CITE": "CITE",
    "COURS": "CRS",
    "SQUARE": "SQ",
    "RESIDENCE": "RES",
    "QUARTIER": "QUA",
    "LOTISSEMENT": "LOT",
    "PASSAGE": "PAS",
    "DOMAINE": "DOM",
    "ZA": "ZA",
    "ZI": "ZI",
    "ZAC": "ZAC",
}
_ACCENTED = {
    "REGIE": "RÉGIE",
    "ECONOMIE": "ÉCONOMIE",
    "SOLIDARITE": "SOLIDARITÉ",
    "DEVELOPPEMENT": "DÉVELOPPEMENT",
    "ENERGIE": "ÉNERGIE",
    "ETUDES": "ÉTUDES",
    "ECOLE": "ÉCOLE",
    "CREATION": "CRÉATION",
    "INSERTION": "INSERTION",
    "CHANTIER": "CHANTIER",
    "ACTIVITES": "ACTIVITÉS",
    "SOCIETE": "SOCIÉTÉ",
    "COOPERATIVE": "COOPÉRATIVE",
    "ENTRAIDE": "ENTRAIDE",
    "EQUIPE": "ÉQUIPE",
    "ESPERANCE": "ESPÉRANCE",
    "ECOLOGIE": "ÉCOLOGIE",
    "QUALITE": "QUALITÉ",
    "COMMUNAUTE": "COMMUNAUTÉ",
    "PREVENTION": "PRÉVENTION",
}
_SMALL_WORDS = frozenset({"DE", "DU", "DES", "LA", "LE", "LES", "ET", "L", "D", "AU", "AUX", "EN"})
_DECOY_SUFFIXES = ("FORMATION", "SERVICES", "DEVELOPPEMENT", "CONSEIL", "PATRIMOINE", "SPORTS")
_DECOY_PREFIXES = ("AMICALE", "LES AMIS DE", "COMITE DES FETES", "CLUB")
_BANDS = (("NN", 3), ("01", 1), ("02", 2), ("03", 3), ("11", 4), ("12", 4), ("21", 3), ("22", 2))
_NAF_FALLBACK = "94.99Z"


@dataclass(frozen=True)
class FixtureTruth:
    etablissements: Path
    unites_legales: Path
    verite: Path
    cases: dict[str, int]  # list rows per case
    rows: int  # list rows of the selected départements (= rows of verite.csv)
    etablissements_ecrits: int
    unites_legales_ecrites: int
    leurres: int  # decoy establishments
    noms_differents: int  # list rows whose SIRENE denomination differs from the list
    non_diffusibles: int  # list rows whose legal unit is P


@dataclass
class _Row:
    ligne: int
    siret: str
    nom: str
    cj_label: str
    naf: str
    numero: str
    voie: str
    code_postal: str
    commune: str
    code_commune: str | None


@dataclass
class _Unit:
    siren: str
    rows: list[_Row] = field(default_factory=list)
    case: str = "actif"  # unit-level: actif | cessee | absent
    diffusion: str = "O"
    denomination: str = ""
    sigle: str = ""


def _key(label: str) -> str:
    return label.strip().lower().replace("’", "'")


def _legal_categories(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    by_label = {
        _key(label): code
        for code, label in con.execute(
            "select code_n3, libelle_n3 from ref.categories_juridiques_n3"
        ).fetchall()
    }
    return {**by_label, **_CJ_BY_HAND}


def _read_list(path: Path, resolver: CommuneResolver) -> list[_Row]:
    rows = []
    cache: dict[tuple[str, str], str | None] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=";")
        for record in reader:
            key = (record["COMMUNE"], record["CODE_POSTAL"])
            if key not in cache:
                cache[key] = resolver.resolve(*key)
            rows.append(
                _Row(
                    ligne=reader.line_num,
                    siret=record["SIRET"].strip(),
                    nom=" ".join(record["DENOMINATION_SOCIALE"].split()),
                    cj_label=record["NATURE_JURIDIQUE"],
                    naf=record["CODE_NAF2"].strip(),
                    numero=re.sub(r"\D", "", record["NUM_RUE"]),
                    voie=" ".join(record["NOM_RUE"].split()),
                    code_postal=record["CODE_POSTAL"].strip(),
                    commune=record["COMMUNE"].strip(),
                    code_commune=cache[key],
                )
            )
    return rows


def _departement(row: _Row) -> str | None:
    if row.code_commune is not None:
        code = row.code_commune
        return code[:3] if code.startswith("97") else code[:2]
    return departement_of(row.code_postal)


def _split_voie(voie: str) -> tuple[str, str]:
    """The list's "Avenue DU GEN SARRAIL" as INSEE's type ("AV") and label ("DU GEN SARRAIL")."""
    first, _, rest = voie.partition(" ")
    kind = _VOIE_TYPES.get(ascii_upper(first))
    if kind is None or not rest:
        return "", ascii_upper(voie)
    return kind, ascii_upper(rest)


def _sirene_name(name: str, cj: str, rng: random.Random) -> str:
    """The list's name as SIRENE might hold it (see the module's assumptions)."""
    words = name.split()
    if "ASSOC" in words and rng.random() < 0.6:
        words = ["ASSOCIATION" if w == "ASSOC" else w for w in words]
    if rng.random() < 0.15:
        words = [_ACCENTED.get(w, w) for w in words]
    text = " ".join(words)
    if rng.random() < 0.10:
        text = " ".join(re.sub(r"['’\-]", " ", text).split())
    if cj.startswith("92") and not text.startswith("ASSOC") and rng.random() < 0.10:
        text = "ASSOCIATION " + text
    return text


def _initials(name: str) -> str:
    words = [w for w in re.split(r"[\s'’\-]+", ascii_upper(name)) if w and w not in _SMALL_WORDS]
    words = [w for w in words if w not in ("ASSOC", "ASSOCIATION")]
    return "".join(w[0] for w in words) if len(words) >= 3 else ""


def _decoy_name(name: str, rng: random.Random) -> str:
    words = name.split()
    choice = rng.random()
    if choice < 0.4:
        return f"{name} {rng.choice(_DECOY_SUFFIXES)}"
    if choice < 0.7 or len(words) < 3:
        return f"{rng.choice(_DECOY_PREFIXES)} {name}"
    drop = rng.randrange(len(words))
    return " ".join(w for i, w in enumerate(words) if i != drop)


def _siret(siren: str, nic_body: int) -> str:
    return with_luhn_key(f"{siren}{nic_body:04d}")


def _siren(body: int) -> str:
    return with_luhn_key(f"{body:08d}")


def _day(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(max((end - start).days, 0) + 1))


def write_siae_sirene_fixture(
    siae_csv: Path,
    out_dir: Path,
    mois: str,
    seed: int = 7,
    departements: tuple[str, ...] | None = None,
    *,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
) -> FixtureTruth:
    """Write the stock of month `mois` derived from the SIAE list, and its `verite.csv`.

    `departements` are INSEE codes ("94", "2A", "971"): only list rows located there are used
    (all of France by default). The output depends only on the arguments.
    """
    check_mois(mois)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with duckdb.connect() as con:
        con.execute("create schema ref")
        for table in ("communes", "categories_juridiques_n3", "naf_rev2_sous_classes"):
            load_reference_table(con, table, Path(reference_dir))
        resolver = CommuneResolver.from_con(con)
        cj_by_label = _legal_categories(con)
        communes = dict(
            con.execute("select code_commune, libelle_commune from ref.communes").fetchall()
        )
        naf_codes = {
            r[0]
            for r in con.execute(
                "select code_sous_classe from ref.naf_rev2_sous_classes"
            ).fetchall()
        }
        ess_cj = {
            r[0]
            for r in con.execute(
                "select code_cj from read_csv($p, all_varchar = true)",
                {"p": str(Path(reference_dir) / "ess_categories_juridiques.csv")},
            ).fetchall()
        }

    rows = _read_list(Path(siae_csv), resolver)
    all_list_sirens = {r.siret[:9] for r in rows}
    wanted = set(departements) if departements is not None else None
    rows = [r for r in rows if wanted is None or _departement(r) in wanted]

    year, month = (int(x) for x in mois.split("-"))
    last_treatment = dt.date(year, month, 1) - dt.timedelta(days=1)
    drift_start = dt.date(2019, 8, 1)

    # Legal units in the list's order; unit-level drift drawn once per SIREN.
    units: dict[str, _Unit] = {}
    for row in rows:
        unit = units.setdefault(row.siret[:9], _Unit(row.siret[:9]))
        unit.rows.append(row)
    for unit in units.values():
        u = rng.random()
        if u < RATE_CEASED:
            unit.case = "cessee"
        elif u < RATE_CEASED + RATE_ABSENT:
            unit.case = "absent"
        unit.diffusion = "P" if rng.random() < RATE_NOT_DIFFUSIBLE else "O"
        first = unit.rows[0]
        cj = cj_by_label.get(_key(first.cj_label), _DEFAULT_CJ)
        unit.denomination = _sirene_name(first.nom, cj, rng)
        unit.sigle = _initials(first.nom) if rng.random() < 0.25 else ""

    etablissements: list[dict[str, str]] = []
    unites_legales: list[dict[str, str]] = []
    verite: list[dict[str, str]] = []
    decoys = 0
    decoy_body = 90_000_000
    used_sirets = {r.siret for r in rows}
    streets_by_dep: dict[str, list[str]] = {}
    for row in rows:
        if row.voie:
            streets_by_dep.setdefault(_departement(row) or "", []).append(row.voie)

    def treatment(after: dt.date) -> str:
        # a fifth of the rows on INSEE's latest treatment day, the rest in the last two years
        if rng.random() < 0.2:
            day = last_treatment
        else:
            day = _day(rng, max(after, last_treatment - dt.timedelta(days=730)), last_treatment)
        return f"{day.isoformat()}T{rng.randrange(6, 20):02d}:{rng.randrange(60):02d}:00"

    def etab(
        siren: str,
        siret: str,
        row: _Row,
        *,
        diffusion: str,
        etat: str,
        created: dt.date,
        debut: dt.date,
        periods: int,
        siege: bool,
        numero: str,
        voie: str,
        enseigne: str = "",
        naf: str | None = None,
        tranche: str = "NN",
    ) -> dict[str, str]:
        assert row.code_commune is not None
        kind, label = _split_voie(voie)
        nd = diffusion == "P"
        record = dict.fromkeys(ETABLISSEMENT_V3_11_NAF25, "")
        record.update(
            siren=siren,
            nic=siret[9:],
            siret=siret,
            statutDiffusionEtablissement=diffusion,
            dateCreationEtablissement=created.isoformat(),
            trancheEffectifsEtablissement=tranche,
            anneeEffectifsEtablissement="" if tranche == "NN" else str(year - 2),
            dateDernierTraitementEtablissement=treatment(debut),
            etablissementSiege="true" if siege else "false",
            nombrePeriodesEtablissement=str(periods),
            numeroVoieEtablissement=ND if nd and numero else numero,
            typeVoieEtablissement=ND if nd and kind else kind,
            libelleVoieEtablissement=ND if nd and label else label,
            codePostalEtablissement=row.code_postal,
            libelleCommuneEtablissement=ascii_upper(communes[row.code_commune]),
            codeCommuneEtablissement=row.code_commune,
            dateDebut=debut.isoformat(),
            etatAdministratifEtablissement=etat,
            enseigne1Etablissement=ND if nd and enseigne else enseigne,
            activitePrincipaleEtablissement=naf or _naf(row.naf),
            nomenclatureActivitePrincipaleEtablissement="NAFRev2",
            caractereEmployeurEtablissement="N" if tranche == "NN" else "O",
        )
        return record

    def _naf(code: str) -> str:
        dotted = f"{code[:2]}.{code[2:]}" if len(code) == 5 else code
        return dotted if dotted in naf_codes else _NAF_FALLBACK

    for unit in units.values():
        first = unit.rows[0]
        cj = cj_by_label.get(_key(first.cj_label), _DEFAULT_CJ)
        placed = [r for r in unit.rows if r.code_commune is not None]
        written = unit.case != "absent" and bool(placed)
        nom_different = unit.denomination != first.nom or unit.diffusion == "P"
        siege_nic = ""
        created_unit: dt.date | None = None
        closed_on = _day(rng, drift_start, last_treatment - dt.timedelta(days=31))
        tranche = rng.choices([b for b, _ in _BANDS], [w for _, w in _BANDS])[0]
        seen: dict[str, str] = {}  # listed SIRET -> expected SIRET (duplicated list rows)
        next_nic = 1 + max(int(r.siret[9:13]) for r in unit.rows)
        for row in unit.rows:
            if row.siret in seen:
                expected, case = seen[row.siret].split("|")
            elif row.code_commune is None:
                expected, case = "", "hors_fixture"
            elif unit.case == "absent":
                expected, case = "", "absent"
            else:
                created = _day(rng, dt.date(1985, 1, 1), dt.date(2018, 12, 31))
                created_unit = min(created_unit or created, created)
                siege = not siege_nic
                enseigne = row.nom if rng.random() < 0.2 else ""
                if unit.case == "cessee":
                    case, expected = "cessee", row.siret
                    etablissements.append(
                        etab(
                            unit.siren,
                            row.siret,
                            row,
                            diffusion=unit.diffusion,
                            etat="F",
                            created=created,
                            debut=closed_on,
                            periods=2,
                            siege=siege,
                            numero=row.numero,
                            voie=row.voie,
                            enseigne=enseigne,
                            tranche="NN",
                        )
                    )
                    if siege:
                        siege_nic = row.siret[9:]
                elif rng.random() < RATE_MOVED:
                    case = "demenage"
                    moved_on = _day(rng, drift_start, last_treatment - dt.timedelta(days=31))
                    while True:
                        expected = _siret(unit.siren, next_nic)
                        next_nic += 1
                        if expected not in used_sirets:
                            break
                    used_sirets.add(expected)
                    etablissements.append(
                        etab(
                            unit.siren,
                            row.siret,
                            row,
                            diffusion=unit.diffusion,
                            etat="F",
                            created=created,
                            debut=moved_on,
                            periods=2,
                            siege=False,
                            numero=row.numero,
                            voie=row.voie,
                            enseigne=enseigne,
                        )
                    )
                    street = rng.choice(streets_by_dep.get(_departement(row) or "", [row.voie]))
                    etablissements.append(
                        etab(
                            unit.siren,
                            expected,
                            row,
                            diffusion=unit.diffusion,
                            etat="A",
                            created=moved_on,
                            debut=moved_on,
                            periods=1,
                            siege=siege,
                            numero=str(rng.randrange(1, 120)),
                            voie=street,
                            enseigne=enseigne,
                            tranche=tranche if siege else "NN",
                        )
                    )
                    if siege:
                        siege_nic = expected[9:]
                else:
                    case, expected = "actif", row.siret
                    etablissements.append(
                        etab(
                            unit.siren,
                            row.siret,
                            row,
                            diffusion=unit.diffusion,
                            etat="A",
                            created=created,
                            debut=created,
                            periods=1,
                            siege=siege,
                            numero=row.numero,
                            voie=row.voie,
                            enseigne=enseigne,
                            tranche=tranche if siege else "NN",
                        )
                    )
                    if siege:
                        siege_nic = row.siret[9:]
                seen[row.siret] = f"{expected}|{case}"
            verite.append(
                {
                    "ligne": str(row.ligne),
                    "siret_liste": row.siret,
                    "siret_attendu": expected,
                    "cas": case,
                    "diffusion": unit.diffusion if case not in ("absent", "hors_fixture") else "",
                    "nom_different": "true" if nom_different and expected else "false",
                }
            )
            # decoys: another unit with a similar name in the same commune
            if row.code_commune is not None and rng.random() < RATE_DECOY:
                while True:
                    decoy_siren = _siren(decoy_body)
                    decoy_body += 1
                    if decoy_siren not in all_list_sirens:
                        break
                decoy_siret = _siret(decoy_siren, 1)
                created = _day(rng, dt.date(1990, 1, 1), last_treatment - dt.timedelta(days=60))
                street = rng.choice(streets_by_dep.get(_departement(row) or "", [row.voie]))
                etablissements.append(
                    etab(
                        decoy_siren,
                        decoy_siret,
                        row,
                        diffusion="O",
                        etat="A",
                        created=created,
                        debut=created,
                        periods=1,
                        siege=True,
                        numero=str(rng.randrange(1, 200)),
                        voie=street,
                        naf=_NAF_FALLBACK,
                    )
                )
                unites_legales.append(
                    _ul(
                        decoy_siren,
                        _decoy_name(row.nom, rng),
                        "",
                        "9220",
                        "O",
                        "A",
                        created,
                        created,
                        decoy_siret[9:],
                        _NAF_FALLBACK,
                        "NN",
                        "O",
                        treatment(created),
                        str(year - 2),
                    )
                )
                decoys += 1
        if written:
            assert created_unit is not None
            ceased = unit.case == "cessee"
            name = ND if unit.diffusion == "P" else unit.denomination
            sigle = (ND if unit.diffusion == "P" else unit.sigle) if unit.sigle else ""
            ul = _ul(
                unit.siren,
                name,
                sigle,
                cj,
                unit.diffusion,
                "C" if ceased else "A",
                created_unit,
                closed_on if ceased else created_unit,
                siege_nic,
                _naf(first.naf),
                "NN" if ceased else tranche,
                "O" if cj in ess_cj else "N",
                treatment(closed_on if ceased else created_unit),
                str(year - 2),
            )
            if cj == "1000":  # individual entrepreneurs have a name, not a denomination
                ul["nomUniteLegale"], ul["denominationUniteLegale"] = name, ""
                ul["economieSocialeSolidaireUniteLegale"] = "N"
            unites_legales.append(ul)

    for record in etablissements:
        assert siret_valid(record["siret"]), record["siret"]
    _write(out_dir / ETABLISSEMENTS_CSV, ETABLISSEMENT_V3_11_NAF25, etablissements)
    _write(out_dir / UNITES_LEGALES_CSV, UNITE_LEGALE_V3_11_NAF25, unites_legales)
    _write(out_dir / VERITE_NAME, VERITE_COLUMNS, verite)
    cases = Counter(v["cas"] for v in verite)
    return FixtureTruth(
        etablissements=out_dir / ETABLISSEMENTS_CSV,
        unites_legales=out_dir / UNITES_LEGALES_CSV,
        verite=out_dir / VERITE_NAME,
        cases={case: cases.get(case, 0) for case in CASES},
        rows=len(verite),
        etablissements_ecrits=len(etablissements),
        unites_legales_ecrites=len(unites_legales),
        leurres=decoys,
        noms_differents=sum(v["nom_different"] == "true" for v in verite),
        non_diffusibles=sum(v["diffusion"] == "P" for v in verite),
    )


def _ul(
    siren: str,
    denomination: str,
    sigle: str,
    cj: str,
    diffusion: str,
    etat: str,
    created: dt.date,
    debut: dt.date,
    nic_siege: str,
    naf: str,
    tranche: str,
    ess: str,
    treated: str,
    annee_effectifs: str,
) -> dict[str, str]:
    record = dict.fromkeys(UNITE_LEGALE_V3_11_NAF25, "")
    record.update(
        siren=siren,
        statutDiffusionUniteLegale=diffusion,
        dateCreationUniteLegale=created.isoformat(),
        sigleUniteLegale=sigle,
        trancheEffectifsUniteLegale=tranche,
        anneeEffectifsUniteLegale="" if tranche == "NN" else annee_effectifs,
        dateDernierTraitementUniteLegale=treated,
        nombrePeriodesUniteLegale="2" if etat == "C" else "1",
        categorieEntreprise="PME" if etat == "A" else "",
        anneeCategorieEntreprise="2022" if etat == "A" else "",
        dateDebut=debut.isoformat(),
        etatAdministratifUniteLegale=etat,
        denominationUniteLegale=denomination,
        categorieJuridiqueUniteLegale=cj,
        activitePrincipaleUniteLegale=naf,
        nomenclatureActivitePrincipaleUniteLegale="NAFRev2",
        nicSiegeUniteLegale=nic_siege,
        economieSocialeSolidaireUniteLegale=ess,
        caractereEmployeurUniteLegale="N" if tranche == "NN" else "O",
    )
    return record


def _write(path: Path, header: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    """INSEE's dialect: UTF-8, `,`, quotes only when needed, `\\n` line ends."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(header), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
