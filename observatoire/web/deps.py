"""What the routes share: the snapshot store, the templates, the page cache, as dependencies.

`create_app` builds one `WebState` per application and keeps it on `app.state.web`; routes get it
through `Depends(web_state)` (or `request.app.state` where FastAPI injects nothing, as in the
exception handlers), never through module globals, so that two applications over two
publications (as the tests make) share nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from observatoire.core.territory import Territory
from observatoire.web import geo, model
from observatoire.web.snapshot import Snapshot, SnapshotStore

PAGE_CACHE = 256

PageAndMap = tuple[model.TerritoryPage, geo.MapView | None]


class PageCache:
    """A territory's page model and map, kept for the last pages asked.

    Building a page queries the snapshot several times and draws the map, and the page, its CSV
    downloads and its JSON key figures all ask the same model, often in a row. Snapshots never
    change (a new publication is a new path, hence a new key), so an entry never goes stale; the
    oldest go beyond `size` entries. Requests run in threads: a lock guards the dictionary, not
    the build, so two first requests for one page may both build it (the same result) without
    waiting on each other.
    """

    def __init__(self, outlines: geo.Outlines, size: int = PAGE_CACHE) -> None:
        self.outlines = outlines
        self.size = size
        self._pages: OrderedDict[tuple[Path, str, str], PageAndMap] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, snap: Snapshot, t: Territory) -> PageAndMap:
        key = (snap.path, t.level, t.code)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        page = model.build(snap, t)
        built = (page, geo.draw(self.outlines, page.communes))
        with self._lock:
            self._pages[key] = built
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        return built


@dataclass
class WebState:
    """One application's shared objects: built once by `create_app`, read by every request."""

    store: SnapshotStore
    templates: Jinja2Templates
    pages: PageCache = field(repr=False)

    def snapshot(self) -> Snapshot:
        """The current snapshot, or a French 503 when nothing is published yet.

        Routes whose parameters FastAPI validates call this in their body rather than through
        `Depends(current_snapshot)`: FastAPI solves dependencies before it validates the query,
        and an invalid parameter must keep answering 422 even without a publication.
        """
        snap = self.store.current()
        if snap is None:
            raise HTTPException(503, "Aucune publication : lancez d'abord un rafraîchissement.")
        return snap


def web_state(request: Request) -> WebState:
    """The application's `WebState` (set by `create_app`)."""
    return request.app.state.web


Web = Annotated[WebState, Depends(web_state)]


def current_snapshot(web: Web) -> Snapshot:
    """Dependency: the current snapshot, or 503 (see `WebState.snapshot`)."""
    return web.snapshot()


CurrentSnapshot = Annotated[Snapshot, Depends(current_snapshot)]


def territory_or_404(snap: Snapshot, niveau: str, code: str) -> Territory:
    """The territory `niveau`/`code` of `snap`, or a French 404 naming the publication's month."""
    t = snap.by_key.get((niveau, code))
    if t is None:
        raise HTTPException(
            404, f"Territoire inconnu dans la publication {snap.mois} : {niveau} {code}."
        )
    return t


def path_territory(snap: CurrentSnapshot, niveau: str, code: str) -> Territory:
    """Dependency: the territory of the path's `{niveau}/{code}` in the current snapshot."""
    return territory_or_404(snap, niveau, code)


PathTerritory = Annotated[Territory, Depends(path_territory)]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page from its template, with what every page shows: the snapshot (its month, the
    « synthetic data » notice) and the last refresh's message when that refresh failed.

    Works without a snapshot, since the home page and the error pages are shown then too.
    """
    web = web_state(request)
    snap = web.store.current()
    status_file = web.store.status() or {}
    failed = (status_file.get("dernier_rafraichissement") or {}).get("statut") == "echec"
    base = {
        "snapshot": snap,
        "refresh_message": status_file.get("message") if failed else None,
    }
    return web.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
