"""Airflow DAG registries_ingest: land a curated registry when its content changes.

Runs daily and compares the file's sha256 with what is landed: an unchanged registry lands
nothing and the run is skipped (no Asset event); an edit lands a new version, validated row by
row (a broken row is quarantined and fails the task, naming the file, the row and the rule)."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag

registries_ingest = source_dag("registries_ingest", task_id="land_registries",
                               tags=["registries", "funding"], doc=__doc__)
