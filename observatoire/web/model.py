"""What a territory page shows, as plain data: key figures and tables of cells.

The HTML page, the CSV downloads and the API's key figures are all built from this one model, so
a downloaded table holds exactly the rows and columns the page shows. A cell whose row the
secrecy stream marked (`statut_secret` other than `publie`) carries no value, only its status.
Breakdowns come from the indicator cubes: the rows where every other dimension is `ensemble`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from observatoire.core.territory import Territory
from observatoire.web import labels
from observatoire.web.snapshot import PUBLISHED, Snapshot

CUBE_DIMS = ("famille", "section_naf", "tranche_effectifs")
# questionnaire answers are given in confidence: the only tables of the page with secret cells
SECRET_NOTE = (
    "« secret » : les réponses au questionnaire sont confidentielles. Une case de moins de "
    "3 répondants est masquée, ainsi que les cases qui permettraient de la recalculer à "
    "partir des autres chiffres publiés."
)
# a network list given in confidence: its own rows follow the same rules
NETWORK_SECRET_NOTE = (
    "« secret » : ce réseau a confié sa liste de membres à l'observatoire sans la publier. Un "
    "territoire qui compte 1 ou 2 de ses membres est masqué, ainsi que les cases qui "
    "permettraient de le recalculer."
)
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class Cell:
    value: Any
    kind: str = "int"  # int | jobs | pct | text
    secret: bool = False
    motif: str | None = None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "int"


@dataclass
class Table:
    id: str
    caption: str
    columns: list[Column]
    rows: list[list[Cell]]
    indicators: list[str]  # anchors of /methode for the definitions
    note: str | None = None
    # why its cells can be secret, said once under the table (never per cell)
    secret_reason: str | None = None

    @property
    def has_secret(self) -> bool:
        return any(c.secret for row in self.rows for c in row)


@dataclass
class KeyFigure:
    id: str
    label: str
    cell: Cell
    detail: str | None
    indicator: str
    extra: dict[str, Cell] = field(default_factory=dict)


@dataclass
class TerritoryPage:
    territory: Territory
    mois: str
    key_figures: list[KeyFigure]
    tables: list[Table]
    communes: list[tuple[str, str, Cell]]  # (code, name, ESS establishments), for the map
    secret_missing: list[str]  # indicators read that carry no secrecy status

    def table(self, table_id: str) -> Table | None:
        return next((t for t in self.tables if t.id == table_id), None)


def label(snapshot: Snapshot, dimension: str, code: str) -> str:
    """French label of a code: the snapshot's nomenclatures first, then our fallback."""
    names = snapshot.cached("nomenclatures", lambda: _nomenclatures(snapshot))
    return names.get((dimension, code)) or labels.FALLBACK.get(dimension, {}).get(code) or code


def _nomenclatures(snapshot: Snapshot) -> dict[tuple[str, str], str]:
    if not snapshot.has_table("nomenclatures"):
        return {}
    rows = snapshot.query("select dimension, code, libelle from indicators.nomenclatures")
    return {(r["dimension"], r["code"]): r["libelle"] for r in rows}


def cell(row: dict[str, Any] | None, column: str, kind: str = "int") -> Cell:
    """One measure of a row; a missing cube row is a count of zero, a secret row has no value."""
    if row is None:
        return Cell(0 if kind != "pct" else None, kind)
    status = row.get("statut_secret") or PUBLISHED
    if status != PUBLISHED:
        return Cell(None, kind, True, row.get("motif_secret"))
    return Cell(row.get(column), kind)


def _rows(snapshot: Snapshot, name: str, where: str, params: dict[str, Any]) -> list[dict]:
    if not snapshot.has_table(name):
        return []
    # `name` is a catalogue name checked against the snapshot's schema; values are parameters
    return snapshot.query(
        f"select * from indicators.{name} "
        f"where niveau = $niveau and code_territoire = $code and {where}",
        params,
    )


