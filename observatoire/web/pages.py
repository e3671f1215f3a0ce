"""The site: HTML pages, a page's tables as CSV, the snapshot's manifest, the health check.

Pages are complete HTML without JavaScript (accessibility, speed, no front-end build). None of
these routes is in the OpenAPI document, which describes the JSON API (`api.py`) only: the
router leaves them all out of the schema at once.

HTML routes take the snapshot through `Depends(current_snapshot)`: their parameters are plain
strings that FastAPI never refuses, so the dependency's 503 cannot hide a 422.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from observatoire.core import catalogue
from observatoire.web.deps import CurrentSnapshot, PathTerritory, Web, render
from observatoire.web.formatting import table_csv
from observatoire.web.snapshot import search, served_indicators

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, web: Web) -> HTMLResponse:
    """The home page, shown even without a publication (it then says so)."""
    snap = web.store.current()
    featured = [t for t in snap.territories if t.level != "commune"][:12] if snap else []
    return render(request, "accueil.html", {"featured": featured, "title": None})


@router.get("/recherche", response_class=HTMLResponse)
def find(request: Request, snap: CurrentSnapshot, q: str = "") -> Response:
    """Search results; straight to the territory's page when one result or an exact code."""
    results = search(snap, q) if q.strip() else []
    if len(results) == 1 or (results and results[0].code.upper() == q.strip().upper()):
        t = results[0]
        return RedirectResponse(f"/territoire/{t.level}/{t.code}", status_code=303)
    return render(
        request,
        "recherche.html",
        {"q": q, "results": results, "title": f"Recherche « {q} »"},
    )


@router.get("/territoire/{niveau}/{code}", response_class=HTMLResponse)
def territory_page(
    request: Request, web: Web, snap: CurrentSnapshot, t: PathTerritory
) -> HTMLResponse:
    """A territory's page: key figures, tables, map (built once, then from the page cache)."""
    page, drawing = web.pages.get(snap, t)
    return render(
        request, "territoire.html", {"page": page, "t": t, "map": drawing, "title": t.label}
    )


@router.get("/territoire/{niveau}/{code}/tableaux/{table_id}.csv")
def table_download(
    web: Web, snap: CurrentSnapshot, t: PathTerritory, table_id: str, format: str = "standard"
) -> Response:
    """One table of a territory's page as CSV, from the same page model as the HTML, so that
    the download holds exactly the figures the page shows."""
    page, _ = web.pages.get(snap, t)
    table = page.table(table_id)
    if table is None:
        raise HTTPException(404, f"Tableau inconnu : {table_id}.")
    if format not in ("standard", "excel"):
        raise HTTPException(422, "Format inconnu : « standard » ou « excel ».")
    name = f"{table_id}_{t.level}_{t.code}_{snap.mois}{'_excel' if format == 'excel' else ''}"
    return Response(
        table_csv(table, format == "excel"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/methode", response_class=HTMLResponse)
def method(request: Request) -> HTMLResponse:
    """Definitions and method, from the catalogue (the same text as the API's)."""
    return render(
        request,
        "methode.html",
        {
            "indicators": served_indicators(),
            "columns": catalogue.column_definitions(),
            "title": "Définitions et méthode",
        },
    )


@router.get("/api", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """The API's documentation as a page, from the application's own OpenAPI document."""
    return render(request, "api.html", {"openapi": request.app.openapi(), "title": "API"})


@router.get("/manifest.json")
def manifest(snap: CurrentSnapshot) -> Response:
    """The snapshot's manifest as published (also the benchmark's baseline)."""
    return Response((snap.path / "manifest.json").read_bytes(), media_type="application/json")


@router.get("/sante")
def health() -> PlainTextResponse:
    """A liveness check: answers « ok » without reading the publication, so it says the server
    is up even before the first refresh."""
    return PlainTextResponse("ok")
