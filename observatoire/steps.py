"""The steps of a month, in order: one function per step, one signature, `run(ctx) -> StepResult`.

`observatoire refresh` and the Dagster job `sirene_mensuel` are both this list: the CLI runs it
through Dagster (`observatoire.refresh`), the tests may run it directly, and the Dagster assets
(`pipelines/definitions.py`) are generated from it — one multi-asset per step, with the step's
tables as assets and its Great Expectations suites as blocking checks. Nothing here imports
Dagster: a step returns plain values, which the runner prints and Dagster shows as metadata.

A step finds what it needs in the warehouse, never in memory left by an earlier step, because
Dagster may run one step alone (a re-materialisation from the UI).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from observatoire import indicators, linkage
from observatoire.cleaning import questionnaire as questionnaire_clean
from observatoire.cleaning import reseaux as reseaux_clean
from observatoire.cleaning import sirene as clean
from observatoire.core import catalogue, fingerprint, territory, warehouse
from observatoire.core.mois import stock_window
from observatoire.core.settings import Settings
from observatoire.publication import publish
from observatoire.secrecy import tables as secret_tables
from observatoire.sources import inbox, questionnaire, reference, reseaux, sirene
from observatoire.sources.download import fetch, validate_sirene_csv, validate_sirene_zip

if TYPE_CHECKING:  # GX is imported only when checks run
    from observatoire.quality import SuiteResult

log = logging.getLogger(__name__)

KINDS = ("etablissements", "unites_legales")
# what the user changes to point at another file (.env.example)
SOURCE_SETTINGS = {
    "etablissements": "OBSERVATOIRE_SIRENE_ETABLISSEMENTS",
    "unites_legales": "OBSERVATOIRE_SIRENE_UNITES_LEGALES",
}
LABELS = {"etablissements": "établissements", "unites_legales": "unités légales"}


class QualityError(RuntimeError):
    """A blocking quality check failed: the month is not published."""

    def __init__(self, results: list[SuiteResult]) -> None:
        self.results = results
        super().__init__(" | ".join(r.summary_fr() for r in results if not r.success))


class StaleStockError(ValueError):
    """The stock read is older than the month asked: it cannot be that month's stock."""


class Markdown(str):
    """A small table for the reader of a step's result (Dagster shows it as Markdown)."""


@dataclass
class StepContext:
    settings: Settings
    mois: str
    run_id: str
    con: duckdb.DuckDBPyConnection
    # suites validated during the run: the runner builds the Data Docs once, at the end
    validated: list[str] = field(default_factory=list)

    def check(self, *suites: str) -> list[SuiteResult]:
        """Run Great Expectations suites; the runner stops the month on a failed one."""
        from observatoire import quality

        s = self.settings
        self.validated.extend(suites)
        return [
            quality.validate(
                self.con,
                suite,
                self.mois,
                max_reject_rate=s.max_reject_rate,
                count_band=s.count_band,
                drift_limits=s.drift_limits,
                docs_dir=s.quality_docs_dir,
                build_docs=False,
            )
            for suite in suites
        ]

    def preview(self, sql: str, params: dict[str, object] | None = None) -> Markdown:
        frame = self.con.execute(sql, params or {}).pl()
        if frame.is_empty():
            return Markdown("_(aucune ligne)_")
        header = "| " + " | ".join(frame.columns) + " |"
        sep = "|" + "---|" * len(frame.columns)
        rows = [
            "| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in frame.rows()
        ]
        return Markdown("\n".join([header, sep, *rows]))


@dataclass
class StepResult:
    """What a step did: metadata per table it wrote, its checks, and values for the CLI."""

    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> values
    checks: list[SuiteResult] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # Python objects for the CLI report

    @property
    def failed(self) -> list[SuiteResult]:
        return [r for r in self.checks if not r.success]


