"""The map by commune: a server-rendered SVG, so it needs no JavaScript and no tile server.

Outlines come from `data/reference/geo/communes-*.geojson` (provenance in
data/reference/PROVENANCE.md), read once. They are drawn in a local equirectangular projection
(longitudes shrunk by the cosine of the mean latitude), which is accurate enough at the scale of
a département. Communes without an outline (outside the files, or created after 2018) are
listed by the page, never silently dropped.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

# the DSFR's blue-france scale, light to dark (the darkest is the brand blue #000091)
PALETTE = ("#e3e3fd", "#cacafb", "#8585f6", "#6a6af4", "#000091")
SECRET_FILL = "#929292"
WIDTH = 640.0

Ring = list[tuple[float, float]]


@dataclass(frozen=True)
class Shape:
    name: str
    polygons: list[list[Ring]]  # polygons, each a list of rings (outer first)


class Outlines:
    """Commune outlines by INSEE code, loaded on first use from a folder of GeoJSON files."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._shapes: dict[str, Shape] | None = None
        self._lock = threading.Lock()

    def shapes(self) -> dict[str, Shape]:
        with self._lock:
            if self._shapes is None:
                self._shapes = _load(self.folder)
            return self._shapes


def _load(folder: Path | None) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    if folder is None or not folder.is_dir():
        return shapes
    for path in sorted(folder.glob("communes-*.geojson")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for feature in data.get("features", []):
            props = feature.get("properties") or {}
            geometry = feature.get("geometry") or {}
            code = str(props.get("code", ""))
            if geometry.get("type") == "Polygon":
                polygons = [geometry["coordinates"]]
            elif geometry.get("type") == "MultiPolygon":
                polygons = geometry["coordinates"]
            else:
                continue
            shapes[code] = Shape(
                str(props.get("nom", code)),
                [
                    [[(float(x), float(y)) for x, y, *_ in ring] for ring in poly]
                    for poly in polygons
                ],
            )
    return shapes


def classes(values: list[float]) -> list[float]:
    """Upper bounds of up to five classes of equal counts (quantiles), without duplicates."""
    if not values:
        return []
    ordered = sorted(values)
    n = len(PALETTE)
    bounds = []
    for i in range(1, n + 1):
        bound = ordered[min(len(ordered) - 1, math.ceil(i * len(ordered) / n) - 1)]
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return bounds


def colour(value: float, bounds: list[float]) -> str:
    for i, bound in enumerate(bounds):
        if value <= bound:
            # spread the classes over the palette when there are fewer than five
            return PALETTE[round(i * (len(PALETTE) - 1) / max(1, len(bounds) - 1))]
    return PALETTE[-1]


@dataclass(frozen=True)
class MapItem:
    code: str
    name: str
    path: str
    fill: str
    title: str


@dataclass(frozen=True)
class MapView:
    items: list[MapItem]
    width: float
    height: float
    legend: list[tuple[str, str]]  # (fill, text)
    without_outline: list[tuple[str, str]]  # (code, name)


def draw(outlines: Outlines, communes: list[tuple[str, str, object]]) -> MapView | None:
    """Paths and legend for the given (code, name, cell) communes; None when none has an outline."""
    shapes = outlines.shapes()
    drawn = [(c, n, v) for c, n, v in communes if c in shapes]
    missing = [(c, n) for c, n, _ in communes if c not in shapes]
    if not drawn:
        return MapView([], 0, 0, [], missing) if missing else None
    lons = [x for c, _, _ in drawn for p in shapes[c].polygons for x, _ in p[0]]
    lats = [y for c, _, _ in drawn for p in shapes[c].polygons for _, y in p[0]]
    k = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lons) - min(lons)) * k, 1e-9)
    span_y = max(max(lats) - min(lats), 1e-9)
    scale = WIDTH / span_x
    height = span_y * scale
    width = WIDTH
    if height > WIDTH * 1.2:  # a tall territory: fit the height instead
        scale = WIDTH * 1.2 / span_y
        height = WIDTH * 1.2
        width = span_x * scale
    x0, y1 = min(lons), max(lats)
    values = [
        float(v.value)
        for _, _, v in drawn
        if not v.secret and v.value is not None  # type: ignore[attr-defined]
    ]
    bounds = classes(values)
    items = []
    for code, name, value in drawn:
        parts = []
        for polygon in shapes[code].polygons:
            for ring in polygon:
                pts = " ".join(
                    f"{(x - x0) * k * scale:.1f},{(y1 - y) * scale:.1f}" for x, y in ring
                )
                parts.append(f"M{pts}Z")
        if value.secret:  # type: ignore[attr-defined]
            fill, text = SECRET_FILL, "secret statistique"
        else:
            number = float(value.value or 0)  # type: ignore[attr-defined]
            fill = colour(number, bounds)
            text = f"{_fr_int(number)} établissement{'s' if number >= 2 else ''} de l'ESS"
        items.append(MapItem(code, name, " ".join(parts), fill, f"{name} ({code}) : {text}"))
    legend = []
    low = 0.0
    for i, bound in enumerate(bounds):
        fill = colour(bound, bounds)
        legend.append(
            (fill, f"de {_fr_int(low)} à {_fr_int(bound)}" if i else f"jusqu'à {_fr_int(bound)}")
        )
        low = bound + 1
    if any(v.secret for _, _, v in drawn):  # type: ignore[attr-defined]
        legend.append((SECRET_FILL, "secret statistique"))
    return MapView(items, round(width, 1), round(height, 1), legend, missing)


def _fr_int(x: float) -> str:
    return f"{x:,.0f}".replace(",", "\u202f")
