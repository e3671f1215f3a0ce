"""Deterministic synthetic questionnaire answers and network member lists, with their truth.

Everything written here is SYNTHETIC: respondents, e-mails, phone numbers and structures are
invented, and the structures are drawn from the synthetic SIRENE stock of
`observatoire.demo.synthetic`. The generator exists because the readers of the inbox
(`questionnaire.py`, `reseaux.py`) and the linker (`linkage.py`) can only be checked against
files whose truth is known: for every answer and member, the SIRET it really belongs to and the
defect it carries. The files reproduce what a data team actually receives (see
`docs/sources_externes.md`): a LimeSurvey export in UTF-8 with BOM and `;`, every field quoted, a
multi-line answer; the ASP's list of SIAE as Excel writes it (Windows-1252, `;`); a network's JSON
where most members have no SIRET. Identifiers and names carry the defects seen in real files
(spaces, wrong keys, SIREN only, name variants, duplicates, closed or unknown structures).

Output depends only on the arguments (the SIRENE stock included): two runs give byte-identical
files. The truth (`source,cle_source,ligne,siret_attendu,cas`) is written outside the inbox, with
a JSON manifest beside it that counts records per file and per defect case.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import tomllib
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from observatoire.core.identifiers import LA_POSTE_SIREN, luhn_valid, siret_valid_expr
from observatoire.demo.synthetic import DEFAULT_REFERENCE_DIR, MANIFEST_NAME

GENERATOR_VERSION = "1.0.0"

# Committed templates the generator copies into the inbox (the data team's models too).
DEFAULT_MODELES_DIR = Path(__file__).resolve().parents[2] / "data" / "modeles"

VAGUE = "2026-printemps"
EXPORT_NAME = "results-survey482913.csv"  # LimeSurvey's default export name
RESSOURCERIES = "ressourceries"
SIAE = "siae"
TRUTH_HEADER = ("source", "cle_source", "ligne", "siret_attendu", "cas")
# Columns of the wave that LimeSurvey adds and the mapping does not use (kept in raw only).
_ID_COLUMN = "ID de la réponse"

_ETAB_COLUMNS = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "trancheEffectifsEtablissement",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "codeCommuneEtablissement",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "activitePrincipaleEtablissement",
)
_UL_COLUMNS = (
    "siren",
    "statutDiffusionUniteLegale",
    "prenom1UniteLegale",
    "nomUniteLegale",
    "denominationUniteLegale",
    "categorieJuridiqueUniteLegale",
    "economieSocialeSolidaireUniteLegale",
)

# ---------------------------------------------------------------------------------------------
# Words and labels
# ---------------------------------------------------------------------------------------------

# SIRENE writes upper case without accents; people write accents back.
_ACCENTS = {
    "SYNTHETIQUE": "SYNTHÉTIQUE", "COMITE": "COMITÉ", "FETES": "FÊTES", "A": "À",
    "COOPERATIVE": "COOPÉRATIVE", "COOPERATIVES": "COOPÉRATIVES", "SOCIETE": "SOCIÉTÉ",
    "SALARIES": "SALARIÉS", "PREVOYANCE": "PRÉVOYANCE", "ETABLISSEMENT": "ÉTABLISSEMENT",
    "ECONOMIQUE": "ÉCONOMIQUE", "REGIONALE": "RÉGIONALE", "CREDIT": "CRÉDIT",
    "BATIMENT": "BÂTIMENT", "RENOVATION": "RÉNOVATION", "UNIVERSITE": "UNIVERSITÉ",
    "GENERAL": "GÉNÉRAL", "REPUBLIQUE": "RÉPUBLIQUE", "MARECHAL": "MARÉCHAL",
    "LIBERATION": "LIBÉRATION", "ECOLES": "ÉCOLES", "EGLISE": "ÉGLISE", "PRES": "PRÉS",
    "CHATEAU": "CHÂTEAU", "PERI": "PÉRI", "PROPRIETAIRES": "PROPRIÉTAIRES",
    "COPROPRIETAIRES": "COPROPRIÉTAIRES", "COOPERATION": "COOPÉRATION",
}  # fmt: skip
_ARTICLES = {
    "ASSOCIATION": "L'", "AMICALE": "L'", "UNION": "L'", "ORGANISME": "L'", "CLUB": "LE ",
    "COMITE": "LE ", "GROUPEMENT": "LE ", "SYNDICAT": "LE ", "FONDATION": "LA ",
    "MUTUELLE": "LA ", "COOPERATIVE": "LA ", "SCOP": "LA ", "SCIC": "LA ", "CAISSE": "LA ",
    "SOCIETE": "LA ", "BANQUE": "LA ",
}  # fmt: skip
_LOWER_WORDS = {"DE", "DES", "DU", "LA", "LE", "LES", "ET", "À", "A", "POUR", "AUX", "AU", "SUR"}
_ABBREVIATIONS = {
    "ASSOCIATION": ("ASSOC", "ASSO", "ASS."), "COOPERATIVE": ("COOP",), "SOCIETE": ("STE",),
    "MUTUELLE": ("MUT.",), "FONDATION": ("FOND.",), "COMITE": ("CTE",),
    "GROUPEMENT": ("GPT",), "ORGANISME": ("ORG.",),
}  # fmt: skip
_VOIE_TYPES = {
    "RUE": "rue", "AV": "avenue", "BD": "boulevard", "PL": "place", "CHE": "chemin",
    "ALL": "allée", "IMP": "impasse", "RTE": "route", "QUAI": "quai", "SQ": "square",
}  # fmt: skip
_PRENOMS = (
    "Léa", "Chloé", "Inès", "Camille", "Manon", "Sophie", "Nathalie", "Hélène", "Aminata",
    "Fatima", "Claire", "Sandrine", "Émilie", "Océane", "Jérôme", "Frédéric", "François",
    "Thomas", "Karim", "Mohamed", "Julien", "Nicolas", "Hugo", "Yannick", "Sébastien",
    "Benoît", "Mamadou", "Luc", "Éric", "Stéphane",
)  # fmt: skip
_NOMS = (
    "Martin", "Bernard", "Dubois", "Petit", "Durand", "Leroy", "Moreau", "Lefèvre", "Garcia",
    "Roux", "Fournier", "Girard", "Mercier", "Bonnet", "Lambert", "Faure", "Rousseau",
    "Diallo", "Nguyen", "Benali", "Traoré", "Haddad", "Da Silva", "Lemaître", "Chevalier",
    "Perrin", "Masson", "Gauthier", "Le Goff", "Ndiaye",
)  # fmt: skip
_ABSENT_NAMES = (
    "Collectif fictif des jardins partagés", "Atelier vélo solidaire fictif",
    "Épicerie solidaire imaginaire", "Café associatif inventé", "Repair café fictif",
    "Les amis synthétiques du quartier", "Tiers-lieu fictif La Fabrique",
    "Compagnie théâtrale imaginaire", "Cuisine solidaire fictive", "Recyclerie inventée",
    "Jardin d'insertion fictif", "Chantier école imaginaire", "Bricothèque fictive",
    "Friperie solidaire inventée", "Ludothèque synthétique",
)  # fmt: skip
_COMMENTS = (
    "Merci pour cette initiative.",
    "Nous cherchons un local de stockage depuis deux ans.",
    "Les délais de versement des subventions mettent notre trésorerie en difficulté.",
    "Besoin d'échanger avec d'autres structures du territoire sur la mutualisation d'un poste.",
    "Difficile de recruter des animateurs qualifiés.",
    "Nous aimerions être mieux informés des appels à projets.",
    "Les bénévoles s'essoufflent ; nous cherchons à renouveler le bureau.",
    'Notre projet « tiers-lieu » attend une réponse de la mairie.',
    "Rien de particulier.",
    "Une formation à la comptabilité associative serait bienvenue.",
)  # fmt: skip
# Answers with a line break inside the quoted field: the physical line count must follow.
_MULTILINE_COMMENTS = (
    "Nos besoins principaux :\n- un local plus grand\n- un poste de coordination",
    "Nous avons répondu l'an dernier.\nRien n'a changé depuis, sauf le loyer.",
    "Bonjour,\nle « Point info » ferme en juin ; merci de nous recontacter.",
)
_UNPARSEABLE_NUMBERS = ("une dizaine", "entre 5 et 10", "NSP", "beaucoup", "2 ou 3")
_UNKNOWN_OPTIONS = ("Trouver des bénévoles", "Subventions", "Recruter des bénévoles")
_STATUTS = {
    "association": "Association",
    "cooperative": "Coopérative (SCOP, SCIC...)",
    "mutuelle": "Mutuelle",
    "fondation": "Fondation",
    "autre_non_lucratif": "Autre",
    "societe_commerciale_ess": "Entreprise de l'ESS",
    "hors_ess": "Entreprise",
}
_SIAE_MESURES_ASSO = (("ACI", 55), ("AI", 30), ("EI", 15))
_SIAE_MESURES_SOC = (("EI", 55), ("ETTI", 30), ("EITI", 15))

# Probability of citing each need by family group and size class (0: no employee, 1: 1-9,
# 2: 10 and more): small associations cite funding and premises, employers recruitment and HR.
_NEEDS = (
    "locaux", "recrutement", "rh_appui", "financement", "commande_publique",
    "cooperation_mutualisation", "visibilite_communication", "formation",
)  # fmt: skip
_NEED_RATES: dict[tuple[str, int], tuple[float, ...]] = {
    ("association", 0): (0.50, 0.08, 0.10, 0.65, 0.05, 0.30, 0.50, 0.30),
    ("association", 1): (0.45, 0.30, 0.30, 0.60, 0.10, 0.30, 0.45, 0.35),
    ("association", 2): (0.30, 0.55, 0.40, 0.45, 0.20, 0.30, 0.30, 0.45),
    ("cooperative", 0): (0.35, 0.20, 0.15, 0.45, 0.35, 0.40, 0.45, 0.25),
    ("cooperative", 1): (0.30, 0.40, 0.25, 0.40, 0.45, 0.35, 0.35, 0.30),
    ("cooperative", 2): (0.20, 0.55, 0.30, 0.30, 0.50, 0.30, 0.25, 0.40),
    ("grande", 0): (0.20, 0.15, 0.10, 0.30, 0.15, 0.40, 0.30, 0.25),
    ("grande", 1): (0.20, 0.35, 0.20, 0.30, 0.15, 0.40, 0.25, 0.30),
    ("grande", 2): (0.15, 0.50, 0.25, 0.25, 0.20, 0.40, 0.20, 0.40),
    ("hors_ess", 0): (0.35, 0.15, 0.10, 0.35, 0.25, 0.15, 0.45, 0.15),
    ("hors_ess", 1): (0.30, 0.40, 0.25, 0.30, 0.30, 0.15, 0.40, 0.20),
    ("hors_ess", 2): (0.20, 0.50, 0.25, 0.20, 0.35, 0.15, 0.30, 0.30),
}  # fmt: skip
_BAND_RANGES = {
    "00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49),
    "21": (50, 99), "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999),
    "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999), "53": (10000, 12000),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcesManifest:
    """What was written and the truth's totals, so tests compare reader outputs with counts.

    `files` is keyed by the path relative to the inbox; `cases` by `<source>:<cle_source>`, then
    by defect case (the `cas` column of the truth); `value_defects` lists the answers' cells that
    a reader must reject or mask (line, column, case).
    """

    mois: str
    seed: int
    inbox_dir: Path
    truth_path: Path
    manifest_path: Path
    files: dict[str, dict[str, Any]]
    cases: dict[str, dict[str, int]]
    value_defects: list[dict[str, Any]] = field(default_factory=list)
    name_variants: dict[str, dict[str, int]] = field(default_factory=dict)
    families: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form without absolute paths, so that the bytes do not depend on the directory."""
        return {
            "synthetic": True,
            "description": (
                "Réponses de questionnaire et listes de réseaux SYNTHETIQUES (personnes et "
                "structures fictives, tirées du stock SIRENE synthétique)"
            ),
            "generator": "observatoire.demo.synthetic_sources",
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "mois": self.mois,
            "verite": self.truth_path.name,
            "fichiers": self.files,
            "cas": self.cases,
            "defauts_valeurs": self.value_defects,
            "variantes_nom": self.name_variants,
            "familles": self.families,
        }