@dataclass(frozen=True)
class Step:
    """One step of a month: the tables it writes (Dagster assets) and what they read."""

    name: str
    run: Callable[[StepContext], StepResult]
    assets: tuple[str, ...]  # "schema.table"; the asset key is [schema, table]
    deps: tuple[str, ...] = ()  # assets of other steps it reads
    # checked tables (a suite per asset, named like it): Dagster declares blocking checks
    checked: tuple[str, ...] = ()
    monthly: bool = True  # partitioned by stock month; sources and reference are not
    group: str = ""
    description: str = ""
    # assets read for the previous month as well (the evolution compares with it)
    previous_month: tuple[str, ...] = ()


# ---------------------------------------------------------------- reference and territory


def load_reference_and_territory(
    con: duckdb.DuckDBPyConnection, settings: Settings
) -> territory.Territory:
    reference.load_reference(con, settings.reference_dir)
    selected = territory.resolve(con, settings.territoire)
    territory.materialise(con, selected)
    return selected


def run_reference(ctx: StepContext) -> StepResult:
    s = ctx.settings
    counts = reference.load_reference(ctx.con, s.reference_dir)
    selected = territory.resolve(ctx.con, s.territoire)
    materialised = territory.materialise(ctx.con, selected)
    log.info("territoire %s : %d communes", selected.label, len(selected.communes))
    levels = ctx.con.execute(
        "select niveau, count(distinct code_territoire) from ref.territoire_niveaux "
        "where not englobant group by all order by min(rang)"
    ).fetchall()
    containing = ctx.con.execute(
        "select distinct niveau || ':' || code_territoire || ' ' || libelle_territoire, rang "
        "from ref.territoire_niveaux where englobant order by rang, 1"
    ).fetchall()
    result = StepResult(values={"territoire": selected})
    for table, n in counts.items():
        result.metadata[f"ref.{table}"] = {
            "lignes": n,
            "fichier": s.reference_dir / reference.REFERENCE_FILES[table],
        }
    result.metadata["ref.territoire_communes"] = {
        "territoire": s.territoire,
        "libelle": selected.label,
        "communes": materialised["communes"],
    }
    result.metadata["ref.territoire_niveaux"] = {
        "niveaux": dict(levels),
        # published for comparison when the month's stock covers them (step perimetre)
        "englobants": [name for name, _ in containing],
        "lignes": materialised["appartenances"],
    }
    result.metadata["ref.communes_lues"] = {
        "communes": materialised["communes_lues"],
        "hors_territoire": materialised["communes_lues"] - materialised["communes"],
    }
    return result


# ---------------------------------------------------------------- inbox: waves, lists, decisions


def ensure_source_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The source and link tables, empty, so that indicators and checks work with no inbox."""
    inbox.ensure_tables(con)
    linkage.create_tables(con)
    linkage.create_source_view(con)


def run_sources(ctx: StepContext) -> StepResult:
    """Read every wave and network list of the inbox into raw, and import review decisions.

    First in the month: a broken wave or list is refused before the long SIRENE read.
    """
    s, con = ctx.settings, ctx.con
    ensure_source_tables(con)
    download = Path(s.download_dir)
    waves = questionnaire.ingest_all(
        con,
        s.inbox_dir,
        download_dir=download / "questionnaires",
        max_reject_rate=s.max_reject_rate,
    )
    lists = reseaux.ingest_all(
        con, s.inbox_dir, download_dir=download, max_reject_rate=s.max_reject_rate
    )
    decisions = _import_decisions(con, s)
    # what was read, for the publication's private part: the inbox sensor starts nothing for it
    inbox.record_read(con, s.inbox_dir)
    result = StepResult(
        values={"lectures_vagues": waves, "lectures_reseaux": lists, "decisions": decisions}
    )
    result.metadata["raw.questionnaire_cellules"] = {
        "mois_controle": ctx.mois,
        "vagues": len(waves),
        "lectures": ctx.preview(
            "select vague, fichier_source, encodage, separateur, lignes_lues, "
            "lignes_mal_formees from raw.questionnaire_lectures order by vague"
        ),
    }
    result.metadata["raw.reseaux_cellules"] = {
        "mois_controle": ctx.mois,
        "reseaux": len(lists),
        "lectures": ctx.preview(
            "select reseau, fichier_source, lignes_lues, lignes_mal_formees "
            "from raw.reseaux_lectures order by reseau"
        ),
    }
    result.metadata["ref.decisions_rapprochement"] = {"decisions_importees": decisions}
    result.checks = ctx.check(*inbox.RAW_SUITES)
    return result


def _import_decisions(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Every decisions file of `inbox/decisions/`, oldest name first (an upsert by fingerprint:
    the files can stay there, the decisions stay in the warehouse once they are removed)."""
    folder = Path(settings.inbox_dir) / "decisions"
    return sum(linkage.import_decisions(con, path) for path in sorted(folder.glob("*.csv")))


