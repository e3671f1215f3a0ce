"""Progress in Dagster: a step's reports reach the run's event log, and the CLI's terminal once.

A one-step job built by the same `_step_asset` as the month's, run as `observatoire refresh`
runs it (in process, console logger at CRITICAL, the CLI's tag), so that what is tested is the
step runner's wiring, not a copy of it.
"""

from __future__ import annotations

import io
import itertools
import logging
import os

import pytest
from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from observatoire import steps
from observatoire.core import progress

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

LABEL = "Lecture d'essai"


def _reading(ctx: steps.StepContext) -> steps.StepResult:
    with progress.task(LABEL, total=3_000_000) as p:
        for _ in range(3):
            p.advance(1_000_000)
    return steps.StepResult(metadata={"raw.essai_progres": {"lignes": 3_000_000}})


STEP = steps.Step(
    "essai_progres", _reading, assets=("raw.essai_progres",), monthly=False, group="raw"
)


@pytest.fixture
def job(monkeypatch, settings):
    from pipelines import definitions

    monkeypatch.setattr(steps, "STEPS", (STEP,))  # the step's priority is its place in STEPS
    asset = definitions._step_asset(STEP)
    defs = Definitions(
        assets=[asset],
        jobs=[define_asset_job("essai", selection=AssetSelection.all())],
        resources={"observatoire": definitions.ObservatoireResource(reglages=settings.to_json())},
        executor=definitions.in_process_executor,
    )
    return defs.resolve_job_def("essai"), definitions


def test_a_steps_progress_is_in_the_run_log_and_on_the_terminal_once(job, caplog, capfd):
    job, definitions = job
    caplog.set_level(logging.INFO)  # as `observatoire -v`: the root console logs INFO
    display = io.StringIO()
    seconds = itertools.count()  # a second per look at the clock: start, 3 batches, end
    reporter = progress.Reporter(display, clock=lambda: next(seconds))
    with DagsterInstance.ephemeral() as instance, progress.use(reporter):
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags={definitions.CLI_TAG: "observatoire refresh"},
        )
        assert result.success
        definitions.RESULTS.pop(result.run_id, None)
        said = [
            (e.step_key, e.level, e.user_message)
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is None
        ]
    final = f"{LABEL} : 3\u202f000\u202f000 lignes en 4 s (750\u202f000 lignes/s), terminé"
    # in the run's log, under the step, at INFO, word for word: what the UI shows
    assert ("essai_progres", logging.INFO, final) in said, said
    # the CLI's display got it once; neither Dagster's console nor the root logger repeated it
    assert display.getvalue().count(final) == 1
    assert not [r for r in caplog.records if LABEL in r.getMessage()]
    assert LABEL not in capfd.readouterr().err
    assert progress.LOGGER.propagate and not progress.LOGGER.handlers  # restored
