"""Linking answers and network members to SIRENE, on real DuckDB files under tmp_path.

SIRENE months are written straight into clean tables with the columns and types of
quality.CLEAN_TYPES (one test goes through the real refresh), so each case states only the
fields it is about.
"""

from __future__ import annotations

import csv
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sirene_builder import new_siren, siret_for

from observatoire import linkage
from observatoire.core import warehouse
from observatoire.linkage import DecisionFileError
from observatoire.quality import CLEAN_TYPES

MOIS = "2026-11"
VITRY, IVRY = ("94081", "94400"), ("94041", "94200")


# ---------------------------------------------------------------------------------------------
# fixture builders


class Month:
    """One SIRENE month in the clean tables, built row by row."""

    def __init__(self, con: duckdb.DuckDBPyConnection, mois: str = MOIS) -> None:
        self.con = con
        self.mois = mois
        create_clean_tables(con)

    def unit(
        self,
        denomination: str | None,
        *,
        siren: str | None = None,
        sigle: str | None = None,
        statut: str = "O",
        etat: str = "A",
    ) -> str:
        siren = siren or new_siren()
        insert(
            self.con,
            "clean.sirene_unites_legales",
            mois=self.mois,
            siren=siren,
            statut_diffusion=statut,
            denomination=denomination,
            sigle=sigle,
            categorie_juridique="9220",
            etat_administratif=etat,
            economie_sociale_solidaire="O",
        )
        return siren

    def establishment(
        self,
        siren: str,
        n: int = 1,
        *,
        place: tuple[str, str] = VITRY,
        numero: str | None = "12",
        type_voie: str | None = "RUE",
        voie: str | None = "DE LA REPUBLIQUE",
        enseigne: str | None = None,
        usuelle: str | None = None,
        etat: str = "A",
        statut: str = "O",
        siege: bool | None = None,
        created: str | None = None,
        debut: str | None = None,
    ) -> str:
        siret = siret_for(siren, n)
        insert(
            self.con,
            "clean.sirene_etablissements",
            mois=self.mois,
            siret=siret,
            siren=siren,
            nic=siret[9:],
            statut_diffusion=statut,
            etablissement_siege=(n == 1) if siege is None else siege,
            numero_voie=numero,
            type_voie=type_voie,
            libelle_voie=voie,
            code_postal=place[1],
            code_commune=place[0],
            etat_administratif=etat,
            enseigne=enseigne,
            denomination_usuelle=usuelle,
            date_creation=created,
            date_debut=debut,
        )
        return siret

    def structure(self, denomination: str, **fields: Any) -> str:
        """A unit with one establishment (its head office); returns the SIRET."""
        unit_fields = {k: fields.pop(k) for k in ("sigle", "siren") if k in fields}
        if "unit_statut" in fields:
            unit_fields["statut"] = fields.pop("unit_statut")
        return self.establishment(self.unit(denomination, **unit_fields), **fields)


def create_clean_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in CLEAN_TYPES.items():
        cols = ", ".join(f"{name} {kind}" for name, kind in columns)
        con.execute(f"create table if not exists clean.{table} ({cols})")
    con.execute(
        "create table if not exists clean.a_rapprocher (source varchar, cle_source varchar, "
        "enregistrement_id varchar, siret_declare varchar, siren_declare varchar, nom varchar, "
        "adresse varchar, code_postal varchar, code_commune varchar, horodatage timestamp)"
    )


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"insert into {table} ({cols}) values ({marks})", list(values.values()))


_lines: dict[str, int] = {}


def record(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str = "questionnaire",
    cle: str = "vague1",
    rec_id: str | None = None,
    siret: str | None = None,
    siren: str | None = None,
    nom: str | None = None,
    adresse: str | None = None,
    place: tuple[str, str] | None = VITRY,
    horodatage: str | None = None,
) -> str:
    if rec_id is None:
        key = f"{con}:{cle}"
        _lines[key] = _lines.get(key, 1) + 1
        rec_id = f"{cle}:{_lines[key]}"
    insert(
        con,
        "clean.a_rapprocher",
        source=source,
        cle_source=cle,
        enregistrement_id=rec_id,
        siret_declare=siret,
        siren_declare=siren,
        nom=nom,
        adresse=adresse,
        code_postal=place[1] if place else None,
        code_commune=place[0] if place else None,
        horodatage=horodatage,
    )
    return rec_id


def wrong_key(siret: str) -> str:
    return siret[:-1] + str((int(siret[-1]) + 1) % 10)