def generate_sources(
    sirene_dir: Path,
    inbox_dir: Path,
    truth_path: Path,
    *,
    mois: str,
    seed: int = 2026,
    modeles_dir: Path = DEFAULT_MODELES_DIR,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
) -> SourcesManifest:
    """Write one questionnaire wave and two network lists into `inbox_dir`, the truth elsewhere.

    Structures are drawn from the SIRENE stock of `sirene_dir` (the month `mois`), so that every
    expected SIRET exists there with the state (active, closed, non-diffusible) the case says.
    The truth must stay out of the inbox: the pipeline would otherwise see it as a source.
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", mois):
        raise ValueError(f"mois doit être au format YYYY-MM, reçu {mois!r}")
    sirene_dir, inbox_dir, truth_path = Path(sirene_dir), Path(inbox_dir), Path(truth_path)
    if truth_path.resolve().is_relative_to(inbox_dir.resolve()):
        raise ValueError("la vérité doit être écrite hors de la boîte de dépôt (inbox_dir)")
    _check_sirene_month(sirene_dir, mois)
    stock = _Stock.load(sirene_dir, Path(reference_dir))
    modeles_dir = Path(modeles_dir)
    mapping = tomllib.loads((modeles_dir / "correspondance.toml").read_text(encoding="utf-8"))

    truth: list[tuple[str, str, int, str, str]] = []
    files: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, int]] = {}
    families: dict[str, dict[str, int]] = {}

    wave_dir = inbox_dir / "questionnaires" / VAGUE
    wave_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(modeles_dir / "correspondance.toml", wave_dir / "correspondance.toml")
    wave = _Wave(stock, mapping, random.Random(f"{seed}:questionnaire"))
    wave.build()
    data, rows, physical = wave.render()
    (wave_dir / EXPORT_NAME).write_bytes(data)
    rel = f"questionnaires/{VAGUE}/{EXPORT_NAME}"
    files[rel] = _file_info("questionnaire", VAGUE, "csv", "utf-8-sig", ";", rows, physical, data)
    truth += [("questionnaire", VAGUE, line, siret, cas) for line, siret, cas in wave.truth]
    variants[f"questionnaire:{VAGUE}"] = dict(sorted(wave.variants.items()))
    families[f"questionnaire:{VAGUE}"] = dict(sorted(wave.families.items()))

    reseaux_dir = inbox_dir / "reseaux"
    reseaux_dir.mkdir(parents=True, exist_ok=True)
    for name in (RESSOURCERIES, SIAE):
        shutil.copyfile(modeles_dir / "reseaux" / f"{name}.toml", reseaux_dir / f"{name}.toml")

    ress = _Ressourceries(stock, random.Random(f"{seed}:{RESSOURCERIES}"))
    data, n = ress.render()
    (reseaux_dir / "ressourceries.json").write_bytes(data)
    files["reseaux/ressourceries.json"] = _file_info(
        "reseau", RESSOURCERIES, "json", "utf-8", None, n, data.count(b"\n"), data
    )
    truth += [("reseau", RESSOURCERIES, line, siret, cas) for line, siret, cas in ress.truth]
    variants[f"reseau:{RESSOURCERIES}"] = dict(sorted(ress.variants.items()))

    siae = _Siae(stock, random.Random(f"{seed}:{SIAE}"))
    data, rows, physical = siae.render()
    (reseaux_dir / "siae.csv").write_bytes(data)
    files["reseaux/siae.csv"] = _file_info(
        "reseau", SIAE, "csv", "cp1252", ";", rows, physical, data
    )
    truth += [("reseau", SIAE, line, siret, cas) for line, siret, cas in siae.truth]
    variants[f"reseau:{SIAE}"] = dict(sorted(siae.variants.items()))

    truth.sort(key=lambda r: (r[0], r[1], r[2]))
    cases: dict[str, dict[str, int]] = {}
    for source, cle, _, _, cas in truth:
        bucket = cases.setdefault(f"{source}:{cle}", {})
        bucket[cas] = bucket.get(cas, 0) + 1
    cases = {k: dict(sorted(v.items())) for k, v in sorted(cases.items())}

    truth_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRUTH_HEADER)
    writer.writerows(truth)
    truth_path.write_bytes(buf.getvalue().encode("utf-8"))

    manifest_path = truth_path.with_name(truth_path.stem + ".manifest.json")
    manifest = SourcesManifest(
        mois=mois,
        seed=seed,
        inbox_dir=inbox_dir,
        truth_path=truth_path,
        manifest_path=manifest_path,
        files=dict(sorted(files.items())),
        cases=cases,
        value_defects=wave.value_defects,
        name_variants=variants,
        families=families,
    )
    text = json.dumps(manifest.as_dict(), indent=2, ensure_ascii=False) + "\n"
    manifest_path.write_bytes(text.encode("utf-8"))
    return manifest


# ---------------------------------------------------------------------------------------------
# The SIRENE stock, reduced to what the sources need
# ---------------------------------------------------------------------------------------------


def _check_sirene_month(sirene_dir: Path, mois: str) -> None:
    """A stock of another month would give a truth that disagrees with the linker's month."""
    path = sirene_dir / MANIFEST_NAME
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8")).get("mois")
        if found and found != mois:
            raise ValueError(f"le stock de {sirene_dir} est du mois {found}, pas {mois}")


