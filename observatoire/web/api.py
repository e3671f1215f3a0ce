"""The JSON API (`/api/v1/…`), the only routes of the OpenAPI document.

Summaries, descriptions and parameter texts are the French documentation readers see, on the
`/api` page and in `/api/openapi.json`; the function names make the operation ids, so both are
part of the API's contract.

Routes with validated query parameters (`limite`, `decalage`, `mois`) read the snapshot in their
body (`web.snapshot()`) rather than through `Depends(current_snapshot)`: FastAPI solves
dependencies before validating the query, and an invalid parameter answers 422 even when nothing
is published.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from observatoire.core import catalogue
from observatoire.web import model
from observatoire.web.deps import CurrentSnapshot, Web, territory_or_404
from observatoire.web.snapshot import LEVELS, SECRET_COLUMNS, dimensions, search, served_indicators

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
MAX_ROWS = 10_000
# Bounded so that no offset reaches DuckDB past its integers (2**63 answered 500); far above
# any published table (13.8 M rows for France's largest, session 14).
MAX_OFFSET = 1_000_000_000

router = APIRouter()


@router.get(
    "/api/v1/territoires",
    summary="Territoires publiés",
    description="Liste des territoires de la publication courante, avec recherche par nom "
    "ou code (sans tenir compte des accents ni de la casse). « englobant » : territoire qui "
    "contient une partie du territoire suivi (son département, sa région…), publié pour "
    "comparaison avec les chiffres Sirene seulement.",
    tags=["territoires"],
)
def api_territories(
    web: Web,
    q: Annotated[str | None, Query(description="Nom ou code, par ex. « vitry », « T12 »")] = None,
    niveau: Annotated[str | None, Query(description="Niveau : " + ", ".join(LEVELS))] = None,
    limite: Annotated[int, Query(ge=1, le=MAX_ROWS, description="Nombre maximal")] = 1000,
    decalage: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Territoires à sauter")] = 0,
) -> dict[str, Any]:
    snap = web.snapshot()
    if niveau is not None and niveau not in LEVELS:
        raise HTTPException(404, f"Niveau inconnu : {niveau}.")
    found = (
        search(snap, q, niveau, decalage + limite)
        if q
        else [t for t in snap.territories if niveau in (None, t.level)]
    )[decalage : decalage + limite]
    return {
        "mois": snap.mois,
        "territoires": [
            {
                "niveau": t.level,
                "code_territoire": t.code,
                "libelle_territoire": t.label,
                # contains part of the followed territory, published for comparison
                "englobant": t.parent,
            }
            for t in found
        ],
    }


def _cell_json(c: model.Cell) -> dict[str, Any]:
    """A key figure's cell: its value, or none with its secret status and reason."""
    return {
        "valeur": None if c.secret else c.value,
        "statut_secret": "secret" if c.secret else "publie",
        "motif_secret": c.motif,
    }


@router.get(
    "/api/v1/territoires/{niveau}/{code}",
    summary="Chiffres clés d'un territoire",
    description="Établissements actifs et employeurs de l'ESS, emplois salariés estimés "
    "(fourchette) et part de l'ESS dans l'emploi privé, pour le mois publié. Une valeur "
    "soumise au secret statistique est vide, avec son statut.",
    tags=["territoires"],
)
def api_territory(
    web: Web,
    snap: CurrentSnapshot,
    niveau: Annotated[str, PathParam(description="Niveau : " + ", ".join(LEVELS))],
    code: Annotated[str, PathParam(description="Code du territoire, par ex. 94081, T12")],
) -> dict[str, Any]:
    """The page's key figures, from the page cache: the API and the page never disagree."""
    t = territory_or_404(snap, niveau, code)
    page, _ = web.pages.get(snap, t)
    return {
        "mois": snap.mois,
        "niveau": t.level,
        "code_territoire": t.code,
        "libelle_territoire": t.label,
        "englobant": t.parent,
        "chiffres_cles": {
            f.id: {
                "libelle": f.label,
                "indicateur": f.indicator,
                **_cell_json(f.cell),
                **{k: _cell_json(v) for k, v in f.extra.items()},
            }
            for f in page.key_figures
        },
        "secret_applique": not page.secret_missing,
    }


