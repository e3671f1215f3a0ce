"""`observatoire refresh` through Dagster: the CLI's month is a run of the job `sirene_mensuel`.

Run in this process on the instance of `DAGSTER_HOME` (the Makefile points it at the
repository, whose `dagster.yaml` keeps the history under `data/.dagster/`), so that the run,
its materialisations and its checks show in the UI (`make dev`) exactly as a scheduled run
would, and the inbox sensor knows which files the month has read.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from observatoire import refresh, steps
from observatoire.core.mois import InvalidMonthError
from observatoire.core.settings import Settings


def instance_home(settings: Settings) -> Path:
    """DAGSTER_HOME if set; else the project (its dagster.yaml) or a folder of the data."""
    env = os.environ.get("DAGSTER_HOME")
    if env:
        return Path(env)
    if Path("dagster.yaml").is_file():
        return Path.cwd()
    home = Path(settings.data_dir) / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _resource_config(settings: Settings) -> dict[str, object]:
    return {
        "warehouse": str(settings.warehouse),
        "territoire": settings.territoire,
        "sirene_etablissements": settings.sirene_etablissements,
        "sirene_unites_legales": settings.sirene_unites_legales,
        "publication_dir": str(settings.publication_dir),
    }


def run_through_dagster(settings: Settings, mois: str, run_id: str) -> refresh.RefreshReport:
    """The month as a Dagster run; its results gathered for the CLI's report.

    A step that raises fails the run and its error is raised again here, unwrapped, so that
    the CLI says it in one French sentence; a failed blocking check stops the run before
    the steps that depend on it, and is raised as `QualityError`.
    """
    # a missing or unreadable local file is refused at once, before a run enters the history
    steps.check_local_sources(settings, mois)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    from dagster import DagsterInstance

    from pipelines.definitions import CLI_TAG, RESULTS, defs

    # the Dagster run id starts with the refresh's: etat.json and the publication folder
    # name the same run as the UI
    prefix = run_id if re.fullmatch(r"[0-9a-f]{1,32}", run_id) else ""
    dagster_run_id = str(uuid.UUID(hex=prefix + uuid.uuid4().hex[len(prefix) :]))
    report = refresh.RefreshReport(
        mois=mois, territoire=settings.territoire, dagster_run_id=dagster_run_id
    )
    with DagsterInstance.from_config(str(instance_home(settings))) as instance:
        job = defs.resolve_job_def("sirene_mensuel")
        _check_partition(job, mois)
        try:
            job.execute_in_process(
                run_config={
                    "resources": {"observatoire": {"config": _resource_config(settings)}},
                    # the CLI prints its own summary: Dagster's event log stays in the UI
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                },
                instance=instance,
                partition_key=f"{mois}-01",
                run_id=dagster_run_id,
                tags={CLI_TAG: "observatoire refresh"},
                raise_on_error=True,
            )
        except Exception as exc:
            raise _user_error(exc) from None
        finally:
            results = RESULTS.pop(dagster_run_id, [])
    for name, result in results:
        report.add(name, result)
        if result.failed:
            raise steps.QualityError(result.failed)
    missing = [s.name for s in steps.STEPS if s.name not in report.steps]
    if missing:
        raise RuntimeError(f"run Dagster {dagster_run_id} : étapes non exécutées {missing}")
    return report


def _check_partition(job: object, mois: str) -> None:
    """A month outside the job's calendar is refused in French, before anything is read."""
    keys = job.partitions_def.get_partition_keys()  # type: ignore[attr-defined]
    if f"{mois}-01" in keys:
        return
    first, last = keys[0][:7], keys[-1][:7]
    if mois > last:
        why = (
            f"ce mois n'a pas encore commencé (dernier mois possible : {last}) ; vérifier le "
            "mois demandé, un stock INSEE porte le mois de sa publication"
        )
    else:
        why = f"le calendrier mensuel de l'observatoire commence en {first}"
    raise InvalidMonthError(f"Mois « {mois} » refusé : {why}. Rien n'a été publié.")


def _user_error(exc: BaseException) -> BaseException:
    """The step's own exception, out of Dagster's wrapping: a refusal for the CLI's French
    sentence, else the innermost error (a bug's traceback then points at the step's code)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    innermost = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, refresh.REFUSALS):
            return current
        innermost = current
        user = getattr(current, "user_exception", None)
        current = user if user is not None else current.__cause__
    return innermost