def _cube(snapshot: Snapshot, name: str, t: Territory) -> dict[tuple, dict]:
    """ESS and all-sector rows of a cube where at least two of its three dimensions are ensemble."""
    rows = _rows(
        snapshot,
        name,
        "perimetre in ('ess', 'ensemble') and ((famille = 'ensemble')::int "
        "+ (section_naf = 'ensemble')::int + (tranche_effectifs = 'ensemble')::int) >= 2",
        {"niveau": t.level, "code": t.code},
    )
    return {
        (r["perimetre"], r["mois"], r["famille"], r["section_naf"], r["tranche_effectifs"]): r
        for r in rows
    }


def build(snapshot: Snapshot, t: Territory) -> TerritoryPage:
    mois = snapshot.mois
    params = {"niveau": t.level, "code": t.code, "mois": mois}
    actifs = _cube(snapshot, "etablissements_actifs", t)
    employeurs = _cube(snapshot, "etablissements_employeurs", t)
    emplois = _cube(snapshot, "emplois_salaries_estimes", t)
    part = {
        r["mois"]: r
        for r in _rows(
            snapshot,
            "part_ess_emploi_prive",
            "section_naf = 'ensemble' and tranche_effectifs = 'ensemble'",
            params,
        )
    }
    total = ("ess", mois, ENSEMBLE, ENSEMBLE, ENSEMBLE)
    jobs = emplois.get(total)
    key_figures = [
        KeyFigure(
            "etablissements_ess",
            "Établissements actifs de l'ESS",
            cell(actifs.get(total), "nb_etablissements"),
            None,
            "etablissements_actifs",
            {"tous": cell(actifs.get(("ensemble", *total[1:])), "nb_etablissements")},
        ),
        KeyFigure(
            "employeurs_ess",
            "Établissements employeurs de l'ESS",
            cell(employeurs.get(total), "nb_etablissements_employeurs"),
            None,
            "etablissements_employeurs",
        ),
        KeyFigure(
            "emplois_ess",
            "Emplois salariés de l'ESS (estimation centrale)",
            cell(jobs, "emplois_central", "jobs"),
            None,
            "emplois_salaries_estimes",
            {
                "bas": cell(jobs, "emplois_bas", "jobs"),
                "haut": cell(jobs, "emplois_haut", "jobs"),
                # always false since Sirene tables are public (issue 13): kept for the API
                "fourchette_elargie": cell(jobs, "fourchette_elargie", "text"),
            },
        ),
        KeyFigure(
            "part_emploi_prive",
            "Part de l'ESS dans l'emploi salarié privé",
            cell(part.get(mois), "part_ess_emplois", "pct"),
            None,
            "part_ess_emploi_prive",
            {"etablissements": cell(part.get(mois), "part_ess_etablissements", "pct")},
        ),
    ]
    tables = [
        _key_table(key_figures, mois),
        _evolution(snapshot, actifs, employeurs, emplois),
        *_breakdowns(snapshot, mois, actifs, employeurs, emplois),
        *(_explain_secret(t, SECRET_NOTE) for t in _needs(snapshot, params)),
        *(_explain_secret(t, NETWORK_SECRET_NOTE) for t in _networks(snapshot, params)),
    ]
    communes = commune_values(snapshot, t)
    if communes:
        tables.append(
            Table(
                "communes",
                f"Établissements actifs de l'ESS par commune, {mois}",
                [
                    Column("code_commune", "Code commune", "text"),
                    Column("commune", "Commune", "text"),
                    Column("nb_etablissements", "Établissements actifs de l'ESS"),
                ],
                [[Cell(code, "text"), Cell(name, "text"), value] for code, name, value in communes],
                ["etablissements_actifs"],
            )
        )
    read = [
        "etablissements_actifs",
        "etablissements_employeurs",
        "emplois_salaries_estimes",
        "part_ess_emploi_prive",
        "taux_reponse",
        "besoins_cites",
        "reseaux_couverture",
        "ess_hors_reseau",
        "ressourceries",
    ]
    missing = [n for n in read if snapshot.has_table(n) and not snapshot.secret_applied(n)]
    return TerritoryPage(t, mois, key_figures, tables, communes, missing)