def run_sources_clean(ctx: StepContext) -> StepResult:
    con = ctx.con
    ensure_source_tables(con)
    waves = questionnaire_clean.clean_all(con, ctx.settings.inbox_dir)
    lists = reseaux_clean.clean_all(con, ctx.settings.inbox_dir)
    result = StepResult(values={"vagues": waves, "reseaux": lists})
    for table, key, rejects, label in (
        ("questionnaire_reponses", "vague", "questionnaire_rejets", "reponses"),
        ("reseaux_membres", "reseau", "reseaux_rejets", "membres"),
    ):
        counts = con.execute(f"select {key}, count(*) from clean.{table} group by all order by 1")
        result.metadata[f"clean.{table}"] = {
            "mois_controle": ctx.mois,
            label: dict(counts.fetchall()),
            "rejets_apercu": ctx.preview(
                f"select {key}, ligne, colonne, motif from clean.{rejects} "
                f"order by {key}, ligne limit 10"
            ),
        }
    result.checks = ctx.check(*inbox.CLEAN_SUITES)
    return result


def run_linkage(ctx: StepContext) -> StepResult:
    """Link the month's answers and members to SIRENE; the review queue once checked."""
    con, mois = ctx.con, ctx.mois
    ensure_source_tables(con)
    # decisions dropped since the inbox was read (this step run alone from the UI): importing
    # again is an upsert, harmless
    _import_decisions(con, ctx.settings)
    linked = linkage.link_month(con, mois)
    by_method = con.execute(
        "select source, methode, statut, count(*) from clean.rapprochements "
        "where mois = $mois group by all order by all",
        {"mois": mois},
    ).fetchall()
    result = StepResult(values={"rapprochement": linked})
    result.checks = ctx.check("clean.rapprochements")
    queue: Path | None = None
    if not result.failed:
        # written only once checked: the suite says the queue names no non-diffusible unit,
        # and a file on disk cannot be taken back
        queue = Path(ctx.settings.review_dir) / f"a_revoir_{mois}.csv"
        queue.parent.mkdir(parents=True, exist_ok=True)
        linkage.export_review_queue(con, mois, queue)
    result.values["file_a_revoir"] = queue
    result.metadata["clean.rapprochements"] = {
        "mois": mois,
        "liens": [{"source": a, "methode": b, "statut": c, "n": n} for a, b, c, n in by_method],
        "file_a_revoir": queue if queue else "non écrite",
    }
    return result


# ---------------------------------------------------------------- SIRENE


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def locate_source(settings: Settings, kind: str, mois: str) -> Path:
    """Local path of the month's file, downloading it first when the setting is a URL.

    A download is checked in full (zip CRC, header) before it replaces the previous file; a
    local file is checked while it is read (header first, CRC at the end of the zip member).
    Either way the file must be a readable regular file, said in a sentence naming the setting.
    """
    source = settings.source(kind, mois)
    validate: Callable[[Path], None] | None = None
    url = _is_url(source)
    if url:
        bare = source.rsplit("?", 1)[0].lower()
        if bare.endswith(".zip"):
            validate = validate_sirene_zip(kind)
        elif bare.endswith(".csv"):
            validate = validate_sirene_csv(kind)
    else:
        _check_source(Path(source).expanduser(), kind, mois)
    path = fetch(source, Path(settings.download_dir) / mois, validate=validate).path
    if url:
        _check_source(path, kind, mois)
    return path


