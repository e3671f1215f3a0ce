"""Territory configuration: every kind resolves to the right communes and complete levels."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from observatoire.core import territory, warehouse
from observatoire.sources import reference


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("territory") / "t.duckdb"
    with warehouse.connect(path) as c:
        reference.load_reference(c, ROOT / "data" / "reference")
        yield c


def _levels(con, spec):
    t = territory.resolve(con, spec)
    territory.materialise(con, t)
    levels = dict(
        con.execute(
            "select niveau, count(distinct code_territoire) "
            "from ref.territoire_niveaux group by all"
        ).fetchall()
    )
    return t, levels


def test_default_ept_grand_orly_seine_bievre(con):
    t, levels = _levels(con, "ept:T12")
    assert len(t.communes) == 24
    assert "94081" in t.communes and "91027" in t.communes  # Vitry, Athis-Mons
    # the EPT is complete; MGP and the two départements are only partly inside: left out
    assert levels == {"commune": 24, "ept": 1}
    assert territory.resolve(con, "ept:200058014").communes == t.communes


def test_departement_val_de_marne(con):
    t, levels = _levels(con, "departement:94")
    assert len(t.communes) == 47
    # Paris Est Marne et Bois (T10) and Grand Paris Sud Est Avenir (T11) lie wholly in it
    assert levels == {"commune": 47, "departement": 1, "ept": 2}


def test_region_includes_complete_epci_and_the_ept(con):
    t, levels = _levels(con, "region:11")
    assert levels["departement"] == 8
    # the 12 territories of the Métropole du Grand Paris, Paris (T1) included
    assert levels["ept"] == 12 and levels["region"] == 1
    assert levels["epci"] > 40


def test_commune_with_arrondissements(con):
    t, levels = _levels(con, "commune:75056")
    assert len(t.communes) == 20 and all(c.startswith("751") for c in t.communes)


def test_single_commune_and_epci(con):
    t, levels = _levels(con, "commune:94081")
    assert t.communes == ("94081",) and t.label == "Vitry-sur-Seine"
    assert levels == {"commune": 1}
    t, _ = _levels(con, "epci:200054781")
    assert t.label == "Métropole du Grand Paris" and len(t.communes) > 100


def test_named_list_of_communes(con, tmp_path: Path):
    path = tmp_path / "bievre.csv"
    path.write_text(
        "code_commune;nom_territoire\n94003;Vallée de la Bièvre\n94016;Vallée de la Bièvre\n",
        encoding="utf-8",
    )
    t, levels = _levels(con, f"liste:{path}")
    assert t.communes == ("94003", "94016")
    assert levels == {"commune": 2, "selection": 1}
    (name,) = con.execute(
        "select distinct libelle_territoire from ref.territoire_niveaux where niveau = 'selection'"
    ).fetchone()
    assert name == "Vallée de la Bièvre"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("canton:12", "type inconnu"),
        ("departement:00", "aucune commune"),
        ("liste:/nonexistent.csv", "introuvable"),
    ],
)
def test_errors_are_explained(con, spec, message):
    with pytest.raises(territory.TerritoryError, match=message):
        territory.resolve(con, spec)


def test_list_with_unknown_commune_names_it(con, tmp_path: Path):
    path = tmp_path / "l.csv"
    path.write_text("code_commune\n94081\n94999\n", encoding="utf-8")
    with pytest.raises(territory.TerritoryError, match="94999"):
        territory.resolve(con, f"liste:{path}")


def test_levels_are_the_ones_the_sql_writes(con):
    """`ref.territoire_niveaux` writes the levels and ranks of `territory.LEVELS`, no other."""
    ranks = {lvl.name: lvl.rank for lvl in territory.LEVELS}
    territory.materialise(con, territory.resolve(con, "region:11"))
    written = dict(
        con.execute("select distinct niveau, rang from ref.territoire_niveaux").fetchall()
    )
    assert written == {n: r for n, r in ranks.items() if n != "selection"}
    territory.materialise(con, territory.resolve(con, "france"))
    written = dict(
        con.execute("select distinct niveau, rang from ref.territoire_niveaux").fetchall()
    )
    assert written["selection"] == ranks["selection"]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("ept:T12", ("ept", "T12")),
        (" EPT : T12 ", ("ept", "T12")),
        ("commune:94081", ("commune", "94081")),
        ("france", ("france", "")),
        ("France", ("france", "")),
    ],
)
def test_one_grammar(spec, parsed):
    assert territory.parse(spec) == parsed


def test_a_publication_names_selections_as_the_setting_does(con):
    t = territory.resolve(con, "france")
    assert (t.level, t.code, t.label) == ("selection", "selection", "France entière")
    assert t.spec == "france"
    assert territory.resolve(con, "ept:T12").key == "ept:T12"


@pytest.mark.parametrize(
    ("spec", "label", "n"),
    [
        ("ept:T1", "Ville de Paris", 20),  # Paris as its arrondissements, where SIRENE locates
        ("ept:T6", "EPT Plaine Commune", 8),
        ("ept:200057867", "EPT Plaine Commune", 8),  # by SIREN
        ("ept:T12", "EPT Grand-Orly Seine Bièvre", 24),
    ],
)
def test_every_territory_of_the_metropole_is_known(con, spec, label, n):
    t = territory.resolve(con, spec)
    assert (t.label, len(t.communes)) == (label, n)