def _territory(sirene_dir: Path) -> list[str]:
    """The communes the synthetic stock was generated for (its manifest), when it says so."""
    path = sirene_dir / MANIFEST_NAME
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("communes") or [])


def _read_stock_csv(sirene_dir: Path, stem: str, columns: tuple[str, ...]) -> pa.Table:
    """Read the needed columns as text; malformed lines (injected defects) are skipped."""
    read = pacsv.ReadOptions(block_size=16 << 20)
    parse = pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip")
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    zipped = sirene_dir / f"{stem}.zip"
    if zipped.exists():
        with zipfile.ZipFile(zipped) as zf:
            members = [n for n in zf.namelist() if n.endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{zipped} doit contenir exactement un CSV")
            with zf.open(members[0]) as fh:
                return pacsv.read_csv(fh, read, parse, convert)
    plain = sirene_dir / f"{stem}.csv"
    if not plain.exists():
        raise FileNotFoundError(f"ni {zipped.name} ni {plain.name} dans {sirene_dir}")
    return pacsv.read_csv(plain, read, parse, convert)


@dataclass
class _Stock:
    """Establishments with their legal unit, ESS family and commune label, in SIRET order."""

    etabs: pl.DataFrame
    sirets: frozenset[str]
    sirens: frozenset[str]
    communes: dict[str, str]  # code -> COG label (accents, hyphens)

    @classmethod
    def load(cls, sirene_dir: Path, reference_dir: Path) -> _Stock:
        etab = pl.from_arrow(_read_stock_csv(sirene_dir, "StockEtablissement_utf8", _ETAB_COLUMNS))
        ul = pl.from_arrow(_read_stock_csv(sirene_dir, "StockUniteLegale_utf8", _UL_COLUMNS))
        assert isinstance(etab, pl.DataFrame) and isinstance(ul, pl.DataFrame)
        with (reference_dir / "ess_categories_juridiques.csv").open(encoding="utf-8") as fh:
            fam = {r["code_cj"]: r["famille_ess"] for r in csv.DictReader(fh)}
        with (reference_dir / "cog_communes.csv").open(encoding="utf-8") as fh:
            communes = {r["code_commune"]: r["libelle_commune"] for r in csv.DictReader(fh)}
        territory = _territory(sirene_dir) or sorted(communes)
        families = pl.DataFrame(
            {"categorieJuridiqueUniteLegale": list(fam), "famille": list(fam.values())}
        )
        sirets = frozenset(etab["siret"].to_list())
        sirens = frozenset(ul["siren"].to_list())
        ul = ul.unique("siren", keep="none")
        df = (
            etab.filter(
                (pl.col("siret").str.len_bytes() == 14)
                & (pl.col("siret") == pl.col("siren") + pl.col("nic"))
                & (pl.col("siren") != LA_POSTE_SIREN)
                & pl.col("codeCommuneEtablissement").is_in(territory)
            )
            .filter(pl.col("siret").is_unique())
            .join(ul, on="siren", how="inner")
            .join(families, on="categorieJuridiqueUniteLegale", how="left")
            .with_columns(
                famille=pl.when(pl.col("famille").is_not_null())
                .then(pl.col("famille"))
                .when(pl.col("economieSocialeSolidaireUniteLegale") == "O")
                .then(pl.lit("societe_commerciale_ess"))
                .otherwise(pl.lit("hors_ess"))
            )
            .sort("siret")
        )
        df = df.filter(siret_valid_expr(pl.col("siret")))
        return cls(df, sirets, sirens, communes)

    def pool(self, *, etat: str, diffusion: str, families: tuple[str, ...]) -> pl.DataFrame:
        """Candidates in one state; named pools exclude natural persons' [ND] and P units."""
        df = self.etabs.filter(
            (pl.col("etatAdministratifEtablissement") == etat)
            & pl.col("famille").is_in(list(families))
        )
        if diffusion == "O":
            return df.filter(
                (pl.col("statutDiffusionEtablissement") == "O")
                & (pl.col("statutDiffusionUniteLegale") == "O")
            )
        return df.filter(pl.col("statutDiffusionEtablissement") == "P")

    def unknown_siret(self, rng: random.Random) -> str:
        """A SIRET with a valid key that is in no file: a structure that typed a wrong number."""
        while True:
            base = f"{rng.randrange(10**7, 10**8):08d}"
            siren = base + str(_luhn_digit(base))
            nic = f"{rng.randrange(1, 10):04d}"
            siret = siren + nic + str(_luhn_digit(siren + nic))
            if siren not in self.sirens and siret not in self.sirets:
                return siret


def _luhn_digit(payload: str) -> int:
    for d in range(10):
        if luhn_valid(payload + str(d)):
            return d
    raise AssertionError("unreachable")


def _draw(
    pool: pl.DataFrame, k: int, rng: random.Random, used_sirens: set[str]
) -> list[dict[str, str]]:
    """Up to k rows of distinct legal units not used yet by this source."""
    order = list(range(pool.height))
    rng.shuffle(order)
    picked: list[dict[str, str]] = []
    for i in order:
        if len(picked) == k:
            break
        row = pool.row(i, named=True)
        if row["siren"] in used_sirens:
            continue
        used_sirens.add(row["siren"])
        picked.append(row)
    return picked


def _draw_families(
    stock: _Stock,
    wanted: dict[str, int],
    rng: random.Random,
    used: set[str],
    *,
    etat: str = "A",
    diffusion: str = "O",
    filler: str = "association",
) -> list[dict[str, str]]:
    """Draw by family; a family short of units (small stocks) hands its share to `filler`."""
    picked: list[dict[str, str]] = []
    shortfall = 0
    for fam, k in wanted.items():
        if fam == filler:
            continue
        got = _draw(stock.pool(etat=etat, diffusion=diffusion, families=(fam,)), k, rng, used)
        shortfall += k - len(got)
        picked += got
    k = wanted.get(filler, 0) + shortfall
    got = _draw(stock.pool(etat=etat, diffusion=diffusion, families=(filler,)), k, rng, used)
    if len(got) < k:
        raise ValueError(
            f"stock SIRENE trop petit : {len(got)} établissements '{filler}' disponibles, "
            f"{k} demandés"
        )
    return picked + got


# ---------------------------------------------------------------------------------------------
# Names, addresses, identifiers as people write them
# ---------------------------------------------------------------------------------------------


def _sirene_name(row: dict[str, str]) -> str:
    name = row["denominationUniteLegale"]
    if not name:
        name = f"{row['prenom1UniteLegale']} {row['nomUniteLegale']}".strip()
    return name


def _accented(name: str) -> str:
    return " ".join(_ACCENTS.get(w, w) for w in name.split(" "))


def _title(name: str) -> str:
    """Title case as a person types it: small words lower, elisions kept (d'Aide, l'Enfance)."""
    words = []
    for i, word in enumerate(_accented(name).split(" ")):
        if i > 0 and word in _LOWER_WORDS:
            words.append(word.lower())
            continue
        parts = word.split("'")
        out = []
        for j, part in enumerate(parts):
            if j < len(parts) - 1 and len(part) == 1 and (i > 0 or j > 0):
                out.append(part.lower())
            else:
                out.append("-".join(p[:1] + p[1:].lower() for p in part.split("-")))
        words.append("'".join(out))
    return " ".join(words)


def _typo(name: str, rng: random.Random) -> str:
    """One slip of the keyboard in a word of letters (never in the number)."""
    words = name.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
    if not candidates:
        return name
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:p] + w[p + 1 :]
    elif kind == 1:
        w = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
    else:
        w = w[:p] + w[p] + w[p:]
    words[i] = w
    return " ".join(words)