def _check_source(path: Path, kind: str, mois: str) -> None:
    try:
        sirene.check_source(path)
    except sirene.SireneFileError as exc:
        raise sirene.SireneFileError(
            f"Stock SIRENE des {LABELS[kind]} de {mois} : {exc} "
            f"(chemin réglé par {SOURCE_SETTINGS[kind]})"
        ) from None


def check_local_sources(settings: Settings, mois: str) -> None:
    """Both local files present and readable, said before a run starts (a URL is checked once
    downloaded, by the step `sirene_brut`)."""
    for kind in KINDS:
        source = settings.source(kind, mois)
        if not _is_url(source):
            _check_source(Path(source).expanduser(), kind, mois)


def locate_sources(settings: Settings, mois: str) -> dict[str, Path]:
    """Both files of the month, present and readable, before the long read of the first."""
    return {kind: locate_source(settings, kind, mois) for kind in KINDS}


def ingest(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    kind: str,
    mois: str,
    path: Path | None = None,
) -> clean.MonthResult:
    """Read and clean one file of the month in one streamed pass, then swap it in.

    The establishments' stock date is checked before anything is swapped in, and before the
    legal units are read.
    """
    path = path or locate_source(settings, kind, mois)
    whole_country = territory.is_france(settings.territoire)

    def stock_date(month: clean.MonthResult) -> None:
        if kind == "etablissements":
            check_stock_date(mois, month.read.rows, month.latest_treatment, path)

    return clean.process_month(
        con,
        kind,
        path,
        mois,
        # the territory's communes and those of the units containing it (its département,
        # its région…), published for comparison when the stock covers them
        communes_table=None if whole_country else "ref.communes_lues",
        max_malformed_rate=settings.max_reject_rate,
        max_reject_rate=settings.max_reject_rate,
        before_swap=stock_date,
    )


def check_stock_date(
    mois: str, rows: int, latest: dt.date | None, path: Path | None = None
) -> None:
    """Refuse a month later than the establishment stock can be, before the legal units are read.

    The stock of month M was extracted at the end of M-1 or the start of M: a latest treatment
    date before M-1 means an older file, or a month mistyped (2027-03 for 2026-03). Judged on
    the territory's records, with the tolerance of the quality check `date_du_stock`: under
    `STOCK_DATE_MIN_ROWS` rows a quiet territory may have had no treatment for months, and that
    check only warns. A stock newer than the month is left to that check. Nothing of the month
    is swapped in yet when this refuses.
    """
    from observatoire.quality import sirene_suites

    start, end = stock_window(mois)
    if rows < sirene_suites.STOCK_DATE_MIN_ROWS or latest is None or latest >= start:
        return
    where = f" ({path})" if path else ""
    raise StaleStockError(
        f"Le stock d'établissements lu{where} date du {latest:%d/%m/%Y} (dernier traitement "
        f"INSEE sur {rows} lignes), il ne peut pas être celui de {mois} : le stock d'un mois a "
        f"son dernier traitement entre le {start:%d/%m/%Y} et le {end:%d/%m/%Y}. Vérifier le "
        "mois demandé ou le fichier ; rien n'a été publié."
    )