def _explain_secret(table: Table, reason: str) -> Table:
    """A table with secret cells says why, once, under it: readers see « secret » and
    nothing more per cell (a reason per cell would bound its value)."""
    return replace(table, secret_reason=reason)


def _key_table(figures: list[KeyFigure], mois: str) -> Table:
    jobs = next(f for f in figures if f.id == "emplois_ess")
    rows = [[Cell(f.label, "text"), f.cell] for f in figures if f.id != "emplois_ess"]
    rows.insert(2, [Cell(jobs.label, "text"), jobs.cell])
    rows.insert(3, [Cell("Emplois salariés de l'ESS, borne basse", "text"), jobs.extra["bas"]])
    rows.insert(4, [Cell("Emplois salariés de l'ESS, borne haute", "text"), jobs.extra["haut"]])
    return Table(
        "chiffres-cles",
        f"Chiffres clés, {mois}",
        [Column("indicateur", "Indicateur", "text"), Column("valeur", "Valeur", "mixed")],
        rows,
        [f.indicator for f in figures],
    )


def _evolution(snapshot: Snapshot, actifs: dict, employeurs: dict, emplois: dict) -> Table:
    rows = []
    for m in snapshot.months:
        key = ("ess", m, ENSEMBLE, ENSEMBLE, ENSEMBLE)
        if key not in actifs:
            continue
        rows.append(
            [
                Cell(m, "text"),
                cell(actifs.get(key), "nb_etablissements"),
                cell(employeurs.get(key), "nb_etablissements_employeurs"),
                cell(emplois.get(key), "emplois_central", "jobs"),
            ]
        )
    return Table(
        "evolution",
        "Évolution de l'ESS d'un mois sur l'autre",
        [
            Column("mois", "Mois", "text"),
            Column("nb_etablissements", "Établissements actifs de l'ESS"),
            Column("nb_etablissements_employeurs", "Établissements employeurs de l'ESS"),
            Column("emplois_central", "Emplois salariés estimés (central)", "jobs"),
        ],
        rows,
        ["etablissements_actifs", "etablissements_employeurs", "emplois_salaries_estimes"],
        note=None if len(rows) > 1 else "Un seul mois est publié pour l'instant.",
    )


def _breakdowns(
    snapshot: Snapshot, mois: str, actifs: dict, employeurs: dict, emplois: dict
) -> list[Table]:
    out = []
    spec = [
        ("familles", "famille", "Famille de l'ESS", "par famille"),
        ("sections", "section_naf", "Section d'activité (NAF)", "par section d'activité (NAF)"),
        ("tranches", "tranche_effectifs", "Tranche d'effectifs salariés", "par taille"),
    ]
    for table_id, dim, heading, words in spec:
        position = CUBE_DIMS.index(dim)
        codes = sorted(
            {
                k[2 + position]
                for k in actifs
                if k[0] == "ess"
                and k[1] == mois
                and k[2 + position] != ENSEMBLE
                and all(k[2 + i] == ENSEMBLE for i in range(3) if i != position)
            },
            key=lambda c: _order(dim, c),
        )
        rows = []
        for code in [*codes, ENSEMBLE]:
            dims = [ENSEMBLE, ENSEMBLE, ENSEMBLE]
            dims[position] = code
            key = ("ess", mois, *dims)
            jobs = emplois.get(key)
            rows.append(
                [
                    Cell(label(snapshot, dim, code), "text"),
                    cell(actifs.get(key), "nb_etablissements"),
                    cell(employeurs.get(key), "nb_etablissements_employeurs"),
                    cell(jobs, "emplois_central", "jobs"),
                    cell(jobs, "emplois_bas", "jobs"),
                    cell(jobs, "emplois_haut", "jobs"),
                ]
            )
        out.append(
            Table(
                table_id,
                f"Établissements et emplois de l'ESS {words}, {mois}",
                [
                    Column(dim, heading, "text"),
                    Column("nb_etablissements", "Établissements actifs"),
                    Column("nb_etablissements_employeurs", "Établissements employeurs"),
                    Column("emplois_central", "Emplois estimés (central)", "jobs"),
                    Column("emplois_bas", "Emplois, borne basse", "jobs"),
                    Column("emplois_haut", "Emplois, borne haute", "jobs"),
                ],
                rows,
                ["etablissements_actifs", "etablissements_employeurs", "emplois_salaries_estimes"],
            )
        )
    return out


