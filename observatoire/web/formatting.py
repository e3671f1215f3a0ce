"""How figures are written for readers: French numbers, CSV cells, the evolution chart.

Pure functions of a value or a page table, apart from the routes, so that the templates (as a
filter and a global), the CSV downloads and the tests use the same writing of a figure.
"""

from __future__ import annotations

from typing import Any

from observatoire.core import csvfiles
from observatoire.web import model


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
    """A page table as a CSV file, in the standard or the Excel dialect (`csvfiles`), so that a
    download holds exactly the figures the page shows, secret cells included as « secret »."""
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