def run_sirene_raw(ctx: StepContext) -> StepResult:
    """Both files read and cleaned, each in one streamed pass; then the raw suites."""
    con, mois = ctx.con, ctx.mois
    dropped = warehouse.drop_stale_builds(con)  # left by a killed run, whatever its month
    if dropped:
        log.warning("constructions abandonnées supprimées : %s", ", ".join(dropped))
    # both files found and readable (downloaded if need be) before anything is read
    paths = locate_sources(ctx.settings, mois)
    result = StepResult(values={"ingested": {}, "cleaned": {}})
    for kind in KINDS:
        month = ingest(con, ctx.settings, kind, mois, paths[kind])
        read = month.read
        result.values["ingested"][kind] = read
        result.values["cleaned"][kind] = month.cleaned
        result.metadata[f"raw.sirene_{kind}"] = {
            "mois": mois,
            "lignes": read.rows,
            "enregistrements_fichier": read.records,
            "enregistrements_lus": read.records_read,
            "enregistrements_mal_formes": read.malformed,
            "lignes_physiques": read.physical_lines,
            "lecture_enregistrement_par_enregistrement": read.recovered,
            "fichier": read.path,
            "disposition": read.layout,
            # file, line and reason only: the raw line itself may name a P unit
            "enregistrements_mal_formes_apercu": ctx.preview(
                "select fichier, ligne, colonne, motif from raw.sirene_rejets_lecture "
                "where mois = $mois and type_fichier = $k order by ligne limit 10",
                {"mois": mois, "k": kind},
            ),
        }
    result.checks = ctx.check(*(f"raw.sirene_{kind}" for kind in KINDS))
    return result


def run_sirene_clean(ctx: StepContext) -> StepResult:
    """The clean layer the read wrote (same pass): its figures and the clean suites."""
    con, mois = ctx.con, ctx.mois
    result = StepResult(values={"cleaned": {}})
    for kind in KINDS:
        cleaned = clean.clean_result(con, kind, mois)
        result.values["cleaned"][kind] = cleaned
        result.metadata[f"clean.sirene_{kind}"] = {
            "mois": mois,
            "lignes": cleaned.rows_clean,
            "rejets": cleaned.rows_rejected,
            "taux_de_rejet": round(cleaned.reject_rate, 5),
            "motifs": cleaned.rejects_by_reason,
            "rejets_apercu": ctx.preview(
                f"select identifiant, colonne, motif from clean.sirene_{kind}_rejets "
                "where mois = $mois order by identifiant limit 10",
                {"mois": mois},
            ),
            # codes kept although no current list knows them (clean.codes_hors_nomenclature)
            "codes_hors_nomenclature": cleaned.drift_summary(),
        }
    result.checks = ctx.check(*(f"clean.sirene_{kind}" for kind in KINDS))
    return result


# ---------------------------------------------------------------- indicators


def run_perimeter(ctx: StepContext) -> StepResult:
    """The month's ESS perimeter, and the levels it is published at: the units containing the
    territory only where the month's stock covers them (judged on the cleaned stock)."""
    n = indicators.compute_perimeter(ctx.con, ctx.mois)
    rules = ctx.con.execute(
        "select regle, count(*) from clean.etablissements_perimetre where mois = $mois "
        "group by all order by 2 desc",
        {"mois": ctx.mois},
    ).fetchall()
    covered = indicators.compute_levels(ctx.con, ctx.mois)
    for unit in covered:
        (log.info if unit.published else log.warning)("%s", unit.reason_fr())
    levels = ctx.con.execute(
        "select niveau, count(distinct code_territoire) from clean.niveaux_publies "
        "where mois = $mois group by all order by min(rang)",
        {"mois": ctx.mois},
    ).fetchall()
    result = StepResult(values={"perimetre": n, "couverture": covered})
    result.metadata["clean.etablissements_perimetre"] = {
        "mois": ctx.mois,
        "lignes": n,
        "regles": dict(rules),
    }
    result.metadata["clean.couverture_niveaux"] = {
        "mois": ctx.mois,
        "seuil": indicators.COVERAGE_MIN,
        "publies": [u.key for u in covered if u.published],
        "non_publies": {u.key: u.reason_fr() for u in covered if not u.published},
        "couverture": ctx.preview(
            "select niveau, code_territoire, libelle_territoire, communes, "
            "communes_hors_territoire, communes_couvertes, part_couverte, publie "
            "from clean.couverture_niveaux where mois = $mois "
            "order by rang desc, code_territoire",
            {"mois": ctx.mois},
        ),
    }
    result.metadata["clean.niveaux_publies"] = {"mois": ctx.mois, "niveaux": dict(levels)}
    result.checks = ctx.check("clean.etablissements_perimetre")
    return result


