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
    """The territory, its own levels (count of units) and the units containing it."""
    t = territory.resolve(con, spec)
    territory.materialise(con, t)
    levels = dict(
        con.execute(
            "select niveau, count(distinct code_territoire) "
            "from ref.territoire_niveaux where not englobant group by all"
        ).fetchall()
    )
    return t, levels


def _containing(con) -> set[str]:
    return {
        f"{n}:{c}"
        for n, c in con.execute(
            "select distinct niveau, code_territoire from ref.territoire_niveaux where englobant"
        ).fetchall()
    }


def _members(con, niveau: str, code: str) -> int:
    return con.execute(
        "select count(*) from ref.territoire_niveaux where niveau = $n and code_territoire = $c",
        {"n": niveau, "c": code},
    ).fetchone()[0]


def test_default_ept_grand_orly_seine_bievre(con):
    t, levels = _levels(con, "ept:T12")
    assert len(t.communes) == 24
    assert "94081" in t.communes and "91027" in t.communes  # Vitry, Athis-Mons
    # the EPT is complete; MGP and the two départements are only partly inside: not its own
    assert levels == {"commune": 24, "ept": 1}
    # … but they contain part of it, and are published for comparison with all their communes
    assert _containing(con) == {"epci:200054781", "departement:94", "departement:91", "region:11"}
    assert _members(con, "departement", "94") == 47
    assert _members(con, "epci", "200054781") == 149  # Paris as its 20 arrondissements
    assert territory.resolve(con, "ept:200058014").communes == t.communes


def test_departement_val_de_marne(con):
    t, levels = _levels(con, "departement:94")
    assert len(t.communes) == 47
    # Paris Est Marne et Bois (T10) and Grand Paris Sud Est Avenir (T11) lie wholly in it
    assert levels == {"commune": 47, "departement": 1, "ept": 2}
    # T12 reaches into Essonne: an EPT containing part of it, like the Métropole and the région
    assert _containing(con) == {"ept:T12", "epci:200054781", "region:11"}


def test_region_includes_complete_epci_and_the_ept(con):
    t, levels = _levels(con, "region:11")
    assert levels["departement"] == 8
    # the 12 territories of the Métropole du Grand Paris, Paris (T1) included
    assert levels["ept"] == 12 and levels["region"] == 1
    assert levels["epci"] > 40
    # the one EPCI reaching over the région's border (into Eure-et-Loir)
    assert _containing(con) == {"epci:247800550"}


def test_commune_with_arrondissements(con):
    t, levels = _levels(con, "commune:75056")
    assert len(t.communes) == 20 and all(c.startswith("751") for c in t.communes)
    assert levels == {"commune": 20, "ept": 1, "departement": 1, "selection": 1}
    assert _containing(con) == {"epci:200054781", "region:11"}


def test_single_commune_and_epci(con):
    t, levels = _levels(con, "commune:94081")
    assert t.communes == ("94081",) and t.label == "Vitry-sur-Seine"
    assert levels == {"commune": 1}
    assert _containing(con) == {"ept:T12", "epci:200054781", "departement:94", "region:11"}
    t, _ = _levels(con, "epci:200054781")
    assert t.label == "Métropole du Grand Paris" and len(t.communes) > 100


def test_communes_read_are_the_territory_and_the_units_containing_it(con):
    """The SIRENE read keeps the communes of every unit containing the territory, so that the
    stock can tell whether it covers them; the level `commune` stays the territory's."""
    _levels(con, "ept:T12")
    read, inside = con.execute(
        "select count(*), count(*) filter (where dans_territoire) from ref.communes_lues"
    ).fetchone()
    (idf,) = con.execute(
        "select count(*) from ref.communes where code_region = '11' and code_commune <> '75056'"
    ).fetchone()
    assert (read, inside) == (idf, 24)
    (communes,) = con.execute(
        "select count(*) from ref.territoire_niveaux where niveau = 'commune'"
    ).fetchone()
    assert communes == 24


def test_france_publishes_every_unit_of_every_level(con):
    """`france`: every commune (arrondissements for Paris, Lyon, Marseille), EPCI, EPT,
    département and région is one of its own levels, none is a containing unit."""
    _, levels = _levels(con, "france")
    expected = con.execute(
        "select count(*), count(distinct nullif(code_epci, '')), count(distinct code_departement),"
        " count(distinct code_region) from ref.communes "
        "where code_commune not in ('75056', '69123', '13055')"
    ).fetchone()
    assert (levels["commune"], levels["epci"], levels["departement"], levels["region"]) == expected
    assert levels["ept"] == 12 and levels["selection"] == 1
    assert expected[2] == 101 and expected[3] == 18
    assert _containing(con) == set()


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