@router.get(
    "/api/v1/indicateurs",
    summary="Indicateurs publiés",
    description="Catalogue des indicateurs : titre, définition, unité, colonnes.",
    tags=["indicateurs"],
)
def api_indicators() -> dict[str, Any]:
    definitions = catalogue.column_definitions()
    return {
        "indicateurs": [
            {
                "nom": i.name,
                "titre": i.titre,
                "definition": i.definition,
                "unite": i.unite,
                "unite_de_compte": i.unite_de_compte,
                "source": i.source,
                "methode": i.methode,
                "colonnes": {c: definitions.get(c, "") for c in i.colonnes},
            }
            for i in served_indicators().values()
        ]
    }


@router.get(
    "/api/v1/indicateurs/{nom}",
    summary="Lignes d'un indicateur",
    description="Lignes d'un indicateur de la publication courante, filtrées par niveau, "
    "territoire, mois et valeurs des dimensions (par ex. `famille=association`, "
    "`section_naf=ensemble`). Chaque ligne porte `statut_secret` et `motif_secret` : "
    "quand la case est secrète, ses mesures sont vides. Tous les mois publiés sont "
    "disponibles.",
    tags=["indicateurs"],
)
def api_indicator(
    request: Request,
    web: Web,
    nom: Annotated[str, PathParam(description="Nom de l'indicateur (voir /api/v1/indicateurs)")],
    niveau: Annotated[str | None, Query(description="Niveau géographique")] = None,
    code_territoire: Annotated[str | None, Query(description="Code du territoire")] = None,
    mois: Annotated[str | None, Query(pattern=MONTH, description="Mois du stock, AAAA-MM")] = None,
    limite: Annotated[int, Query(ge=1, le=MAX_ROWS, description="Lignes au plus")] = 1000,
    decalage: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Lignes à sauter")] = 0,
) -> JSONResponse:
    """Rows of a published table; any other query parameter filters on a dimension, so it is
    checked against the table's dimensions before it reaches the SQL."""
    snap = web.snapshot()
    if nom not in served_indicators() or not snap.has_table(nom):
        raise HTTPException(404, f"Indicateur inconnu ou non servi : {nom}.")
    if niveau is not None and niveau not in LEVELS:
        raise HTTPException(404, f"Niveau inconnu : {niveau}.")
    if code_territoire is not None and not any(
        (lvl, code_territoire) in snap.by_key for lvl in ([niveau] if niveau else LEVELS)
    ):
        raise HTTPException(404, f"Territoire inconnu : {code_territoire}.")
    dims = dimensions(snap, nom)
    reserved = {"niveau", "code_territoire", "mois", "limite", "decalage"}
    filters: dict[str, str] = {}
    for key, value in request.query_params.items():
        if key in reserved:
            continue
        if key not in dims:
            raise HTTPException(
                422,
                f"Paramètre inconnu pour {nom} : {key} (dimensions : {', '.join(dims)}).",
            )
        filters[key] = value
    for key, value in (
        ("niveau", niveau),
        ("code_territoire", code_territoire),
        ("mois", mois),
    ):
        if value is not None:
            filters[key] = value
    columns = snap.column_names(nom)
    # column names come from the snapshot's schema (checked above), values are parameters
    names = {k: f"p{i}" for i, k in enumerate(filters)}
    where = " and ".join(f'"{k}" = ${names[k]}' for k in filters) or "true"
    params: dict[str, Any] = {names[k]: v for k, v in filters.items()}
    rows = snap.query(
        # no ORDER BY: the snapshot's tables are written sorted (`order by all`, dimensions
        # first) and DuckDB keeps that order in scans, so pages are stable without sorting
        # millions of rows for each request
        f"select * from indicators.{nom} where {where} limit {int(limite)} offset {int(decalage)}",
        params,
    )
    # rows are plain JSON values already: serialised directly, without FastAPI's encoder,
    # which costs a second per 10,000 rows
    return JSONResponse(
        {
            "indicateur": nom,
            "mois_publication": snap.mois,
            "secret_applique": snap.secret_applied(nom),
            "colonnes_secret": [c for c in SECRET_COLUMNS if c in columns],
            "nb_lignes": len(rows),
            "lignes": rows,
        }
    )
