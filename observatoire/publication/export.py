"""Partner export bundles: one zip per territory and month, read from the published snapshot only.

A partner (a département, a CRESS, a research team) receives one self-describing file: the
indicator CSVs of its territory and of its communes in two dialects, a Table Schema per CSV
following the schema.data.gouv.fr convention, a `datapackage.json` that ties each CSV to its
dialect and schema (so `frictionless validate datapackage.json` checks the whole bundle in one
call), a French `LISEZMOI.md` and a `manifest.json` with row counts and sha256 sums.

The bundle is read from `publication/courant` only, never from the warehouse, so it always
describes a complete, quality-checked month. Its bytes depend only on the snapshot: fixed zip
timestamps (the month's first day), sorted entries, no wall clock, so two exports of the same
snapshot are identical and tests compare them with golden files (docs/exports.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from observatoire.core import catalogue, csvfiles, territory
from observatoire.core.mois import InvalidMonthError, parse_mois
from observatoire.core.territory import Territory, TerritoryError
from observatoire.core.warehouse import table_exists
from observatoire.publication import publish
from observatoire.sources import questionnaire, reseaux

FORMAT_VERSION = "1.0.0"
# Levels exported by `--tous`; communes only on request (there are ~35,000 of them nationally).
LEVELS = tuple(n for n in territory.LEVEL_NAMES if n != "commune")
SECRET_COLUMNS = ("statut_secret", "motif_secret")
# a secret figure reads « secret » and nothing more; motif_secret stays in the schema, empty
SECRET_STATUSES = ("publie", "secret")
LISTING = "annuaire_ess"

LICENCE = {
    "name": "etalab-2.0",
    "title": "Licence Ouverte / Open Licence version 2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
}
TABLE_SCHEMA_PROFILE = "https://frictionlessdata.io/schemas/table-schema.json"
# TODO: the project's public address once it has one (schema.data.gouv.fr wants `homepage`).
HOMEPAGE = ""

# Closed code lists known from the method (docs/methode.md); open lists (tranche, section) take
# the snapshot's `indicators.nomenclatures` codes plus any code present in the rows.
ENUMS: dict[str, tuple[str, ...]] = {
    "niveau": territory.LEVEL_NAMES,
    "perimetre": ("ess", "hors_ess", "ensemble"),
    "famille": (*catalogue.ESS_FAMILIES, "hors_ess", "ensemble"),
    "besoin": questionnaire.NEEDS,  # the needs taxonomy the quality gate enforces
    "type_reseau": reseaux.NETWORK_TYPES,
    "statut_secret": SECRET_STATUSES,
}
ENUMS_FROM_DATA = ("tranche_effectifs", "section_naf")
PATTERNS = {
    "mois": r"^\d{4}-\d{2}$",
    "mois_precedent": r"^\d{4}-\d{2}$",
    "siret": r"^\d{14}$",
    "siren": r"^\d{9}$",
    "code_commune": r"^[0-9][0-9AB][0-9]{3}$",
}


class ExportError(ValueError):
    """A request the snapshot cannot answer (unknown territory, month absent): said in French."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    territoire: Territory
    mois: str
    lignes: dict[str, int]
    octets: int


def dimensions(indicator: catalogue.Indicator) -> tuple[str, ...]:
    """The key columns of an indicator (the Table Schema primary key), from the catalogue."""
    return indicator.dimensions


def bundle_name(territoire: Territory, mois: str) -> str:
    return f"observatoire-ess_{territoire.slug}_{mois}.zip"


# --- reading the snapshot -------------------------------------------------------------------


def snapshot_dir(publication_dir: Path) -> Path:
    """The live snapshot, resolved once per export (the symlink may switch right after)."""
    live = publish.current(Path(publication_dir))
    if live is None:
        raise ExportError("Aucune publication : lancez d'abord `observatoire refresh`.")
    return live


def months(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select distinct mois from indicators.etablissements_actifs order by mois"
    ).fetchall()
    return [r[0] for r in rows]


