"""Airflow DAG quality_report: rebuild the data-quality report every day from the stored
results, so freshness is measured against today even when no source brought anything new.

Reads the published warehouse read-only and never runs the pipeline (the transform stays the
warehouse's single writer); it writes the report and its path in the quality store."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from datetime import timedelta

from airflow.sdk import dag, task

from dags._common import OWNER, START_DATE, TRANSFORM_TASK_TIMEOUT
from pipeline import report


@dag(
    dag_id="quality_report",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": OWNER, "retries": 1, "retry_delay": timedelta(minutes=10),
                  "execution_timeout": TRANSFORM_TASK_TIMEOUT},
    tags=["report", "quality"],
    doc_md=__doc__,
)
def quality_report():
    @task
    def rebuild_report() -> str:
        """The report of the latest recorded run, freshness as of today."""
        if report.main([]) != 0:
            raise RuntimeError("no recorded run to report on yet")
        return str(report.reports_dir() / "latest.html")

    rebuild_report()


quality_report()
