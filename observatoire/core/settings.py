"""Run-time settings, read from the environment when asked for, never at import.

Every path defaults to a folder under `data/` of the current working directory, which is the
repository root for the README's commands and for `dagster dev`; `.env.example` lists them all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from observatoire.core import territory


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _band(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError as exc:
        raise ValueError(
            f"OBSERVATOIRE_BANDE_VOLUME invalide : {text!r} (attendu « bas,haut », ex. 0.98,1.05)"
        ) from exc
    if not 0 < low <= 1 <= high:
        raise ValueError(f"OBSERVATOIRE_BANDE_VOLUME invalide : {text!r} (bas ≤ 1 ≤ haut)")
    return low, high


def _share(name: str, default: str) -> float:
    text = _env(name, default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ValueError(f"{name} invalide : {text!r} (une part entre 0 et 1, ex. {default})")
    return value


_PATHS = frozenset(
    {
        "data_dir",
        "warehouse",
        "reference_dir",
        "download_dir",
        "publication_dir",
        "inbox_dir",
        "review_dir",
        "quality_docs_dir",
    }
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    warehouse: Path = Path("data/warehouse/observatoire.duckdb")
    reference_dir: Path = Path("data/reference")
    download_dir: Path = Path("data/sources")
    publication_dir: Path = Path("data/publication")
    # questionnaire waves, network lists and review decisions are dropped here
    # (docs/sources_externes.md)
    inbox_dir: Path = Path("data/inbox")
    # the linkage review queue is written here for the data team
    review_dir: Path = Path("data/revue")
    territoire: str = "ept:T12"
    # `{mois}` is replaced by the partition month (YYYY-MM); a URL is downloaded first.
    sirene_etablissements: str = "data/sirene/{mois}/StockEtablissement_utf8.zip"
    sirene_unites_legales: str = "data/sirene/{mois}/StockUniteLegale_utf8.zip"
    max_reject_rate: float = 0.02
    # a month's row count must stay within this band of the last accepted month (drift gate)
    count_band: tuple[float, float] = (0.98, 1.05)
    # nomenclature drift gate: share of a column's codes unknown to every list allowed on a
    # first month, and rise of that share allowed against the last accepted month
    drift_share_max: float = 0.20
    drift_jump_max: float = 0.05
    quality_docs_dir: Path | None = Path("data/quality/data_docs")  # None: no HTML
    duckdb_memory_limit: str = "2GB"
    duckdb_threads: int = 2
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the territory's grammar is checked where it is set (environment, --territoire), with
        # the same sentence as everywhere else; its communes are resolved by the refresh
        territory.parse(self.territoire)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("OBSERVATOIRE_DATA_DIR", "data"))
        return cls(
            data_dir=data_dir,
            warehouse=Path(
                _env("OBSERVATOIRE_WAREHOUSE", str(data_dir / "warehouse" / "observatoire.duckdb"))
            ),
            reference_dir=Path(_env("OBSERVATOIRE_REFERENCE_DIR", str(data_dir / "reference"))),
            download_dir=Path(_env("OBSERVATOIRE_DOWNLOAD_DIR", str(data_dir / "sources"))),
            publication_dir=Path(
                _env("OBSERVATOIRE_PUBLICATION_DIR", str(data_dir / "publication"))
            ),
            inbox_dir=Path(_env("OBSERVATOIRE_INBOX", str(data_dir / "inbox"))),
            review_dir=Path(_env("OBSERVATOIRE_REVUE", str(data_dir / "revue"))),
            territoire=_env("OBSERVATOIRE_TERRITOIRE", "ept:T12"),
            sirene_etablissements=_env(
                "OBSERVATOIRE_SIRENE_ETABLISSEMENTS",
                str(data_dir / "sirene" / "{mois}" / "StockEtablissement_utf8.zip"),
            ),
            sirene_unites_legales=_env(
                "OBSERVATOIRE_SIRENE_UNITES_LEGALES",
                str(data_dir / "sirene" / "{mois}" / "StockUniteLegale_utf8.zip"),
            ),
            max_reject_rate=float(_env("OBSERVATOIRE_TAUX_REJET_MAX", "0.02")),
            count_band=_band(_env("OBSERVATOIRE_BANDE_VOLUME", "0.98,1.05")),
            drift_share_max=_share("OBSERVATOIRE_DERIVE_PART_MAX", "0.20"),
            drift_jump_max=_share("OBSERVATOIRE_DERIVE_HAUSSE_MAX", "0.05"),
            quality_docs_dir=Path(
                _env("OBSERVATOIRE_DATA_DOCS", str(data_dir / "quality" / "data_docs"))
            ),
            duckdb_memory_limit=_env("OBSERVATOIRE_DUCKDB_MEMORY", "2GB"),
            duckdb_threads=int(_env("OBSERVATOIRE_DUCKDB_THREADS", "2")),
        )

    def to_json(self) -> str:
        """Every setting, for a Dagster run started by the CLI (its resource's one field)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps(
            {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> Settings:
        values = json.loads(text)
        for f in fields(cls):
            value = values.get(f.name)
            if value is not None and f.name in _PATHS:
                values[f.name] = Path(value)
        values["count_band"] = tuple(values["count_band"])
        return cls(**values)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def drift_limits(self) -> tuple[float, float]:
        return self.drift_share_max, self.drift_jump_max

    def source(self, kind: str, mois: str) -> str:
        template = (
            self.sirene_etablissements if kind == "etablissements" else self.sirene_unites_legales
        )
        return template.replace("{mois}", mois)
