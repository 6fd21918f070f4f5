"""Airflow DAG fts_ingest: land each year's Financial Transparency System workbook of
direct-management commitments.

Runs yearly (the Commission publishes a year's file in the following year); a year already
landed is not downloaded again, and a run that lands nothing is skipped (no Asset event)."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag

fts_ingest = source_dag("fts_ingest", task_id="land_workbooks", tags=["fts", "funding"],
                        doc=__doc__)