def _abbreviated(name: str, rng: random.Random) -> str | None:
    words = name.split(" ")
    for i, w in enumerate(words):
        if w in _ABBREVIATIONS:
            words[i] = rng.choice(_ABBREVIATIONS[w])
            return " ".join(words)
    return None


def _sigle(name: str, rng: random.Random) -> str:
    words = [w for w in re.split(r"[ ',\"]+", name) if w and w not in _LOWER_WORDS]
    letters = "".join(w[0] for w in words if w.isalpha())
    number = re.search(r"\d+$", name)
    sigle = letters + (f" {number.group()}" if number else "")
    return sigle if rng.random() < 0.5 else f"{sigle} - {_title(name)}"


def _name_variant(
    row: dict[str, str], rng: random.Random, kinds: tuple[tuple[str, float], ...]
) -> tuple[str, str]:
    """A name for the structure as a respondent or a network writes it, and the variant used."""
    name = _sirene_name(row)
    kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
    enseigne = row["enseigne1Etablissement"]
    if kind == "enseigne" and enseigne and enseigne != "[ND]":
        return enseigne, kind
    if kind == "abreviation":
        short = _abbreviated(name, rng)
        if short is not None:
            return short, kind
    if kind == "sigle" and row["denominationUniteLegale"]:
        return _sigle(name, rng), kind
    if kind == "faute":
        return _typo(name, rng), kind
    if kind == "sans_zeros":
        stripped = re.sub(r"\b0+(\d)", r"\1", name)
        if stripped != name:
            return _title(stripped), kind
    if kind == "minuscules":
        return _accented(name).lower(), kind
    if kind == "article":
        first = name.split(" ")[0]
        article = _ARTICLES.get(first)
        if article is not None:
            return f"{article}{name}", kind
    if kind == "accents":
        return _accented(name), kind
    if kind in ("titre", "enseigne", "abreviation", "sans_zeros", "article", "sigle"):
        return _title(name), "titre"
    return name, "exact"