def links(con: duckdb.DuckDBPyConnection, mois: str = MOIS) -> dict[str, dict[str, Any]]:
    cur = con.execute("select * from clean.rapprochements where mois = ?", [mois])
    names = [d[0] for d in cur.description]
    return {row[3]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def queue(con: duckdb.DuckDBPyConnection, mois: str = MOIS) -> dict[str, dict[str, Any]]:
    cur = con.execute("select * from clean.rapprochements_a_revoir where mois = ?", [mois])
    names = [d[0] for d in cur.description]
    return {row[3]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


NOISE = [
    "CLUB SPORTIF MUNICIPAL",
    "AMICALE DES LOCATAIRES",
    "COMPAGNIE THEATRALE LE FIL",
    "ECOLE DE MUSIQUE ARPEGE",
    "RESTAURANT SOLIDAIRE LA TABLE",
    "BOXING CLUB",
    "CENTRE SOCIAL LES PORTES",
    "JARDIN PARTAGE DES LILAS",
    "SECOURS ENTRAIDE",
    "UNION LOCALE DES PARENTS",
]


@pytest.fixture
def db(tmp_path: Path):
    with warehouse.connect(tmp_path / "obs.duckdb") as con:
        yield con


@pytest.fixture
def month(db) -> Month:
    m = Month(db)
    for i, name in enumerate(NOISE):
        m.structure(f"{name} {i}", numero=str(100 + i), voie="DES MARTYRS")
        m.structure(f"{name} IVRY", place=IVRY, numero=str(i + 1), voie="GAMBETTA")
    return m


# ---------------------------------------------------------------------------------------------
# the methods, one record each


def test_each_method(db, month: Month):
    m = month
    exact = m.structure("RESSOURCERIE DU FLEUVE")
    spaced = m.structure("ATELIER VELO SOLIDAIRE")
    keyed = m.structure("EPICERIE SOCIALE DU PORT", numero="3", voie="DU PORT")
    # SIREN + commune: a closed establishment, the active one elsewhere in the commune
    siren = m.unit("REGIE DE QUARTIER")
    m.establishment(siren, 1, place=IVRY)
    closed_here = m.establishment(siren, 2, etat="F", siege=False)
    active_here = m.establishment(siren, 3, numero="40", siege=False)
    # SIREN with two active establishments in the commune: a reviewer chooses
    two = m.unit("MAISON DES SOLIDARITES")
    m.establishment(two, 1)
    m.establishment(two, 2, numero="8")
    named = m.structure("JARDINS DE L'ESPERANCE", numero="5", voie="DE LA PAIX")
    sign = m.establishment(m.unit("SOCIETE COOPERATIVE X27"), enseigne="LE CHAUDRON")
    weak = m.structure("RESSOURCERIE LA PETITE REPRISE", numero="77", voie="CARNOT")
    ferme = m.structure("CAFE ASSOCIATIF LE ZINC", etat="F")

    ids = {
        "exact": record(db, siret=exact, nom="Ressourcerie du fleuve"),
        "spaced": record(db, siret=f"{spaced[:3]} {spaced[3:6]} {spaced[6:9]} {spaced[9:]}"),
        "keyed": record(db, siret=wrong_key(keyed), nom="Epicerie"),
        "siren": record(db, siren=siren),
        "two": record(db, siren=two),
        "named": record(
            db, nom="Association Les Jardins de l'Espérance", adresse="5, rue de la Paix"
        ),
        "sign": record(db, nom="Le Chaudron", adresse="12 r. de la République 94400 Vitry"),
        "weak": record(db, nom="La Petite Reprise"),
        "nothing": record(db, nom="Collectif introuvable", adresse="1 impasse Nulle Part"),
        "ferme": record(db, siret=ferme),
        "empty": record(db, place=None),
    }
    result = linkage.link_month(db, MOIS)
    got = links(db)
    expected = {
        "exact": ("lie", "siret", exact),
        "spaced": ("lie", "siret", spaced),
        "keyed": ("lie", "siren_commune", keyed),
        "siren": ("lie", "siren_commune", active_here),
        "two": ("a_revoir", "siren_commune", None),
        "named": ("lie", "nom_commune", named),
        "sign": ("lie", "nom_commune", sign),
        "weak": ("a_revoir", "nom_commune", None),
        "nothing": ("non_lie", "aucune", None),
        "ferme": ("lie", "siret", ferme),
        "empty": ("non_lie", "aucune", None),
    }
    assert {k: (got[v]["statut"], got[v]["methode"], got[v]["siret"]) for k, v in ids.items()} == (
        expected
    )
    assert closed_here != active_here
    assert got[ids["ferme"]]["ferme"] is True
    assert got[ids["exact"]]["ferme"] is False
    assert got[ids["nothing"]]["ferme"] is None
    assert got[ids["exact"]]["siren"] == exact[:9]
    assert got[ids["named"]]["score"] >= linkage.DEFAULT_THRESHOLD
    assert got[ids["exact"]]["score"] == 1.0
    # every record not linked is in the queue, with the candidate when there is one
    q = queue(db)
    assert set(q) == {ids["two"], ids["weak"], ids["nothing"], ids["empty"]}
    assert q[ids["weak"]]["siret_candidat"] == weak
    assert q[ids["weak"]]["nom_candidat"] == "RESSOURCERIE LA PETITE REPRISE"
    assert linkage.DEFAULT_REVIEW_THRESHOLD <= q[ids["weak"]]["score"] < linkage.DEFAULT_THRESHOLD
    assert q[ids["weak"]]["motif"] == linkage.MOTIF_LOW
    assert q[ids["two"]]["siret_candidat"] == siret_for(two, 1)  # the head office first
    assert q[ids["two"]]["motif"].startswith(linkage.MOTIF_SEVERAL_ACTIVE)
    assert q[ids["nothing"]]["motif"] == "aucun candidat"
    assert q[ids["nothing"]]["siret_candidat"] is None
    assert result.records == len(ids)
    assert result.by_status == {"lie": 7, "a_revoir": 2, "non_lie": 2}
    assert result.closed == 1
    assert result.review_queue == 4


# ---------------------------------------------------------------------------------------------
# a realistic volume: ~450 k establishments, 600 records


SYLLABLES = [
    "BA", "BE", "BO", "CA", "CO", "DA", "DI", "FA", "GA", "LA", "LI", "LO", "MA", "ME", "MI",
    "NA", "NO", "PA", "PO", "RA", "RE", "RI", "SA", "SE", "TA", "TO", "VA", "VI", "ZA", "ZO",
]  # fmt: skip
KINDS = [
    "ASSOCIATION", "CLUB", "COMPAGNIE", "ATELIER", "JARDIN", "MAISON", "COLLECTIF", "AMICALE",
    "ECOLE", "RESSOURCERIE", "EPICERIE", "THEATRE", "CENTRE", "UNION", "COOPERATIVE", "SCOP",
]  # fmt: skip
STREETS = [
    "DE LA REPUBLIQUE", "JEAN JAURES", "GAMBETTA", "VICTOR HUGO", "DES MARTYRS", "DU PORT",
    "PASTEUR", "DE LA PAIX", "CARNOT", "DES LILAS", "DU GENERAL DE GAULLE", "MARCEL CACHIN",
    "PAUL VAILLANT COUTURIER", "DES ECOLES", "DE LA GARE", "DU MOULIN", "DES PEUPLIERS",
]  # fmt: skip


def build_volume(con: duckdb.DuckDBPyConnection, units: int) -> None:
    """Two establishments per unit, 40 communes, names from a syllable vocabulary."""
    create_clean_tables(con)
    con.execute(
        "create temp macro luhn_key(b) as (10 - list_sum(list_transform(range(1, length(b) + 1),"
        " lambda j: case when (length(b) + 1 - j) % 2 = 1 then"
        " (case when 2 * cast(substr(b, j, 1) as int) > 9 then 2 * cast(substr(b, j, 1) as int)"
        " - 9 else 2 * cast(substr(b, j, 1) as int) end) else cast(substr(b, j, 1) as int) end"
        ")) % 10) % 10"
    )
    con.execute(
        "create temp table words as select row_number() over () - 1 as w, a || b || c as mot "
        "from unnest($s) as t(a), unnest($s) as u(b), unnest(['', 'N', 'R', 'L']) as v(c)",
        {"s": SYLLABLES},
    )
    con.execute(
        "create temp table kinds as select generate_subscripts($k, 1) - 1 as k, unnest($k) as kind",
        {"k": KINDS},
    )
    con.execute(
        "create temp table streets as select generate_subscripts($s, 1) - 1 as s, "
        "unnest($s) as voie",
        {"s": STREETS},
    )
    con.execute(
        """
        create temp table units as
        select u, b || luhn_key(b) as siren,
            case when u % 5 < 2 then kind || ' ' else '' end
                || w1.mot || ' ' || w2.mot || case when u % 3 = 0 then ' ' || w3.mot else '' end
                as denomination,
            case when u % 20 = 0 then left(w1.mot, 2) || left(w2.mot, 2) end as sigle,
            case when u % 33 = 0 then 'P' else 'O' end as statut
        from (select range as u, cast(20000000 + range as varchar) as b from range($n))
        join kinds on kinds.k = u % 16
        join words as w1 on w1.w = hash(u, 1) % 3600
        join words as w2 on w2.w = hash(u, 2) % 3600
        join words as w3 on w3.w = hash(u, 3) % 3600
        """,
        {"n": units},
    )
    con.execute(
        """
        insert into clean.sirene_unites_legales
            (mois, siren, statut_diffusion, denomination, sigle, categorie_juridique,
             etat_administratif)
        select $mois, siren, statut, denomination, sigle, '9220', 'A' from units
        """,
        {"mois": MOIS},
    )
    con.execute(
        """
        insert into clean.sirene_etablissements
            (mois, siret, siren, nic, statut_diffusion, etablissement_siege, numero_voie,
             type_voie, libelle_voie, code_postal, code_commune, etat_administratif, enseigne)
        with e as (
            select u.*, n, siren || lpad(cast(n as varchar), 4, '0') as body,
                (u.u * (7 * n - 6) + 3 * n) % 40 as c
            from units as u, (select unnest([1, 2]) as n)
        )
        select $mois, body || luhn_key(body), siren, right(body || luhn_key(body), 5), statut,
            n = 1, cast(1 + hash(u, n, 4) % 150 as varchar), 'RUE', s.voie,
            cast(94000 + 10 * c as varchar), cast(94100 + c as varchar),
            case when hash(u, n) % 7 = 0 then 'F' else 'A' end,
            case when n = 2 and u % 10 = 0 then 'BOUTIQUE ' || right(denomination, 6) end
        from e join streets as s on s.s = hash(u, n, 5) % 17
        """,
        {"mois": MOIS},
    )


def build_volume_records(con: duckdb.DuckDBPyConnection, units: int) -> dict[str, str | None]:
    """600 records drawn from the register with the usual damage, and their right answers."""
    sample = con.execute(
        """
        select e.siret, e.siren, e.code_commune, e.code_postal, u.denomination,
            e.numero_voie || ' rue ' || lower(e.libelle_voie) as adresse
        from clean.sirene_etablissements as e join clean.sirene_unites_legales as u using (siren)
        where e.etat_administratif = 'A' and e.etablissement_siege
        order by hash(e.siret) limit 500
        """
    ).fetchall()
    truth: dict[str, str | None] = {}
    for i, (siret, siren, commune, cp, name, adresse) in enumerate(sample):
        kind = i % 10
        rid = f"vague1:{i + 2}"
        fields: dict[str, Any] = {"rec_id": rid, "place": (commune, cp)}
        if kind in (0, 1):
            fields["siret"] = siret
        elif kind == 2:
            fields["siret"] = f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
        elif kind == 3:
            fields.update(siret=wrong_key(siret), nom=name.title())
        elif kind == 4:
            fields.update(siren=siren)
        elif kind in (5, 6):
            fields.update(nom=name.lower().replace("association ", "assoc. "), adresse=adresse)
        elif kind == 7:  # a typo in the name, right address
            fields.update(nom=name[:3] + name[4:], adresse=adresse)
        else:  # the name only
            fields.update(nom=name.title())
        record(con, **fields)
        truth[rid] = siret
    for i in range(100):  # structures absent from SIRENE
        rid = f"reseau1:{i + 2}"
        record(
            con,
            source="reseau",
            cle="reseau1",
            rec_id=rid,
            nom=f"Collectif imaginaire numéro {i}",
            place=(str(94100 + i % 40), str(94000 + 10 * (i % 40))),
        )
        truth[rid] = None
    return truth


def test_volume_links_mostly_right(tmp_path: Path):
    """450 k establishments, 600 records: blocking keeps the right candidates at this volume.

    Its speed is measured by `benchmarks/rapprochement.py volume`, not asserted here.
    """
    with warehouse.connect(tmp_path / "obs.duckdb") as con:
        build_volume(con, units=225_000)
        truth = build_volume_records(con, units=225_000)
        assert con.execute("select count(*) from clean.sirene_etablissements").fetchone()[0] == (
            450_000
        )
        result = linkage.link_month(con, MOIS)
        quality = linkage.evaluate(con, MOIS, truth)
    assert result.records == 600
    assert quality["precision"] >= 0.97
    assert quality["recall"] >= 0.8


# ---------------------------------------------------------------------------------------------
# retenu, ferme, privacy


def test_latest_answer_of_a_wave_is_kept(db, month: Month):
    siret = month.structure("MAISON DES ASSOCIATIONS")
    first = record(db, rec_id="vague1:2", siret=siret, horodatage="2026-03-02 10:00:00")
    second = record(db, rec_id="vague1:3", siret=siret, horodatage="2026-03-05 09:00:00")
    # same time as the second: the later line of the file wins (10 > 3 as numbers)
    tie = record(db, rec_id="vague1:10", siret=siret, horodatage="2026-03-05 09:00:00")
    other_wave = record(db, cle="vague2", rec_id="vague2:2", siret=siret)
    member = record(db, source="reseau", cle="cress", rec_id="cress:2", siret=siret)
    member_twice = record(db, source="reseau", cle="cress", rec_id="cress:3", siret=siret)
    lost = [record(db, rec_id=f"vague1:{n}", nom="Structure inconnue") for n in (20, 21)]
    linkage.link_month(db, MOIS)
    got = links(db)
    retained = {k: got[k]["retenu"] for k in got}
    assert retained == {
        first: False,
        second: False,
        tie: True,
        other_wave: True,
        member: True,
        member_twice: True,
        lost[0]: True,
        lost[1]: True,
    }


def test_closed_establishment_is_flagged(db, month: Month):
    siren = month.unit("CAFE DES ENFANTS")
    closed = month.establishment(siren, 1, etat="F")
    rec = record(db, siret=closed)
    by_siren = record(db, siren=siren)
    linkage.link_month(db, MOIS)
    got = links(db)
    assert (got[rec]["statut"], got[rec]["ferme"]) == ("lie", True)
    # only a closed establishment in the commune: still the structure's establishment there
    assert (got[by_siren]["statut"], got[by_siren]["siret"], got[by_siren]["ferme"]) == (
        "lie",
        closed,
        True,
    )


def test_a_move_within_the_commune_is_followed(db, month: Month):
    """Closed SIRET, one establishment of the unit opened in the commune around then: it moved."""
    siren = month.unit("RECYCLERIE DU FORT")
    old = month.establishment(
        siren, 1, etat="F", numero="3", voie="RUE DU FORT", created="2001-05-02", debut="2024-06-30"
    )
    # opened when the old one closed (a month before: the lease overlapped)
    new = month.establishment(
        siren, 2, numero="40", voie="AVENUE DE LA PAIX", created="2024-06-01", debut="2024-06-01"
    )
    by_siret = record(db, siret=old)
    # the list still has the old address: the name path finds the closed one first
    by_name = record(db, nom="Recyclerie du Fort", adresse="3 rue du Fort")
    ceased = month.unit("ATELIER CESSE", etat="C")
    gone = month.establishment(ceased, 1, etat="F")
    by_ceased = record(db, siret=gone)
    two = month.unit("DEUX SITES")
    closed_two = month.establishment(two, 1, etat="F", debut="2025-01-31")
    month.establishment(two, 2, created="2025-02-01")
    month.establishment(two, 3, created="2025-02-01")
    ambiguous = record(db, siret=closed_two)
    # a site that was already there when the other closed: not where the structure went
    other = month.unit("AUTRE SITE")
    closed_other = month.establishment(other, 1, etat="F", debut="2025-01-31")
    month.establishment(other, 2, created="2010-09-01")
    second_site = record(db, siret=closed_other)
    linkage.link_month(db, MOIS)
    got = links(db)
    for rec in (by_siret, by_name):
        assert (got[rec]["siret"], got[rec]["methode"], got[rec]["ferme"]) == (
            new,
            "transfert",
            False,
        )
    # no active establishment left, or two to choose from: the closed link stays, flagged
    assert (got[by_ceased]["siret"], got[by_ceased]["ferme"]) == (gone, True)
    assert (got[ambiguous]["siret"], got[ambiguous]["methode"], got[ambiguous]["ferme"]) == (
        closed_two,
        "siret",
        True,
    )
    assert (got[second_site]["siret"], got[second_site]["ferme"]) == (closed_other, True)


def test_record_name_hidden_next_to_a_non_diffusible_candidate(db, month: Month, tmp_path):
    """The respondent typed the unit's name: shown beside a P candidate, it would name it."""
    hidden = month.structure("ABRI DISCRET", unit_statut="P")
    rec = record(db, nom="Abri discret des familles")
    linkage.link_month(db, MOIS)
    row = queue(db)[rec]
    assert (row["siret_candidat"], row["nom"], row["nom_candidat"]) == (hidden, None, None)
    path = tmp_path / "revue.csv"
    linkage.export_review_queue(db, MOIS, path)
    assert "DISCRET" not in path.read_text(encoding="utf-8-sig").upper()


def test_names_of_non_diffusible_candidates_are_never_shown(db, month: Month, tmp_path: Path):
    hidden_unit = month.structure("REFUGE SECRET DES CHATS", unit_statut="P")
    hidden_sign = month.establishment(
        month.unit("COOPERATIVE OUVERTE"), enseigne="ATELIER CACHE DES CHIENS", statut="P"
    )
    shown = month.structure("RESSOURCERIE VISIBLE DES OISEAUX")
    ids = [
        record(db, nom="Chats"),
        record(db, nom="Chiens"),
        record(db, nom="Oiseaux"),
    ]
    linkage.link_month(db, MOIS)
    q = queue(db)
    assert [q[i]["siret_candidat"] for i in ids] == [hidden_unit, hidden_sign, shown]
    assert [q[i]["nom_candidat"] for i in ids] == [None, None, "RESSOURCERIE VISIBLE DES OISEAUX"]
    path = tmp_path / "revue.csv"
    assert linkage.export_review_queue(db, MOIS, path) == 3
    text = path.read_text(encoding="utf-8-sig")
    assert "SECRET" not in text and "CACHE" not in text and "COOPERATIVE" not in text
    assert "RESSOURCERIE VISIBLE DES OISEAUX" in text


# ---------------------------------------------------------------------------------------------
# review round trip


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def write_csv(path: Path, rows: list[dict[str, str]], *, delimiter: str = ";", **kw: Any) -> None:
    encoding = kw.pop("encoding", "utf-8-sig")
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter, **kw)
        w.writeheader()
        w.writerows(rows)


def test_review_round_trip(tmp_path: Path):
    db_path = tmp_path / "obs.duckdb"
    with warehouse.connect(db_path) as con:
        m = Month(con)
        weak = m.structure("RESSOURCERIE LA PETITE REPRISE")
        other = m.structure("GARAGE SOLIDAIRE DU SUD", place=IVRY)
        two = m.unit("MAISON DES SOLIDARITES")
        m.establishment(two, 1)
        m.establishment(two, 2, numero="8")
        ids = {
            "weak": record(con, nom="La Petite Reprise"),
            "nothing": record(con, nom="Garage du sud", place=None, rec_id="vague1:40"),
            "two": record(con, siren=two),
        }
        linkage.link_month(con, MOIS)
        path = tmp_path / "a_revoir.csv"
        assert linkage.export_review_queue(con, MOIS, path) == 3
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        assert raw.splitlines()[0].decode("utf-8-sig") == ";".join(linkage.REVIEW_COLUMNS)
        rows = read_csv(path)
        by_id = {r["enregistrement_id"]: r for r in rows}
        assert [r["enregistrement_id"] for r in rows] == [ids["weak"], ids["two"], "vague1:40"]
        assert by_id[ids["weak"]]["siret_candidat"] == weak
        assert "," in by_id[ids["weak"]]["score"]  # decimal comma for Excel
        assert all(r["decision"] == r["siret_retenu"] == "" for r in rows)
        by_id[ids["weak"]]["decision"] = "accepte"  # the candidate, siret_retenu left empty
        by_id[ids["nothing"]].update(
            decision="Accepté", siret_retenu=f"{other[:9]} {other[9:]}", commentaire="vu"
        )
        by_id[ids["two"]].update(decision="rejete", commentaire="appeler le 06 12 34 56 78")
        write_csv(path, rows)
        when = datetime(2026, 12, 1, 9, 30)
        assert linkage.import_decisions(con, path, decide_le=when) == 3
        stored = con.execute(
            "select siret, decision, decide_le, commentaire, source, cle_source "
            "from ref.decisions_rapprochement order by decision, siret"
        ).fetchall()
        assert sorted(stored, key=str) == sorted(
            [
                (weak, "accepte", when, None, "questionnaire", "vague1"),
                (other, "accepte", when, "vu", "questionnaire", "vague1"),
                (None, "rejete", when, "appeler le [téléphone masqué]", "questionnaire", "vague1"),
            ],
            key=str,
        )
        for _ in range(2):  # applied, and still applied on the next refresh
            linkage.link_month(con, MOIS)
            got = links(con)
            assert {
                k: (got[v]["methode"], got[v]["statut"], got[v]["siret"]) for k, v in ids.items()
            } == {
                "weak": ("decision", "lie", weak),
                "nothing": ("decision", "lie", other),
                "two": ("decision", "non_lie", None),
            }
            assert queue(con) == {}  # a rejected candidate is not proposed again
    with warehouse.connect(db_path) as con:  # decisions survive re-opening the warehouse
        linkage.link_month(con, MOIS)
        assert {v["methode"] for v in links(con).values()} == {"decision"}
        # the record changes (a corrected name): the old decision no longer applies
        con.execute(
            "update clean.a_rapprocher set nom = 'Petite Reprise' where nom = ?",
            ["La Petite Reprise"],
        )
        linkage.link_month(con, MOIS)
        assert links(con)[ids["weak"]]["methode"] == "nom_commune"
        assert ids["weak"] in queue(con)


def _filled(tmp_path: Path, **changes: str) -> tuple[Path, list[dict[str, str]]]:
    rows = [
        dict.fromkeys(linkage.REVIEW_COLUMNS, "")
        | {"empreinte": "a" * 40, "decision": "rejete", "source": "reseau", "cle_source": "x"},
        dict.fromkeys(linkage.REVIEW_COLUMNS, "") | {"empreinte": "b" * 40} | changes,
    ]
    return tmp_path / "decisions.csv", rows


@pytest.mark.parametrize(
    ("changes", "column", "message"),
    [
        ({"decision": "peut-être"}, "decision", "accepte ou rejete attendu"),
        ({"decision": "accepte", "siret_retenu": "12345678901234"}, "siret_retenu", "valide"),
        ({"decision": "accepte", "siret_retenu": "1,23457E+13"}, "siret_retenu", "texte"),
        ({"decision": "accepte"}, "siret_candidat", "remplir siret_retenu"),
        ({"decision": "rejete", "empreinte": "b" * 39}, "empreinte", "empreinte"),
    ],
)
def test_decision_file_errors_name_line_and_column(db, tmp_path: Path, changes, column, message):
    path, rows = _filled(tmp_path, **changes)
    write_csv(path, rows)
    with pytest.raises(DecisionFileError) as err:
        linkage.import_decisions(db, path)
    assert (err.value.line, err.value.column) == (3, column)
    assert str(path) in str(err.value) and "ligne 3" in str(err.value)
    assert message in str(err.value)
    # nothing written: the first, valid row was not kept either
    assert not warehouse.table_exists(db, "ref", "decisions_rapprochement")


def test_decision_file_without_decision_column(db, tmp_path: Path):
    path = tmp_path / "d.csv"
    path.write_text("empreinte;siret_retenu\n" + "a" * 40 + ";\n", encoding="utf-8")
    with pytest.raises(DecisionFileError) as err:
        linkage.import_decisions(db, path)
    assert (err.value.line, err.value.column) == (1, "decision")


def test_decision_file_as_excel_saves_it(db, tmp_path: Path):
    """Plain "CSV" from a French Excel: Windows-1252, maybe `,`; empty decisions ignored."""
    siret = siret_for(new_siren(), 1)
    path, rows = _filled(tmp_path, decision="Accepté", siret_retenu=siret, commentaire="déjà vu")
    rows.append(dict.fromkeys(linkage.REVIEW_COLUMNS, "") | {"empreinte": "c" * 40})
    write_csv(path, rows, delimiter=",", encoding="cp1252")
    assert linkage.import_decisions(db, path) == 2
    again = linkage.import_decisions(db, path)  # an upsert: one row per fingerprint
    assert again == 2
    assert db.execute(
        "select empreinte, decision, siret, commentaire from ref.decisions_rapprochement "
        "order by empreinte"
    ).fetchall() == [("a" * 40, "rejete", None, None), ("b" * 40, "accepte", siret, "déjà vu")]


# ---------------------------------------------------------------------------------------------
# quality figures, normalisation, fingerprint, re-runs


def test_evaluate_on_a_labelled_set(db, month: Month):
    m = month
    right = [m.structure(f"STRUCTURE EXACTE {n}") for n in range(3)]
    confused = m.structure("STRUCTURE DECLAREE")
    actual = m.structure("STRUCTURE REELLE")
    weak = m.structure("RESSOURCERIE LA PETITE REPRISE")
    missed = m.structure("ASSOCIATION OUBLIEE", place=IVRY)
    truth = {record(db, siret=s): s for s in right}
    truth[record(db, siret=confused)] = actual  # the answer gave another structure's SIRET
    truth[record(db, nom="La Petite Reprise")] = weak
    truth[record(db, nom="Personne")] = None
    truth[record(db, nom="Structure oubliée", place=None)] = missed
    linkage.link_month(db, MOIS)
    figures = linkage.evaluate(db, MOIS, truth | {"vague1:999": None})
    assert figures["found"] == 7 and figures["missing"] == ["vague1:999"]
    assert (figures["lie"], figures["lie_correct"], figures["lie_wrong"]) == (4, 3, 1)
    assert (figures["a_revoir"], figures["a_revoir_correct"]) == (1, 1)
    assert (figures["non_lie"], figures["non_lie_correct"]) == (2, 1)
    assert figures["match_rate"] == pytest.approx(4 / 7)
    assert figures["precision"] == pytest.approx(3 / 4)
    assert figures["recall"] == pytest.approx(3 / 6)
    assert figures["recall_with_review"] == pytest.approx(4 / 6)
    assert figures["review_precision"] == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Association Les Jardins de l'Espérance", "JARDINS ESPERANCE"),
        ("ASSOC. LES JARDINS DE L ESPERANCE", "JARDINS ESPERANCE"),
        ("  jardins   de l’espérance (loi 1901) ", "JARDINS ESPERANCE"),
        ("SARL Œuvre & Co", "OEUVRE CO"),
        ("S.A.S. Vélo-École", "VELO ECOLE"),
        ("SAS VELO ECOLE", "VELO ECOLE"),
        ("Association", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_name(raw, expected):
    assert linkage.normalise_name(raw) == expected


def test_fingerprint_ignores_position_and_typing_not_content():
    base = ("questionnaire", "vague1", "123 456 789 00012", "Les Jardins", "12 rue X", "94400",
            "94081")  # fmt: skip
    fp = linkage.fingerprint(*base)
    assert len(fp) == 40
    assert linkage.fingerprint(*base) == fp
    assert linkage.fingerprint(base[0], base[1], "12345678900012", "LES  JARDINS", "12 Rue x",
                               *base[5:]) == fp  # fmt: skip
    assert linkage.fingerprint(base[0], base[1], base[2], "Les Jardins 2", *base[4:]) != fp
    assert linkage.fingerprint(base[0], "vague2", *base[2:]) != fp


def test_rerun_is_identical_and_other_months_are_kept(db, month: Month):
    siret = month.structure("RESSOURCERIE DU FLEUVE")
    month.structure("RESSOURCERIE LA PETITE REPRISE")
    record(db, siret=siret)
    record(db, nom="La Petite Reprise")
    record(db, nom="Inconnue")
    december = Month(db, "2026-12")
    december.structure("RESSOURCERIE DU FLEUVE", siren=siret[:9])
    linkage.link_month(db, MOIS)
    first = sorted(links(db).items()), sorted(queue(db).items())
    linkage.link_month(db, "2026-12")
    linkage.link_month(db, MOIS)
    assert (sorted(links(db).items()), sorted(queue(db).items())) == first
    assert db.execute("select count(*) from clean.rapprochements").fetchone()[0] == 6
    assert links(db, "2026-12")[first[0][0][0]]["statut"] == "lie"


def test_bad_arguments(db, month: Month):
    with pytest.raises(ValueError, match="seuils"):
        linkage.link_month(db, MOIS, seuil=0.5, seuil_revue=0.8)
    with pytest.raises(ValueError, match="mois invalide"):
        linkage.link_month(db, "2026-13-01")
    with pytest.raises(ValueError, match="aucun établissement"):
        linkage.link_month(db, "2027-01")


def test_splink_stays_quiet(db, month: Month, caplog):
    month.structure("RESSOURCERIE LA PETITE REPRISE")
    record(db, nom="La Petite Reprise")
    caplog.set_level(logging.DEBUG)
    linkage.link_month(db, MOIS)
    assert not [r for r in caplog.records if r.name.startswith("splink")]
    # splink worked on its own connection: no work table left in the warehouse
    assert (
        db.execute(
            "select count(*) from duckdb_tables() where table_name like '%splink%' "
            "or table_name like '\\_lk\\_%' escape '\\'"
        ).fetchone()[0]
        == 0
    )


def test_reads_month_tables_behind_views(db):
    """In the warehouse, clean SIRENE tables are views over one table per month."""
    for mois in (MOIS, "2026-12"):
        for table, columns in CLEAN_TYPES.items():
            cols = ", ".join(f"{name} {kind}" for name, kind in columns)
            db.execute(f"create table {warehouse.month_table('clean', table, mois)} ({cols})")
    for table in CLEAN_TYPES:
        warehouse.refresh_view(db, "clean", table)
    create_clean_tables(db)  # clean.a_rapprocher only: the others exist as views
    siren = new_siren()
    for mois, etat in ((MOIS, "A"), ("2026-12", "F")):
        insert(
            db,
            warehouse.month_table("clean", "sirene_unites_legales", mois),
            mois=mois,
            siren=siren,
            statut_diffusion="O",
            denomination="RESSOURCERIE LA PETITE REPRISE",
        )
        insert(
            db,
            warehouse.month_table("clean", "sirene_etablissements", mois),
            mois=mois,
            siret=siret_for(siren),
            siren=siren,
            statut_diffusion="O",
            code_commune=VITRY[0],
            code_postal=VITRY[1],
            numero_voie="12",
            libelle_voie="DE LA REPUBLIQUE",
            etat_administratif=etat,
        )
    rec = record(db, nom="Ressourcerie La Petite Reprise", adresse="12 rue de la République")
    linkage.link_month(db, MOIS)
    linkage.link_month(db, "2026-12")
    assert [
        (links(db, m)[rec]["methode"], links(db, m)[rec]["ferme"]) for m in (MOIS, "2026-12")
    ] == [
        ("nom_commune", False),
        ("nom_commune", True),
    ]