def _order(dim: str, code: str) -> tuple[int, str]:
    known = list(labels.FALLBACK.get(dim, {}))
    return (known.index(code) if code in known else len(known), code)


def _needs(snapshot: Snapshot, params: dict[str, Any]) -> list[Table]:
    ensemble = (
        "mois = $mois and famille = 'ensemble' and section_naf = 'ensemble' "
        "and tranche_effectifs = 'ensemble'"
    )
    rates = _rows(snapshot, "taux_reponse", ensemble, params)
    needs = _rows(snapshot, "besoins_cites", ensemble, params)
    mois = params["mois"]
    rates.sort(key=lambda r: r["vague"])
    needs.sort(key=lambda r: (r["vague"], -(r["nb_citant"] or -1), r["besoin"]))
    return [
        Table(
            "taux-reponse",
            f"Taux de réponse au questionnaire par vague, {mois}",
            [
                Column("vague", "Vague", "text"),
                Column("nb_etablissements_ess", "Établissements actifs de l'ESS"),
                Column("nb_repondants", "Établissements répondants"),
                Column("taux_reponse", "Taux de réponse", "pct"),
            ],
            [
                [
                    Cell(r["vague"], "text"),
                    cell(r, "nb_etablissements_ess"),
                    cell(r, "nb_repondants"),
                    cell(r, "taux_reponse", "pct"),
                ]
                for r in rates
            ],
            ["taux_reponse"],
            note=None if rates else "Aucune vague de questionnaire pour ce territoire.",
        ),
        Table(
            "besoins",
            f"Besoins cités par les répondants, {mois}",
            [
                Column("vague", "Vague", "text"),
                Column("besoin", "Besoin", "text"),
                Column("nb_repondants", "Répondants"),
                Column("nb_citant", "Répondants citant ce besoin"),
                Column("part_citant", "Part des répondants", "pct"),
            ],
            [
                [
                    Cell(r["vague"], "text"),
                    Cell(label(snapshot, "besoin", r["besoin"]), "text"),
                    cell(r, "nb_repondants"),
                    cell(r, "nb_citant"),
                    cell(r, "part_citant", "pct"),
                ]
                for r in needs
            ],
            ["besoins_cites"],
            note=None if needs else "Aucun besoin cité pour ce territoire.",
        ),
    ]