def _street(row: dict[str, str], upper: bool = False) -> tuple[str, str]:
    """(number, street) from SIRENE's address columns, in the spelling of the file's author."""
    numero = row["numeroVoieEtablissement"]
    kind = row["typeVoieEtablissement"]
    libelle = _accented(row["libelleVoieEtablissement"])
    if upper:
        voie = f"{_VOIE_TYPES.get(kind, kind.lower()).upper()} {libelle}".strip()
        return numero, voie
    words = []
    for w in libelle.split(" "):
        if w in _LOWER_WORDS:
            words.append(w.lower())
        else:
            words.append("'".join(p[:1] + p[1:].lower() for p in w.split("'")))
    libelle = " ".join(words).replace("D'", "d'").replace("L'", "l'")
    return numero, f"{_VOIE_TYPES.get(kind, kind.lower())} {libelle}".strip()


def _address(row: dict[str, str], rng: random.Random) -> str:
    numero, voie = _street(row)
    if not voie:
        return ""
    u = rng.random()
    if u < 0.65:
        return f"{numero} {voie}".strip()
    if u < 0.80:
        return f"{numero}, {voie}".strip(", ")
    if u < 0.92:
        return f"{numero} {voie}".strip().upper()
    return f"{numero} {voie}".strip().lower()


def _commune(row: dict[str, str], stock: _Stock, rng: random.Random) -> str:
    label = stock.communes.get(row["codeCommuneEtablissement"], "")
    u = rng.random()
    if u < 0.70 or not label:
        return label or row["libelleCommuneEtablissement"]
    if u < 0.85:
        return row["libelleCommuneEtablissement"]
    return label.replace("-", " ")


def _siret_spaced(siret: str, rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    return f"{siret[:9]} {siret[9:]}"


def _siren_spaced(siret: str) -> str:
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]}"


def _wrong_key(siret: str, rng: random.Random) -> str:
    """One digit of the NIC mistyped: any single-digit change breaks the Luhn key."""
    p = rng.randrange(9, 14)
    digit = (int(siret[p]) + rng.randrange(1, 10)) % 10
    return siret[:p] + str(digit) + siret[p + 1 :]


def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def _phone(rng: random.Random, mobile: bool = True) -> str:
    head = rng.choice(("06", "07")) if mobile else rng.choice(("01", "09"))
    return " ".join([head] + [f"{rng.randrange(100):02d}" for _ in range(4)])


def _person(rng: random.Random) -> tuple[str, str, str]:
    prenom, nom = rng.choice(_PRENOMS), rng.choice(_NOMS)
    email = f"{_fold(prenom).replace('-', '')}.{_fold(nom)}@exemple.org"
    return f"{prenom} {nom}", email, _phone(rng)


def _size_class(band: str) -> int:
    if band in ("", "NN", "00"):
        return 0
    if band in ("01", "02", "03"):
        return 1
    return 2


def _need_group(famille: str) -> str:
    if famille in ("association", "autre_non_lucratif"):
        return "association"
    if famille in ("cooperative", "societe_commerciale_ess"):
        return "cooperative"
    if famille in ("mutuelle", "fondation"):
        return "grande"
    return "hors_ess"


def _file_info(
    source: str,
    cle: str,
    fmt: str,
    encoding: str,
    sep: str | None,
    records: int,
    physical: int,
    data: bytes,
) -> dict[str, Any]:
    info: dict[str, Any] = {"source": source, "cle_source": cle, "format": fmt}
    info["encodage"] = encoding
    if sep is not None:
        info["separateur"] = sep
    info["enregistrements"] = records
    info["lignes_physiques"] = physical
    info["sha256"] = hashlib.sha256(data).hexdigest()
    return info


