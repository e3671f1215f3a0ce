"""Build tiny SIRENE stock files in INSEE's exact layout, row by row, for table-driven tests.

Each test states only the fields it is about; everything else gets a plausible default, and
identifiers get valid Luhn keys, so a test fails for the reason it names.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
import zipfile
from pathlib import Path

from observatoire.sources.layouts import ETABLISSEMENT_V3_11_NAF25, UNITE_LEGALE_V3_11_NAF25


def luhn_key(body: str) -> str:
    """Digit to append to `body` so that the whole number satisfies the Luhn check."""
    for d in "0123456789":
        digits = body + d
        total = 0
        for i, ch in enumerate(reversed(digits)):
            n = int(ch)
            if i % 2 == 1:
                n *= 2
                if n > 9:
                    n -= 9
            total += n
        if total % 10 == 0:
            return d
    raise AssertionError("unreachable")


_counter = itertools.count(10_000_001)

# Placeholder replaced by write_stock with a date that fits the stock's month (INSEE extracts
# the stock of month M at the end of M-1), so that the stock-date check sees a current file.
DEFAULT_TREATMENT = "{traitement}"


def treatment_date(mois: str) -> str:
    """Last day of the month before `mois`, the latest treatment date INSEE's stock holds."""
    year, month = (int(x) for x in mois.split("-"))
    first = dt.date(year, month, 1)
    return (first - dt.timedelta(days=1)).isoformat() + "T18:30:00"


def new_siren() -> str:
    body = f"{next(_counter):08d}"
    return body + luhn_key(body)


def siret_for(siren: str, n: int = 1) -> str:
    body = siren + f"{n:04d}"
    return body + luhn_key(body)


def ul_row(siren: str, **fields: str) -> dict[str, str]:
    row = dict.fromkeys(UNITE_LEGALE_V3_11_NAF25, "")
    row.update(
        siren=siren,
        statutDiffusionUniteLegale="O",
        dateCreationUniteLegale="2010-05-01",
        trancheEffectifsUniteLegale="NN",
        dateDernierTraitementUniteLegale=DEFAULT_TREATMENT,
        nombrePeriodesUniteLegale="1",
        dateDebut="2010-05-01",
        etatAdministratifUniteLegale="A",
        denominationUniteLegale=f"STRUCTURE {siren}",
        categorieJuridiqueUniteLegale="9220",
        activitePrincipaleUniteLegale="94.99Z",
        nomenclatureActivitePrincipaleUniteLegale="NAFRev2",
        nicSiegeUniteLegale=siret_for(siren)[9:],
        economieSocialeSolidaireUniteLegale="O",
        caractereEmployeurUniteLegale="N",
    )
    row.update(fields)
    return row


def etab_row(siren: str, n: int = 1, **fields: str) -> dict[str, str]:
    siret = siret_for(siren, n)
    row = dict.fromkeys(ETABLISSEMENT_V3_11_NAF25, "")
    row.update(
        siren=siren,
        nic=siret[9:],
        siret=siret,
        statutDiffusionEtablissement="O",
        dateCreationEtablissement="2010-05-01",
        trancheEffectifsEtablissement="NN",
        dateDernierTraitementEtablissement=DEFAULT_TREATMENT,
        etablissementSiege="true" if n == 1 else "false",
        nombrePeriodesEtablissement="1",
        numeroVoieEtablissement="12",
        typeVoieEtablissement="RUE",
        libelleVoieEtablissement="DE LA REPUBLIQUE",
        codePostalEtablissement="94400",
        libelleCommuneEtablissement="VITRY-SUR-SEINE",
        codeCommuneEtablissement="94081",
        coordonneeLambertAbscisseEtablissement="655000.0",
        coordonneeLambertOrdonneeEtablissement="6851000.0",
        dateDebut="2010-05-01",
        etatAdministratifEtablissement="A",
        activitePrincipaleEtablissement="94.99Z",
        nomenclatureActivitePrincipaleEtablissement="NAFRev2",
        caractereEmployeurEtablissement="N",
        activitePrincipaleNAF25Etablissement="94.99Y",
    )
    row.update(fields)
    return row


def write_csv(path: Path, header: tuple[str, ...], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(header), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def write_stock(
    folder: Path,
    unites_legales: list[dict[str, str]],
    etablissements: list[dict[str, str]],
    *,
    zipped: bool = False,
    mois: str | None = None,
) -> tuple[Path, Path]:
    """Write both stock files as INSEE names them (optionally zipped like INSEE ships them).

    Rows left with the default treatment date get one that fits `mois` (by default the folder's
    name when it is a month, as in data/sirene/<mois>/).
    """
    if mois is None and re.fullmatch(r"\d{4}-\d{2}", folder.name):
        mois = folder.name
    stamp = treatment_date(mois) if mois else "2025-01-01T00:00:00"
    unites_legales = [_stamped(r, stamp) for r in unites_legales]
    etablissements = [_stamped(r, stamp) for r in etablissements]
    ul = write_csv(folder / "StockUniteLegale_utf8.csv", UNITE_LEGALE_V3_11_NAF25, unites_legales)
    et = write_csv(
        folder / "StockEtablissement_utf8.csv", ETABLISSEMENT_V3_11_NAF25, etablissements
    )
    if not zipped:
        return et, ul
    out = []
    for csv_path in (et, ul):
        zpath = csv_path.with_suffix(".zip")
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(csv_path, csv_path.name)
        csv_path.unlink()
        out.append(zpath)
    return out[0], out[1]


def _stamped(row: dict[str, str], stamp: str) -> dict[str, str]:
    return {k: (stamp if v == DEFAULT_TREATMENT else v) for k, v in row.items()}
