"""The observatory's web page and JSON API (FastAPI, server-rendered Jinja2 templates).

One framework gives the HTML pages and the JSON API, and writes the OpenAPI document from the
code. Pages are complete HTML without JavaScript (accessibility, speed, no front-end build);
the look is the État's design system (DSFR), vendored under `static/dsfr/`: no asset comes from
the internet. Everything is read from the published snapshot (`publication/courant`), never from
the warehouse.

This module only assembles the application: its shared objects (`deps.WebState`), the error
handlers, the static files and the two routers, `pages` (the site) and `api` (the JSON API).
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from observatoire.core import catalogue
from observatoire.web import api, geo, pages
from observatoire.web.deps import PageCache, WebState, render
from observatoire.web.formatting import evolution_chart, fr_number
from observatoire.web.snapshot import LEVELS, SnapshotStore

HERE = Path(__file__).resolve().parent


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
    app.state.web = WebState(store=store, templates=_templates(), pages=PageCache(outlines))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _templates() -> Jinja2Templates:
    """The page templates, with the French number filter and what every page may show."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["nombre"] = fr_number
    templates.env.globals["LEVELS"] = LEVELS
    templates.env.globals["titles"] = {n: i.titre for n, i in catalogue.indicators().items()}
    templates.env.globals["evolution_chart"] = evolution_chart
    return templates


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """An error as JSON under `/api/`, as a French error page elsewhere (same status)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return render(
        request,
        "erreur.html",
        {"message": exc.detail, "title": "Page indisponible"},
        exc.status_code,
    )


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A refused parameter, in French, one clause per problem (`limite : valeur refusée …`)."""
    problems = [
        f"{'.'.join(str(x) for x in e.get('loc', ())[1:])} : valeur refusée ({e.get('msg', '')})"
        for e in exc.errors()
    ]
    return JSONResponse({"detail": "Paramètre invalide : " + " ; ".join(problems)}, status_code=422)
