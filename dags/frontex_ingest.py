"""Airflow DAG frontex_ingest: land the monthly Frontex workbook when a new one is published.

Runs monthly; emits the ``frontex_landed`` Asset on every run (a transform with nothing new
republishes identical marts, docs/decisions.md 11 and 21)."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag

frontex_ingest = source_dag("frontex_ingest", task_id="land_workbook", tags=["frontex"], doc=__doc__,
                            skip_when_nothing_new=False)