def published_territories(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(niveau, code, libellé) of every territory the snapshot publishes."""
    _require_territories(con)
    rows = con.execute(
        "select distinct niveau, code_territoire, libelle_territoire from indicators.territoires "
        "order by niveau, code_territoire"
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _require_territories(con: duckdb.DuckDBPyConnection) -> None:
    if not table_exists(con, "indicators", "territoires"):
        raise ExportError(
            "L'instantané publié ne dit pas quelles communes composent chaque territoire (table "
            "indicators.territoires) : il date d'une version antérieure. Relancez "
            "`observatoire refresh` pour le publier de nouveau."
        )


_MEMBERS = """
    select c.code_commune, coalesce(any_value(l.libelle_territoire), c.code_commune)
    from {table} as c
    left join {table} as l on l.niveau = 'commune' and l.code_territoire = c.code_commune
    where c.niveau = $niveau and c.code_territoire = $code
    group by c.code_commune order by 1
"""


def communes_of(con: duckdb.DuckDBPyConnection, niveau: str, code: str) -> list[tuple[str, str]]:
    """(code, libellé) of the communes a territory is made of, sorted by code."""
    _require_territories(con)
    rows = con.execute(
        _MEMBERS.format(table="indicators.territoires"), {"niveau": niveau, "code": code}
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def resolve(con: duckdb.DuckDBPyConnection, spec: str) -> Territory:
    """`niveau:code` → the published territory and all its communes, or a French error.

    The grammar is the refresh's (`territory.parse`); a list of communes or France is the
    published level `selection` (`selection:selection`, or `liste:…` and `france` as set).
    """
    try:
        niveau, code = territory.parse(spec, kinds=(*territory.LEVEL_NAMES, *territory.SELECTIONS))
    except TerritoryError as exc:
        raise ExportError(str(exc)[0].upper() + str(exc)[1:] + ".") from None
    if niveau in territory.SELECTIONS:
        niveau, code = "selection", territory.SELECTION_CODE
    published = {(n, c): lib for n, c, lib in published_territories(con)}
    if (niveau, code) not in published and niveau == "ept":
        code = code.upper()  # ept:t12 as the refresh's setting accepts it
    if (niveau, code) not in published:
        known = sorted(f"{n}:{c}" for n, c in published if n != "commune")
        raise ExportError(
            f"Territoire inconnu dans la publication : « {niveau}:{code} ». Territoires publiés "
            f"(hors communes) : {', '.join(known) or 'aucun'}."
        )
    parent = _is_parent(con, niveau, code)
    if niveau == "commune":
        communes = [(code, published[(niveau, code)])]
    else:
        communes = communes_of(con, niveau, code)
        if parent:
            # a unit containing the followed territory: only that territory's communes have
            # rows of their own, the bundle lists those (its README says so)
            own = {c for n, c, _ in published_territories(con) if n == "commune"}
            communes = [(c, lib) for c, lib in communes if c in own]
        if not communes:
            raise ExportError(
                f"La composition de « {niveau}:{code} » est introuvable : l'entrepôt décrit un "
                "autre territoire que la publication ? Relancez le rafraîchissement."
            )
    return Territory(
        level=niveau,
        code=code,
        label=published[(niveau, code)],
        communes=tuple(c for c, _ in communes),
        commune_labels=tuple(lib for _, lib in communes),
        spec=spec.strip(),
        parent=parent,
    )


def _is_parent(con: duckdb.DuckDBPyConnection, niveau: str, code: str) -> bool:
    """A unit containing part of the followed territory (`englobant`), published for
    comparison; a snapshot published before the column has none."""
    has_column = con.execute(
        "select count(*) from information_schema.columns where table_schema = 'indicators' "
        "and table_name = 'territoires' and column_name = 'englobant'"
    ).fetchone()[0]  # type: ignore[index]
    if not has_column:
        return False
    row = con.execute(
        "select bool_or(englobant) from indicators.territoires "
        "where niveau = $niveau and code_territoire = $code",
        {"niveau": niveau, "code": code},
    ).fetchone()
    return bool(row and row[0])


# --- formatting -----------------------------------------------------------------------------


def _schema_type(duck_type: str) -> str:
    """Table Schema type of a DuckDB column type (anything else is text)."""
    t = duck_type.upper()
    if t.removeprefix("U") in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        return "integer"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    return "string"


def _text(value: object, kind: str, excel: bool) -> str:
    """One cell as text: empty for NULL, shortest exact decimal, never an exponent."""
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "number":
        text = repr(float(value))
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text.replace(".", ",") if excel else text
    return str(value)


def _csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[str]], excel: bool) -> bytes:
    return csvfiles.dialect(excel).write(columns, rows)


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- one indicator --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    indicator: catalogue.Indicator
    types: dict[str, str]  # column -> Table Schema type
    rows: list[tuple]
    codes: dict[str, tuple[str, ...]]  # dimension -> codes of the snapshot's nomenclature


def _nomenclatures(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """Codes per dimension from `indicators.nomenclatures` (written with the territories)."""
    out: dict[str, list[str]] = {}
    for dimension, code in con.execute(
        "select distinct dimension, code from indicators.nomenclatures order by all"
    ).fetchall():
        out.setdefault(str(dimension), []).append(str(code))
    return {k: tuple(v) for k, v in out.items()}


def _read(
    con: duckdb.DuckDBPyConnection,
    indicator: catalogue.Indicator,
    territoire: Territory,
    mois: str,
) -> _Table:
    columns = indicator.colonnes
    quoted = ", ".join(f'"{c}"' for c in columns)
    described = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'indicators' and table_name = $name",
            {"name": indicator.name},
        ).fetchall()
    )
    missing = [c for c in columns if c not in described]
    if missing:
        raise ExportError(
            f"La publication ne contient pas les colonnes {missing} de {indicator.name} "
            "attendues par le catalogue : instantané d'une autre version ?"
        )
    communes = list(territoire.communes)
    if indicator.name == LISTING:
        where = "mois = $mois and list_contains($communes, code_commune)"
        params: dict[str, object] = {"mois": mois, "communes": communes}
    else:
        where = (
            "mois = $mois and ((niveau = $niveau and code_territoire = $code) "
            "or (niveau = 'commune' and list_contains($communes, code_territoire)))"
        )
        params = {
            "mois": mois,
            "niveau": territoire.level,
            "code": territoire.code,
            "communes": communes,
        }
    rows = con.execute(
        f"select {quoted} from indicators.{indicator.name} where {where} "
        f"order by {quoted} nulls first",
        params,
    ).fetchall()
    types = {c: _schema_type(described[c]) for c in columns}
    return _Table(indicator, types, rows, _nomenclatures(con))


def _title(definition: str) -> str:
    """A short title: the definition up to its first explanation (« : », parenthesis)."""
    return re.split(r" \(| : ", definition, maxsplit=1)[0]


def _field(
    table: _Table, column: str, dims: tuple[str, ...], definitions: dict[str, str], excel: bool
) -> dict[str, object]:
    kind = table.types[column]
    index = table.indicator.colonnes.index(column)
    present = sorted({r[index] for r in table.rows if r[index] is not None}, key=str)
    field: dict[str, object] = {
        "name": column,
        "title": _title(definitions.get(column, column)),
        "description": definitions.get(column, ""),
        "type": kind,
    }
    if kind == "number" and excel:
        field["decimalChar"] = ","
    if kind == "date":
        field["format"] = "%Y-%m-%d"
    if present:
        # frictionless reads `example` without the field's decimalChar: standard notation
        field["example"] = _text(present[0], kind, excel=False)
    constraints: dict[str, object] = {}
    if column in dims or column == "statut_secret":  # contract §1: never NULL
        constraints["required"] = True
    if column in ENUMS:
        constraints["enum"] = list(ENUMS[column])
    elif column in ENUMS_FROM_DATA and kind == "string" and (present or column in table.codes):
        constraints["enum"] = sorted({*table.codes.get(column, ()), *map(str, present)})
    if column in PATTERNS and kind == "string":
        constraints["pattern"] = PATTERNS[column]
    if kind in ("integer", "number") and (
        column.startswith(("nb_", "emplois_")) or column in ("annee",)
    ):
        constraints["minimum"] = 0
    if kind == "number" and column.startswith(("part_", "taux_")):
        constraints["minimum"] = 0
        constraints["maximum"] = 1
    if constraints:
        field["constraints"] = constraints
    return field


def table_schema(
    table: _Table, mois: str, excel: bool, dims: tuple[str, ...] | None = None
) -> dict[str, object]:
    """A Table Schema in the schema.data.gouv.fr convention (dates from the month: reproducible)."""
    ind = table.indicator
    dims = dims or dimensions(ind)
    definitions = catalogue.column_definitions()
    suffix = ".excel" if excel else ""
    schema: dict[str, object] = {
        "$schema": TABLE_SCHEMA_PROFILE,
        "name": f"observatoire-ess-{ind.name}{'-excel' if excel else ''}",
        "title": ind.titre + (" (dialecte Excel français)" if excel else ""),
        "description": (
            f"{ind.definition} Unité : {ind.unite}. Unité de compte : {ind.unite_de_compte}. "
            f"Source : {ind.source}. Méthode : {ind.methode}"
        ),
        "countryCode": "FR",
        "version": FORMAT_VERSION,
        "created": f"{mois}-01",
        "lastModified": f"{mois}-01",
        "path": f"schemas/{ind.name}{suffix}.json",
        "licenses": [LICENCE],
        "contributors": [{"title": "Observatoire ESS", "role": "author"}],
        "fields": [_field(table, c, dims, definitions, excel) for c in ind.colonnes],
        "missingValues": [""],
        "primaryKey": list(dims),
    }
    if HOMEPAGE:
        schema["homepage"] = HOMEPAGE
    return schema


# --- the bundle -----------------------------------------------------------------------------


def build(
    con: duckdb.DuckDBPyConnection,
    manifest: dict,
    territoire: Territory,
    mois: str,
    *,
    synthetic: bool = False,
) -> dict[str, bytes]:
    """Every entry of one bundle, name -> bytes; no I/O besides reading the snapshot."""
    entries: dict[str, bytes] = {}
    resources: list[dict[str, object]] = []
    lignes: dict[str, int] = {}
    secret_missing: list[str] = []
    for name, ind in sorted(catalogue.indicators().items()):
        table = _read(con, ind, territoire, mois)
        lignes[name] = len(table.rows)
        if name != LISTING and not set(SECRET_COLUMNS) <= set(ind.colonnes):
            secret_missing.append(name)
        dims = dimensions(ind)
        for excel, folder in ((False, "csv"), (True, "csv_excel")):
            kinds = [table.types[c] for c in ind.colonnes]
            body = _csv_bytes(
                ind.colonnes,
                (
                    [_text(v, k, excel) for v, k in zip(row, kinds, strict=True)]
                    for row in table.rows
                ),
                excel,
            )
            path = f"{folder}/{name}.csv"
            entries[path] = body
            schema = table_schema(table, mois, excel, dims)
            entries[str(schema["path"])] = _json_bytes(schema)
            resource: dict[str, object] = {
                "name": f"{name}{'-excel' if excel else ''}",
                "title": ind.titre,
                "path": path,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": csvfiles.dialect(excel).encoding,
                "dialect": {"delimiter": csvfiles.dialect(excel).delimiter},
                "schema": schema["path"],
                "hash": "sha256:" + hashlib.sha256(body).hexdigest(),
                "bytes": len(body),
                "licenses": [LICENCE],
            }
            resources.append(resource)
    package = {
        "name": f"observatoire-ess-{territoire.slug.lower()}-{mois}",
        "title": f"Observatoire ESS : {territoire.label} ({territoire.level}), {mois}",
        "version": FORMAT_VERSION,
        "created": f"{mois}-01T00:00:00Z",
        "licenses": [LICENCE],
        "resources": resources,
    }
    entries["datapackage.json"] = _json_bytes(package)
    entries["LISEZMOI.md"] = lisezmoi(
        manifest, territoire, mois, lignes, synthetic=synthetic, secret_missing=secret_missing
    ).encode("utf-8")
    files = {
        path: {
            "octets": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **({"lignes": lignes[Path(path).stem]} if path.endswith(".csv") else {}),
        }
        for path, data in sorted(entries.items())
    }
    entries["manifest.json"] = _json_bytes(
        {
            "format": FORMAT_VERSION,
            "mois": mois,
            "niveau": territoire.level,
            "code_territoire": territoire.code,
            "libelle_territoire": territoire.label,
            "communes": list(territoire.communes),
            "publication": {"mois": manifest["mois"], "run_id": manifest["run_id"]},
            "donnees_synthetiques": synthetic,
            "secret_statistique_applique": not secret_missing,
            "fichiers": files,
        }
    )
    return dict(sorted(entries.items()))


def write_zip(entries: dict[str, bytes], final: Path, mois: str) -> int:
    """Write the zip beside `final`, then rename it: a reader never sees a partial bundle.

    Entries are sorted and stamped with the month's first day, so the bytes depend on the
    content only. On any failure the temporary file is removed and `final` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    year, month = (int(x) for x in mois.split("-"))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                for name in sorted(entries):
                    info = zipfile.ZipInfo(name, date_time=(year, month, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, entries[name], compresslevel=9)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final.stat().st_size


def export(
    publication_dir: Path,
    sortie: Path,
    *,
    territoires: Sequence[str] = (),
    tous: bool = False,
    communes: bool = False,
    mois: str | None = None,
) -> list[Bundle]:
    """Write one bundle per requested territory for `mois` (default: the snapshot's month)."""
    live = snapshot_dir(publication_dir)
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    try:
        mois = parse_mois(mois or str(manifest["mois"]))
    except InvalidMonthError as exc:
        raise ExportError(str(exc)) from None
    # written by every refresh (the step `publication`, observatoire/steps.py): the demo's
    # figures are made up
    synthetic = bool(manifest.get("synthetique"))
    with duckdb.connect(str(live / "indicateurs.duckdb"), read_only=True) as con:
        held = months(con)
        if mois not in held:
            raise ExportError(
                f"Le mois {mois} n'est pas dans la publication (mois disponibles : "
                f"{', '.join(held) or 'aucun'})."
            )
        specs = list(territoires)
        if tous:
            wanted = (*LEVELS, "commune") if communes else LEVELS
            specs += [f"{n}:{c}" for n, c, _ in published_territories(con) if n in wanted]
        if not specs:
            raise ExportError("Indiquez au moins un --territoire NIVEAU:CODE, ou --tous.")
        resolved = [resolve(con, s) for s in dict.fromkeys(specs)]
        bundles = []
        for territoire in resolved:
            entries = build(con, manifest, territoire, mois, synthetic=synthetic)
            final = Path(sortie) / bundle_name(territoire, mois)
            size = write_zip(entries, final, mois)
            rows = json.loads(entries["manifest.json"])["fichiers"]
            lignes = {
                Path(p).stem: int(v["lignes"]) for p, v in rows.items() if p.startswith("csv/")
            }
            bundles.append(Bundle(final, territoire, mois, lignes, size))
    return bundles


# --- the French README ----------------------------------------------------------------------


def _fr_int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def lisezmoi(
    manifest: dict,
    territoire: Territory,
    mois: str,
    lignes: dict[str, int],
    *,
    synthetic: bool,
    secret_missing: Sequence[str],
) -> str:
    """The partner's README, in French: what, where from, how counted, what is hidden, licence."""
    inds = catalogue.indicators()
    out: list[str] = []
    w = out.append
    w(f"# Observatoire ESS : {territoire.label}, {mois}")
    w("")
    if synthetic:
        w(
            "> **DONNÉES SYNTHÉTIQUES.** Cet export a été produit sur les données de démonstration "
            "générées par l'observatoire (Sirene, questionnaire et listes de réseaux fictifs) : "
            "les chiffres ne décrivent pas le territoire réel. Ne pas diffuser."
        )
        w("")
    if secret_missing:
        w(
            "> **SECRET STATISTIQUE NON APPLIQUÉ.** La publication dont est tiré cet export ne "
            "porte pas encore les colonnes `statut_secret` et `motif_secret` pour : "
            + ", ".join(f"`{n}`" for n in secret_missing)
            + ". Des cases peuvent décrire une ou deux structures : usage interne uniquement, "
            "ne pas rediffuser en l'état."
        )
        w("")
    w("## Contenu")
    w("")
    if territoire.level == "commune":
        w(f"Territoire : commune **{territoire.label}** (code INSEE {territoire.code}).")
    elif territoire.parent:
        w(
            f"Territoire : **{territoire.label}** (niveau `{territoire.level}`, code "
            f"`{territoire.code}`). Il contient une partie du territoire suivi par "
            f"l'observatoire ({manifest.get('libelle_territoire', 'territoire publié')}) et "
            "n'est publié que pour comparaison : ses chiffres Sirene portent sur toutes ses "
            "communes, mais les tableaux du questionnaire et des listes des réseaux, qui ne "
            "concernent que le territoire suivi, n'ont pas de ligne pour lui. Communes "
            f"détaillées (celles du territoire suivi, {len(territoire.communes)}) :"
        )
        w("")
        for code, libelle in zip(territoire.communes, territoire.commune_labels, strict=True):
            w(f"- {libelle} ({code})")
    else:
        w(
            f"Territoire : **{territoire.label}** (niveau `{territoire.level}`, code "
            f"`{territoire.code}`), et ses {len(territoire.communes)} communes :"
        )
        w("")
        for code, libelle in zip(territoire.communes, territoire.commune_labels, strict=True):
            w(f"- {libelle} ({code})")
    w("")
    w(
        f"Mois : **{mois}** (stock Sirene de l'INSEE du mois). Publication d'origine : mois "
        f"{manifest['mois']}, exécution `{manifest['run_id']}`."
    )
    w("")
    w(
        "Chaque fichier contient les lignes du territoire lui-même et celles de ses communes "
        "(colonnes `niveau` et `code_territoire`), pour ce mois seulement. L'annuaire "
        "(`annuaire_ess`) n'existe que pour le mois de la publication : il est vide pour un mois "
        "antérieur."
    )
    w("")
    w("## Sources")
    w("")
    w(
        "- INSEE, base Sirene des entreprises et de leurs établissements : fichiers de stock "
        "`StockEtablissement` et `StockUniteLegale` du mois."
    )
    w(
        "- Questionnaire de l'observatoire « Mieux vous connaître » (vagues de réponses), "
        "rapproché de Sirene : indicateurs `taux_reponse` et `besoins_cites`."
    )
    w(
        "- Listes de membres déclarées par les réseaux (ressourceries, SIAE, ESUS, SCOP/SCIC, "
        "CRESS…), rapprochées de Sirene : `reseaux_couverture`, `ess_hors_reseau`, "
        "`ressourceries`."
    )
    w("")
    w("## Méthode")
    w("")
    w(
        "Le périmètre de l'ESS est décidé par établissement, d'après la catégorie juridique de "
        "l'unité légale, l'indicateur ESS de l'INSEE et les activités exclues. Les emplois "
        "salariés sont estimés à partir des tranches d'effectifs de Sirene (fourchette basse, "
        "centrale, haute) : ce ne sont pas des comptages. Les lignes `ensemble` sont les marges "
        "(totaux) des tableaux croisés. La méthode complète est dans le document de méthode de "
        "l'observatoire (`docs/methode.md` du dépôt)."
    )
    w("")
    w(
        "Activités : la colonne `section_naf` donne la section de la **NAF rév. 2** (A à U). "
        "Un établissement que Sirene code déjà en NAF 2025 prend la section NAF rév. 2 de son "
        "code quand elle est unique d'après la table de correspondance de l'INSEE ; sinon, et "
        "pour les anciennes nomenclatures (NAF rév. 1, NAF 1993, NAP), la section est "
        "`non_classe`. Les catégories juridiques retirées de la liste de l'INSEE (5720, 5498, "
        "1100 à 1900…) et les anciennes communes sont classées et comptées comme les autres."
    )
    w("")
    w("## Indicateurs et unités de compte")
    w("")
    w("| indicateur | titre | unité de compte | lignes |")
    w("|---|---|---|---|")
    for name in sorted(inds):
        ind = inds[name]
        w(f"| `{name}` | {ind.titre} | {ind.unite_de_compte} | {_fr_int(lignes[name])} |")
    w("")
    w("## Tableaux publics et tableaux confidentiels")
    w("")
    w("Chaque tableau déclare sa confidentialité dans le catalogue (`confidentialite`) :")
    w("")
    for name in sorted(inds):
        ind = inds[name]
        w(f"- `{name}` : **{ind.confidentialite}**")
    w("")
    w(
        "**Tableaux publics.** Ils sont calculés à partir du stock Sirene de l'INSEE, fichier "
        "public (et des listes que les réseaux publient) : tout le monde peut recompter chaque "
        "case à partir de ce fichier, y compris pour les unités à diffusion partielle, dont "
        "l'activité, la catégorie juridique, la tranche d'effectifs, l'état et la commune sont "
        "diffusés (décret n° 2022-1014). Ils sont publiés en entier : toutes les cases, les "
        "emplois avec leurs bornes basse, centrale et haute exactes ; `statut_secret` vaut "
        "`publie`, `motif_secret` est vide et `fourchette_elargie` vaut toujours `false` "
        "(colonne gardée pour la stabilité des schémas)."
    )
    w("")
    w(
        "**Tableaux confidentiels** (réponses au questionnaire) : règles françaises du secret "
        "statistique. Une case de moins de 3 répondants est secrète (secret primaire) ; "
        "d'autres cases sont masquées (secret secondaire, par élimination gaussienne) pour "
        "qu'aucune case secrète ne puisse être recalculée à partir de tout ce qui est publié, "
        "tableaux publics compris, avec les inégalités que tout lecteur connaît (répondants ≤ "
        "établissements de la case, citants ≤ répondants). Une valeur secrète est vide et la "
        "ligne porte `statut_secret` = `secret`, sans autre précision : dire pourquoi "
        "renseignerait sur la valeur. Les lignes existent pour toutes les cases de la "
        "population (établissements actifs de l'ESS), qu'il y ait des répondants ou non. "
        "Chaque territoire a sa ligne d'ensemble et une ligne par famille, par section NAF "
        "et par tranche d'effectifs, une dimension à la fois : les croisements ne sont pas "
        "publiés, presque toutes leurs cases compteraient 0, 1 ou 2 répondants."
    )
    w("")
    w(
        "Une liste de réseau déclarée confidentielle (`confidentiel = true`) : ses lignes de "
        "`reseaux_couverture` suivent les mêmes règles (territoire de 1 ou 2 membres secret, "
        "emplois secrets aussi quand un membre en porte plus de 85 %, secret secondaire ; "
        "`emplois_max_unite` toujours vide ; une ligne pour chaque territoire, avec ou sans "
        "membre). Elle n'entre pas dans `ess_hors_reseau` ni dans `ressourceries`, qui ne "
        "comptent que les listes publiques."
    )
    w("")
    w(
        "Unités à diffusion partielle (statut de diffusion `P` dans Sirene) : elles sont "
        "**comptées** dans tous les agrégats mais ne sont **jamais listées**, ni nommées, ni "
        "localisées. L'annuaire (`annuaire_ess`) ne contient que des établissements diffusibles "
        "(établissement et unité légale au statut `O`) : ce sont des données publiques de la "
        "base Sirene."
    )
    w("")
    w("## Deux formats de CSV")
    w("")
    w(
        "- `csv/` : format standard, UTF-8 sans BOM, séparateur virgule `,`, point décimal `.` "
        "(pour les logiciels statistiques et les scripts) ;"
    )
    w(
        "- `csv_excel/` : format Excel français, UTF-8 avec BOM, séparateur point-virgule `;`, "
        "virgule décimale `,` (s'ouvre directement dans Excel)."
    )
    w("")
    w(
        "Les deux contiennent exactement les mêmes valeurs. Une valeur vide signifie "
        "« sans objet », « non renseigné » ou « secret » (voir `statut_secret`)."
    )
    w("")
    w("## Schémas et contrôle des fichiers")
    w("")
    w(
        "`schemas/<indicateur>.json` décrit chaque colonne (titre, définition, type, exemple, "
        "contraintes) au format Table Schema, selon la convention de schema.data.gouv.fr ; "
        "`schemas/<indicateur>.excel.json` est le même schéma pour le format Excel (virgule "
        "décimale). `datapackage.json` associe chaque CSV à son format et à son schéma : "
        "`frictionless validate datapackage.json` contrôle tout l'export d'une commande. "
        "`manifest.json` donne le nombre de lignes et l'empreinte sha256 de chaque fichier."
    )
    w("")
    w("## Licence")
    w("")
    w(
        "Les chiffres de cet export sont diffusés sous la **Licence Ouverte / Open Licence "
        "version 2.0** (Etalab-2.0, https://www.etalab.gouv.fr/licence-ouverte-open-licence/). "
        "Mention de la source : « Observatoire ESS, d'après INSEE, base Sirene, " + mois + " »."
    )
    w(
        "La base Sirene est elle-même diffusée par l'INSEE sous Licence Ouverte 2.0 ; sa "
        "réutilisation doit respecter le statut de diffusion des personnes (aucune donnée des "
        "unités au statut `P`)."
    )
    w("")
    w("## Fichiers")
    w("")
    w("| fichier | lignes |")
    w("|---|---|")
    for name in sorted(inds):
        for folder in ("csv", "csv_excel"):
            w(f"| `{folder}/{name}.csv` | {_fr_int(lignes[name])} |")
    for name in sorted(inds):
        w(f"| `schemas/{name}.json`, `schemas/{name}.excel.json` | |")
    w("| `datapackage.json`, `manifest.json`, `LISEZMOI.md` | |")
    w("")
    return "\n".join(out)
