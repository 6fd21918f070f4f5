"""Airflow DAG eurostat_ingest: land Eurostat's returns datasets (and context) when updated.

Runs monthly: Eurostat publishes the annual return statistics once a year and the quarterly ones
once a quarter, and the table of contents says which datasets changed, so a month without updates
downloads nothing but the table of contents. When nothing new was landed the task is skipped, so
no Asset event starts a transform for nothing. Trigger it by hand to check sooner.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag

eurostat_ingest = source_dag("eurostat_ingest", task_id="land_datasets", tags=["eurostat"],
                             doc=__doc__)
