"""The observatory's web page and JSON API (FastAPI, server-rendered Jinja2 templates).

One framework gives the HTML pages and the JSON API, and writes the OpenAPI document from the
code. Pages are complete HTML without JavaScript (accessibility, speed, no front-end build);
the look is the État's design system (DSFR), vendored under `static/dsfr/`: no asset comes from
the internet. Everything is read from the published snapshot (`publication/courant`), never from
the warehouse.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from observatoire.core import catalogue, csvfiles
from observatoire.web import geo, model
from observatoire.web.snapshot import (
    LEVELS,
    SECRET_COLUMNS,
    Snapshot,
    SnapshotStore,
    Territory,
    dimensions,
    search,
    served_indicators,
)

HERE = Path(__file__).resolve().parent
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
MAX_ROWS = 10_000
PAGE_CACHE = 256


# ---------------------------------------------------------------- French number formatting
def fr_number(value: Any, kind: str = "int") -> str:
    """French typography: narrow no-break space between thousands, decimal comma, « % »."""
    if value is None:
        return "—"
    if kind == "text":
        return str(value)
    if kind == "pct":
        return f"{float(value) * 100:,.1f}".replace(",", "\u202f").replace(".", ",") + "\u202f%"
    number = float(value)
    text = f"{number:,.0f}" if kind in ("int", "jobs") or number.is_integer() else f"{number:,.1f}"
    return text.replace(",", "\u202f").replace(".", ",")


def csv_value(c: model.Cell, excel: bool) -> str:
    """A cell as the CSV writes it: the raw number (proportions 0 to 1), or « secret »."""
    if c.secret:
        return "secret"
    if c.value is None:
        return ""
    if isinstance(c.value, float):
        text = f"{c.value:.0f}" if c.kind == "jobs" and c.value.is_integer() else repr(c.value)
        return text.replace(".", ",") if excel else text
    return str(c.value)


def table_csv(table: model.Table, excel: bool) -> bytes:
    return csvfiles.dialect(excel).write(
        [c.label for c in table.columns],
        ([csv_value(c, excel) for c in row] for row in table.rows),
    )


def evolution_chart(table: model.Table | None) -> dict[str, Any] | None:
    """Points of a small line chart of ESS establishments by month, with its text alternative.

    Drawn only with two published months or more; the table beside it has every figure.
    """
    if table is None:
        return None
    points = [
        (row[0].value, float(row[1].value))
        for row in table.rows
        if not row[1].secret and row[1].value is not None
    ]
    if len(points) < 2:
        return None
    width, height, pad = 640.0, 220.0, 30.0
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    dots = []
    for i, (mois, value) in enumerate(points):
        x = pad + i * (width - 2 * pad) / (len(points) - 1)
        y = pad + (1 - (value - low) / span) * (height - 3 * pad)
        dots.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "mois": mois,
                "label": f"{mois} : {fr_number(value)}",
            }
        )
    first, last = points[0], points[-1]
    text = (
        f"Établissements actifs de l'ESS : {fr_number(first[1])} en {first[0]}, "
        f"{fr_number(last[1])} en {last[0]}."
    )
    return {
        "width": width,
        "height": height,
        "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "dots": dots,
        "text": text,
    }


# ---------------------------------------------------------------- the application
def create_app(publication_dir: Path, geo_dir: Path | None = None) -> FastAPI:
    """The page and the API over `publication_dir/courant`; map outlines from `geo_dir`."""
    store = SnapshotStore(Path(publication_dir))
    outlines = geo.Outlines(Path(geo_dir) if geo_dir else None)
    # read the outlines now, beside the start-up, rather than during the first map
    threading.Thread(target=outlines.shapes, daemon=True, name="contours").start()
    app = FastAPI(
        title="Observatoire ESS — API",
        version="1",
        description=(
            "Indicateurs publiés de l'économie sociale et solidaire (ESS) par territoire, lus dans "
            "la publication courante de l'observatoire. Les cases soumises au secret statistique "
            "ont leurs mesures vides et une colonne `statut_secret` (publie, primaire, secondaire)."
        ),
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        # no telemetry: the page sends nothing anywhere, and spans cost time per request
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.store = store
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["nombre"] = fr_number
    templates.env.globals["LEVELS"] = LEVELS
    templates.env.globals["titles"] = {n: i.titre for n, i in catalogue.indicators().items()}
    templates.env.globals["evolution_chart"] = evolution_chart

    def snapshot_or_503() -> Snapshot:
        snap = store.current()
        if snap is None:
            raise HTTPException(503, "Aucune publication : lancez d'abord un rafraîchissement.")
        return snap

    def territory_or_404(snap: Snapshot, niveau: str, code: str) -> Territory:
        t = snap.by_key.get((niveau, code))
        if t is None:
            raise HTTPException(
                404, f"Territoire inconnu dans la publication {snap.mois} : {niveau} {code}."
            )
        return t

    def render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
        snap = store.current()
        status_file = store.status() or {}
        failed = (status_file.get("dernier_rafraichissement") or {}).get("statut") == "echec"
        base = {
            "snapshot": snap,
            "refresh_message": status_file.get("message") if failed else None,
        }
        return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    pages: OrderedDict[tuple[Path, str, str], tuple[model.TerritoryPage, Any]] = OrderedDict()
    pages_lock = threading.Lock()

    def page_for(snap: Snapshot, t: Territory) -> tuple[model.TerritoryPage, Any]:
        """A territory's page model and map, kept for the last pages asked (snapshots never
        change: a new publication is a new path, hence a new key)."""
        key = (snap.path, t.niveau, t.code)
        with pages_lock:
            if key in pages:
                pages.move_to_end(key)
                return pages[key]
        page = model.build(snap, t)
        built = (page, geo.draw(outlines, page.communes))
        with pages_lock:
            pages[key] = built
            while len(pages) > PAGE_CACHE:
                pages.popitem(last=False)
        return built

    # ------------------------------------------------------------ HTML pages
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return render(
            request,
            "erreur.html",
            {"message": exc.detail, "title": "Page indisponible"},
            exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:])} : valeur refusée "
            f"({e.get('msg', '')})"
            for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": "Paramètre invalide : " + " ; ".join(problems)}, status_code=422
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> HTMLResponse:
        snap = store.current()
        featured = [t for t in snap.territories if t.niveau != "commune"][:12] if snap else []
        return render(request, "accueil.html", {"featured": featured, "title": None})

    @app.get("/recherche", response_class=HTMLResponse, include_in_schema=False)
    def find(request: Request, q: str = "") -> Response:
        snap = snapshot_or_503()
        results = search(snap, q) if q.strip() else []
        if len(results) == 1 or (results and results[0].code.upper() == q.strip().upper()):
            t = results[0]
            return RedirectResponse(f"/territoire/{t.niveau}/{t.code}", status_code=303)
        return render(
            request,
            "recherche.html",
            {"q": q, "results": results, "title": f"Recherche « {q} »"},
        )

    @app.get("/territoire/{niveau}/{code}", response_class=HTMLResponse, include_in_schema=False)
    def territory_page(request: Request, niveau: str, code: str) -> HTMLResponse:
        snap = snapshot_or_503()
        t = territory_or_404(snap, niveau, code)
        page, drawing = page_for(snap, t)
        return render(
            request, "territoire.html", {"page": page, "t": t, "map": drawing, "title": t.libelle}
        )

    @app.get("/territoire/{niveau}/{code}/tableaux/{table_id}.csv", include_in_schema=False)
    def table_download(niveau: str, code: str, table_id: str, format: str = "standard") -> Response:
        snap = snapshot_or_503()
        t = territory_or_404(snap, niveau, code)
        page, _ = page_for(snap, t)
        table = page.table(table_id)
        if table is None:
            raise HTTPException(404, f"Tableau inconnu : {table_id}.")
        if format not in ("standard", "excel"):
            raise HTTPException(422, "Format inconnu : « standard » ou « excel ».")
        name = f"{table_id}_{t.niveau}_{t.code}_{snap.mois}{'_excel' if format == 'excel' else ''}"
        return Response(
            table_csv(table, format == "excel"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    @app.get("/methode", response_class=HTMLResponse, include_in_schema=False)
    def method(request: Request) -> HTMLResponse:
        return render(
            request,
            "methode.html",
            {
                "indicators": served_indicators(),
                "columns": catalogue.column_definitions(),
                "title": "Définitions et méthode",
            },
        )

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_docs(request: Request) -> HTMLResponse:
        return render(request, "api.html", {"openapi": app.openapi(), "title": "API"})

    @app.get("/manifest.json", include_in_schema=False)
    def manifest() -> Response:
        """The snapshot's manifest as published (also the benchmark's baseline)."""
        snap = snapshot_or_503()
        return Response((snap.path / "manifest.json").read_bytes(), media_type="application/json")

    @app.get("/sante", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    # ------------------------------------------------------------ JSON API
    @app.get(
        "/api/v1/territoires",
        summary="Territoires publiés",
        description="Liste des territoires de la publication courante, avec recherche par nom "
        "ou code (sans tenir compte des accents ni de la casse).",
        tags=["territoires"],
    )
    def api_territories(
        q: Annotated[
            str | None, Query(description="Nom ou code, par ex. « vitry », « T12 »")
        ] = None,
        niveau: Annotated[str | None, Query(description="Niveau : " + ", ".join(LEVELS))] = None,
        limite: Annotated[int, Query(ge=1, le=MAX_ROWS, description="Nombre maximal")] = 1000,
        decalage: Annotated[int, Query(ge=0, description="Territoires à sauter")] = 0,
    ) -> dict[str, Any]:
        snap = snapshot_or_503()
        if niveau is not None and niveau not in LEVELS:
            raise HTTPException(404, f"Niveau inconnu : {niveau}.")
        found = (
            search(snap, q, niveau, decalage + limite)
            if q
            else [t for t in snap.territories if niveau in (None, t.niveau)]
        )[decalage : decalage + limite]
        return {
            "mois": snap.mois,
            "territoires": [
                {"niveau": t.niveau, "code_territoire": t.code, "libelle_territoire": t.libelle}
                for t in found
            ],
        }

    @app.get(
        "/api/v1/territoires/{niveau}/{code}",
        summary="Chiffres clés d'un territoire",
        description="Établissements actifs et employeurs de l'ESS, emplois salariés estimés "
        "(fourchette) et part de l'ESS dans l'emploi privé, pour le mois publié. Une valeur "
        "soumise au secret statistique est vide, avec son statut.",
        tags=["territoires"],
    )
    def api_territory(
        niveau: Annotated[str, PathParam(description="Niveau : " + ", ".join(LEVELS))],
        code: Annotated[str, PathParam(description="Code du territoire, par ex. 94081, T12")],
    ) -> dict[str, Any]:
        snap = snapshot_or_503()
        t = territory_or_404(snap, niveau, code)
        page, _ = page_for(snap, t)

        def as_json(c: model.Cell) -> dict[str, Any]:
            return {
                "valeur": None if c.secret else c.value,
                "statut_secret": "secret" if c.secret else "publie",
                "motif_secret": c.motif,
            }

        return {
            "mois": snap.mois,
            "niveau": t.niveau,
            "code_territoire": t.code,
            "libelle_territoire": t.libelle,
            "chiffres_cles": {
                f.id: {
                    "libelle": f.label,
                    "indicateur": f.indicator,
                    **as_json(f.cell),
                    **{k: as_json(v) for k, v in f.extra.items()},
                }
                for f in page.key_figures
            },
            "secret_applique": not page.secret_missing,
        }

    @app.get(
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

    @app.get(
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
        nom: Annotated[
            str, PathParam(description="Nom de l'indicateur (voir /api/v1/indicateurs)")
        ],
        niveau: Annotated[str | None, Query(description="Niveau géographique")] = None,
        code_territoire: Annotated[str | None, Query(description="Code du territoire")] = None,
        mois: Annotated[
            str | None, Query(pattern=MONTH, description="Mois du stock, AAAA-MM")
        ] = None,
        limite: Annotated[int, Query(ge=1, le=MAX_ROWS, description="Lignes au plus")] = 1000,
        decalage: Annotated[int, Query(ge=0, description="Lignes à sauter")] = 0,
    ) -> JSONResponse:
        snap = snapshot_or_503()
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
            f"select * from indicators.{nom} where {where} "
            f"limit {int(limite)} offset {int(decalage)}",
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

    return app