def run_indicators(ctx: StepContext) -> StepResult:
    ensure_source_tables(ctx.con)  # needs and networks read the (maybe empty) source tables
    # first: indicators stopped half-way must not leave the previous mask looking current
    secret_tables.invalidate(ctx.con, ctx.mois)  # publication waits for the secrecy step
    indicators.ensure_levels(ctx.con, ctx.mois)  # written by `perimetre`, unless run before it
    counts = indicators.compute_all(ctx.con, ctx.mois)
    result = StepResult(values={"indicateurs": counts})
    for name, n in counts.items():
        result.metadata[f"indicators.{name}"] = {
            "mois": ctx.mois,
            "lignes": n,
            "apercu": ctx.preview(
                f"select * from indicators.{name} where mois = $mois limit 10", {"mois": ctx.mois}
            ),
        }
    return result


# ---------------------------------------------------------------- secrecy and publication


def run_secrecy(ctx: StepContext) -> StepResult:
    """Tables for readers (`diffusion.*`): public ones in full, confidential ones masked.

    Months published under older rules get today's mask too: the snapshot carries every month.
    """
    mask = secret_tables.protect_month(ctx.con, ctx.mois)
    earlier = [
        m
        for (m,) in ctx.con.execute(
            "select distinct mois from indicators.etablissements_actifs where mois < $mois",
            {"mois": ctx.mois},
        ).fetchall()
    ]
    secret_tables.ensure_protected(ctx.con, sorted(earlier))
    result = StepResult(values={"secret": mask})
    result.metadata["secret.masques"] = {
        "mois": ctx.mois,
        "cases": mask.cells,
        "primaires": mask.primary,
        "secondaires": mask.secondary,
        "secondes": round(mask.seconds, 2),
    }
    return result


def synthetic_sources(settings: Settings, mois: str) -> bool:
    """Generated demo data must say so wherever its figures are read (page, bundles)."""
    return (settings.data_dir / "sirene" / mois / "synthetic_manifest.json").exists()


def run_publication(ctx: StepContext) -> StepResult:
    s = ctx.settings
    # as the reference step resolved it (a source run started later may have other settings)
    selected = territory.materialised(ctx.con)
    pub = publish.publish(
        ctx.con,
        s.publication_dir,
        ctx.mois,
        ctx.run_id,
        metadata={
            "territoire": selected.spec,
            "libelle_territoire": selected.label,
            "synthetique": synthetic_sources(s, ctx.mois),
        },
        # the inbox files the month read, by content, for the inbox sensor: file names of
        # confidential lists are nobody's business, so not in the public manifest
        # and what the month was made from, so that a refresh of the unchanged month is skipped
        private={
            "sources_lues": inbox.read_state(ctx.con),
            "empreinte_entrees": fingerprint.inputs(ctx.settings, ctx.mois),
        },
    )
    figures = headline(ctx.con, ctx.mois)
    result = StepResult(values={"publication": pub})
    result.metadata["publication.observatoire"] = {
        "mois": ctx.mois,
        "dossier": pub.path.resolve(),
        "lignes": pub.rows,
        "chiffres_cles": {k: str(v) for k, v in figures.items()},
    }
    return result


# the widest level first (an EPCI before an EPT: the order of territory.LEVELS)
_LEVEL_RANK = (
    "case niveau "
    + " ".join(f"when '{level.name}' then {level.rank}" for level in territory.LEVELS)
    + " else 0 end"
)


