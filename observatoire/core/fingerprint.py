"""What a month's refresh was made from, so that a refresh of an unchanged month is skipped.

A monthly refresh reads gigabytes nationally; run again with nothing changed (a cron that
fires twice, a user who re-runs to be sure), it would give the same publication after the
same minutes. The inputs are fingerprinted cheaply — the settings, and each input file's path,
size and modification time (not its content: hashing 12 GB would cost what it saves) — and the
fingerprint is kept in the publication's private part. `observatoire refresh` compares it
before starting anything; `--forcer` refreshes anyway.

The code counts as an input: a new version of the observatory (its package and SQL files)
refreshes the month even if the data did not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from observatoire.core import warehouse
from observatoire.core.settings import Settings

KINDS = ("etablissements", "unites_legales")


def _files(folder: Path, patterns: Iterable[str] = ("*",)) -> list[list[object]]:
    if not folder.is_dir():
        return []
    found: list[list[object]] = []
    for pattern in patterns:
        for path in sorted(folder.rglob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                info = path.stat()
                found.append([str(path.relative_to(folder)), info.st_size, info.st_mtime_ns])
    return found


def _file(path: Path) -> list[object] | None:
    try:
        info = path.resolve().stat()
    except OSError:
        return None
    return [str(path.resolve()), info.st_size, info.st_mtime_ns]


def inputs(settings: Settings, mois: str) -> str | None:
    """The fingerprint of a month's inputs; None when it cannot be told cheaply (a URL)."""
    sirene = {}
    for kind in KINDS:
        source = settings.source(kind, mois)
        if "://" in source:
            return None  # a download is checked against INSEE's own date, not here
        sirene[kind] = _file(Path(source).expanduser())
    package = Path(str(resources.files("observatoire")))
    state = {
        "mois": mois,
        "reglages": json.loads(settings.to_json()),
        "sirene": sirene,
        "referentiels": _files(Path(settings.reference_dir)),
        "boite": _files(Path(settings.inbox_dir)),
        "code": _files(package, ("*.py",)) + _files(warehouse.sql_dir(), ("*.sql",)),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
