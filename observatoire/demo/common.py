"""What the demo's generators share: where the bundled data lies, INSEE's stock file names, the
month check, and the few string helpers each of them would otherwise write again.

The SIRENE generator (`synthetic`), the questionnaire and network generator (`synthetic_sources`)
and the SIAE fixture of the tests (`tests/siae_fixture.py`) write or read the same stock files and
complete the same Luhn keys; one definition keeps them agreeing. Nothing here draws a random
number, so moving code here never changes what a seed produces.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

from observatoire.core.identifiers import luhn_valid

# The one place where the package locates its bundled data.
_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DEFAULT_REFERENCE_DIR = _DATA_DIR / "reference"
# Committed templates the sources generator copies into the inbox (the data team's models too).
DEFAULT_MODELES_DIR = _DATA_DIR / "modeles"

# INSEE's names of the stock files (the zips hold one member of the same name).
ETABLISSEMENTS_CSV = "StockEtablissement_utf8.csv"
UNITES_LEGALES_CSV = "StockUniteLegale_utf8.csv"


def check_mois(mois: str) -> None:
    """The stock month the generators are asked for, written YYYY-MM."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", mois):
        raise ValueError(f"mois doit être au format YYYY-MM, reçu {mois!r}")


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a bundled reference file, as text."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ascii_upper(text: str) -> str:
    """SIRENE writes names and commune labels upper case without accents."""
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return stripped.upper()


def with_luhn_key(payload: str) -> str:
    """`payload` (8 digits of a SIREN, 13 of a SIRET) followed by the key that makes it valid."""
    return next(payload + d for d in "0123456789" if luhn_valid(payload + d))