def _csv_records(
    header: list[str], records: list[list[str]], *, delimiter: str, quote_all: bool
) -> tuple[str, list[int], int]:
    """CSV text with `\\r\\n` record ends, the first physical line of each record, line total.

    Counting the line feeds of each serialised record is what makes a multi-line answer shift
    the following records' lines, exactly as a reader counting physical lines sees it.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf,
        delimiter=delimiter,
        lineterminator="\r\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(header)
    line = 1 + buf.getvalue().count("\n")
    starts = []
    for record in records:
        one = io.StringIO(newline="")
        csv.writer(
            one,
            delimiter=delimiter,
            lineterminator="\r\n",
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        ).writerow(record)
        text = one.getvalue()
        buf.write(text)
        starts.append(line)
        line += text.count("\n")
    return buf.getvalue(), starts, line - 1


# ---------------------------------------------------------------------------------------------
# The questionnaire wave
# ---------------------------------------------------------------------------------------------

# Structures answering, by kind. Families follow the territory's ESS mix, a little skewed
# towards employers (they answer surveys more often).
_WAVE_FAMILIES = {
    "cooperative": 55,
    "mutuelle": 18,
    "fondation": 14,
    "autre_non_lucratif": 20,
    "societe_commerciale_ess": 20,
    "association": 363,
}
_WAVE_HORS_ESS = 55
_WAVE_P_UNITS = 8
_WAVE_CLOSED = 6
_WAVE_ABSENT = 11
_WAVE_UNKNOWN_SIRET = 4
_WAVE_DUPLICATE_RATE = 0.05
_WAVE_ID_CASES = (
    ("siret_ok", 42),
    ("siret_espaces", 15),
    ("cle_fausse", 5),
    ("siren_seul", 8),
    ("nom_variante", 30),
)
_WAVE_NAME_KINDS = (
    ("exact", 15), ("titre", 25), ("accents", 8), ("minuscules", 7), ("abreviation", 15),
    ("faute", 10), ("sans_zeros", 8), ("article", 4), ("enseigne", 4), ("sigle", 4),
)  # fmt: skip
# Without a SIRET the name must stay linkable: no sigle alone.
_WAVE_NAME_KINDS_NO_SIRET = tuple(k for k in _WAVE_NAME_KINDS if k[0] != "sigle")


@dataclass
class _Answer:
    row: dict[str, str] | None  # the establishment, None when the structure is not in SIRENE
    cas: str
    siret_field: str
    name: str
    famille: str
    when: datetime = datetime(2026, 3, 1)
    cells: dict[str, str] = field(default_factory=dict)


class _Wave:
    """One LimeSurvey export; the mapping template decides columns, options and categories."""

    def __init__(self, stock: _Stock, mapping: dict[str, Any], rng: random.Random) -> None:
        self.stock = stock
        self.mapping = mapping
        self.rng = rng
        self.answers: list[_Answer] = []
        self.truth: list[tuple[int, str, str]] = []
        self.value_defects: list[dict[str, Any]] = []
        self.variants: Counter[str] = Counter()
        self.families: Counter[str] = Counter()
        vague = mapping["vague"]
        self.start = datetime.fromisoformat(vague["date_debut"])
        self.end = datetime.fromisoformat(vague["date_fin"]) + timedelta(days=1)

    def build(self) -> None:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        ess = _draw_families(stock, _WAVE_FAMILIES, rng, used)
        hors = _draw(stock.pool(etat="A", diffusion="O", families=("hors_ess",)), _WAVE_HORS_ESS,
                     rng, used)  # fmt: skip
        ess_families = tuple(k for k in _STATUTS if k != "hors_ess")
        p_units = _draw(stock.pool(etat="A", diffusion="P", families=ess_families),
                        _WAVE_P_UNITS, rng, used)  # fmt: skip
        closed = _draw(stock.pool(etat="F", diffusion="O", families=ess_families),
                       _WAVE_CLOSED, rng, used)  # fmt: skip
        for row in ess + hors:
            cas = rng.choices([c for c, _ in _WAVE_ID_CASES], [w for _, w in _WAVE_ID_CASES])[0]
            self.answers.append(self._found(row, cas))
        for row in p_units:
            # counted, never named: SIRENE gives neither name nor street for a P unit
            self.answers.append(_Answer(row, "diffusion_partielle", row["siret"], "",
                                        row["famille"]))  # fmt: skip
        for row in closed:
            answer = self._found(row, "siret_ok")
            answer.cas = "ferme"
            self.answers.append(answer)
        absent = rng.sample(_ABSENT_NAMES, min(len(_ABSENT_NAMES), _WAVE_ABSENT))
        for name in absent:
            self.answers.append(_Answer(None, "absent_sirene", "", name, "inconnue"))
        for i in range(_WAVE_UNKNOWN_SIRET):
            name = f"Association imaginaire n° {i + 1}"
            self.answers.append(
                _Answer(None, "siret_inconnu", stock.unknown_siret(rng), name, "inconnue")
            )
        days = (self.end - self.start).days
        for answer in self.answers:
            answer.when = self._moment(rng.randrange(days - 3))
        # ~5 % of the structures answer twice; the later answer is the one that counts
        twice = [a for a in self.answers if a.row is not None and a.cas not in ("ferme",)]
        twice = [a for a in twice if a.cas != "diffusion_partielle"]
        n_twice = round(_WAVE_DUPLICATE_RATE * len(self.answers))
        for first in rng.sample(twice, min(n_twice, len(twice))):
            assert first.row is not None
            later = self._found(first.row, first.cas)
            day = (first.when - self.start).days
            later.when = self._moment(rng.randrange(day + 1, min(day + 30, days)))
            first.cas = "doublon"
            self.answers.append(later)
        self.answers.sort(key=lambda a: (a.when, a.siret_field, a.name))
        for answer in self.answers:
            self.families[answer.famille] += 1
            self._fill(answer)

    def _moment(self, day: int) -> datetime:
        """A submission time on a day of the wave, in the hours people fill in forms."""
        seconds = self.rng.randrange(7 * 3600, 23 * 3600)
        return self.start + timedelta(days=day, seconds=seconds)

    def _found(self, row: dict[str, str], cas: str) -> _Answer:
        rng = self.rng
        siret = row["siret"]
        field_value = {
            "siret_ok": siret,
            "siret_espaces": _siret_spaced(siret, rng),
            "cle_fausse": _wrong_key(siret, rng),
            "siren_seul": siret[:9] if rng.random() < 0.7 else _siren_spaced(siret),
            "nom_variante": "",
        }[cas]
        kinds = _WAVE_NAME_KINDS_NO_SIRET if cas == "nom_variante" else _WAVE_NAME_KINDS
        name, kind = _name_variant(row, rng, kinds)
        self.variants[kind] += 1
        return _Answer(row, cas, field_value, name, row["famille"])

    def _fill(self, a: _Answer) -> None:
        """Every cell of the answer except the identification, drawn from family and size."""
        rng, row = self.rng, a.row
        ident = self.mapping["identification"]
        cells = a.cells
        cells[ident["horodatage"]] = a.when.strftime("%Y-%m-%d %H:%M:%S")
        person, email, phone = _person(rng)
        personal = ident["donnees_personnelles"]
        cells[personal[0]] = person
        cells[personal[1]] = email if rng.random() < 0.95 else ""
        cells[personal[2]] = phone if rng.random() < 0.8 else ""
        cells[ident["nom"]] = a.name
        cells[ident["siret"]] = a.siret_field
        if row is not None and a.cas != "diffusion_partielle":
            cells[ident["adresse"]] = _address(row, rng) if rng.random() < 0.9 else ""
            cells[ident["code_postal"]] = (
                row["codePostalEtablissement"] if rng.random() < 0.95 else ""
            )
            cells[ident["commune"]] = _commune(row, self.stock, rng)
        elif row is not None:
            cells[ident["adresse"]] = ""
            cells[ident["code_postal"]] = row["codePostalEtablissement"]
            cells[ident["commune"]] = self.stock.communes.get(row["codeCommuneEtablissement"], "")
        else:
            code = rng.choice(sorted(self.stock.etabs["codeCommuneEtablissement"].unique()))
            cells[ident["adresse"]] = f"{rng.randrange(1, 120)} rue imaginaire"
            cells[ident["code_postal"]] = ""
            cells[ident["commune"]] = self.stock.communes.get(code, "")
        band = row["trancheEffectifsEtablissement"] if row is not None else ""
        size = _size_class(band)
        rates = _NEED_RATES[(_need_group(a.famille), size)]
        cited: list[str] = []
        for q in self.mapping["questions"]:
            col = q["colonne"]
            if q["type"] == "choix_unique" and "besoin" in q:
                p = rates[_NEEDS.index(q["besoin"])]
                u = rng.random()
                value = "Oui" if u < p * 0.96 else ("Non" if u < 0.93 else "Ne sait pas")
                if rng.random() < 0.03:
                    value = ""
                if value == "Oui":
                    cited.append(q["besoin"])
                cells[col] = value
            elif q["type"] == "choix_unique":
                statut = _STATUTS.get(a.famille, "Autre")
                if rng.random() < 0.04:
                    statut = rng.choice(sorted(set(_STATUTS.values())))
                cells[col] = statut if rng.random() < 0.97 else ""
            elif q["type"] == "nombre":
                lo, hi = _BAND_RANGES.get(band, (0, 0))
                if row is None:
                    lo, hi = 0, 5
                cells[col] = str(rng.randint(lo, hi)) if rng.random() < 0.93 else ""
            elif q["type"] == "choix_multiple":
                by_need = {need: opt for opt, need in q["options"].items()}
                chosen = [by_need[n] for n in cited if n in by_need]
                rng.shuffle(chosen)
                chosen = chosen[: rng.randint(1, 3)]
                if rng.random() < 0.06:
                    chosen.append(by_need["autre"])
                options = list(q["options"])
                chosen.sort(key=options.index)
                cells[col] = q.get("separateur", ";").join(chosen)
            else:
                u = rng.random()
                cells[col] = rng.choice(_COMMENTS) if u < 0.3 else ""

    def _inject_value_defects(self, header: list[str]) -> list[tuple[int, str, str]]:
        """Cells a reader must reject or mask; chosen among answers, after they are drawn."""
        rng = self.rng
        by_type = {q["type"]: q["colonne"] for q in self.mapping["questions"]}
        sep = next(
            q.get("separateur", ";")
            for q in self.mapping["questions"]
            if q["type"] == "choix_multiple"
        )
        n = len(self.answers)
        picks = rng.sample(range(n), 20)
        defects: list[tuple[int, str, str]] = []
        for i in picks[:5]:
            self.answers[i].cells[by_type["nombre"]] = rng.choice(_UNPARSEABLE_NUMBERS)
            defects.append((i, by_type["nombre"], "nombre_illisible"))
        for i in picks[5:10]:
            col = by_type["choix_multiple"]
            cell = self.answers[i].cells[col]
            extra = rng.choice(_UNKNOWN_OPTIONS)
            self.answers[i].cells[col] = f"{cell}{sep}{extra}" if cell else extra
            defects.append((i, col, "option_inconnue"))
        text_col = by_type["texte"]
        for j, i in enumerate(picks[10:13]):
            self.answers[i].cells[text_col] = _MULTILINE_COMMENTS[j]
            defects.append((i, text_col, "texte_multiligne"))
        contacts = (
            "Vous pouvez écrire à la directrice : {email}",
            "Rappelez-moi au {phone}, le matin de préférence.",
            "Contact : {email} ou {phone}",
            "Notre trésorier ({email}) a les chiffres.",
            "Joignable au {phone} (ligne directe)",
        )
        for template, i in zip(contacts, picks[13:18], strict=True):
            _, email, phone = _person(rng)
            self.answers[i].cells[text_col] = template.format(email=email, phone=phone)
            defects.append((i, text_col, "texte_avec_contact"))
        return defects

    def render(self) -> tuple[bytes, int, int]:
        ident = self.mapping["identification"]
        header = [_ID_COLUMN, ident["horodatage"], *ident["donnees_personnelles"]]
        header += [ident[k] for k in ("nom", "siret", "adresse", "code_postal", "commune")]
        header += [q["colonne"] for q in self.mapping["questions"]]
        defects = self._inject_value_defects(header)
        records = []
        for number, answer in enumerate(self.answers, start=1):
            cells = dict(answer.cells)
            cells[_ID_COLUMN] = str(number)
            records.append([cells.get(col, "") for col in header])
        text, starts, physical = _csv_records(header, records, delimiter=";", quote_all=True)
        for answer, line in zip(self.answers, starts, strict=True):
            siret = answer.row["siret"] if answer.row is not None else ""
            self.truth.append((line, siret, answer.cas))
        self.value_defects = sorted(
            ({"ligne": starts[i], "colonne": col, "cas": cas} for i, col, cas in defects),
            key=lambda d: (d["ligne"], d["cas"]),
        )
        return ("\ufeff" + text).encode("utf-8"), len(records), physical


# ---------------------------------------------------------------------------------------------
# Network lists
# ---------------------------------------------------------------------------------------------


class _Ressourceries:
    """A network's JSON: ~25 members, mostly without SIRET (the probabilistic path)."""

    def __init__(self, stock: _Stock, rng: random.Random) -> None:
        self.stock = stock
        self.rng = rng
        self.truth: list[tuple[int, str, str]] = []
        self.variants: Counter[str] = Counter()

    def render(self) -> tuple[bytes, int]:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        found = _draw_families(stock, {"cooperative": 3, "association": 18}, rng, used)
        closed = _draw(stock.pool(etat="F", diffusion="O", families=("association",)), 1, rng,
                       used)  # fmt: skip
        kinds = (("titre", 35), ("exact", 10), ("accents", 10), ("abreviation", 15),
                 ("faute", 10), ("enseigne", 15), ("sans_zeros", 5))  # fmt: skip
        members: list[tuple[dict[str, Any], str, str]] = []
        for i, row in enumerate(found):
            cas = ("siret_ok", "siret_ok", "siret_espaces")[i] if i < 3 else "nom_variante"
            members.append(self._member(row, cas, kinds))
        for row in closed:
            members.append(self._member(row, "ferme", kinds))
        members.append(
            (
                {
                    "nom": "Ressourcerie imaginaire du Val",
                    "siret": None,
                    "adresse": "3 allée des Inventions",
                    "code_postal": "",
                    "ville": stock.communes.get(found[0]["codeCommuneEtablissement"], ""),
                    "telephone": _phone(rng, mobile=False),
                    "courriel": "bonjour@ressourcerie-imaginaire.exemple.org",
                    "adherent_depuis": "2024",
                },
                "",
                "absent_sirene",
            )
        )
        rng.shuffle(members)
        # the same structure entered twice by the network, with another spelling
        original = next(m for m in members if m[2] == "nom_variante")
        copy = dict(original[0])
        copy["nom"] = str(copy["nom"]).upper()
        copy["adresse"] = str(copy["adresse"]).lower()
        members.insert(rng.randrange(members.index(original) + 1, len(members) + 1),
                       (copy, original[1], "doublon"))  # fmt: skip
        payload = {
            "reseau": "Réseau des ressourceries du territoire (SYNTHETIQUE)",
            "avertissement": "Données fictives générées pour les tests de l'Observatoire ESS.",
            "membres": [m[0] for m in members],
        }
        for position, (_, siret, cas) in enumerate(members, start=1):
            self.truth.append((position + 1, siret, cas))
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
        return text.encode("utf-8"), len(members)

    def _member(
        self, row: dict[str, str], cas: str, kinds: tuple[tuple[str, float], ...]
    ) -> tuple[dict[str, Any], str, str]:
        rng = self.rng
        name, kind = _name_variant(row, rng, kinds)
        self.variants[kind] += 1
        siret: str | None = None
        if cas in ("siret_ok", "ferme"):
            siret = row["siret"]
        elif cas == "siret_espaces":
            siret = _siret_spaced(row["siret"], rng)
        numero, voie = _street(row)
        member = {
            "nom": name,
            "siret": siret,
            "adresse": f"{numero} {voie}".strip(),
            "code_postal": row["codePostalEtablissement"],
            "ville": _commune(row, self.stock, rng),
            "telephone": _phone(rng, mobile=False) if rng.random() < 0.8 else None,
            "courriel": f"contact@{_fold(name)[:30].strip('-')}.exemple.org",
            "adherent_depuis": str(rng.randint(2012, 2025)),
        }
        return member, row["siret"], cas


