"""Commune names as people type them, resolved against the bundled COG."""

from __future__ import annotations

from pathlib import Path

import pytest

from observatoire.cleaning.adresses import CommuneResolver, departement_of, normalise_label
from observatoire.core import warehouse
from observatoire.sources import reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> CommuneResolver:
    path = tmp_path_factory.mktemp("cog") / "cog.duckdb"
    with warehouse.connect(path) as con:
        reference.load_reference(con, ROOT / "data" / "reference")
        return CommuneResolver.from_con(con)


@pytest.mark.parametrize(
    ("commune", "code_postal", "expected"),
    [
        ("IVRY SUR SEINE", "94200", "94041"),
        ("BOISSY ST LEGER", "94470", "94004"),
        ("Vitry-sur-Seine", None, "94081"),
        ("94081", None, "94081"),
        ("L'Haÿ-les-Roses", "94240", "94038"),
        ("CRETEIL CEDEX", "94000", "94028"),
        ("PARIS", "75012", "75112"),
        ("Paris 12e arrondissement", "75012", "75112"),
        ("LYON", "69003", "69383"),
        ("MARSEILLE", "13008", "13208"),
        ("ST MAURICE DE BEYNOST", "1700", "01376"),  # leading zero lost by a spreadsheet
        ("Saint-Denis", "93200", "93066"),
        # several communes share the name: without a postal code nothing is guessed
        ("Saint-Denis", None, None),
        # a typo is not corrected here: the linkage compares names, not this lookup
        ("LAY LES ROSES", "94240", None),
        ("Vitry-sur-Seine", "13008", None),  # name and postal code disagree
        (None, None, None),
    ],
)
def test_resolve(
    resolver: CommuneResolver, commune: str | None, code_postal: str | None, expected: str | None
) -> None:
    assert resolver.resolve(commune, code_postal) == expected


def test_normalise_label() -> None:
    assert normalise_label("  Boissy-St-Léger ") == "BOISSY SAINT LEGER"
    assert normalise_label("Choisy-le-Roi Cedex 3") == "CHOISY LE ROI"
    assert normalise_label("Villeneuve s/ Lot") == "VILLENEUVE SUR LOT"
    assert normalise_label("—") is None
    assert normalise_label("Vandœuvre-lès-Nancy") == "VANDOEUVRE LES NANCY"


def test_departement_of() -> None:
    assert departement_of("94 200") == "94"
    assert departement_of("97411") == "974"
    assert departement_of("20000") is None  # 2A or 2B: not decidable from the code
    assert departement_of("abc") is None