def headline(con: duckdb.DuckDBPyConnection, mois: str) -> dict[str, object]:
    """Key figures for the territory as a whole: its widest own level, never a unit containing
    it (published for comparison only)."""
    top = con.execute(
        "select niveau, code_territoire, libelle_territoire from indicators.etablissements_actifs "
        "where mois = $mois and (niveau, code_territoire) in (select (niveau, code_territoire) "
        "from ref.territoire_niveaux where not englobant) "
        f"order by {_LEVEL_RANK} desc, code_territoire limit 1",
        {"mois": mois},
    ).fetchone()
    if top is None:
        return {}
    niveau, code, libelle = top
    key = {"mois": mois, "niveau": niveau, "code": code}

    def one(sql: str) -> object:
        row = con.execute(sql, key).fetchone()
        return row[0] if row else None

    where = "mois = $mois and niveau = $niveau and code_territoire = $code"
    cube_total = "section_naf = 'ensemble' and tranche_effectifs = 'ensemble'"
    return {
        "territoire": libelle,
        "niveau": niveau,
        "etablissements_actifs": one(
            f"select nb_etablissements from indicators.etablissements_actifs where {where} "
            f"and perimetre = 'ensemble' and famille = 'ensemble' and {cube_total}"
        ),
        "etablissements_actifs_ess": one(
            f"select nb_etablissements from indicators.etablissements_actifs where {where} "
            f"and perimetre = 'ess' and famille = 'ensemble' and {cube_total}"
        ),
        "etablissements_employeurs_ess": one(
            f"select nb_etablissements_employeurs from indicators.etablissements_employeurs "
            f"where {where} and perimetre = 'ess' and famille = 'ensemble' and {cube_total}"
        ),
        "emplois_ess": con.execute(
            f"select emplois_bas, emplois_central, emplois_haut, part_tranche_inconnue "
            f"from indicators.emplois_salaries_estimes where {where} and perimetre = 'ess' "
            f"and famille = 'ensemble' and {cube_total}",
            key,
        ).fetchone(),
        "part_ess_emplois_prives": one(
            f"select part_ess_emplois from indicators.part_ess_emploi_prive where {where} "
            f"and {cube_total}"
        ),
    }


# ---------------------------------------------------------------- the month, in order

_SIRENE_REF = ("ref.communes_lues", "ref.cog_communes_anciennes")
_CLEAN_REF = (
    "ref.communes",
    "ref.naf_rev2_sous_classes",
    "ref.tranches_effectifs",
    "ref.categories_juridiques_n3",
    "ref.cog_communes_anciennes",
    "ref.naf_2025_niveaux",
    "ref.naf_rev2_naf_2025",
)
_PERIMETER_REF = (
    "ref.ess_categories_juridiques",
    "ref.ess_naf_exclusions",
    "ref.naf_rev2_naf_2025",
    "ref.categories_juridiques_n3",
)
_SOURCE_ASSETS = ("raw.questionnaire_cellules", "raw.reseaux_cellules")
_SOURCE_CLEAN = ("clean.questionnaire_reponses", "clean.reseaux_membres")
_INDICATORS = tuple(f"indicators.{name}" for name in catalogue.indicators())

