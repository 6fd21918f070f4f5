"""Shared DAG settings: one place, imported by every DAG file."""
from __future__ import annotations

import functools
from datetime import timedelta

import pendulum
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from ingest import catalog
from ingest.config import settings
from ingest.errors import DataError
from ingest.spec import SourceDag

START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
OWNER = "migration-warehouse"

# Emitted by a source DAG when it lands a new file (one per source folder, ingest.catalog); the
# transform DAG is scheduled on them.
ASSETS = {dag_id: Asset(name=catalog.of_dag(dag_id)[0].asset,
                        uri=f"file:///landing/{catalog.of_dag(dag_id)[0].asset.removesuffix('_landed')}")
          for dag_id in catalog.dag_ids()}
# Any one of them starts a transform run (an asset expression: OR, not AND).
ANY_SOURCE_LANDED = functools.reduce(lambda a, b: a | b, ASSETS.values())

# Every task has an execution_timeout: whatever hangs (a server, a lock, a subprocess), Airflow
# fails the task after this long, on top of the HTTP client's own deadlines per call. A source
# task makes many calls (one per dataset, each with its own deadline); the transform's
# longest task is dbt build. The report DAG's task shares the transform's bound.
_SETTINGS = settings()
SOURCE_TASK_TIMEOUT = timedelta(minutes=_SETTINGS.source_task_timeout_min)
TRANSFORM_TASK_TIMEOUT = timedelta(minutes=_SETTINGS.transform_task_timeout_min)

# Source DAGs talk to the network: retry with a delay (on top of the HTTP client's own retries).
# Data errors do not retry (see fail_fast). `make run` sets WH_SOURCE_TASK_RETRIES=0: dag.test()
# sleeps through retry delays, and a one-shot run should fail in seconds, not quarter-hours.
SOURCE_DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": _SETTINGS.source_task_retries,
    "retry_delay": timedelta(minutes=_SETTINGS.source_retry_delay_min),
    "retry_exponential_backoff": True,
    "execution_timeout": SOURCE_TASK_TIMEOUT,
}
# The transform is deterministic on its inputs: a step that fails would fail the same way
# again, so none is retried (transform_step turns every error into AirflowFailException) and the
# next asset event is the retry. Only a task whose worker died (killed, its host lost: Airflow
# sees its heartbeat stop) is retried, WH_TRANSFORM_TASK_RETRIES times, on any worker: each step
# starts again from what the previous one left in its run folder (on the object store, with
# WH_STORAGE_URL: pipeline.scratch). It is the single DuckDB writer (max_active_runs=1).
# Its tasks also take the one slot of the pool WRITER_POOL, so that under a scheduler no two
# transform tasks run at once whatever starts them (the deployment creates the pool:
# deploy/airflow-local.sh, docker-compose.yml's airflow-init); pipeline.lock holds the warehouse
# for a whole run, across deployments too.
WRITER_POOL = "warehouse_writer"
WRITER_POOL_DESCRIPTION = "one transform task at a time: the single writer of the warehouse"
TRANSFORM_DEFAULT_ARGS = {"owner": OWNER, "retries": _SETTINGS.transform_task_retries,
                          "retry_delay": timedelta(seconds=10), "pool": WRITER_POOL,
                          "execution_timeout": TRANSFORM_TASK_TIMEOUT}


def fail_fast(func):
    """Turn data errors into AirflowFailException, so Airflow does not retry the same bytes."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from pipeline import terminate

        terminate.arm()  # after Airflow's own handler: SIGTERM stops make run (decision 82)
        terminate.check()  # one given while Airflow's handler was in place (89)
        try:
            return func(*args, **kwargs)
        except DataError as err:
            raise AirflowFailException(str(err)) from err
    return wrapper


def transform_step(func):
    """For transform tasks: any error a step raises fails the task for good (no retry: it would
    fail the same way); only a task that dies without raising is retried."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from airflow.sdk import get_current_context

        from pipeline import scratch, terminate

        terminate.arm()  # after Airflow's own handler: SIGTERM stops make run (decision 82)
        terminate.check()  # one given while Airflow's handler was in place (89)
        try:
            ti = get_current_context()["ti"]
            number, task_id = ti.try_number or 1, ti.task_id
        except Exception:  # noqa: BLE001 - called outside a task (a test): the first try
            number, task_id = 1, None
        try:
            with scratch.airflow_try(number, task_id):
                return func(*args, **kwargs)
        except AirflowFailException:
            raise
        except Exception as err:
            raise AirflowFailException(f"{type(err).__name__}: {err}") from err
    return wrapper


def source_dag(declared: SourceDag):
    """A source folder's DAG (``SourceDag``): one task that lands what the folder's sources have
    new, on the declared schedule, and emits the DAG's Asset; then ``check_landing``. With
    ``skip_when_nothing_new``, a run that lands nothing is skipped, so no Asset event starts a
    transform for nothing."""
    from airflow.sdk import dag, get_current_context, task
    from airflow.sdk.exceptions import AirflowSkipException

    from pipeline import steps
    from pipeline.warehouse import safe_run_id

    dag_id, skip_when_nothing_new = declared.dag_id, declared.skip_when_nothing_new
    specs = catalog.of_dag(dag_id)
    asset = ASSETS[dag_id]

    @dag(dag_id=dag_id, schedule=declared.schedule, start_date=START_DATE, catchup=False,
         max_active_runs=1, default_args=SOURCE_DEFAULT_ARGS, tags=["source", *declared.tags],
         doc_md=f"Airflow DAG {dag_id}: {declared.doc}")
    def source():
        @task(task_id=declared.task_id, outlets=[asset],
              doc_md=f"Land what {', '.join(s.name for s in specs)} have new.")
        @fail_fast
        def land_new_files() -> list[dict]:
            landed = steps.land(safe_run_id(get_current_context()["run_id"]), dag_id)
            if skip_when_nothing_new and not landed:
                raise AirflowSkipException(f"nothing new for {dag_id}: no Asset event")
            return landed

        @task(task_id="check_landing", trigger_rule="all_done", retries=0,
              doc_md="Fail this run when one of its sources failed while others landed files "
                     "(those are out for the transform already), naming each failure; fail "
                     "again when landing itself failed, so the run shows failed.")
        @fail_fast
        def check_landing() -> None:
            steps.check_landing(safe_run_id(get_current_context()["run_id"]))

        land_new_files() >> check_landing()

    return source()
