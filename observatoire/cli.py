"""`observatoire` command line: one sub-command per user task, each a few lines over the library."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import re
import sys
from pathlib import Path
from typing import NoReturn

from observatoire import refresh, steps
from observatoire.cleaning import sirene as clean
from observatoire.core import fingerprint, progress, warehouse
from observatoire.core.mois import InvalidMonthError, parse_mois
from observatoire.core.settings import Settings
from observatoire.publication import publish

# Month of the bundled synthetic SIRENE extract (the stock INSEE published on 1 November 2026).
DEMO_MOIS = "2026-11"
DEMO_UNITES_LEGALES = 300_000
DEMO_SEED = 2026


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "territoire", None):
        settings = settings.with_(territoire=args.territoire)
    return settings


def _format_headline(h: dict[str, object]) -> list[str]:
    if not h:
        return ["(aucun indicateur pour ce mois)"]
    jobs = h.get("emplois_ess") or (0, 0, 0, 0)
    bas, central, haut, inconnue = jobs  # type: ignore[misc]
    part = h.get("part_ess_emplois_prives")
    lines = [
        f"Territoire : {h['territoire']} (niveau {h['niveau']})",
        f"  établissements actifs (tous)        : {h['etablissements_actifs']}",
        f"  établissements actifs de l'ESS      : {h['etablissements_actifs_ess']}",
        f"  établissements employeurs de l'ESS  : {h['etablissements_employeurs_ess']}",
        f"  emplois salariés ESS estimés        : {central:,.0f} (fourchette {bas:,.0f} – "
        f"{haut:,.0f} ; tranche inconnue pour {float(inconnue or 0):.1%} des employeurs)",
    ]
    if part is not None:
        lines.append(f"  part de l'ESS dans l'emploi privé   : {float(part):.1%}")  # type: ignore[arg-type]
    return [line.replace(",", "\u202f") for line in lines]


DRIFT_LABELS = {
    clean.KNOWN_REMOVED: "supprimé de la nomenclature",
    clean.UNKNOWN: "inconnu de toute nomenclature",
    clean.FORMER_COMMUNE: "ancienne commune, attribuée à la commune actuelle",
    clean.UNKNOWN_ELSEWHERE: "commune inconnue hors des départements du territoire",
    clean.OLD_NOMENCLATURE: "ancienne nomenclature (NAF rév. 1, NAF 1993, NAP)",
}


def _format_drift(report: refresh.RefreshReport, top: int = 4) -> list[str]:
    """What the month carries outside today's nomenclatures: kept, classified, counted."""
    lines = []
    for cl in report.cleaned.values():
        by_key: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for column, code, status, _, rows in cl.drift:
            by_key.setdefault((column, status), []).append((code, rows))
        for (column, status), codes in sorted(by_key.items()):
            total = sum(n for _, n in codes)
            shown = ", ".join(f"{c} ({n})" for c, n in sorted(codes, key=lambda x: -x[1])[:top])
            more = f", … {len(codes) - top} autres" if len(codes) > top else ""
            lines.append(
                f"  {column} — {DRIFT_LABELS.get(status, status)} : {total} lignes, "
                f"{len(codes)} codes : {shown}{more}"
            )
    if not lines:
        return ["Codes hors nomenclature : aucun"]
    return [
        f"Codes hors nomenclature du mois {report.mois} (lignes gardées, classées et comptées "
        "dans clean.codes_hors_nomenclature) :",
        *lines,
    ]


def _format_coverage(report: refresh.RefreshReport) -> list[str]:
    """The units containing the territory: published for comparison, or left out and why."""
    if not report.couverture:
        return []
    return [
        "Territoires englobants (publiés si le stock du mois les couvre) :",
        *(f"  {unit.reason_fr()}" for unit in report.couverture),
    ]


