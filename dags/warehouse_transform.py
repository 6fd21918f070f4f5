"""Write, audit, publish: build a copy of the warehouse, check it, swap it in atomically, report.

A run with nothing new since the last publish builds nothing: check_for_changes skips the build
steps and the report says "nothing new since <publish>, warehouse unchanged"."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from airflow.sdk import dag, get_current_context, task

from dags._common import ANY_SOURCE_LANDED, START_DATE, TRANSFORM_DEFAULT_ARGS, transform_step
from pipeline import steps
from pipeline.warehouse import safe_run_id


def _run_id() -> str:
    return safe_run_id(get_current_context()["run_id"])


@dag(
    dag_id="warehouse_transform",
    schedule=ANY_SOURCE_LANDED,  # whichever source landed something
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # the only DuckDB writer
    default_args=TRANSFORM_DEFAULT_ARGS,
    tags=["transform", "write-audit-publish"],
    doc_md=__doc__,
)
def warehouse_transform():
    # Skips every later task at once (the report too: this step writes it when nothing is new).
    @task.short_circuit
    @transform_step
    def check_for_changes() -> bool:
        """Anything new since the last publish (a landed file not in the warehouse, a rejected
        file still in it, other code)? If not, it writes the report ("nothing new since
        <publish>, warehouse unchanged") and every later task is skipped. Trigger with the
        conf {"rebuild": true} to build, audit and publish anyway."""
        conf = get_current_context()["dag_run"].conf or {}
        return steps.check_for_changes(_run_id(), rebuild=bool(conf.get("rebuild")))

    @task
    @transform_step
    def prepare_build() -> str:
        """Copy the published warehouse to this run's build database."""
        return steps.prepare(_run_id())

    @task
    @transform_step
    def load_raw() -> dict:
        """Load every landed file that is not rejected and not loaded yet into raw.*."""
        return steps.load(_run_id())

    @task
    @transform_step
    def audit_raw() -> dict:
        """Great Expectations suites on the raw load."""
        return steps.audit_raw(_run_id())

    @task
    @transform_step
    def dbt_build() -> dict:
        """dbt build: seeds, staging, marts and their tests."""
        return steps.dbt_build(_run_id())

    @task
    @transform_step
    def audit_marts() -> dict:
        """Great Expectations suites on the marts."""
        return steps.audit_marts(_run_id())

    @task
    @transform_step
    def publish() -> str:
        """Record the quality history, checkpoint the build database and atomically replace the
        published file."""
        return steps.publish(_run_id())

    @task(trigger_rule="all_done")
    @transform_step
    def report() -> str:
        """Write the data-quality report of this run, published or not (a failed run's report
        is red and names the checks that blocked publish; the task then fails too)."""
        return steps.report(_run_id())

    (check_for_changes() >> prepare_build() >> load_raw() >> audit_raw() >> dbt_build() >> audit_marts() >> publish()
     >> report())


warehouse_transform()
