"""The public entry point: `generate_sources` writes the wave, the two lists and the truth.

The files go into the inbox, with the templates they need (`data/modeles`); the truth and its
manifest go outside it, since the pipeline would otherwise read the truth as a source. Each
source has its own random stream (`random.Random(f"{seed}:{name}")`), so that changing one
source does not change the others' bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from observatoire.demo.common import (
    DEFAULT_MODELES_DIR,
    DEFAULT_REFERENCE_DIR,
    check_mois,
)
from observatoire.demo.synthetic_sources.networks import _Ressourceries, _Siae
from observatoire.demo.synthetic_sources.stock import _check_sirene_month, _Stock
from observatoire.demo.synthetic_sources.wave import _Wave

GENERATOR_VERSION = "1.0.0"

VAGUE = "2026-printemps"
EXPORT_NAME = "results-survey482913.csv"  # LimeSurvey's default export name
RESSOURCERIES = "ressourceries"
SIAE = "siae"
TRUTH_HEADER = ("source", "cle_source", "ligne", "siret_attendu", "cas")


@dataclass(frozen=True)
class SourcesManifest:
    """What was written and the truth's totals, so tests compare reader outputs with counts.

    `files` is keyed by the path relative to the inbox; `cases` by `<source>:<cle_source>`, then
    by defect case (the `cas` column of the truth); `value_defects` lists the answers' cells that
    a reader must reject or mask (line, column, case).
    """

    mois: str
    seed: int
    inbox_dir: Path
    truth_path: Path
    manifest_path: Path
    files: dict[str, dict[str, Any]]
    cases: dict[str, dict[str, int]]
    value_defects: list[dict[str, Any]] = field(default_factory=list)
    name_variants: dict[str, dict[str, int]] = field(default_factory=dict)
    families: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form without absolute paths, so that the bytes do not depend on the directory."""
        return {
            "synthetic": True,
            "description": (
                "Réponses de questionnaire et listes de réseaux SYNTHETIQUES (personnes et "
                "structures fictives, tirées du stock SIRENE synthétique)"
            ),
            "generator": "observatoire.demo.synthetic_sources",
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "mois": self.mois,
            "verite": self.truth_path.name,
            "fichiers": self.files,
            "cas": self.cases,
            "defauts_valeurs": self.value_defects,
            "variantes_nom": self.name_variants,
            "familles": self.families,
        }


def generate_sources(
    sirene_dir: Path,
    inbox_dir: Path,
    truth_path: Path,
    *,
    mois: str,
    seed: int = 2026,
    modeles_dir: Path = DEFAULT_MODELES_DIR,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
) -> SourcesManifest:
    """Write one questionnaire wave and two network lists into `inbox_dir`, the truth elsewhere.

    Structures are drawn from the SIRENE stock of `sirene_dir` (the month `mois`), so that every
    expected SIRET exists there with the state (active, closed, non-diffusible) the case says.
    The truth must stay out of the inbox: the pipeline would otherwise see it as a source.
    """
    check_mois(mois)
    sirene_dir, inbox_dir, truth_path = Path(sirene_dir), Path(inbox_dir), Path(truth_path)
    if truth_path.resolve().is_relative_to(inbox_dir.resolve()):
        raise ValueError("la vérité doit être écrite hors de la boîte de dépôt (inbox_dir)")
    _check_sirene_month(sirene_dir, mois)
    stock = _Stock.load(sirene_dir, Path(reference_dir))
    modeles_dir = Path(modeles_dir)
    mapping = tomllib.loads((modeles_dir / "correspondance.toml").read_text(encoding="utf-8"))

    truth: list[tuple[str, str, int, str, str]] = []
    files: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, int]] = {}
    families: dict[str, dict[str, int]] = {}

    wave_dir = inbox_dir / "questionnaires" / VAGUE
    wave_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(modeles_dir / "correspondance.toml", wave_dir / "correspondance.toml")
    wave = _Wave(stock, mapping, random.Random(f"{seed}:questionnaire"))
    wave.build()
    data, rows, physical = wave.render()
    (wave_dir / EXPORT_NAME).write_bytes(data)
    rel = f"questionnaires/{VAGUE}/{EXPORT_NAME}"
    files[rel] = _file_info("questionnaire", VAGUE, "csv", "utf-8-sig", ";", rows, physical, data)
    truth += [("questionnaire", VAGUE, line, siret, cas) for line, siret, cas in wave.truth]
    variants[f"questionnaire:{VAGUE}"] = dict(sorted(wave.variants.items()))
    families[f"questionnaire:{VAGUE}"] = dict(sorted(wave.families.items()))

    reseaux_dir = inbox_dir / "reseaux"
    reseaux_dir.mkdir(parents=True, exist_ok=True)
    for name in (RESSOURCERIES, SIAE):
        shutil.copyfile(modeles_dir / "reseaux" / f"{name}.toml", reseaux_dir / f"{name}.toml")

    ress = _Ressourceries(stock, random.Random(f"{seed}:{RESSOURCERIES}"))
    data, n = ress.render()
    (reseaux_dir / "ressourceries.json").write_bytes(data)
    files["reseaux/ressourceries.json"] = _file_info(
        "reseau", RESSOURCERIES, "json", "utf-8", None, n, data.count(b"\n"), data
    )
    truth += [("reseau", RESSOURCERIES, line, siret, cas) for line, siret, cas in ress.truth]
    variants[f"reseau:{RESSOURCERIES}"] = dict(sorted(ress.variants.items()))

    siae = _Siae(stock, random.Random(f"{seed}:{SIAE}"))
    data, rows, physical = siae.render()
    (reseaux_dir / "siae.csv").write_bytes(data)
    files["reseaux/siae.csv"] = _file_info(
        "reseau", SIAE, "csv", "cp1252", ";", rows, physical, data
    )
    truth += [("reseau", SIAE, line, siret, cas) for line, siret, cas in siae.truth]
    variants[f"reseau:{SIAE}"] = dict(sorted(siae.variants.items()))

    truth.sort(key=lambda r: (r[0], r[1], r[2]))
    cases: dict[str, dict[str, int]] = {}
    for source, cle, _, _, cas in truth:
        bucket = cases.setdefault(f"{source}:{cle}", {})
        bucket[cas] = bucket.get(cas, 0) + 1
    cases = {k: dict(sorted(v.items())) for k, v in sorted(cases.items())}

    truth_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRUTH_HEADER)
    writer.writerows(truth)
    truth_path.write_bytes(buf.getvalue().encode("utf-8"))

    manifest_path = truth_path.with_name(truth_path.stem + ".manifest.json")
    manifest = SourcesManifest(
        mois=mois,
        seed=seed,
        inbox_dir=inbox_dir,
        truth_path=truth_path,
        manifest_path=manifest_path,
        files=dict(sorted(files.items())),
        cases=cases,
        value_defects=wave.value_defects,
        name_variants=variants,
        families=families,
    )
    text = json.dumps(manifest.as_dict(), indent=2, ensure_ascii=False) + "\n"
    manifest_path.write_bytes(text.encode("utf-8"))
    return manifest


def _file_info(
    source: str,
    cle: str,
    fmt: str,
    encoding: str,
    sep: str | None,
    records: int,
    physical: int,
    data: bytes,
) -> dict[str, Any]:
    info: dict[str, Any] = {"source": source, "cle_source": cle, "format": fmt}
    info["encodage"] = encoding
    if sep is not None:
        info["separateur"] = sep
    info["enregistrements"] = records
    info["lignes_physiques"] = physical
    info["sha256"] = hashlib.sha256(data).hexdigest()
    return info