def _print_report(settings: Settings, report: refresh.RefreshReport) -> None:
    for kind, ing in report.ingested.items():
        print(
            f"{kind} : {ing.records} enregistrements dans le fichier ({ing.layout}), dont "
            f"{ing.malformed} mal formé(s) en quarantaine ; {ing.rows} lignes gardées (communes "
            "du territoire et des territoires englobants)"
        )
    for kind, cl in report.cleaned.items():
        print(f"{kind} : {cl.rows_clean} lignes propres, {cl.rows_rejected} en quarantaine")
    for line in _format_drift(report):
        print(line)
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        for line in _format_headline(steps.headline(con, report.mois)):
            print(line)
    for line in _format_coverage(report):
        print(line)
    pub = report.publication
    assert pub is not None
    print()
    print(f"Entrepôt DuckDB          : {settings.warehouse.resolve()}")
    print(f"Publication ({report.mois})   : {pub.path.resolve()}")
    stable = (settings.publication_dir / publish.CURRENT).absolute()
    print(f"  (lien stable)          : {stable}")
    print(f"  fichiers CSV           : {(pub.path / 'csv').resolve()}")
    mask = json.loads((pub.path / "manifest.json").read_text(encoding="utf-8")).get(
        "secret_statistique"
    )
    if mask:
        print(
            "Secret statistique      : tableaux du questionnaire seulement (les tableaux "
            "Sirene sont publics et publiés en entier) ; "
            f"{mask['primaires']} cases de 1 ou 2 répondants et {mask['secondaires']} autres "
            f"cases secrètes, sur {mask['cases']}"
        )
    _print_sources(report)
    print(
        "Quarantaine              : tables clean.*_rejets, raw.*_rejets_lecture "
        "(SIRENE, questionnaires, réseaux)"
    )
    if report.dagster_run_id:
        print(
            f"Run Dagster              : {report.dagster_run_id} (make dev, puis "
            f"http://127.0.0.1:3000/runs/{report.dagster_run_id})"
        )
    if report.quality:
        passed = sum(len(r.outcomes) - len(r.failures()) for r in report.quality)
        total = sum(len(r.outcomes) for r in report.quality)
        print(f"Contrôles qualité        : {passed}/{total} attentes Great Expectations tenues")
        if settings.quality_docs_dir is not None:
            index = (settings.quality_docs_dir / "index.html").resolve()
            print(f"  rapport (Data Docs)    : {index}")


def _print_sources(src: refresh.RefreshReport) -> None:
    broken = {w.vague: w.lignes_mal_formees for w in src.lectures_vagues}
    for wave in src.vagues:
        print(
            f"questionnaire {wave.vague} : {wave.nb_reponses} réponses, "
            f"{broken.get(wave.vague, 0)} lignes mal formées, "
            f"{wave.nb_rejets} valeurs en quarantaine"
        )
    broken = {n.reseau: n.lignes_mal_formees for n in src.lectures_reseaux}
    for net in src.reseaux:
        print(
            f"réseau {net.reseau} : {net.nb_membres} membres, "
            f"{broken.get(net.reseau, 0)} lignes mal formées, {net.nb_rejets} valeurs signalées"
        )
    link = src.rapprochement
    if link is not None:
        methods = ", ".join(f"{m} {n}" for m, n in sorted(link.by_method.items()) if n)
        print(
            f"rapprochement SIRENE     : {link.records} enregistrements, {link.linked} liés "
            f"(dont {link.closed} à un établissement fermé), {link.to_review} à revoir, "
            f"{link.unlinked} non liés ; par méthode : {methods}"
        )
    if src.file_a_revoir is not None:
        print(f"  file de revue (CSV)    : {src.file_a_revoir.resolve()}")
        print(
            "  décisions : compléter les colonnes decision et siret_retenu, puis déposer le "
            "fichier dans data/inbox/decisions/"
        )