STEPS: tuple[Step, ...] = (
    Step(
        "referentiels",
        run_reference,
        assets=(
            *(f"ref.{t}" for t in reference.REFERENCE_FILES),
            "ref.territoire_communes",
            "ref.territoire_niveaux",
            "ref.communes_lues",
        ),
        monthly=False,
        group="ref",
        description="COG, NAF, catégories juridiques, tranches et règles ESS de data/reference/, "
        "puis les communes du territoire réglé, les niveaux entièrement inclus et ceux qui le "
        "contiennent (EPT, EPCI, départements, régions), et les communes à lire dans SIRENE.",
    ),
    Step(
        "sources",
        run_sources,
        assets=(*_SOURCE_ASSETS, "ref.decisions_rapprochement"),
        deps=("ref.communes",),
        checked=_SOURCE_ASSETS,
        monthly=False,
        group="raw",
        description="Vagues du questionnaire « Mieux vous connaître » et listes de membres des "
        "réseaux déposées dans data/inbox/, cellule par cellule telles que dans le fichier "
        "(données personnelles comprises : elles ne vont jamais plus loin que cette couche), et "
        "décisions de revue de data/inbox/decisions/.",
    ),
    Step(
        "sirene_brut",
        run_sirene_raw,
        assets=("raw.sirene_etablissements", "raw.sirene_unites_legales"),
        deps=_SIRENE_REF,
        checked=("raw.sirene_etablissements", "raw.sirene_unites_legales"),
        group="raw",
        description="Stocks SIRENE du mois (établissements puis unités légales), colonnes "
        "utiles en texte, limités aux communes du territoire et des unités qui le contiennent "
        "(ref.communes_lues) ; enregistrements abîmés en quarantaine.",
    ),
    Step(
        "sirene_propre",
        run_sirene_clean,
        assets=("clean.sirene_etablissements", "clean.sirene_unites_legales"),
        deps=("raw.sirene_etablissements", "raw.sirene_unites_legales", *_CLEAN_REF),
        checked=("clean.sirene_etablissements", "clean.sirene_unites_legales"),
        group="clean",
        description="Établissements et unités légales typés et contrôlés (Polars) ; rejets "
        "dans clean.*_rejets, codes hors nomenclature dans clean.codes_hors_nomenclature.",
    ),
    Step(
        "perimetre",
        run_perimeter,
        assets=(
            "clean.etablissements_perimetre",
            "clean.couverture_niveaux",
            "clean.niveaux_publies",
        ),
        deps=(
            "clean.sirene_etablissements",
            "clean.sirene_unites_legales",
            *_PERIMETER_REF,
            "ref.territoire_niveaux",
        ),
        checked=("clean.etablissements_perimetre",),
        group="clean",
        description="Périmètre ESS décidé et tracé (règle) pour chaque établissement du mois ; "
        "niveaux publiés du mois : les unités qui contiennent le territoire (EPT, EPCI, "
        "départements, régions) seulement si le stock du mois les couvre.",
    ),
    Step(
        "sources_propres",
        run_sources_clean,
        assets=_SOURCE_CLEAN,
        deps=(*_SOURCE_ASSETS, "ref.communes"),
        checked=_SOURCE_CLEAN,
        monthly=False,
        group="clean",
        description="Réponses nettoyées (sans nom, courriel ni téléphone des répondants), "
        "valeurs typées et rattachées à la taxonomie des besoins ; membres des réseaux, champs "
        "déclarés seulement ; rejets dans clean.questionnaire_rejets et clean.reseaux_rejets.",
    ),
    Step(
        "rapprochement",
        run_linkage,
        assets=("clean.rapprochements",),
        deps=(
            *_SOURCE_CLEAN,
            "ref.decisions_rapprochement",
            "clean.sirene_etablissements",
            "clean.sirene_unites_legales",
        ),
        checked=("clean.rapprochements",),
        group="clean",
        description="Réponses et membres rapprochés des établissements SIRENE du mois (SIRET, "
        "SIREN + commune, nom + adresse par splink, décisions de revue) ; file de revue "
        "exportée en CSV dans data/revue/ une fois contrôlée.",
    ),
    Step(
        "indicateurs",
        run_indicators,
        assets=_INDICATORS,
        deps=("clean.etablissements_perimetre", "clean.niveaux_publies", "clean.rapprochements"),
        previous_month=("clean.etablissements_perimetre", "clean.niveaux_publies"),
        group="indicators",
        description="Indicateurs du catalogue (sql/indicators/), comptés par commune puis "
        "agrégés à chaque niveau publié du mois (clean.niveaux_publies) ; ceux du questionnaire "
        "et des listes des réseaux au territoire et à ses niveaux seulement.",
    ),
    Step(
        "secret",
        run_secrecy,
        assets=("secret.masques",),
        deps=_INDICATORS,
        group="secret",
        description="Secret statistique : tableaux Sirene publics en entier, tableaux du "
        "questionnaire et listes confidentielles masqués (fréquence, dominance, secret "
        "secondaire) ; tables pour les lecteurs dans diffusion.*.",
    ),
    Step(
        "publication",
        run_publication,
        assets=("publication.observatoire",),
        deps=("secret.masques",),
        group="publication",
        description="Instantané publié du mois (CSV, base DuckDB), basculé atomiquement.",
    ),
)
