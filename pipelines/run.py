"""`observatoire refresh` through Dagster: the CLI's month is a run of the job `sirene_mensuel`.

Run in this process on the instance of `DAGSTER_HOME` (the Makefile points it at the
repository, whose `dagster.yaml` keeps the history under `data/.dagster/`), so that the run,
its materialisations and its checks show in the UI (`make dev`) exactly as a scheduled run
would, and the inbox sensor knows which files the month has read.
"""

from __future__ import annotations

import os
import re
import socket
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


def run_through_dagster(settings: Settings, mois: str, run_id: str) -> refresh.RefreshReport:
    """The month as a Dagster run; its results gathered for the CLI's report.

    A step that raises fails the run and its error is raised again here, unwrapped, so that
    the CLI says it in one French sentence; a failed blocking check stops the run before
    the steps that depend on it, and is raised as `QualityError`.
    """
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    from dagster import DagsterInstance

    from pipelines.definitions import CLI_TAG, RESULTS, defs

    job = defs.resolve_job_def("sirene_mensuel")
    _check_partition(job, mois)
    # a missing or unreadable local file is refused at once, before a run enters the history
    steps.check_local_sources(settings, mois)
    # the Dagster run id starts with the refresh's: etat.json and the publication folder
    # name the same run as the UI
    prefix = run_id if re.fullmatch(r"[0-9a-f]{1,32}", run_id) else ""
    dagster_run_id = str(uuid.UUID(hex=prefix + uuid.uuid4().hex[len(prefix) :]))
    report = refresh.RefreshReport(
        mois=mois, territoire=settings.territoire, dagster_run_id=dagster_run_id
    )
    with DagsterInstance.from_config(str(instance_home(settings))) as instance:
        _fail_dead_runs(instance, CLI_TAG)
        error: Exception | None = None
        try:
            job.execute_in_process(
                run_config={
                    "resources": {"observatoire": {"config": {"reglages": settings.to_json()}}},
                    # the CLI prints its own summary and its refusal in one French sentence:
                    # Dagster's event log (and its stack traces) stays in the UI
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                },
                instance=instance,
                partition_key=f"{mois}-01",
                run_id=dagster_run_id,
                tags={CLI_TAG: "observatoire refresh", PID_TAG: _pid()},
                raise_on_error=True,
            )
        except Exception as exc:  # said below, once the steps' results are read
            error = exc
        finally:
            results = RESULTS.pop(dagster_run_id, [])
            # the Data Docs once, at the end, passed or stopped by a check (never failing it)
            refresh.build_docs(settings, [r.suite for _, res in results for r in res.checks])
    failed = [r for _, res in results for r in res.failed]
    if failed:  # a blocking check stopped the run (Dagster raises its own error for it)
        raise steps.QualityError(failed)
    if error is not None:
        raise _user_error(error) from None
    for name, result in results:
        report.add(name, result)
    missing = [s.name for s in steps.STEPS if s.name not in report.steps]
    if missing:
        raise RuntimeError(f"run Dagster {dagster_run_id} : étapes non exécutées {missing}")
    return report


PID_TAG = "observatoire/processus"  # host:pid of the CLI process running the month


def _pid() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _fail_dead_runs(instance: object, cli_tag: str) -> None:
    """A CLI killed mid-month (SIGKILL, out of memory) leaves its run « STARTED » for ever,
    holding the instance's only run slot: marked failed by the next CLI run on this host."""
    from dagster import DagsterRunStatus, RunsFilter

    runs = instance.get_runs(  # type: ignore[attr-defined]
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED], tags={cli_tag: "observatoire refresh"}
        )
    )
    host = socket.gethostname()
    for run in runs:
        where, _, pid = run.tags.get(PID_TAG, "").partition(":")
        if where != host or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(  # type: ignore[attr-defined]
            run, f"processus {pid} de la CLI arrêté en cours de mois (tué ?)"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


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