def _refused(settings: Settings, exc: Exception) -> int:
    """A refused refresh is an expected outcome: say why and what readers still see."""
    print(f"ÉCHEC : {exc}", file=sys.stderr)
    if isinstance(exc, refresh.BUSY):  # nothing recorded: etat.json speaks of another run
        return 1
    status = publish.read_status(settings.publication_dir) or {}
    if status.get("message"):
        print(status["message"], file=sys.stderr)
    return 1


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress() -> progress.Reporter:
    """The month's long work shown on stderr: a bar on a terminal, else a line every 10 s and a
    final one per task (a log file, cron's mail). Dagster's copy stays in its run log."""
    return progress.Reporter(sys.stderr)


def _through_dagster() -> refresh.Executor:
    """The month as a run of the Dagster instance (DAGSTER_HOME), visible in `make dev`."""
    from pipelines.run import run_through_dagster

    return run_through_dagster


def _unchanged(settings: Settings, mois: str) -> bool:
    """The live publication is this month, made from exactly these inputs (files, settings,
    code): a refresh would give it again after the same minutes."""
    live = publish.live_manifest(settings.publication_dir)
    if live is None or str(live.get("mois")) != mois:
        return False
    made_from = (publish.live_private(settings.publication_dir) or {}).get("empreinte_entrees")
    return made_from is not None and made_from == fingerprint.inputs(settings, mois)