def _networks(snapshot: Snapshot, params: dict[str, Any]) -> list[Table]:
    mois = params["mois"]
    nets = sorted(
        _rows(snapshot, "reseaux_couverture", "mois = $mois", params), key=lambda r: r["reseau"]
    )
    outside = _rows(snapshot, "ess_hors_reseau", "mois = $mois", params)
    outside.sort(key=lambda r: _order("famille", r["famille"]))
    shops = _rows(snapshot, "ressourceries", "mois = $mois", params)
    return [
        Table(
            "reseaux",
            f"Couverture des listes des réseaux, {mois}",
            [
                Column("reseau", "Réseau", "text"),
                Column("type_reseau", "Type", "text"),
                Column("nb_membres", "Membres"),
                Column("nb_trouves_sirene", "Retrouvés dans Sirene"),
                Column("nb_actifs", "Actifs"),
                Column("nb_ess", "Actifs de l'ESS"),
                Column("nb_non_trouves", "Non retrouvés"),
                Column("emplois_central", "Emplois estimés (central)", "jobs"),
            ],
            [
                [
                    Cell(r["reseau"], "text"),
                    Cell(label(snapshot, "type_reseau", r["type_reseau"]), "text"),
                    cell(r, "nb_membres"),
                    cell(r, "nb_trouves_sirene"),
                    cell(r, "nb_actifs"),
                    cell(r, "nb_ess"),
                    cell(r, "nb_non_trouves"),
                    cell(r, "emplois_central", "jobs"),
                ]
                for r in nets
            ],
            ["reseaux_couverture"],
            note=None if nets else "Aucune liste de réseau ne couvre ce territoire.",
        ),
        Table(
            "hors-reseau",
            f"Établissements de l'ESS dans et hors des réseaux déclarés, {mois}",
            [
                Column("famille", "Famille de l'ESS", "text"),
                Column("nb_ess_actifs", "Établissements actifs de l'ESS"),
                Column("nb_dans_un_reseau", "Dans au moins un réseau"),
                Column("nb_hors_reseau", "Hors réseau"),
                Column("part_hors_reseau", "Part hors réseau", "pct"),
            ],
            [
                [
                    Cell(label(snapshot, "famille", r["famille"]), "text"),
                    cell(r, "nb_ess_actifs"),
                    cell(r, "nb_dans_un_reseau"),
                    cell(r, "nb_hors_reseau"),
                    cell(r, "part_hors_reseau", "pct"),
                ]
                for r in outside
            ],
            ["ess_hors_reseau"],
            note=None if outside else "Aucune liste de réseau déclarée.",
        ),
        Table(
            "ressourceries",
            f"Ressourceries et recycleries, {mois}",
            [
                Column("nb_ressourceries", "Ressourceries actives"),
                Column("emplois_central", "Emplois estimés (central)", "jobs"),
                Column("emplois_bas", "Emplois, borne basse", "jobs"),
                Column("emplois_haut", "Emplois, borne haute", "jobs"),
            ],
            [
                [
                    cell(r, "nb_ressourceries"),
                    cell(r, "emplois_central", "jobs"),
                    cell(r, "emplois_bas", "jobs"),
                    cell(r, "emplois_haut", "jobs"),
                ]
                for r in shops
            ],
            ["ressourceries"],
            note=None if shops else "Aucune ressourcerie rapprochée dans ce territoire.",
        ),
    ]


def communes_of(snapshot: Snapshot, t: Territory) -> list[str]:
    """The territory's communes, as the snapshot's `territoires` table lists them.

    A unit containing the territory the observatory follows (its département, its région) is
    made of hundreds of communes the snapshot publishes no figure for: its page details those
    of the followed territory only, never a zero for a commune that was not counted.
    """
    if not t.parent:
        return list(t.communes)
    published = _commune_names(snapshot)
    return [code for code in t.communes if code in published]


def _commune_names(snapshot: Snapshot) -> dict[str, str]:
    """Names of the communes the snapshot publishes, by code (cached per snapshot)."""
    return snapshot.cached(
        "commune_names",
        lambda: {x.code: x.label for x in snapshot.territories if x.level == "commune"},
    )


def _commune_index(snapshot: Snapshot) -> dict[str, tuple[str, Cell]]:
    """ESS establishments of every commune this month: one query per snapshot, then cached."""
    rows = snapshot.query(
        "select * from indicators.etablissements_actifs where mois = $mois and niveau = 'commune'"
        " and perimetre = 'ess' and famille = 'ensemble' and section_naf = 'ensemble'"
        " and tranche_effectifs = 'ensemble'",
        {"mois": snapshot.mois},
    )
    return {
        r["code_territoire"]: (r["libelle_territoire"], cell(r, "nb_etablissements")) for r in rows
    }


def commune_values(snapshot: Snapshot, t: Territory) -> list[tuple[str, str, Cell]]:
    index = snapshot.cached("communes", lambda: _commune_index(snapshot))
    names = _commune_names(snapshot)
    out = []
    for code in communes_of(snapshot, t):
        name, value = index.get(code, (names.get(code, code), Cell(0)))
        out.append((code, name, value))
    return out