_SIAE_HEADER = (
    "MESURE", "SIRET", "DENOMINATION_SOCIALE", "NUM_RUE", "NOM_RUE", "CODE_POSTAL", "COMMUNE",
    "TELEPHONE", "MAIL",
)  # fmt: skip


class _Siae:
    """The ASP's list as Excel saves it: Windows-1252, `;`, one row per structure and measure."""

    def __init__(self, stock: _Stock, rng: random.Random) -> None:
        self.stock = stock
        self.rng = rng
        self.truth: list[tuple[int, str, str]] = []
        self.variants: Counter[str] = Counter()

    def render(self) -> tuple[bytes, int, int]:
        rng, stock = self.rng, self.stock
        used: set[str] = set()
        assos = _draw(stock.pool(etat="A", diffusion="O", families=("association",)), 55, rng,
                      used)  # fmt: skip
        societes = _draw(stock.pool(etat="A", diffusion="O",
                                    families=("hors_ess", "societe_commerciale_ess")),
                         17, rng, used)  # fmt: skip
        closed = _draw(stock.pool(etat="F", diffusion="O", families=("association",)), 4, rng,
                       used)  # fmt: skip
        cases = ["siret_espaces"] * 10 + ["cle_fausse"] * 3 + ["nom_variante"] * 3
        structures = assos + societes
        cases += ["siret_ok"] * (len(structures) - len(cases))
        rng.shuffle(cases)
        rows: list[tuple[list[str], str, str]] = []
        for row, cas in zip(structures, cases, strict=True):
            rows.append(self._row(row, cas, self._mesure(row)))
        for row in closed:
            rows.append(self._row(row, "ferme", self._mesure(row)))
        # a structure holding two measures appears twice under the same SIRET
        for first in rng.sample([r for r in rows if r[2] == "siret_ok"], 4):
            again = list(first[0])
            others = [m for m, _ in _SIAE_MESURES_ASSO + _SIAE_MESURES_SOC if m != again[0]]
            again[0] = rng.choice(sorted(set(others)))
            rows.append((again, first[1], "doublon"))
        absent_commune = stock.communes.get(structures[0]["codeCommuneEtablissement"], "")
        rows.append(
            (
                ["ACI", "", "RÉGIE DE QUARTIER IMAGINAIRE", "5", "RUE DES INVENTIONS", "",
                 absent_commune.upper(), _phone(rng, mobile=False), ""],
                "",
                "absent_sirene",
            )
        )  # fmt: skip
        rows.append(
            (
                ["EI", stock.unknown_siret(rng), "ENTREPRISE D'INSERTION INCONNUE", "", "", "",
                 absent_commune.upper(), "", ""],
                "",
                "siret_inconnu",
            )
        )  # fmt: skip
        rows.sort(key=lambda r: (r[0][0], r[0][6], r[0][2], r[0][1]))
        text, starts, physical = _csv_records(
            list(_SIAE_HEADER), [r[0] for r in rows], delimiter=";", quote_all=False
        )
        for (_, siret, cas), line in zip(rows, starts, strict=True):
            self.truth.append((line, siret, cas))
        data = text.encode("cp1252")
        return data, len(rows), physical

    def _mesure(self, row: dict[str, str]) -> str:
        table = _SIAE_MESURES_ASSO if row["famille"] == "association" else _SIAE_MESURES_SOC
        return self.rng.choices([m for m, _ in table], [w for _, w in table])[0]

    def _row(self, row: dict[str, str], cas: str, mesure: str) -> tuple[list[str], str, str]:
        rng = self.rng
        kinds = (("exact", 60), ("accents", 15), ("abreviation", 10), ("faute", 5),
                 ("enseigne", 10))  # fmt: skip
        name, kind = _name_variant(row, rng, kinds)
        self.variants[kind] += 1
        siret = {
            "siret_ok": row["siret"],
            "ferme": row["siret"],
            "siret_espaces": _siret_spaced(row["siret"], rng),
            "cle_fausse": _wrong_key(row["siret"], rng),
            "nom_variante": "",
        }[cas]
        numero, voie = _street(row, upper=True)
        label = self.stock.communes.get(row["codeCommuneEtablissement"], "")
        commune = label.upper() if rng.random() < 0.6 else row["libelleCommuneEtablissement"]
        commune = commune.replace("SAINT-", "ST ").replace("SAINTE-", "STE ")
        mail = ""
        if rng.random() < 0.85:
            _, personal, _ = _person(rng)
            mail = personal if rng.random() < 0.4 else f"accueil@{_fold(name)[:25]}.exemple.org"
        record = [
            mesure,
            siret,
            name.upper(),
            numero,
            voie,
            row["codePostalEtablissement"],
            commune,
            _phone(rng, mobile=False) if rng.random() < 0.9 else "",
            mail,
        ]
        return record, row["siret"], cas