def cmd_refresh(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.forcer and _unchanged(settings, args.mois):
        live = (settings.publication_dir / publish.CURRENT).absolute()
        print(
            f"Rien n'a changé depuis la publication en ligne de {args.mois} (mêmes fichiers, "
            "mêmes réglages, même version) : elle est conservée telle quelle. "
            "`--forcer` pour rafraîchir quand même."
        )
        print(f"Publication ({args.mois})   : {live.resolve()}")
        print(f"  (lien stable)          : {live}")
        return 0
    try:
        with progress.use(_progress()):
            report = refresh.refresh(
                settings, args.mois, wait=args.attendre, on_wait=_say, executor=_through_dagster()
            )
    except refresh.REFUSALS as exc:
        return _refused(settings, exc)
    _print_report(settings, report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the bundled synthetic data if needed, then run a full refresh on it."""
    from observatoire.demo import synthetic

    settings = _settings(args)
    target = settings.data_dir / "sirene" / DEMO_MOIS
    manifest = target / "synthetic_manifest.json"
    regenerated = False
    if not manifest.exists() or args.regenerer:
        print(f"Génération des données SIRENE synthétiques de démonstration dans {target} …")
        with warehouse.connect(":memory:") as con:
            from observatoire.core import territory
            from observatoire.sources import reference

            reference.load_reference(con, settings.reference_dir)
            communes = territory.resolve(con, settings.territoire).communes
        synthetic.generate_sirene(
            target,
            list(communes),
            n_unites_legales=DEMO_UNITES_LEGALES,
            mois=DEMO_MOIS,
            seed=DEMO_SEED,
            reference_dir=settings.reference_dir,
        )
        regenerated = True
    truth = demo_truth_path(settings)
    if regenerated or not truth.exists():
        from observatoire.demo import synthetic_sources

        print(
            f"Génération d'une vague de questionnaire et de deux listes de réseaux synthétiques "
            f"dans {settings.inbox_dir} …"
        )
        synthetic_sources.generate_sources(
            target, settings.inbox_dir, truth, mois=DEMO_MOIS, seed=DEMO_SEED
        )
    print(f"Rafraîchissement complet du mois {DEMO_MOIS}, territoire {settings.territoire} …")
    try:
        with progress.use(_progress()):
            report = refresh.refresh(settings, DEMO_MOIS, executor=_through_dagster())
    except refresh.REFUSALS as exc:
        return _refused(settings, exc)
    _print_report(settings, report)
    print(
        "Données de démonstration SYNTHÉTIQUES (SIRENE, questionnaire, réseaux) : "
        "les chiffres ne décrivent pas le territoire réel."
    )
    print("Zip pour un partenaire : uv run observatoire export --territoire ept:T12")
    return 0


def demo_truth_path(settings: Settings) -> Path:
    """Where the demo's linkage truth is kept: outside the inbox, which the sensor watches."""
    return settings.data_dir / "synthetique" / "verite_rapprochement.csv"


def cmd_generer(args: argparse.Namespace) -> int:
    from observatoire.demo import synthetic

    settings = _settings(args)
    with warehouse.connect(":memory:") as con:
        from observatoire.core import territory
        from observatoire.sources import reference

        reference.load_reference(con, settings.reference_dir)
        communes = territory.resolve(con, settings.territoire).communes
    out = synthetic.generate_sirene(
        Path(args.sortie),
        list(communes),
        n_unites_legales=args.unites_legales,
        mois=args.mois,
        seed=args.graine,
        fmt=args.format,
        defects=not args.sans_defauts,
        reference_dir=settings.reference_dir,
    )
    print(f"{out.n_unites_legales} unités légales -> {out.unites_legales}")
    print(f"{out.n_etablissements} établissements -> {out.etablissements}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write one partner bundle (zip) per territory for a month of the current publication."""
    from observatoire.publication import export

    settings = Settings.from_env()  # --territoire here names bundles, not the refresh territory
    try:
        bundles = export.export(
            settings.publication_dir,
            Path(args.sortie or settings.data_dir / "exports"),
            territoires=args.territoire or [],
            tous=args.tous,
            communes=args.communes,
            mois=args.mois,
        )
    except export.ExportError as exc:
        print(f"ERREUR : {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # full disk, rights: the zip is written aside, nothing partial stays
        print(
            f"ERREUR : écriture impossible ({exc}) ; aucun zip partiel n'est laissé.",
            file=sys.stderr,
        )
        return 1
    for b in bundles:
        print(f"{b.path} : {b.territoire.label}, {b.mois}, {b.octets} octets")
    return 0


def cmd_indicateurs(args: argparse.Namespace) -> int:
    """Print an indicator of the current publication, optionally for one territory."""
    settings = _settings(args)
    live = publish.current(settings.publication_dir)
    if live is None:
        print("Aucune publication : lancez d'abord `observatoire refresh`.", file=sys.stderr)
        return 1
    path = live / "csv" / f"{args.indicateur}.csv"
    if not path.exists():
        print(f"Indicateur inconnu : {args.indicateur}", file=sys.stderr)
        return 1
    import polars as pl

    frame = pl.read_csv(path, infer_schema=False)
    if args.code:
        frame = frame.filter(pl.col("code_territoire") == args.code)
    if args.ensemble and "section_naf" in frame.columns:
        frame = frame.filter(
            (pl.col("section_naf") == "ensemble") & (pl.col("tranche_effectifs") == "ensemble")
        )
    if args.json:
        print(json.dumps(frame.to_dicts(), ensure_ascii=False, indent=1))
    else:
        with pl.Config(tbl_rows=args.lignes, tbl_cols=-1, tbl_width_chars=200):
            print(frame)
    return 0


def cmd_page(args: argparse.Namespace) -> int:
    """Serve the observatory's web page and JSON API over the current publication."""
    import uvicorn

    from observatoire.web.app import create_app

    settings = _settings(args)
    app = create_app(settings.publication_dir, settings.reference_dir / "geo")
    print(f"Page de l'observatoire : http://{args.hote}:{args.port}/ (API : /api)")
    uvicorn.run(app, host=args.hote, port=args.port, log_level="warning")
    return 0


def _mois(text: str) -> str:
    """`--mois`, checked by the same function as library callers and Dagster partitions."""
    try:
        return parse_mois(text)
    except InvalidMonthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# argparse's own messages (English, no French catalogue is shipped): the common ones in French
_ARGPARSE_FR = (
    (re.compile(r"^argument (\S+?): "), r"option \1 : "),
    (re.compile(r"^the following arguments are required: "), "à indiquer : "),
    (re.compile(r"^unrecognized arguments: "), "arguments non reconnus : "),
    (re.compile(r"invalid choice: (.*) \(choose from (.*)\)$"), r"choix invalide \1 (parmi \2)"),
    (re.compile(r"invalid (\w+) value: (.*)$"), r"valeur invalide \2 (type \1 attendu)"),
    (re.compile(r"expected one argument$"), "une valeur est attendue"),
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a wrong command line in French (exit code 2, no traceback)."""

    def error(self, message: str) -> NoReturn:
        for pattern, french in _ARGPARSE_FR:
            message = pattern.sub(french, message)
        self.print_usage(sys.stderr)
        self.exit(2, f"ERREUR : {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="observatoire", description="Observatoire de l'ESS")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="données de démonstration + rafraîchissement complet")
    p.add_argument("--territoire")
    p.add_argument("--regenerer", action="store_true", help="régénérer les données synthétiques")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("refresh", help="rafraîchir un mois de SIRENE et publier")
    p.add_argument("--mois", required=True, type=_mois, help="mois du stock, AAAA-MM")
    p.add_argument("--territoire")
    p.add_argument(
        "--attendre",
        action="store_true",
        help="si un rafraîchissement est déjà en cours, attendre sa fin au lieu de renoncer",
    )
    p.add_argument(
        "--forcer",
        action="store_true",
        help="rafraîchir même si rien n'a changé depuis la publication en ligne de ce mois",
    )
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("generer", help="générer un stock SIRENE synthétique")
    p.add_argument("--mois", default=DEMO_MOIS, type=_mois)
    p.add_argument("--territoire")
    p.add_argument("--unites-legales", type=int, default=DEMO_UNITES_LEGALES)
    p.add_argument("--graine", type=int, default=DEMO_SEED)
    p.add_argument("--format", choices=["zip", "csv"], default="zip")
    p.add_argument("--sans-defauts", action="store_true")
    p.add_argument("--sortie", required=True)
    p.set_defaults(func=cmd_generer)

    p = sub.add_parser("export", help="exports pour les partenaires : un zip par territoire")
    p.add_argument("--territoire", action="append", help="NIVEAU:CODE (répétable), ex. ept:T12")
    p.add_argument("--tous", action="store_true", help="tous les territoires publiés")
    p.add_argument("--communes", action="store_true", help="avec --tous : aussi les communes")
    # checked by export.export (same parse_mois), which answers every export error with code 1
    p.add_argument("--mois", help="AAAA-MM (par défaut : le mois de la publication)")
    p.add_argument("--sortie", help="dossier des zips (par défaut : data/exports/)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("indicateurs", help="afficher un indicateur publié")
    p.add_argument("indicateur")
    p.add_argument("--code", help="code du territoire")
    p.add_argument(
        "--ensemble", action="store_true", help="seulement les totaux (toutes sections et tranches)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--lignes", type=int, default=30)
    p.set_defaults(func=cmd_indicateurs)

    p = sub.add_parser("page", help="servir la page de l'observatoire et l'API JSON")
    p.add_argument("--hote", default="127.0.0.1", help="adresse d'écoute (127.0.0.1 par défaut)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_page)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except refresh.REFUSALS as exc:  # a refusal met outside a refresh (the demo's reference data)
        print(f"ÉCHEC : {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        full = _disk_full(exc)
        if full is None:
            raise
        # the refresh recorded the failure (etat.json) and left the live publication as it was
        print(
            f"ÉCHEC : disque plein ou fichier trop grand ({full}). Rien n'a été publié : la "
            "publication en ligne est inchangée. Libérer de la place (l'entrepôt, ses fichiers "
            "Parquet et les fichiers temporaires de DuckDB sont à côté de lui), puis relancer.",
            file=sys.stderr,
        )
        return 1


_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def _disk_full(exc: BaseException) -> str | None:
    """The first line of a full-disk error in `exc`'s chain (Python's or DuckDB's), else None.

    Not a bug of ours and not a user's mistake either: said in one French sentence, not as a
    traceback."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).splitlines()[0] if str(current) else type(current).__name__
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return text
        if any(t in str(current) for t in _DISK_FULL_TEXT):
            return text
        current = current.__cause__ or current.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
