"""The synthetic SIRENE stock reduced to what the sources need, and how a source draws from it.

Every structure an answer or a network member names is drawn from the stock the sources are
generated for, so that each expected SIRET exists there with the state (active, closed,
partially diffusible) its case says. `_Source` is what the questionnaire wave and the network
lists share: their stock, their random stream, their truth and the name variants they wrote.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from observatoire.core.identifiers import LA_POSTE_SIREN, siret_valid_expr
from observatoire.demo.common import (
    ETABLISSEMENTS_CSV,
    UNITES_LEGALES_CSV,
    read_csv,
    with_luhn_key,
)
from observatoire.demo.synthetic import MANIFEST_NAME
from observatoire.demo.synthetic_sources.spelling import _name_variant

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


def _read_stock_csv(sirene_dir: Path, name: str, columns: tuple[str, ...]) -> pa.Table:
    """The needed columns of stock file `name` (or of its zip), as text; malformed lines (the
    injected defects) are skipped."""
    read = pacsv.ReadOptions(block_size=16 << 20)
    parse = pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip")
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    plain = sirene_dir / name
    zipped = plain.with_suffix(".zip")
    if zipped.exists():
        with zipfile.ZipFile(zipped) as zf:
            members = [n for n in zf.namelist() if n.endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{zipped} doit contenir exactement un CSV")
            with zf.open(members[0]) as fh:
                return pacsv.read_csv(fh, read, parse, convert)
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
        etab = pl.from_arrow(_read_stock_csv(sirene_dir, ETABLISSEMENTS_CSV, _ETAB_COLUMNS))
        ul = pl.from_arrow(_read_stock_csv(sirene_dir, UNITES_LEGALES_CSV, _UL_COLUMNS))
        assert isinstance(etab, pl.DataFrame) and isinstance(ul, pl.DataFrame)
        fam = {
            r["code_cj"]: r["famille_ess"]
            for r in read_csv(reference_dir / "ess_categories_juridiques.csv")
        }
        communes = {
            r["code_commune"]: r["libelle_commune"]
            for r in read_csv(reference_dir / "cog_communes.csv")
        }
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
            siren = with_luhn_key(base)
            nic = f"{rng.randrange(1, 10):04d}"
            siret = with_luhn_key(siren + nic)
            if siren not in self.sirens and siret not in self.sirets:
                return siret


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


class _Source:
    """One file being written from the stock: its random stream, truth rows and name variants.

    `truth` holds (physical line or position, expected SIRET, case); `variants` counts how the
    names were written (`_name_variant`'s kinds), for the manifest.
    """

    def __init__(self, stock: _Stock, rng: random.Random) -> None:
        self.stock = stock
        self.rng = rng
        self.truth: list[tuple[int, str, str]] = []
        self.variants: Counter[str] = Counter()

    def _name(self, row: dict[str, str], kinds: tuple[tuple[str, float], ...]) -> str:
        """The structure's name as this source writes it, counted by variant."""
        name, kind = _name_variant(row, self.rng, kinds)
        self.variants[kind] += 1
        return name
